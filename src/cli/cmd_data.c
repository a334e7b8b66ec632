/**
 * @file cmd_data.c
 * @brief `tinyseek data`: write the toy arithmetic data sets (chapter 1).
 */
#include <stdio.h>

#include "cli/cli.h"
#include "core/common.h"
#include "data/tasks.h"

int cmd_data(int argc, char **argv) {
    const char *out = NULL, *ops = "add,sub";
    uint64_t seed = 1;
    int digits = 3, min_digits = 1;
    long n_train = 5000, n_test = 500;
    const cli_opt opts[] = {
        {"out", OPT_STR, &out, "folder to write the six files into (created if missing)", 1, 0},
        {"seed", OPT_U64, &seed, "random seed (the split does not depend on it)", 1, 0},
        {"digits", OPT_INT, &digits, "most digits per operand: the difficulty knob", 1, TASK_MAX_DIGITS},
        {"min-digits", OPT_INT, &min_digits, "fewest digits per operand (= --digits for exactly D)", 1, TASK_MAX_DIGITS},
        {"train", OPT_LONG, &n_train, "distinct training problems", 0, 10000000},
        {"test", OPT_LONG, &n_test, "distinct test problems", 0, 1000000},
        {"ops", OPT_STR, &ops, "operations, comma-separated: add, sub, mul", 1, 0},
    };
    int rc = cli_parse("data", "--out DIR [flags]", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0,
                       NULL);
    if (rc == 1) return 0;
    if (rc) return rc;
    if (!out || !out[0]) return cli_error("data: --out DIR is required (the folder to write the data sets into)");
    task_config cfg;
    task_config_default(&cfg);
    cfg.max_digits = digits;
    cfg.min_digits = min_digits;
    if (min_digits > digits)
        return cli_error("data: --min-digits must be at most --digits (%d), got %d", digits, min_digits);
    if (task_parse_ops(ops, &cfg.ops)) return cli_error("data: --ops: %s", ts_last_error());
    task_dataset_stats stats;
    double t0 = ts_now();
    if (task_write_datasets(out, &cfg, seed, (size_t)n_train, (size_t)n_test, &stats))
        return cli_error("data: %s", ts_last_error());
    printf("data: %zu train + %zu test problems (", stats.n_train, stats.n_test);
    const char *sep = "";
    for (int k = 0; k < TASK_N_OPS; k++)
        if (cfg.ops & TASK_OP_BIT(k)) {
            printf("%s%s %zu", sep, task_op_name((task_op)k), stats.n_per_op[k]);
            sep = ", ";
        }
    printf("; %d-%d digits; seed %llu) in %.2f s -> %s/{pretrain,sft,rl}_{train,test}.*\n", min_digits, digits,
           (unsigned long long)seed, ts_now() - t0, out);
    return 0;
}
