/**
 * @file cmd_data.c
 * @brief `tinyseek data`: write the toy world's data sets (chapter 1).
 */
#include <stdio.h>

#include "cli/cli.h"
#include "core/common.h"
#include "data/tasks.h"

int cmd_data(int argc, char **argv) {
    const char *out = NULL, *ops = "add,sub";
    uint64_t seed = 1;
    task_world w;
    task_world_default(&w);
    int digits = w.max_digits, min_digits = w.min_digits, tagged = w.form_weight[TASK_FORM_TAGGED];
    long n_pre = (long)w.n_pretrain_train, n_pre_test = (long)w.n_pretrain_test, n_sft = (long)w.n_sft_train,
         n_sft_test = (long)w.n_sft_test, n_rl = (long)w.n_rl_train, n_test = (long)w.n_test;
    const cli_opt opts[] = {
        {"out", OPT_STR, &out, "folder to write the six files into (created if missing)", 1, 0},
        {"seed", OPT_U64, &seed, "random seed (which file a problem may go to does not depend on it)", 1, 0},
        {"digits", OPT_INT, &digits, "hardest difficulty: digits of the longer operand", 1, TASK_MAX_DIGITS},
        {"min-digits", OPT_INT, &min_digits, "easiest difficulty in SFT, RL and test (pretraining starts at 1)", 1,
         TASK_MAX_DIGITS},
        {"ops", OPT_STR, &ops, "operations, comma-separated: add, sub, mul", 1, 0},
        {"pretrain", OPT_LONG, &n_pre, "lines of pretraining text (pretrain_train.txt), one problem each", 0, 10000000},
        {"pretrain-test", OPT_LONG, &n_pre_test, "lines of held-out pretraining text (pretrain_test.txt)", 0, 1000000},
        {"sft", OPT_LONG, &n_sft, "cold-start SFT pairs (sft_train.jsonl)", 0, 1000000},
        {"sft-test", OPT_LONG, &n_sft_test, "held-out SFT pairs (sft_test.jsonl)", 0, 1000000},
        {"rl", OPT_LONG, &n_rl, "RL prompts (rl_train.jsonl)", 0, 10000000},
        {"test", OPT_LONG, &n_test, "test problems per difficulty (test.jsonl)", 0, 1000000},
        {"tagged-weight", OPT_INT, &tagged,
         "weight of the think/answer format among the pretraining forms (others: equation 25, question 10, notes 20, "
         "prose 25, story 20; default 0 = absent)",
         0, 1000000},
    };
    int rc = cli_parse("data", "--out DIR [flags]", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0,
                       NULL);
    if (rc == 1) return 0;
    if (rc) return rc;
    if (!out || !out[0]) return cli_error("data: --out DIR is required (the folder to write the data sets into)");
    if (min_digits > digits)
        return cli_error("data: --min-digits must be at most --digits (%d), got %d", digits, min_digits);
    w.max_digits = digits;
    w.min_digits = min_digits;
    w.n_pretrain_train = (size_t)n_pre;
    w.n_pretrain_test = (size_t)n_pre_test;
    w.n_sft_train = (size_t)n_sft;
    w.n_sft_test = (size_t)n_sft_test;
    w.n_rl_train = (size_t)n_rl;
    w.n_test = (size_t)n_test;
    w.form_weight[TASK_FORM_TAGGED] = tagged;
    if (task_parse_ops(ops, &w.ops)) return cli_error("data: --ops: %s", ts_last_error());
    task_world_stats stats;
    double t0 = ts_now();
    if (task_write_world(out, &w, seed, &stats)) return cli_error("data: %s", ts_last_error());
    printf("data: pretraining text %zu + %zu lines (%zu + %zu bytes), SFT %zu + %zu pairs, RL %zu prompts, test %zu "
           "problems (%zu per difficulty %d-%d); %s; seed %llu; %.2f s -> %s\n",
           stats.lines[TASK_TRAIN], stats.lines[TASK_PRETRAIN_TEST], stats.bytes[TASK_TRAIN],
           stats.bytes[TASK_PRETRAIN_TEST], stats.lines[TASK_SFT_TRAIN], stats.lines[TASK_SFT_TEST],
           stats.lines[TASK_RL_TRAIN], stats.lines[TASK_TEST], w.n_test, min_digits, digits, ops,
           (unsigned long long)seed, ts_now() - t0, out);
    return 0;
}
