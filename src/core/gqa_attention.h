/**
 * @file gqa_attention.h
 * @brief Causal attention with shared keys and values (chapter 3): H query
 *        heads, Hkv key/value heads, each key/value head serving a group of
 *        G = H/Hkv consecutive query heads (Ainslie et al. 2023, "GQA").
 *
 * Query head h reads key/value head h / G. Hkv = H is multi-head attention
 * (and these functions then compute exactly what attention_forward() and
 * attention_backward() of src/core/attention.c compute, bit for bit);
 * Hkv = 1 is multi-query attention (Shazeer 2019).
 *
 * Shapes: q (B,T,H,Dqk), k (B,T,Hkv,Dqk), v (B,T,Hkv,Dv), out (B,T,H,Dv),
 * att (B,H,T,T): one probability matrix per *query* head.
 */
#ifndef TS_GQA_ATTENTION_H
#define TS_GQA_ATTENTION_H

/**
 * @brief Causal scaled dot-product attention with Hkv shared key/value heads.
 * score[t][s] = scale · q_t·k_s for s <= t, per query head h against key/value
 * head h/(H/Hkv); att saves the probabilities (0 above the diagonal).
 * Hkv must divide H.
 */
void gqa_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                           int B, int T, int H, int Hkv, int Dqk, int Dv, float scale);
/** @brief Reference loops for gqa_attention_forward(). */
void gqa_attention_forward_ref(float *out, float *att, const float *q, const float *k, const float *v,
                               int B, int T, int H, int Hkv, int Dqk, int Dv, float scale);
// [gqa-attention-backward-signature]
/**
 * @brief Backward of gqa_attention_forward(); accumulates (+=) into dq (B,T,H,Dqk),
 * dk (B,T,Hkv,Dqk) and dv (B,T,Hkv,Dv); any of them may be NULL.
 * A shared key/value head receives the sum of the gradients of every query
 * head of its group, added in a fixed order (g = 0..G-1) by one thread.
 * scratch must hold T*T floats per thread (ts_num_threads()*T*T).
 */
void gqa_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                            const float *att, const float *q, const float *k, const float *v,
                            int B, int T, int H, int Hkv, int Dqk, int Dv, float scale);
// [gqa-attention-backward-signature]
/** @brief Reference loops for gqa_attention_backward() (single-threaded: scratch needs T*T floats). */
void gqa_attention_backward_ref(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                                const float *att, const float *q, const float *k, const float *v,
                                int B, int T, int H, int Hkv, int Dqk, int Dv, float scale);

#endif
