/**
 * @file cmd_pretrain.c
 * @brief `tinyseek pretrain`: train a model from scratch (or resume) on the toy data or any text file.
 *
 * Exit status: 0 done; 2 bad input (one line naming the file, field or flag);
 * 3 the training diverged: a loss or gradient norm that is not finite stopped
 * the run before its optimizer step, with one line naming the step and the
 * first layer whose output (or parameter whose gradient) is not finite; the
 * last checkpoint in --out is the last good one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "data/bpe.h"
#include "io/fileio.h"
#include "model/checkpoint.h"
#include "train/pretrain.h"

/* Tokenize a whole file into a stream. */
static int encode_file(const bpe_tokenizer *tok, const char *path, int **ids, size_t *n) {
    char *text = NULL;
    size_t len = 0;
    if (ts_read_file(path, &text, &len)) return cli_lib_error();
    ts_status st = bpe_encode(tok, text, len, ids, n);
    free(text);
    if (st) return cli_lib_error();
    return 0;
}

int cmd_pretrain(int argc, char **argv) {
    ts_train_opts o = ts_train_opts_default();
    const char *config = NULL, *data = NULL, *text = NULL, *tokenizer = NULL, *out = NULL, *metrics = NULL;
    uint64_t init_seed = 1;
    cli_train_flags tf = {.wd = o.adamw.weight_decay};
    float aux_alpha = -1;
    const char *expert_load = NULL, *fp8_scaling = NULL;
    int fp8 = 0;
    cli_opt opts[] = {
        {"config", OPT_STR, &config, "model config.json (not needed with --resume)", 1, 0},
        {"data", OPT_STR, &data, "folder written by `tinyseek data` (uses pretrain_train.txt / pretrain_test.txt)", 1, 0},
        {"text", OPT_STR, &text, "any text file instead of --data (the last 10% is held out)", 1, 0},
        {"tokenizer", OPT_STR, &tokenizer, "tokenizer.json (from `tinyseek tokenizer train`)", 1, 0},
        {"out", OPT_STR, &out, "checkpoint folder to write (a Hugging Face model folder)", 1, 0},
        {"metrics", OPT_STR, &metrics, "CSV file, one row per step (default OUT/metrics.csv)", 1, 0},
        CLI_TRAIN_FLAGS(o, tf),
        {"batch", OPT_INT, &o.batch_size, "sequences per step (B)", 1, 4096},
        {"seq", OPT_INT, &o.seq_len, "tokens per sequence (T)", 2, 1 << 20},
        {"eval-batches", OPT_INT, &o.eval_batches, "batches per evaluation", 1, 100000},
        {"init-seed", OPT_U64, &init_seed, "weight-initialisation seed", 1, 0},
        {"bias-update-speed", OPT_FLOAT, &o.bias_update_speed,
         "MoE: auxiliary-loss-free balancing, each step b_i -= g*sign(load_i - mean) (0 = off)", 0, 10},
        {"aux-loss-alpha", OPT_FLOAT, &aux_alpha, "MoE: override the config's aux_loss_alpha (sequence-wise balance loss)", 0, 10},
        {"expert-load", OPT_STR, &expert_load, "MoE: per-step expert load CSV (default OUT/expert_load.csv)", 1, 0},
        {"mtp-lambda", OPT_FLOAT, &o.mtp_lambda,
         "MTP (num_nextn_predict_layers > 0): loss L_main + (lambda/D)*sum_k L_k (default 0.3)", 0, 100},
        {"fp8", OPT_FLAG, &fp8, "appendix B: the blocks' linear layers in simulated FP8 (E4M3, V3's scaling)", 1, 0},
        {"fp8-scaling", OPT_STR, &fp8_scaling, "with --fp8: tile (1x128 / 128x128, V3) or tensor (one scale each)", 1, 0},
    };
    int rc = cli_parse("pretrain",
                       "--config F --tokenizer F (--data DIR | --text F) --out DIR [flags]\n"
                       "exit status: 0 done, 2 bad input, 3 diverged (a loss or gradient became nan/inf)",
                       argc, argv, opts,
                       (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    cli_train_apply(&o, &tf);
    int resume = tf.resume, quiet = tf.quiet;
    if (!tokenizer) return cli_error("pretrain: --tokenizer is required");
    if (!data == !text) return cli_error("pretrain: give exactly one of --data DIR or --text FILE");
    if (!out) return cli_error("pretrain: --out is required");
    if (!config && !resume) return cli_error("pretrain: --config is required (or --resume to continue a run)");
    if (fp8_scaling && !fp8) return cli_error("pretrain: --fp8-scaling needs --fp8");
    if (fp8_scaling && strcmp(fp8_scaling, "tile") != 0 && strcmp(fp8_scaling, "tensor") != 0)
        return cli_error("pretrain: --fp8-scaling must be tile or tensor, got '%s'", fp8_scaling);
    if (fp8) /* recorded in the run fingerprint: a resume must ask for the same precision */
        o.precision = ts_precision_fp8(fp8_scaling && !strcmp(fp8_scaling, "tensor") ? TS_FP8_PER_TENSOR : TS_FP8_FINE);
    if ((rc = cli_train_check("pretrain", &o))) return rc;
    char metrics_buf[4096], config_buf[4096], load_buf[4096];
    if (!expert_load) {
        snprintf(load_buf, sizeof load_buf, "%s/expert_load.csv", out);
        expert_load = load_buf;
    }
    o.expert_load_path = expert_load; /* written only when the model has MoE layers */
    if (!metrics) {
        snprintf(metrics_buf, sizeof metrics_buf, "%s/metrics.csv", out);
        metrics = metrics_buf;
    }
    if (resume && !config) {
        snprintf(config_buf, sizeof config_buf, "%s/config.json", out);
        config = config_buf;
    }
    o.out_dir = out;
    o.metrics_path = metrics;
    o.tokenizer_json = tokenizer;

    ts_config cfg;
    if (ts_config_load(&cfg, config)) return cli_lib_error();
    if (aux_alpha >= 0) cfg.aux_loss_alpha = aux_alpha;
    bpe_tokenizer tok;
    memset(&tok, 0, sizeof tok);
    if (bpe_load(&tok, tokenizer)) return cli_lib_error();
    if (tok.vocab_size > cfg.vocab_size) {
        int n = tok.vocab_size;
        bpe_free(&tok);
        return cli_error("pretrain: %s has %d tokens but %s has vocab_size %d (must be at least the tokenizer's)",
                         tokenizer, n, config, cfg.vocab_size);
    }
    if (o.seq_len > cfg.max_position_embeddings) {
        bpe_free(&tok);
        return cli_error("pretrain: --seq %d exceeds max_position_embeddings %d in %s", o.seq_len,
                         cfg.max_position_embeddings, config);
    }

    /* Token streams. */
    int *train_ids = NULL, *eval_ids = NULL;
    size_t n_train = 0, n_eval = 0;
    if (data) {
        char path[4096];
        snprintf(path, sizeof path, "%s/pretrain_train.txt", data);
        if ((rc = encode_file(&tok, path, &train_ids, &n_train))) goto out_tok;
        snprintf(path, sizeof path, "%s/pretrain_test.txt", data);
        if (cli_exists(path) && (rc = encode_file(&tok, path, &eval_ids, &n_eval))) goto out_tok;
    } else {
        int *all = NULL;
        size_t n = 0;
        if ((rc = encode_file(&tok, text, &all, &n))) goto out_tok;
        n_eval = n / 10;
        n_train = n - n_eval;
        train_ids = all;
        eval_ids = malloc((n_eval ? n_eval : 1) * sizeof(int));
        if (!eval_ids) {
            rc = cli_error("pretrain: out of memory");
            goto out_tok;
        }
        memcpy(eval_ids, all + n_train, n_eval * sizeof(int));
    }
    ts_token_stream train = {train_ids, n_train}, eval = {eval_ids, n_eval};
    if (n_eval < (size_t)o.seq_len + 1) {
        fprintf(stderr, "tinyseek: pretrain: note: held-out text too short (%zu tokens) for evaluation\n", n_eval);
    }

    ts_model m;
    if (ts_model_create(&m, &cfg, 1)) {
        rc = cli_lib_error();
        goto out_tok;
    }
    ts_model_init_weights(&m, init_seed);
    long long total, active;
    ts_model_count_params(&cfg, &total, &active);
    if (!quiet) {
        double unigram = ts_unigram_entropy(&train, cfg.vocab_size);
        printf("pretrain: %lld parameters, %zu training tokens, %zu held-out tokens, unigram entropy %.3f nats\n", total,
               n_train, n_eval, unigram);
        printf("pretrain: batch %d x %d tokens, %ld steps, lr %g, %d threads, matmul %s%s%s\n", o.batch_size,
               o.seq_len, o.steps, o.lr, ts_num_threads(), ts_matmul_backend(), fp8 ? ", linear layers in " : "",
               fp8 ? ts_precision_name(&o.precision) : "");
    }
    ts_train_result res;
    if (ts_pretrain(&m, &train, n_eval > (size_t)o.seq_len ? &eval : NULL, &o, &res)) {
        rc = cli_lib_error();
        if (res.diverged_step) rc = 3;
    } else {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("pretrain: %ld steps in %.1f s, %.0f tokens/s, final loss %.4f, held-out loss %.4f, peak memory %.0f MB -> %s\n",
               res.steps_run, res.seconds, res.tokens_per_s, res.final_loss, res.final_val_loss, ru.ru_maxrss / 1024.0,
               out);
        rc = 0;
    }
    ts_model_free(&m);
out_tok:
    free(train_ids);
    free(eval_ids);
    bpe_free(&tok);
    return rc;
}
