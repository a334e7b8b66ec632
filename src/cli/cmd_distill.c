/**
 * @file cmd_distill.c
 * @brief `tinyseek distill`: logit distillation of a frozen teacher into a
 *        student on templated (prompt, response) pairs, loss on the response
 *        tokens only (chapter 9; src/train/distill.h).
 *
 * The student starts from a checkpoint (--init) or from fresh weights of a
 * config (--config, --init-seed). Teacher and student must share the
 * tokenizer: the teacher's tokenizer.json is the run's, and a student
 * checkpoint (or a resumed run) whose tokenizer differs is refused with one
 * line. The teacher is loaded frozen: weights and a forward, no gradients, no
 * AdamW moments, no backward scratch.
 *
 * The training-loop flags are the shared table of pretrain, sft and grpo
 * (CLI_TRAIN_FLAGS, cli/cli.h): same names, defaults and ranges.
 *
 * Exit status: 0 done; 2 bad input (one line naming the file, field or flag);
 * 3 the training diverged (see `tinyseek pretrain`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "data/bpe.h"
#include "model/checkpoint.h"
#include "train/distill.h"

int cmd_distill(int argc, char **argv) {
    ts_train_opts o = ts_train_opts_default();
    o.batch_size = 16;
    o.steps = 200;
    o.warmup = 10;
    o.lr = 1e-3f;
    o.min_lr = 1e-4f;
    o.eval_every = 50;
    ts_kd_opts kd = ts_kd_opts_default();
    const char *teacher_dir = NULL, *init = NULL, *config = NULL, *data = NULL, *train_path = NULL, *test_path = NULL,
               *out = NULL, *metrics = NULL, *tmpl_name = "r1";
    int eval_pairs = 200, reverse = 0;
    uint64_t init_seed = 1;
    cli_train_flags tf = {.wd = o.adamw.weight_decay};
    cli_opt opts[] = {
        {"teacher", OPT_STR, &teacher_dir, "the teacher's checkpoint folder (loaded frozen: weights and a forward)", 1, 0},
        {"init", OPT_STR, &init, "the student's checkpoint folder to start from", 1, 0},
        {"config", OPT_STR, &config, "or: the student's config.json, fresh weights (--init-seed)", 1, 0},
        {"init-seed", OPT_U64, &init_seed, "weight-initialisation seed of a --config student", 1, 0},
        {"data", OPT_STR, &data, "folder written by `tinyseek data` (uses sft_train.jsonl / sft_test.jsonl)", 1, 0},
        {"train", OPT_STR, &train_path, "JSONL of {\"prompt\", \"response\"} pairs instead of --data", 1, 0},
        {"test", OPT_STR, &test_path, "JSONL of held-out pairs (default: --data's sft_test.jsonl)", 1, 0},
        {"template", OPT_STR, &tmpl_name, "chat template: r1, r1-zero or question (the bare question)", 1, 0},
        {"out", OPT_STR, &out, "checkpoint folder to write (the student)", 1, 0},
        {"metrics", OPT_STR, &metrics, "CSV file, one row per step (default OUT/metrics.csv)", 1, 0},
        {"alpha", OPT_FLOAT, &kd.alpha, "weight of the cross-entropy on the data; 1-alpha weighs T^2*KL", 0, 1},
        {"temperature", OPT_FLOAT, &kd.temperature, "temperature T of both soft distributions", 1e-3, 1e3},
        {"reverse-kl", OPT_FLAG, &reverse, "KL(p_student || p_teacher) (mode-seeking) instead of KL(p_teacher || p_student)", 1, 0},
        CLI_TRAIN_FLAGS(o, tf),
        {"batch", OPT_INT, &o.batch_size, "pairs per step (B)", 1, 4096},
        {"eval-pairs", OPT_INT, &eval_pairs, "held-out pairs per evaluation (0 = all)", 0, 1 << 30},
    };
    int rc = cli_parse("distill",
                       "--teacher DIR (--init DIR | --config F) (--data DIR | --train F [--test F]) --out DIR [flags]\n"
                       "exit status: 0 done, 2 bad input, 3 diverged (a loss or gradient became nan/inf)",
                       argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    cli_train_apply(&o, &tf);
    int resume = tf.resume, quiet = tf.quiet;
    kd.reverse = reverse;
    ts_template tmpl;
    if (ts_template_parse(tmpl_name, &tmpl)) return cli_lib_error();
    if (!teacher_dir) return cli_error("distill: --teacher DIR is required");
    if (!out) return cli_error("distill: --out is required");
    if (init && config) return cli_error("distill: give --init DIR or --config F for the student, not both");
    if (!init && !config && !resume)
        return cli_error("distill: the student needs --init DIR or --config F (or --resume to continue a run)");
    if (!data == !train_path) return cli_error("distill: give exactly one of --data DIR or --train FILE");
    if ((rc = cli_train_check("distill", &o))) return rc;
    char train_buf[4096], test_buf[4096], metrics_buf[4096], tok_path[4096], student_tok[4096];
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
    // the teacher's tokenizer is the run's; a student checkpoint or a resumed run must hold the same one
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", teacher_dir);
    const char *student_from = resume ? out : init;
    if (student_from) snprintf(student_tok, sizeof student_tok, "%s/tokenizer.json", student_from);
    o.out_dir = out;
    o.metrics_path = metrics;
    o.tokenizer_json = tok_path;

    ts_model teacher, student;
    memset(&teacher, 0, sizeof teacher);
    memset(&student, 0, sizeof student);
    bpe_tokenizer tok, stok;
    memset(&tok, 0, sizeof tok);
    memset(&stok, 0, sizeof stok);
    ts_examples train_set = {0}, test_set = {0};
    ts_sft_data train = {0}, test = {0};
    rc = 0;
    if (ts_checkpoint_load(&teacher, teacher_dir, TS_MODEL_FROZEN) || bpe_load(&tok, tok_path)) {
        rc = cli_lib_error();
        goto done;
    }
    if (student_from && (bpe_load(&stok, student_tok) ||
                         ts_distill_same_tokenizer(&tok, tok_path, &stok, student_tok))) {
        rc = cli_lib_error();
        goto done;
    }
    ts_status st;
    if (resume) {
        char cfg_path[4096];
        ts_config cfg;
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", out);
        st = ts_config_load(&cfg, cfg_path);
        if (!st) st = ts_model_create(&student, &cfg, TS_MODEL_TRAIN);
    } else if (init) {
        st = ts_checkpoint_load(&student, init, TS_MODEL_TRAIN);
    } else {
        ts_config cfg;
        st = ts_config_load(&cfg, config);
        if (!st) st = ts_model_create(&student, &cfg, TS_MODEL_TRAIN);
        if (!st) ts_model_init_weights(&student, init_seed);
    }
    if (st) {
        rc = cli_lib_error();
        goto done;
    }
    if (student.cfg.vocab_size != teacher.cfg.vocab_size) {
        rc = cli_error("distill: the student's vocab_size is %d, the teacher's (%s) %d: they must share the "
                       "tokenizer and the output layer's size", student.cfg.vocab_size, teacher_dir,
                       teacher.cfg.vocab_size);
        goto done;
    }
    if (tok.vocab_size > teacher.cfg.vocab_size) {
        rc = cli_error("distill: %s has %d tokens but the teacher's vocab_size is %d", tok_path, tok.vocab_size,
                       teacher.cfg.vocab_size);
        goto done;
    }
    int ctx_len = student.cfg.max_position_embeddings < teacher.cfg.max_position_embeddings
                      ? student.cfg.max_position_embeddings
                      : teacher.cfg.max_position_embeddings;
    if (ts_examples_load(&train_set, train_path, 1, 0) || (test_path && ts_examples_load(&test_set, test_path, 1, 0)) ||
        ts_sft_data_build(&train, &tok, tmpl, &train_set, ctx_len, train_path) ||
        (test_path && ts_sft_data_build(&test, &tok, tmpl, &test_set, ctx_len, test_path))) {
        rc = cli_lib_error();
        goto done;
    }
    if (!quiet) {
        long long t_total, s_total;
        ts_model_count_params(&teacher.cfg, &t_total, NULL);
        ts_model_count_params(&student.cfg, &s_total, NULL);
        long resp = 0;
        for (int i = 0; i < train.n; i++) resp += train.seq[i].n - train.seq[i].n_prompt;
        printf("distill: teacher %s, %lld parameters, frozen: %.2f MB of weights; no gradients or AdamW moments "
               "(%.2f MB not allocated) and no backward scratch\n",
               teacher_dir, t_total, teacher.params.numel * 4.0 / 1e6, teacher.params.numel * 12.0 / 1e6);
        printf("distill: student %s, %lld parameters (%s); alpha %g, temperature %g, %s KL\n",
               init ? init : resume ? out : config, s_total, init || resume ? "from its checkpoint" : "fresh weights",
               (double)kd.alpha, (double)kd.temperature, kd.reverse ? "reverse" : "forward");
        printf("distill: %d pairs (%ld response tokens, longest pair %d tokens, template %s), %d held-out pairs, "
               "batch %d, %ld steps, lr %g, %d threads\n",
               train.n, resp, train.max_len, ts_template_name(tmpl), test.n, o.batch_size, o.steps, o.lr,
               ts_num_threads());
    }
    ts_train_result res;
    if (ts_distill(&student, &teacher, &train, test_path ? &test : NULL, eval_pairs, &kd, &o, &res)) {
        rc = res.diverged_step ? 3 : 2;
        cli_lib_error();
    } else {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("distill: %ld steps in %.1f s, final loss %.4f, held-out response loss %.4f, teacher activations "
               "%.2f MB, peak memory %.0f MB -> %s\n",
               res.steps_run, res.seconds, res.final_loss, res.final_val_loss, teacher.arena.used / 1e6,
               ru.ru_maxrss / 1024.0, out);
    }
done:
    ts_sft_data_free(&train);
    ts_sft_data_free(&test);
    ts_examples_free(&train_set);
    ts_examples_free(&test_set);
    bpe_free(&tok);
    bpe_free(&stok);
    ts_model_free(&teacher);
    ts_model_free(&student);
    return rc;
}
