/**
 * @file rollout.h
 * @brief A GRPO rollout batch (chapter 8): P prompts × G sampled completions,
 *        their rewards and the log-probabilities of the old policy and the
 *        reference model. Data only: it knows no model (train/grpo.h fills the
 *        log-probabilities with a forward and computes the loss).
 *
 * Sequence i = g·G + j (prompt g, completion j) is the prompt tokens, then the
 * completion tokens, then padding up to T positions. Every prompt starts at
 * position 0 (no left padding), so a completion's positions are the ones it
 * was sampled at. The model at position t predicts token t+1, so completion
 * token k of sequence i (at position p_i + k) is predicted at position
 * p_i + k − 1:
 *
 *     position   0 .. p−2 | p−1 ......... p+c−2 | p+c−1 .. T−1
 *     tokens     prompt (p tokens) | completion (c) | padding
 *     targets    TS_IGNORE         | tokens[t+1]    | TS_IGNORE
 *
 * The completion mask is `targets[t] != TS_IGNORE`: exactly c_i positions per
 * sequence. Per-position arrays (targets, old_logp, ref_logp) are indexed by
 * the predicting position t, as ts_batch's targets are.
 */
#ifndef TS_ROLLOUT_H
#define TS_ROLLOUT_H

#include "core/common.h"
#include "core/ops.h" /* TS_IGNORE */
#include "data/batch.h"

/** One step's rollouts. All arrays are owned (ts_rollout_alloc(), ts_rollout_free()). */
typedef struct {
    int P;               /**< prompts (groups) */
    int G;               /**< completions per prompt (group size) */
    int T;               /**< positions per sequence (prompt + completion + padding) */
    int *tokens;         /**< (P·G, T) prompt, completion, padding */
    int *targets;        /**< (P·G, T) the next token at completion positions, TS_IGNORE elsewhere */
    int *prompt_len;     /**< (P·G) p_i ≥ 1 */
    int *completion_len; /**< (P·G) c_i ≥ 1: the |o_i| of the objective */
    float *rewards;      /**< (P·G) r_i, given (the rule rewards of a later session) */
    double *old_logp;    /**< (P·G, T) log π_old(targets[t]) at completion positions (0 elsewhere), in
                              double as the loss computes log π_θ, so equal weights give ρ = 1 exactly */
    double *ref_logp;    /**< (P·G, T) log π_ref(targets[t]), or NULL: no reference (β = 0) */
    int has_old;         /**< 0: π_old is the policy being trained (the first of μ updates), so ρ ≡ 1
                              exactly and old_logp is not read; 1: old_logp holds π_old's log-probs */
    double *token_adv;   /**< (P·G, T) per-token advantages (PPO's, from a value head), or NULL: every token
                              of completion i gets the group advantage of its reward (GRPO); owned, freed
                              with the rollout, not allocated by ts_rollout_alloc() */
} ts_rollout;

/**
 * @brief Allocate a rollout batch of P groups of G sequences of T positions,
 *        with a reference log-prob buffer when @p with_ref (β > 0). Tokens are
 *        0, targets TS_IGNORE, rewards 0 and has_old 0 until filled.
 */
ts_status ts_rollout_alloc(ts_rollout *r, int P, int G, int T, int with_ref);

/** @brief Free a rollout batch (safe on a zeroed or already freed one). */
void ts_rollout_free(ts_rollout *r);

/**
 * @brief Set sequence @p i (= g·G + j) to @p prompt (p ≥ 1 tokens) followed by
 *        @p completion (c ≥ 1 tokens), padded with @p pad_id to T, its targets
 *        (the completion mask) and its reward. p + c must fit in T; the reward
 *        must be finite. Token ids are not checked against a vocabulary here
 *        (data knows no model): the forward refuses one outside it.
 */
ts_status ts_rollout_set(ts_rollout *r, int i, const int *prompt, int p, const int *completion, int c, float reward,
                         int pad_id);

/** @brief Completion tokens in the batch: Σ_i c_i. */
long ts_rollout_tokens(const ts_rollout *r);

/**
 * @brief Copy the rollout's tokens and targets into a training batch (B = P·G
 *        rows of T; weights, if the batch has them, set to 1): what a GRPO
 *        batch source hands the training loop, whose loss then reads the
 *        rest of the rollout (train/grpo.h).
 */
ts_status ts_rollout_to_batch(const ts_rollout *r, ts_batch *out);

#endif
