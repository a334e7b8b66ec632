/**
 * @file mha.h
 * @brief Multi-head attention with RoPE (chapter 2): the attention block of a
 *        layer, from the normed input to the o_proj output.
 *
 *     q = rope(n · W_Qᵀ),  k = rope(n · W_Kᵀ),  v = n · W_Vᵀ      (N, H·D) each
 *     ctx = softmax(q kᵀ / √D + causal mask) v                     per head
 *     y = ctx · W_Oᵀ                                               (N, C)
 */
#ifndef TS_MHA_H
#define TS_MHA_H

#include "core/arena.h"
#include "core/ops.h"
#include "model/config.h"
#include "model/kvcache.h"

/** Views of the attention weights of one layer (also used by GQA/MQA, chapter 3). */
typedef struct {
    float *q_proj; /**< (H*D, C) */
    float *k_proj; /**< (Hkv*D, C) */
    float *v_proj; /**< (Hkv*D, C) */
    float *o_proj; /**< (C, H*D) */
} ts_mha_weights;

/** What the forward keeps for the backward. */
typedef struct {
    float *q;   /**< (N, H*D) roped queries */
    float *k;   /**< (N, Hkv*D) roped keys */
    float *v;   /**< (N, Hkv*D) values */
    float *att; /**< (B, H, T, T) attention probabilities */
    float *ctx; /**< (N, H*D) attention output before o_proj */
} ts_mha_acts;

/** Gradient scratch shared by all layers. */
typedef struct {
    float *d_q;   /**< (N, H*D) */
    float *d_k;   /**< (N, Hkv*D) */
    float *d_v;   /**< (N, Hkv*D) */
    float *d_ctx; /**< (N, H*D) */
    float *att;   /**< threads·T·T attention-backward scratch */
} ts_mha_scratch;

/** @brief Register layer @p l's q/k/v/o projections (k and v sized by num_key_value_heads); returns 0 or -1. */
int mha_register(ts_params *p, const ts_config *c, int l);

/** @brief Parameters of one layer's attention: q, k, v and o projections (MHA, GQA and MQA alike). */
long long mha_params(const ts_config *c);

/** @brief Floats the KV cache holds per token per layer: the keys and values of every KV head, 2·Hkv·D. */
long long mha_cache_floats(const ts_config *c);

/** @brief Carve one layer's activations for B sequences of T tokens (measuring arena: only sizes). */
void mha_carve_acts(ts_mha_acts *a, ts_arena *ar, const ts_config *c, int B, int T);

/** @brief Carve the backward scratch shared by all layers, for B sequences of T tokens. */
void mha_carve_scratch(ts_mha_scratch *s, ts_arena *ar, const ts_config *c, int B, int T);

/**
 * @brief y (N,C) = attention(x) for x (N,C) the normed input of B sequences of
 * T tokens at positions @p pos (N); fills @p a.
 */
void mha_forward(float *y, const ts_mha_acts *a, const float *x, const ts_mha_weights *w, const int *pos,
                 const ts_rope *rope, const ts_config *c, int B, int T);

/**
 * @brief Backward of mha_forward(): dx += dL/dx, dw += dL/dw; @p s is scratch
 * (overwritten).
 */
void mha_backward(float *dx, const ts_mha_weights *dw, const ts_mha_scratch *s, const float *dy, const ts_mha_acts *a,
                  const float *x, const ts_mha_weights *w, const int *pos, const ts_rope *rope, const ts_config *c,
                  int B, int T);

/** @brief After a prefill forward of @p n tokens, copy layer @p l's keys and values into sequence @p b of the cache. */
void mha_prefill(ts_kvcache *kv, int l, int b, const ts_mha_acts *a, int n);

/**
 * @brief Decode step of layer l for R rows (one new token each): x (R,C) is the
 * normed input, rows belong to sequences seq[r] at positions pos[r]; appends
 * their keys and values to layer l of the cache and writes y (R,C). @p s is
 * the step's scratch (rows of the cache's B).
 */
void mha_decode(float *y, const float *x, const ts_mha_weights *w, const ts_rope *rope, const ts_kv_step *s,
                ts_kvcache *kv, int l, const int *seq, const int *pos, int R, const ts_config *c);

#endif
