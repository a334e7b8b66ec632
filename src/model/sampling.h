/**
 * @file sampling.h
 * @brief Batched sampling through one KV cache (chapters 7 and 8): k
 *        completions for each of n prompts, all n·k sequences advancing one
 *        token per ts_model_decode() call. The evaluation harness
 *        (train/evaluate.c) and GRPO's rollouts (train/grpo_train.c) both
 *        generate with it.
 *
 * Each prompt is prefilled once; its cache rows and last logits are copied to
 * the k sequences that sample it (sequence b = i·k + j samples prompt i). Every
 * sequence draws from its own RNG stream, seeded by the caller in rng[b], so a
 * sequence's tokens depend on its seed alone, not on how many run beside it.
 * Knows token ids only: the caller renders and tokenizes the prompts.
 */
#ifndef TS_SAMPLING_H
#define TS_SAMPLING_H

#include "model/model.h"

/** When a sequence stops, and what is written. */
typedef struct {
    ts_sampler sampler; /**< temperature 0 = greedy */
    int max_new;        /**< most tokens generated per sequence */
    int eos_id;         /**< `<|eos|>`: ends the sequence */
    int keep_eos;       /**< 1: the eos is written into gen (GRPO: it is an action the policy took); 0: dropped */
    int stop_id;        /**< a second id that ends the sequence and is kept (`</answer>`), or -1 */
    int n_valid;        /**< ids ≥ n_valid are never sampled (the embedding's padding rows beyond the tokenizer) */
} ts_gen_opts;

/** The buffers of one batch of sequences. */
typedef struct {
    int B;           /**< sequences */
    int max_T;       /**< cache positions per sequence (prompt + generated) */
    int max_new;     /**< columns of gen */
    ts_kvcache cache; /**< the batched KV cache, B sequences of max_T positions */
    float *logits;   /**< (B,V) next-token logits */
    int *gen;        /**< (B,max_new) generated ids */
    int *len;        /**< (B) ids in gen */
    int *active;     /**< (B) still generating */
    int *next;       /**< (B) the id each reads next */
    ts_rng *rng;     /**< (B) one stream per sequence: seed these before ts_gen_run() */
} ts_gen_batch;

/** @brief Allocate buffers for B sequences of up to max_T positions, max_new of them generated. */
ts_status ts_gen_create(ts_gen_batch *g, const ts_model *m, int B, int max_T, int max_new);

/** @brief Free them (safe on a zeroed or freed batch). */
void ts_gen_free(ts_gen_batch *g);

/**
 * @brief Sample k completions of each of the n prompts (n·k ≤ g->B): sequence
 * b = i·k + j gets prompt i, and its tokens in g->gen + b·max_new, g->len[b]
 * of them. A sequence stops after eos (written only with o->keep_eos), after
 * o->stop_id (written), at o->max_new tokens, or when the cache is full.
 * @return TS_OK; TS_ERR_RANGE if a prompt (plus one token) does not fit in max_T
 *         or holds an id outside the vocabulary; TS_ERR_ARG for bad settings.
 */
ts_status ts_gen_run(ts_gen_batch *g, ts_model *m, const int *const *prompts, const int *prompt_len, int n, int k,
                     const ts_gen_opts *o);

#endif
