/* The model opened for post-training (DESIGN §7): the forward stops at the
 * logits and the hidden state, losses outside the model (src/train/loss.h)
 * make the gradients, the backward starts from them; frozen models hold
 * weights and a forward only. Chapter 2's forward-with-targets stays a
 * wrapper, so both ways must give the same bits. */
#include "testutil.h"

#include "core/gradcheck.h"
#include "core/ops.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "train/loss.h"

/* ---- tiny configs of each kind ---------------------------------------- */

static ts_config dense(int kv_heads, int tied) {
    ts_config c;
    ts_config_default(&c);
    c.vocab_size = 13;
    c.hidden_size = 8;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.num_key_value_heads = kv_heads;
    c.head_dim = 4;
    c.intermediate_size = 12;
    c.max_position_embeddings = 32;
    c.tie_word_embeddings = tied;
    c.initializer_range = 0.4f; /* large weights: every nonlinearity is exercised */
    return c;
}

static ts_config gqa(void) {
    ts_config c = dense(2, 0);
    c.num_attention_heads = 4; /* 4 query heads share 2 key/value heads */
    c.head_dim = 2;
    return c;
}

static ts_config mla(void) {
    ts_config c = dense(2, 0);
    strcpy(c.model_type, "deepseek_v3");
    c.arch = TS_ARCH_DEEPSEEK_V3;
    c.q_lora_rank = 6;
    c.kv_lora_rank = 6;
    c.qk_nope_head_dim = 3;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 5;
    return c;
}

/* Chapter 5: one dense layer, then an MoE layer with sigmoid group routing and the balance loss on. */
static ts_config moe(float alpha) {
    ts_config c = dense(2, 0);
    c.n_routed_experts = 8;
    c.num_experts_per_tok = 2;
    c.n_shared_experts = 1;
    c.moe_intermediate_size = 6;
    c.first_k_dense_replace = 1;
    c.n_group = 4;
    c.topk_group = 2;
    strcpy(c.scoring_func, "sigmoid");
    c.norm_topk_prob = 1;
    c.routed_scaling_factor = 2.5f;
    c.aux_loss_alpha = alpha;
    return c;
}

enum { B = 2, T = 5, N = B * T };

static void batch(const ts_config *c, int *tokens, int *targets, uint64_t seed) {
    ts_rng r;
    ts_rng_seed(&r, seed, TS_STREAM_TEST);
    for (int i = 0; i < N; i++) {
        tokens[i] = (int)ts_rng_below(&r, (uint64_t)c->vocab_size);
        targets[i] = (int)ts_rng_below(&r, (uint64_t)c->vocab_size);
    }
    targets[3] = TS_IGNORE;
    targets[7] = TS_IGNORE;
}

/* Norm weights away from 1 (and a random MoE selection bias), so no gradient is special. */
static void perturb_norms(ts_model *m, uint64_t seed) {
    ts_rng r;
    ts_rng_seed(&r, seed, TS_STREAM_TEST);
    for (int i = 0; i < m->params.count; i++) {
        ts_param *t = &m->params.params[i];
        if (t->ndim != 1) continue;
        int bias = strstr(t->name, "e_score_correction_bias") != NULL;
        for (size_t j = 0; j < t->numel; j++)
            m->params.data[t->offset + j] = bias ? 0.1f * (ts_rng_uniform(&r) - 0.5f) : 0.5f + ts_rng_uniform(&r);
    }
}

static void make(ts_model *m, const ts_config *c, ts_model_mode mode) {
    assert_int_equal(ts_model_create(m, c, mode), TS_OK);
    ts_model_init_weights(m, 11);
    perturb_norms(m, 12);
    assert_int_equal(ts_model_reserve(m, B, T), TS_OK);
}

/* ---- the cross-entropy loss of src/train/loss.c ------------------------- */

typedef struct {
    float *logits;
    const int *targets;
    const float *weights;
    double z;
    float *rows;
    int n, v;
} ce_ctx;

/* The definition, Σ w·ce / Z, summed in double from the per-token losses. */
static double ce_definition(void *p) {
    ce_ctx *c = p;
    ts_ce_result r;
    assert_int_equal(ts_loss_crossentropy(&r, NULL, c->rows, c->logits, c->targets, c->weights, c->z, c->n, c->v),
                     TS_OK);
    double s = 0, counted = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->targets[i] == TS_IGNORE) continue;
        s += (c->weights ? c->weights[i] : 1.0) * c->rows[i];
        counted++;
    }
    return s / (c->z > 0 ? c->z : counted);
}

/* dL/dlogits against finite differences (the op-level bound of test_ch02_ops,
 * 1e-4 relative at h = 3e-2), with and without weights (some negative, as
 * GRPO's coefficients are) and with the default and a given normaliser. */
static void ce_loss_matches_finite_differences(void **state) {
    (void)state;
    enum { n = 6, v = 7 };
    const int targets[n] = {3, TS_IGNORE, 0, 6, TS_IGNORE, 2};
    float logits[n * v], weights[n], rows[n], d[n * v];
    tu_fill(logits, n * v, 3.0f, 1);
    tu_fill(weights, n, 2.0f, 2); /* in [-2, 2) */
    const float *w_cases[2] = {NULL, weights};
    const double z_cases[2] = {0.0, 2.5};
    for (int wc = 0; wc < 2; wc++)
        for (int zc = 0; zc < 2; zc++) {
            ce_ctx c = {logits, targets, w_cases[wc], z_cases[zc], rows, n, v};
            memset(d, 0, sizeof d);
            ts_ce_result r;
            assert_int_equal(ts_loss_crossentropy(&r, d, NULL, logits, targets, c.weights, c.z, n, v), TS_OK);
            assert_int_equal(r.n_counted, 4);
            assert_true(r.normalizer == (c.z > 0 ? c.z : 4.0));
            double def = ce_definition(&c);
            assert_true(fabs(r.loss - def) <= 1e-6 * fmax(1.0, fabs(def)));
            ts_gc_tensor t = {"crossentropy.d_logits", logits, d, n * v};
            double worst = ts_gradcheck(ce_definition, &c, &t, 1, 3e-2, 0, NULL, NULL);
            printf("  cross-entropy %s weights, Z = %s: worst relative error %.2e\n", wc ? "with" : "without",
                   zc ? "2.5" : "counted", worst);
            assert_true(worst <= 1e-4);
            /* ignored rows get exactly nothing */
            for (int k = 0; k < v; k++) assert_true(d[1 * v + k] == 0.0f && d[4 * v + k] == 0.0f);
        }
}

/* Gradients add (+=), so two losses on the same logits add up. */
static void ce_loss_adds_into_d_logits(void **state) {
    (void)state;
    enum { n = 4, v = 5 };
    const int targets[n] = {1, 4, TS_IGNORE, 0};
    float logits[n * v], once[n * v] = {0}, twice[n * v] = {0};
    tu_fill(logits, n * v, 2.0f, 3);
    ts_ce_result r;
    assert_int_equal(ts_loss_crossentropy(&r, once, NULL, logits, targets, NULL, 0, n, v), TS_OK);
    assert_int_equal(ts_loss_crossentropy(&r, twice, NULL, logits, targets, NULL, 0, n, v), TS_OK);
    assert_int_equal(ts_loss_crossentropy(&r, twice, NULL, logits, targets, NULL, 0, n, v), TS_OK);
    for (int i = 0; i < n * v; i++) assert_true(twice[i] == 2.0f * once[i]);
    /* nothing counted, no normaliser: loss 0, no gradient */
    const int none[n] = {TS_IGNORE, TS_IGNORE, TS_IGNORE, TS_IGNORE};
    float zero[n * v] = {0};
    assert_int_equal(ts_loss_crossentropy(&r, zero, NULL, logits, none, NULL, 0, n, v), TS_OK);
    assert_true(r.loss == 0.0f && r.n_counted == 0);
    for (int i = 0; i < n * v; i++) assert_true(zero[i] == 0.0f);
}

/* Bad input: one clear error, nothing written. */
static void ce_loss_rejects_bad_input(void **state) {
    (void)state;
    enum { n = 3, v = 4 };
    float logits[n * v], d[n * v] = {0}, w[n] = {1, 1, 1};
    tu_fill(logits, n * v, 1.0f, 4);
    ts_ce_result r = {0};
    const int past[n] = {0, 4, 1}, negative[n] = {0, -2, 1}, ok[n] = {0, 1, 2};
    assert_int_equal(ts_loss_crossentropy(&r, d, NULL, logits, past, NULL, 0, n, v), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "target 4 at row 1"));
    assert_int_equal(ts_loss_crossentropy(&r, d, NULL, logits, negative, NULL, 0, n, v), TS_ERR_RANGE);
    w[2] = NAN;
    assert_int_equal(ts_loss_crossentropy(&r, d, NULL, logits, ok, w, 0, n, v), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "weight at row 2"));
    assert_int_equal(ts_loss_crossentropy(&r, d, NULL, logits, ok, NULL, -1.0, n, v), TS_ERR_ARG);
    assert_int_equal(ts_loss_crossentropy(&r, d, NULL, logits, ok, NULL, INFINITY, n, v), TS_ERR_ARG);
    for (int i = 0; i < n * v; i++) assert_true(d[i] == 0.0f);
}

/* ---- the open backward against chapter 2's wrapper ----------------------- */

/* ts_model_backward_from(d_logits of ts_loss_crossentropy, balance loss at
 * weight 1) is chapter 2's ts_model_backward(), bit for bit; the loss too. */
static void open_path_is_the_wrapper(const ts_config *c) {
    ts_model m;
    make(&m, c, TS_MODEL_GRADS);
    int tokens[N], targets[N];
    batch(c, tokens, targets, 5);
    size_t bytes = m.params.numel * sizeof(float);
    ts_model_zero_grad(&m);
    float wrapped = ts_model_forward(&m, tokens, targets, B, T);
    ts_model_backward(&m);
    float ce = m.ce_loss, aux = m.aux_loss;
    float *want = malloc(bytes);
    memcpy(want, m.params.grad, bytes);

    ts_model_zero_grad(&m);
    assert_int_equal(ts_model_forward_logits(&m, tokens, B, T), TS_OK);
    int V = c->vocab_size;
    float *d = calloc((size_t)N * V, sizeof(float));
    ts_ce_result r;
    assert_int_equal(ts_loss_crossentropy(&r, d, NULL, m.logits, targets, NULL, 0, N, V), TS_OK);
    assert_int_equal(ts_model_backward_from(&m, d, NULL, 1.0f), TS_OK);
    assert_true(r.loss == ce && m.aux_loss == aux && r.loss + m.aux_loss == wrapped);
    if (c->aux_loss_alpha > 0) assert_true(aux > 0);
    assert_memory_equal(want, m.params.grad, bytes);
    free(d);
    free(want);
    ts_model_free(&m);
}

static void open_path_is_the_wrapper_mha(void **state) {
    (void)state;
    ts_config c = dense(2, 0);
    open_path_is_the_wrapper(&c);
    c = dense(2, 1);
    open_path_is_the_wrapper(&c);
}

static void open_path_is_the_wrapper_gqa(void **state) {
    (void)state;
    ts_config c = gqa();
    open_path_is_the_wrapper(&c);
}

static void open_path_is_the_wrapper_mla(void **state) {
    (void)state;
    ts_config c = mla();
    open_path_is_the_wrapper(&c);
}

static void open_path_is_the_wrapper_moe(void **state) {
    (void)state;
    ts_config c = moe(0.1f);
    open_path_is_the_wrapper(&c);
}

/* The balance loss's gradient joins with the weight the caller gives: weight w
 * on a model whose aux_loss_alpha is α is chapter 5's backward of a model
 * whose α is w·α (w = 0: no balance loss; w = 2: twice), bit for bit. */
static void aux_weight_scales_the_balance_loss(void **state) {
    (void)state;
    ts_config c = moe(0.1f);
    ts_model m;
    make(&m, &c, TS_MODEL_GRADS);
    int tokens[N], targets[N];
    batch(&c, tokens, targets, 6);
    size_t bytes = m.params.numel * sizeof(float);
    const float weights[3] = {0.0f, 2.0f, 1.0f};
    float *open[3];
    for (int k = 0; k < 3; k++) {
        ts_model_zero_grad(&m);
        ts_model_forward(&m, tokens, targets, B, T);
        float *d = calloc((size_t)N * c.vocab_size, sizeof(float));
        ts_ce_result r;
        assert_int_equal(ts_loss_crossentropy(&r, d, NULL, m.logits, targets, NULL, 0, N, c.vocab_size), TS_OK);
        assert_int_equal(ts_model_backward_from(&m, d, NULL, weights[k]), TS_OK);
        open[k] = malloc(bytes);
        memcpy(open[k], m.params.grad, bytes);
        free(d);

        ts_config ck = c;
        ck.aux_loss_alpha = weights[k] * c.aux_loss_alpha;
        ts_model ref;
        assert_int_equal(ts_model_create(&ref, &ck, TS_MODEL_GRADS), TS_OK);
        memcpy(ref.params.data, m.params.data, bytes);
        ts_model_zero_grad(&ref);
        ts_model_forward(&ref, tokens, targets, B, T);
        ts_model_backward(&ref);
        assert_memory_equal(open[k], ref.params.grad, bytes);
        ts_model_free(&ref);
    }
    /* and the weight matters: the router's gradient differs between 0 and 1 */
    int gate = ts_params_find(&m.params, "model.layers.1.mlp.gate.weight");
    assert_true(gate >= 0);
    const ts_param *g = &m.params.params[gate];
    assert_true(memcmp(open[0] + g->offset, open[2] + g->offset, g->numel * sizeof(float)) != 0);
    assert_int_equal(ts_model_backward_from(&m, NULL, NULL, -1.0f), TS_ERR_ARG);
    assert_int_equal(ts_model_backward_from(&m, NULL, NULL, NAN), TS_ERR_ARG);
    for (int k = 0; k < 3; k++) free(open[k]);
    ts_model_free(&m);
}

/* ---- the gradient of the hidden state ------------------------------------ */

typedef struct {
    ts_model *m;
    const int *tokens, *targets;
    const float *r; /* (N,C) coefficients of the hidden-state loss */
} hidden_ctx;

/* L = [CE(logits, targets)] + Σ r ⊙ hidden, in double. */
static double hidden_loss(void *p) {
    hidden_ctx *h = p;
    ts_model *m = h->m;
    assert_int_equal(ts_model_forward_logits(m, h->tokens, B, T), TS_OK);
    double s = 0;
    for (int i = 0; i < N * m->cfg.hidden_size; i++) s += (double)h->r[i] * m->hidden[i];
    if (!h->targets) return s;
    float rows[N];
    ts_ce_result res;
    assert_int_equal(ts_loss_crossentropy(&res, NULL, rows, m->logits, h->targets, NULL, 0, N, m->cfg.vocab_size),
                     TS_OK);
    double ce = 0;
    for (int i = 0; i < N; i++) ce += rows[i];
    return s + ce / res.n_counted;
}

/* ts_model_backward_from(d_logits, d_hidden) against finite differences of a
 * loss on the hidden state (alone, then with the cross-entropy), with chapter
 * 2's whole-model bound: 1e-3 relative at h = 2e-3 (the float32 model's
 * rounding noise in the loss limits it, test_ch02_model.c). */
static void check_hidden(const ts_config *c, int with_ce) {
    ts_model m;
    make(&m, c, TS_MODEL_GRADS);
    int tokens[N], targets[N];
    batch(c, tokens, targets, 7);
    int C = c->hidden_size, V = c->vocab_size;
    float *r = malloc((size_t)N * C * sizeof(float));
    tu_fill(r, (size_t)N * C, 1.0f, 8);
    ts_model_zero_grad(&m);
    assert_int_equal(ts_model_forward_logits(&m, tokens, B, T), TS_OK);
    float *d = NULL;
    if (with_ce) {
        d = calloc((size_t)N * V, sizeof(float));
        ts_ce_result res;
        assert_int_equal(ts_loss_crossentropy(&res, d, NULL, m.logits, targets, NULL, 0, N, V), TS_OK);
    }
    assert_int_equal(ts_model_backward_from(&m, d, r, 0.0f), TS_OK);
    ts_gc_tensor gt[64];
    ts_gc_result res[64];
    int n = m.params.count;
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        ts_param *t = &m.params.params[i];
        gt[i] = (ts_gc_tensor){t->name, m.params.data + t->offset, m.params.grad + t->offset, t->numel};
    }
    hidden_ctx ctx = {&m, tokens, with_ce ? targets : NULL, r};
    printf("gradient check of a loss on the hidden state%s (%s embeddings):\n", with_ce ? " plus cross-entropy" : "",
           c->tie_word_embeddings ? "tied" : "untied");
    double worst = ts_gradcheck(hidden_loss, &ctx, gt, n, 2e-3, 0, res, stdout);
    for (int i = 0; i < n; i++) {
        int head = strcmp(gt[i].name, "model.norm.weight") == 0 || strcmp(gt[i].name, "lm_head.weight") == 0;
        if (head && !with_ce) { /* the hidden state is read before the final norm and the head */
            for (size_t j = 0; j < gt[i].n; j++) assert_true(gt[i].grad[j] == 0.0f);
        } else if (!(res[i].grad_scale > 0)) {
            fail_msg("%s received no gradient", gt[i].name);
        }
    }
    assert_true(worst <= 1e-3);
    free(d);
    free(r);
    ts_model_free(&m);
}

static void hidden_gradient_alone(void **state) {
    (void)state;
    ts_config c = dense(2, 0);
    check_hidden(&c, 0);
}

static void hidden_gradient_with_crossentropy(void **state) {
    (void)state;
    ts_config c = dense(2, 1); /* tied: the embedding collects both ends */
    check_hidden(&c, 1);
}

/* ---- frozen models ------------------------------------------------------- */

/* A frozen model computes the same logits and hidden state, to the bit, as a
 * trainable one with the same weights; and it holds no gradients, no moments
 * and no backward scratch. */
static void frozen_matches_trainable(const ts_config *c) {
    ts_model f, t;
    make(&f, c, TS_MODEL_FROZEN);
    make(&t, c, TS_MODEL_TRAIN);
    int tokens[N], targets[N];
    batch(c, tokens, targets, 9);
    size_t numel = t.params.numel;
    assert_int_equal(f.params.numel, numel);
    assert_memory_equal(f.params.data, t.params.data, numel * sizeof(float));
    assert_int_equal(ts_model_forward_logits(&f, tokens, B, T), TS_OK);
    assert_int_equal(ts_model_forward_logits(&t, tokens, B, T), TS_OK);
    assert_memory_equal(f.logits, t.logits, (size_t)N * c->vocab_size * sizeof(float));
    assert_memory_equal(f.hidden, t.hidden, (size_t)N * c->hidden_size * sizeof(float));
    float lf = ts_model_forward(&f, tokens, targets, B, T), lt = ts_model_forward(&t, tokens, targets, B, T);
    assert_true(lf == lt && lf == lf);

    /* the parameter arena: weights only, and the bytes say so */
    assert_non_null(f.params.data);
    assert_null(f.params.grad);
    assert_null(f.params.m);
    assert_null(f.params.v);
    assert_int_equal(ts_params_bytes(&f.params), numel * sizeof(float));
    assert_int_equal(ts_params_bytes(&t.params), 4 * numel * sizeof(float));
    assert_null(f.g.layers);
    assert_null(f.g.embed_tokens);
    assert_null(f.g.lm_head);
    /* the activation arena: no backward scratch */
    assert_null(f.d_res);
    assert_null(f.d_ln);
    assert_null(f.d_logits);
    assert_null(f.mlp_scratch.gate);
    assert_non_null(t.d_logits);
    size_t saved = (size_t)N * (2 * c->hidden_size + c->vocab_size) * sizeof(float);
    printf("  activation arena: frozen %zu bytes, trainable %zu bytes\n", f.arena.size, t.arena.size);
    assert_true(f.arena.size + saved <= t.arena.size);

    /* a backward fails cleanly, and changes nothing */
    assert_int_equal(ts_model_backward_from(&f, f.logits, NULL, 1.0f), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "frozen"));
    ts_clear_error();
    ts_model_backward(&f);
    assert_non_null(strstr(ts_last_error(), "frozen"));
    ts_model_zero_grad(&f);
    assert_null(f.params.grad);
    ts_model_free(&f);
    ts_model_free(&t);
}

static void frozen_matches_trainable_mha(void **state) {
    (void)state;
    ts_config c = dense(2, 0);
    frozen_matches_trainable(&c);
}

static void frozen_matches_trainable_gqa(void **state) {
    (void)state;
    ts_config c = gqa();
    frozen_matches_trainable(&c);
}

static void frozen_matches_trainable_mla(void **state) {
    (void)state;
    ts_config c = mla();
    frozen_matches_trainable(&c);
}

static void frozen_matches_trainable_moe(void **state) {
    (void)state;
    ts_config c = moe(0.1f);
    frozen_matches_trainable(&c);
}

/* A checkpoint loads frozen: the same logits as the model that was saved. */
static void frozen_checkpoint_load(void **state) {
    (void)state;
    ts_config c = moe(0.0f);
    ts_model t, f;
    make(&t, &c, TS_MODEL_GRADS);
    assert_int_equal(ts_checkpoint_save(&t, tu_dir, NULL), TS_OK);
    assert_int_equal(ts_checkpoint_load(&f, tu_dir, TS_MODEL_FROZEN), TS_OK);
    assert_int_equal(f.mode, TS_MODEL_FROZEN);
    assert_null(f.params.grad);
    int tokens[N], targets[N];
    batch(&c, tokens, targets, 10);
    assert_int_equal(ts_model_forward_logits(&t, tokens, B, T), TS_OK);
    assert_int_equal(ts_model_forward_logits(&f, tokens, B, T), TS_OK);
    assert_memory_equal(f.logits, t.logits, (size_t)N * c.vocab_size * sizeof(float));
    ts_model_free(&f);
    ts_model_free(&t);
}

/* Bad calls: an unknown mode, a backward before any forward. */
static void bad_calls_fail_cleanly(void **state) {
    (void)state;
    ts_config c = dense(2, 0);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, (ts_model_mode)7), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "mode 7"));
    ts_model_free(&m);
    assert_int_equal(ts_model_create(&m, &c, TS_MODEL_GRADS), TS_OK);
    assert_int_equal(ts_model_backward_from(&m, NULL, NULL, 1.0f), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "before any forward"));
    int tokens[2] = {1, 13};
    assert_int_equal(ts_model_forward_logits(&m, tokens, 1, 2), TS_ERR_RANGE);
    ts_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ce_loss_matches_finite_differences),
        cmocka_unit_test(ce_loss_adds_into_d_logits),
        cmocka_unit_test(ce_loss_rejects_bad_input),
        cmocka_unit_test(open_path_is_the_wrapper_mha),
        cmocka_unit_test(open_path_is_the_wrapper_gqa),
        cmocka_unit_test(open_path_is_the_wrapper_mla),
        cmocka_unit_test(open_path_is_the_wrapper_moe),
        cmocka_unit_test(aux_weight_scales_the_balance_loss),
        cmocka_unit_test(hidden_gradient_alone),
        cmocka_unit_test(hidden_gradient_with_crossentropy),
        cmocka_unit_test(frozen_matches_trainable_mha),
        cmocka_unit_test(frozen_matches_trainable_gqa),
        cmocka_unit_test(frozen_matches_trainable_mla),
        cmocka_unit_test(frozen_matches_trainable_moe),
        cmocka_unit_test_setup_teardown(frozen_checkpoint_load, tu_setup_dir, tu_teardown_dir),
        cmocka_unit_test(bad_calls_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
