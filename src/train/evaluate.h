/**
 * @file evaluate.h
 * @brief The evaluation harness every post-training chapter scores with
 *        (chapter 7): greedy pass\@1, sampled pass\@1, unbiased pass\@k, maj\@k,
 *        format rate and response length, by difficulty; and rejection
 *        sampling, which keeps the right, clean samples as SFT pairs.
 *
 * Sampling goes through the batched KV cache (model/decode.c): a group of
 * problems is prefilled once each, the prompt's cache rows are copied to the
 * k sequences that sample it, and every unfinished sequence of the group
 * advances one token per ts_model_decode() call. Each sequence draws from its
 * own RNG stream, seeded from (seed, problem, sample), so the samples do not
 * depend on how many sequences run at once.
 */
#ifndef TS_EVALUATE_H
#define TS_EVALUATE_H

#include "data/answer.h"
#include "data/bpe.h"
#include "data/chat.h"
#include "data/sft_batch.h"
#include "model/model.h"

/** How to evaluate. */
typedef struct {
    ts_template tmpl;    /**< the chat template the prompts are rendered with */
    int greedy;          /**< 1: one greedy completion per problem (greedy pass\@1) */
    int n_samples;       /**< k sampled completions per problem (0 = none) */
    float temperature;   /**< sampling temperature (> 0) */
    int max_new;         /**< most tokens generated per completion */
    int batch;           /**< most sequences decoded at once */
    uint64_t seed;       /**< sampling seed */
    int quiet;           /**< no progress line */
} ts_eval_opts;

/** @brief Defaults: r1 template, greedy, 8 samples at temperature 1, 64 new tokens, 64 sequences at once. */
ts_eval_opts ts_eval_opts_default(void);

/** How one problem fared. */
typedef struct {
    int greedy_correct;  /**< the greedy completion's answer is right */
    int greedy_format;   /**< ... and its format clean */
    int greedy_len;      /**< its length in tokens */
    int n;               /**< samples drawn */
    int correct;         /**< c: samples with the right answer */
    int clean;           /**< samples whose format is clean */
    int maj_correct;     /**< the majority answer of the n samples is right */
    long len_sum;        /**< tokens over the n samples */
} ts_eval_problem;

/**
 * Called for every sampled completion (not the greedy ones): @p response is
 * the template's response prefix followed by the generated text (without
 * `<|eos|>`), as an SFT pair's response would be written.
 */
typedef ts_status (*ts_eval_sample_fn)(void *ctx, int problem, int sample, const char *response,
                                       const ts_answer_score *score);

/**
 * @brief Generate and score: for each of the @p problems (prompt + answer),
 *        a greedy completion (if o->greedy) and o->n_samples samples.
 * @param m     the model (frozen is enough)
 * @param tok   its tokenizer
 * @param problems  prompts with answers (and difficulties)
 * @param o     how to evaluate
 * @param out   (problems->n) per-problem results
 * @param fn    called for each sample (may be NULL)
 * @param ctx   passed to @p fn
 */
ts_status ts_evaluate(ts_model *m, const bpe_tokenizer *tok, const ts_examples *problems, const ts_eval_opts *o,
                      ts_eval_problem *out, ts_eval_sample_fn fn, void *ctx);

/**
 * @brief Write the summary: one CSV row (and one JSON object) per difficulty
 *        and one for all problems ("all"): problems, greedy_pass1,
 *        greedy_format, pass1 (mean c/n), format_rate, mean_len, maj_at_n and
 *        pass_at_K for K = 1, 2, 4, ... up to n and n itself. Either path may be NULL.
 * @param csv_path   CSV file to write, or NULL
 * @param json_path  JSON file to write, or NULL
 * @param label  written in a `model` column / field (e.g. "sft")
 * @param problems   the problems evaluated (their difficulties group the rows)
 * @param res        ts_evaluate()'s per-problem results
 * @param o          the options it ran with
 */
ts_status ts_eval_write(const char *csv_path, const char *json_path, const char *label, const ts_examples *problems,
                        const ts_eval_problem *res, const ts_eval_opts *o);

#endif
