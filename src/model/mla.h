/**
 * @file mla.h
 * @brief Multi-head Latent Attention (chapter 4; DeepSeek-V2 §2.1, DeepSeek-V3 §2.1.1):
 *        the attention block of a "deepseek_v3" layer, from the normed input to
 *        the o_proj output, for training (naive) and for decoding (absorbed).
 *
 * Shapes: N rows (tokens), C = hidden_size, H heads, dn = qk_nope_head_dim,
 * dr = qk_rope_head_dim, dq = dn + dr (query/key head), dv = v_head_dim,
 * dc = kv_lora_rank, rq = q_lora_rank (0: a plain q_proj).
 *
 *     queries    c_q = rmsnorm(h · W_DQᵀ)                   (N, rq)      q_a_proj, q_a_layernorm
 *                q   = c_q · W_UQᵀ                          (N, H·dq)    q_b_proj (or q = h · q_projᵀ)
 *                per head q = [q_nope (dn); q_rope (dr)], RoPE on q_rope only
 *     keys/vals  [c_kv; k_rope] = h · W_DKVᵀ                (N, dc + dr) kv_a_proj_with_mqa
 *                c_kv = rmsnorm(c_kv); RoPE on k_rope, one head shared by all H
 *                [k_nope; v] per head = c_kv · W_UKVᵀ        (N, H·(dn+dv)) kv_b_proj
 *     attention  score = (q_nope·k_nope + q_rope·k_rope) · scale,  out = softmax · v
 *                y = ctx · W_Oᵀ                             (N, C)       o_proj
 *
 * scale = dq^(−1/2), times yarn_get_mscale(factor, mscale_all_dim)² under YaRN.
 * RoPE rotates adjacent pairs (2i, 2i+1), as DeepSeek's reference code does.
 *
 * The absorbed decode never forms k_nope or v: it caches only [c_kv; k_rope]
 * (dc + dr floats per token per layer), folds W_UK into the query and applies
 * W_UV after the attention (see mla_decode()).
 */
#ifndef TS_MLA_H
#define TS_MLA_H

#include "core/arena.h"
#include "core/ops.h"
#include "model/config.h"
#include "model/kvcache.h"

/** Views of one layer's MLA weights (Hugging Face DeepSeek-V3 names), or of their gradients. */
typedef struct {
    float *q_a_proj;           /**< W_DQ (rq, C); NULL when q_lora_rank is 0 */
    float *q_a_layernorm;      /**< (rq); NULL when q_lora_rank is 0 */
    float *q_b_proj;           /**< W_UQ (H·dq, rq); NULL when q_lora_rank is 0 */
    float *q_proj;             /**< W_Q (H·dq, C) when q_lora_rank is 0, else NULL */
    float *kv_a_proj_with_mqa; /**< W_DKV with the shared RoPE key (dc + dr, C) */
    float *kv_a_layernorm;     /**< (dc) */
    float *kv_b_proj;          /**< W_UKV (H·(dn+dv), dc): per head dn rows of W_UK, then dv rows of W_UV */
    float *o_proj;             /**< W_O (C, H·dv) */
} ts_mla_weights;

/** What the training forward keeps for the backward (one layer). */
typedef struct {
    float *cq;       /**< (N, rq) q_a_proj output, before its norm (q_lora only) */
    float *cq_n;     /**< (N, rq) normed c_q (q_lora only) */
    float *cq_rstd;  /**< (N) (q_lora only) */
    float *q;        /**< (N, H·dq) queries, q_rope part roped */
    float *kva;      /**< (N, dc + dr) kv_a_proj_with_mqa output: raw c_kv, then the roped k_rope */
    float *ckv;      /**< (N, dc) normed c_kv (what the absorbed cache stores, with k_rope) */
    float *ckv_rstd; /**< (N) */
    float *k;        /**< (N, H·dq) keys: per head [k_nope; k_rope] */
    float *v;        /**< (N, H·dv) values */
    float *att;      /**< (B, H, T, T) attention probabilities */
    float *ctx;      /**< (N, H·dv) attention output before o_proj */
} ts_mla_acts;

/** Scratch shared by all layers (forward up-projection and backward gradients). */
typedef struct {
    float *kv;      /**< (N, H·(dn+dv)) kv_b_proj output, split into k and v */
    float *d_q;     /**< (N, H·dq) */
    float *d_k;     /**< (N, H·dq) */
    float *d_v;     /**< (N, H·dv) */
    float *d_ctx;   /**< (N, H·dv) */
    float *d_kv;    /**< (N, H·(dn+dv)) */
    float *d_kva;   /**< (N, dc + dr) */
    float *d_ckv;   /**< (N, dc) */
    float *d_cq_n;  /**< (N, rq) */
    float *d_cq;    /**< (N, rq) */
    float *att;     /**< threads·T·T attention-backward scratch */
} ts_mla_scratch;

/** @brief Register layer @p l's MLA tensors (Hugging Face DeepSeek-V3 names); returns 0 or -1. */
int mla_register(ts_params *p, const ts_config *c, int l);

/** @brief Parameters of one layer's MLA: query path (low-rank or plain), kv_a with its norm, kv_b, o_proj. */
long long mla_params(const ts_config *c);

/**
 * @brief Floats the KV cache holds per token per layer: the latent, dc + dr
 * (@p mode TS_KV_ABSORBED), or full per-head keys and values, H·(dq + dv) (TS_KV_NAIVE).
 */
long long mla_cache_floats(const ts_config *c, ts_kv_mode mode);

/** @brief The softmax scale: (qk_nope + qk_rope)^(−1/2) × yarn_get_mscale(factor, mscale_all_dim)² under YaRN. */
float mla_softmax_scale(const ts_config *c);

/**
 * @brief YaRN's RoPE amplitude as DeepSeek applies it: cos and sin, (max_position_embeddings,
 * qk_rope_head_dim/2) each, are multiplied by yarn_get_mscale(factor, mscale) /
 * yarn_get_mscale(factor, mscale_all_dim) (1 when the two are equal, as in the published configs).
 */
void mla_scale_rope_table(float *cos_t, float *sin_t, const ts_config *c);

/** @brief Carve one layer's activations for B sequences of T tokens (measuring arena: only sizes). */
void mla_carve_acts(ts_mla_acts *a, ts_arena *ar, const ts_config *c, int B, int T);

/** @brief Carve the scratch shared by all layers (forward up-projection, backward gradients). */
void mla_carve_scratch(ts_mla_scratch *s, ts_arena *ar, const ts_config *c, int B, int T);

/**
 * @brief Training path: y (N,C) = MLA(x) for x (N,C) the normed input of B
 * sequences of T tokens at positions @p pos (N); fills @p a, uses s->kv.
 */
void mla_forward(float *y, const ts_mla_acts *a, const ts_mla_scratch *s, const float *x, const ts_mla_weights *w,
                 const int *pos, const ts_rope *rope, const ts_config *c, int B, int T);

/** @brief Backward of mla_forward(): dx += dL/dx, dw += dL/dw; @p s is scratch (overwritten). */
void mla_backward(float *dx, const ts_mla_weights *dw, const ts_mla_scratch *s, const float *dy, const ts_mla_acts *a,
                  const float *x, const ts_mla_weights *w, const int *pos, const ts_rope *rope, const ts_config *c,
                  int B, int T);

/**
 * @brief Set up the MLA part of a KV cache: the latent (absorbed) or full keys and
 * values (naive), and the decode scratch. Called by ts_kvcache_create_for().
 */
int mla_kvcache_init(ts_kvcache *kv, const ts_config *cfg, int naive);

/** @brief Free what mla_kvcache_init() allocated. */
void mla_kvcache_free(ts_kvcache *kv);

/** @brief After a prefill forward of @p n tokens, copy layer @p l's cache entries for sequence @p b from @p a. */
void mla_prefill(ts_kvcache *kv, int l, int b, const ts_mla_acts *a, const ts_config *c, int n);

// [mla-absorbed-signature]
/**
 * @brief Absorbed attention of layer l for R decode rows, over the latent cache.
 *
 * Per head h, with W_UK[h] (dn, dc) and W_UV[h] (dv, dc) the two blocks of
 * kv_b_proj's rows that belong to head h:
 *
 *     q_nope·k_nope_t = q_nope·(W_UK[h] c_t) = (W_UK[h]ᵀ q_nope)·c_t
 *     score[h][t]     = [W_UK[h]ᵀ q_nope ; q_rope] · [c_t ; k_rope_t] · scale
 *     ctx_h           = Σ_t p[h][t] (W_UV[h] c_t) = W_UV[h] (Σ_t p[h][t] c_t)
 *
 * so the query moves into the latent space once per step, every cached c_t is
 * used as it is, and W_UV is applied once to the attention's latent output.
 * q (R, H·dq): the rows' queries, q_rope roped; rows belong to sequences seq[r]
 * at positions pos[r], whose cache entries (0..pos[r]) are already written.
 * kv_b_proj is layer l's (H·(dn+dv), dc) weight. Writes ctx (R, H·dv), the
 * attention output before o_proj. Scratch: qcat (R, H, dc+dr),
 * scores (R, H, c->max_T), olat (R, H, dc).
 */
void mla_absorbed_attention(const ts_config *cfg, const float *kv_b_proj, const ts_kvcache *c, int l, const float *q,
                            float *ctx, float *qcat, float *scores, float *olat, const int *seq, const int *pos,
                            int R);

// [mla-absorbed-signature]
/**
 * @brief Decode step of layer l for R rows (one new token each): x (R,C) is the
 * normed input, rows belong to sequences seq[r] at positions pos[r]; appends
 * their entries to layer l of the cache and writes y (R,C). Absorbed or naive,
 * as the cache was made. @p scratch is the cache's MLA decode scratch (kv->mla_scratch).
 */
void mla_decode(float *y, const float *x, const ts_mla_weights *w, const ts_rope *rope, float *scratch,
                ts_kvcache *kv, int l, const int *seq, const int *pos, int R, const ts_config *cfg);

#endif
