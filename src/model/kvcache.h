/**
 * @file kvcache.h
 * @brief The KV cache of B sequences: what each attention kind keeps per token
 *        and layer for decoding, where a row of it lives, and the decode-step
 *        scratch. Allocated by ts_kvcache_create_for() (src/model/decode.c);
 *        the attention files (mha.c, gqa.c, mla.c) read and append to it.
 */
#ifndef TS_KVCACHE_H
#define TS_KVCACHE_H

#include <stddef.h>

#include "core/arena.h"

struct ts_moe_acts;

/** Decode-step scratch of MHA/GQA attention, one row per sequence. */
typedef struct {
    float *q;       /**< (B,H*D) queries */
    float *kn;      /**< (B,kv_dim) new keys */
    float *vn;      /**< (B,kv_dim) new values */
    float *att_out; /**< (B,H*D) attention output before o_proj */
    float *scores;  /**< (B,H,max_T) attention scores */
} ts_kv_step;

/**
 * The KV cache of B independent sequences. For MHA/GQA it holds, per layer and
 * sequence, the roped keys and the values of every position so far:
 * 2·Hkv·D floats per token per layer. For MLA (chapter 4) the absorbed cache
 * holds only the latent, kv_lora_rank + qk_rope_head_dim floats per token per
 * layer (@ref latent); the naive one holds full per-head keys and values in k/v.
 */
typedef struct ts_kvcache {
    int L;            /**< layers */
    int B;            /**< sequences */
    int max_T;        /**< positions per sequence */
    int kv_dim;       /**< floats per token per layer for K (and for V) */
    float *k;         /**< (L, B, max_T, kv_dim) */
    float *v;         /**< (L, B, max_T, v_dim) */
    int *len;         /**< (B) tokens cached per sequence */
    size_t bytes;     /**< bytes allocated for k and v together */
    /* decode-step scratch, one row per sequence */
    float *x;         /**< (B,C) residual stream */
    float *ln;        /**< (B,C) normed input of a block part */
    ts_kv_step step;  /**< MHA/GQA attention scratch */
    float *res;       /**< (B,C) a block part's output (also RMSNorm's rstd scratch) */
    float *gate;      /**< (B,F) MLP gate */
    float *up;        /**< (B,F) MLP up */
    float *hidden;    /**< (B,F) MLP hidden */
    float *logits;    /**< (B,V) */
    int *rows;        /**< (2B) active sequence index and position of each decode row */
    /* Multi-head latent attention (chapter 4) */
    int mla_naive;    /**< MLA: 1 = full per-head keys (kv_dim = H·dq) and values (v_dim = H·dv) in k/v; 0 = latent */
    int v_dim;        /**< floats per token per layer for V (kv_dim, except naive MLA) */
    int latent_dim;   /**< absorbed MLA: kv_lora_rank + qk_rope_head_dim floats per token per layer (else 0) */
    float *latent;    /**< absorbed MLA: (L, B, max_T, latent_dim), normed c_kv then roped k_rope */
    float *mla_scratch; /**< MLA decode scratch (laid out by mla.c) */
    struct ts_moe_acts *moe; /**< MoE layers' routing and expert buffers for B rows (chapter 5); NULL without MoE */
    ts_arena moe_arena; /**< holds moe */
} ts_kvcache;

/** What an MLA model's cache stores (chapter 4); other attentions ignore it. */
typedef enum {
    TS_KV_ABSORBED = 0, /**< the latent: normed c_kv and roped k_rope, (kv_lora_rank + qk_rope_head_dim) floats */
    TS_KV_NAIVE = 1     /**< up-projected per-head keys and values, H·(qk_nope + qk_rope + v_head_dim) floats */
} ts_kv_mode;

/** @brief Where layer @p l, sequence @p b, position @p t lives in a (L,B,max_T,dim) cache buffer. */
static inline float *ts_kvcache_row(float *base, const ts_kvcache *c, int dim, int l, int b, int t) {
    return base + (((size_t)l * c->B + b) * c->max_T + t) * dim;
}

/** @brief The same in a (L,B,max_T,kv_dim) buffer (c->k, or c->v where v_dim = kv_dim). */
static inline float *ts_kvcache_at(float *base, const ts_kvcache *c, int l, int b, int t) {
    return ts_kvcache_row(base, c, c->kv_dim, l, b, t);
}

/** @brief The latent row [c_kv; k_rope] of layer @p l, sequence @p b, position @p t (absorbed MLA). */
static inline float *ts_kvcache_latent_at(const ts_kvcache *c, int l, int b, int t) {
    return ts_kvcache_row(c->latent, c, c->latent_dim, l, b, t);
}

#endif
