/* Chapter 2 optimizer: AdamW against hand-computed steps, clipping, the schedule. */
#include "testutil.h"

#include "core/arena.h"
#include "core/optim.h"

/* float32 arithmetic against a double computation of the same formula */
#define CLOSE(got, want) assert_true(fabs((double)(got) - (want)) <= 1e-6 * fmax(1.0, fabs(want)))

/* One AdamW step on one element, in double, written out from the paper's
 * algorithm (Loshchilov & Hutter 2019, alg. 2, with a constant schedule). */
typedef struct {
    double w, m, v;
} adam_state;

static void adamw_by_hand(adam_state *s, double g, double lr, double wd, long t) {
    const double b1 = 0.9, b2 = 0.95, eps = 1e-8;
    s->m = b1 * s->m + (1 - b1) * g;
    s->v = b2 * s->v + (1 - b2) * g * g;
    double m_hat = s->m / (1 - pow(b1, (double)t));
    double v_hat = s->v / (1 - pow(b2, (double)t));
    s->w = s->w - lr * (m_hat / (sqrt(v_hat) + eps) + wd * s->w);
}

static void adamw_matches_hand_computation(void **state) {
    (void)state;
    ts_params p;
    ts_params_init(&p);
    int s3[1] = {3}, s2[1] = {2};
    assert_int_equal(ts_params_add(&p, "proj.weight", 1, s3, 0), 0);
    assert_int_equal(ts_params_add(&p, "norm.weight", 1, s2, 1), 1); /* no_decay */
    assert_int_equal(ts_params_alloc(&p, 1), TS_OK);
    float *w = p.data + p.params[0].offset, *nw = p.data + p.params[1].offset;
    float *g = p.grad + p.params[0].offset, *ng = p.grad + p.params[1].offset;
    const float w0[3] = {0.5f, -1.25f, 2.0f}, nw0[2] = {1.0f, 0.75f};
    const float g1[3] = {0.1f, -0.4f, 0.0f}, ng1[2] = {0.3f, -0.2f};
    const float g2[3] = {-0.3f, 0.2f, 0.05f}, ng2[2] = {0.1f, 0.6f};
    memcpy(w, w0, sizeof w0);
    memcpy(nw, nw0, sizeof nw0);

    ts_adamw cfg = ts_adamw_defaults();
    assert_true(cfg.beta1 == 0.9f && cfg.beta2 == 0.95f && cfg.eps == 1e-8f && cfg.weight_decay == 0.1f);
    const double lr = 0.01, wd = 0.1;
    adam_state want[5];
    for (int i = 0; i < 3; i++) want[i] = (adam_state){w0[i], 0, 0};
    for (int i = 0; i < 2; i++) want[3 + i] = (adam_state){nw0[i], 0, 0};

    /* step 1: m̂ = g and v̂ = g², so the Adam part is g/(|g|+ε) ≈ ±1 */
    memcpy(g, g1, sizeof g1);
    memcpy(ng, ng1, sizeof ng1);
    adamw_step(&p, &cfg, (float)lr, 1);
    for (int i = 0; i < 3; i++) adamw_by_hand(&want[i], g1[i], lr, wd, 1);
    for (int i = 0; i < 2; i++) adamw_by_hand(&want[3 + i], ng1[i], lr, 0.0, 1);
    CLOSE(w[0], 0.5 - 0.01 * (1.0 + 0.1 * 0.5)); /* the same, written out once */
    /* a zero gradient on a decayed weight: only the decay moves it, w(1 − lr·wd) */
    CLOSE(w[2], 2.0 * (1 - lr * wd));
    for (int i = 0; i < 3; i++) CLOSE(w[i], want[i].w);
    for (int i = 0; i < 2; i++) CLOSE(nw[i], want[3 + i].w);
    for (int i = 0; i < 3; i++) CLOSE(p.m[p.params[0].offset + i], want[i].m);
    for (int i = 0; i < 3; i++) CLOSE(p.v[p.params[0].offset + i], want[i].v);

    /* step 2: the bias corrections are 1 − 0.9² and 1 − 0.95² */
    memcpy(g, g2, sizeof g2);
    memcpy(ng, ng2, sizeof ng2);
    adamw_step(&p, &cfg, (float)lr, 2);
    for (int i = 0; i < 3; i++) adamw_by_hand(&want[i], g2[i], lr, wd, 2);
    for (int i = 0; i < 2; i++) adamw_by_hand(&want[3 + i], ng2[i], lr, 0.0, 2);
    for (int i = 0; i < 3; i++) CLOSE(w[i], want[i].w);
    for (int i = 0; i < 2; i++) CLOSE(nw[i], want[3 + i].w);

    /* no_decay: with m = v = 0 and no gradient, a no_decay weight does not move at all,
     * while a decayed one shrinks by exactly lr·wd·w */
    memset(p.grad, 0, p.numel * sizeof(float));
    memset(p.m, 0, p.numel * sizeof(float));
    memset(p.v, 0, p.numel * sizeof(float));
    float before_w = w[1], before_nw[2] = {nw[0], nw[1]};
    adamw_step(&p, &cfg, (float)lr, 3);
    assert_true(nw[0] == before_nw[0] && nw[1] == before_nw[1]);
    CLOSE(w[1], before_w * (1 - lr * wd));
    assert_true(w[1] != before_w);
    ts_params_free(&p);
}

static double norm_of(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

static void grad_clip_scales_to_max_norm(void **state) {
    (void)state;
    float g[5] = {3.0f, 0.0f, -4.0f, 0.0f, 0.0f}; /* norm 5 */
    assert_true(grad_clip(g, 5, 1.0f) == 5.0f);   /* returns the norm before clipping */
    CLOSE(g[0], 0.6);
    CLOSE(g[2], -0.8);
    assert_true(fabs(norm_of(g, 5) - 1.0) <= 1e-7);

    float big[1000];
    tu_fill(big, 1000, 1.0f, 7);
    double n0 = norm_of(big, 1000);
    float got = grad_clip(big, 1000, 2.5f);
    assert_true(fabs(got - n0) <= 1e-6 * n0);
    assert_true(fabs(norm_of(big, 1000) - 2.5) <= 1e-6 * 2.5);

    /* below the limit, or with clipping off, the gradient is left alone to the bit */
    float small[4] = {0.1f, -0.2f, 0.3f, 0.05f}, copy[4];
    memcpy(copy, small, sizeof small);
    float n_small = grad_clip(small, 4, 1.0f);
    CLOSE(n_small, sqrt(0.01 + 0.04 + 0.09 + 0.0025));
    assert_memory_equal(small, copy, sizeof small);
    float g_off[2] = {30.0f, 40.0f};
    assert_true(grad_clip(g_off, 2, 0.0f) == 50.0f);
    assert_true(g_off[0] == 30.0f && g_off[1] == 40.0f);
}

static void lr_schedule_warmup_then_cosine(void **state) {
    (void)state;
    const long warmup = 10, total = 110;
    const float lr_max = 1e-3f, lr_min = 1e-4f;
    CLOSE(lr_schedule(0, warmup, total, lr_max, lr_min), 0.0);           /* start of warmup */
    CLOSE(lr_schedule(5, warmup, total, lr_max, lr_min), 0.5e-3);        /* linear */
    CLOSE(lr_schedule(10, warmup, total, lr_max, lr_min), 1e-3);         /* end of warmup: the peak */
    CLOSE(lr_schedule(60, warmup, total, lr_max, lr_min), 0.55e-3);      /* midpoint: cos = 0 */
    CLOSE(lr_schedule(35, warmup, total, lr_max, lr_min),                /* a quarter: cos(π/4) */
          1e-4 + 0.5 * 0.9e-3 * (1 + cos(TS_PI / 4)));
    CLOSE(lr_schedule(110, warmup, total, lr_max, lr_min), 1e-4);        /* end */
    CLOSE(lr_schedule(500, warmup, total, lr_max, lr_min), 1e-4);        /* after the end */
    for (long s = 0; s < total; s++) { /* rises through warmup, then only falls */
        float now = lr_schedule(s, warmup, total, lr_max, lr_min);
        float next = lr_schedule(s + 1, warmup, total, lr_max, lr_min);
        assert_true(s < warmup ? next > now : next < now);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(adamw_matches_hand_computation),
        cmocka_unit_test(grad_clip_scales_to_max_norm),
        cmocka_unit_test(lr_schedule_warmup_then_cosine),
    };
    return cmocka_run_group_tests_name("ch02_optim", tests, NULL, NULL);
}
