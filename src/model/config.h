/**
 * @file config.h
 * @brief The model configuration, read from and written to a Hugging Face
 *        style config.json.
 *
 * `model_type` selects the architecture:
 *  - "llama": the dense chapters (2–3). Attention is multi-head with
 *    `num_key_value_heads` key/value heads (= heads: MHA, 1: MQA, between: GQA).
 *  - "deepseek_v3": Multi-head Latent Attention (chapter 4).
 * With `n_routed_experts` > 0 the feed-forward layers from
 * `first_k_dense_replace` on are DeepSeekMoE layers (chapter 5), whatever the
 * attention: "llama" + MoE fields is chapter 2's attention with experts.
 *
 * RoPE always rotates adjacent pairs (2i, 2i+1), DeepSeek's layout, for both
 * model types (see the chapter 2 text for how this relates to Llama's halves).
 */
#ifndef TS_CONFIG_H
#define TS_CONFIG_H

#include "core/common.h"
#include "core/ops.h"

/** Architecture family selected by `model_type`. */
typedef enum {
    TS_ARCH_LLAMA = 0,      /**< dense MHA/GQA/MQA + SwiGLU */
    TS_ARCH_DEEPSEEK_V3 = 1 /**< MLA + (optionally) DeepSeekMoE */
} ts_arch;

/** Every field tinyseek reads from config.json (Hugging Face names). */
typedef struct {
    char model_type[32];          /**< "llama" or "deepseek_v3" */
    ts_arch arch;                 /**< parsed from model_type */
    int vocab_size;               /**< V */
    int hidden_size;              /**< C */
    int num_hidden_layers;        /**< L */
    int num_attention_heads;      /**< H */
    int num_key_value_heads;      /**< Hkv (llama); defaults to H */
    int head_dim;                 /**< D (llama); defaults to C/H */
    int intermediate_size;        /**< dense SwiGLU hidden size */
    int max_position_embeddings;  /**< longest sequence the RoPE table covers */
    float rms_norm_eps;           /**< RMSNorm epsilon */
    float rope_theta;             /**< RoPE base */
    int tie_word_embeddings;      /**< 1: lm_head shares embed_tokens */
    float initializer_range;      /**< std of the normal weight init (default 0.02) */
    int bos_token_id;             /**< beginning-of-sequence id (-1 if none) */
    int eos_token_id;             /**< end-of-sequence id (-1 if none) */

    /* Multi-head Latent Attention (deepseek_v3) */
    int q_lora_rank;              /**< 0 = plain q_proj, else rank of W_DQ */
    int kv_lora_rank;             /**< d_c, rank of the KV latent */
    int qk_nope_head_dim;         /**< per-head query/key dims without RoPE */
    int qk_rope_head_dim;         /**< per-head query dims with RoPE; the shared roped key has this size */
    int v_head_dim;               /**< per-head value dim */

    /* DeepSeekMoE (any model_type; chapter 5) */
    int n_routed_experts;         /**< 0 = dense FFN everywhere */
    int n_shared_experts;         /**< always-on experts */
    int num_experts_per_tok;      /**< K_r, routed experts per token */
    int moe_intermediate_size;    /**< hidden size of one expert */
    int first_k_dense_replace;    /**< first layers keep the dense FFN */
    int n_group;                  /**< expert groups for group-limited routing */
    int topk_group;               /**< groups kept per token */
    float routed_scaling_factor;  /**< multiplies the routed weights */
    char scoring_func[16];        /**< "softmax" or "sigmoid" */
    int norm_topk_prob;           /**< renormalise the chosen K weights */
    char topk_method[32];         /**< "greedy" or "noaux_tc" */
    float aux_loss_alpha;         /**< weight of the sequence-wise auxiliary loss */
    int num_nextn_predict_layers; /**< multi-token prediction depth (chapter 6) */

    /* YaRN (`rope_scaling` with type "yarn") */
    int has_yarn;                 /**< 1 when rope_scaling is present */
    ts_yarn yarn;                 /**< its parameters */
} ts_config;

/** @brief A small llama config with every field set to a sensible default. */
void ts_config_default(ts_config *c);

/**
 * @brief Parse config.json text. @p source names the file in error messages.
 * Missing required fields or wrong types fail with TS_ERR_FORMAT naming the field;
 * unknown fields are ignored; inconsistent values fail with TS_ERR_RANGE.
 */
ts_status ts_config_parse(ts_config *c, const char *json, const char *source);

/** @brief Read and parse a config.json file. */
ts_status ts_config_load(ts_config *c, const char *path);

/** @brief Check the values are consistent (positive sizes, heads divide, ...). */
ts_status ts_config_validate(const ts_config *c, const char *source);

/** @brief Write config.json atomically (temporary file + rename). */
ts_status ts_config_save(const ts_config *c, const char *path);

/** @brief Query/key head dimension seen by attention (D for llama, nope+rope for MLA). */
int ts_config_qk_head_dim(const ts_config *c);

/** @brief Value head dimension (D for llama, v_head_dim for MLA). */
int ts_config_v_head_dim(const ts_config *c);

#endif
