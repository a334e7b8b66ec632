/**
 * @file cli.h
 * @brief The `tinyseek` command: subcommands and a small flag parser.
 *
 * Every subcommand is `int cmd_NAME(int argc, char **argv)` with argv[0] the
 * subcommand's name. It returns the exit status: 0 on success, 2 on bad input
 * (after printing exactly one line naming what is wrong, via cli_error()).
 */
#ifndef TS_CLI_H
#define TS_CLI_H

#include <stdint.h>

#include "train/loop.h"

/** Kinds of flag value. */
typedef enum {
    OPT_INT,    /**< int, range-checked against min/max */
    OPT_LONG,   /**< long, range-checked */
    OPT_U64,    /**< uint64_t (seeds) */
    OPT_FLOAT,  /**< float, range-checked */
    OPT_STR,    /**< const char * (points into argv) */
    OPT_FLAG    /**< int set to 1 when present; takes no value */
} cli_opt_type;

/** One flag a subcommand accepts. */
typedef struct {
    const char *name;   /**< without the leading dashes, e.g. "steps" for --steps */
    cli_opt_type type;  /**< value kind */
    void *dest;         /**< where the value goes (holds the default beforehand) */
    const char *help;   /**< one line for --help */
    double min;         /**< smallest allowed number (the range is ignored when min > max) */
    double max;         /**< largest allowed number */
} cli_opt;

/**
 * @brief Parse `--name value` / `--name=value` / `--flag` arguments.
 * Positional arguments (not starting with "--") are collected into
 * @p positional (up to @p max_positional, which may be 0).
 * On --help prints usage and returns 1; on a bad flag prints one line and returns 2;
 * otherwise returns 0 and sets *n_positional.
 */
int cli_parse(const char *cmd, const char *usage, int argc, char **argv, const cli_opt *opts,
              int n_opts, const char **positional, int max_positional, int *n_positional);

/** @brief Print "tinyseek: <message>" (printf-style) to stderr; returns 2. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** @brief Print "tinyseek: <ts_last_error()>" and return 2. */
int cli_lib_error(void);

/** 1 if @p path exists (a file or a folder). */
int cli_exists(const char *path);

/** The values of the shared training flags that do not go straight into ts_train_opts. */
typedef struct {
    float wd;    /**< --wd: AdamW's weight decay (the default: ts_train_opts' own) */
    int threads; /**< --threads (0 = OMP_NUM_THREADS or all cores) */
    int resume;  /**< --resume */
    int quiet;   /**< --quiet */
} cli_train_flags;

/**
 * The training-loop flags every trainer (pretrain, sft, grpo, distill) takes, as cli_opt
 * entries for a subcommand's table: the schedule (steps, lr, min-lr, warmup),
 * clipping and weight decay, evaluation and checkpoint periods, the data-order
 * seed, threads, resume, stop-after and quiet. @p o is a ts_train_opts, @p f a
 * cli_train_flags whose wd starts as o.adamw.weight_decay; after cli_parse(),
 * cli_train_apply() moves f into o.
 */
#define CLI_TRAIN_FLAGS(o, f)                                                                                           \
    {"steps", OPT_LONG, &(o).steps, "optimizer steps", 1, 1e9},                                                        \
        {"lr", OPT_FLOAT, &(o).lr, "peak learning rate", 0, 10},                                                       \
        {"min-lr", OPT_FLOAT, &(o).min_lr, "final learning rate (cosine)", 0, 10},                                     \
        {"warmup", OPT_LONG, &(o).warmup, "linear warmup steps", 0, 1e9},                                              \
        {"clip", OPT_FLOAT, &(o).grad_clip, "global gradient-norm clip (0 = off)", 0, 1e9},                            \
        {"wd", OPT_FLOAT, &(f).wd, "AdamW weight decay", 0, 10},                                                       \
        {"eval-every", OPT_LONG, &(o).eval_every, "held-out evaluation period (steps)", 0, 1e9},                       \
        {"save-every", OPT_LONG, &(o).save_every, "checkpoint period (steps, 0 = at the end)", 0, 1e9},                \
        {"seed", OPT_U64, &(o).seed, "data-order seed", 1, 0},                                                         \
        {"threads", OPT_INT, &(f).threads, "threads (0 = OMP_NUM_THREADS or all cores)", 0, 1024},                     \
        {"resume", OPT_FLAG, &(f).resume, "continue the run in --out exactly where it stopped", 1, 0},                 \
        {"stop-after", OPT_LONG, &(o).stop_after, "stop after this step as if interrupted (0 = no)", 0, 1e9},          \
        {"quiet", OPT_FLAG, &(f).quiet, "no progress line", 1, 0}

/** @brief After cli_parse(): set the thread count, and o's weight decay, resume and quiet from @p f. */
void cli_train_apply(ts_train_opts *o, const cli_train_flags *f);

/** @brief The schedule's one cross-flag rule: --warmup below --steps (when steps > 1); returns 0, or 2 after one line. */
int cli_train_check(const char *cmd, const ts_train_opts *o);

/* Subcommands (one file each in src/cli/). */
int cmd_data(int argc, char **argv);      /**< generate the toy task data sets (chapter 1) */
int cmd_tokenizer(int argc, char **argv); /**< train / encode / decode with the BPE tokenizer (chapter 1) */
int cmd_pretrain(int argc, char **argv);  /**< train a model on a token stream (chapter 2) */
int cmd_generate(int argc, char **argv);  /**< prefill + KV-cache decode (chapter 2) */
int cmd_logits(int argc, char **argv);    /**< write the logits of a sequence to .npy (chapter 2) */
int cmd_info(int argc, char **argv);      /**< parameter counts and KV-cache sizes of a config */
int cmd_convert_gqa(int argc, char **argv);  /**< mean-pool key/value heads into a GQA/MQA checkpoint (chapter 3) */
int cmd_bench_decode(int argc, char **argv); /**< decode tokens/s against context length, as CSV (chapter 3) */
int cmd_eval(int argc, char **argv);         /**< held-out loss at a context length, optionally with YaRN (chapter 4) */
int cmd_sft(int argc, char **argv);          /**< supervised fine-tuning, loss on the response tokens (chapter 7) */
int cmd_evaluate(int argc, char **argv);     /**< pass\@k, maj\@k, format rate by difficulty (chapter 7) */
int cmd_rejection_sample(int argc, char **argv); /**< right, clean samples as SFT pairs (chapter 7) */
int cmd_grpo(int argc, char **argv);         /**< GRPO (or the RFT baseline) with rule rewards (chapter 8) */
int cmd_distill(int argc, char **argv);       /**< logit distillation of a frozen teacher into a student (chapter 9) */
int cmd_dump(int argc, char **argv);      /**< random checkpoint, batch, logits, gradients, AdamW steps, for the PyTorch twin */
int cmd_bench(int argc, char **argv);     /**< training, prefill and generation speed, peak memory */

#endif
