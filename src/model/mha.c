/**
 * @file mha.c
 * @brief Multi-head attention (chapter 2): parameters, forward, backward, decode.
 */
#include "model/mha.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/ops.h"
#include "model/model.h"

int mha_register(ts_model *m, int l) {
    const ts_config *c = &m->cfg;
    int C = c->hidden_size, HD = c->num_attention_heads * c->head_dim, KVD = c->num_key_value_heads * c->head_dim;
    const char *names[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    int rows[4] = {HD, KVD, KVD, C}, cols[4] = {C, C, C, HD};
    for (int i = 0; i < 4; i++) {
        char name[TS_NAME_MAX];
        snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.weight", l, names[i]);
        int shape[2] = {rows[i], cols[i]};
        if (ts_params_add(&m->params, name, 2, shape, 0) < 0) return -1;
    }
    return 0;
}

//! [mha-forward]
void mha_forward(ts_model *m, int l, int B, int T) {
    const ts_config *c = &m->cfg;
    const ts_mha_weights *w = &m->w.layers[l].attn;
    ts_layer_acts *la = &m->acts[l];
    ts_mha_acts *a = &la->attn;
    int N = B * T, C = c->hidden_size, H = c->num_attention_heads, D = c->head_dim;
    matmul_forward(a->q, la->ln1, w->q_proj, NULL, N, C, H * D); // q (N,H*D) = ln1 · W_Qᵀ
    matmul_forward(a->k, la->ln1, w->k_proj, NULL, N, C, H * D); // k (N,H*D) = ln1 · W_Kᵀ
    matmul_forward(a->v, la->ln1, w->v_proj, NULL, N, C, H * D); // v (N,H*D) = ln1 · W_Vᵀ
    rope_forward(a->q, m->pos, N, H, H * D, D, D, m->rope_cos, m->rope_sin);
    rope_forward(a->k, m->pos, N, H, H * D, D, D, m->rope_cos, m->rope_sin);
    // ctx = softmax(q kᵀ / √D + causal mask) v, per head
    attention_forward(a->ctx, a->att, a->q, a->k, a->v, B, T, H, D, D, 1.0f / sqrtf((float)D));
    matmul_forward(la->attn_y, a->ctx, w->o_proj, NULL, N, H * D, C); // y (N,C) = ctx · W_Oᵀ
}
//! [mha-forward]

//! [mha-backward]
void mha_backward(ts_model *m, int l, const float *dy, int B, int T) {
    const ts_config *c = &m->cfg;
    const ts_mha_weights *w = &m->w.layers[l].attn;
    const ts_mha_weights *g = &m->g.layers[l].attn;
    ts_layer_acts *la = &m->acts[l];
    ts_mha_acts *a = &la->attn;
    ts_mha_scratch *s = &m->attn_scratch;
    int N = B * T, C = c->hidden_size, H = c->num_attention_heads, D = c->head_dim;
    size_t nq = (size_t)N * H * D;
    memset(s->d_ctx, 0, nq * sizeof(float));
    memset(s->d_q, 0, nq * sizeof(float));
    memset(s->d_k, 0, nq * sizeof(float));
    memset(s->d_v, 0, nq * sizeof(float));
    // y = ctx · W_Oᵀ
    matmul_backward(s->d_ctx, g->o_proj, NULL, dy, a->ctx, w->o_proj, N, H * D, C);
    // ctx = softmax(q kᵀ/√D) v
    attention_backward(s->d_q, s->d_k, s->d_v, s->att, s->d_ctx, a->att, a->q, a->k, a->v, B, T, H, D, D,
                       1.0f / sqrtf((float)D));
    // rope is a rotation: its backward rotates the gradient back
    rope_backward(s->d_q, m->pos, N, H, H * D, D, D, m->rope_cos, m->rope_sin);
    rope_backward(s->d_k, m->pos, N, H, H * D, D, D, m->rope_cos, m->rope_sin);
    // q, k, v = ln1 · W_{Q,K,V}ᵀ: three paths add into d_ln
    matmul_backward(m->d_ln, g->q_proj, NULL, s->d_q, la->ln1, w->q_proj, N, C, H * D);
    matmul_backward(m->d_ln, g->k_proj, NULL, s->d_k, la->ln1, w->k_proj, N, C, H * D);
    matmul_backward(m->d_ln, g->v_proj, NULL, s->d_v, la->ln1, w->v_proj, N, C, H * D);
}
//! [mha-backward]

//! [kv-decode]
/* Query head h of decode row r against key/value head kvh of sequence b, whose
 * first n positions are cached: the cached keys and values of one head are rows
 * kv_dim floats apart, so each step is a one-row product. */
static void decode_head(const ts_model *m, ts_kvcache *c, int l, int r, int h, int kvh, int b, int n, float scale) {
    int D = m->cfg.head_dim, HD = m->cfg.num_attention_heads * D;
    const float *qh = c->q + (size_t)r * HD + h * D;
    const float *K = ts_kvcache_at(c->k, c, l, b, 0) + kvh * D, *V = ts_kvcache_at(c->v, c, l, b, 0) + kvh * D;
    float *s = c->scores + ((size_t)r * m->cfg.num_attention_heads + h) * c->max_T;
    ts_sgemm(0, 1, 1, n, D, scale, qh, D, K, c->kv_dim, 0.0f, s, n); // s (n) = scale · K qᵀ
    ts_softmax_row(s, s, n);                                         // p = softmax(s)
    ts_sgemm(0, 0, 1, D, n, 1.0f, s, n, V, c->kv_dim, 0.0f, c->att_out + (size_t)r * HD + h * D, D); // out = p·V
}

void mha_decode(ts_model *m, ts_kvcache *c, int l, const float *x, float *y, const int *seq, const int *pos, int R) {
    const ts_config *cfg = &m->cfg;
    const ts_mha_weights *w = &m->w.layers[l].attn;
    int C = cfg->hidden_size, H = cfg->num_attention_heads, Hkv = cfg->num_key_value_heads, D = cfg->head_dim;
    int HD = H * D, KVD = c->kv_dim;
    matmul_forward(c->q, x, w->q_proj, NULL, R, C, HD);
    matmul_forward(c->kn, x, w->k_proj, NULL, R, C, KVD);
    matmul_forward(c->vn, x, w->v_proj, NULL, R, C, KVD);
    rope_forward(c->q, pos, R, H, HD, D, D, m->rope_cos, m->rope_sin);
    rope_forward(c->kn, pos, R, Hkv, KVD, D, D, m->rope_cos, m->rope_sin);
    for (int r = 0; r < R; r++) { // append this token's key and value to its sequence's cache
        memcpy(ts_kvcache_at(c->k, c, l, seq[r], pos[r]), c->kn + (size_t)r * KVD, KVD * sizeof(float));
        memcpy(ts_kvcache_at(c->v, c, l, seq[r], pos[r]), c->vn + (size_t)r * KVD, KVD * sizeof(float));
    }
    // each new query attends over positions 0..pos[r] of its own sequence
    float scale = 1.0f / sqrtf((float)D);
    int group = H / Hkv; // query heads per key/value head (1 for MHA)
    if ((double)R * H * c->max_T * D > 1e6) { // threads only for a batch of long sequences: waking them costs more
        TS_OMP(parallel for collapse(2) schedule(static))
        for (int r = 0; r < R; r++)
            for (int h = 0; h < H; h++) decode_head(m, c, l, r, h, h / group, seq[r], pos[r] + 1, scale);
    } else {
        for (int r = 0; r < R; r++)
            for (int h = 0; h < H; h++) decode_head(m, c, l, r, h, h / group, seq[r], pos[r] + 1, scale);
    }
    matmul_forward(y, c->att_out, w->o_proj, NULL, R, HD, C);
}
//! [kv-decode]
