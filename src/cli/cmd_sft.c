/**
 * @file cmd_sft.c
 * @brief `tinyseek sft`: supervised fine-tuning of a checkpoint on templated
 *        (prompt, response) pairs, loss on the response tokens only (chapter 7).
 *
 * Exit status: 0 done; 2 bad input (one line naming the file, field or flag);
 * 3 the training diverged (see `tinyseek pretrain`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/bpe.h"
#include "model/checkpoint.h"
#include "train/sft.h"

int cmd_sft(int argc, char **argv) {
    ts_train_opts o = ts_train_opts_default();
    o.batch_size = 16;
    o.steps = 200;
    o.warmup = 10;
    o.lr = 1e-3f;
    o.min_lr = 1e-4f;
    o.eval_every = 50;
    const char *init = NULL, *data = NULL, *train_path = NULL, *test_path = NULL, *out = NULL, *metrics = NULL,
               *tmpl_name = "r1";
    int eval_pairs = 200;
    cli_train_flags tf = {.wd = o.adamw.weight_decay};
    cli_opt opts[] = {
        {"init", OPT_STR, &init, "checkpoint folder to start from (config.json, model.safetensors, tokenizer.json)", 1, 0},
        {"data", OPT_STR, &data, "folder written by `tinyseek data` (uses sft_train.jsonl / sft_test.jsonl)", 1, 0},
        {"train", OPT_STR, &train_path, "JSONL of {\"prompt\", \"response\"} pairs instead of --data", 1, 0},
        {"test", OPT_STR, &test_path, "JSONL of held-out pairs (default: --data's sft_test.jsonl)", 1, 0},
        {"template", OPT_STR, &tmpl_name, "chat template: r1, r1-zero or question (the bare question)", 1, 0},
        {"out", OPT_STR, &out, "checkpoint folder to write", 1, 0},
        {"metrics", OPT_STR, &metrics, "CSV file, one row per step (default OUT/metrics.csv)", 1, 0},
        CLI_TRAIN_FLAGS(o, tf),
        {"batch", OPT_INT, &o.batch_size, "pairs per step (B)", 1, 4096},
        {"eval-pairs", OPT_INT, &eval_pairs, "held-out pairs per evaluation (0 = all)", 0, 1 << 30},
    };
    int rc = cli_parse("sft",
                       "--init MODEL_DIR (--data DIR | --train F [--test F]) --out DIR [flags]\n"
                       "exit status: 0 done, 2 bad input, 3 diverged (a loss or gradient became nan/inf)",
                       argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    cli_train_apply(&o, &tf);
    int resume = tf.resume, quiet = tf.quiet;
    ts_template tmpl;
    if (ts_template_parse(tmpl_name, &tmpl)) return cli_lib_error();
    if (!out) return cli_error("sft: --out is required");
    if (!init && !resume) return cli_error("sft: --init MODEL_DIR is required (or --resume to continue a run)");
    if (!data == !train_path) return cli_error("sft: give exactly one of --data DIR or --train FILE");
    if ((rc = cli_train_check("sft", &o))) return rc;
    char train_buf[4096], test_buf[4096], metrics_buf[4096], tok_path[4096];
    if (data) {
        snprintf(train_buf, sizeof train_buf, "%s/sft_train.jsonl", data);
        train_path = train_buf;
        if (!test_path) {
            snprintf(test_buf, sizeof test_buf, "%s/sft_test.jsonl", data);
            if (cli_exists(test_buf)) test_path = test_buf;
        }
    }
    if (!metrics) {
        snprintf(metrics_buf, sizeof metrics_buf, "%s/metrics.csv", out);
        metrics = metrics_buf;
    }
    const char *from = resume ? out : init; // the config and tokenizer come from where the weights do
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", from);
    o.out_dir = out;
    o.metrics_path = metrics;
    o.tokenizer_json = tok_path;

    ts_model m;
    if (resume) {
        char cfg_path[4096];
        ts_config cfg;
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", out);
        if (ts_config_load(&cfg, cfg_path) || ts_model_create(&m, &cfg, TS_MODEL_TRAIN)) return cli_lib_error();
    } else if (ts_checkpoint_load(&m, init, TS_MODEL_TRAIN)) {
        return cli_lib_error();
    }
    bpe_tokenizer tok;
    memset(&tok, 0, sizeof tok);
    ts_examples train_set = {0}, test_set = {0};
    ts_sft_data train = {0}, test = {0};
    rc = 0;
    if (bpe_load(&tok, tok_path) || ts_examples_load(&train_set, train_path, 1, 0) ||
        (test_path && ts_examples_load(&test_set, test_path, 1, 0)) ||
        ts_sft_data_build(&train, &tok, tmpl, &train_set, m.cfg.max_position_embeddings, train_path) ||
        (test_path && ts_sft_data_build(&test, &tok, tmpl, &test_set, m.cfg.max_position_embeddings, test_path))) {
        rc = cli_lib_error();
        goto done;
    }
    if (tok.vocab_size > m.cfg.vocab_size) {
        rc = cli_error("sft: %s has %d tokens but the model's vocab_size is %d", tok_path, tok.vocab_size, m.cfg.vocab_size);
        goto done;
    }
    if (!quiet) {
        long resp = 0;
        for (int i = 0; i < train.n; i++) resp += train.seq[i].n - train.seq[i].n_prompt;
        printf("sft: %d pairs (%ld response tokens, longest pair %d tokens, template %s), %d held-out pairs, "
               "batch %d, %ld steps, lr %g, %d threads\n",
               train.n, resp, train.max_len, ts_template_name(tmpl), test.n, o.batch_size, o.steps, o.lr,
               ts_num_threads());
    }
    ts_train_result res;
    if (ts_sft(&m, &train, test_path ? &test : NULL, eval_pairs, &o, &res)) {
        rc = res.diverged_step ? 3 : 2;
        cli_lib_error();
    } else {
        printf("sft: %ld steps in %.1f s, final loss %.4f, held-out response loss %.4f -> %s\n", res.steps_run,
               res.seconds, res.final_loss, res.final_val_loss, out);
    }
done:
    ts_sft_data_free(&train);
    ts_sft_data_free(&test);
    ts_examples_free(&train_set);
    ts_examples_free(&test_set);
    bpe_free(&tok);
    ts_model_free(&m);
    return rc;
}
