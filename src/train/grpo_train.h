/**
 * @file grpo_train.h
 * @brief GRPO training (chapter 8; DeepSeekMath §4, R1 §2.2): rollouts sampled
 *        from the policy, rule rewards, and the GRPO loss (train/grpo.h), run
 *        by the shared training loop (train/loop.h).
 *
 * One rollout batch serves μ optimizer steps:
 *
 *     every μ-th step (the batch source, ts_grpo_rollout()):
 *         P prompts drawn from the RL set; G completions each, all P·G sampled at
 *         once through the batched KV cache (model/sampling.h) from the policy,
 *         which is π_old for the next μ steps
 *         rule rewards (train/reward.h); π_ref's log-probs when β > 0
 *     every step (the loss):
 *         forward of the policy on the P·G sequences, the GRPO loss and its
 *         gradient; on the first of the μ steps π_θ = π_old, so its log-probs
 *         are π_old's: recorded there (no extra forward) for the μ−1 steps after
 *
 * A completion ends at `<|eos|>` (kept: ending is an action the policy took
 * and is trained like any token), at `</answer>` (nothing after the answer is
 * generated, as in evaluation), or at max_new tokens. At a temperature τ ≠ 1
 * the samples come from softmax(z/τ) while the ratio and the KL use the
 * policy itself (τ = 1): the samples are then slightly off-policy.
 *
 * π_old's log-probs come from the training forward, not from the sampler's
 * decode path (whose absorbed attention rounds differently): so ρ = 1 exactly
 * on the first step, and μ = 1 is REINFORCE with a group baseline bit for bit.
 *
 * Determinism: the prompts of rollout n come from one RNG stream (the data
 * order, saved with the training state); completion j of prompt g samples from
 * its own stream seeded from (seed, n, g, j), so it does not depend on how
 * many sequences decode together, and a resumed run samples what the
 * uninterrupted one would. A run resumes at a multiple of μ only (the rollout
 * of a cycle was sampled by weights that no longer exist).
 *
 * The baseline `--algo ppo` (DeepSeekMath §4.1's starting point, the critic GRPO
 * drops): a linear value head V(s_t) = w·h_t + b on the policy's last hidden
 * state (a shared trunk, not a second model), trained by the squared error to
 * the outcome reward; with γ = λ = 1 and the reward only at the end, GAE's
 * advantage is A_t = r − V(s_t), computed once per rollout batch (V_old), then
 * whitened over the batch's completion tokens; the policy term is the same
 * clipped objective with per-token advantages (rollout.h: token_adv),
 * token-level normalisation. The head is not saved with the checkpoint.
 *
 * The baseline `--algo rft` (DeepSeekMath §5.2's online RFT) uses the same
 * rollouts: it keeps each step's right, clean completions and takes a
 * supervised step on them (mean cross-entropy over their tokens), no
 * advantage, no ratio, no reference.
 */
#ifndef TS_GRPO_TRAIN_H
#define TS_GRPO_TRAIN_H

#include "data/bpe.h"
#include "data/chat.h"
#include "data/rollout.h"
#include "data/sft_batch.h"
#include "model/model.h"
#include "model/sampling.h"
#include "train/grpo.h"
#include "train/loop.h"
#include "train/reward.h"

/** What the loss does with a rollout batch. */
typedef enum {
    TS_ALGO_GRPO = 0, /**< group advantages, the clipped ratio, the KL (train/grpo.h) */
    TS_ALGO_RFT = 1,  /**< online rejection-sampling fine-tuning: SFT on the right, clean completions */
    TS_ALGO_PPO = 2   /**< PPO with a learned value head: per-token advantages r − V(s_t) (GAE, γ = λ = 1) */
} ts_rl_algo;

/** A reward in place of the rule rewards (a test's, another task's): the reward of @p generated for problem @p e. */
typedef float (*ts_reward_fn)(void *ctx, const char *generated, const ts_example *e);

/** How to train; see ts_grpo_train_opts_default(). */
typedef struct {
    ts_rl_algo algo;        /**< GRPO or the RFT baseline */
    ts_template tmpl;       /**< the chat template prompts are rendered with */
    int P;                  /**< prompts per rollout batch */
    int G;                  /**< completions per prompt (the group) */
    int mu;                 /**< optimizer steps per rollout batch (μ ≥ 1) */
    int max_new;            /**< most tokens per completion */
    float temperature;      /**< sampling temperature (1: the policy itself, as R1-Zero) */
    uint64_t sample_seed;   /**< seeds every completion's stream */
    ts_grpo_opts grpo;      /**< the loss's settings (β, clip, normalisation, ...) */
    ts_reward_opts reward;  /**< the rule rewards' weights */
    ts_reward_fn reward_fn; /**< NULL: the rule rewards; else this pays (accuracy and format are still logged) */
    void *reward_ctx;       /**< passed to reward_fn */
    float value_coef;       /**< PPO: weight of the value loss (0.5) */
    float value_lr;         /**< PPO: the value head's Adam learning rate (1e-3) */
    int eval_problems;      /**< held-out problems for the greedy pass\@1 (0 = none) */
    const char *eval_path;  /**< CSV of the evaluations: step, greedy_pass1, greedy_format, mean_len (NULL = none) */
} ts_grpo_train_opts;

/** @brief G 8, P 8, μ 1, 96 new tokens, temperature 1, r1 template, DeepSeekMath's loss settings, β 0.04. */
ts_grpo_train_opts ts_grpo_train_opts_default(void);

/** The prompts of the RL set, rendered and tokenized once. */
typedef struct {
    const ts_examples *set; /**< the problems (prompt, answer) */
    int **ids;              /**< (n) the rendered prompt's ids */
    int *len;               /**< (n) their lengths */
    int n;                  /**< problems */
    int longest;            /**< longest prompt in tokens */
} ts_rl_prompts;

/** @brief Render and tokenize every prompt of @p set with template @p t. */
ts_status ts_rl_prompts_build(ts_rl_prompts *p, const bpe_tokenizer *tok, ts_template t, const ts_examples *set);

/** @brief Free them. */
void ts_rl_prompts_free(ts_rl_prompts *p);

/** What one rollout batch held, beyond the rollout itself. */
typedef struct {
    double accuracy;    /**< completions whose answer is right */
    double format_rate; /**< completions that earned the format reward */
    double seconds;     /**< sampling time */
    int *problem;       /**< (P) which problem each group answers */
    int *correct;       /**< (P·G) 1 where the accuracy reward was paid */
    int *clean;         /**< (P·G) 1 where the format reward was paid */
} ts_rollout_info;

/** The sampler of rollout batches: the policy, the prompts, the cache. */
typedef struct {
    ts_model *policy;              /**< the model sampled from (π_old at sampling time) */
    const bpe_tokenizer *tok;      /**< renders and tokenizes the prompts, decodes the completions */
    const ts_rl_prompts *prompts;  /**< the RL problems, tokenized with their template */
    const ts_grpo_train_opts *o;   /**< G, P, max_new, temperature, template, seeds */
    ts_gen_batch gen;              /**< P·G sequences */
    ts_rollout_info info;          /**< what the last rollout batch scored, and its time */
} ts_rollout_sampler;

/** @brief Buffers for P·G sequences of the longest prompt plus max_new tokens. */
ts_status ts_rollout_sampler_create(ts_rollout_sampler *s, ts_model *policy, const bpe_tokenizer *tok,
                                    const ts_rl_prompts *prompts, const ts_grpo_train_opts *o);

/** @brief Free it. */
void ts_rollout_sampler_free(ts_rollout_sampler *s);

/**
 * @brief Rollout batch number @p index: P problems drawn from @p order (without
 *        repeats within the batch), G completions each sampled from the
 *        policy, rewarded; @p r is (re)allocated to the longest sequence,
 *        with reference log-prob space when o->grpo.beta > 0 (not filled here),
 *        has_old = 0. s->info gets accuracy, format rate and time.
 */
ts_status ts_grpo_rollout(ts_rollout_sampler *s, ts_rng *order, long index, ts_rollout *r);

/**
 * @brief PPO's value loss on a rollout: V = w·h + b at every completion
 *        position (where the model predicts a completion token: the state
 *        before it), L = (coef/2n) Σ_t (V_t − r_i)² over the n completion
 *        tokens, r_i the completion's reward (the return, γ = 1).
 * @param values   (N = P·G·T) out: V at every position (NaN-free; 0 weight outside completions)
 * @param d_hidden (N, C) += dL/dh, or NULL
 * @param grad     (C+1) += dL/d(w, b), or NULL
 * @param hidden   (N, C) the policy's last hidden state (m->hidden)
 * @param head     (C+1) w then b
 * @param C        hidden size
 * @param r        the rollout: its layout, completion masks and rewards
 * @param coef     the value loss's weight (`--value-coef`)
 * @return L
 */
double ts_value_loss(float *values, float *d_hidden, float *grad, const float *hidden, const float *head, int C,
                     const ts_rollout *r, float coef);

/**
 * @brief Train @p policy (created with the optimizer moments, weights loaded)
 *        by GRPO (or RFT) on @p prompts, with @p ref (frozen, may be NULL when
 *        β = 0 or RFT) as the reference; @p eval (may be NULL) gives the
 *        held-out greedy pass\@1 at step 0 and every loop->eval_every steps.
 *        loop->batch_size and seq_len are set from P·G and the lengths. The
 *        metrics CSV has the loop's columns, then reward, accuracy,
 *        format_rate, kl, clip_frac, zero_var_frac, completion_len, entropy,
 *        rollout_s, value_loss (NaN but for PPO).
 */
ts_status ts_grpo_train(ts_model *policy, ts_model *ref, const bpe_tokenizer *tok, const ts_rl_prompts *prompts,
                        const ts_examples *eval, const ts_grpo_train_opts *o, const ts_train_opts *loop,
                        ts_train_result *result);

#endif
