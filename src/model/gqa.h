/**
 * @file gqa.h
 * @brief Grouped-query and multi-query attention (chapter 3): the attention
 *        block of a layer with H query heads and Hkv = num_key_value_heads
 *        key/value heads, each key/value head shared by G = H/Hkv query heads.
 *
 *     q = rope(n · W_Qᵀ)  (N, H·D),   k = rope(n · W_Kᵀ), v = n · W_Vᵀ   (N, Hkv·D)
 *     ctx_h = softmax(q_h k_{h/G}ᵀ / √D + causal mask) v_{h/G}          per query head h
 *     y = ctx · W_Oᵀ                                                    (N, C)
 *
 * Hkv = H is chapter 2's multi-head attention, Hkv = 1 multi-query attention
 * (Shazeer 2019), anything between grouped-query attention (Ainslie et al. 2023).
 * The weights and saved activations are chapter 2's structs (ts_mha_weights,
 * ts_mha_acts): only k_proj, v_proj and the k, v activations are smaller.
 * The KV cache holds Hkv heads: 2·Hkv·D floats per token per layer. Parameters,
 * their count, the cache size and the buffers are chapter 2's too: mha_register(),
 * mha_params(), mha_cache_floats(), mha_carve_acts(), mha_prefill() size k and v
 * by num_key_value_heads.
 */
#ifndef TS_GQA_H
#define TS_GQA_H

#include "model/mha.h"

/** @brief y (N,C) = grouped-query attention(x); the contract of mha_forward(). */
void gqa_forward(float *y, const ts_mha_acts *a, const float *x, const ts_mha_weights *w, const int *pos,
                 const ts_rope *rope, const ts_config *c, int B, int T);

/** @brief Backward of gqa_forward(): dx += dL/dx, dw += dL/dw. The contract of mha_backward(). */
void gqa_backward(float *dx, const ts_mha_weights *dw, const ts_mha_scratch *s, const float *dy, const ts_mha_acts *a,
                  const float *x, const ts_mha_weights *w, const int *pos, const ts_rope *rope, const ts_config *c,
                  int B, int T);

/**
 * @brief Decode step of layer l for R rows (the contract of mha_decode()): reads
 * each cached key and value row once per *group* of G query heads.
 */
void gqa_decode(float *y, const float *x, const ts_mha_weights *w, const ts_rope *rope, const ts_kv_step *s,
                ts_kvcache *kv, int l, const int *seq, const int *pos, int R, const ts_config *c);

/**
 * @brief Mean-pool groups of key/value heads of one projection weight (GQA paper, §2.1):
 * dst head j (rows j·D .. j·D+D-1 of a (Hkv_out·D, C) matrix) is the mean of
 * src heads j·G .. j·G+G-1 of a (Hkv_in·D, C) matrix, G = Hkv_in/Hkv_out.
 * Hkv_out must divide Hkv_in. Heads are averaged in order in double precision.
 */
void gqa_mean_pool_heads(float *dst, const float *src, int Hkv_in, int Hkv_out, int D, int C);

#endif
