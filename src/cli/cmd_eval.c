/**
 * @file cmd_eval.c
 * @brief `tinyseek eval`: held-out loss of a checkpoint at a chosen context
 *        length, optionally with YaRN switched on (chapter 4's context extension).
 *
 * A model trained on windows of T tokens has only seen relative positions
 * below T. Evaluated on longer windows, its RoPE pairs turn through angles it
 * never saw; YaRN (`--yarn-factor`) slows the low-frequency pairs down and
 * sharpens the softmax, without retraining. The RoPE table is computed, not
 * learned, so a window longer than the config's max_position_embeddings only
 * extends the table (the output line says so).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/bpe.h"
#include "io/fileio.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "train/pretrain.h"

int cmd_eval(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *csv = NULL, *label = NULL;
    int seq = 0, batch = 4, batches = 8, threads = 0, original = 0;
    float factor = 0, mscale = 1.0f, mscale_all_dim = 1.0f, beta_fast = 32.0f, beta_slow = 1.0f;
    cli_opt opts[] = {
        {"model", OPT_STR, &model_dir, "checkpoint folder (config.json, model.safetensors, tokenizer.json)", 1, 0},
        {"data", OPT_STR, &data, "folder written by `tinyseek data` (uses pretrain_test.txt)", 1, 0},
        {"seq", OPT_INT, &seq, "tokens per window (default: max_position_embeddings)", 2, 1 << 20},
        {"batch", OPT_INT, &batch, "windows per forward", 1, 4096},
        {"batches", OPT_INT, &batches, "forwards (windows evenly spaced over the held-out text)", 1, 100000},
        {"yarn-factor", OPT_FLOAT, &factor, "switch YaRN on with this factor s (rope_scaling.factor; 0 = off)", 0, 1e6},
        {"yarn-original", OPT_INT, &original, "rope_scaling.original_max_position_embeddings (the training context)", 0, 1 << 30},
        {"yarn-beta-fast", OPT_FLOAT, &beta_fast, "rope_scaling.beta_fast: pairs turning more often over the original context keep their frequency", 0, 1e6},
        {"yarn-beta-slow", OPT_FLOAT, &beta_slow, "rope_scaling.beta_slow: pairs turning less often are slowed by the full factor", 0, 1e6},
        {"yarn-mscale", OPT_FLOAT, &mscale, "rope_scaling.mscale", 0, 100},
        {"yarn-mscale-all-dim", OPT_FLOAT, &mscale_all_dim, "rope_scaling.mscale_all_dim (0: no softmax temperature)", 0, 100},
        {"csv", OPT_STR, &csv, "append a row label,seq,yarn_factor,loss to this CSV file (header if new)", 1, 0},
        {"label", OPT_STR, &label, "the row's label (default: rope or yarn)", 1, 0},
        {"threads", OPT_INT, &threads, "threads (0 = default)", 0, 1024},
    };
    int rc = cli_parse("eval", "--model DIR --data DIR [--seq T] [--yarn-factor S --yarn-original N] [flags]", argc, argv,
                       opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    ts_set_num_threads(threads);
    if (!model_dir || !data) return cli_error("eval: --model and --data are required");
    char path[4096];
    ts_config cfg;
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    if (ts_config_load(&cfg, path)) return cli_lib_error();
    if (seq == 0) seq = cfg.max_position_embeddings;
    int extended = seq > cfg.max_position_embeddings;
    if (extended) cfg.max_position_embeddings = seq;
    if (factor > 0) {
        if (factor < 1) return cli_error("eval: --yarn-factor must be >= 1 (or 0 for off), got %g", factor);
        if (original <= 0) return cli_error("eval: --yarn-factor needs --yarn-original (the context the model was trained at)");
        cfg.has_yarn = 1;
        cfg.yarn.factor = factor;
        cfg.yarn.original_max_position = original;
        cfg.yarn.beta_fast = beta_fast;
        cfg.yarn.beta_slow = beta_slow;
        cfg.yarn.mscale = mscale;
        cfg.yarn.mscale_all_dim = mscale_all_dim;
    }

    /* held-out tokens */
    bpe_tokenizer tok;
    memset(&tok, 0, sizeof tok);
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    if (bpe_load(&tok, path)) return cli_lib_error();
    char *text = NULL;
    size_t len = 0;
    int *ids = NULL;
    size_t n = 0;
    snprintf(path, sizeof path, "%s/pretrain_test.txt", data);
    if (ts_read_file(path, &text, &len) || bpe_encode(&tok, text, len, &ids, &n)) {
        free(text);
        bpe_free(&tok);
        return cli_lib_error();
    }
    free(text);
    bpe_free(&tok);
    if (n < (size_t)seq + 1) {
        free(ids);
        return cli_error("eval: %s holds %zu tokens, fewer than one window of --seq %d", path, n, seq);
    }

    ts_model m;
    if (ts_model_create(&m, &cfg, TS_MODEL_FROZEN)) {
        free(ids);
        return cli_lib_error();
    }
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    if (ts_safetensors_load_params(&m.params, path)) {
        ts_model_free(&m);
        free(ids);
        return cli_lib_error();
    }
    ts_token_stream eval = {ids, n};
    float loss = ts_eval_loss(&m, &eval, batch, seq, batches);
    ts_model_free(&m);
    free(ids);
    if (loss != loss) return cli_error("eval: %s", ts_last_error());
    const char *name = label ? label : factor > 0 ? "yarn" : "rope";
    printf("eval: %s, %d windows of %d tokens, %s", model_dir, batch * batches, seq, name);
    if (factor > 0)
        printf(" (factor %g, original %d, beta %g/%g, mscale %g, mscale_all_dim %g)", factor, original, beta_fast, beta_slow,
               mscale, mscale_all_dim);
    printf(": held-out loss %.4f%s\n", loss, extended ? " (RoPE table extended past max_position_embeddings)" : "");
    if (csv) {
        FILE *f = fopen(csv, "a");
        if (!f) return cli_error("eval: cannot write %s", csv);
        if (ftell(f) == 0) fprintf(f, "label,seq,yarn_factor,loss\n");
        fprintf(f, "%s,%d,%g,%.5f\n", name, seq, factor, loss);
        if (fclose(f)) return cli_error("eval: error writing %s", csv);
    }
    return 0;
}
