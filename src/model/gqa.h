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
 * The KV cache holds Hkv heads: 2·Hkv·D floats per token per layer.
 */
#ifndef TS_GQA_H
#define TS_GQA_H

#include "core/common.h"

struct ts_model;
struct ts_kvcache;

/** @brief Layer l: acts[l].ln1 (N,C) → acts[l].attn_y (N,C). The contract of mha_forward(). */
void gqa_forward(struct ts_model *m, int l, int B, int T);

/**
 * @brief Backward of gqa_forward(): dy = dL/d(attn_y) (N,C) → m->d_ln += dL/d(ln1),
 * weight gradients +=. The contract of mha_backward().
 */
void gqa_backward(struct ts_model *m, int l, const float *dy, int B, int T);

/**
 * @brief Decode step of layer l for R rows (the contract of mha_decode()): reads
 * each cached key and value row once per *group* of G query heads.
 */
void gqa_decode(struct ts_model *m, struct ts_kvcache *c, int l, const float *x, float *y, const int *seq,
                const int *pos, int R);

/**
 * @brief Mean-pool groups of key/value heads of one projection weight (GQA paper, §2.1):
 * dst head j (rows j·D .. j·D+D-1 of a (Hkv_out·D, C) matrix) is the mean of
 * src heads j·G .. j·G+G-1 of a (Hkv_in·D, C) matrix, G = Hkv_in/Hkv_out.
 * Hkv_out must divide Hkv_in. Heads are averaged in order in double precision.
 */
void gqa_mean_pool_heads(float *dst, const float *src, int Hkv_in, int Hkv_out, int D, int C);

/**
 * @brief Build @p dst, a model with @p kv_heads key/value heads, from @p src (a
 * llama-type model, MHA or GQA) by mean-pooling its k_proj and v_proj heads in
 * groups; every other tensor is copied. @p kv_heads must divide src's
 * num_key_value_heads. @p dst is created here (without optimizer state); free
 * it with ts_model_free(). On error returns non-zero with ts_last_error() set.
 */
ts_status ts_model_convert_gqa(struct ts_model *dst, const struct ts_model *src, int kv_heads);

#endif
