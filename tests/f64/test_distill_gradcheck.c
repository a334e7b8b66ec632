/* Chapter 9's distillation gradient in double precision (the f64 build,
 * mk/f64.mk): the loss alone from the student's logits, and through a whole
 * student (dense MHA, and MLA) under a frozen teacher of another shape, both
 * KL directions, T in {1, 0.5, 3}, α in {0, 0.5, 1}, every tensor of the
 * student's registry, several seeds, none chosen.
 *
 * tests/test_ch09_distill.c runs the same checks in float32, where the
 * cross-entropy's rounding over the step h sets a floor near 1e-5 (logits)
 * and 5e-4 (whole model); here the floor is nine orders of magnitude lower,
 * so the bounds are tight. */
#include "gradcheck_model.h"

#include "train/distill.h"

/* Seeds of the logits check, and of each model check: the first checks every
 * entry of every tensor, the others GC_SAMPLE evenly spaced ones. Under ASan
 * (mk/f64.mk defines GC_SEEDS), which runs ~20x slower, one seed of each. */
#ifdef GC_SEEDS
enum { SEEDS = 1, MODEL_SEEDS = 1 };
#else
enum { SEEDS = 5, MODEL_SEEDS = 3 };
#endif
enum { N = 10, V = 9, GC_SAMPLE = 16 };

/* Fourth-order differences at h = 1e-4: truncation ~h⁴, rounding ~ε·L/h ~ 1e-12. */
#define STEP 1e-4
/* Relative to each tensor's largest gradient; worst seen 1.4e-10 (logits), 6e-10 (model). */
#define BOUND 1e-7

typedef struct {
    float *zs;
    const float *zt;
    const int *targets;
    ts_kd_opts o;
} logits_ctx;

static double logits_loss(void *p) {
    logits_ctx *c = p;
    ts_kd_result r;
    assert_int_equal(ts_kd_loss(&r, NULL, c->zs, c->zt, c->targets, &c->o, N, V), TS_OK);
    return r.loss;
}

static const float ALPHAS[3] = {0.0f, 0.5f, 1.0f}, TEMPS[3] = {1.0f, 0.5f, 3.0f};

static void loss_from_logits(void **state) {
    (void)state;
    double worst_all = 0;
    for (int seed = 1; seed <= SEEDS; seed++)
        for (int reverse = 0; reverse < 2; reverse++)
            for (int ti = 0; ti < 3; ti++)
                for (int ai = 0; ai < 3; ai++) {
                    float zs[N * V], zt[N * V], d[N * V];
                    int targets[N];
                    tu_fill(zs, N * V, 3.0f, (uint64_t)seed);
                    tu_fill(zt, N * V, 5.0f, (uint64_t)seed + 100);
                    for (int n = 0; n < N; n++) targets[n] = (n * 7 + seed) % V;
                    targets[1] = targets[N - 2] = TS_IGNORE;
                    ts_kd_opts o = {.alpha = ALPHAS[ai], .temperature = TEMPS[ti], .reverse = reverse};
                    memset(d, 0, sizeof d);
                    ts_kd_result r;
                    assert_int_equal(ts_kd_loss(&r, d, zs, zt, targets, &o, N, V), TS_OK);
                    logits_ctx c = {zs, zt, targets, o};
                    ts_gc_tensor t = {"kd.d_logits", zs, d, N * V};
                    double worst = ts_gradcheck(logits_loss, &c, &t, 1, STEP, 0, NULL, NULL);
                    if (!(worst <= BOUND))
                        fail_msg("seed %d, %s KL, T %g, alpha %g: relative error %.2e > %.0e", seed,
                                 reverse ? "reverse" : "forward", (double)o.temperature, (double)o.alpha, worst, BOUND);
                    worst_all = fmax(worst_all, worst);
                }
    printf("gradcheck f64  KD loss from the logits: %d seeds x 2 directions x 3 T x 3 alpha: worst %.1e\n", SEEDS,
           worst_all);
}

static ts_config dense(int hidden, int layers) {
    ts_config c;
    ts_config_default(&c);
    c.vocab_size = 13;
    c.hidden_size = hidden;
    c.num_hidden_layers = layers;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.head_dim = hidden / 2;
    c.intermediate_size = 12;
    c.max_position_embeddings = 32;
    c.initializer_range = 0.4f;
    return c;
}

static ts_config mla(void) {
    ts_config c = dense(8, 2);
    strcpy(c.model_type, "deepseek_v3");
    c.arch = TS_ARCH_DEEPSEEK_V3;
    c.q_lora_rank = 5;
    c.kv_lora_rank = 6;
    c.qk_nope_head_dim = 3;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 5;
    return c;
}

enum { B = 2, T = 6 };

typedef struct {
    ts_model *s, *t;
    const int *tokens, *targets;
    ts_kd_opts o;
} model_ctx;

static double model_loss(void *p) {
    model_ctx *c = p;
    assert_int_equal(ts_model_forward_logits(c->t, c->tokens, B, T), TS_OK);
    assert_int_equal(ts_model_forward_logits(c->s, c->tokens, B, T), TS_OK);
    ts_kd_result r;
    assert_int_equal(ts_kd_loss(&r, NULL, c->s->logits, c->t->logits, c->targets, &c->o, B * T, c->s->cfg.vocab_size),
                     TS_OK);
    return r.loss;
}

static void check_student(const char *name, ts_config cs) {
    ts_config ct = dense(12, 3);
    double worst_all = 0;
    int checks = 0;
    for (int seed = 1; seed <= MODEL_SEEDS; seed++)
        for (int reverse = 0; reverse < 2; reverse++)
            for (int k = 0; k < 3; k++) {
                ts_model s, t;
                assert_int_equal(ts_model_create(&s, &cs, TS_MODEL_GRADS), TS_OK);
                assert_int_equal(ts_model_create(&t, &ct, TS_MODEL_FROZEN), TS_OK);
                ts_model_init_weights(&s, (uint64_t)seed);
                ts_model_init_weights(&t, (uint64_t)seed + 50);
                int tokens[B * T], targets[B * T];
                ts_rng r;
                ts_rng_seed(&r, (uint64_t)seed + 7, TS_STREAM_TEST);
                for (int i = 0; i < B * T; i++) {
                    tokens[i] = (int)ts_rng_below(&r, 13);
                    targets[i] = i % T < 2 ? TS_IGNORE : (int)ts_rng_below(&r, 13); /* a two-token prompt */
                }
                ts_batch b = {.B = B, .T = T, .tokens = tokens, .targets = targets};
                ts_kd_opts o = {.alpha = ALPHAS[k], .temperature = TEMPS[(k + seed) % 3], .reverse = reverse};
                ts_model_zero_grad(&s);
                float loss;
                assert_int_equal(ts_distill_step(&s, &t, &b, &o, &loss, NULL), TS_OK);
                model_ctx c = {&s, &t, tokens, targets, o};
                tu_model_gc g;
                tu_gradcheck_model(&g, &s, model_loss, &c, STEP, seed == 1 ? 0 : GC_SAMPLE, NULL, NULL);
                if (!(g.worst <= BOUND)) {
                    for (int i = 0; i < g.n; i++)
                        if (!(g.r[i].max_rel <= BOUND))
                            printf("  %s: error %.2e at #%zu\n", g.t[i].name, g.r[i].max_rel, g.r[i].worst);
                    fail_msg("%s, seed %d, %s KL, T %g, alpha %g: worst relative error %.2e > %.0e", name, seed,
                             reverse ? "reverse" : "forward", (double)o.temperature, (double)o.alpha, g.worst, BOUND);
                }
                worst_all = fmax(worst_all, g.worst);
                checks++;
                ts_model_free(&s);
                ts_model_free(&t);
            }
    printf("gradcheck f64  KD through a %-10s student: %d checks (seeds x directions x alpha, T), worst %.1e\n", name,
           checks, worst_all);
}

static void student_dense(void **state) {
    (void)state;
    check_student("dense MHA", dense(8, 2));
}

static void student_mla(void **state) {
    (void)state;
    check_student("MLA", mla());
}

/* The check can fail: a KL gradient off by 1e-5 of its scale in one entry is caught. */
static void planted_error_is_caught(void **state) {
    (void)state;
    float zs[N * V], zt[N * V], d[N * V];
    int targets[N];
    tu_fill(zs, N * V, 3.0f, 1);
    tu_fill(zt, N * V, 5.0f, 2);
    for (int n = 0; n < N; n++) targets[n] = n % V;
    ts_kd_opts o = {.alpha = 0.0f, .temperature = 2.0f, .reverse = 1};
    memset(d, 0, sizeof d);
    ts_kd_result r;
    assert_int_equal(ts_kd_loss(&r, d, zs, zt, targets, &o, N, V), TS_OK);
    double big = 0;
    for (int i = 0; i < N * V; i++) big = fmax(big, fabs(d[i]));
    d[17] += 1e-5 * big;
    logits_ctx c = {zs, zt, targets, o};
    ts_gc_tensor t = {"kd.d_logits", zs, d, N * V};
    double worst = ts_gradcheck(logits_loss, &c, &t, 1, STEP, 0, NULL, NULL);
    printf("planted error of 1e-5: relative error %.2e\n", worst);
    assert_true(worst > BOUND);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loss_from_logits),
        cmocka_unit_test(student_dense),
        cmocka_unit_test(student_mla),
        cmocka_unit_test(planted_error_is_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
