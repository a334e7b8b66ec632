/* Whole-model gradient checks in double precision (the f64 build, mk/f64.mk):
 * every model variant of chapters 2-5, every tensor of its registry, over 20
 * seeds each, with no seed chosen.
 *
 * The chapter suites run the same check on the float32 build, where the
 * loss's rounding (~1e-7 of its value, divided by the step) sets a noise floor
 * near 1e-3 of a tensor's largest gradient, and some draws do not pass even
 * that. Here the library is compiled with `float` read as `double`
 * (tests/f64/f64.h): the same source, with rounding nine orders of magnitude
 * smaller, so the bound can be tight and hold for any draw. */
#include "gradcheck_model.h"

#include "model/moe.h"

/* Seeds per variant, and how many of them (the first) check every entry of
 * every tensor; the others check GC_SAMPLE entries per tensor. Under ASan,
 * which runs this suite ~20x slower and looks for memory errors rather than
 * unlucky draws, mk/f64.mk sets 2 and 0. */
#ifndef GC_SEEDS
#define GC_SEEDS 20
#endif
#ifndef GC_FULL_SEEDS
#define GC_FULL_SEEDS 1
#endif
enum { SEEDS = GC_SEEDS };

/* Step of the fourth-order differences. In double the loss's rounding is
 * ~1e-16 of its value (L ~ 2.6 here), which a difference quotient turns into
 * an absolute error near 0.6·ε·L/h (measured): ~3e-12 at h = 1e-4, while the
 * truncation error, O(h⁴), is smaller still. */
#define GC_STEP 1e-4
/* The bound, relative to each tensor's largest gradient. Measured over 20
 * seeds of every variant the worst is 6e-9 for dense, GQA and MLA models and
 * 9e-8 with MoE (see the lines the tests print), against up to ~1e-3 in
 * float32; a gradient entry wrong by 1e-5 of its tensor's scale is caught
 * (planted_errors_are_caught), and so is a backward term scaled by 1 + 1e-5. */
#define GC_BOUND 1e-6
/* Tensors whose gradients are all tiny (a routed expert chosen by one token
 * that the model already predicts well: 1e-7) sit below the rounding floor
 * at any step, so each tensor's error is taken relative to its largest
 * gradient or to the scale that floor can resolve to GC_BOUND, whichever is
 * larger: GC_NOISE·ε·|L| / (h·GC_BOUND), ~6e-5 at h = 1e-4. GC_NOISE is the
 * measured 0.6 with a margin of 16. */
#define GC_NOISE 10.0
/* Entries per tensor checked for the seeds after the first GC_FULL_SEEDS:
 * evenly spaced, the first and the last always among them. */
#define GC_SAMPLE 16

static ts_config base_config(void) {
    ts_config c;
    ts_config_default(&c);
    c.vocab_size = 13;
    c.hidden_size = 8;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.head_dim = 4;
    c.intermediate_size = 12;
    c.max_position_embeddings = 32;
    c.initializer_range = 0.4f; /* large weights: every nonlinearity is exercised */
    return c;
}

static ts_config dense(int H, int Hkv, int tied) {
    ts_config c = base_config();
    c.num_attention_heads = H;
    c.num_key_value_heads = Hkv;
    c.tie_word_embeddings = tied;
    return c;
}

/* Chapter 4's shape: every per-head size different, so a swapped dimension shows. */
static ts_config mla(ts_config c, int q_lora_rank, int yarn) {
    strcpy(c.model_type, "deepseek_v3");
    c.arch = TS_ARCH_DEEPSEEK_V3;
    c.q_lora_rank = q_lora_rank;
    c.kv_lora_rank = 6;
    c.qk_nope_head_dim = 3;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 5;
    if (yarn) {
        c.has_yarn = 1;
        c.yarn.factor = 4.0f;
        c.yarn.original_max_position = 8;
        c.yarn.beta_fast = 32.0f;
        c.yarn.beta_slow = 1.0f;
        c.yarn.mscale = 0.707f; /* differs from mscale_all_dim: the RoPE amplitude is not 1 */
        c.yarn.mscale_all_dim = 1.0f;
    }
    return c;
}

static ts_config moe(int E, int K, int shared, int groups, int topk_group, const char *scoring, int norm,
                     float scale, int first_dense) {
    ts_config c = base_config();
    c.n_routed_experts = E;
    c.num_experts_per_tok = K;
    c.n_shared_experts = shared;
    c.moe_intermediate_size = 6;
    c.first_k_dense_replace = first_dense;
    c.n_group = groups;
    c.topk_group = topk_group;
    strcpy(c.scoring_func, scoring);
    c.norm_topk_prob = norm;
    c.routed_scaling_factor = scale;
    c.aux_loss_alpha = 0.1f;
    return c;
}

typedef struct {
    ts_model *m;
    const int *tokens, *targets;
    int B, T;
    tu_routing_watch *watch; /* MoE: every forward's routing against the reference */
} loss_ctx;

/* The loss the model trains on (cross-entropy plus the MoE balance loss), in double. */
static double model_loss(void *p) {
    loss_ctx *l = p;
    double loss = ts_model_forward(l->m, l->tokens, l->targets, l->B, l->T);
    if (l->watch) tu_routing_watch_update(l->watch, l->m);
    return loss;
}

/* The routing bias chooses experts but never weighs them: no gradient, and the
 * loss jumps in it. A routed expert may get no gradient at all: when no token
 * chose it, or only tokens whose targets are ignored (then the finite
 * differences are exactly zero too, and any other mistake shows as an error). */
static tu_gc_role moe_role(const ts_model *m, const ts_param *t) {
    (void)m;
    if (strstr(t->name, "e_score_correction_bias")) return TU_GC_SKIP;
    if (strstr(t->name, ".mlp.experts.")) return TU_GC_MAY_BE_ZERO;
    return TU_GC_CHECK;
}

#define ROUTER_GAIN 3.0f

/* Weights from @p seed; norm weights away from 1 (so their gradients are not
 * special), a random routing bias (so selection and weights really differ), a
 * confident router (scores spread apart); a batch with two ignored targets. */
static void draw(ts_model *m, uint64_t seed, int *tokens, int *targets, int N) {
    const ts_config *c = &m->cfg;
    ts_model_init_weights(m, seed);
    ts_rng r;
    ts_rng_seed(&r, seed + 1000, TS_STREAM_TEST);
    for (int i = 0; i < m->params.count; i++) {
        ts_param *t = &m->params.params[i];
        if (t->ndim != 1) continue;
        int is_bias = strstr(t->name, "e_score_correction_bias") != NULL;
        for (size_t j = 0; j < t->numel; j++)
            m->params.data[t->offset + j] = is_bias ? 0.1f * (ts_rng_uniform(&r) - 0.5f) : 0.5f + ts_rng_uniform(&r);
    }
    for (int l = 0; l < c->num_hidden_layers; l++)
        if (ts_moe_is_layer(c, l))
            for (int j = 0; j < c->n_routed_experts * c->hidden_size; j++) m->w.layers[l].moe.gate[j] *= ROUTER_GAIN;
    for (int i = 0; i < N; i++) {
        tokens[i] = (int)ts_rng_below(&r, (uint64_t)c->vocab_size);
        targets[i] = (int)ts_rng_below(&r, (uint64_t)c->vocab_size);
    }
    targets[1] = TS_IGNORE; /* masked positions must not matter */
    targets[N - 2] = TS_IGNORE;
}

enum { MAX_N = 64 };

/* The gradient scale below which step h cannot resolve an error of GC_BOUND (see GC_NOISE). */
static double floor_scale(double loss, double h) { return GC_NOISE * DBL_EPSILON * fabs(loss) / (h * GC_BOUND); }

typedef struct {
    double worst;  /* the largest error over the tensors, relative as GC_NOISE says */
    double step;   /* the smallest h used */
    int cut;       /* MoE: tensors that needed a step below GC_STEP */
    double margin; /* MoE: the routing margin of the draw */
} seed_result;

/* One seed: the analytic gradient at a fresh draw, then the check, tensor by
 * tensor.
 *
 * Top-K routing makes the loss piecewise smooth, and finite differences are
 * only valid where no step changes a token's chosen experts. So, for MoE, the
 * check watches every forward: when a tensor's steps moved a router score by
 * a quarter of the routing margin or more (a gap between two experts, or
 * between two groups' sums of two, moves by at most four times that), or
 * flipped a choice, that tensor's step is cut (the score moves in proportion
 * to h) and its check repeated. Most tensors keep h = 1e-4; those that steer
 * the router at a draw with a near tie need a smaller one, and their rounding
 * floor (see GC_NOISE) grows with 1/h. No draw and no tensor is skipped. */
static seed_result check_seed(const ts_config *c, int B, int T, uint64_t seed, size_t per_tensor, int plant,
                              tu_model_gc *g) {
    int N = B * T, tokens[MAX_N], targets[MAX_N], is_moe = c->n_routed_experts > 0;
    assert_true(N <= MAX_N);
    ts_model m;
    assert_int_equal(ts_model_create(&m, c, 0), TS_OK);
    assert_int_equal(ts_model_reserve(&m, B, T), TS_OK);
    draw(&m, seed, tokens, targets, N);
    ts_model_zero_grad(&m);
    double loss = ts_model_forward(&m, tokens, targets, B, T);
    assert_true(isfinite(loss));
    if (is_moe && c->aux_loss_alpha > 0) assert_true(m.aux_loss > 0);
    ts_model_backward(&m);
    seed_result res = {.step = GC_STEP, .margin = INFINITY};
    tu_routing_watch watch = {0};
    if (is_moe) {
        tu_routing_watch_init(&watch, &m, N);
        res.margin = tu_model_routing_margin(&m, N);
    }
    if (plant) {
        /* A wrong gradient in the first entry (always among those checked) of
         * every tensor that has one, off by 10x the bound of the scale it is judged by. */
        for (int i = 0; i < m.params.count; i++) {
            ts_param *t = &m.params.params[i];
            float *gr = m.params.grad + t->offset, big = 0;
            for (size_t j = 0; j < t->numel; j++) big = fmax(big, fabs(gr[j]));
            if (big > 0) gr[0] += 10 * GC_BOUND * fmax(big, floor_scale(loss, GC_STEP));
        }
    }
    loss_ctx ctx = {&m, tokens, targets, B, T, is_moe ? &watch : NULL};
    FILE *report = getenv("TS_GC_REPORT") ? stdout : NULL;
    tu_model_gc_table(g, &m, is_moe ? moe_role : NULL);
    for (int i = 0; i < g->n; i++) {
        double h = GC_STEP;
        for (;;) {
            assert_true(h > 1e-10);
            watch.flips = 0;
            watch.max_shift = 0;
            ts_gradcheck(model_loss, &ctx, &g->t[i], 1, h, per_tensor, &g->r[i], report);
            if (!is_moe || (watch.flips == 0 && 4 * watch.max_shift < res.margin)) break;
            h /= fmax(10, pow(10, ceil(log10(8 * watch.max_shift / res.margin)))); /* 4·shift to under half the margin */
        }
        res.step = fmin(res.step, h);
        res.cut += h < GC_STEP;
        ts_gc_result *r = &g->r[i];
        r->max_rel = r->max_abs / fmax(r->grad_scale, floor_scale(loss, h));
    }
    tu_model_gc_finish(g);
    res.worst = g->worst;
    if (is_moe) tu_routing_watch_free(&watch);
    ts_model_free(&m);
    return res;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* SEEDS draws of one variant (seeds 1..SEEDS, none chosen); each must stay within GC_BOUND. */
static void check_variant(const char *name, ts_config c, int B, int T) {
    double worst[SEEDS], min_margin = INFINITY, min_step = GC_STEP;
    int cut = 0, checked = 0; /* tensor checks, and those that needed a step below GC_STEP */
    for (int s = 0; s < SEEDS; s++) {
        tu_model_gc g;
        seed_result r = check_seed(&c, B, T, (uint64_t)s + 1, s < GC_FULL_SEEDS ? 0 : GC_SAMPLE, 0, &g);
        worst[s] = r.worst;
        min_margin = fmin(min_margin, r.margin);
        min_step = fmin(min_step, r.step);
        cut += r.cut;
        checked += g.n;
        if (!(r.worst <= GC_BOUND)) {
            for (int i = 0; i < g.n; i++)
                if (!(g.r[i].max_rel <= GC_BOUND))
                    printf("  %s: error %.2e (%.2e absolute, gradient scale %.2e) at #%zu\n", g.t[i].name,
                           g.r[i].max_rel, g.r[i].max_abs, g.r[i].grad_scale, g.r[i].worst);
            fail_msg("%s, seed %d (smallest h %.0e): worst relative error %.2e > %.0e", name, s + 1, r.step, r.worst,
                     GC_BOUND);
        }
    }
    qsort(worst, SEEDS, sizeof(double), cmp_double);
    printf("gradcheck f64  %-30s %d seeds: worst %.1e  median %.1e", name, SEEDS, worst[SEEDS - 1],
           0.5 * (worst[SEEDS / 2 - 1] + worst[SEEDS / 2]));
    if (c.n_routed_experts > 0)
        printf("  (routing margin >= %.1e; %d of %d tensor checks needed h < %.0e, down to %.0e)", min_margin, cut,
               checked, GC_STEP, min_step);
    printf("\n");
}

/* ---- chapter 2: dense MHA ---- */

static void dense_untied(void **state) {
    (void)state;
    check_variant("MHA, untied embeddings", dense(2, 2, 0), 2, 5);
}

static void dense_tied(void **state) {
    (void)state;
    check_variant("MHA, tied embeddings", dense(2, 2, 1), 2, 5);
}

/* ---- chapter 3: shared key/value heads ---- */

static void gqa(void **state) {
    (void)state;
    check_variant("GQA, 4 heads, 2 kv heads", dense(4, 2, 0), 2, 5);
}

static void mqa(void **state) {
    (void)state;
    check_variant("MQA, 4 heads, 1 kv head", dense(4, 1, 0), 2, 5);
}

/* ---- chapter 4: MLA, two blocks, 16 positions ---- */

static void mla_q_lora(void **state) {
    (void)state;
    check_variant("MLA, q_lora", mla(base_config(), 5, 0), 2, 16);
}

static void mla_plain_q(void **state) {
    (void)state;
    check_variant("MLA, plain q_proj", mla(base_config(), 0, 0), 2, 16);
}

static void mla_yarn(void **state) {
    (void)state;
    check_variant("MLA, q_lora, YaRN (16 > 8 positions)", mla(base_config(), 5, 1), 2, 16);
}

/* ---- chapter 5: DeepSeekMoE ---- */

static void moe_softmax(void **state) {
    (void)state;
    /* no groups, weights not renormalised, one dense layer then one MoE layer */
    check_variant("MoE softmax", moe(4, 2, 1, 1, 1, "softmax", 0, 1.5f, 1), 2, 4);
}

static void moe_sigmoid(void **state) {
    (void)state;
    /* DeepSeek-V3's choice: sigmoid scores, renormalised over the K, scaled; both layers MoE */
    check_variant("MoE sigmoid", moe(6, 2, 1, 1, 1, "sigmoid", 1, 2.5f, 0), 2, 4);
}

static void moe_softmax_groups(void **state) {
    (void)state;
    check_variant("MoE softmax, 4 groups keep 2", moe(8, 2, 0, 4, 2, "softmax", 1, 1.0f, 0), 2, 4);
}

static void moe_sigmoid_groups(void **state) {
    (void)state;
    check_variant("MoE sigmoid, 4 groups keep 2", moe(8, 3, 2, 4, 2, "sigmoid", 1, 2.5f, 1), 2, 4);
}

static void mla_moe(void **state) {
    (void)state;
    /* DeepSeek-V3's whole layer: latent attention, then the MoE */
    ts_config c = mla(moe(8, 2, 1, 4, 2, "sigmoid", 1, 2.5f, 1), 6, 0);
    check_variant("MLA + MoE sigmoid, groups", c, 2, 4);
}

/* ---- the check can fail ---- */

/* A gradient entry off by ten times the bound (relative to its tensor's largest
 * gradient) is caught in every tensor, for a dense model and for V3's layer. */
static void planted_errors_are_caught(void **state) {
    (void)state;
    ts_config cs[] = {dense(4, 2, 1), mla(moe(8, 2, 1, 4, 2, "sigmoid", 1, 2.5f, 1), 6, 1)};
    for (int v = 0; v < 2; v++) {
        tu_model_gc g;
        seed_result r = check_seed(&cs[v], 2, 4, 1, GC_SAMPLE, 1, &g);
        int caught = 0, with_gradient = 0;
        for (int i = 0; i < g.n; i++) {
            if (g.r[i].grad_scale == 0) continue; /* an expert no token chose: nothing was planted */
            with_gradient++;
            if (g.r[i].max_rel > GC_BOUND && g.r[i].worst == 0) caught++;
            else printf("  missed: %s, error %.2e at #%zu\n", g.t[i].name, g.r[i].max_rel, g.r[i].worst);
        }
        printf("planted errors of %.0e (smallest h %.0e): caught in %d of %d tensors\n", 10 * GC_BOUND, r.step, caught,
               with_gradient);
        assert_true(with_gradient > 10);
        assert_int_equal(caught, with_gradient);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dense_untied),
        cmocka_unit_test(dense_tied),
        cmocka_unit_test(gqa),
        cmocka_unit_test(mqa),
        cmocka_unit_test(mla_q_lora),
        cmocka_unit_test(mla_plain_q),
        cmocka_unit_test(mla_yarn),
        cmocka_unit_test(moe_softmax),
        cmocka_unit_test(moe_sigmoid),
        cmocka_unit_test(moe_softmax_groups),
        cmocka_unit_test(moe_sigmoid_groups),
        cmocka_unit_test(mla_moe),
        cmocka_unit_test(planted_errors_are_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
