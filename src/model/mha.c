/**
 * @file mha.c
 * @brief Multi-head attention (chapter 2): parameters, forward, backward, decode.
 */
#include "model/mha.h"

#include "core/linear.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int mha_register(ts_params *p, const ts_config *c, int l) {
    int C = c->hidden_size, HD = c->num_attention_heads * c->head_dim, KVD = c->num_key_value_heads * c->head_dim;
    const char *names[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    int rows[4] = {HD, KVD, KVD, C}, cols[4] = {C, C, C, HD};
    for (int i = 0; i < 4; i++) {
        char name[TS_NAME_MAX];
        snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.weight", l, names[i]);
        int shape[2] = {rows[i], cols[i]};
        if (ts_params_add(p, name, 2, shape, 0) < 0) return -1;
    }
    return 0;
}

long long mha_params(const ts_config *c) {
    long long C = c->hidden_size, HD = (long long)c->num_attention_heads * c->head_dim;
    long long KVD = (long long)c->num_key_value_heads * c->head_dim;
    return C * HD + 2 * C * KVD + HD * C; // W_Q, W_K and W_V, W_O
}

long long mha_cache_floats(const ts_config *c) { return 2LL * c->num_key_value_heads * c->head_dim; }

void mha_carve_acts(ts_mha_acts *a, ts_arena *ar, const ts_config *c, int B, int T) {
    size_t N = (size_t)B * T, H = c->num_attention_heads;
    size_t HD = H * c->head_dim, KVD = (size_t)c->num_key_value_heads * c->head_dim;
    a->q = ts_arena_floats(ar, N * HD);
    a->k = ts_arena_floats(ar, N * KVD);
    a->v = ts_arena_floats(ar, N * KVD);
    a->att = ts_arena_floats(ar, (size_t)B * H * T * T);
    a->ctx = ts_arena_floats(ar, N * HD);
}

void mha_carve_scratch(ts_mha_scratch *s, ts_arena *ar, const ts_config *c, int B, int T) {
    size_t N = (size_t)B * T;
    size_t HD = (size_t)c->num_attention_heads * c->head_dim, KVD = (size_t)c->num_key_value_heads * c->head_dim;
    s->d_q = ts_arena_floats(ar, N * HD);
    s->d_k = ts_arena_floats(ar, N * KVD);
    s->d_v = ts_arena_floats(ar, N * KVD);
    s->d_ctx = ts_arena_floats(ar, N * HD);
    s->att = ts_arena_floats(ar, (size_t)ts_num_threads() * T * T);
}

//! [mha-forward]
void mha_forward(float *y, const ts_mha_acts *a, const float *x, const ts_mha_weights *w, const int *pos,
                 const ts_rope *rope, const ts_config *c, int B, int T) {
    int N = B * T, C = c->hidden_size, H = c->num_attention_heads, D = c->head_dim;
    linear_forward(a->q, x, w->q_proj, NULL, N, C, H * D); // q (N,H*D) = x · W_Qᵀ
    linear_forward(a->k, x, w->k_proj, NULL, N, C, H * D); // k (N,H*D) = x · W_Kᵀ
    linear_forward(a->v, x, w->v_proj, NULL, N, C, H * D); // v (N,H*D) = x · W_Vᵀ
    rope_forward(a->q, pos, N, H, H * D, D, D, rope->cos, rope->sin);
    rope_forward(a->k, pos, N, H, H * D, D, D, rope->cos, rope->sin);
    // ctx = softmax(q kᵀ / √D + causal mask) v, per head
    attention_forward(a->ctx, a->att, a->q, a->k, a->v, B, T, H, D, D, 1.0f / sqrtf((float)D));
    linear_forward(y, a->ctx, w->o_proj, NULL, N, H * D, C); // y (N,C) = ctx · W_Oᵀ
}
//! [mha-forward]

//! [mha-backward]
void mha_backward(float *dx, const ts_mha_weights *dw, const ts_mha_scratch *s, const float *dy, const ts_mha_acts *a,
                  const float *x, const ts_mha_weights *w, const int *pos, const ts_rope *rope, const ts_config *c,
                  int B, int T) {
    int N = B * T, C = c->hidden_size, H = c->num_attention_heads, D = c->head_dim;
    size_t nq = (size_t)N * H * D;
    memset(s->d_ctx, 0, nq * sizeof(float));
    memset(s->d_q, 0, nq * sizeof(float));
    memset(s->d_k, 0, nq * sizeof(float));
    memset(s->d_v, 0, nq * sizeof(float));
    // y = ctx · W_Oᵀ
    linear_backward(s->d_ctx, dw->o_proj, NULL, dy, a->ctx, w->o_proj, N, H * D, C);
    // ctx = softmax(q kᵀ/√D) v
    attention_backward(s->d_q, s->d_k, s->d_v, s->att, s->d_ctx, a->att, a->q, a->k, a->v, B, T, H, D, D,
                       1.0f / sqrtf((float)D));
    // rope is a rotation: its backward rotates the gradient back
    rope_backward(s->d_q, pos, N, H, H * D, D, D, rope->cos, rope->sin);
    rope_backward(s->d_k, pos, N, H, H * D, D, D, rope->cos, rope->sin);
    // q, k, v = x · W_{Q,K,V}ᵀ: three paths add into dx
    linear_backward(dx, dw->q_proj, NULL, s->d_q, x, w->q_proj, N, C, H * D);
    linear_backward(dx, dw->k_proj, NULL, s->d_k, x, w->k_proj, N, C, H * D);
    linear_backward(dx, dw->v_proj, NULL, s->d_v, x, w->v_proj, N, C, H * D);
}
//! [mha-backward]

void mha_prefill(ts_kvcache *kv, int l, int b, const ts_mha_acts *a, int n) {
    memcpy(ts_kvcache_at(kv->k, kv, l, b, 0), a->k, (size_t)n * kv->kv_dim * sizeof(float));
    memcpy(ts_kvcache_at(kv->v, kv, l, b, 0), a->v, (size_t)n * kv->kv_dim * sizeof(float));
}

//! [kv-decode]
/* Query head h of decode row r against key/value head kvh of sequence b, whose
 * first n positions are cached: the cached keys and values of one head are rows
 * kv_dim floats apart, so each step is a one-row product. */
static void decode_head(const ts_kv_step *st, const ts_kvcache *kv, int l, int r, int h, int kvh, int b, int n, int H,
                        int D, float scale) {
    int HD = H * D;
    const float *qh = st->q + (size_t)r * HD + h * D;
    const float *K = ts_kvcache_at(kv->k, kv, l, b, 0) + kvh * D, *V = ts_kvcache_at(kv->v, kv, l, b, 0) + kvh * D;
    float *s = st->scores + ((size_t)r * H + h) * kv->max_T;
    ts_sgemm(0, 1, 1, n, D, scale, qh, D, K, kv->kv_dim, 0.0f, s, n); // s (n) = scale · K qᵀ
    ts_softmax_row(s, s, n);                                          // p = softmax(s)
    ts_sgemm(0, 0, 1, D, n, 1.0f, s, n, V, kv->kv_dim, 0.0f, st->att_out + (size_t)r * HD + h * D, D); // out = p·V
}

void mha_decode(float *y, const float *x, const ts_mha_weights *w, const ts_rope *rope, const ts_kv_step *s,
                ts_kvcache *kv, int l, const int *seq, const int *pos, int R, const ts_config *c) {
    int C = c->hidden_size, H = c->num_attention_heads, Hkv = c->num_key_value_heads, D = c->head_dim;
    int HD = H * D, KVD = kv->kv_dim;
    matmul_forward(s->q, x, w->q_proj, NULL, R, C, HD);
    matmul_forward(s->kn, x, w->k_proj, NULL, R, C, KVD);
    matmul_forward(s->vn, x, w->v_proj, NULL, R, C, KVD);
    rope_forward(s->q, pos, R, H, HD, D, D, rope->cos, rope->sin);
    rope_forward(s->kn, pos, R, Hkv, KVD, D, D, rope->cos, rope->sin);
    for (int r = 0; r < R; r++) { // append this token's key and value to its sequence's cache
        memcpy(ts_kvcache_at(kv->k, kv, l, seq[r], pos[r]), s->kn + (size_t)r * KVD, KVD * sizeof(float));
        memcpy(ts_kvcache_at(kv->v, kv, l, seq[r], pos[r]), s->vn + (size_t)r * KVD, KVD * sizeof(float));
    }
    // each new query attends over positions 0..pos[r] of its own sequence
    float scale = 1.0f / sqrtf((float)D);
    int group = H / Hkv; // query heads per key/value head (1 for MHA)
    if ((double)R * H * kv->max_T * D > 1e6) { // threads only for a batch of long sequences: waking them costs more
        TS_OMP(parallel for collapse(2) schedule(static))
        for (int r = 0; r < R; r++)
            for (int h = 0; h < H; h++) decode_head(s, kv, l, r, h, h / group, seq[r], pos[r] + 1, H, D, scale);
    } else {
        for (int r = 0; r < R; r++)
            for (int h = 0; h < H; h++) decode_head(s, kv, l, r, h, h / group, seq[r], pos[r] + 1, H, D, scale);
    }
    matmul_forward(y, s->att_out, w->o_proj, NULL, R, HD, C);
}
//! [kv-decode]
