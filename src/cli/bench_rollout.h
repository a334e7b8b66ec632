/**
 * @file bench_rollout.h
 * @brief `tinyseek bench --rollout N`: the post-training half of the
 *        benchmark (DESIGN.md section 6), on the library's own code paths.
 *
 * Post-training is bound by sampling: a GRPO step first generates P·G
 * completions, then takes one optimizer step on them. This measures both:
 *   - rollouts: N sequences sampled at once through the batched KV cache
 *     (ts_gen_run(): one prefill of the prompt, its cache copied to the N
 *     rows, then one ts_model_decode() per new token for all N), temperature 1,
 *     no eos or stop id, so every sequence writes exactly the new tokens asked
 *     for and the PyTorch twin can do the same work; tokens/s = N·new / time;
 *   - a GRPO step on that rollout batch, as the training loop takes it
 *     (train/grpo_train.c): the frozen reference's log-probs (β > 0), zero the
 *     gradients, ts_grpo_step() (policy forward, the clipped-ratio loss with the
 *     k3 KL, backward), the gradient-norm clip, AdamW; seconds per step.
 * Rewards are uniform in [0,1) per completion (seeded), so no group has zero
 * variance and every step moves the weights.
 */
#ifndef TS_BENCH_ROLLOUT_H
#define TS_BENCH_ROLLOUT_H

#include "model/model.h"

/** What to time. */
typedef struct {
    int n;          /**< sequences sampled together (the batch of the KV cache) */
    int prompt;     /**< prompt tokens (one prompt, shared by the n sequences) */
    int new_tokens; /**< tokens each sequence generates (nothing stops it early) */
    int group;      /**< G: completions per GRPO group (divides n) */
    int reps;       /**< timed rollouts (median), after one untimed */
    int steps;      /**< timed GRPO steps (median), after one untimed */
    float beta;     /**< the KL weight: > 0 times the reference model's forward too */
    uint64_t seed;  /**< sampling streams and rewards */
} bench_rollout_opts;

/** What it measured. */
typedef struct {
    double tok_s;        /**< generated tokens per second of a whole rollout (median) */
    double cpu_util;     /**< process CPU time / wall time over the timed rollouts (= threads when nothing else runs) */
    long tokens;         /**< tokens one rollout generated: n·new_tokens */
    double step_s;       /**< seconds per GRPO step (median) */
    double step_cpu_util; /**< process CPU time / wall time over the timed GRPO steps */
    double grad_norm;    /**< the first step's gradient norm before clipping (from the saved weights: the twin's first) */
    double max_dw;       /**< largest |Δθ| over all the steps (> 0: the steps moved the weights) */
    long long checksum;  /**< Σ_i tokens[i]·(i mod 1000 + 1) over the rollout's (n, prompt + new) tokens */
} bench_rollout_result;

/**
 * @brief Time rollouts and GRPO steps of @p m (a TS_MODEL_TRAIN model) on
 * @p prompt (o->prompt ids). With @p out, writes the rollout batch the steps
 * trained on to out/bench_rollout.safetensors (prompt, tokens, targets,
 * rewards; metadata group, beta) for the twin's same steps. The weights and
 * AdamW's moments are restored afterwards.
 * @return TS_OK; TS_ERR_ARG when o->group does not divide o->n; TS_ERR_NOMEM; an I/O error.
 */
ts_status bench_rollout(ts_model *m, const int *prompt, const bench_rollout_opts *o, const char *out,
                        bench_rollout_result *res);

#endif
