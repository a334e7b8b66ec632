/* Appendix B: FP8 training. With the switch on, every linear layer inside the
 * blocks (MHA/GQA q/k/v/o, MLA q_a/q_b/kv_a/kv_b/o, the dense MLP, routed and
 * shared experts) computes exactly the hand-composed fp8_matmul_forward() /
 * fp8_matmul_backward() products of its own inputs, while the output head, the
 * router and the embedding stay float32; with the switch off every product is
 * matmul's, bit for bit; the setting is scoped to a step, recorded in the run
 * fingerprint, and the CLI's bad values give one line and exit status 2. */
#include "testutil.h"

#include "core/linear.h"
#include "core/ops.h"
#include "data/bpe.h"
#include "io/fileio.h"
#include "model/gqa.h"
#include "model/model.h"
#include "train/loop.h"

#ifdef _OPENMP
#include <omp.h>
#endif

enum { TB = 2, TT = 5, TN = TB * TT };

static float *fzeros(size_t n) {
    float *x = calloc(n ? n : 1, sizeof(float));
    assert_non_null(x);
    return x;
}

static void same_bits(const float *got, const float *want, size_t n, const char *what) {
    if (memcmp(got, want, n * sizeof(float)) == 0) return;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)))
            fail_msg("%s: element %zu is %.9g, the hand-composed product gives %.9g", what, i, got[i], want[i]);
}

static int differs(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) != 0; }

static const ts_fp8_config *tile_cfg(void) {
    static ts_fp8_config c;
    c = ts_fp8_default();
    return &c;
}

/* The products, composed by hand. */
static float *fp8_out(const float *inp, const float *w, int N, int C, int OC) {
    float *out = fzeros((size_t)N * OC);
    assert_int_equal(fp8_matmul_forward(out, inp, w, NULL, N, C, OC, tile_cfg()), TS_OK);
    return out;
}

static float *fp32_out(const float *inp, const float *w, int N, int C, int OC) {
    float *out = fzeros((size_t)N * OC);
    matmul_forward(out, inp, w, NULL, N, C, OC);
    return out;
}

/* dweight (OC,C) = doutᵀ·inp as the FP8 backward computes it, from zero. */
static float *fp8_dw(const float *dout, const float *inp, const float *w, int N, int C, int OC) {
    float *dw = fzeros((size_t)OC * C);
    assert_int_equal(fp8_matmul_backward(NULL, dw, NULL, dout, inp, w, N, C, OC, tile_cfg()), TS_OK);
    return dw;
}

/* dinp (N,C) += dout·weight as the FP8 backward computes it. */
static void fp8_dx_add(float *dinp, const float *dout, const float *inp, const float *w, int N, int C, int OC) {
    assert_int_equal(fp8_matmul_backward(dinp, NULL, NULL, dout, inp, w, N, C, OC, tile_cfg()), TS_OK);
}

static void check_out(const float *got, const float *inp, const float *w, int N, int C, int OC, const char *what) {
    float *want = fp8_out(inp, w, N, C, OC);
    same_bits(got, want, (size_t)N * OC, what);
    free(want);
}

static void check_dw(const float *got, const float *dout, const float *inp, const float *w, int N, int C, int OC,
                     const char *what) {
    float *want = fp8_dw(dout, inp, w, N, C, OC);
    same_bits(got, want, (size_t)OC * C, what);
    free(want);
}

/* ---- tiny models covering every call site ------------------------------- */

static ts_config base_config(void) {
    ts_config c;
    ts_config_default(&c);
    c.vocab_size = 13;
    c.hidden_size = 16;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.head_dim = 8;
    c.intermediate_size = 24;
    c.max_position_embeddings = 16;
    c.initializer_range = 0.4f;
    return c;
}

static ts_config mha_config(void) { return base_config(); }

static ts_config gqa_config(void) {
    ts_config c = base_config();
    c.num_attention_heads = 4;
    c.head_dim = 4;
    c.num_key_value_heads = 2;
    return c;
}

/* MLA with a query LoRA, a dense layer 0 and a MoE layer 1 (2 of 4 routed experts + 1 shared). */
static ts_config mla_moe_config(void) {
    ts_config c = base_config();
    strcpy(c.model_type, "deepseek_v3");
    c.arch = TS_ARCH_DEEPSEEK_V3;
    c.q_lora_rank = 8;
    c.kv_lora_rank = 6;
    c.qk_nope_head_dim = 3;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 5;
    c.n_routed_experts = 4;
    c.num_experts_per_tok = 2;
    c.n_shared_experts = 1;
    c.moe_intermediate_size = 6;
    c.first_k_dense_replace = 1;
    strcpy(c.scoring_func, "sigmoid");
    c.norm_topk_prob = 1;
    return c;
}

static void model_up(ts_model *m, const ts_config *c, int *tokens) {
    assert_int_equal(ts_model_create(m, c, TS_MODEL_GRADS), TS_OK);
    ts_model_init_weights(m, 7);
    assert_int_equal(ts_model_reserve(m, TB, TT), TS_OK);
    for (int i = 0; i < TN; i++) tokens[i] = (i * 5 + 3) % c->vocab_size;
}

static void fp8_forward(ts_model *m, const int *tokens) {
    ts_precision p = ts_precision_fp8(TS_FP8_FINE);
    assert_int_equal(ts_autocast_begin(&p), TS_OK);
    assert_int_equal(ts_model_forward_logits(m, tokens, TB, TT), TS_OK);
    assert_int_equal(ts_autocast_end(), TS_OK);
}

/* Query/key product then RoPE on `dim` of every head's `head` columns from `off`, as the layers do. */
static float *fp8_roped(const ts_model *m, const float *inp, const float *w, int C, int heads, int head, int off,
                        int dim) {
    float *q = fp8_out(inp, w, TN, C, heads * head);
    rope_forward(q + off, m->pos, TN, heads, heads * head, head, dim, m->rope_cos, m->rope_sin);
    return q;
}

static void check_attention_forward(const ts_model *m, int l) {
    const ts_config *c = &m->cfg;
    const ts_layer_acts *a = &m->acts[l];
    int C = c->hidden_size;
    if (m->attn != TS_ATTN_MLA) {
        const ts_mha_weights *w = &m->w.layers[l].attn;
        int H = c->num_attention_heads, Hkv = c->num_key_value_heads, D = c->head_dim;
        float *q = fp8_roped(m, a->ln1, w->q_proj, C, H, D, 0, D), *k = fp8_roped(m, a->ln1, w->k_proj, C, Hkv, D, 0, D);
        same_bits(a->attn.q, q, (size_t)TN * H * D, "q_proj (then RoPE)");
        same_bits(a->attn.k, k, (size_t)TN * Hkv * D, "k_proj (then RoPE)");
        check_out(a->attn.v, a->ln1, w->v_proj, TN, C, Hkv * D, "v_proj");
        check_out(a->attn_y, a->attn.ctx, w->o_proj, TN, H * D, C, "o_proj");
        free(q);
        free(k);
        return;
    }
    const ts_mla_weights *w = &m->w.layers[l].mla;
    int H = c->num_attention_heads, rq = c->q_lora_rank, dc = c->kv_lora_rank, dn = c->qk_nope_head_dim;
    int dr = c->qk_rope_head_dim, dv = c->v_head_dim, dq = dn + dr;
    check_out(a->mla.cq, a->ln1, w->q_a_proj, TN, C, rq, "q_a_proj");
    float *q = fp8_roped(m, a->mla.cq_n, w->q_b_proj, rq, H, dq, dn, dr);
    same_bits(a->mla.q, q, (size_t)TN * H * dq, "q_b_proj (then RoPE on q_rope)");
    float *kva = fp8_roped(m, a->ln1, w->kv_a_proj_with_mqa, C, 1, dc + dr, dc, dr);
    same_bits(a->mla.kva, kva, (size_t)TN * (dc + dr), "kv_a_proj_with_mqa (then RoPE on k_rope)");
    // kv_b_proj's output is split into the heads' k_nope and v
    float *kv = fp8_out(a->mla.ckv, w->kv_b_proj, TN, dc, H * (dn + dv));
    for (int n = 0; n < TN; n++)
        for (int h = 0; h < H; h++) {
            const float *src = kv + ((size_t)n * H + h) * (dn + dv);
            same_bits(a->mla.k + ((size_t)n * H + h) * dq, src, (size_t)dn, "kv_b_proj (k_nope)");
            same_bits(a->mla.v + ((size_t)n * H + h) * dv, src + dn, (size_t)dv, "kv_b_proj (v)");
        }
    check_out(a->attn_y, a->mla.ctx, w->o_proj, TN, H * dv, C, "o_proj (MLA)");
    free(q);
    free(kva);
    free(kv);
}

static void check_mlp_forward(const ts_mlp_acts *a, const float *x, float *y, const ts_mlp_weights *w, int N, int C,
                              int F, const char *what) {
    char name[96];
    snprintf(name, sizeof name, "%s gate_proj", what);
    check_out(a->gate, x, w->gate_proj, N, C, F, name);
    snprintf(name, sizeof name, "%s up_proj", what);
    check_out(a->up, x, w->up_proj, N, C, F, name);
    if (y) {
        snprintf(name, sizeof name, "%s down_proj", what);
        check_out(y, a->hidden, w->down_proj, N, F, C, name);
    }
}

static void check_ffn_forward(const ts_model *m, int l) {
    const ts_config *c = &m->cfg;
    const ts_layer_acts *a = &m->acts[l];
    int C = c->hidden_size;
    if (!ts_moe_is_layer(c, l)) {
        check_mlp_forward(&a->mlp, a->ln2, a->mlp_y, &m->w.layers[l].mlp, TN, C, c->intermediate_size, "mlp");
        return;
    }
    const ts_moe_weights *w = &m->w.layers[l].moe;
    const ts_moe_acts *e = &a->moe;
    int E = c->n_routed_experts, Fe = c->moe_intermediate_size;
    // the router stays float32: matmul's bits, which are not the FP8 product's
    float *r32 = fp32_out(a->ln2, w->gate, TN, C, E), *r8 = fp8_out(a->ln2, w->gate, TN, C, E);
    same_bits(e->logits, r32, (size_t)TN * E, "router (mlp.gate) in float32");
    assert_true(differs(r32, r8, (size_t)TN * E));
    free(r32);
    free(r8);
    // the shared expert (its output is summed with the routed ones, so gate and up only)
    check_mlp_forward(&e->shared, a->ln2, NULL, &w->shared, TN, C, Fe * c->n_shared_experts, "shared expert");
    for (int x = 0; x < E; x++) {
        int n = e->counts[x];
        size_t off = (size_t)e->offsets[x];
        if (n == 0) continue;
        ts_mlp_acts ea = {e->expert.gate + off * Fe, e->expert.up + off * Fe, e->expert.hidden + off * Fe};
        check_mlp_forward(&ea, e->xin + off * C, e->eout + off * C, &w->experts[x], n, C, Fe, "routed expert");
    }
}

static void forward_case(const ts_config *c, ts_attn_kind want_kind) {
    ts_model m;
    int tokens[TN];
    model_up(&m, c, tokens);
    assert_int_equal(m.attn, want_kind);
    fp8_forward(&m, tokens);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        check_attention_forward(&m, l);
        check_ffn_forward(&m, l);
    }
    // the output head stays float32
    int C = c->hidden_size, V = c->vocab_size;
    float *head = fp32_out(m.lnf, m.w.lm_head, TN, C, V), *head8 = fp8_out(m.lnf, m.w.lm_head, TN, C, V);
    same_bits(m.logits, head, (size_t)TN * V, "lm_head in float32");
    assert_true(differs(head, head8, (size_t)TN * V));
    // and the FP8 products are not float32's (or every check above would pass with the switch ignored)
    assert_false(ts_moe_is_layer(c, 0)); // layer 0 is dense in every case here
    float *v32 = fp32_out(m.acts[0].ln2, m.w.layers[0].mlp.up_proj, TN, C, c->intermediate_size);
    assert_true(differs(m.acts[0].mlp.up, v32, (size_t)TN * c->intermediate_size));
    free(head);
    free(head8);
    free(v32);
    ts_model_free(&m);
}

static void fp8_forward_is_hand_composed_products(void **state) {
    (void)state;
    ts_config mha = mha_config(), gqa = gqa_config(), mla = mla_moe_config();
    forward_case(&mha, TS_ATTN_MHA);
    forward_case(&gqa, TS_ATTN_GQA);
    forward_case(&mla, TS_ATTN_MLA);
}

/* ---- backward: each layer's products from its own saved inputs ---------- */

static void check_attention_backward(ts_model *m, const float *dy) {
    const ts_config *c = &m->cfg;
    const ts_layer_acts *a = &m->acts[0];
    ts_rope rope = ts_model_rope(m);
    int C = c->hidden_size;
    float *dx = fzeros((size_t)TN * C), *want_dx = fzeros((size_t)TN * C);
    ts_precision p = ts_precision_fp8(TS_FP8_FINE);
    ts_model_zero_grad(m);
    if (m->attn != TS_ATTN_MLA) {
        const ts_mha_weights *w = &m->w.layers[0].attn, *g = &m->g.layers[0].attn;
        const ts_mha_scratch *s = &m->attn_scratch;
        int H = c->num_attention_heads, Hkv = c->num_key_value_heads, D = c->head_dim;
        assert_int_equal(ts_autocast_begin(&p), TS_OK);
        if (m->attn == TS_ATTN_MHA) mha_backward(dx, g, s, dy, &a->attn, a->ln1, w, m->pos, &rope, c, TB, TT);
        else gqa_backward(dx, g, s, dy, &a->attn, a->ln1, w, m->pos, &rope, c, TB, TT);
        assert_int_equal(ts_autocast_end(), TS_OK);
        check_dw(g->o_proj, dy, a->attn.ctx, w->o_proj, TN, H * D, C, "d o_proj");
        float *d_ctx = fzeros((size_t)TN * H * D);
        fp8_dx_add(d_ctx, dy, a->attn.ctx, w->o_proj, TN, H * D, C);
        same_bits(s->d_ctx, d_ctx, (size_t)TN * H * D, "d ctx through o_proj");
        check_dw(g->q_proj, s->d_q, a->ln1, w->q_proj, TN, C, H * D, "d q_proj");
        check_dw(g->k_proj, s->d_k, a->ln1, w->k_proj, TN, C, Hkv * D, "d k_proj");
        check_dw(g->v_proj, s->d_v, a->ln1, w->v_proj, TN, C, Hkv * D, "d v_proj");
        fp8_dx_add(want_dx, s->d_q, a->ln1, w->q_proj, TN, C, H * D);
        fp8_dx_add(want_dx, s->d_k, a->ln1, w->k_proj, TN, C, Hkv * D);
        fp8_dx_add(want_dx, s->d_v, a->ln1, w->v_proj, TN, C, Hkv * D);
        same_bits(dx, want_dx, (size_t)TN * C, "dx through q/k/v_proj");
        // the same gradient in float32 is another number
        float *o32 = fzeros((size_t)C * H * D);
        matmul_backward(NULL, o32, NULL, dy, a->attn.ctx, w->o_proj, TN, H * D, C);
        assert_true(differs(g->o_proj, o32, (size_t)C * H * D));
        free(o32);
        free(d_ctx);
    } else {
        const ts_mla_weights *w = &m->w.layers[0].mla, *g = &m->g.layers[0].mla;
        const ts_mla_scratch *s = &m->mla_scratch;
        int H = c->num_attention_heads, rq = c->q_lora_rank, dc = c->kv_lora_rank, dn = c->qk_nope_head_dim;
        int dr = c->qk_rope_head_dim, dv = c->v_head_dim, dq = dn + dr;
        assert_int_equal(ts_autocast_begin(&p), TS_OK);
        mla_backward(dx, g, s, dy, &a->mla, a->ln1, w, m->pos, &rope, c, TB, TT);
        assert_int_equal(ts_autocast_end(), TS_OK);
        check_dw(g->o_proj, dy, a->mla.ctx, w->o_proj, TN, H * dv, C, "d o_proj (MLA)");
        check_dw(g->kv_b_proj, s->d_kv, a->mla.ckv, w->kv_b_proj, TN, dc, H * (dn + dv), "d kv_b_proj");
        check_dw(g->kv_a_proj_with_mqa, s->d_kva, a->ln1, w->kv_a_proj_with_mqa, TN, C, dc + dr, "d kv_a_proj");
        check_dw(g->q_b_proj, s->d_q, a->mla.cq_n, w->q_b_proj, TN, rq, H * dq, "d q_b_proj");
        check_dw(g->q_a_proj, s->d_cq, a->ln1, w->q_a_proj, TN, C, rq, "d q_a_proj");
        float *d_cq_n = fzeros((size_t)TN * rq);
        fp8_dx_add(d_cq_n, s->d_q, a->mla.cq_n, w->q_b_proj, TN, rq, H * dq);
        same_bits(s->d_cq_n, d_cq_n, (size_t)TN * rq, "d c_q through q_b_proj");
        fp8_dx_add(want_dx, s->d_kva, a->ln1, w->kv_a_proj_with_mqa, TN, C, dc + dr);
        fp8_dx_add(want_dx, s->d_cq, a->ln1, w->q_a_proj, TN, C, rq);
        same_bits(dx, want_dx, (size_t)TN * C, "dx through kv_a_proj and q_a_proj");
        free(d_cq_n);
    }
    free(dx);
    free(want_dx);
}

static void check_mlp_backward(const ts_mlp_weights *g, const ts_mlp_acts *d, const float *dy, const ts_mlp_acts *a,
                               const float *x, const ts_mlp_weights *w, int N, int C, int F, const float *dx) {
    check_dw(g->down_proj, dy, a->hidden, w->down_proj, N, F, C, "d down_proj");
    float *dh = fzeros((size_t)N * F), *want_dx = fzeros((size_t)N * C);
    fp8_dx_add(dh, dy, a->hidden, w->down_proj, N, F, C);
    same_bits(d->hidden, dh, (size_t)N * F, "d hidden through down_proj");
    check_dw(g->gate_proj, d->gate, x, w->gate_proj, N, C, F, "d gate_proj");
    check_dw(g->up_proj, d->up, x, w->up_proj, N, C, F, "d up_proj");
    if (dx) {
        fp8_dx_add(want_dx, d->gate, x, w->gate_proj, N, C, F);
        fp8_dx_add(want_dx, d->up, x, w->up_proj, N, C, F);
        same_bits(dx, want_dx, (size_t)N * C, "dx through gate_proj and up_proj");
    }
    free(dh);
    free(want_dx);
}

static void check_ffn_backward(ts_model *m, int l, const float *dy) {
    const ts_config *c = &m->cfg;
    const ts_layer_acts *a = &m->acts[l];
    int C = c->hidden_size;
    float *dx = fzeros((size_t)TN * C);
    ts_precision p = ts_precision_fp8(TS_FP8_FINE);
    ts_model_zero_grad(m);
    assert_int_equal(ts_autocast_begin(&p), TS_OK);
    if (!ts_moe_is_layer(c, l))
        mlp_backward(dx, &m->g.layers[l].mlp, &m->mlp_scratch, dy, &a->mlp, a->ln2, &m->w.layers[l].mlp, TN, C,
                     c->intermediate_size);
    else
        moe_backward(dx, &m->g.layers[l].moe, &m->moe_scratch, dy, &a->moe, a->ln2, &m->w.layers[l].moe, c, TB, TT);
    assert_int_equal(ts_autocast_end(), TS_OK);
    if (!ts_moe_is_layer(c, l)) {
        check_mlp_backward(&m->g.layers[l].mlp, &m->mlp_scratch, dy, &a->mlp, a->ln2, &m->w.layers[l].mlp, TN, C,
                           c->intermediate_size, dx);
        free(dx);
        return;
    }
    const ts_moe_weights *w = &m->w.layers[l].moe, *g = &m->g.layers[l].moe;
    const ts_moe_scratch *s = &m->moe_scratch;
    const ts_moe_acts *e = &a->moe;
    int E = c->n_routed_experts, Fe = c->moe_intermediate_size;
    // the router's weight gradient is float32: matmul_backward's bits
    float *gate32 = fzeros((size_t)E * C);
    matmul_backward(NULL, gate32, NULL, s->d_logits, a->ln2, w->gate, TN, C, E);
    same_bits(g->gate, gate32, (size_t)E * C, "d router (mlp.gate) in float32");
    float *gate8 = fp8_dw(s->d_logits, a->ln2, w->gate, TN, C, E);
    assert_true(differs(gate32, gate8, (size_t)E * C));
    // the shared expert sees dy itself; each routed expert its gathered rows of d_eout
    check_dw(g->shared.down_proj, dy, e->shared.hidden, w->shared.down_proj, TN, Fe * c->n_shared_experts, C,
             "d shared expert down_proj");
    int seen = 0;
    for (int x = 0; x < E; x++) {
        int n = e->counts[x];
        size_t off = (size_t)e->offsets[x];
        if (n == 0) continue;
        seen++;
        check_dw(g->experts[x].down_proj, s->d_eout + off * C, e->expert.hidden + off * Fe, w->experts[x].down_proj, n,
                 Fe, C, "d routed expert down_proj");
    }
    assert_true(seen > 0);
    free(gate32);
    free(gate8);
    free(dx);
}

static void backward_case(const ts_config *c) {
    ts_model m;
    int tokens[TN];
    model_up(&m, c, tokens);
    fp8_forward(&m, tokens);
    float *dy = fzeros((size_t)TN * c->hidden_size);
    tu_fill(dy, (size_t)TN * c->hidden_size, 1.0f, 11);
    check_attention_backward(&m, dy);
    for (int l = 0; l < c->num_hidden_layers; l++) check_ffn_backward(&m, l, dy);
    free(dy);
    ts_model_free(&m);
}

static void fp8_backward_is_hand_composed_products(void **state) {
    (void)state;
    ts_config mha = mha_config(), gqa = gqa_config(), mla = mla_moe_config();
    backward_case(&mha);
    backward_case(&gqa);
    backward_case(&mla);
}

/* The output head's and the embedding's gradients, in a whole backward under FP8,
 * are float32: the head's is matmul_backward() of the given d_logits and the saved
 * final-norm output; the embedding has no product at all, its gradient is the
 * scatter-add of what reaches block 0's input (which did pass FP8 products, as in V3). */
static void head_and_embedding_gradients_are_float32(void **state) {
    (void)state;
    ts_config c = mla_moe_config();
    ts_model m;
    int tokens[TN];
    model_up(&m, &c, tokens);
    int C = c.hidden_size, V = c.vocab_size;
    float *d_logits = fzeros((size_t)TN * V);
    tu_fill(d_logits, (size_t)TN * V, 0.1f, 5);
    ts_precision p = ts_precision_fp8(TS_FP8_FINE);
    ts_model_zero_grad(&m);
    assert_int_equal(ts_autocast_begin(&p), TS_OK);
    assert_int_equal(ts_model_forward_logits(&m, tokens, TB, TT), TS_OK);
    assert_int_equal(ts_model_backward_from(&m, d_logits, NULL, 1.0f), TS_OK);
    assert_int_equal(ts_autocast_end(), TS_OK);
    float *head = fzeros((size_t)V * C), *head8 = fp8_dw(d_logits, m.lnf, m.w.lm_head, TN, C, V);
    matmul_backward(NULL, head, NULL, d_logits, m.lnf, m.w.lm_head, TN, C, V);
    same_bits(m.g.lm_head, head, (size_t)V * C, "d lm_head in float32");
    assert_true(differs(head, head8, (size_t)V * C));
    float *emb = fzeros((size_t)V * C);
    embedding_backward(emb, m.d_res, m.tokens, TN, C);
    same_bits(m.g.embed_tokens, emb, (size_t)V * C, "d embed_tokens: float32 scatter-add");
    free(d_logits);
    free(head);
    free(head8);
    free(emb);
    ts_model_free(&m);
}

/* ---- switch off: today's bits ---------------------------------------------- */

static void fp32_setting_is_matmul_bit_for_bit(void **state) {
    (void)state;
    const int shapes[][3] = {{1, 7, 5}, {33, 64, 48}, {130, 200, 129}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        float *x = fzeros((size_t)N * C), *w = fzeros((size_t)OC * C), *b = fzeros(OC), *dy = fzeros((size_t)N * OC);
        tu_fill(x, (size_t)N * C, 1.0f, 1);
        tu_fill(w, (size_t)OC * C, 0.5f, 2);
        tu_fill(b, OC, 0.5f, 3);
        tu_fill(dy, (size_t)N * OC, 1.0f, 4);
        float *y1 = fzeros((size_t)N * OC), *y2 = fzeros((size_t)N * OC);
        float *dx1 = fzeros((size_t)N * C), *dx2 = fzeros((size_t)N * C);
        float *dw1 = fzeros((size_t)OC * C), *dw2 = fzeros((size_t)OC * C), *db1 = fzeros(OC), *db2 = fzeros(OC);
        tu_fill(dx1, (size_t)N * C, 1.0f, 6); // accumulate into something
        memcpy(dx2, dx1, (size_t)N * C * sizeof(float));
        matmul_forward(y1, x, w, b, N, C, OC);
        linear_forward(y2, x, w, b, N, C, OC);
        same_bits(y2, y1, (size_t)N * OC, "linear_forward outside autocast");
        matmul_backward(dx1, dw1, db1, dy, x, w, N, C, OC);
        linear_backward(dx2, dw2, db2, dy, x, w, N, C, OC);
        same_bits(dx2, dx1, (size_t)N * C, "linear_backward dinp");
        same_bits(dw2, dw1, (size_t)OC * C, "linear_backward dweight");
        same_bits(db2, db1, (size_t)OC, "linear_backward dbias");
        // and FP8 does change them
        ts_precision p = ts_precision_fp8(TS_FP8_FINE);
        assert_int_equal(ts_autocast_begin(&p), TS_OK);
        linear_forward(y2, x, w, b, N, C, OC);
        assert_int_equal(ts_autocast_end(), TS_OK);
        assert_true(differs(y2, y1, (size_t)N * OC));
        free(x), free(w), free(b), free(dy), free(y1), free(y2), free(dx1), free(dx2);
        free(dw1), free(dw2), free(db1), free(db2);
    }
}

/* A whole forward and backward: no setting, an explicit float32 setting, and a
 * float32 pass after an FP8 step all give the same bits. */
static void fp32_model_unchanged_and_fp8_scoped_to_the_step(void **state) {
    (void)state;
    ts_config c = mla_moe_config();
    ts_model m;
    int tokens[TN];
    model_up(&m, &c, tokens);
    size_t nl = (size_t)TN * c.vocab_size, ng = m.params.numel;
    float *logits = fzeros(nl), *grads = fzeros(ng);
    ts_model_zero_grad(&m);
    assert_int_equal(ts_model_forward_logits(&m, tokens, TB, TT), TS_OK);
    float *d_logits = fzeros(nl);
    tu_fill(d_logits, nl, 0.1f, 9);
    assert_int_equal(ts_model_backward_from(&m, d_logits, NULL, 1.0f), TS_OK);
    memcpy(logits, m.logits, nl * sizeof(float));
    memcpy(grads, m.params.grad, ng * sizeof(float));
    const ts_precision modes[3] = {ts_precision_fp32(), ts_precision_fp8(TS_FP8_FINE), ts_precision_fp32()};
    for (int i = 0; i < 3; i++) {
        ts_model_zero_grad(&m);
        assert_int_equal(ts_autocast_begin(&modes[i]), TS_OK);
        assert_int_equal(ts_model_forward_logits(&m, tokens, TB, TT), TS_OK);
        assert_int_equal(ts_model_backward_from(&m, d_logits, NULL, 1.0f), TS_OK);
        assert_int_equal(ts_autocast_end(), TS_OK);
        if (i == 1) {
            assert_true(differs(m.logits, logits, nl));
            assert_true(differs(m.params.grad, grads, ng));
            // after ts_autocast_end(): float32 again, with no setting at all
            ts_model_zero_grad(&m);
            assert_int_equal(ts_model_forward_logits(&m, tokens, TB, TT), TS_OK);
            assert_int_equal(ts_model_backward_from(&m, d_logits, NULL, 1.0f), TS_OK);
        }
        same_bits(m.logits, logits, nl, "logits in float32");
        same_bits(m.params.grad, grads, ng, "gradients in float32");
    }
    free(logits);
    free(grads);
    free(d_logits);
    ts_model_free(&m);
}

/* ---- the setting itself ------------------------------------------------------ */

static void autocast_refuses_nesting_bad_knobs_and_parallel_regions(void **state) {
    (void)state;
    ts_precision p = ts_precision_fp8(TS_FP8_FINE), q = ts_precision_fp8(TS_FP8_PER_TENSOR);
    assert_int_equal(ts_autocast_current().mode, TS_PRECISION_FP32);
    assert_int_equal(ts_autocast_begin(&p), TS_OK);
    assert_int_equal(ts_autocast_current().mode, TS_PRECISION_FP8);
    assert_int_equal(ts_autocast_begin(&q), TS_ERR_ARG); // no nesting, and the setting is unchanged
    assert_non_null(strstr(ts_last_error(), "nest"));
    assert_int_equal(ts_autocast_current().fp8.scaling, TS_FP8_FINE);
    assert_int_equal(ts_autocast_end(), TS_OK);
    assert_int_equal(ts_autocast_current().mode, TS_PRECISION_FP32);
    ts_precision bad = p;
    bad.fp8.promote = 96; // straddles the 128-wide tiles
    assert_int_equal(ts_autocast_begin(&bad), TS_ERR_ARG);
    bad.fp8.promote = 0; // never promoting needs one tile along K
    assert_int_equal(ts_autocast_begin(&bad), TS_ERR_ARG);
    bad = q;
    bad.fp8.promote = 0; // ...which per-tensor scaling has
    assert_int_equal(ts_autocast_begin(&bad), TS_OK);
    assert_int_equal(ts_autocast_end(), TS_OK);
    bad = p;
    bad.fp8.acc_bits = 25;
    assert_int_equal(ts_autocast_begin(&bad), TS_ERR_ARG);
    bad = p;
    bad.mode = (ts_precision_mode)7;
    assert_int_equal(ts_autocast_begin(&bad), TS_ERR_ARG);
    assert_int_equal(ts_autocast_current().mode, TS_PRECISION_FP32);
#ifdef _OPENMP
    int refused = -1, ended = -1, inside = 0;
#pragma omp parallel num_threads(2)
    {
#pragma omp master
        {
            inside = omp_in_parallel();
            refused = ts_autocast_begin(&p);
            ended = ts_autocast_end();
        }
    }
    if (inside) { // a team of one thread is not a parallel region (OMP_NUM_THREADS=1, no nesting)
        assert_int_equal(refused, TS_ERR_ARG);
        assert_int_equal(ended, TS_ERR_ARG);
        assert_int_equal(ts_autocast_current().mode, TS_PRECISION_FP32);
    }
#endif
}

static void fingerprint_records_the_precision(void **state) {
    (void)state;
    ts_config c = mha_config();
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, TS_MODEL_GRADS), TS_OK);
    ts_train_opts o = ts_train_opts_default();
    uint64_t fp32 = ts_train_fingerprint(&m, &o);
    ts_train_opts junk = o; // float32 ignores the FP8 knobs: older runs keep their fingerprints
    junk.precision.fp8.promote = 64;
    junk.precision.fp8.scaling = TS_FP8_PER_TENSOR;
    assert_true(ts_train_fingerprint(&m, &junk) == fp32);
    o.precision = ts_precision_fp8(TS_FP8_FINE);
    uint64_t tile = ts_train_fingerprint(&m, &o);
    o.precision = ts_precision_fp8(TS_FP8_PER_TENSOR);
    uint64_t tensor = ts_train_fingerprint(&m, &o);
    assert_true(tile != fp32 && tensor != fp32 && tile != tensor);
    ts_model_free(&m);
}

/* ---- the command line ----------------------------------------------------------- */

static char root[64], flags[1024];

static int setup_cli(void **state) {
    (void)state;
    tu_tmpdir(root);
    size_t cap = 1 << 16, used = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int i = 0; used + 64 < cap && i < 2000; i++)
        used += (size_t)snprintf(text + used, cap - used, "%d+%d=%d. %d*%d=%d.\n", i % 97, i % 13, i % 97 + i % 13,
                                 i % 11, i % 7, (i % 11) * (i % 7));
    char corpus[256], tok_path[256], cfg_path[256];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", root);
    assert_int_equal(ts_write_file_atomic(corpus, text, used), TS_OK);
    bpe_tokenizer tok;
    assert_int_equal(bpe_train(&tok, text, used, 270, NULL, NULL), TS_OK);
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", root);
    assert_int_equal(bpe_save(&tok, tok_path), TS_OK);
    ts_config c = base_config();
    c.vocab_size = tok.vocab_size;
    c.max_position_embeddings = 32;
    c.initializer_range = 0.02f;
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", root);
    assert_int_equal(ts_config_save(&c, cfg_path), TS_OK);
    bpe_free(&tok);
    free(text);
    snprintf(flags, sizeof flags,
             "--config '%s' --text '%s' --tokenizer '%s' --steps 2 --warmup 1 --batch 2 --seq 12 --eval-every 1 "
             "--eval-batches 1 --save-every 1 --threads 1",
             cfg_path, corpus, tok_path);
    return 0;
}

static int teardown_cli(void **state) {
    (void)state;
    tu_rmdir(root);
    return 0;
}

static int cli(char *out, size_t cap, const char *dir, const char *extra) {
    return tu_run(out, cap, "'%s' pretrain --out '%s/%s' %s %s", tu_cli(), root, dir, flags, extra);
}

static void expect_one_line(const char *dir, const char *extra, const char *needle) {
    char out[4096];
    int rc = cli(out, sizeof out, dir, extra);
    if (rc != 2 || tu_count_lines(out) != 1 || !strstr(out, needle))
        fail_msg("pretrain %s: exit %d, expected 2 and one line naming '%s':\n%s", extra, rc, needle, out);
}

static void cli_bad_fp8_flags(void **state) {
    (void)state;
    expect_one_line("bad1", "--fp8 --fp8-scaling block", "--fp8-scaling must be tile or tensor, got 'block'");
    expect_one_line("bad2", "--fp8 --fp8-scaling ''", "--fp8-scaling must be tile or tensor");
    expect_one_line("bad3", "--fp8-scaling tensor", "--fp8-scaling needs --fp8");
    expect_one_line("bad4", "--fp8=1", "--fp8 takes no value");
    expect_one_line("bad5", "--fp8 --fp8-scaling", "--fp8-scaling needs a value");
}

static void cli_fp8_run_and_resume_keep_the_precision(void **state) {
    (void)state;
    char out[8192];
    int rc = cli(out, sizeof out, "run", "--fp8 --stop-after 1");
    if (rc != 0) fail_msg("pretrain --fp8 failed (%d):\n%s", rc, out);
    assert_non_null(strstr(out, "linear layers in fp8 (tile scaling)"));
    // a resume that asks for another precision is refused by the fingerprint
    expect_one_line("run", "--resume --quiet", "fingerprint");
    expect_one_line("run", "--resume --quiet --fp8 --fp8-scaling tensor", "fingerprint");
    rc = cli(out, sizeof out, "run", "--resume --quiet --fp8 --fp8-scaling tile");
    if (rc != 0) fail_msg("resume with the same precision failed (%d):\n%s", rc, out);
    // FP8 changed the numbers: the same run in float32 ends elsewhere
    rc = cli(out, sizeof out, "fp32", "--quiet");
    assert_int_equal(rc, 0);
    assert_true(tu_run(NULL, 0, "cmp -s '%s/run/model.safetensors' '%s/fp32/model.safetensors'", root, root) != 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fp8_forward_is_hand_composed_products),
        cmocka_unit_test(fp8_backward_is_hand_composed_products),
        cmocka_unit_test(head_and_embedding_gradients_are_float32),
        cmocka_unit_test(fp32_setting_is_matmul_bit_for_bit),
        cmocka_unit_test(fp32_model_unchanged_and_fp8_scoped_to_the_step),
        cmocka_unit_test(autocast_refuses_nesting_bad_knobs_and_parallel_regions),
        cmocka_unit_test(fingerprint_records_the_precision),
    };
    const struct CMUnitTest cli_tests[] = {
        cmocka_unit_test(cli_bad_fp8_flags),
        cmocka_unit_test(cli_fp8_run_and_resume_keep_the_precision),
    };
    int failed = cmocka_run_group_tests_name("appB autocast", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("appB --fp8", cli_tests, setup_cli, teardown_cli);
    return failed;
}
