/**
 * @file grpo.h
 * @brief Group Relative Policy Optimization (DeepSeekMath eq. 3; R1 §2.2) on
 *        given rollouts (data/rollout.h): group advantages, the clipped
 *        objective with the k3 KL to a reference, its gradient through the
 *        open model, and the loss the training loop takes (train/loop.h).
 *
 * For prompt q with G completions o_1..o_G sampled from π_old and rewarded r_i:
 *
 *     A_i  = (r_i − mean_j r_j) / (std_j r_j + ε)       (outcome supervision: every token of o_i gets A_i)
 *     ρ_it = π_θ(o_it | q, o_i<t) / π_old(o_it | ...)
 *     J_it = min(ρ_it·A_i, clip(ρ_it, 1−ε_low, 1+ε_high)·A_i) − β·k3_it
 *     k3_it = π_ref/π_θ − log(π_ref/π_θ) − 1             (≥ 0, = 0 iff π_ref = π_θ on that token)
 *     L    = −Σ_i Σ_t J_it / D_i                          (D_i: the normalisation, ts_grpo_norm)
 *
 * std is the *population* standard deviation of the G rewards (divide by G,
 * not G−1): the advantages of a group then have mean 0 and mean square
 * var/(std+ε)² ≤ 1, i.e. they are the rewards standardised, for any G ≥ 2,
 * and a group of 1 is simply zero-variance. (TRL and verl call torch.std,
 * the sample std; their advantages are √((G−1)/G) times these, a constant
 * factor Adam's step largely removes.) Dr. GRPO drops the division
 * (scale_by_std = 0): A_i = r_i − mean r. A group whose rewards are all equal
 * carries no signal: its advantages are exactly 0; with drop_zero_var it
 * leaves the batch altogether (no KL term, not counted by the normalisation).
 *
 * The gradient, per token. Write ℓ = log π_θ(o_it) (the completion token's
 * log-probability, a function of the logits z of its position). Then
 * ρ = exp(ℓ − ℓ_old), so dρ/dℓ = ρ, and with u = log(π_ref/π_θ) = ℓ_ref − ℓ,
 * k3 = e^u − u − 1, dk3/dℓ = −e^u + 1. The min picks the clipped branch, whose
 * value does not depend on θ, exactly when the clip is active: A > 0 and
 * ρ > 1+ε_high, or A < 0 and ρ < 1−ε_low. So
 *
 *     dJ/dℓ = A·ρ·[not clipped] + β·(π_ref/π_θ − 1)
 *     dL/dℓ = −A·ρ·[not clipped] + β·(1 − π_ref/π_θ)      (per token, before 1/D_i)
 *
 * and through the softmax, dℓ/dz = onehot − p, so
 *
 *     dL/dz = −(dJ/dℓ)·(onehot − p) = (dJ/dℓ)·(p − onehot).
 *
 * Cross-entropy's gradient is d(−log p_y)/dz = p − onehot, so the GRPO update is
 * ts_loss_crossentropy() with the per-token weight w_it = (dJ/dℓ)_it / D_i:
 * the model needs nothing beyond a weighted cross-entropy backward. (Note
 * the sign: the weight is +A·ρ/D, not −A: minimising A·(−log π) raises log π
 * where A > 0.) With one update per rollout batch (μ = 1), π_old = π_θ, so
 * ρ ≡ 1 exactly, the clip never fires, and with β = 0 the update is
 * REINFORCE with the group mean as baseline: weights A_i/D_i.
 *
 * Log-probabilities are computed in double from the float32 logits, by one
 * function for π_θ, π_old and π_ref, and stored in double: the same weights
 * give the same bits, so ρ = 1 exactly at the first of μ updates.
 *
 * Both log-ratios, ℓ − ℓ_old and ℓ_ref − ℓ, are clamped to
 * [−TS_GRPO_LOG_RATIO_MAX, TS_GRPO_LOG_RATIO_MAX] = [−20, 20] before exp
 * (e^20 ≈ 4.9e8 stays finite in float; a token whose probability moved by
 * that much is a diverging run, not a step to take); beyond the clamp the
 * term is constant, so its gradient is 0 there.
 */
#ifndef TS_GRPO_H
#define TS_GRPO_H

#include "data/rollout.h"
#include "model/model.h"
#include "train/loop.h"

/** Both log-ratios are clamped to ±this before exp (see the file comment). */
#define TS_GRPO_LOG_RATIO_MAX 20.0

/** How the per-token terms are summed into the loss: the D_i of L = −Σ_i Σ_t J_it / D_i. */
typedef enum {
    /** DeepSeekMath eq. 3: mean over the K groups of (1/G) Σ_i (1/|o_i|) Σ_t: D_i = K·G·|o_i|.
        Every completion weighs the same, so a long one's tokens weigh less each. */
    TS_GRPO_NORM_SEQUENCE = 0,
    /** DAPO's token-level loss: D_i = Σ_j |o_j| over the counted completions: every token weighs the same. */
    TS_GRPO_NORM_TOKEN = 1,
    /** Dr. GRPO: D_i = n·L_max, a constant (n counted completions, L_max = max_len): no length bias at all. */
    TS_GRPO_NORM_CONSTANT = 2
} ts_grpo_norm;

/** GRPO's settings; see ts_grpo_opts_default(). */
typedef struct {
    float eps_low;      /**< lower clip: ρ below 1−ε_low stops pushing down (0.2) */
    float eps_high;     /**< upper clip: ρ above 1+ε_high stops pushing up (0.2; DAPO's clip-higher: 0.28) */
    float beta;         /**< weight of the k3 KL to the reference (0.04 as DeepSeekMath; 0 = no reference model) */
    float adv_eps;      /**< ε of A = (r − mean)/(std + ε) (1e-4) */
    int scale_by_std;   /**< 1: divide by the group's std (DeepSeekMath); 0: do not (Dr. GRPO) */
    ts_grpo_norm norm;  /**< how the per-token terms are averaged */
    int max_len;        /**< L_max of TS_GRPO_NORM_CONSTANT (the generation budget in tokens) */
    int drop_zero_var;  /**< 1: groups whose rewards are all equal leave the batch (no KL term, not counted) */
    float aux_weight;   /**< weight of the MoE balance loss in the objective (0: GRPO's alone) */
} ts_grpo_opts;

/** @brief DeepSeekMath's settings: ε 0.2 both sides, β 0.04, std scaling, per-completion normalisation. */
ts_grpo_opts ts_grpo_opts_default(void);

/** What one GRPO loss computed (the per-step log of DESIGN §4 that needs no answer parsing). */
typedef struct {
    double loss;           /**< L (without the balance loss) */
    double reward_mean;    /**< mean r over all P·G completions */
    double kl;             /**< mean k3 over all completion tokens (NAN when the rollout has no reference log-probs) */
    double clip_frac;      /**< completion tokens whose clip is active (gradient 0), over all completion tokens */
    double zero_var_frac;  /**< groups whose rewards are all equal, over P */
    double completion_len; /**< mean |o_i| over all completions */
    double entropy;        /**< mean over completion tokens of the policy's entropy −Σ_v p_v log p_v (nats) */
    double ratio_min;      /**< smallest ρ over completion tokens (1 when μ = 1) */
    double ratio_max;      /**< largest ρ */
    int groups_used;       /**< groups counted by the loss (P, fewer with drop_zero_var) */
    long tokens_used;      /**< completion tokens counted by the loss */
} ts_grpo_stats;

/** Optional per-position outputs of ts_grpo_loss(), each (P·G·T) or NULL; 0 outside the completions. */
typedef struct {
    float *weight;          /**< the cross-entropy weight w = (dJ/dℓ)/D: dL/dz = w·(p − onehot) */
    double *logp;           /**< ℓ = log π_θ of the completion token */
    float *k3;              /**< the k3 term (0 without a reference) */
    unsigned char *clipped; /**< 1 where the clip is active */
} ts_grpo_tokens;

// [grpo-advantages-signature]
/**
 * @brief Group advantages of P groups of G rewards (sequence i = g·G + j).
 * A_i = (r_i − mean)/(std + eps) with the population std when @p scale_by_std,
 * else r_i − mean; mean and std in double. A group whose rewards are all
 * equal (zero variance) gets A = 0 exactly and zero_var[g] = 1.
 * @param adv          (P·G) out: A_i
 * @param zero_var     (P) out, or NULL: 1 where the group's rewards are all equal
 * @param rewards      (P·G) r_i
 * @param P            groups
 * @param G            sequences per group
 * @param scale_by_std 1: divide by std + eps (DeepSeekMath); 0: do not (Dr. GRPO)
 * @param eps          the ε of std + ε
 */
void ts_grpo_advantages(double *adv, unsigned char *zero_var, const float *rewards, int P, int G, int scale_by_std,
                        double eps);
// [grpo-advantages-signature]

/** One completion token's term of the objective and its coefficient (ts_grpo_coefficients()). */
typedef struct {
    double coef;  /**< dL/dℓ before the 1/D_i of the normalisation: −A·ρ·[not clipped] + β·(1 − π_ref/π_θ) */
    double J;     /**< J = min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A) − β·k3 */
    double rho;   /**< ρ = π_θ/π_old */
    double k3;    /**< π_ref/π_θ − log(π_ref/π_θ) − 1 (0 without a reference) */
    int clipped;  /**< 1 where the clip is active (A > 0 and ρ > 1+ε_high, or A < 0 and ρ < 1−ε_low) */
} ts_grpo_term;

// [grpo-coefficients-signature]
/**
 * @brief One group of G completions: its advantages, and every completion
 * token's term J of the objective with its coefficient on ∇log π_θ, the
 * number the gradient multiplies (ts_grpo_loss() divides it by D_i and hands
 * it to the cross-entropy backward as the token's weight, negated).
 *
 * A_j as ts_grpo_advantages() (population std, A = 0 exactly when the G
 * rewards are all equal); then per token, with ℓ = logp, ℓ_old = old_logp,
 * ℓ_ref = ref_logp and both log-ratios clamped to ±TS_GRPO_LOG_RATIO_MAX:
 *
 *     ρ = exp(ℓ − ℓ_old),  clipped = (A > 0 and ρ > 1+ε_high) or (A < 0 and ρ < 1−ε_low)
 *     u = ℓ_ref − ℓ,       k3 = e^u − u − 1
 *     J    = (clipped ? clip(ρ)·A : ρ·A) − β·k3
 *     coef = (clipped ? 0 : −A·ρ) + β·(1 − e^u)        (a clamped log-ratio's part is 0)
 *
 * @param adv       (G) out: A_j
 * @param term      (G·T) out: each token's term; all 0 where targets is TS_IGNORE
 * @param rewards   (G) r_j
 * @param token_adv (G·T) per-token advantages used in place of A_j (PPO's, from a value head), or NULL
 * @param targets   (G·T) the completion tokens; TS_IGNORE elsewhere
 * @param logp      (G·T) ℓ = log π_θ of each completion token
 * @param old_logp  (G·T) log π_old (logp itself when π_old is the policy: ρ = 1 exactly)
 * @param ref_logp  (G·T) log π_ref, or NULL: no KL term (k3 = 0)
 * @param G         completions in the group
 * @param T         positions per completion
 * @param o         ε_low, ε_high, β, adv_eps, scale_by_std
 * @return 1 when the group's rewards are all equal (zero variance), else 0
 */
int ts_grpo_coefficients(double *adv, ts_grpo_term *term, const float *rewards, const double *token_adv,
                         const int *targets, const double *logp, const double *old_logp, const double *ref_logp, int G,
                         int T, const ts_grpo_opts *o);
// [grpo-coefficients-signature]

/**
 * @brief The GRPO loss of the policy whose logits on r->tokens are @p logits
 * ((P·G·T, V), e.g. m->logits after ts_model_forward_logits()), and its
 * gradient: d_logits += dL/dlogits (if non-NULL). Advantages come from
 * r->rewards (or, per token, from r->token_adv: PPO); ρ from r->old_logp (or ρ ≡ 1 when !r->has_old); the KL term
 * needs r->ref_logp when o->beta > 0.
 * @return TS_OK; TS_ERR_ARG for bad settings (ε out of range, β > 0 without
 *         reference log-probs, a normalisation without its L_max) or a rollout
 *         whose completion mask disagrees with its lengths; TS_ERR_RANGE for a
 *         target outside the vocabulary or a non-finite reward or log-prob;
 *         TS_ERR_NOMEM. Nothing is added to d_logits on failure.
 */
ts_status ts_grpo_loss(ts_grpo_stats *st, float *d_logits, ts_grpo_tokens *tok, const float *logits, const ts_rollout *r,
                       const ts_grpo_opts *o, int V);

/**
 * @brief log π(targets) of model @p m (frozen or not) on the rollout's
 * sequences: one forward to the logits; out (P·G·T) gets the completion
 * tokens' log-probabilities, 0 elsewhere. Fills r->old_logp (then set
 * r->has_old) before the first of μ updates, or r->ref_logp from the frozen
 * reference. Replaces @p m's activations. A frozen model runs one group of G
 * sequences at a time (its activation memory is a group's); its log-probs then
 * equal a whole-batch forward's up to rounding, not bit for bit (the policy's
 * own, for π_old, come from the loss's forward: grpo_train.c).
 */
ts_status ts_grpo_token_logp(ts_model *m, const ts_rollout *r, double *out);

/**
 * @brief One GRPO gradient: forward of the policy @p m to the logits, the loss
 * (ts_grpo_loss()), backward from d_logits (with the balance loss at
 * o->aux_weight): grads += dL/dθ. *loss = L + aux_weight·aux.
 */
ts_status ts_grpo_step(ts_model *m, const ts_rollout *r, const ts_grpo_opts *o, float *loss, ts_grpo_stats *st);

/** Extra CSV columns of the GRPO loss in the training loop, in this order. */
#define TS_GRPO_N_STATS 6
/** Their CSV names: reward, kl, clip_frac, zero_var_frac, completion_len, entropy. */
extern const char *const ts_grpo_stat_names[TS_GRPO_N_STATS];

/** The GRPO loss's data for the training loop: the settings and the current rollout batch. */
typedef struct {
    ts_grpo_opts opts;        /**< settings */
    const ts_rollout *rollout; /**< the rollout batch of this step (a GRPO batch source keeps it current) */
    ts_grpo_stats last;       /**< what the last step computed */
} ts_grpo_loss_ctx;

/**
 * @brief The GRPO loss as the training loop takes it (train/loop.h): each step
 * runs ts_grpo_step() on ctx->rollout and writes reward, kl, clip_frac,
 * zero_var_frac, completion_len and entropy as extra CSV columns. The batch the
 * loop hands it must be that rollout's (ts_rollout_to_batch()): a batch source
 * that samples (a later session) refreshes the rollout, and its π_old
 * log-probs, every μ-th batch and hands the same one in between.
 */
ts_loss ts_grpo_loop_loss(ts_grpo_loss_ctx *ctx);

#endif
