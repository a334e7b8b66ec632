/**
 * @file model.h
 * @brief The transformer that every chapter modifies: parameters, the
 *        training forward/backward, and the KV-cache decode path.
 *
 *     tokens ─ embed_tokens ─┬─ [block] × L ─ norm ─ lm_head ─ logits
 *                            │
 *     block:  x ─┬─ input_layernorm ─ attention ─(+)─┬─ post_attention_layernorm ─ mlp ─(+)─ x'
 *                └───────────────────────────────────┘└──────────────────────────────────┘
 *
 * Chapter 2's attention is multi-head (one K/V head per query head), its MLP a
 * SwiGLU: down_proj(silu(gate_proj x) ⊙ up_proj x).
 *
 * Parameters carry Hugging Face names (model.layers.N.self_attn.q_proj.weight,
 * ...) so a checkpoint folder is a Hugging Face model folder.
 */
#ifndef TS_MODEL_H
#define TS_MODEL_H

#include "core/arena.h"
#include "core/rng.h"
#include "model/config.h"
#include "model/mha.h"
#include "model/mla.h"
#include "model/mlp.h"
#include "model/moe.h"
#include "model/kvcache.h"

/** Which attention implementation a model runs (chosen from the config). */
typedef enum {
    TS_ATTN_MHA = 0, /**< chapter 2: H query heads, H key/value heads */
    TS_ATTN_GQA = 1, /**< chapter 3: H query heads share Hkv key/value heads */
    TS_ATTN_MLA = 2  /**< chapter 4: multi-head latent attention */
} ts_attn_kind;

/** Views of one block's weights (into the parameter or the gradient buffer). */
typedef struct {
    float *input_layernorm;          /**< (C) */
    ts_mha_weights attn;             /**< self_attn.{q,k,v,o}_proj (MHA/GQA/MQA) */
    ts_mla_weights mla;              /**< self_attn.{q_a,q_b,kv_a,kv_b,o}_proj, norms (MLA, chapter 4) */
    float *post_attention_layernorm; /**< (C) */
    ts_mlp_weights mlp;              /**< mlp.{gate,up,down}_proj (dense SwiGLU) */
    ts_moe_weights moe;              /**< mlp.gate, mlp.experts.E, mlp.shared_experts (MoE layers, chapter 5) */
} ts_layer_weights;

/** Views of all weights (into the parameter or the gradient buffer). */
typedef struct {
    float *embed_tokens;       /**< (V, C) */
    ts_layer_weights *layers;  /**< L blocks */
    float *norm;               /**< (C) final RMSNorm */
    float *lm_head;            /**< (V, C); equals embed_tokens when tied */
} ts_weights;

/** Activations of one block saved by the forward for the backward. */
typedef struct {
    float *ln1;       /**< (N,C) input_layernorm output */
    float *ln1_rstd;  /**< (N) */
    ts_mha_acts attn; /**< inside the attention block */
    ts_mla_acts mla;  /**< inside the MLA block (chapter 4) */
    float *attn_y;    /**< (N,C) attention block output (after o_proj) */
    float *res1;      /**< (N,C) residual after attention */
    float *ln2;       /**< (N,C) post_attention_layernorm output */
    float *ln2_rstd;  /**< (N) */
    ts_mlp_acts mlp;  /**< inside the MLP */
    ts_moe_acts moe;  /**< inside the MoE layer (chapter 5) */
    float *mlp_y;     /**< (N,C) MLP output */
    float *out;       /**< (N,C) block output (residual after the MLP) */
} ts_layer_acts;

/** The model: config, parameters, and activation buffers for one batch shape. */
typedef struct ts_model {
    ts_config cfg;        /**< architecture */
    ts_attn_kind attn;    /**< attention implementation: MHA when Hkv == H, else GQA (a test may set GQA on an Hkv == H model) */
    ts_params params;     /**< all parameters, their gradients and AdamW moments */
    ts_weights w;         /**< named views into params.data */
    ts_weights g;         /**< the same views into params.grad */
    float *rope_cos;      /**< (max_position_embeddings, rope dim/2) */
    float *rope_sin;      /**< (max_position_embeddings, rope dim/2) */

    /* activations for the batch shape reserved by ts_model_reserve() */
    int B;                /**< batch size reserved */
    int T;                /**< sequence length reserved */
    ts_arena arena;       /**< holds everything below */
    int *tokens;          /**< (B,T) inputs of the last forward */
    int *targets;         /**< (B,T) targets of the last forward (TS_IGNORE = no loss) */
    int *pos;             /**< (B,T) positions 0..T-1 */
    float *embed;         /**< (N,C) embedding output = block 0 input */
    ts_layer_acts *acts;  /**< L blocks */
    float *lnf;           /**< (N,C) final norm output */
    float *lnf_rstd;      /**< (N) */
    float *logits;        /**< (N,V) */
    float *losses;        /**< (2N) per-token cross-entropy, then dL/dloss per token */
    int n_counted;        /**< targets that were not TS_IGNORE in the last forward */
    int cur_B;            /**< batch size of the last forward */
    int cur_T;            /**< sequence length of the last forward */
    /* gradient scratch, reused by every block in the backward */
    float *d_res;         /**< (N,C) gradient of the residual stream */
    float *d_ln;          /**< (N,C) gradient of a norm's output */
    float *d_logits;      /**< (N,V) */
    ts_mha_scratch attn_scratch; /**< attention backward scratch */
    ts_mla_scratch mla_scratch;  /**< MLA forward/backward scratch (chapter 4) */
    ts_mlp_acts mlp_scratch;     /**< MLP backward scratch (N,F) */
    ts_moe_scratch moe_scratch;  /**< MoE backward scratch (chapter 5) */
    ts_mlp_weights *expert_views; /**< (2, L, E) routed-expert views: weights, then gradients */
    float ce_loss;        /**< mean cross-entropy of the last forward with targets */
    float aux_loss;       /**< MoE auxiliary balance loss of the last forward (summed over layers) */
} ts_model;

/**
 * @brief Register every parameter for @p cfg (Hugging Face names), allocate
 * them (and AdamW moments when @p with_optimizer), build the RoPE table.
 * The weights are zero until ts_model_init_weights() or a checkpoint load.
 */
ts_status ts_model_create(ts_model *m, const ts_config *cfg, int with_optimizer);

/** @brief Normal(0, initializer_range) weights, norms at 1; output projections scaled by 1/√(2L). */
void ts_model_init_weights(ts_model *m, uint64_t seed);

/** @brief Size the activation arena for batches of B sequences of T tokens (T ≤ max_position_embeddings). */
ts_status ts_model_reserve(ts_model *m, int B, int T);

/**
 * @brief Forward pass over tokens (B,T). With targets (B,T) non-NULL returns the
 * mean cross-entropy over targets that are not TS_IGNORE (m->ce_loss) plus the
 * MoE auxiliary balance loss (m->aux_loss, 0 without MoE), and keeps what the
 * backward needs; with targets NULL only the logits are computed and 0 is returned.
 * Activations grow (ts_model_reserve()) if B or T exceed what was reserved.
 * Returns NAN, with ts_last_error() set, if a token is outside the vocabulary
 * or memory runs out.
 */
float ts_model_forward(ts_model *m, const int *tokens, const int *targets, int B, int T);

/** @brief Backward of the last forward (which must have had targets): grads += dLoss/dθ. */
void ts_model_backward(ts_model *m);

/** @brief Set all gradients to zero. */
void ts_model_zero_grad(ts_model *m);

/** @brief Free everything the model owns. */
void ts_model_free(ts_model *m);

/**
 * @brief Parameter count: total, and (for MoE) activated per token; embeddings included.
 * Each layer part answers for itself: mha_params(), mla_params(), mlp_params(), moe_params().
 */
void ts_model_count_params(const ts_config *cfg, long long *total, long long *active);

/** @brief The attention a model of config @p c runs: MLA for "deepseek_v3", else MHA when Hkv == H, else GQA. */
ts_attn_kind ts_attn_kind_of(const ts_config *c);

/**
 * @brief Floats the KV cache holds per token per layer for config @p c (@p mode
 * matters only for MLA): mha_cache_floats() or mla_cache_floats().
 */
long long ts_attn_cache_floats(const ts_config *c, ts_kv_mode mode);

/** @brief The model's RoPE table as the attention layers take it (rotated dims: head_dim, or qk_rope_head_dim for MLA). */
static inline ts_rope ts_model_rope(const ts_model *m) {
    ts_rope r = {m->rope_cos, m->rope_sin, m->attn == TS_ATTN_MLA ? m->cfg.qk_rope_head_dim : m->cfg.head_dim};
    return r;
}

/* ------------------------------------------------------------------ */
/* Inference: KV cache, prefill, decode                                */
/* ------------------------------------------------------------------ */

/** @brief Allocate a cache for B sequences of up to max_T tokens (an MLA model's is absorbed). */
ts_status ts_kvcache_create(ts_kvcache *c, const ts_model *m, int B, int max_T);

/**
 * @brief Allocate a cache for a model of config @p cfg (no weights needed), B
 * sequences of up to max_T tokens, laid out as @p mode says for MLA.
 */
ts_status ts_kvcache_create_for(ts_kvcache *c, const ts_config *cfg, int B, int max_T, ts_kv_mode mode);

/** @brief Bytes the cache allocated per token (all layers): bytes / (B · max_T). */
size_t ts_kvcache_bytes_per_token(const ts_kvcache *c);

/** @brief Free a cache. */
void ts_kvcache_free(ts_kvcache *c);

/**
 * @brief Prefill sequence @p b of the cache with @p n prompt tokens (full causal
 * forward over the prompt, keys/values copied into the cache). Writes the
 * logits of the last prompt token to @p logits (V). Resets that sequence first.
 * Uses the model's activation arena (reserved for at least (1, n)).
 */
ts_status ts_model_prefill(ts_model *m, ts_kvcache *c, int b, const int *tokens, int n, float *logits);

/**
 * @brief Decode one token for every sequence b whose active[b] is non-zero
 * (active may be NULL = all): appends tokens[b] at position len[b] and writes
 * next-token logits to logits + b*V.
 */
ts_status ts_model_decode(ts_model *m, ts_kvcache *c, const int *tokens, const int *active, float *logits);

/** Sampling settings. */
typedef struct {
    float temperature; /**< 0 = greedy (argmax) */
    int top_k;         /**< keep the k most likely (0 = off) */
    float top_p;       /**< keep the smallest set with mass ≥ p (1 = off) */
} ts_sampler;

/** @brief Pick the next token from logits (V); deterministic given @p rng's state. */
int ts_sample(const float *logits, int V, const ts_sampler *s, ts_rng *rng);

#endif
