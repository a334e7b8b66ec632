/**
 * @file gqa.c
 * @brief Grouped-query / multi-query attention (chapter 3): forward, backward,
 *        KV-cache decode, and the mean-pooling of key/value heads that
 *        ts_model_convert_gqa() (checkpoint.c) applies to an MHA checkpoint.
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
#include "core/linear.h"

//! [gqa-forward]
void gqa_forward(float *y, const ts_mha_acts *a, const float *x, const ts_mha_weights *w, const int *pos,
                 const ts_rope *rope, const ts_config *c, int B, int T) {
    int N = B * T, C = c->hidden_size, H = c->num_attention_heads, Hkv = c->num_key_value_heads, D = c->head_dim;
    linear_forward(a->q, x, w->q_proj, NULL, N, C, H * D);   // q (N,H*D)   = x · W_Qᵀ
    linear_forward(a->k, x, w->k_proj, NULL, N, C, Hkv * D); // k (N,Hkv*D) = x · W_Kᵀ
    linear_forward(a->v, x, w->v_proj, NULL, N, C, Hkv * D); // v (N,Hkv*D) = x · W_Vᵀ
    rope_forward(a->q, pos, N, H, H * D, D, D, rope->cos, rope->sin);
    rope_forward(a->k, pos, N, Hkv, Hkv * D, D, D, rope->cos, rope->sin);
    // ctx_h = softmax(q_h k_{h/G}ᵀ / √D + causal mask) v_{h/G}, per query head h
    gqa_attention_forward(a->ctx, a->att, a->q, a->k, a->v, B, T, H, Hkv, D, D, 1.0f / sqrtf((float)D));
    linear_forward(y, a->ctx, w->o_proj, NULL, N, H * D, C); // y (N,C) = ctx · W_Oᵀ
}
//! [gqa-forward]

//! [gqa-backward]
void gqa_backward(float *dx, const ts_mha_weights *dw, const ts_mha_scratch *s, const float *dy, const ts_mha_acts *a,
                  const float *x, const ts_mha_weights *w, const int *pos, const ts_rope *rope, const ts_config *c,
                  int B, int T) {
    int N = B * T, C = c->hidden_size, H = c->num_attention_heads, Hkv = c->num_key_value_heads, D = c->head_dim;
    size_t nq = (size_t)N * H * D, nkv = (size_t)N * Hkv * D;
    memset(s->d_ctx, 0, nq * sizeof(float));
    memset(s->d_q, 0, nq * sizeof(float));
    memset(s->d_k, 0, nkv * sizeof(float));
    memset(s->d_v, 0, nkv * sizeof(float));
    // y = ctx · W_Oᵀ
    linear_backward(s->d_ctx, dw->o_proj, NULL, dy, a->ctx, w->o_proj, N, H * D, C);
    // ctx_h = softmax(q_h k_jᵀ/√D) v_j: d_k, d_v of head j sum the shares of its G query heads
    gqa_attention_backward(s->d_q, s->d_k, s->d_v, s->att, s->d_ctx, a->att, a->q, a->k, a->v, B, T, H, Hkv, D, D,
                           1.0f / sqrtf((float)D));
    // rope is a rotation: its backward rotates the gradient back
    rope_backward(s->d_q, pos, N, H, H * D, D, D, rope->cos, rope->sin);
    rope_backward(s->d_k, pos, N, Hkv, Hkv * D, D, D, rope->cos, rope->sin);
    // q, k, v = x · W_{Q,K,V}ᵀ: three paths add into dx
    linear_backward(dx, dw->q_proj, NULL, s->d_q, x, w->q_proj, N, C, H * D);
    linear_backward(dx, dw->k_proj, NULL, s->d_k, x, w->k_proj, N, C, Hkv * D);
    linear_backward(dx, dw->v_proj, NULL, s->d_v, x, w->v_proj, N, C, Hkv * D);
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
static void decode_group(const ts_kv_step *s, const ts_kvcache *kv, int l, int r, int j, int b, int n, int H, int G,
                         int D, float scale) {
    int HD = H * D;
    const float *Q = s->q + (size_t)r * HD + (size_t)j * G * D;         // (G, D)
    const float *K = ts_kvcache_at(kv->k, kv, l, b, 0) + j * D, *V = ts_kvcache_at(kv->v, kv, l, b, 0) + j * D; // (n, D) each
    float *S = s->scores + ((size_t)r * H + (size_t)j * G) * kv->max_T;  // (G, n), rows max_T apart
    ts_sgemm(0, 1, G, n, D, scale, Q, D, K, kv->kv_dim, 0.0f, S, kv->max_T); // S = scale · Q Kᵀ
    for (int g = 0; g < G; g++) ts_softmax_row(S + (size_t)g * kv->max_T, S + (size_t)g * kv->max_T, n); // P = softmax(S)
    ts_sgemm(0, 0, G, D, n, 1.0f, S, kv->max_T, V, kv->kv_dim, 0.0f, s->att_out + (size_t)r * HD + (size_t)j * G * D,
             D); // out (G, D) = P V
}

void gqa_decode(float *y, const float *x, const ts_mha_weights *w, const ts_rope *rope, const ts_kv_step *s,
                ts_kvcache *kv, int l, const int *seq, const int *pos, int R, const ts_config *c) {
    int C = c->hidden_size, H = c->num_attention_heads, Hkv = c->num_key_value_heads, D = c->head_dim;
    int HD = H * D, KVD = kv->kv_dim, G = H / Hkv;
    matmul_forward(s->q, x, w->q_proj, NULL, R, C, HD);
    matmul_forward(s->kn, x, w->k_proj, NULL, R, C, KVD); // Hkv heads only
    matmul_forward(s->vn, x, w->v_proj, NULL, R, C, KVD);
    rope_forward(s->q, pos, R, H, HD, D, D, rope->cos, rope->sin);
    rope_forward(s->kn, pos, R, Hkv, KVD, D, D, rope->cos, rope->sin);
    for (int r = 0; r < R; r++) { // append this token's Hkv keys and values to its sequence's cache
        memcpy(ts_kvcache_at(kv->k, kv, l, seq[r], pos[r]), s->kn + (size_t)r * KVD, KVD * sizeof(float));
        memcpy(ts_kvcache_at(kv->v, kv, l, seq[r], pos[r]), s->vn + (size_t)r * KVD, KVD * sizeof(float));
    }
    // each group of G new queries attends over positions 0..pos[r] of its sequence's key/value head
    float scale = 1.0f / sqrtf((float)D);
    if ((double)R * H * kv->max_T * D > 1e6) { // threads only for a batch of long sequences (as mha_decode)
        TS_OMP(parallel for collapse(2) schedule(static))
        for (int r = 0; r < R; r++)
            for (int j = 0; j < Hkv; j++) decode_group(s, kv, l, r, j, seq[r], pos[r] + 1, H, G, D, scale);
    } else {
        for (int r = 0; r < R; r++)
            for (int j = 0; j < Hkv; j++) decode_group(s, kv, l, r, j, seq[r], pos[r] + 1, H, G, D, scale);
    }
    matmul_forward(y, s->att_out, w->o_proj, NULL, R, HD, C);
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
