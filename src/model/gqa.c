/**
 * @file gqa.c
 * @brief Grouped-query / multi-query attention (chapter 3): forward, backward,
 *        KV-cache decode, and the mean-pooling converter from MHA checkpoints.
 *
 * The block is chapter 2's mha.c with the key/value width Hkv·D instead of
 * H·D and the core attention of src/core/gqa_attention.c, which maps query
 * head h to key/value head h / (H/Hkv). Parameters are registered by
 * mha_register(), which already sizes k_proj and v_proj as (Hkv·D, C).
 */
#include "model/gqa.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/gqa_attention.h"
#include "core/ops.h"
#include "model/model.h"

//! [gqa-forward]
void gqa_forward(ts_model *m, int l, int B, int T) {
    const ts_config *c = &m->cfg;
    const ts_mha_weights *w = &m->w.layers[l].attn;
    ts_layer_acts *la = &m->acts[l];
    ts_mha_acts *a = &la->attn;
    int N = B * T, C = c->hidden_size, H = c->num_attention_heads, Hkv = c->num_key_value_heads, D = c->head_dim;
    matmul_forward(a->q, la->ln1, w->q_proj, NULL, N, C, H * D);   // q (N,H*D)   = ln1 · W_Qᵀ
    matmul_forward(a->k, la->ln1, w->k_proj, NULL, N, C, Hkv * D); // k (N,Hkv*D) = ln1 · W_Kᵀ
    matmul_forward(a->v, la->ln1, w->v_proj, NULL, N, C, Hkv * D); // v (N,Hkv*D) = ln1 · W_Vᵀ
    rope_forward(a->q, m->pos, N, H, H * D, D, D, m->rope_cos, m->rope_sin);
    rope_forward(a->k, m->pos, N, Hkv, Hkv * D, D, D, m->rope_cos, m->rope_sin);
    // ctx_h = softmax(q_h k_{h/G}ᵀ / √D + causal mask) v_{h/G}, per query head h
    gqa_attention_forward(a->ctx, a->att, a->q, a->k, a->v, B, T, H, Hkv, D, D, 1.0f / sqrtf((float)D));
    matmul_forward(la->attn_y, a->ctx, w->o_proj, NULL, N, H * D, C); // y (N,C) = ctx · W_Oᵀ
}
//! [gqa-forward]

//! [gqa-backward]
void gqa_backward(ts_model *m, int l, const float *dy, int B, int T) {
    const ts_config *c = &m->cfg;
    const ts_mha_weights *w = &m->w.layers[l].attn;
    const ts_mha_weights *g = &m->g.layers[l].attn;
    ts_layer_acts *la = &m->acts[l];
    ts_mha_acts *a = &la->attn;
    ts_mha_scratch *s = &m->attn_scratch;
    int N = B * T, C = c->hidden_size, H = c->num_attention_heads, Hkv = c->num_key_value_heads, D = c->head_dim;
    size_t nq = (size_t)N * H * D, nkv = (size_t)N * Hkv * D;
    memset(s->d_ctx, 0, nq * sizeof(float));
    memset(s->d_q, 0, nq * sizeof(float));
    memset(s->d_k, 0, nkv * sizeof(float));
    memset(s->d_v, 0, nkv * sizeof(float));
    // y = ctx · W_Oᵀ
    matmul_backward(s->d_ctx, g->o_proj, NULL, dy, a->ctx, w->o_proj, N, H * D, C);
    // ctx_h = softmax(q_h k_jᵀ/√D) v_j: d_k, d_v of head j sum the shares of its G query heads
    gqa_attention_backward(s->d_q, s->d_k, s->d_v, s->att, s->d_ctx, a->att, a->q, a->k, a->v, B, T, H, Hkv, D, D,
                           1.0f / sqrtf((float)D));
    // rope is a rotation: its backward rotates the gradient back
    rope_backward(s->d_q, m->pos, N, H, H * D, D, D, m->rope_cos, m->rope_sin);
    rope_backward(s->d_k, m->pos, N, Hkv, Hkv * D, D, D, m->rope_cos, m->rope_sin);
    // q, k, v = ln1 · W_{Q,K,V}ᵀ: three paths add into d_ln
    matmul_backward(m->d_ln, g->q_proj, NULL, s->d_q, la->ln1, w->q_proj, N, C, H * D);
    matmul_backward(m->d_ln, g->k_proj, NULL, s->d_k, la->ln1, w->k_proj, N, C, Hkv * D);
    matmul_backward(m->d_ln, g->v_proj, NULL, s->d_v, la->ln1, w->v_proj, N, C, Hkv * D);
}
//! [gqa-backward]

//! [gqa-decode]
/* The G query heads of key/value head j in decode row r, against that head's n
 * cached keys and values (rows kv_dim floats apart). The group's queries are
 * adjacent in q, so they form a (G, D) matrix, and each step is one product of
 * G rows where MHA makes G products of one row. The arithmetic is MHA's; what
 * changes is how often a cached row is fetched: once per group instead of once
 * per query head. How much of that ts_sgemm() turns into speed depends on its
 * kernels: up to 4 rows it reads the row again for each query (from the core's
 * cache, after the first), from 5 rows on it packs the queries and reuses every
 * key and value it loads from registers. (With G = 1 these are mha.c's one-row
 * products: the same bits.) */
static void decode_group(const ts_model *m, ts_kvcache *c, int l, int r, int j, int b, int n, float scale) {
    int D = m->cfg.head_dim, H = m->cfg.num_attention_heads, G = H / m->cfg.num_key_value_heads, HD = H * D;
    const float *Q = c->q + (size_t)r * HD + (size_t)j * G * D;         // (G, D)
    const float *K = ts_kvcache_at(c->k, c, l, b, 0) + j * D, *V = ts_kvcache_at(c->v, c, l, b, 0) + j * D; // (n, D) each
    float *S = c->scores + ((size_t)r * H + (size_t)j * G) * c->max_T;  // (G, n), rows max_T apart
    ts_sgemm(0, 1, G, n, D, scale, Q, D, K, c->kv_dim, 0.0f, S, c->max_T); // S = scale · Q Kᵀ
    for (int g = 0; g < G; g++) ts_softmax_row(S + (size_t)g * c->max_T, S + (size_t)g * c->max_T, n); // P = softmax(S)
    ts_sgemm(0, 0, G, D, n, 1.0f, S, c->max_T, V, c->kv_dim, 0.0f, c->att_out + (size_t)r * HD + (size_t)j * G * D,
             D); // out (G, D) = P V
}

void gqa_decode(ts_model *m, ts_kvcache *c, int l, const float *x, float *y, const int *seq, const int *pos, int R) {
    const ts_config *cfg = &m->cfg;
    const ts_mha_weights *w = &m->w.layers[l].attn;
    int C = cfg->hidden_size, H = cfg->num_attention_heads, Hkv = cfg->num_key_value_heads, D = cfg->head_dim;
    int HD = H * D, KVD = c->kv_dim;
    matmul_forward(c->q, x, w->q_proj, NULL, R, C, HD);
    matmul_forward(c->kn, x, w->k_proj, NULL, R, C, KVD); // Hkv heads only
    matmul_forward(c->vn, x, w->v_proj, NULL, R, C, KVD);
    rope_forward(c->q, pos, R, H, HD, D, D, m->rope_cos, m->rope_sin);
    rope_forward(c->kn, pos, R, Hkv, KVD, D, D, m->rope_cos, m->rope_sin);
    for (int r = 0; r < R; r++) { // append this token's Hkv keys and values to its sequence's cache
        memcpy(ts_kvcache_at(c->k, c, l, seq[r], pos[r]), c->kn + (size_t)r * KVD, KVD * sizeof(float));
        memcpy(ts_kvcache_at(c->v, c, l, seq[r], pos[r]), c->vn + (size_t)r * KVD, KVD * sizeof(float));
    }
    // each group of G new queries attends over positions 0..pos[r] of its sequence's key/value head
    float scale = 1.0f / sqrtf((float)D);
    if ((double)R * H * c->max_T * D > 1e6) { // threads only for a batch of long sequences (as mha_decode)
        TS_OMP(parallel for collapse(2) schedule(static))
        for (int r = 0; r < R; r++)
            for (int j = 0; j < Hkv; j++) decode_group(m, c, l, r, j, seq[r], pos[r] + 1, scale);
    } else {
        for (int r = 0; r < R; r++)
            for (int j = 0; j < Hkv; j++) decode_group(m, c, l, r, j, seq[r], pos[r] + 1, scale);
    }
    matmul_forward(y, c->att_out, w->o_proj, NULL, R, HD, C);
}
//! [gqa-decode]

/* ------------------------------------------------------------------ */
/* Converting a checkpoint: mean-pool the key/value heads of a group    */
/* ------------------------------------------------------------------ */

//! [gqa-mean-pool]
void gqa_mean_pool_heads(float *dst, const float *src, int Hkv_in, int Hkv_out, int D, int C) {
    // src (Hkv_in·D, C) → dst (Hkv_out·D, C): head j = mean of heads j·G .. j·G+G-1
    int G = Hkv_in / Hkv_out;
    for (int j = 0; j < Hkv_out; j++)
        for (int d = 0; d < D; d++)
            for (int col = 0; col < C; col++) {
                double sum = 0;
                for (int g = 0; g < G; g++) sum += src[((size_t)(j * G + g) * D + d) * C + col];
                dst[((size_t)j * D + d) * C + col] = (float)(sum / G);
            }
}
//! [gqa-mean-pool]

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

ts_status ts_model_convert_gqa(ts_model *dst, const ts_model *src, int kv_heads) {
    const ts_config *sc = &src->cfg;
    memset(dst, 0, sizeof *dst);
    if (sc->arch != TS_ARCH_LLAMA)
        return ts_fail(TS_ERR_ARG, "convert-gqa: model_type '%s' has no k_proj/v_proj heads to pool (need \"llama\")",
                       sc->model_type);
    if (kv_heads <= 0 || sc->num_key_value_heads % kv_heads != 0)
        return ts_fail(TS_ERR_ARG, "convert-gqa: --kv-heads %d must divide the model's num_key_value_heads %d "
                       "(num_attention_heads %d)", kv_heads, sc->num_key_value_heads, sc->num_attention_heads);
    ts_config cfg = *sc;
    cfg.num_key_value_heads = kv_heads;
    ts_status st = ts_model_create(dst, &cfg, 0);
    if (st) return st;
    const ts_params *sp = &src->params, *dp = &dst->params;
    for (int i = 0; i < dp->count; i++) {
        const ts_param *t = &dp->params[i];
        int si = ts_params_find(sp, t->name);
        if (si < 0) {
            ts_model_free(dst);
            return ts_fail(TS_ERR_FORMAT, "convert-gqa: the source model has no tensor '%s'", t->name);
        }
        const ts_param *s = &sp->params[si];
        float *out = dp->data + t->offset;
        const float *in = sp->data + s->offset;
        if (ends_with(t->name, ".k_proj.weight") || ends_with(t->name, ".v_proj.weight"))
            gqa_mean_pool_heads(out, in, sc->num_key_value_heads, kv_heads, sc->head_dim, sc->hidden_size);
        else
            memcpy(out, in, t->numel * sizeof(float)); // same name, same shape: q_proj, o_proj, norms, MLP, ...
    }
    return TS_OK;
}
