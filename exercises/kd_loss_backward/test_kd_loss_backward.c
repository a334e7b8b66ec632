/* Exercise kd_loss_backward, stage by stage: the soft targets (log_pt,
 * log_ps), then the KL it returns, then the gradient it adds, each against an
 * independent computation in long double; a failure names the quantity that
 * is wrong and, where it recognises the mistake (no temperature, probabilities
 * instead of logs, the other direction, T² applied, a gradient overwritten
 * instead of added, 1/T or the scale forgotten, reverse KL's −KL term
 * missing), says which. Then the gradient against finite differences of the
 * KL the function itself returns. */
#include "testutil.h"

#include "core/gradcheck.h"
#include "train/distill.h"

enum { V = 7 };

/* log softmax(z/T) by the definition, in long double. */
static void ref_log_softmax(long double *lp, const float *z, double T) {
    long double mx = -INFINITY, s = 0;
    for (int v = 0; v < V; v++) mx = fmaxl(mx, z[v] / (long double)T);
    for (int v = 0; v < V; v++) s += expl(z[v] / (long double)T - mx);
    for (int v = 0; v < V; v++) lp[v] = z[v] / (long double)T - mx - logl(s);
}

static long double ref_kl(const float *zs, const float *zt, double T, int reverse) {
    long double ls[V], lt[V], kl = 0;
    ref_log_softmax(ls, zs, T);
    ref_log_softmax(lt, zt, T);
    for (int v = 0; v < V; v++) kl += reverse ? expl(ls[v]) * (ls[v] - lt[v]) : expl(lt[v]) * (lt[v] - ls[v]);
    return kl;
}

/* dKL/dstudent (before scale). */
static void ref_grad(long double *g, const float *zs, const float *zt, double T, int reverse) {
    long double ls[V], lt[V], kl = ref_kl(zs, zt, T, reverse);
    ref_log_softmax(ls, zs, T);
    ref_log_softmax(lt, zt, T);
    for (int v = 0; v < V; v++)
        g[v] = (reverse ? expl(ls[v]) * (ls[v] - lt[v] - kl) : expl(ls[v]) - expl(lt[v])) / (long double)T;
}

static void row(float *zs, float *zt, uint64_t seed) {
    tu_fill(zs, V, 3.0f, seed);
    tu_fill(zt, V, 5.0f, seed + 1);
}

/* Does x match ref (V values) to rel·max|ref|? */
static int close_to(const double *x, const long double *ref, double rel) {
    long double big = 1e-300L;
    for (int v = 0; v < V; v++) big = fmaxl(big, fabsl(ref[v]));
    for (int v = 0; v < V; v++)
        if (!(fabsl(x[v] - ref[v]) <= rel * big)) return 0;
    return 1;
}

/* Stage 1: the soft targets. */
static void check_soft(const char *name, const double *got, const long double *want, const long double *other,
                       const float *z, double T) {
    if (close_to(got, want, 1e-12)) return;
    int unwritten = 1;
    for (int v = 0; v < V; v++) unwritten &= isnan(got[v]);
    if (unwritten) fail_msg("%s was not written (it must hold the %s soft distribution's log-probabilities)", name,
                            name[5] == 't' ? "teacher's" : "student's");
    long double at1[V], probs[V];
    ref_log_softmax(at1, z, 1.0);
    for (int v = 0; v < V; v++) probs[v] = expl(want[v]);
    if (T != 1.0 && close_to(got, at1, 1e-9))
        fail_msg("%s is log softmax(z), without the temperature: the soft distribution is softmax(z/T), T = %g", name, T);
    if (close_to(got, probs, 1e-9)) fail_msg("%s holds probabilities: it must hold their logs, log softmax(z/T)", name);
    if (close_to(got, other, 1e-9)) fail_msg("%s holds the other model's distribution: log_pt is the teacher's, "
                                             "log_ps the student's", name);
    for (int v = 0; v < V; v++)
        if (!(fabsl(got[v] - want[v]) <= 1e-12 * fabsl(want[v]) + 1e-12))
            fail_msg("%s[%d] = %.15g, expected log softmax(z/T)[%d] = %.15g (T = %g)", name, v, got[v], v,
                     (double)want[v], T);
}

static void soft_targets(void **state) {
    (void)state;
    const double temps[3] = {1.0, 2.0, 0.5};
    for (int ti = 0; ti < 3; ti++) {
        float zs[V], zt[V];
        row(zs, zt, 10 + (uint64_t)ti);
        double lt[V], ls[V];
        for (int v = 0; v < V; v++) lt[v] = ls[v] = NAN;
        kd_loss_backward(NULL, lt, ls, zs, zt, V, temps[ti], 0, 1.0);
        long double want_t[V], want_s[V];
        ref_log_softmax(want_t, zt, temps[ti]);
        ref_log_softmax(want_s, zs, temps[ti]);
        check_soft("log_pt (the teacher's soft targets)", lt, want_t, want_s, zt, temps[ti]);
        check_soft("log_ps (the student's soft distribution)", ls, want_s, want_t, zs, temps[ti]);
    }
}

/* Logits of ±1000 at T = 0.5: a naive exp(z/T) overflows; the log-probabilities stay finite and exact. */
static void soft_targets_are_stable(void **state) {
    (void)state;
    float zs[V] = {1000, -1000, 3, 0, 999, -2, 1}, zt[V] = {-1000, 1000, 0, 0, 0, 998, 0};
    double lt[V], ls[V];
    double kl = kd_loss_backward(NULL, lt, ls, zs, zt, V, 0.5, 0, 1.0);
    long double want_t[V], want_s[V];
    ref_log_softmax(want_t, zt, 0.5);
    ref_log_softmax(want_s, zs, 0.5);
    for (int v = 0; v < V; v++) {
        if (!isfinite(lt[v]) || !isfinite(ls[v]))
            fail_msg("log_pt[%d] = %g, log_ps[%d] = %g with logits of +-1000 at T = 0.5: subtract the row's largest "
                     "z/T before exp (and keep logs: a probability of exp(-4000) is 0, its log is not -inf)",
                     v, lt[v], v, ls[v]);
        if (!(fabsl(lt[v] - want_t[v]) <= 1e-9 * fabsl(want_t[v]) + 1e-9) ||
            !(fabsl(ls[v] - want_s[v]) <= 1e-9 * fabsl(want_s[v]) + 1e-9))
            fail_msg("with logits of +-1000: log_pt[%d] = %.12g (expected %.12g), log_ps[%d] = %.12g (expected %.12g)",
                     v, lt[v], (double)want_t[v], v, ls[v], (double)want_s[v]);
    }
    if (!isfinite(kl)) fail_msg("KL = %g with logits of +-1000: not finite", kl);
}

/* Stage 2: the KL it returns. */
static void kl_value(void **state) {
    (void)state;
    for (int reverse = 0; reverse < 2; reverse++)
        for (int ti = 0; ti < 2; ti++) {
            double T = ti ? 2.0 : 1.0;
            float zs[V], zt[V];
            row(zs, zt, 20 + (uint64_t)(2 * reverse + ti));
            double lt[V], ls[V];
            double kl = kd_loss_backward(NULL, lt, ls, zs, zt, V, T, reverse, 1.0);
            double want = (double)ref_kl(zs, zt, T, reverse), other = (double)ref_kl(zs, zt, T, !reverse);
            const char *dir = reverse ? "reverse KL(p_s || p_t) = sum p_s (log p_s - log p_t)"
                                      : "forward KL(p_t || p_s) = sum p_t (log p_t - log p_s)";
            if (fabs(kl - want) <= 1e-12 * want) continue;
            if (fabs(kl - other) <= 1e-9 * other)
                fail_msg("reverse = %d: returned %.12g, the %s KL; expected the %s = %.12g", reverse, kl,
                         reverse ? "forward" : "reverse", dir, want);
            if (T != 1 && fabs(kl - T * T * want) <= 1e-9 * T * T * want)
                fail_msg("returned T^2 * KL = %.12g: return the KL itself (%.12g); ts_kd_loss() applies T^2", kl, want);
            if (T != 1 && fabs(kl - (double)ref_kl(zs, zt, 1.0, reverse)) <= 1e-9 * want)
                fail_msg("returned the KL at T = 1 (%.12g): the KL is between softmax(z/T), T = %g", kl, T);
            fail_msg("reverse = %d, T = %g: returned %.12g, expected the %s = %.12g", reverse, T, kl, dir, want);
        }
    /* the same distributions: exactly 0 */
    float zs[V], zt[V];
    row(zs, zt, 30);
    double lt[V], ls[V];
    for (int reverse = 0; reverse < 2; reverse++) {
        double kl = kd_loss_backward(NULL, lt, ls, zs, zs, V, 2.0, reverse, 1.0);
        if (kl != 0.0) fail_msg("teacher logits equal to the student's: KL = %g, expected exactly 0", kl);
    }
}

/* Stage 3: the gradient, added into what d_student held. */
static void check_gradient(int reverse) {
    const double T = 2.0, scale = 0.3;
    float zs[V], zt[V], d[V];
    row(zs, zt, 40 + (uint64_t)reverse);
    for (int v = 0; v < V; v++) d[v] = 0.25f;
    double lt[V], ls[V];
    kd_loss_backward(d, lt, ls, zs, zt, V, T, reverse, scale);
    long double g[V], got[V], want[V];
    ref_grad(g, zs, zt, T, reverse);
    for (int v = 0; v < V; v++) {
        got[v] = (long double)d[v] - 0.25L;
        want[v] = scale * g[v];
    }
    double added[V];
    for (int v = 0; v < V; v++) added[v] = (double)got[v];
    if (close_to(added, want, 1e-5)) return;
    const char *dir = reverse ? "reverse" : "forward";
    int untouched = 1, overwritten = 1;
    for (int v = 0; v < V; v++) {
        untouched &= d[v] == 0.25f;
        overwritten &= fabsl((long double)d[v] - want[v]) <= 1e-5L * fabsl(want[v]) + 1e-7L;
    }
    if (untouched) fail_msg("%s KL: d_student is unchanged: add scale * dKL/dstudent into it", dir);
    if (overwritten) fail_msg("%s KL: d_student was overwritten: ADD (+=) into it (it held 0.25 everywhere)", dir);
    long double x[V];
    double tmp[V];
    for (int v = 0; v < V; v++) tmp[v] = (double)got[v];
    for (int v = 0; v < V; v++) x[v] = want[v] * T;
    if (close_to(tmp, x, 1e-5)) fail_msg("%s KL: the gradient is T times too large: d/dstudent = (1/T) d/du, u = student/T", dir);
    for (int v = 0; v < V; v++) x[v] = want[v] / scale;
    if (close_to(tmp, x, 1e-5)) fail_msg("%s KL: the gradient is not multiplied by scale (%g)", dir, scale);
    for (int v = 0; v < V; v++) x[v] = -want[v];
    if (close_to(tmp, x, 1e-5)) fail_msg("%s KL: the gradient has the wrong sign (it must point uphill: d_student += scale * dKL/dstudent)", dir);
    if (reverse) {
        long double ls_[V], lt_[V];
        ref_log_softmax(ls_, zs, T);
        ref_log_softmax(lt_, zt, T);
        for (int v = 0; v < V; v++) x[v] = scale * expl(ls_[v]) * (ls_[v] - lt_[v]) / T;
        if (close_to(tmp, x, 1e-5))
            fail_msg("reverse KL: the gradient lacks the -KL term: dKL/du_v = p_s,v (log p_s,v - log p_t,v - KL)");
        for (int v = 0; v < V; v++) x[v] = scale * (expl(ls_[v]) - expl(lt_[v])) / T;
        if (close_to(tmp, x, 1e-5)) fail_msg("reverse KL: that is the forward KL's gradient (p_s - p_t)/T");
    }
    for (int v = 0; v < V; v++)
        if (!(fabsl(got[v] - want[v]) <= 1e-5L * fabsl(want[v]) + 1e-7L))
            fail_msg("%s KL: d_student[%d] grew by %.9g, expected scale * dKL/dstudent[%d] = %.9g", dir, v,
                     (double)got[v], v, (double)want[v]);
}

static void gradient_forward_kl(void **state) {
    (void)state;
    check_gradient(0);
}

static void gradient_reverse_kl(void **state) {
    (void)state;
    check_gradient(1);
}

typedef struct {
    float *zs;
    const float *zt;
    double T, scale;
    int reverse;
} fd_ctx;

static double fd_loss(void *p) {
    fd_ctx *c = p;
    double lt[V], ls[V];
    return c->scale * kd_loss_backward(NULL, lt, ls, c->zs, c->zt, V, c->T, c->reverse, c->scale);
}

/* The gradient against finite differences of scale·KL as the function returns it (T = 0.7 and 3). */
static void gradient_matches_finite_differences(void **state) {
    (void)state;
    for (int reverse = 0; reverse < 2; reverse++)
        for (int ti = 0; ti < 2; ti++) {
            float zs[V], zt[V], d[V] = {0};
            row(zs, zt, 50 + (uint64_t)(2 * reverse + ti));
            fd_ctx c = {zs, zt, ti ? 3.0 : 0.7, 0.5, reverse};
            double lt[V], ls[V];
            kd_loss_backward(d, lt, ls, zs, zt, V, c.T, reverse, c.scale);
            ts_gc_tensor t = {"d_student", zs, d, V};
            double worst = ts_gradcheck(fd_loss, &c, &t, 1, 1e-2, 0, NULL, NULL);
            if (!(worst <= 1e-5))
                fail_msg("%s KL, T = %g: the gradient disagrees with finite differences of the KL you return "
                         "(relative error %.2e)", reverse ? "reverse" : "forward", c.T, worst);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(soft_targets),
        cmocka_unit_test(soft_targets_are_stable),
        cmocka_unit_test(kl_value),
        cmocka_unit_test(gradient_forward_kl),
        cmocka_unit_test(gradient_reverse_kl),
        cmocka_unit_test(gradient_matches_finite_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
