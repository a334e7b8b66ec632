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

struct ts_model;
struct ts_kvcache;

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

/** @brief Register layer @p l's q/k/v/o projections; returns 0 or -1. */
int mha_register(struct ts_model *m, int l);

/** @brief Layer l: acts[l].ln1 (N,C) → acts[l].attn_y (N,C). */
void mha_forward(struct ts_model *m, int l, int B, int T);

/** @brief Backward of mha_forward(): dy = dL/d(attn_y) (N,C) → m->d_ln += dL/d(ln1), weight gradients +=. */
void mha_backward(struct ts_model *m, int l, const float *dy, int B, int T);

/**
 * @brief Decode step of layer l for R rows (one new token each): x (R,C) is the
 * normed input, rows belong to sequences seq[r] at positions pos[r]; appends
 * their keys and values to the cache and writes y (R,C).
 */
void mha_decode(struct ts_model *m, struct ts_kvcache *c, int l, const float *x, float *y, const int *seq,
                const int *pos, int R);

#endif
