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
int cmd_distill(int argc, char **argv);       /**< logit distillation of a frozen teacher into a student (chapter 9) */
int cmd_dump(int argc, char **argv);      /**< random checkpoint, batch, logits, gradients, AdamW steps, for the PyTorch twin */
int cmd_bench(int argc, char **argv);     /**< training, prefill and generation speed, peak memory */

#endif
