/* Exercise grpo_coefficients, stage by stage on one group: the advantages
 * (and the zero-variance return), then ρ and the clip's side with β = 0, then
 * the KL term, then masked positions, PPO's per-token advantages, μ = 1 and the
 * clamp, then the coefficient against finite differences of the J the function
 * itself returns. Each stage compares with an independent computation in long
 * double; a failure names the quantity that is wrong and, where it recognises
 * the mistake (the sample std, ρ inverted, the clip on the wrong side, ε_low
 * for ε_high, the sign of the coefficient, ρ forgotten, the KL term's sign,
 * k1's gradient for k3's, the KL dropped on clipped tokens), says which. */
#include "testutil.h"

#include "train/grpo.h"

enum { G = 4, T = 6, N = G * T };

/* The advantages by the definition, in long double. */
static void ref_adv(long double *a, const float *r, int scale, double eps, int sample_std) {
    long double mean = 0, var = 0;
    for (int j = 0; j < G; j++) mean += r[j];
    mean /= G;
    for (int j = 0; j < G; j++) var += (r[j] - mean) * (r[j] - mean);
    long double sd = sqrtl(var / (sample_std ? G - 1 : G));
    for (int j = 0; j < G; j++) a[j] = scale ? (r[j] - mean) / (sd + eps) : r[j] - mean;
}

static int adv_close(const double *got, const long double *want) {
    for (int j = 0; j < G; j++)
        if (!(fabsl(got[j] - want[j]) <= 1e-12L * (1 + fabsl(want[j])))) return 0;
    return 1;
}

/* Targets of a group: position 0 of every completion is the prompt's (TS_IGNORE). */
static void make_targets(int *targets) {
    for (int k = 0; k < N; k++) targets[k] = k % T == 0 ? TS_IGNORE : 3;
}

static void poison(double *adv, ts_grpo_term *term) {
    for (int j = 0; j < G; j++) adv[j] = NAN;
    for (int k = 0; k < N; k++) term[k] = (ts_grpo_term){NAN, NAN, NAN, NAN, -1};
}

/* Stage 1: the group advantages and the zero-variance return. */
static void advantages(void **state) {
    (void)state;
    const float groups[3][G] = {{1, 0, 0, 1}, {1, 0.5f, 0, 0}, {2, 2, 2, 2}};
    int targets[N];
    double logp[N] = {0}, adv[G];
    ts_grpo_term term[N];
    make_targets(targets);
    for (int scale = 1; scale >= 0; scale--)
        for (int g = 0; g < 3; g++) {
            ts_grpo_opts o = ts_grpo_opts_default();
            o.scale_by_std = scale;
            o.beta = 0.0f;
            o.adv_eps = 0.01f; /* large enough to be seen */
            poison(adv, term);
            int z = ts_grpo_coefficients(adv, term, groups[g], NULL, targets, logp, logp, NULL, G, T, &o);
            if (g == 2) {
                if (z != 1) fail_msg("rewards all equal: the function must return 1 (a zero-variance group), got %d", z);
                for (int j = 0; j < G; j++)
                    if (adv[j] != 0.0)
                        fail_msg("rewards all equal: every advantage must be exactly 0 (no signal), A[%d] = %.17g", j,
                                 adv[j]);
                continue;
            }
            if (z != 0) fail_msg("rewards {%g, %g, %g, %g} are not all equal: return 0, got %d", groups[g][0],
                                 groups[g][1], groups[g][2], groups[g][3], z);
            long double want[G], other[G];
            ref_adv(want, groups[g], scale, o.adv_eps, 0);
            if (adv_close(adv, want)) continue;
            int unwritten = 1;
            for (int j = 0; j < G; j++) unwritten &= isnan(adv[j]);
            if (unwritten) fail_msg("the advantages adv[0..G-1] were not written");
            ref_adv(other, groups[g], scale, o.adv_eps, 1);
            if (scale && adv_close(adv, other))
                fail_msg("advantage: you divided by the sample std (G − 1); GRPO here uses the population std (G)");
            ref_adv(other, groups[g], !scale, o.adv_eps, 0);
            if (adv_close(adv, other) && scale) fail_msg("advantage: scale_by_std = 1 divides r − mean by std + adv_eps");
            if (adv_close(adv, other))
                fail_msg("advantage: scale_by_std = 0 (Dr. GRPO) is r − mean, no division by the std");
            ref_adv(other, groups[g], scale, 0.0, 0);
            if (scale && adv_close(adv, other)) fail_msg("advantage: the divisor is std + adv_eps, not std alone");
            for (int j = 0; j < G; j++)
                if (!(fabsl(adv[j] - want[j]) <= 1e-12L * (1 + fabsl(want[j]))))
                    fail_msg("advantage A[%d] = %.15g, expected %.15Lg (rewards {%g, %g, %g, %g}, scale_by_std %d)", j,
                             adv[j], want[j], groups[g][0], groups[g][1], groups[g][2], groups[g][3], scale);
        }
}

/* Rewards {1, 0, 0, 1}: A > 0 for completions 0 and 3, A < 0 for 1 and 2.
 * Each completion's 5 tokens get ratios rho[t − 1] against π_old. */
static const float clip_rewards[G] = {1, 0, 0, 1};
static const double rhos[T - 1] = {0.5, 0.9, 1.1, 1.25, 1.6};

static void clip_group(int *targets, double *logp, double *old) {
    make_targets(targets);
    for (int k = 0; k < N; k++) {
        logp[k] = -0.2 - 0.05 * k;
        old[k] = k % T == 0 ? 0.0 : logp[k] - log(rhos[k % T - 1]);
    }
}

/* Stage 2: ρ, the clip and its side, J and the coefficient without a KL term
 * (β = 0), with clip-higher: ε_low 0.2, ε_high 0.3. */
static void ratio_and_clip(void **state) {
    (void)state;
    int targets[N];
    double logp[N], old[N], adv[G];
    ts_grpo_term term[N];
    clip_group(targets, logp, old);
    ts_grpo_opts o = ts_grpo_opts_default();
    o.beta = 0.0f;
    o.eps_low = 0.2f;
    o.eps_high = 0.3f;
    poison(adv, term);
    ts_grpo_coefficients(adv, term, clip_rewards, NULL, targets, logp, old, NULL, G, T, &o);
    long double A[G];
    ref_adv(A, clip_rewards, 1, o.adv_eps, 0);
    long double lo = 1.0L - o.eps_low, hi = 1.0L + o.eps_high;
    for (int k = 0; k < N; k++) {
        if (targets[k] == TS_IGNORE) continue;
        int j = k / T;
        long double a = A[j], rho = expl((long double)logp[k] - old[k]);
        const ts_grpo_term *e = &term[k];
        if (!(fabsl(e->rho - rho) <= 1e-12L * rho)) {
            if (fabsl(e->rho - 1 / rho) <= 1e-9L / rho)
                fail_msg("rho of token %d is pi_old/pi: the ratio is pi_theta/pi_old = exp(logp - old_logp)", k);
            fail_msg("rho of token %d = %.15g, expected exp(logp - old_logp) = %.15Lg", k, e->rho, rho);
        }
        int clip = (a > 0 && rho > hi) || (a < 0 && rho < lo);
        if (e->clipped != clip) {
            if (clip) fail_msg("clip: token %d (A %+.3Lf, rho %.2Lf) is clipped: %s", k, a, rho,
                               a > 0 ? "with A > 0, rho above 1 + eps_high stops pushing up"
                                     : "with A < 0, rho below 1 - eps_low stops pushing down");
            if (a > 0 && rho < lo)
                fail_msg("clip side: token %d has A > 0 and rho %.2Lf < 1 - eps_low, and it is NOT clipped: "
                         "min(rho*A, clip(rho)*A) is rho*A there (the clip only stops a push that has gone far enough "
                         "in A's direction)", k, rho);
            if (a < 0 && rho > hi)
                fail_msg("clip side: token %d has A < 0 and rho %.2Lf > 1 + eps_high, and it is NOT clipped: "
                         "min(rho*A, clip(rho)*A) is rho*A there", k, rho);
            if (a > 0 && rho > 1.0L + o.eps_low)
                fail_msg("clip-higher: token %d (A > 0, rho %.2Lf) is not clipped: the upper bound is 1 + eps_high = "
                         "%.2Lf, not 1 + eps_low", k, rho, hi);
            fail_msg("clip: token %d (A %+.3Lf, rho %.2Lf) is not clipped (clipped = %d)", k, a, rho, e->clipped);
        }
        long double rc = rho < lo ? lo : rho > hi ? hi : rho;
        long double J = clip ? rc * a : rho * a;
        if (!(fabsl(e->J - J) <= 1e-12L * (1 + fabsl(J))))
            fail_msg("J of token %d = %.15g, expected min(rho*A, clip(rho)*A) = %.15Lg (A %+.3Lf, rho %.2Lf)", k, e->J,
                     J, a, rho);
        long double c = clip ? 0.0L : -a * rho;
        if (!(fabsl(e->coef - c) <= 1e-12L * (1 + fabsl(c)))) {
            if (clip) fail_msg("coefficient of token %d = %.6g: a clipped token's surrogate is constant in theta, "
                               "its coefficient is 0 (beta = 0 here)", k, e->coef);
            if (fabsl(e->coef + c) <= 1e-9L * fabsl(c))
                fail_msg("coefficient sign: token %d has %.6g = A*rho; the loss is L = -J, so dL/dlogp = -A*rho", k,
                         e->coef);
            if (fabsl(e->coef + a) <= 1e-9L * fabsl(a))
                fail_msg("coefficient of token %d is -A: rho is missing (d(rho*A)/dlogp = A*rho, since drho/dlogp = "
                         "rho)", k);
            fail_msg("coefficient of token %d = %.15g, expected -A*rho = %.15Lg", k, e->coef, c);
        }
        if (e->k3 != 0.0) fail_msg("k3 of token %d = %g without a reference (ref_logp NULL): it must be 0", k, e->k3);
    }
}

/* Stage 3: the KL term, β 0.1, with ref_logp on both clipped and unclipped tokens. */
static void kl_term(void **state) {
    (void)state;
    int targets[N];
    double logp[N], old[N], ref[N], adv[G];
    ts_grpo_term term[N];
    clip_group(targets, logp, old);
    const double us[T - 1] = {-0.5, 0.0, 0.3, 1.0, -1.2}; /* u = log(pi_ref/pi) */
    for (int k = 0; k < N; k++) ref[k] = k % T == 0 ? 0.0 : logp[k] + us[(k / T + k % T) % (T - 1)];
    ts_grpo_opts o = ts_grpo_opts_default();
    o.beta = 0.1f;
    poison(adv, term);
    ts_grpo_coefficients(adv, term, clip_rewards, NULL, targets, logp, old, ref, G, T, &o);
    long double A[G], beta = o.beta;
    ref_adv(A, clip_rewards, 1, o.adv_eps, 0);
    long double lo = 1.0L - o.eps_low, hi = 1.0L + o.eps_high;
    for (int k = 0; k < N; k++) {
        if (targets[k] == TS_IGNORE) continue;
        long double a = A[k / T], rho = expl((long double)logp[k] - old[k]), u = (long double)ref[k] - logp[k];
        int clip = (a > 0 && rho > hi) || (a < 0 && rho < lo);
        long double k3 = expl(u) - u - 1, rc = rho < lo ? lo : rho > hi ? hi : rho;
        long double surr = clip ? 0.0L : -a * rho, kl = beta * (1 - expl(u));
        const ts_grpo_term *e = &term[k];
        if (!(fabsl(e->k3 - k3) <= 1e-12L * (1 + k3))) {
            if (fabsl(e->k3 - (-u)) <= 1e-9L * (1 + fabsl(u)))
                fail_msg("k3 of token %d = %.6g is k1 = log(pi/pi_ref); k3 = pi_ref/pi - log(pi_ref/pi) - 1", k, e->k3);
            fail_msg("k3 of token %d = %.15g, expected e^u - u - 1 = %.15Lg (u = log(pi_ref/pi) = %.2Lf)", k, e->k3, k3,
                     u);
        }
        long double J = (clip ? rc * a : rho * a) - beta * k3;
        if (!(fabsl(e->J - J) <= 1e-12L * (1 + fabsl(J)))) {
            if (fabsl(e->J - (J + 2 * beta * k3)) <= 1e-9L * (1 + fabsl(J)))
                fail_msg("J of token %d adds beta*k3: the KL is a penalty, J = min(...) - beta*k3", k);
            fail_msg("J of token %d = %.15g, expected min(rho*A, clip(rho)*A) - beta*k3 = %.15Lg", k, e->J, J);
        }
        long double c = surr + kl;
        if (!(fabsl(e->coef - c) <= 1e-12L * (1 + fabsl(c)))) {
            long double tol = 1e-9L * (1 + fabsl(c));
            if (fabsl(e->coef - surr) <= tol && fabsl(kl) > tol && clip)
                fail_msg("KL term on a clipped token %d: the clip acts on the surrogate only, the KL term's "
                         "beta*(1 - pi_ref/pi) stays in the coefficient", k);
            if (fabsl(e->coef - surr) <= tol && fabsl(kl) > tol)
                fail_msg("KL term missing from token %d's coefficient: add beta*(1 - pi_ref/pi)", k);
            if (fabsl(e->coef - (surr - kl)) <= tol)
                fail_msg("KL term sign on token %d: dL/dlogp gets +beta*(1 - pi_ref/pi) (dk3/dlogp = 1 - pi_ref/pi)", k);
            if (fabsl(e->coef - (surr + beta)) <= tol)
                fail_msg("KL term of token %d is beta: that is k1's gradient; k3's is beta*(1 - pi_ref/pi)", k);
            if (fabsl(e->coef - (surr + kl / beta)) <= tol)
                fail_msg("KL term of token %d is missing beta", k);
            fail_msg("coefficient of token %d = %.15g, expected %s + beta*(1 - e^u) = %.15Lg (u %.2Lf)", k, e->coef,
                     clip ? "0" : "-A*rho", c, u);
        }
    }
}

/* Stage 4: positions outside the completions are all zero; token_adv replaces
 * A; μ = 1 (old_logp is logp) gives ρ = 1 and −A exactly; the clamp. */
static void masks_token_adv_and_clamp(void **state) {
    (void)state;
    int targets[N];
    double logp[N], old[N], ref[N], adv[G], tadv[N];
    ts_grpo_term term[N];
    clip_group(targets, logp, old);
    for (int k = 0; k < N; k++) ref[k] = logp[k] + 0.25, tadv[k] = 0.1 * (k % 7) - 0.3;
    ts_grpo_opts o = ts_grpo_opts_default();
    for (int k = 0; k < N; k++) term[k] = (ts_grpo_term){7, 7, 7, 7, 7};
    ts_grpo_coefficients(adv, term, clip_rewards, NULL, targets, logp, old, ref, G, T, &o);
    for (int k = 0; k < N; k += T)
        if (term[k].coef != 0 || term[k].J != 0 || term[k].rho != 0 || term[k].k3 != 0 || term[k].clipped != 0)
            fail_msg("position %d is not a completion token (target TS_IGNORE): its term must be all zeros, got coef "
                     "%g J %g rho %g k3 %g clipped %d", k, term[k].coef, term[k].J, term[k].rho, term[k].k3,
                     term[k].clipped);
    /* PPO: token_adv in place of A_j */
    o.beta = 0.0f;
    ts_grpo_coefficients(adv, term, clip_rewards, tadv, targets, logp, logp, NULL, G, T, &o);
    for (int k = 0; k < N; k++) {
        if (targets[k] == TS_IGNORE) continue;
        if (term[k].coef != -tadv[k])
            fail_msg("token_adv: token %d's advantage is token_adv[%d] = %g when token_adv is given (coefficient %.6g, "
                     "expected %.6g)", k, k, tadv[k], term[k].coef, -tadv[k]);
    }
    /* μ = 1: old_logp is logp itself: ρ = exp(0) = 1 exactly, coefficient −A exactly */
    ts_grpo_coefficients(adv, term, clip_rewards, NULL, targets, logp, logp, NULL, G, T, &o);
    for (int k = 0; k < N; k++) {
        if (targets[k] == TS_IGNORE) continue;
        if (term[k].rho != 1.0 || term[k].coef != -adv[k / T])
            fail_msg("mu = 1 (old_logp = logp): token %d must have rho = 1 and coefficient -A exactly, got rho %.17g, "
                     "coefficient %.17g, -A %.17g", k, term[k].rho, term[k].coef, -adv[k / T]);
    }
    /* the clamp: a log-ratio of 25 is clamped to 20, and its part of the coefficient is 0 */
    for (int k = 0; k < N; k++) old[k] = logp[k] + (k / T == 1 ? 25.0 : -25.0), ref[k] = logp[k] - 30.0;
    o.beta = 0.1f;
    ts_grpo_coefficients(adv, term, clip_rewards, NULL, targets, logp, old, ref, G, T, &o);
    double r20 = exp(-TS_GRPO_LOG_RATIO_MAX);
    for (int k = 0; k < N; k++) {
        if (targets[k] == TS_IGNORE) continue;
        double want_rho = k / T == 1 ? r20 : 1 / r20;
        if (!(fabs(term[k].rho - want_rho) <= 1e-12 * want_rho))
            fail_msg("clamp: token %d's log-ratio %g must be clamped to +-%g before exp (rho %.6g, expected %.6g)", k,
                     logp[k] - old[k], TS_GRPO_LOG_RATIO_MAX, term[k].rho, want_rho);
        if (term[k].coef != 0.0)
            fail_msg("clamp: token %d's log-ratios are beyond +-%g, where the terms are constant: its coefficient "
                     "must be 0, got %.6g", k, TS_GRPO_LOG_RATIO_MAX, term[k].coef);
    }
}

/* Stage 5: the coefficient is −dJ/dℓ: central differences of the J the
 * function returns, moving one logp at a time (away from the clip's kinks). */
static void coefficient_is_minus_dJ(void **state) {
    (void)state;
    int targets[N];
    double logp[N], old[N], ref[N], adv[G], J[2];
    ts_grpo_term term[N], moved[N];
    clip_group(targets, logp, old);
    for (int k = 0; k < N; k++) ref[k] = logp[k] + 0.1 * (k % 5) - 0.2;
    ts_grpo_opts o = ts_grpo_opts_default();
    o.beta = 0.2f;
    o.eps_high = 0.28f;
    ts_grpo_coefficients(adv, term, clip_rewards, NULL, targets, logp, old, ref, G, T, &o);
    const double h = 1e-6;
    for (int k = 0; k < N; k++) {
        if (targets[k] == TS_IGNORE) continue;
        double keep = logp[k];
        for (int s = 0; s < 2; s++) {
            logp[k] = keep + (s ? -h : h);
            ts_grpo_coefficients(adv, moved, clip_rewards, NULL, targets, logp, old, ref, G, T, &o);
            J[s] = moved[k].J;
        }
        logp[k] = keep;
        double dJ = (J[0] - J[1]) / (2 * h);
        if (!(fabs(term[k].coef + dJ) <= 1e-6 * (1 + fabs(dJ))))
            fail_msg("token %d: the coefficient %.9g is not -dJ/dlogp = %.9g (central differences of your J)", k,
                     term[k].coef, -dJ);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(advantages),
        cmocka_unit_test(ratio_and_clip),
        cmocka_unit_test(kl_term),
        cmocka_unit_test(masks_token_adv_and_clamp),
        cmocka_unit_test(coefficient_is_minus_dJ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
