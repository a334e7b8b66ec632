/**
 * @file model.c
 * @brief The chapter-2 transformer: parameters, forward, backward.
 *
 * Every block is written as a forward and a backward with the same shape
 * comments; the backward walks the forward's lines in reverse. Gradients of
 * the residual stream flow through one buffer (d_res): a residual connection
 * `y = x + f(x)` passes dL/dy straight through to dL/dx, and f's backward adds
 * its own contribution on top.
 */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "model/gqa.h"

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

static int add2(ts_params *p, const char *name, int rows, int cols) {
    int shape[2] = {rows, cols};
    return ts_params_add(p, name, 2, shape, 0);
}

static int add1(ts_params *p, const char *name, int n) {
    int shape[1] = {n};
    return ts_params_add(p, name, 1, shape, 1); /* norm weights: no weight decay */
}

/* Point a ts_weights at base (params.data or params.grad) using the registry. */
static void bind_views(ts_model *m, ts_weights *w, float *base) {
    const ts_params *p = &m->params;
    char name[TS_NAME_MAX];
#define VIEW(dst, ...)                                    \
    do {                                                  \
        snprintf(name, sizeof name, __VA_ARGS__);         \
        int idx_ = ts_params_find(p, name);               \
        (dst) = idx_ >= 0 ? base + p->params[idx_].offset : NULL; \
    } while (0)
    VIEW(w->embed_tokens, "model.embed_tokens.weight");
    // the main layers, then the MTP modules' blocks at layer indices L..L+D-1 (chapter 6)
    for (int l = 0; l < m->cfg.num_hidden_layers + m->cfg.num_nextn_predict_layers; l++) {
        ts_layer_weights *lw = &w->layers[l];
        VIEW(lw->input_layernorm, "model.layers.%d.input_layernorm.weight", l);
        VIEW(lw->attn.q_proj, "model.layers.%d.self_attn.q_proj.weight", l);
        VIEW(lw->attn.k_proj, "model.layers.%d.self_attn.k_proj.weight", l);
        VIEW(lw->attn.v_proj, "model.layers.%d.self_attn.v_proj.weight", l);
        VIEW(lw->attn.o_proj, "model.layers.%d.self_attn.o_proj.weight", l);
        VIEW(lw->mla.q_a_proj, "model.layers.%d.self_attn.q_a_proj.weight", l); // MLA (chapter 4)
        VIEW(lw->mla.q_a_layernorm, "model.layers.%d.self_attn.q_a_layernorm.weight", l);
        VIEW(lw->mla.q_b_proj, "model.layers.%d.self_attn.q_b_proj.weight", l);
        VIEW(lw->mla.q_proj, "model.layers.%d.self_attn.q_proj.weight", l);
        VIEW(lw->mla.kv_a_proj_with_mqa, "model.layers.%d.self_attn.kv_a_proj_with_mqa.weight", l);
        VIEW(lw->mla.kv_a_layernorm, "model.layers.%d.self_attn.kv_a_layernorm.weight", l);
        VIEW(lw->mla.kv_b_proj, "model.layers.%d.self_attn.kv_b_proj.weight", l);
        VIEW(lw->mla.o_proj, "model.layers.%d.self_attn.o_proj.weight", l);
        VIEW(lw->post_attention_layernorm, "model.layers.%d.post_attention_layernorm.weight", l);
        VIEW(lw->mlp.gate_proj, "model.layers.%d.mlp.gate_proj.weight", l);
        VIEW(lw->mlp.up_proj, "model.layers.%d.mlp.up_proj.weight", l);
        VIEW(lw->mlp.down_proj, "model.layers.%d.mlp.down_proj.weight", l);
        if (ts_moe_is_layer(&m->cfg, l)) moe_bind(&lw->moe, p, base, &m->cfg, l); // chapter 5
    }
    VIEW(w->norm, "model.norm.weight");
    if (m->cfg.tie_word_embeddings) w->lm_head = w->embed_tokens;
    else VIEW(w->lm_head, "lm_head.weight");
    if (w->mtp) mtp_bind(w->mtp, p, base, &m->cfg); // chapter 6
#undef VIEW
}

int ts_block_register(ts_params *p, const ts_config *cfg, int l) {
    int C = cfg->hidden_size, F = cfg->intermediate_size, bad = 0;
    char name[TS_NAME_MAX];
#define NAME(...) (snprintf(name, sizeof name, __VA_ARGS__), name)
    bad |= add1(p, NAME("model.layers.%d.input_layernorm.weight", l), C) < 0;
    bad |= (ts_attn_kind_of(cfg) == TS_ATTN_MLA ? mla_register(p, cfg, l) : mha_register(p, cfg, l)) < 0;
    bad |= add1(p, NAME("model.layers.%d.post_attention_layernorm.weight", l), C) < 0;
    if (ts_moe_is_layer(cfg, l)) // chapter 5: router, routed and shared experts
        return bad | (moe_register(p, cfg, l) < 0) ? -1 : 0;
    bad |= add2(p, NAME("model.layers.%d.mlp.gate_proj.weight", l), F, C) < 0;
    bad |= add2(p, NAME("model.layers.%d.mlp.up_proj.weight", l), F, C) < 0;
    bad |= add2(p, NAME("model.layers.%d.mlp.down_proj.weight", l), C, F) < 0;
#undef NAME
    return bad ? -1 : 0;
}

ts_status ts_model_create(ts_model *m, const ts_config *cfg, ts_model_mode mode) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (mode != TS_MODEL_GRADS && mode != TS_MODEL_TRAIN && mode != TS_MODEL_FROZEN)
        return ts_fail(TS_ERR_ARG, "model mode %d: expected TS_MODEL_GRADS, TS_MODEL_TRAIN or TS_MODEL_FROZEN",
                       (int)mode);
    m->mode = mode;
    int frozen = mode == TS_MODEL_FROZEN;
    ts_status st = ts_config_validate(cfg, "config");
    if (st) return st;
    m->attn = ts_attn_kind_of(cfg);
    int V = cfg->vocab_size, C = cfg->hidden_size, L = cfg->num_hidden_layers;
    int D = cfg->head_dim;

    ts_params *p = &m->params;
    ts_params_init(p);
    int bad = add2(p, "model.embed_tokens.weight", V, C) < 0;
    for (int l = 0; l < L && !bad; l++) bad |= ts_block_register(p, cfg, l) < 0;
    bad |= add1(p, "model.norm.weight", C) < 0;
    if (!cfg->tie_word_embeddings) bad |= add2(p, "lm_head.weight", V, C) < 0;
    if (!bad && cfg->num_nextn_predict_layers > 0) bad |= mtp_register(p, cfg) < 0; // chapter 6: after all the rest
    if (bad) return TS_ERR_ARG;
    /* A frozen model (teacher, reference, generation) holds its weights only. */
    if ((st = frozen ? ts_params_alloc_frozen(p) : ts_params_alloc(p, mode == TS_MODEL_TRAIN))) return st;

    int LD = L + cfg->num_nextn_predict_layers, MD = cfg->num_nextn_predict_layers; /* main + MTP blocks */
    m->w.layers = ts_calloc((size_t)LD, sizeof(ts_layer_weights), "layer views");
    m->g.layers = frozen ? NULL : ts_calloc((size_t)LD, sizeof(ts_layer_weights), "layer views");
    if (MD > 0) {
        m->w.mtp = ts_calloc((size_t)MD, sizeof(ts_mtp_weights), "MTP views");
        m->g.mtp = frozen ? NULL : ts_calloc((size_t)MD, sizeof(ts_mtp_weights), "MTP views");
        if (!m->w.mtp || (!frozen && !m->g.mtp)) return TS_ERR_NOMEM;
    }
    int P = cfg->max_position_embeddings;
    int RD = m->attn == TS_ATTN_MLA ? cfg->qk_rope_head_dim : D; /* rotated dims per head */
    m->rope_cos = ts_malloc((size_t)P * (RD / 2) * sizeof(float), "RoPE table");
    m->rope_sin = ts_malloc((size_t)P * (RD / 2) * sizeof(float), "RoPE table");
    float *inv_freq = ts_malloc((size_t)(RD / 2) * sizeof(float), "RoPE frequencies");
    size_t E = cfg->n_routed_experts;
    m->expert_views = E ? ts_calloc(2 * (size_t)LD * E, sizeof(ts_mlp_weights), "expert views") : NULL;
    if (!m->w.layers || (!frozen && !m->g.layers) || !m->rope_cos || !m->rope_sin || !inv_freq ||
        (E && !m->expert_views)) {
        free(inv_freq);
        return TS_ERR_NOMEM;
    }
    for (int l = 0; l < LD && E; l++) {
        m->w.layers[l].moe.experts = m->expert_views + (size_t)l * E;
        if (!frozen) m->g.layers[l].moe.experts = m->expert_views + (size_t)(LD + l) * E;
    }
    bind_views(m, &m->w, p->data);
    if (!frozen) bind_views(m, &m->g, p->grad); // a frozen model's g stays all NULL
    rope_inv_freq(inv_freq, RD, cfg->rope_theta, cfg->has_yarn ? &cfg->yarn : NULL);
    rope_table(m->rope_cos, m->rope_sin, inv_freq, RD, P);
    if (m->attn == TS_ATTN_MLA) // YaRN's amplitude, as DeepSeek applies it
        mla_scale_rope_table(m->rope_cos, m->rope_sin, cfg);
    free(inv_freq);
    return TS_OK;
}

void ts_model_init_weights(ts_model *m, uint64_t seed) {
    ts_rng rng;
    ts_rng_seed(&rng, seed, TS_STREAM_INIT);
    float std = m->cfg.initializer_range;
    /* Output projections write into the residual stream once per block; scaling
     * them by 1/sqrt(2L) keeps the stream's variance flat with depth (GPT-2). */
    float out_std = std / sqrtf(2.0f * (float)m->cfg.num_hidden_layers);
    for (int i = 0; i < m->params.count; i++) {
        ts_param *t = &m->params.params[i];
        float *x = m->params.data + t->offset;
        if (t->ndim == 1) { // norm weights start at 1; the MoE selection bias at 0
            float v = strstr(t->name, "e_score_correction_bias") ? 0.0f : 1.0f;
            for (size_t j = 0; j < t->numel; j++) x[j] = v;
        } else {
            int is_out = strstr(t->name, "o_proj") || strstr(t->name, "down_proj");
            ts_rng_fill_normal(&rng, x, (long)t->numel, is_out ? out_std : std);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Activations                                                         */
/* ------------------------------------------------------------------ */

/* Carve every buffer out of the arena; with a measuring arena this only sizes it. */
static void carve(ts_model *m, ts_arena *a, int B, int T) {
    const ts_config *c = &m->cfg;
    size_t N = (size_t)B * T, C = c->hidden_size, V = c->vocab_size, F = c->intermediate_size;
    m->tokens = ts_arena_ints(a, N);
    m->targets = ts_arena_ints(a, N);
    m->pos = ts_arena_ints(a, N);
    m->embed = ts_arena_floats(a, N * C);
    for (int l = 0; l < c->num_hidden_layers + c->num_nextn_predict_layers; l++) { // main, then MTP blocks
        ts_layer_acts *s = &m->acts[l];
        s->ln1 = ts_arena_floats(a, N * C);
        s->ln1_rstd = ts_arena_floats(a, N);
        if (m->attn == TS_ATTN_MLA) mla_carve_acts(&s->mla, a, c, B, T); // chapter 4
        else mha_carve_acts(&s->attn, a, c, B, T);
        s->attn_y = ts_arena_floats(a, N * C);
        s->res1 = ts_arena_floats(a, N * C);
        s->ln2 = ts_arena_floats(a, N * C);
        s->ln2_rstd = ts_arena_floats(a, N);
        if (ts_moe_is_layer(c, l)) {
            moe_carve_acts(&s->moe, a, c, B, T); // chapter 5
        } else {
            s->mlp.gate = ts_arena_floats(a, N * F);
            s->mlp.up = ts_arena_floats(a, N * F);
            s->mlp.hidden = ts_arena_floats(a, N * F);
        }
        s->mlp_y = ts_arena_floats(a, N * C);
        s->out = ts_arena_floats(a, N * C);
    }
    m->lnf = ts_arena_floats(a, N * C);
    m->lnf_rstd = ts_arena_floats(a, N);
    m->logits = ts_arena_floats(a, N * V);
    m->losses = ts_arena_floats(a, 2 * N); /* losses, then dloss per row */
    if (m->mode != TS_MODEL_FROZEN) { // the backward's scratch: a frozen model has none
        m->d_res = ts_arena_floats(a, N * C);
        m->d_ln = ts_arena_floats(a, N * C);
        m->d_logits = ts_arena_floats(a, N * V);
    }
    if (c->num_nextn_predict_layers > 0) // chapter 6
        mtp_carve(m->mtp_acts, &m->mtp_scratch, a, c, m->mode == TS_MODEL_FROZEN, B, T);
    if (m->attn == TS_ATTN_MLA) mla_carve_scratch(&m->mla_scratch, a, c, B, T); // MLA's forward uses it too
    else if (m->mode != TS_MODEL_FROZEN) mha_carve_scratch(&m->attn_scratch, a, c, B, T);
    if (m->mode == TS_MODEL_FROZEN) return;
    m->mlp_scratch.gate = ts_arena_floats(a, N * F);
    m->mlp_scratch.up = ts_arena_floats(a, N * F);
    m->mlp_scratch.hidden = ts_arena_floats(a, N * F);
    if (c->n_routed_experts > 0) moe_carve_scratch(&m->moe_scratch, a, c, (int)N);
}

ts_status ts_model_reserve(ts_model *m, int B, int T) {
    if (B <= 0 || T <= 0 || T > m->cfg.max_position_embeddings)
        return ts_fail(TS_ERR_RANGE, "batch shape %dx%d: need B >= 1 and 1 <= T <= max_position_embeddings (%d)", B, T,
                       m->cfg.max_position_embeddings);
    if (m->B >= B && m->T >= T && m->arena.base) return TS_OK;
    ts_arena_free(&m->arena);
    free(m->acts);
    free(m->mtp_acts);
    int MD = m->cfg.num_nextn_predict_layers;
    m->acts = ts_calloc((size_t)(m->cfg.num_hidden_layers + MD), sizeof(ts_layer_acts), "activation views");
    m->mtp_acts = MD > 0 ? ts_calloc((size_t)MD, sizeof(ts_mtp_acts), "MTP activation views") : NULL;
    if (!m->acts || (MD > 0 && !m->mtp_acts)) return TS_ERR_NOMEM;
    ts_arena measure = {0};
    carve(m, &measure, B, T);
    ts_status st = ts_arena_create(&m->arena, measure.used);
    if (st) return st;
    carve(m, &m->arena, B, T);
    m->B = B;
    m->T = T;
    return TS_OK;
}

/* ------------------------------------------------------------------ */
/* Forward                                                             */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Which attention and which feed-forward layer a block runs           */
/* ------------------------------------------------------------------ */
/* ts_model_create() only accepts configs whose kinds are implemented, so
 * every switch below has a case for every kind a model can have. */

/* ln1 (N,C) → attn_y (N,C) */
static void attn_forward(ts_model *m, const ts_layer_weights *w, ts_layer_acts *a, const int *pos, int B, int T) {
    const ts_config *c = &m->cfg;
    ts_rope rope = ts_model_rope(m);
    switch (m->attn) {
    case TS_ATTN_MHA: mha_forward(a->attn_y, &a->attn, a->ln1, &w->attn, pos, &rope, c, B, T); break;
    case TS_ATTN_GQA: gqa_forward(a->attn_y, &a->attn, a->ln1, &w->attn, pos, &rope, c, B, T); break;
    case TS_ATTN_MLA:
        mla_forward(a->attn_y, &a->mla, &m->mla_scratch, a->ln1, &w->mla, pos, &rope, c, B, T);
        break;
    }
}

/* dy = dL/d(attn_y) → m->d_ln += dL/d(ln1) */
static void attn_backward(ts_model *m, const ts_layer_weights *w, ts_layer_weights *g, const ts_layer_acts *a,
                          const float *dy, const int *pos, int B, int T) {
    const ts_config *c = &m->cfg;
    ts_rope rope = ts_model_rope(m);
    switch (m->attn) {
    case TS_ATTN_MHA:
        mha_backward(m->d_ln, &g->attn, &m->attn_scratch, dy, &a->attn, a->ln1, &w->attn, pos, &rope, c, B, T);
        break;
    case TS_ATTN_GQA:
        gqa_backward(m->d_ln, &g->attn, &m->attn_scratch, dy, &a->attn, a->ln1, &w->attn, pos, &rope, c, B, T);
        break;
    case TS_ATTN_MLA:
        mla_backward(m->d_ln, &g->mla, &m->mla_scratch, dy, &a->mla, a->ln1, &w->mla, pos, &rope, c, B, T);
        break;
    }
}

/* ln2 (N,C) → mlp_y (N,C); chapter 5 makes some layers mixtures of experts */
static void ffn_forward(ts_model *m, const ts_layer_weights *w, ts_layer_acts *a, int moe, int B, int T) {
    const ts_config *c = &m->cfg;
    if (moe) { // chapter 5: B sequences of T tokens (the balance loss is per sequence)
        moe_forward(a->mlp_y, &a->moe, a->ln2, &w->moe, c, B, T);
        return;
    }
    mlp_forward(a->mlp_y, &a->mlp, a->ln2, &w->mlp, B * T, c->hidden_size, c->intermediate_size);
}

/* dy = dL/d(mlp_y) → m->d_ln += dL/d(ln2) */
static void ffn_backward(ts_model *m, const ts_layer_weights *w, ts_layer_weights *g, ts_layer_acts *a, int moe,
                         const float *dy, int B, int T) {
    const ts_config *c = &m->cfg;
    if (moe) {
        // The layer differentiates its balance loss α·Σ f·P with the α it is handed; the
        // objective holds that loss with weight m->aux_weight (ts_model_backward_from()).
        ts_config weighted = *c;
        weighted.aux_loss_alpha *= m->aux_weight;
        moe_backward(m->d_ln, &g->moe, &m->moe_scratch, dy, &a->moe, a->ln2, &w->moe, &weighted, B, T);
        return;
    }
    mlp_backward(m->d_ln, &g->mlp, &m->mlp_scratch, dy, &a->mlp, a->ln2, &w->mlp, B * T, c->hidden_size,
                 c->intermediate_size);
}

//! [block-forward]
/* One pre-norm block: out = res1 + mlp(norm(res1)), res1 = x + attn(norm(x)). */
void ts_block_forward(ts_model *m, const ts_layer_weights *w, ts_layer_acts *a, int moe, const float *x, const int *pos,
                      int B, int T) {
    const ts_config *c = &m->cfg;
    int N = B * T, C = c->hidden_size;
    rmsnorm_forward(a->ln1, a->ln1_rstd, x, w->input_layernorm, N, C, C, C, c->rms_norm_eps);
    attn_forward(m, w, a, pos, B, T); // ln1 → attn_y
    for (long i = 0; i < (long)N * C; i++) a->res1[i] = x[i] + a->attn_y[i]; // residual
    rmsnorm_forward(a->ln2, a->ln2_rstd, a->res1, w->post_attention_layernorm, N, C, C, C, c->rms_norm_eps);
    ffn_forward(m, w, a, moe, B, T); // ln2 → mlp_y
    for (long i = 0; i < (long)N * C; i++) a->out[i] = a->res1[i] + a->mlp_y[i]; // residual
}
//! [block-forward]

ts_status ts_model_forward_logits(ts_model *m, const int *tokens, int B, int T) {
    const ts_config *c = &m->cfg;
    int N = B * T, C = c->hidden_size, V = c->vocab_size, L = c->num_hidden_layers;
    /* Grow the activations if this batch is larger than what was reserved. */
    ts_status st;
    if ((B > m->B || T > m->T || !m->arena.base) &&
        (st = ts_model_reserve(m, B > m->B ? B : m->B, T > m->T ? T : m->T)))
        return st;
    for (int i = 0; i < N; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return ts_fail(TS_ERR_RANGE, "token %d at position %d is outside the vocabulary (0..%d)", tokens[i], i,
                           V - 1);
    m->cur_B = B;
    m->cur_T = T;
    memcpy(m->tokens, tokens, (size_t)N * sizeof(int));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) m->pos[b * T + t] = t;
    embedding_forward(m->embed, m->tokens, m->w.embed_tokens, N, C);
    const float *x = m->embed;
    for (int l = 0; l < L; l++) {
        ts_block_forward(m, &m->w.layers[l], &m->acts[l], ts_moe_is_layer(c, l), x, m->pos, B, T);
        x = m->acts[l].out;
    }
    m->hidden = L > 0 ? m->acts[L - 1].out : m->embed; // = x: the last hidden state (MTP's h⁰)
    rmsnorm_forward(m->lnf, m->lnf_rstd, x, m->w.norm, N, C, C, C, c->rms_norm_eps);
    matmul_forward(m->logits, m->lnf, m->w.lm_head, NULL, N, C, V);
    m->n_counted = 0; // no targets yet: ts_model_forward() sets them
    m->mtp_depths = 0; // the MTP modules (chapter 6) run on demand: ts_mtp_forward()
    m->aux_loss = 0.0f; // chapter 5: the MoE layers' balance losses, for the objective to include
    for (int l = 0; l < L; l++)
        if (ts_moe_is_layer(c, l)) m->aux_loss += m->acts[l].moe.aux_loss;
    return TS_OK;
}

/* Chapter 2's loss, next-token cross-entropy, inside the model: the ops of
 * core/ops.h, not src/train/loss.h (the model does not know a training method).
 * The loss, read off the same ops, is ts_loss_crossentropy()'s with no weights. */
float ts_model_forward(ts_model *m, const int *tokens, const int *targets, int B, int T) {
    if (ts_model_forward_logits(m, tokens, B, T)) return NAN;
    int N = B * T, V = m->cfg.vocab_size;
    if (!targets) return 0.0f;
    memcpy(m->targets, targets, (size_t)N * sizeof(int));
    m->n_counted = crossentropy_forward(m->losses, m->logits, m->targets, N, V);
    double sum = 0;
    for (int i = 0; i < N; i++) sum += m->losses[i];
    m->ce_loss = m->n_counted ? (float)(sum / m->n_counted) : 0.0f;
    return m->ce_loss + m->aux_loss;
}

/* ------------------------------------------------------------------ */
/* Backward                                                            */
/* ------------------------------------------------------------------ */

//! [block-backward]
/* Backward of ts_block_forward. On entry d_res = dL/d(out); on exit d_res = dL/dx. */
void ts_block_backward(ts_model *m, const ts_layer_weights *w, ts_layer_weights *g, ts_layer_acts *a, int moe,
                       const float *x, const int *pos, int B, int T) {
    const ts_config *c = &m->cfg;
    int N = B * T, C = c->hidden_size;
    size_t NC = (size_t)N * C;
    // out = res1 + mlp(ln2): d_res passes through to res1 unchanged, and is dL/d(mlp_y)
    memset(m->d_ln, 0, NC * sizeof(float));
    ffn_backward(m, w, g, a, moe, m->d_res, B, T);
    // ln2 = rmsnorm(res1): add the norm's path into d_res, which is now dL/d(res1)
    rmsnorm_backward(m->d_res, g->post_attention_layernorm, m->d_ln, a->res1, w->post_attention_layernorm,
                     a->ln2_rstd, N, C, C, C);
    // res1 = x + attn(ln1): the same again
    memset(m->d_ln, 0, NC * sizeof(float));
    attn_backward(m, w, g, a, m->d_res, pos, B, T);
    rmsnorm_backward(m->d_res, g->input_layernorm, m->d_ln, x, w->input_layernorm, a->ln1_rstd, N, C, C, C);
}
//! [block-backward]

ts_status ts_model_backward_from(ts_model *m, const float *d_logits, const float *d_hidden, float aux_weight) {
    if (m->mode == TS_MODEL_FROZEN)
        return ts_fail(TS_ERR_ARG, "backward on a frozen model: it has no gradients (create it trainable)");
    if (m->cur_B <= 0 || m->cur_T <= 0) return ts_fail(TS_ERR_ARG, "backward before any forward");
    if (!isfinite(aux_weight) || aux_weight < 0.0f)
        return ts_fail(TS_ERR_ARG, "aux_weight %g: expected a finite weight >= 0", (double)aux_weight);
    const ts_config *c = &m->cfg;
    int B = m->cur_B, T = m->cur_T, N = B * T;
    int C = c->hidden_size, V = c->vocab_size, L = c->num_hidden_layers;
    size_t NC = (size_t)N * C;
    m->aux_weight = aux_weight;
    memset(m->d_res, 0, NC * sizeof(float));
    if (d_logits) {
        // logits = lnf · lm_headᵀ
        memset(m->d_ln, 0, NC * sizeof(float));
        matmul_backward(m->d_ln, m->g.lm_head, NULL, d_logits, m->lnf, m->w.lm_head, N, C, V);
        // lnf = rmsnorm(hidden)
        rmsnorm_backward(m->d_res, m->g.norm, m->d_ln, m->hidden, m->w.norm, m->lnf_rstd, N, C, C, C);
    }
    // the hidden state is an output too (MTP reads it): its gradient joins the residual stream's
    if (d_hidden)
        for (size_t i = 0; i < NC; i++) m->d_res[i] += d_hidden[i];
    for (int l = L - 1; l >= 0; l--) {
        const float *x = l > 0 ? m->acts[l - 1].out : m->embed;
        ts_block_backward(m, &m->w.layers[l], &m->g.layers[l], &m->acts[l], ts_moe_is_layer(c, l), x, m->pos, B, T);
    }
    embedding_backward(m->g.embed_tokens, m->d_res, m->tokens, N, C);
    return TS_OK;
}

void ts_model_backward(ts_model *m) {
    if (m->mode == TS_MODEL_FROZEN) {
        ts_fail(TS_ERR_ARG, "backward on a frozen model: it has no gradients (create it trainable)");
        return;
    }
    int N = m->cur_B * m->cur_T, V = m->cfg.vocab_size;
    // loss = Σ losses / n_counted  →  dL/dlosses[n] = 1/n_counted
    float *dloss = m->losses + N;
    float scale = m->n_counted ? 1.0f / (float)m->n_counted : 0.0f;
    for (int i = 0; i < N; i++) dloss[i] = scale;
    memset(m->d_logits, 0, (size_t)N * V * sizeof(float));
    crossentropy_backward(m->d_logits, dloss, m->logits, m->targets, N, V);
    // the balance loss is part of what ts_model_forward() returned: weight 1
    ts_model_backward_from(m, m->d_logits, NULL, 1.0f);
}

void ts_model_zero_grad(ts_model *m) { ts_params_zero_grad(&m->params); }

void ts_model_free(ts_model *m) {
    ts_params_free(&m->params);
    free(m->w.layers);
    free(m->g.layers);
    free(m->w.mtp);
    free(m->g.mtp);
    free(m->mtp_acts);
    free(m->rope_cos);
    free(m->rope_sin);
    free(m->acts);
    free(m->expert_views);
    ts_arena_free(&m->arena);
    memset(m, 0, sizeof *m);
}

ts_attn_kind ts_attn_kind_of(const ts_config *c) {
    /* Hkv == H: chapter 2's multi-head attention; Hkv < H: chapter 3's grouped/multi-query attention;
     * "deepseek_v3": chapter 4's multi-head latent attention. */
    if (c->arch == TS_ARCH_DEEPSEEK_V3) return TS_ATTN_MLA;
    return c->num_key_value_heads == c->num_attention_heads ? TS_ATTN_MHA : TS_ATTN_GQA;
}

long long ts_attn_cache_floats(const ts_config *c, ts_kv_mode mode) {
    return ts_attn_kind_of(c) == TS_ATTN_MLA ? mla_cache_floats(c, mode) : mha_cache_floats(c);
}

void ts_model_count_params(const ts_config *c, long long *total, long long *active) {
    long long C = c->hidden_size, V = c->vocab_size;
    long long tot = V * C + C + (c->tie_word_embeddings ? 0 : V * C); /* embeddings, final norm, head */
    long long act = tot;
    long long attn = ts_attn_kind_of(c) == TS_ATTN_MLA ? mla_params(c) : mha_params(c);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        long long ffn_total, ffn_active;
        if (ts_moe_is_layer(c, l)) moe_params(c, &ffn_total, &ffn_active);
        else ffn_total = ffn_active = mlp_params(C, c->intermediate_size);
        tot += 2 * C + attn + ffn_total; /* two norms, attention, feed-forward */
        act += 2 * C + attn + ffn_active;
    }
    if (total) *total = tot;
    if (active) *active = act;
}
