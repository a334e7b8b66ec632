/* Chapter 5: DeepSeekMoE — one expert is chapter 2's MLP, shared experts alone
 * are an MLP, whole-model gradient checks (softmax/sigmoid, with and without
 * groups), the auxiliary loss reaches the router, the bias picks but never
 * weighs, group-limited routing, and the bias update balancing a skewed router. */
#include "gradcheck_model.h"

#include "core/ops.h"
#include "core/optim.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "model/moe.h"

enum { MAX_E = 16 };

static ts_config moe_config(int E, int K, int shared, int groups, int topk_group, const char *scoring, int norm,
                            float scale, float alpha) {
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
    c.initializer_range = 0.4f;
    c.n_routed_experts = E;
    c.num_experts_per_tok = K;
    c.n_shared_experts = shared;
    c.moe_intermediate_size = 6;
    c.first_k_dense_replace = 1;
    c.n_group = groups;
    c.topk_group = topk_group;
    strcpy(c.scoring_func, scoring);
    c.norm_topk_prob = norm;
    c.routed_scaling_factor = scale;
    c.aux_loss_alpha = alpha;
    return c;
}

/* ---- one MoE layer on its own ------------------------------------------- */

typedef struct {
    ts_config c;
    ts_params p;
    ts_moe_weights w, g;
    ts_mlp_weights ew[MAX_E], eg[MAX_E];
    ts_arena arena;
    ts_moe_acts a;
    ts_moe_scratch s;
    int B, T;
} layer;

static void layer_init(layer *L, const ts_config *c, int B, int T, uint64_t seed, float scale) {
    memset(L, 0, sizeof *L);
    assert_true(c->n_routed_experts <= MAX_E);
    L->c = *c;
    L->B = B;
    L->T = T;
    ts_params_init(&L->p);
    assert_int_equal(moe_register(&L->p, c, 0), 0);
    assert_int_equal(ts_params_alloc(&L->p, 1), TS_OK);
    L->w.experts = L->ew;
    L->g.experts = L->eg;
    moe_bind(&L->w, &L->p, L->p.data, c, 0);
    moe_bind(&L->g, &L->p, L->p.grad, c, 0);
    tu_fill(L->p.data, L->p.numel, scale, seed);
    if (L->w.bias) memset(L->w.bias, 0, (size_t)c->n_routed_experts * sizeof(float));
    ts_arena measure = {0};
    moe_carve_acts(&L->a, &measure, c, B, T);
    moe_carve_scratch(&L->s, &measure, c, B * T);
    assert_int_equal(ts_arena_create(&L->arena, measure.used), TS_OK);
    moe_carve_acts(&L->a, &L->arena, c, B, T);
    moe_carve_scratch(&L->s, &L->arena, c, B * T);
}

static void layer_free(layer *L) {
    ts_params_free(&L->p);
    ts_arena_free(&L->arena);
}

/* Dense MLP forward/backward with the given weights; returns y, dx and the weight gradients. */
static void dense_reference(float *y, float *dx, ts_mlp_weights *dw, const float *x, const float *dy,
                            const ts_mlp_weights *w, int N, int C, int F) {
    ts_arena ar = {0};
    assert_int_equal(ts_arena_create(&ar, (size_t)6 * N * F * sizeof(float) + 1024), TS_OK);
    ts_mlp_acts a = {ts_arena_floats(&ar, (size_t)N * F), ts_arena_floats(&ar, (size_t)N * F),
                     ts_arena_floats(&ar, (size_t)N * F)};
    ts_mlp_acts d = {ts_arena_floats(&ar, (size_t)N * F), ts_arena_floats(&ar, (size_t)N * F),
                     ts_arena_floats(&ar, (size_t)N * F)};
    mlp_forward(y, &a, x, w, N, C, F);
    memset(dx, 0, (size_t)N * C * sizeof(float));
    mlp_backward(dx, dw, &d, dy, &a, x, w, N, C, F);
    ts_arena_free(&ar);
}

/* One routed expert, top-1, no shared expert, weights normalised: the MoE layer
 * is the dense MLP with that expert's weights, bit for bit, forward and backward. */
static void one_expert_is_the_dense_mlp(void **state) {
    (void)state;
    const char *scoring[2] = {"softmax", "sigmoid"};
    for (int sc = 0; sc < 2; sc++) {
        ts_config c = moe_config(1, 1, 0, 1, 1, scoring[sc], 1, 1.0f, 0.0f);
        c.moe_intermediate_size = 12;
        enum { B = 2, T = 5, N = B * T, C = 8, F = 12 };
        layer L;
        layer_init(&L, &c, B, T, 3, 0.5f);
        float x[N * C], dy[N * C], y[N * C], dx[N * C], y_ref[N * C], dx_ref[N * C];
        tu_fill(x, N * C, 1.0f, 4);
        tu_fill(dy, N * C, 1.0f, 5);
        moe_forward(y, &L.a, x, &L.w, &c, B, T);
        memset(dx, 0, sizeof dx);
        ts_params_zero_grad(&L.p);
        moe_backward(dx, &L.g, &L.s, dy, &L.a, x, &L.w, &c, B, T);
        float *gref = calloc(3 * F * C, sizeof(float));
        ts_mlp_weights dw = {gref, gref + F * C, gref + 2 * F * C};
        dense_reference(y_ref, dx_ref, &dw, x, dy, &L.ew[0], N, C, F);
        assert_memory_equal(y, y_ref, sizeof y);
        assert_memory_equal(dx, dx_ref, sizeof dx);
        assert_memory_equal(L.eg[0].gate_proj, dw.gate_proj, F * C * sizeof(float));
        assert_memory_equal(L.eg[0].up_proj, dw.up_proj, F * C * sizeof(float));
        assert_memory_equal(L.eg[0].down_proj, dw.down_proj, F * C * sizeof(float));
        /* a lone, normalised expert always gets weight 1: the router can learn nothing */
        for (int i = 0; i < N; i++) assert_true(L.a.topk_w[i] == 1.0f);
        for (int i = 0; i < C; i++) assert_true(L.g.gate[i] == 0.0f);
        free(gref);
        layer_free(&L);
    }
}

/* Shared experts only (no routed ones): n_shared fused experts of Fe are one MLP of n_shared·Fe. */
static void shared_experts_are_a_dense_mlp(void **state) {
    (void)state;
    ts_config c = moe_config(0, 0, 2, 1, 1, "softmax", 0, 1.0f, 0.0f);
    c.moe_intermediate_size = 6; /* 2 x 6 = the dense 12 */
    enum { B = 2, T = 4, N = B * T, C = 8, F = 12 };
    layer L;
    layer_init(&L, &c, B, T, 6, 0.5f);
    assert_int_equal(L.p.count, 3); /* shared_experts.{gate,up,down}_proj and nothing else */
    float x[N * C], dy[N * C], y[N * C], dx[N * C], y_ref[N * C], dx_ref[N * C];
    tu_fill(x, N * C, 1.0f, 7);
    tu_fill(dy, N * C, 1.0f, 8);
    moe_forward(y, &L.a, x, &L.w, &c, B, T);
    memset(dx, 0, sizeof dx);
    moe_backward(dx, &L.g, &L.s, dy, &L.a, x, &L.w, &c, B, T);
    float *gref = calloc(3 * F * C, sizeof(float));
    ts_mlp_weights dw = {gref, gref + F * C, gref + 2 * F * C};
    dense_reference(y_ref, dx_ref, &dw, x, dy, &L.w.shared, N, C, F);
    assert_memory_equal(y, y_ref, sizeof y);
    assert_memory_equal(dx, dx_ref, sizeof dx);
    assert_memory_equal(L.g.shared.gate_proj, dw.gate_proj, 3 * F * C * sizeof(float)); /* all three, contiguous */
    free(gref);
    layer_free(&L);
}

/* The same at the level of the whole model: a "llama" model whose MLPs are one
 * expert each computes chapter 2's model exactly, loss and every gradient. */
static void one_expert_model_is_the_dense_model(void **state) {
    (void)state;
    ts_config dc = moe_config(0, 0, 0, 1, 1, "sigmoid", 1, 1.0f, 0.0f);
    ts_config mc = moe_config(1, 1, 0, 1, 1, "sigmoid", 1, 1.0f, 0.0f);
    mc.moe_intermediate_size = dc.intermediate_size;
    mc.first_k_dense_replace = 0;
    ts_model d, m;
    assert_int_equal(ts_model_create(&d, &dc, 0), TS_OK);
    assert_int_equal(ts_model_create(&m, &mc, 0), TS_OK);
    ts_model_init_weights(&d, 1);
    ts_model_init_weights(&m, 2); /* the router keeps these */
    /* copy every dense tensor into its MoE counterpart (mlp.X -> mlp.experts.0.X) */
    for (int i = 0; i < d.params.count; i++) {
        const ts_param *t = &d.params.params[i];
        char name[TS_NAME_MAX];
        const char *mlp = strstr(t->name, ".mlp.");
        if (mlp) snprintf(name, sizeof name, "%.*s.mlp.experts.0.%s", (int)(mlp - t->name), t->name, mlp + 5);
        else snprintf(name, sizeof name, "%s", t->name);
        int j = ts_params_find(&m.params, name);
        assert_true(j >= 0);
        memcpy(m.params.data + m.params.params[j].offset, d.params.data + t->offset, t->numel * sizeof(float));
    }
    enum { B = 2, T = 6 };
    int tokens[B * T], targets[B * T];
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (i * 5 + 1) % 13;
        targets[i] = (i * 7 + 3) % 13;
    }
    ts_model_zero_grad(&d);
    ts_model_zero_grad(&m);
    float ld = ts_model_forward(&d, tokens, targets, B, T);
    float lm = ts_model_forward(&m, tokens, targets, B, T);
    assert_memory_equal(&ld, &lm, sizeof ld);
    assert_memory_equal(d.logits, m.logits, (size_t)B * T * dc.vocab_size * sizeof(float));
    ts_model_backward(&d);
    ts_model_backward(&m);
    for (int i = 0; i < d.params.count; i++) {
        const ts_param *t = &d.params.params[i];
        char name[TS_NAME_MAX];
        const char *mlp = strstr(t->name, ".mlp.");
        if (mlp) snprintf(name, sizeof name, "%.*s.mlp.experts.0.%s", (int)(mlp - t->name), t->name, mlp + 5);
        else snprintf(name, sizeof name, "%s", t->name);
        int j = ts_params_find(&m.params, name);
        assert_memory_equal(m.params.grad + m.params.params[j].offset, d.params.grad + t->offset,
                            t->numel * sizeof(float));
    }
    ts_model_free(&d);
    ts_model_free(&m);
}

/* ---- whole-model gradient checks ---------------------------------------- */

enum { GB = 2, GT = 4, GN = GB * GT };

typedef struct {
    ts_model *m;
    const int *tokens, *targets;
    tu_routing_watch *watch; /* every forward's routing against the unperturbed point's */
} loss_ctx;

static double model_loss(void *ctx) {
    loss_ctx *l = ctx;
    double loss = ts_model_forward(l->m, l->tokens, l->targets, GB, GT);
    tu_routing_watch_update(l->watch, l->m);
    return loss;
}

/* The routing bias gets no gradient; a routed expert may get none (no token chose it). */
static tu_gc_role moe_role(const ts_model *m, const ts_param *t) {
    (void)m;
    if (strstr(t->name, "e_score_correction_bias")) return TU_GC_SKIP;
    if (strstr(t->name, ".mlp.experts.")) return TU_GC_MAY_BE_ZERO;
    return TU_GC_CHECK;
}

/* Finite differences are only valid where the top-K choice does not flip: the
 * loss is piecewise smooth, with a jump where two experts trade places. Two
 * guards: (1) the test draws initialisations (seed, seed+1, ...) until every
 * token of every MoE layer has a routing margin (tu_routing_margin()) of at least
 * MARGIN, far more than a step of 2h = 4e-3 in one weight moves a score; (2)
 * the loss function compares every forward's chosen sets with those at the
 * unperturbed point and counts the forwards where they differ: the test
 * requires none. The selection bias is set to random values, so selection and
 * weights really differ, and left out of the table: it gets no gradient.
 * tests/f64/ runs these checks in double precision over 20 seeds, none chosen. */
#define MARGIN 0.03
#define ROUTER_GAIN 3.0f
static void check_whole_model(ts_config c, uint64_t seed) {
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    assert_int_equal(ts_model_reserve(&m, GB, GT), TS_OK);
    int tokens[GN], targets[GN];
    double margin = 0;
    int tries = 0;
    for (;; seed++, tries++) {
        assert_true(tries < 1000);
        ts_model_init_weights(&m, seed);
        ts_rng r;
        ts_rng_seed(&r, seed + 100, TS_STREAM_TEST);
        for (int i = 0; i < m.params.count; i++) { /* norms away from 1, biases random */
            ts_param *t = &m.params.params[i];
            if (t->ndim != 1) continue;
            int is_bias = strstr(t->name, "e_score_correction_bias") != NULL;
            for (size_t j = 0; j < t->numel; j++)
                m.params.data[t->offset + j] = is_bias ? 0.1f * (ts_rng_uniform(&r) - 0.5f) : 0.5f + ts_rng_uniform(&r);
        }
        for (int l = 0; l < c.num_hidden_layers; l++) /* a confident router: scores spread apart */
            if (ts_moe_is_layer(&c, l))
                for (int j = 0; j < c.n_routed_experts * c.hidden_size; j++) m.w.layers[l].moe.gate[j] *= ROUTER_GAIN;
        for (int i = 0; i < GN; i++) {
            tokens[i] = (int)ts_rng_below(&r, (uint64_t)c.vocab_size);
            targets[i] = (int)ts_rng_below(&r, (uint64_t)c.vocab_size);
        }
        ts_model_forward(&m, tokens, targets, GB, GT);
        margin = tu_model_routing_margin(&m, GN);
        if (margin >= MARGIN) break;
    }
    ts_model_zero_grad(&m);
    ts_model_forward(&m, tokens, targets, GB, GT);
    if (c.aux_loss_alpha > 0) assert_true(m.aux_loss > 0);
    ts_model_backward(&m);
    int K = c.num_experts_per_tok;
    tu_routing_watch watch;
    tu_routing_watch_init(&watch, &m, GN);
    long long total, active;
    ts_model_count_params(&c, &total, &active);
    assert_true(active < total);
    loss_ctx ctx = {&m, tokens, targets, &watch};
    printf("whole-model gradient check: %s scoring, %d experts (top %d) in %d group(s) keeping %d, %d shared, "
           "norm_topk_prob %d, scale %g, aux alpha %g\n",
           c.scoring_func, c.n_routed_experts, K, c.n_group, c.topk_group, c.n_shared_experts, c.norm_topk_prob,
           c.routed_scaling_factor, c.aux_loss_alpha);
    /* Tolerance. The float32 loss carries rounding noise of ~1e-7·|L|, which a
     * difference quotient divides by h: with h = 5e-3 every tensor shows an
     * absolute error of 2e-5..5e-5 however right its gradient is (chapter 2's
     * dense check sees the same floor). Routed experts get small gradients (each
     * serves a few tokens, weighted by g < 1), so the floor is a large fraction of
     * theirs: the bound is 1e-3 of the tensor's gradient scale plus an absolute
     * 1e-4, twice the floor. A real mistake (a missing term of the router's
     * backward) shows up as an error of the order of the gradient itself.
     * 16 evenly spaced entries per tensor (always the first and the last) keep
     * the suite fast enough for the exercise's time limit in a -O0 build. */
    tu_model_gc g;
    tu_gradcheck_model(&g, &m, model_loss, &ctx, 5e-3, 16, moe_role, getenv("TS_GC_REPORT") ? stdout : NULL);
    printf("  seed %llu (after %d tries), routing margin %.3f; %d tensors, worst error %.2e absolute, %.2e relative; "
           "forwards with a flipped routing: %d\n",
           (unsigned long long)seed, tries, margin, g.n, g.worst_abs, g.worst, watch.flips);
    assert_int_equal(watch.flips, 0);
    /* Every tensor got a gradient, except experts no token chose: theirs is exactly zero. */
    for (int i = 0; i < g.n; i++) {
        const char *e = strstr(g.t[i].name, ".mlp.experts.");
        int layer_idx = 0, expert = -1;
        if (e) sscanf(g.t[i].name, "model.layers.%d.mlp.experts.%d.", &layer_idx, &expert);
        if (expert >= 0 && m.acts[layer_idx].moe.counts[expert] == 0) {
            for (size_t j = 0; j < g.t[i].n; j++) assert_true(g.t[i].grad[j] == 0.0f);
        } else {
            if (!(g.r[i].grad_scale > 0)) fail_msg("%s received no gradient", g.t[i].name);
        }
        if (g.r[i].max_abs > 1e-3 * g.r[i].grad_scale + 1e-4)
            fail_msg("%s: error %.2e against a gradient scale of %.2e", g.t[i].name, g.r[i].max_abs, g.r[i].grad_scale);
    }
    tu_routing_watch_free(&watch);
    ts_model_free(&m);
}

static void gradcheck_softmax(void **state) {
    (void)state;
    /* no groups, weights not renormalised, one dense layer then one MoE layer */
    check_whole_model(moe_config(4, 2, 1, 1, 1, "softmax", 0, 1.5f, 0.1f), 1);
}

static void gradcheck_sigmoid(void **state) {
    (void)state;
    /* DeepSeek-V3's choice: sigmoid scores, renormalised over the K, scaled; both layers MoE */
    ts_config c = moe_config(6, 2, 1, 1, 1, "sigmoid", 1, 2.5f, 0.1f);
    c.first_k_dense_replace = 0;
    check_whole_model(c, 2);
}

static void gradcheck_softmax_groups(void **state) {
    (void)state;
    ts_config c = moe_config(8, 2, 0, 4, 2, "softmax", 1, 1.0f, 0.1f);
    c.first_k_dense_replace = 0;
    check_whole_model(c, 3);
}

static void gradcheck_sigmoid_groups(void **state) {
    (void)state;
    check_whole_model(moe_config(8, 3, 2, 4, 2, "sigmoid", 1, 2.5f, 0.1f), 4);
}

static void gradcheck_mla_moe(void **state) {
    (void)state;
    /* DeepSeek-V3's whole layer: chapter 4's latent attention, then the MoE */
    ts_config c = moe_config(8, 2, 1, 4, 2, "sigmoid", 1, 2.5f, 0.1f);
    strcpy(c.model_type, "deepseek_v3");
    c.arch = TS_ARCH_DEEPSEEK_V3;
    c.q_lora_rank = 6;
    c.kv_lora_rank = 6;
    c.qk_nope_head_dim = 3;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 5;
    check_whole_model(c, 5);
}

/* ---- the auxiliary loss ----------------------------------------------------- */

typedef struct {
    layer *L;
    const float *x;
    float *y;
    const int *ref_idx; /* the routing at the unperturbed point */
    int flips;
} aux_ctx;

static double aux_only(void *ctx) {
    aux_ctx *a = ctx;
    layer *L = a->L;
    moe_forward(a->y, &L->a, a->x, &L->w, &L->c, L->B, L->T);
    a->flips += !tu_same_sets(a->ref_idx, L->a.topk_idx, L->B * L->T, L->c.num_experts_per_tok);
    return L->a.aux_loss;
}

/* With no gradient from the output (dy = 0) the router's gradient is the
 * auxiliary loss's alone: exactly zero without it, and the loss's derivative
 * (finite differences, routing unchanged) with it. */
static void aux_loss_gradient_reaches_the_gate(void **state) {
    (void)state;
    enum { B = 3, T = 8, N = B * T, C = 8, E = 6, K = 2 };
    const char *scoring[2] = {"softmax", "sigmoid"};
    for (int sc = 0; sc < 2; sc++) {
        for (int with_aux = 0; with_aux < 2; with_aux++) {
            ts_config c = moe_config(E, K, 1, 1, 1, scoring[sc], 1, 1.0f, with_aux ? 0.3f : 0.0f);
            layer L;
            layer_init(&L, &c, B, T, 11, 0.5f);
            for (int i = 0; i < E * C; i++) L.w.gate[i] *= 4.0f; /* a confident router: scores spread apart */
            float x[N * C], y[N * C], dy[N * C] = {0}, dx[N * C] = {0};
            /* inputs whose routing is far from a tie (see check_whole_model) */
            uint64_t seed = 12;
            for (;; seed++) {
                assert_true(seed < 1012);
                tu_fill(x, N * C, 1.0f, seed);
                moe_forward(y, &L.a, x, &L.w, &c, B, T);
                if (tu_routing_margin(L.a.scores, NULL, N, &c) >= 0.03) break;
            }
            ts_params_zero_grad(&L.p);
            moe_backward(dx, &L.g, &L.s, dy, &L.a, x, &L.w, &c, B, T);
            double gmax = 0, dxmax = 0;
            for (int i = 0; i < E * C; i++) gmax = fmax(gmax, fabs(L.g.gate[i]));
            for (int i = 0; i < N * C; i++) dxmax = fmax(dxmax, fabs(dx[i]));
            if (!with_aux) {
                assert_true(L.a.aux_loss == 0.0);
                assert_true(gmax == 0.0 && dxmax == 0.0);
            } else {
                /* Σ_i f_i P_i is 1 when routing is uniform, E/K when it collapses: α·(1 .. 3) */
                assert_true(L.a.aux_loss >= 0.3 * 0.99 && L.a.aux_loss <= 0.3 * E / K);
                int ref[N * K];
                memcpy(ref, L.a.topk_idx, sizeof ref);
                aux_ctx ctx = {&L, x, y, ref, 0};
                ts_gc_tensor t = {"mlp.gate.weight (aux loss only)", L.w.gate, L.g.gate, (size_t)E * C};
                ts_gc_result r;
                ts_gradcheck(aux_only, &ctx, &t, 1, 1e-2, 0, &r, NULL);
                printf("aux loss %.4f -> gate (%s): gradient scale %.2e, error %.2e (%.2e relative), routing flips %d\n",
                       L.a.aux_loss, scoring[sc], r.grad_scale, r.max_abs, r.max_rel, ctx.flips);
                assert_int_equal(ctx.flips, 0);
                assert_true(gmax > 0);
                assert_true(r.max_rel <= 1e-3);
                assert_true(dxmax > 0); /* and through the router it reaches the layer's input */
            }
            layer_free(&L);
        }
    }
}

/* ---- the selection bias ---------------------------------------------------- */

static void bias_chooses_but_never_weighs(void **state) {
    (void)state;
    enum { B = 2, T = 16, N = B * T, C = 8, E = 8, K = 2 };
    ts_config c = moe_config(E, K, 1, 1, 1, "sigmoid", 1, 2.5f, 0.0f);
    layer L;
    layer_init(&L, &c, B, T, 21, 0.5f);
    float x[N * C], y0[N * C], y1[N * C], y2[N * C];
    tu_fill(x, N * C, 1.0f, 22);
    int idx0[N * K], idx2[N * K];
    float w0[N * K], w2[N * K];
    moe_forward(y0, &L.a, x, &L.w, &c, B, T);
    memcpy(idx0, L.a.topk_idx, sizeof idx0);
    memcpy(w0, L.a.topk_w, sizeof w0);
    /* a bias equal for every expert changes nothing at all */
    for (int e = 0; e < E; e++) L.w.bias[e] = 0.75f;
    moe_forward(y1, &L.a, x, &L.w, &c, B, T);
    assert_memory_equal(idx0, L.a.topk_idx, sizeof idx0);
    assert_memory_equal(w0, L.a.topk_w, sizeof w0);
    assert_memory_equal(y0, y1, sizeof y0);
    /* a large bias on expert 5 puts it in every token's choice ... */
    for (int e = 0; e < E; e++) L.w.bias[e] = e == 5 ? 10.0f : 0.0f;
    moe_forward(y2, &L.a, x, &L.w, &c, B, T);
    memcpy(idx2, L.a.topk_idx, sizeof idx2);
    memcpy(w2, L.a.topk_w, sizeof w2);
    int changed = 0;
    for (int t = 0; t < N; t++) {
        assert_int_equal(idx2[t * K], 5);
        changed += idx2[t * K] != idx0[t * K] && idx2[t * K] != idx0[t * K + 1];
        /* ... but its weight is still its unbiased score's share: g = 2.5 · s_i / Σ_chosen s */
        const float *s = L.a.scores + (size_t)t * E;
        double sum = 0;
        for (int k = 0; k < K; k++) sum += s[idx2[t * K + k]];
        for (int k = 0; k < K; k++) assert_true(fabs(w2[t * K + k] - 2.5 * s[idx2[t * K + k]] / sum) < 1e-6);
    }
    assert_true(changed > 0); /* the bias did change choices */
    /* the same through the router alone: where the chosen set is the same, the weights are the same bits */
    float s[E], bias[E], work[E + 1], wa[K], wb[K];
    int ia[K], ib[K];
    ts_config c2 = c;
    c2.n_group = 1;
    for (int trial = 0; trial < 200; trial++) {
        tu_fill(s, E, 0.5f, 100 + trial);
        for (int e = 0; e < E; e++) s[e] += 0.5f;
        tu_fill(bias, E, 0.05f, 500 + trial);
        moe_route_token(ia, wa, s, NULL, &c2, work);
        moe_route_token(ib, wb, s, bias, &c2, work);
        for (int k = 0; k < K; k++) assert_true(fabs(wb[k] - 2.5 * s[ib[k]] / (s[ib[0]] + s[ib[1]])) < 1e-6);
        if ((ia[0] == ib[0] && ia[1] == ib[1])) assert_memory_equal(wa, wb, sizeof wa);
    }
    layer_free(&L);
}

/* The bias is a parameter for the checkpoint but not for the optimizer: it gets
 * no gradient, so AdamW leaves it bit for bit unchanged, and it survives a
 * checkpoint round trip (config with model_type "llama" plus MoE fields). */
static void bias_is_saved_but_not_trained(void **state) {
    (void)state;
    ts_config c = moe_config(4, 2, 1, 2, 1, "sigmoid", 1, 2.5f, 0.01f);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 1), TS_OK);
    ts_model_init_weights(&m, 7);
    float *bias = m.w.layers[1].moe.bias;
    assert_true(m.w.layers[0].moe.gate == NULL); /* layer 0 is dense (first_k_dense_replace = 1) */
    for (int e = 0; e < 4; e++) assert_true(bias[e] == 0.0f); /* starts at zero, not at 1 like a norm */
    for (int e = 0; e < 4; e++) bias[e] = 0.01f * (float)(e + 1);
    float before[4];
    memcpy(before, bias, sizeof before);
    int tokens[12], targets[12];
    for (int i = 0; i < 12; i++) tokens[i] = targets[i] = (i * 3) % 13;
    ts_adamw opt = ts_adamw_defaults();
    for (int step = 1; step <= 3; step++) {
        ts_model_zero_grad(&m);
        ts_model_forward(&m, tokens, targets, 2, 6);
        ts_model_backward(&m);
        adamw_step(&m.params, &opt, 1e-2f, step);
    }
    assert_memory_equal(before, bias, sizeof before);
    char dir[64];
    tu_tmpdir(dir);
    assert_int_equal(ts_checkpoint_save(&m, dir, NULL), TS_OK);
    ts_model m2;
    assert_int_equal(ts_checkpoint_load(&m2, dir, 0), TS_OK);
    assert_string_equal(m2.cfg.model_type, "llama");
    assert_int_equal(m2.cfg.n_routed_experts, 4);
    assert_int_equal(m2.cfg.n_group, 2);
    assert_string_equal(m2.cfg.scoring_func, "sigmoid");
    assert_int_equal(m2.params.numel, m.params.numel);
    assert_memory_equal(m2.params.data, m.params.data, m.params.numel * sizeof(float));
    assert_memory_equal(m2.w.layers[1].moe.bias, before, sizeof before);
    ts_model_free(&m2);
    tu_rmdir(dir);
    ts_model_free(&m);
}

/* ---- DeepSeek-V2 checkpoints: no selection bias ---------------------------------- */

/* Write a checkpoint folder of @p m by hand, as another tool would: config.json
 * and every tensor but the routers' e_score_correction_bias. */
/* Writes m's folder without the selection bias; with @p extra, one more tensor
 * ("model.extra.weight") that no config uses. */
static void save_without_bias_extra(const ts_model *m, const char *dir, int extra) {
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(ts_config_save(&m->cfg, path), TS_OK);
    ts_st_entry *e = calloc((size_t)m->params.count + 1, sizeof *e);
    int n = 0;
    for (int i = 0; i < m->params.count; i++) {
        const ts_param *t = &m->params.params[i];
        if (strstr(t->name, "e_score_correction_bias")) continue;
        e[n++] = (ts_st_entry){t->name, t->ndim, t->shape, m->params.data + t->offset};
    }
    assert_true(n < m->params.count); /* the bias was there to leave out */
    if (extra) e[n++] = (ts_st_entry){"model.extra.weight", e[0].ndim, e[0].shape, e[0].data};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(ts_safetensors_write(path, e, n, NULL), TS_OK);
    free(e);
}

static void save_without_bias(const ts_model *m, const char *dir) { save_without_bias_extra(m, dir, 0); }

/* A DeepSeek-V2-style folder (MLA, softmax scores, greedy or group-limited
 * greedy routing) has no e_score_correction_bias: it loads, the bias is 0, and
 * it computes what the model that wrote it computes, in a forward and a
 * cached decode. A V3-style folder ("noaux_tc", which balances with the bias)
 * missing it is refused with one line naming the tensor. */
static void v2_folder_without_bias_loads(void **state) {
    (void)state;
    const char *methods[2] = {"greedy", "group_limited_greedy"};
    for (int i = 0; i < 2; i++) {
        ts_config c = moe_config(8, 2, 1, i ? 4 : 1, i ? 2 : 1, "softmax", 0, 1.0f, 0.0f);
        strcpy(c.model_type, "deepseek_v2");
        c.arch = TS_ARCH_DEEPSEEK_V3;
        strcpy(c.topk_method, methods[i]);
        c.q_lora_rank = 6;
        c.kv_lora_rank = 6;
        c.qk_nope_head_dim = 3;
        c.qk_rope_head_dim = 4;
        c.v_head_dim = 5;
        ts_model m;
        assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
        ts_model_init_weights(&m, 11);
        char dir[64];
        tu_tmpdir(dir);
        save_without_bias(&m, dir);
        ts_model m2;
        assert_int_equal(ts_checkpoint_load(&m2, dir, 0), TS_OK);
        assert_string_equal(m2.cfg.topk_method, methods[i]);
        assert_memory_equal(m2.params.data, m.params.data, m.params.numel * sizeof(float)); /* the bias: 0 in both */
        enum { T = 7 };
        int tokens[T] = {1, 5, 2, 12, 0, 7, 3}, V = c.vocab_size;
        ts_model_forward(&m, tokens, NULL, 1, T);
        ts_model_forward(&m2, tokens, NULL, 1, T);
        assert_memory_equal(m2.logits, m.logits, (size_t)T * V * sizeof(float));
        ts_kvcache kv;
        float step[13];
        assert_int_equal(ts_kvcache_create(&kv, &m2, 1, T + 1), TS_OK);
        assert_int_equal(ts_model_prefill(&m2, &kv, 0, tokens, T, step), TS_OK);
        assert_int_equal(ts_model_decode(&m2, &kv, tokens, NULL, step), TS_OK);
        for (int v = 0; v < V; v++) assert_true(isfinite(step[v]));
        ts_kvcache_free(&kv);
        ts_model_free(&m2);
        printf("%s: a folder without e_score_correction_bias loads and gives the writer's logits\n", methods[i]);

        /* the same folder with one tensor too many: refused, naming that tensor
         * (the names are looked up in the subset of tensors the file must have) */
        save_without_bias_extra(&m, dir, 1);
        assert_int_not_equal(ts_checkpoint_load(&m2, dir, 0), TS_OK);
        printf("%s with an extra tensor: %s\n", methods[i], ts_last_error());
        assert_non_null(strstr(ts_last_error(), "'model.extra.weight' is not used by the config"));
        save_without_bias(&m, dir);

        /* the same folder, said to route as V3 does: the bias is required */
        strcpy(c.topk_method, "noaux_tc");
        char path[256];
        snprintf(path, sizeof path, "%s/config.json", dir);
        assert_int_equal(ts_config_save(&c, path), TS_OK);
        assert_int_not_equal(ts_checkpoint_load(&m2, dir, 0), TS_OK);
        const char *err = ts_last_error();
        printf("noaux_tc without the bias: %s\n", err);
        assert_non_null(strstr(err, "model.layers.1.mlp.gate.e_score_correction_bias"));
        assert_non_null(strstr(err, "missing"));
        assert_null(strchr(err, '\n'));
        tu_rmdir(dir);
        ts_model_free(&m);
    }
}

/* ---- group-limited routing --------------------------------------------------- */

static void group_limited_routing(void **state) {
    (void)state;
    enum { E = 16, G = 4, PER = E / G, KEEP = 2, K = 4 };
    ts_config c = moe_config(E, K, 0, G, KEEP, "sigmoid", 1, 1.0f, 0.0f);
    ts_config flat = c;
    flat.n_group = flat.topk_group = 1;
    float s[E], bias[E], w[K], work[E + G];
    int idx[K], idx_flat[K], differ = 0;
    for (int trial = 0; trial < 500; trial++) {
        tu_fill(s, E, 0.5f, 1000 + trial);
        for (int e = 0; e < E; e++) s[e] += 0.5f;
        tu_fill(bias, E, 0.2f, 3000 + trial);
        moe_route_token(idx, w, s, bias, &c, work);
        moe_route_token(idx_flat, w, s, bias, &flat, work);
        /* the kept groups, by the sum of their two best biased scores (ranked here by brute force) */
        double gs[G];
        for (int g = 0; g < G; g++) {
            double best = -1e30, second = -1e30;
            for (int e = g * PER; e < (g + 1) * PER; e++) {
                double v = (double)s[e] + bias[e];
                if (v > best) {
                    second = best;
                    best = v;
                } else if (v > second) {
                    second = v;
                }
            }
            gs[g] = best + second;
        }
        int kept[G] = {0};
        for (int g = 0; g < G; g++) {
            int better = 0;
            for (int h = 0; h < G; h++) better += gs[h] > gs[g];
            kept[g] = better < KEEP;
        }
        for (int k = 0; k < K; k++) {
            if (!kept[idx[k] / PER]) fail_msg("trial %d: expert %d chosen from dropped group %d", trial, idx[k], idx[k] / PER);
            for (int j = 0; j < k; j++) assert_int_not_equal(idx[j], idx[k]);
        }
        /* and they are the K best biased scores among the kept groups' experts */
        for (int e = 0; e < E; e++) {
            if (!kept[e / PER]) continue;
            int chosen = 0;
            for (int k = 0; k < K; k++) chosen |= idx[k] == e;
            if (!chosen) assert_true(s[e] + bias[e] <= s[idx[K - 1]] + bias[idx[K - 1]]);
        }
        int same = 1;
        for (int k = 0; k < K; k++) same &= idx[k] == idx_flat[k];
        differ += !same;
    }
    printf("group-limited routing: 500 tokens, every choice inside the %d kept groups; %d choices differ from "
           "ungrouped top-%d\n",
           KEEP, differ, K);
    assert_true(differ > 0); /* the restriction matters */
}

/* ---- auxiliary-loss-free balancing ------------------------------------------- */

static double max_over_mean(const int *counts, int E) {
    double total = 0, mx = 0;
    for (int e = 0; e < E; e++) {
        total += counts[e];
        if (counts[e] > mx) mx = counts[e];
    }
    return mx / (total / E);
}

/* A router skewed towards experts 0 and 1 (their gate rows point along a
 * direction every input shares) sends most tokens to them. Updating the bias by
 * γ·sign(mean − load) after each step (the router itself is not trained) must
 * bring every expert's load within 1.5× of the mean in a bounded number of
 * steps, and keep it there. Counted in tokens, not in time. */
static void bias_update_balances_a_skewed_router(void **state) {
    (void)state;
    enum { B = 4, T = 64, N = B * T, C = 16, E = 8, K = 2, STEPS = 200 };
    const float gamma = 0.01f;
    ts_config c = moe_config(E, K, 0, 1, 1, "sigmoid", 1, 1.0f, 0.0f);
    c.hidden_size = C;
    layer L;
    layer_init(&L, &c, B, T, 31, 0.3f);
    float *x = malloc(sizeof(float) * N * C), *y = malloc(sizeof(float) * N * C);
    tu_fill(x, (size_t)N * C, 1.0f, 32);
    for (int t = 0; t < N; t++) x[t * C] += 1.0f; /* a direction every token shares */
    L.w.gate[0 * C] += 1.5f;
    L.w.gate[1 * C] += 1.2f;
    moe_forward(y, &L.a, x, &L.w, &c, B, T);
    double start = max_over_mean(L.a.counts, E);
    printf("skewed router: max/mean load %.2f at the start (%d and %d of %d slots on experts 0 and 1)\n", start,
           L.a.counts[0], L.a.counts[1], N * K);
    assert_true(start >= 2.5);
    int reached = -1;
    double worst_after = 0;
    for (int step = 1; step <= STEPS; step++) {
        moe_update_bias(L.w.bias, L.a.counts, E, gamma);
        moe_forward(y, &L.a, x, &L.w, &c, B, T);
        double r = max_over_mean(L.a.counts, E);
        if (getenv("TS_MOE_TRACE")) printf("  step %d max/mean %.2f\n", step, r);
        if (reached < 0 && r <= 1.5) reached = step;
        if (reached > 0 && r > worst_after) worst_after = r;
    }
    printf("  within 1.5x of the mean after %d steps (gamma %g); worst max/mean from then on %.2f; bias of expert 0 %.3f\n",
           reached, gamma, worst_after, L.w.bias[0]);
    assert_true(reached > 0 && reached <= 100);
    assert_true(worst_after <= 1.5);
    free(x);
    free(y);
    layer_free(&L);
}

/* ---- inference ---------------------------------------------------------------- */

/* KV-cache decode through MoE layers gives the full forward's logits, with
 * chapter 2's attention and with chapter 4's latent attention (absorbed cache). */
static void moe_decode_matches_full_forward(void **state) {
    (void)state;
    for (int mla = 0; mla < 2; mla++) {
        ts_config c = moe_config(6, 2, 1, 2, 1, "sigmoid", 1, 2.5f, 0.0f);
        c.initializer_range = 0.2f;
        if (mla) {
            strcpy(c.model_type, "deepseek_v3");
            c.arch = TS_ARCH_DEEPSEEK_V3;
            c.kv_lora_rank = 6;
            c.qk_nope_head_dim = 3;
            c.qk_rope_head_dim = 4;
            c.v_head_dim = 5;
        }
        ts_model m;
        assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
        ts_model_init_weights(&m, 9);
        for (int e = 0; e < 6; e++) m.w.layers[1].moe.bias[e] = 0.02f * e;
        enum { T = 12 };
        int seq[T];
        for (int t = 0; t < T; t++) seq[t] = (t * 7 + 2) % 13;
        float *full = malloc((size_t)T * c.vocab_size * sizeof(float)), logits[13];
        ts_model_forward(&m, seq, NULL, 1, T);
        memcpy(full, m.logits, (size_t)T * c.vocab_size * sizeof(float));
        ts_kvcache kv;
        assert_int_equal(ts_kvcache_create(&kv, &m, 1, T), TS_OK);
        assert_int_equal(ts_model_prefill(&m, &kv, 0, seq, 3, logits), TS_OK);
        double worst = tu_rel_err(logits, full + 2 * c.vocab_size, 13);
        for (int t = 3; t < T; t++) {
            assert_int_equal(ts_model_decode(&m, &kv, &seq[t], NULL, logits), TS_OK);
            double e = tu_rel_err(logits, full + (size_t)t * c.vocab_size, 13);
            if (e > worst) worst = e;
        }
        printf("MoE kv-cache decode vs full forward (%s attention): max relative difference %.2e\n",
               mla ? "latent" : "multi-head", worst);
        assert_true(worst <= 1e-5);
        ts_kvcache_free(&kv);
        free(full);
        ts_model_free(&m);
    }
}

/* ---- parameter counts ---------------------------------------------------------- */

static void parameter_counts(void **state) {
    (void)state;
    ts_config c = moe_config(8, 2, 1, 1, 1, "sigmoid", 1, 2.5f, 0.0f);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    long long total, active;
    ts_model_count_params(&c, &total, &active);
    size_t sum = 0;
    for (int i = 0; i < m.params.count; i++) sum += m.params.params[i].numel;
    assert_int_equal((long long)sum, total);
    /* by hand, layer 1 only differs: router E·C + bias E, experts (E + shared)·3·C·Fe, of which (K + shared) active */
    long long dense_layer = 2 * 8 + 4 * 8 * 8 + 3 * 8 * 12, common = 13 * 8 * 2 + 8 + dense_layer + 2 * 8 + 4 * 8 * 8;
    assert_int_equal(total, common + 8 * 8 + 8 + (8 + 1) * 3 * 8 * 6);
    assert_int_equal(active, common + 8 * 8 + 8 + (2 + 1) * 3 * 8 * 6);
    ts_model_free(&m);
    /* DeepSeek-V3: 671B total, 37B activated (the V3 report's numbers, without the MTP module) */
    ts_config v3;
    char path[4096];
    const char *src = getenv("TS_SRC");
    snprintf(path, sizeof path, "%s/configs/published/deepseek-v3.json", src ? src : ".");
    assert_int_equal(ts_config_load(&v3, path), TS_OK);
    ts_model_count_params(&v3, &total, &active);
    printf("DeepSeek-V3: %.2fB total, %.2fB activated\n", total / 1e9, active / 1e9);
    assert_true(llabs(total - 671000000000LL) < 500000000LL);
    assert_true(llabs(active - 37000000000LL) < 1000000000LL);
}

/* Configs: MoE fields with "llama" attention parse; a bad one names its field. */
static void config_checks(void **state) {
    (void)state;
    ts_config c;
    const char *ok = "{\"model_type\":\"llama\",\"vocab_size\":16,\"hidden_size\":8,\"num_hidden_layers\":1,"
                     "\"num_attention_heads\":2,\"intermediate_size\":8,\"max_position_embeddings\":8,"
                     "\"rms_norm_eps\":1e-5,\"n_routed_experts\":8,\"num_experts_per_tok\":2,"
                     "\"moe_intermediate_size\":4,\"n_group\":4,\"topk_group\":1}";
    assert_int_equal(ts_config_parse(&c, ok, "ok.json"), TS_OK);
    assert_int_equal(c.n_routed_experts, 8);
    /* K = 2 fits in one kept group of 2; K = 3 does not */
    char bad[1024];
    snprintf(bad, sizeof bad, "%.*s\"num_experts_per_tok\":3%s", (int)(strstr(ok, "\"num_experts_per_tok\":2") - ok), ok,
             strstr(ok, "\"num_experts_per_tok\":2") + strlen("\"num_experts_per_tok\":2"));
    assert_int_not_equal(ts_config_parse(&c, bad, "bad.json"), TS_OK);
    assert_non_null(strstr(ts_last_error(), "num_experts_per_tok"));
    const char *missing = "{\"model_type\":\"llama\",\"vocab_size\":16,\"hidden_size\":8,\"num_hidden_layers\":1,"
                          "\"num_attention_heads\":2,\"intermediate_size\":8,\"max_position_embeddings\":8,"
                          "\"rms_norm_eps\":1e-5,\"n_routed_experts\":8}";
    assert_int_not_equal(ts_config_parse(&c, missing, "missing.json"), TS_OK);
    assert_non_null(strstr(ts_last_error(), "num_experts_per_tok"));
}

int main(void) {
    /* Tiny shapes: one thread is faster than two (no fork/join per op) and gives the same bits. */
    ts_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_expert_is_the_dense_mlp),
        cmocka_unit_test(shared_experts_are_a_dense_mlp),
        cmocka_unit_test(one_expert_model_is_the_dense_model),
        cmocka_unit_test(gradcheck_softmax),
        cmocka_unit_test(gradcheck_sigmoid),
        cmocka_unit_test(gradcheck_softmax_groups),
        cmocka_unit_test(gradcheck_sigmoid_groups),
        cmocka_unit_test(gradcheck_mla_moe),
        cmocka_unit_test(aux_loss_gradient_reaches_the_gate),
        cmocka_unit_test(bias_chooses_but_never_weighs),
        cmocka_unit_test(bias_is_saved_but_not_trained),
        cmocka_unit_test(v2_folder_without_bias_loads),
        cmocka_unit_test(group_limited_routing),
        cmocka_unit_test(bias_update_balances_a_skewed_router),
        cmocka_unit_test(moe_decode_matches_full_forward),
        cmocka_unit_test(parameter_counts),
        cmocka_unit_test(config_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
