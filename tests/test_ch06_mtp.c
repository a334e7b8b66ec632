/* Chapter 6: multi-token prediction modules and self-speculative decoding.
 *
 *  - depth 0 is chapter 5: a model without modules, trained through the MTP
 *    objective, gives chapter 5's logits and gradients bit for bit; a model
 *    with modules gives the same main logits, and with λ = 0 the same main
 *    gradients;
 *  - whole-model gradient checks of L_main + (λ/D)·Σ L_k with D = 1 and D = 2
 *    (dense, GQA, MLA, and MLA + MoE with the balance loss in the module's block);
 *  - checkpoints: the modules round-trip under their Hugging Face names, and a
 *    model loaded without them gives the main model's logits bit for bit;
 *  - the two-position verify step computes what two one-token steps do, and
 *    speculative greedy decoding equals plain greedy decoding token for token.
 */
#include "testutil.h"

#include "core/gradcheck.h"
#include "core/ops.h"
#include "core/optim.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "train/mtp_loss.h"

/* ---- tiny configs ----------------------------------------------------------- */

static ts_config dense(int D) {
    ts_config c;
    ts_config_default(&c);
    c.vocab_size = 13;
    c.hidden_size = 8;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.head_dim = 4;
    c.intermediate_size = 12;
    c.max_position_embeddings = 64;
    c.tie_word_embeddings = 0;
    c.initializer_range = 0.4f; /* large weights: every nonlinearity is exercised */
    c.num_nextn_predict_layers = D;
    return c;
}

static ts_config gqa(int D) {
    ts_config c = dense(D);
    c.num_attention_heads = 4;
    c.head_dim = 2;
    c.tie_word_embeddings = 1; /* the embedding is the head too: it collects every depth at both ends */
    return c;
}

static ts_config mla(int D) {
    ts_config c = dense(D);
    strcpy(c.model_type, "deepseek_v3");
    c.arch = TS_ARCH_DEEPSEEK_V3;
    c.q_lora_rank = 6;
    c.kv_lora_rank = 6;
    c.qk_nope_head_dim = 3;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 5;
    return c;
}

/* DeepSeek-V3's layer: MLA, then a MoE layer from layer 1 on, so the module's block (layer L) is MoE too. */
static ts_config mla_moe(int D, float alpha) {
    ts_config c = mla(D);
    c.n_routed_experts = 6;
    c.num_experts_per_tok = 2;
    c.n_shared_experts = 1;
    c.moe_intermediate_size = 6;
    c.first_k_dense_replace = 1;
    c.n_group = 1;
    c.topk_group = 1;
    strcpy(c.scoring_func, "sigmoid");
    c.norm_topk_prob = 1;
    c.routed_scaling_factor = 2.5f;
    c.aux_loss_alpha = alpha;
    strcpy(c.topk_method, "noaux_tc");
    return c;
}

enum { B = 2, T = 6, N = B * T };

static void batch(const ts_config *c, int *tokens, int *targets, uint64_t seed) {
    ts_rng r;
    ts_rng_seed(&r, seed, TS_STREAM_TEST);
    for (int i = 0; i < N; i++) {
        tokens[i] = (int)ts_rng_below(&r, (uint64_t)c->vocab_size);
        targets[i] = (int)ts_rng_below(&r, (uint64_t)c->vocab_size);
    }
    targets[3] = TS_IGNORE; /* a masked target: main position 3, depth 1's position 2, depth 2's position 1 */
}

static void make(ts_model *m, const ts_config *c, ts_model_mode mode, uint64_t seed) {
    assert_int_equal(ts_model_create(m, c, mode), TS_OK);
    ts_model_init_weights(m, seed);
    ts_rng r; /* norms away from 1, so their gradients are tested */
    ts_rng_seed(&r, seed + 7, TS_STREAM_TEST);
    for (int i = 0; i < m->params.count; i++) {
        ts_param *t = &m->params.params[i];
        if (t->ndim != 1 || strstr(t->name, "e_score_correction_bias")) continue;
        for (size_t j = 0; j < t->numel; j++) m->params.data[t->offset + j] = 0.5f + ts_rng_uniform(&r);
    }
    assert_int_equal(ts_model_reserve(m, B, T), TS_OK);
}

/* ---- depth 0 is chapter 5 --------------------------------------------------- */

/* A model without modules through the MTP objective = chapter 5's forward/backward, to the bit. */
static void depth0_is_chapter5(const ts_config *c) {
    ts_model a, b;
    make(&a, c, TS_MODEL_GRADS, 3);
    make(&b, c, TS_MODEL_GRADS, 3);
    int tokens[N], targets[N];
    batch(c, tokens, targets, 5);
    float la = ts_model_forward(&a, tokens, targets, B, T);
    ts_model_backward(&a);
    ts_mtp_loss_result r;
    assert_int_equal(ts_mtp_loss_step(&b, tokens, targets, NULL, B, T, 0.3f, 1.0f, &r), TS_OK);
    assert_memory_equal(a.logits, b.logits, (size_t)N * c->vocab_size * sizeof(float));
    assert_memory_equal(a.params.grad, b.params.grad, a.params.numel * sizeof(float));
    assert_true(la == r.loss);
    ts_model_free(&a);
    ts_model_free(&b);
}

/* A model with D modules: the same main logits as without (the modules are
 * registered after the main model, so the same seed gives the same main
 * weights), and with λ = 0 (no balance loss) the same main gradients; the
 * modules' gradients are then exactly zero. */
static void modules_leave_the_main_model_alone(const ts_config *c0, int D) {
    ts_config c = *c0;
    c.num_nextn_predict_layers = D;
    ts_model a, b;
    make(&a, c0, TS_MODEL_GRADS, 11);
    make(&b, &c, TS_MODEL_GRADS, 11);
    assert_true(b.params.numel > a.params.numel);
    assert_memory_equal(a.params.data, b.params.data, a.params.numel * sizeof(float));
    int tokens[N], targets[N];
    batch(c0, tokens, targets, 6);
    ts_model_forward(&a, tokens, targets, B, T);
    ts_model_backward(&a);
    ts_mtp_loss_result r;
    assert_int_equal(ts_mtp_loss_step(&b, tokens, targets, NULL, B, T, 0.0f, 1.0f, &r), TS_OK);
    assert_memory_equal(a.logits, b.logits, (size_t)N * c.vocab_size * sizeof(float));
    assert_memory_equal(a.params.grad, b.params.grad, a.params.numel * sizeof(float));
    for (size_t i = a.params.numel; i < b.params.numel; i++) assert_true(b.params.grad[i] == 0.0f);
    assert_true(r.mtp_loss[0] > 0 && (D < 2 || r.mtp_loss[1] > 0));
    /* and with λ > 0 the main gradients do change: the modules' loss reaches the main model */
    ts_model_zero_grad(&b);
    assert_int_equal(ts_mtp_loss_step(&b, tokens, targets, NULL, B, T, 0.5f, 1.0f, &r), TS_OK);
    assert_memory_not_equal(a.params.grad, b.params.grad, a.params.numel * sizeof(float));
    ts_model_free(&a);
    ts_model_free(&b);
}

static void depth0_dense(void **state) {
    (void)state;
    ts_config c = dense(0);
    depth0_is_chapter5(&c);
    modules_leave_the_main_model_alone(&c, 1);
    modules_leave_the_main_model_alone(&c, 2);
}

static void depth0_mla_moe(void **state) {
    (void)state;
    ts_config c = mla_moe(0, 0.1f);
    depth0_is_chapter5(&c); /* with the balance loss: chapter 5 trains with it at weight 1 */
    c.aux_loss_alpha = 0.0f; /* the module's balance loss would reach the main model even at λ = 0 */
    modules_leave_the_main_model_alone(&c, 1);
}

/* The depth-k logits are what the module computes from the shifted inputs:
 * the row of depth 1 at position i reads t_{i+1}, and the target is the main
 * target at i+1; a sequence shorter than k+1 has no depth-k positions. */
static void depth_targets_are_shifted(void **state) {
    (void)state;
    int targets[N], out[N];
    for (int i = 0; i < N; i++) targets[i] = 100 + i;
    ts_mtp_targets(out, targets, B, T, 2);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T - 2; i++) assert_int_equal(out[b * (T - 2) + i], 100 + b * T + i + 2);
    assert_int_equal(ts_mtp_len(T, T), 0);
    assert_int_equal(ts_mtp_len(T, T + 3), 0);
    /* T = 2 with D = 2: depth 2 has no positions, and the objective still works */
    ts_config c = dense(2);
    ts_model m;
    make(&m, &c, TS_MODEL_GRADS, 1);
    int tokens[4] = {1, 2, 3, 4}, tg[4] = {2, 3, 4, 5};
    ts_mtp_loss_result r;
    assert_int_equal(ts_mtp_loss_step(&m, tokens, tg, NULL, 2, 2, 0.3f, 1.0f, &r), TS_OK);
    assert_true(r.mtp_loss[0] > 0 && r.mtp_loss[1] == 0.0f);
    ts_model_free(&m);
}

/* ---- whole-model gradient checks ---------------------------------------- */

/* The finite-difference side: a function of the current weights that returns
 * L = L_main + (λ/D)·Σ L_k + balance losses (forward only). The gc helper can
 * move it to double precision as it is: it builds nothing but reads the model. */
typedef struct {
    ts_model *m;
    const int *tokens, *targets;
    float lambda;
    int *ref_idx;      /* (L+D, N, K) routing at the unperturbed point (MoE) */
    int flips;         /* forwards whose routing differed */
} gc_ctx;

static int n_blocks(const ts_config *c) { return c->num_hidden_layers + c->num_nextn_predict_layers; }

/* Routing of every MoE block (main and modules) for the flip guard; rows beyond a module's positions stay 0. */
static void routing(const ts_model *m, int *idx) {
    const ts_config *c = &m->cfg;
    int K = c->num_experts_per_tok;
    for (int l = 0; l < n_blocks(c); l++) {
        int rows = l < c->num_hidden_layers ? N : B * ts_mtp_len(T, l - c->num_hidden_layers + 1);
        if (ts_moe_is_layer(c, l)) memcpy(idx + (size_t)l * N * K, m->acts[l].moe.topk_idx, (size_t)rows * K * sizeof(int));
    }
}

/* Do two routings choose the same sets (the order within a token's K does not matter)? */
static int same_sets(const int *a, const int *b, int rows, int K) {
    for (int t = 0; t < rows; t++)
        for (int k = 0; k < K; k++) {
            int found = 0;
            for (int j = 0; j < K; j++) found |= a[t * K + k] == b[t * K + j];
            if (!found) return 0;
        }
    return 1;
}

static double objective(void *ctx) {
    gc_ctx *g = ctx;
    ts_mtp_loss_result r;
    if (ts_mtp_eval(g->m, g->tokens, g->targets, B, T, &r)) return NAN;
    if (g->ref_idx) {
        const ts_config *c = &g->m->cfg;
        size_t n = (size_t)n_blocks(c) * N * c->num_experts_per_tok;
        int *now = calloc(n, sizeof(int));
        routing(g->m, now);
        g->flips += !same_sets(now, g->ref_idx, (int)(n / c->num_experts_per_tok), c->num_experts_per_tok);
        free(now);
    }
    return (double)r.main_loss + (double)g->lambda * r.mtp_mean + (double)r.aux_loss;
}

/* Smallest gap between the K-th and (K+1)-th biased score over the tokens of every MoE block (one group). */
static double routing_margin(const ts_model *m) {
    const ts_config *c = &m->cfg;
    int E = c->n_routed_experts, K = c->num_experts_per_tok;
    double worst = INFINITY;
    for (int l = 0; l < n_blocks(c); l++) {
        if (!ts_moe_is_layer(c, l)) continue;
        int rows = l < c->num_hidden_layers ? N : B * ts_mtp_len(T, l - c->num_hidden_layers + 1);
        for (int t = 0; t < rows; t++) {
            double v[16];
            for (int e = 0; e < E; e++) v[e] = m->acts[l].moe.scores[(size_t)t * E + e] + m->w.layers[l].moe.bias[e];
            for (int i = 0; i < E; i++) /* sort descending */
                for (int j = i + 1; j < E; j++)
                    if (v[j] > v[i]) {
                        double x = v[i];
                        v[i] = v[j];
                        v[j] = x;
                    }
            worst = fmin(worst, v[K - 1] - v[K]);
        }
    }
    return worst;
}

static void check_whole_model(ts_config c, float lambda, uint64_t seed) {
    ts_model m;
    int tokens[N], targets[N];
    int moe = c.n_routed_experts > 0, tries = 0;
    double margin = INFINITY;
    ts_mtp_loss_result r;
    for (;; seed++, tries++) { /* MoE: initialisations far from a routing tie (see test_ch05_moe.c) */
        assert_true(tries < 1000);
        make(&m, &c, TS_MODEL_GRADS, seed);
        for (int l = 0; l < n_blocks(&c) && moe; l++)
            if (ts_moe_is_layer(&c, l)) {
                ts_rng rr;
                ts_rng_seed(&rr, seed + 50, TS_STREAM_TEST);
                for (int e = 0; e < c.n_routed_experts; e++) m.w.layers[l].moe.bias[e] = 0.1f * (ts_rng_uniform(&rr) - 0.5f);
                for (int j = 0; j < c.n_routed_experts * c.hidden_size; j++) m.w.layers[l].moe.gate[j] *= 3.0f;
            }
        batch(&c, tokens, targets, seed + 1);
        if (!moe) break;
        assert_int_equal(ts_mtp_eval(&m, tokens, targets, B, T, &r), TS_OK);
        margin = routing_margin(&m);
        if (margin >= 0.03) break;
        ts_model_free(&m);
    }
    ts_model_zero_grad(&m);
    assert_int_equal(ts_mtp_loss_step(&m, tokens, targets, NULL, B, T, lambda, 1.0f, &r), TS_OK);
    if (c.aux_loss_alpha > 0) assert_true(m.mtp_aux_loss > 0);
    size_t nref = (size_t)n_blocks(&c) * N * (moe ? c.num_experts_per_tok : 1);
    int *ref = moe ? calloc(nref, sizeof(int)) : NULL;
    if (moe) routing(&m, ref);
    gc_ctx ctx = {&m, tokens, targets, lambda, ref, 0};
    assert_true(fabs(objective(&ctx) - r.loss) <= 1e-6 * fabs(r.loss)); /* the same objective both ways */
    enum { MAXT = 256 };
    ts_gc_tensor gt[MAXT];
    ts_gc_result res[MAXT];
    int n = 0, mtp_tensors = 0;
    for (int i = 0; i < m.params.count; i++) {
        ts_param *t = &m.params.params[i];
        if (strstr(t->name, "e_score_correction_bias")) continue; /* selection only: no gradient */
        assert_true(n < MAXT);
        int layer = -1;
        sscanf(t->name, "model.layers.%d.", &layer);
        mtp_tensors += layer >= c.num_hidden_layers;
        gt[n++] = (ts_gc_tensor){t->name, m.params.data + t->offset, m.params.grad + t->offset, t->numel};
    }
    assert_true(mtp_tensors > 0);
    double worst = ts_gradcheck(objective, &ctx, gt, n, 5e-3, 16, res, getenv("TS_GC_REPORT") ? stdout : NULL);
    printf("  MTP gradient check, %s, D = %d, lambda %g: %d tensors (%d in the modules), worst relative error %.2e, "
           "routing margin %.3f, flips %d\n",
           c.model_type, c.num_nextn_predict_layers, lambda, n, mtp_tensors, worst, margin, ctx.flips);
    assert_int_equal(ctx.flips, 0);
    for (int i = 0; i < n; i++) {
        const char *e = strstr(gt[i].name, ".mlp.experts.");
        int layer = 0, expert = -1;
        if (e) sscanf(gt[i].name, "model.layers.%d.mlp.experts.%d.", &layer, &expert);
        if (expert >= 0 && m.acts[layer].moe.counts[expert] == 0) continue; /* unchosen: zero both ways */
        if (!(res[i].grad_scale > 0)) fail_msg("%s received no gradient", gt[i].name);
        if (res[i].max_abs > 1e-3 * res[i].grad_scale + 1e-4)
            fail_msg("%s: error %.2e against a gradient scale of %.2e", gt[i].name, res[i].max_abs, res[i].grad_scale);
    }
    free(ref);
    ts_model_free(&m);
}

static void gradcheck_dense_d1(void **state) {
    (void)state;
    check_whole_model(dense(1), 0.3f, 1);
}

static void gradcheck_gqa_tied_d2(void **state) {
    (void)state;
    check_whole_model(gqa(2), 0.7f, 2);
}

static void gradcheck_mla_d2(void **state) {
    (void)state;
    check_whole_model(mla(2), 1.0f, 3);
}

static void gradcheck_mla_moe_d1(void **state) {
    (void)state;
    check_whole_model(mla_moe(1, 0.1f), 0.3f, 4);
}

/* ---- checkpoints ---------------------------------------------------------- */

static void checkpoints_keep_or_drop_the_modules(void **state) {
    (void)state;
    ts_config c = mla_moe(1, 0.0f);
    ts_model m, full, main_only;
    make(&m, &c, TS_MODEL_GRADS, 21);
    /* V3's names, module 1 at layer index L */
    char name[TS_NAME_MAX];
    const char *own[] = {"enorm.weight", "hnorm.weight", "eh_proj.weight", "shared_head.norm.weight",
                         "input_layernorm.weight", "self_attn.kv_a_proj_with_mqa.weight", "mlp.gate.weight",
                         "mlp.experts.0.up_proj.weight", "mlp.shared_experts.down_proj.weight"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        snprintf(name, sizeof name, "model.layers.%d.%s", c.num_hidden_layers, own[i]);
        if (ts_params_find(&m.params, name) < 0) fail_msg("no tensor %s", name);
    }
    int eh = ts_params_find(&m.params, "model.layers.2.eh_proj.weight");
    assert_int_equal(m.params.params[eh].shape[0], c.hidden_size);
    assert_int_equal(m.params.params[eh].shape[1], 2 * c.hidden_size);
    ts_model without;
    ts_config c_without = c;
    c_without.num_nextn_predict_layers = 0;
    assert_int_equal(ts_model_create(&without, &c_without, TS_MODEL_FROZEN), TS_OK);
    long long with_n = 0, without_n = 0; /* tensor sizes (params.numel also counts alignment padding) */
    for (int i = 0; i < m.params.count; i++) with_n += (long long)m.params.params[i].numel;
    for (int i = 0; i < without.params.count; i++) without_n += (long long)without.params.params[i].numel;
    assert_int_equal(with_n, without_n + ts_mtp_count_params(&c));
    ts_model_free(&without);

    const char *dir = tu_path("mtp-model");
    assert_int_equal(ts_checkpoint_save(&m, dir, NULL), TS_OK);
    int tokens[N], targets[N];
    batch(&c, tokens, targets, 2);
    assert_int_equal(ts_model_forward_logits(&m, tokens, B, T), TS_OK);
    assert_int_equal(ts_mtp_forward(&m, 1), TS_OK);

    /* whole: the modules come back, logits of both depths to the bit */
    assert_int_equal(ts_checkpoint_load(&full, dir, TS_MODEL_FROZEN), TS_OK);
    assert_int_equal(full.cfg.num_nextn_predict_layers, 1);
    assert_int_equal(ts_model_forward_logits(&full, tokens, B, T), TS_OK);
    assert_int_equal(ts_mtp_forward(&full, 1), TS_OK);
    assert_memory_equal(full.logits, m.logits, (size_t)N * c.vocab_size * sizeof(float));
    assert_memory_equal(full.mtp_acts[0].logits, m.mtp_acts[0].logits, (size_t)B * (T - 1) * c.vocab_size * sizeof(float));

    /* dropped: the main model alone, its logits to the bit */
    int dropped = -1;
    assert_int_equal(ts_checkpoint_load_main(&main_only, dir, TS_MODEL_FROZEN, &dropped), TS_OK);
    assert_int_equal(dropped, 1);
    assert_int_equal(main_only.cfg.num_nextn_predict_layers, 0);
    assert_true(main_only.params.numel < m.params.numel);
    assert_int_equal(ts_model_forward_logits(&main_only, tokens, B, T), TS_OK);
    assert_memory_equal(main_only.logits, m.logits, (size_t)N * c.vocab_size * sizeof(float));
    assert_int_equal(ts_mtp_forward(&main_only, 1), TS_ERR_ARG); /* no modules left */
    ts_clear_error();
    ts_model_free(&main_only);
    /* a checkpoint without modules loads the same way, dropping nothing */
    ts_model plain, again;
    ts_config c0 = c;
    c0.num_nextn_predict_layers = 0;
    make(&plain, &c0, TS_MODEL_GRADS, 21);
    assert_int_equal(ts_checkpoint_save(&plain, tu_path("plain"), NULL), TS_OK);
    assert_int_equal(ts_checkpoint_load_main(&again, tu_path("plain"), TS_MODEL_FROZEN, &dropped), TS_OK);
    assert_int_equal(dropped, 0);
    assert_memory_equal(again.params.data, plain.params.data, plain.params.numel * sizeof(float));
    ts_model_free(&again);
    ts_model_free(&plain);
    ts_model_free(&full);
    ts_model_free(&m);
}

static void bad_calls_fail_cleanly(void **state) {
    (void)state;
    ts_config c = dense(1);
    c.num_nextn_predict_layers = -1;
    assert_int_equal(ts_config_validate(&c, "cfg.json"), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "num_nextn_predict_layers"));
    ts_clear_error();
    assert_int_equal(ts_config_parse(&c, "{\"model_type\": \"llama\", \"vocab_size\": 13, \"hidden_size\": 8, "
                                         "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 4, "
                                         "\"max_position_embeddings\": 8, \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000, "
                                         "\"num_nextn_predict_layers\": 8}", "c.json"),
                     TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "num_nextn_predict_layers"));
    ts_clear_error();
    c = dense(1);
    ts_model m, f;
    make(&m, &c, TS_MODEL_GRADS, 1);
    float *none[1] = {NULL};
    float dh[N * 8];
    assert_int_equal(ts_mtp_backward(&m, none, dh, 1.0f), TS_ERR_ARG); /* before any forward */
    int tokens[N], targets[N];
    batch(&c, tokens, targets, 1);
    ts_model_forward_logits(&m, tokens, B, T);
    assert_int_equal(ts_mtp_forward(&m, 2), TS_ERR_ARG); /* deeper than the model */
    assert_int_equal(ts_mtp_backward(&m, none, dh, 1.0f), TS_ERR_ARG); /* the modules did not run */
    ts_mtp_loss_result r;
    assert_int_equal(ts_mtp_loss_step(&m, tokens, targets, NULL, B, T, -1.0f, 1.0f, &r), TS_ERR_ARG);
    make(&f, &c, TS_MODEL_FROZEN, 1);
    assert_int_equal(ts_mtp_loss_step(&f, tokens, targets, NULL, B, T, 0.3f, 1.0f, &r), TS_ERR_ARG);
    assert_int_equal(ts_mtp_eval(&f, tokens, targets, B, T, &r), TS_OK); /* a frozen model evaluates */
    ts_clear_error();
    ts_model_free(&f);
    ts_model_free(&m);
}

/* ---- decoding ------------------------------------------------------------ */

/* A verify step of two positions computes, row by row, what two one-token steps do. */
static void two_position_step_is_two_steps(const ts_config *c) {
    ts_model m;
    make(&m, c, TS_MODEL_FROZEN, 8);
    int V = c->vocab_size, Cc = c->hidden_size;
    int prompt[5] = {1, 4, 2, 7, 3};
    ts_kvcache one, two;
    assert_int_equal(ts_kvcache_create(&one, &m, 2, 16), TS_OK);
    assert_int_equal(ts_kvcache_create(&two, &m, 2, 16), TS_OK);
    float l1[2 * 13], l2[2 * 13], h2[2 * 8], first[13];
    assert_int_equal(ts_model_prefill(&m, &one, 0, prompt, 5, first), TS_OK);
    assert_int_equal(ts_model_prefill(&m, &two, 0, prompt, 5, first), TS_OK);
    int toks[2] = {5, 9};
    assert_int_equal(ts_model_decode_seq(&m, &one, 0, &toks[0], 1, l1, NULL), TS_OK);
    assert_int_equal(ts_model_decode_seq(&m, &one, 0, &toks[1], 1, l1 + V, NULL), TS_OK);
    assert_int_equal(ts_model_decode_seq(&m, &two, 0, toks, 2, l2, h2), TS_OK);
    assert_memory_equal(l1, l2, (size_t)2 * V * sizeof(float));
    /* the same as chapter 2's decode of sequence 0 */
    ts_kvcache three;
    assert_int_equal(ts_kvcache_create(&three, &m, 2, 16), TS_OK);
    assert_int_equal(ts_model_prefill(&m, &three, 0, prompt, 5, first), TS_OK);
    float l3[2 * 13];
    int act[2] = {1, 0}, t2[2] = {5, 0};
    assert_int_equal(ts_model_decode(&m, &three, t2, act, l3), TS_OK);
    assert_memory_equal(l3, l2, (size_t)V * sizeof(float));
    /* the hidden state is the training forward's, up to the order of a few sums */
    int seq[7] = {1, 4, 2, 7, 3, 5, 9};
    ts_model_forward_logits(&m, seq, 1, 7);
    for (int j = 0; j < Cc; j++) assert_float_equal(h2[Cc + j], m.hidden[6 * Cc + j], 1e-4);
    /* a rejected draft: truncate, then the next step overwrites its row */
    assert_int_equal(ts_kvcache_truncate(&two, 0, 6), TS_OK);
    assert_int_equal(ts_kvcache_truncate(&two, 0, 9), TS_ERR_RANGE);
    int three_toks[3] = {1, 2, 3};
    assert_int_equal(ts_model_decode_seq(&m, &two, 0, three_toks, 3, l2, NULL), TS_ERR_RANGE); /* 3 rows > 2 */
    ts_clear_error();
    ts_kvcache_free(&one);
    ts_kvcache_free(&two);
    ts_kvcache_free(&three);
    ts_model_free(&m);
}

/* The draft step computes module 1's training forward, one position at a time over its own cache. */
static void draft_is_the_training_forward(const ts_config *c) {
    ts_model m;
    make(&m, c, TS_MODEL_FROZEN, 12);
    int V = c->vocab_size, C = c->hidden_size;
    int seq[7] = {3, 1, 4, 1, 5, 9, 2};
    assert_int_equal(ts_model_forward_logits(&m, seq, 1, 7), TS_OK);
    assert_int_equal(ts_mtp_forward(&m, 1), TS_OK);
    float want[6 * 13], h[4 * 8], got[2 * 13], cat[2 * 16], logits[13];
    memcpy(want, m.mtp_acts[0].logits, sizeof want);
    memcpy(h, m.hidden, sizeof h); /* h⁰ at positions 0..3 */
    ts_kvcache mc, kc;
    assert_int_equal(ts_kvcache_create(&kc, &m, 2, 16), TS_OK);
    assert_int_equal(ts_mtp_cache_create(&mc, &m, 2, 16), TS_OK);
    assert_int_equal(ts_model_prefill(&m, &kc, 0, seq, 3, logits), TS_OK);
    assert_int_equal(ts_mtp_prefill(&m, &mc, 0, 3), TS_OK); /* module positions 0, 1 */
    assert_int_equal(mc.len[0], 2);
    /* module positions 2 and 3 in one step: h⁰_2, h⁰_3 and the tokens after them, t_3 and t_4 */
    assert_int_equal(ts_mtp_decode(&m, &mc, 0, h + 2 * C, seq + 3, 2, cat, got), TS_OK);
    for (int r = 0; r < 2; r++)
        for (int v = 0; v < V; v++) assert_float_equal(got[r * V + v], want[(2 + r) * V + v], 1e-4);
    ts_kvcache_free(&mc);
    ts_kvcache_free(&kc);
    ts_model_free(&m);
}

static void verify_step(void **state) {
    (void)state;
    ts_config c = dense(1), d = mla_moe(1, 0.0f);
    two_position_step_is_two_steps(&c);
    two_position_step_is_two_steps(&d);
    draft_is_the_training_forward(&c);
    draft_is_the_training_forward(&d);
}

/* Train a tiny model with its module a few hundred steps on sequences that
 * follow a rule (t_{i+1} = (t_i + step) mod V, a step per sequence), so the
 * module's drafts are often right and sometimes wrong. */
static void train_rule(ts_model *m, int steps) {
    const ts_config *c = &m->cfg;
    int V = c->vocab_size, TT = 12, BB = 4, tokens[48], targets[48];
    ts_adamw opt = ts_adamw_defaults();
    ts_rng r;
    ts_rng_seed(&r, 99, TS_STREAM_TEST);
    for (int s = 1; s <= steps; s++) {
        for (int b = 0; b < BB; b++) {
            int t = (int)ts_rng_below(&r, (uint64_t)V), step = 1 + (int)ts_rng_below(&r, 3);
            for (int i = 0; i < TT; i++) {
                tokens[b * TT + i] = t;
                t = (t + step) % V;
                targets[b * TT + i] = t;
            }
        }
        ts_model_zero_grad(m);
        ts_mtp_loss_result res;
        assert_int_equal(ts_mtp_loss_step(m, tokens, targets, NULL, BB, TT, 0.5f, 1.0f, &res), TS_OK);
        grad_clip(m->params.grad, m->params.numel, 1.0f);
        adamw_step(&m->params, &opt, 1e-2f, s);
    }
}

static int stop_at(int token, void *ctx) { return token == *(const int *)ctx; }

static void speculative_equals_greedy(const ts_config *c, int train_steps, ts_spec_stats *total) {
    ts_model m;
    make(&m, c, TS_MODEL_TRAIN, 4);
    if (train_steps) train_rule(&m, train_steps);
    ts_rng r;
    ts_rng_seed(&r, 1234, TS_STREAM_TEST);
    int V = c->vocab_size;
    for (int p = 0; p < 50; p++) { /* 50 prompts of 1..8 tokens, up to 20 new tokens, some with a stop token */
        int prompt[8], n = 1 + (int)ts_rng_below(&r, 8), max_new = 1 + (int)ts_rng_below(&r, 20);
        for (int i = 0; i < n; i++) prompt[i] = (int)ts_rng_below(&r, (uint64_t)V);
        int stop_token = p % 3 == 0 ? (int)ts_rng_below(&r, (uint64_t)V) : -1;
        int a[32], b[32], na = -1, nb = -1;
        ts_spec_stats sa, sb;
        assert_int_equal(ts_generate_greedy(&m, prompt, n, max_new, stop_at, &stop_token, a, &na, &sa), TS_OK);
        assert_int_equal(ts_generate_speculative(&m, prompt, n, max_new, stop_at, &stop_token, b, &nb, &sb), TS_OK);
        if (na != nb || memcmp(a, b, (size_t)na * sizeof(int)) != 0) {
            for (int i = 0; i < na || i < nb; i++)
                printf("  %d: greedy %d speculative %d\n", i, i < na ? a[i] : -1, i < nb ? b[i] : -1);
            fail_msg("prompt %d (%d tokens, max_new %d): speculative decoding differs from greedy", p, n, max_new);
        }
        assert_true(sb.tokens == na && sb.accepted <= sb.drafted && sb.main_passes <= sa.main_passes);
        total->tokens += sb.tokens;
        total->main_passes += sb.main_passes;
        total->drafted += sb.drafted;
        total->accepted += sb.accepted;
    }
    ts_model_free(&m);
}

static void speculative_decoding(void **state) {
    (void)state;
    ts_config cs[3] = {dense(1), gqa(1), mla_moe(1, 0.0f)};
    const char *names[3] = {"dense", "gqa", "mla+moe"};
    for (int i = 0; i < 3; i++) {
        for (int trained = 0; trained <= 1; trained++) {
            ts_spec_stats s = {0, 0, 0, 0};
            speculative_equals_greedy(&cs[i], trained ? 150 : 0, &s);
            printf("  %s (%s): 50 prompts, %ld tokens, %ld drafts, %ld accepted (%.0f%%), %.2f main passes per token\n",
                   names[i], trained ? "trained on a rule" : "random weights", s.tokens, s.drafted, s.accepted,
                   100.0 * s.accepted / (s.drafted ? s.drafted : 1), (double)s.main_passes / (s.tokens ? s.tokens : 1));
            if (trained) assert_true(s.accepted > 0 && s.accepted < s.drafted); /* both branches ran */
        }
    }
    /* a model without a module cannot draft */
    ts_config c0 = dense(0);
    ts_model m;
    make(&m, &c0, TS_MODEL_FROZEN, 1);
    int prompt[2] = {1, 2}, out[4], n;
    assert_int_equal(ts_generate_speculative(&m, prompt, 2, 4, NULL, NULL, out, &n, NULL), TS_ERR_ARG);
    ts_clear_error();
    ts_model_free(&m);
}

/* ---- the command line ------------------------------------------------------ */

/* `generate` drops the modules by default (saying so), --speculative prints
 * what --sequential prints, and the flags fail with a message naming the
 * problem and exit status 2 where they cannot work. */
static void cli_generate(void **state) {
    (void)state;
    char out[8192], spec[4096], seq[4096];
    const char *ts = tu_cli(), *dir = tu_dir, *root = getenv("TS_SRC") ? getenv("TS_SRC") : ".";
    assert_int_equal(tu_run(out, sizeof out, "'%s' data --out '%s/data' --pretrain 300 --pretrain-test 40 --sft 20 --sft-test 10 --rl 20 --test 10 --seed 1", ts, dir), 0);
    assert_int_equal(tu_run(out, sizeof out, "'%s' tokenizer train --input '%s/data/pretrain_train.txt' --vocab-size 270 "
                                             "--out '%s/tok.json'", ts, dir, dir), 0);
    const char *train = "'%s' pretrain --config '%s/configs/%s' --data '%s/data' --tokenizer '%s/tok.json' --out '%s/%s' "
                        "--steps 3 --warmup 1 --batch 2 --seq 16 --threads 1 --quiet";
    assert_int_equal(tu_run(out, sizeof out, train, ts, root, "ch06-mtp.json", dir, dir, dir, "mtp"), 0);
    assert_int_equal(tu_run(out, sizeof out, train, ts, root, "ch05-moe.json", dir, dir, dir, "plain"), 0);
    /* the metrics carry the module's loss */
    assert_int_equal(tu_run(out, sizeof out, "head -1 '%s/mtp/metrics.csv'", dir), 0);
    assert_non_null(strstr(out, "mtp_loss"));

    assert_int_equal(tu_run(out, sizeof out, "'%s' generate --model '%s/mtp' --max-new 8 'What is 1+2?'", ts, dir), 0);
    assert_non_null(strstr(out, "multi-token prediction module"));
    const char *gen = "{ '%s' generate --model '%s/mtp' --max-new 12 --%s 'What is 1+2?' 'What is 33-4?' 2>/dev/null; }";
    assert_int_equal(tu_run(seq, sizeof seq, gen, ts, dir, "sequential"), 0);
    assert_int_equal(tu_run(spec, sizeof spec, gen, ts, dir, "speculative"), 0);
    assert_int_equal(tu_count_lines(seq), 2);
    assert_string_equal(seq, spec);
    assert_int_equal(tu_run(out, sizeof out, "{ '%s' generate --model '%s/mtp' --speculative 'What is 1+2?' >/dev/null; }",
                            ts, dir), 0);
    assert_non_null(strstr(out, "acceptance"));

    assert_int_equal(tu_run(out, sizeof out, "'%s' generate --model '%s/plain' --speculative 'x'", ts, dir), 2);
    assert_non_null(strstr(out, "num_nextn_predict_layers"));
    assert_int_equal(tu_run(out, sizeof out, "'%s' generate --model '%s/mtp' --speculative --temperature 0.5 'x'", ts, dir),
                     2);
    assert_non_null(strstr(out, "greedily"));
    assert_int_equal(tu_run(out, sizeof out, "'%s' pretrain --config '%s/configs/ch06-mtp.json' --mtp-lambda -1 "
                                             "--data x --tokenizer x --out x", ts, root), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(depth0_dense),
        cmocka_unit_test(depth0_mla_moe),
        cmocka_unit_test(depth_targets_are_shifted),
        cmocka_unit_test(gradcheck_dense_d1),
        cmocka_unit_test(gradcheck_gqa_tied_d2),
        cmocka_unit_test(gradcheck_mla_d2),
        cmocka_unit_test(gradcheck_mla_moe_d1),
        cmocka_unit_test_setup_teardown(checkpoints_keep_or_drop_the_modules, tu_setup_dir, tu_teardown_dir),
        cmocka_unit_test(bad_calls_fail_cleanly),
        cmocka_unit_test(verify_step),
        cmocka_unit_test(speculative_decoding),
        cmocka_unit_test_setup_teardown(cli_generate, tu_setup_dir, tu_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
