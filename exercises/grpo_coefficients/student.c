/**
 * @file student.c
 * @brief Exercise (chapter 8): write ts_grpo_coefficients(), the heart of
 *        GRPO's update: one group's advantages, and each completion token's
 *        term of the objective with its coefficient on ∇log π_θ.
 *
 * A group is G completions of one prompt, rewarded r_0..r_{G−1}.
 *
 * 1. The advantages. If the G rewards are all equal the group carries no
 *    signal: every A_j = 0 exactly, and the function returns 1. Otherwise
 *    (return 0), in double,
 *
 *        mean = (1/G) Σ r_j,   std = sqrt((1/G) Σ (r_j − mean)²)   (population std: divide by G)
 *        A_j  = (r_j − mean) / (std + o->adv_eps)   if o->scale_by_std   (DeepSeekMath)
 *        A_j  =  r_j − mean                          otherwise             (Dr. GRPO)
 *
 * 2. Every completion token k = j·T + t (positions whose targets[k] is
 *    TS_IGNORE are not completion tokens: set their term to all zeros). Its
 *    advantage A is A_j, or token_adv[k] when token_adv is not NULL (PPO). With
 *    ℓ = logp[k], the two log-ratios, each clamped to ±TS_GRPO_LOG_RATIO_MAX
 *    (20) before exp:
 *
 *        ρ  = exp(ℓ − old_logp[k])             π_θ/π_old
 *        u  = ref_logp[k] − ℓ                  log(π_ref/π_θ)   (only when ref_logp is not NULL)
 *        clipped = (A > 0 and ρ > 1 + ε_high) or (A < 0 and ρ < 1 − ε_low)
 *        k3 = e^u − u − 1                      (0 without a reference)
 *        J  = (clipped ? clip(ρ, 1−ε_low, 1+ε_high)·A : ρ·A) − β·k3      = min(ρA, clip(ρ)A) − β·k3
 *
 *    and the coefficient, the derivative of the loss L = −J with respect to ℓ:
 *
 *        coef = (clipped ? 0 : −A·ρ) + β·(1 − e^u)
 *
 *    (dρ/dℓ = ρ, dk3/dℓ = 1 − e^u). A log-ratio that hit the clamp makes its
 *    part constant, so that part of coef is 0. Fill term[k] = {coef, J, ρ,
 *    k3, clipped}.
 *
 * ε_low, ε_high, β, adv_eps and scale_by_std are fields of *o.
 *
 *     make exercise EX=grpo_coefficients
 * builds the library with this function in place of the one in
 * src/train/grpo.c (ts_grpo_loss() calls it for every group) and runs
 * test_grpo_coefficients (the advantages, then the ratio and the clip's side,
 * then the KL term, then masked positions and per-token advantages, then
 * the coefficient against finite differences of your J: each failure names
 * the quantity that is wrong), then tests/test_ch08_grpo.c (the whole loss
 * and its gradient through a model).
 */
#include <math.h>
#include <string.h>

#include "train/grpo.h"

int ts_grpo_coefficients(double *adv, ts_grpo_term *term, const float *rewards, const double *token_adv,
                         const int *targets, const double *logp, const double *old_logp, const double *ref_logp, int G,
                         int T, const ts_grpo_opts *o) {
    /* TODO: your code here. */
    (void)adv;
    (void)term;
    (void)rewards;
    (void)token_adv;
    (void)targets;
    (void)logp;
    (void)old_logp;
    (void)ref_logp;
    (void)G;
    (void)T;
    (void)o;
    return 0;
}
