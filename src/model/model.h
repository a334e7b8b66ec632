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
#include "model/mtp.h"
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
    ts_layer_weights *layers;  /**< L blocks, then the D MTP modules' blocks (chapter 6) */
    float *norm;               /**< (C) final RMSNorm */
    float *lm_head;            /**< (V, C); equals embed_tokens when tied */
    ts_mtp_weights *mtp;       /**< D multi-token prediction modules' own weights (chapter 6; NULL when D = 0) */
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

/**
 * What a model is created for. The values 0 and 1 are what ts_model_create()'s
 * last argument meant before it had names (with_optimizer), so both spellings work.
 */
typedef enum {
    TS_MODEL_GRADS = 0, /**< weights, gradients and backward scratch, no optimizer state (gradient checks, dumps) */
    TS_MODEL_TRAIN = 1, /**< TS_MODEL_GRADS plus AdamW's two moments: a model an optimizer steps */
    TS_MODEL_FROZEN = 2 /**< weights and a forward only (teacher, reference, old policy, generation):
                             no gradients, no moments, no backward scratch; a backward fails */
} ts_model_mode;

/** The model: config, parameters, and activation buffers for one batch shape. */
typedef struct ts_model {
    ts_config cfg;        /**< architecture */
    ts_attn_kind attn;    /**< attention implementation: MHA when Hkv == H, else GQA (a test may set GQA on an Hkv == H model) */
    ts_params params;     /**< all parameters, their gradients and AdamW moments */
    ts_weights w;         /**< named views into params.data */
    ts_weights g;         /**< the same views into params.grad */
    ts_model_mode mode;   /**< what it was created for: a frozen model has no gradients (g's views are NULL) */
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
    ts_layer_acts *acts;  /**< L blocks, then the D MTP modules' blocks */
    float *lnf;           /**< (N,C) final norm output */
    float *lnf_rstd;      /**< (N) */
    float *logits;        /**< (N,V) */
    float *hidden;        /**< (N,C) last hidden state: the residual stream after the last block, before norm */
    float *losses;        /**< (2N) per-token cross-entropy, then dL/dloss per token */
    int n_counted;        /**< targets that were not TS_IGNORE in the last forward */
    int cur_B;            /**< batch size of the last forward */
    int cur_T;            /**< sequence length of the last forward */
    /* gradient scratch, reused by every block in the backward */
    float *d_res;         /**< (N,C) gradient of the residual stream */
    float *d_ln;          /**< (N,C) gradient of a norm's output */
    float *d_logits;      /**< (N,V) the chapter-2 wrapper's cross-entropy gradient */
    ts_mha_scratch attn_scratch; /**< attention backward scratch */
    ts_mla_scratch mla_scratch;  /**< MLA forward/backward scratch (chapter 4) */
    ts_mlp_acts mlp_scratch;     /**< MLP backward scratch (N,F) */
    ts_moe_scratch moe_scratch;  /**< MoE backward scratch (chapter 5) */
    ts_mlp_weights *expert_views; /**< (2, L, E) routed-expert views: weights, then gradients */
    float ce_loss;        /**< mean cross-entropy of the last forward with targets */
    float aux_loss;       /**< MoE auxiliary balance loss of the last forward (summed over layers) */
    float aux_weight;     /**< weight of the balance loss in the backward in progress (ts_model_backward_from()) */
    /* multi-token prediction (chapter 6, src/model/mtp.h): D = cfg.num_nextn_predict_layers modules */
    ts_mtp_acts *mtp_acts; /**< D modules' activations (their blocks' are acts[L..L+D−1]) */
    float *mtp_scratch;   /**< the modules' backward scratch (5·N·C) */
    int mtp_depths;       /**< modules the last ts_mtp_forward() ran (0 after every main forward) */
    float mtp_aux_loss;   /**< the modules' MoE balance losses in the last ts_mtp_forward() */
} ts_model;

/**
 * @brief Register every parameter for @p cfg (Hugging Face names), allocate
 * them as @p mode says (gradients unless frozen, AdamW moments for
 * TS_MODEL_TRAIN), build the RoPE table.
 * The weights are zero until ts_model_init_weights() or a checkpoint load.
 */
ts_status ts_model_create(ts_model *m, const ts_config *cfg, ts_model_mode mode);

/** @brief Normal(0, initializer_range) weights, norms at 1; output projections scaled by 1/√(2L). */
void ts_model_init_weights(ts_model *m, uint64_t seed);

/** @brief Size the activation arena for batches of B sequences of T tokens (T ≤ max_position_embeddings). */
ts_status ts_model_reserve(ts_model *m, int B, int T);

/*
 * Two ways in. The open one (post-training, chapters 6-9): the forward stops
 * at the logits and the hidden state, a loss outside the model (src/train/loss.h:
 * cross-entropy with masks and weights, later GRPO, distillation, MTP) turns them
 * into gradients, and the backward starts from those:
 *
 *     ts_model_forward_logits(m, tokens, B, T);              // m->logits, m->hidden, m->aux_loss
 *     loss = my_loss(m->logits, ..., d_logits);              // d_logits = dL/dlogits
 *     ts_model_backward_from(m, d_logits, NULL, aux_weight); // grads += dL/dθ (+ aux_weight·d(aux)/dθ)
 *
 * Chapter 2's pair, ts_model_forward(m, tokens, targets, B, T) and
 * ts_model_backward(m), is the same with the mean next-token cross-entropy and
 * the MoE balance loss at weight 1 built in (the same bits as before the split).
 */

/**
 * @brief Forward pass over tokens (B,T) up to the logits: m->logits (N,V),
 * m->hidden (N,C) (the last block's output, before the final norm; DeepSeek-V3's
 * MTP starts from it) and m->aux_loss (the MoE layers' balance loss, summed over
 * layers: α·Σ f·P, 0 without MoE or with aux_loss_alpha = 0; the caller decides
 * whether it joins the objective, see ts_model_backward_from()). Keeps what the
 * backward needs. Activations grow (ts_model_reserve()) if B or T exceed what was
 * reserved. Fails (TS_ERR_RANGE) if a token is outside the vocabulary, or when
 * memory runs out.
 */
ts_status ts_model_forward_logits(ts_model *m, const int *tokens, int B, int T);

/**
 * @brief Backward of the last forward from a given gradient: grads += dL/dθ for
 * L whose gradient with respect to the logits is @p d_logits (N,V) and with
 * respect to the hidden state m->hidden is @p d_hidden (N,C); either may be NULL
 * (none). The MoE balance loss is the model's own: its gradient joins with
 * weight @p aux_weight (1 = L includes m->aux_loss as chapter 5 trains; 0 = it
 * does not; finite and ≥ 0). N = B·T of the last forward, whose activations it
 * reads: another forward of this model in between would replace them. Fails,
 * changing nothing, on a frozen model, before any forward or for a bad aux_weight.
 */
ts_status ts_model_backward_from(ts_model *m, const float *d_logits, const float *d_hidden, float aux_weight);

/**
 * @brief Chapter 2's forward: ts_model_forward_logits(), then with targets (B,T)
 * non-NULL returns the mean cross-entropy over targets that are not TS_IGNORE
 * (m->ce_loss) plus the MoE auxiliary balance loss (m->aux_loss, 0 without MoE);
 * with targets NULL only the logits are computed and 0 is returned. Returns NAN,
 * with ts_last_error() set, if the forward fails.
 */
float ts_model_forward(ts_model *m, const int *tokens, const int *targets, int B, int T);

/**
 * @brief Backward of the last forward (which must have had targets): grads +=
 * dLoss/dθ for the loss ts_model_forward() returned. On a frozen model it only
 * sets ts_last_error().
 */
void ts_model_backward(ts_model *m);

/*
 * One pre-norm block with its buffers named: the main model's layer l runs
 * ts_block_forward(m, &m->w.layers[l], &m->acts[l], ts_moe_is_layer(&m->cfg, l), x, m->pos, B, T),
 * and an MTP module's block (chapter 6) the same function on its own views.
 */

/**
 * @brief out = res1 + ffn(norm(res1)), res1 = x + attn(norm(x)), over B
 * sequences of T tokens at RoPE positions @p pos (B·T); @p moe: the FFN is a
 * MoE layer (w->moe, a->moe), else dense (w->mlp, a->mlp). Writes a->out (and
 * every activation its backward reads). Uses the model's config, RoPE table and
 * MLA scratch.
 */
void ts_block_forward(ts_model *m, const ts_layer_weights *w, ts_layer_acts *a, int moe, const float *x, const int *pos,
                      int B, int T);

/**
 * @brief Register block @p l's parameters (model.layers.l.*: norms, the
 * config's attention, a dense or MoE FFN as ts_moe_is_layer() says); returns
 * -1 on error. The main layers are l = 0..L−1, the MTP modules' blocks L..L+D−1.
 */
int ts_block_register(ts_params *p, const ts_config *cfg, int l);

/**
 * @brief Backward of ts_block_forward(): on entry m->d_res = dL/d(a->out) (B·T, C),
 * on exit m->d_res = dL/dx; g += dL/dθ (a MoE layer's balance loss with weight
 * m->aux_weight). Uses the model's gradient scratch.
 */
void ts_block_backward(ts_model *m, const ts_layer_weights *w, ts_layer_weights *g, ts_layer_acts *a, int moe,
                       const float *x, const int *pos, int B, int T);

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
 * @brief Decode @p n tokens of sequence @p b in one step (n ≤ c->B rows): appends
 * tokens[0..n−1] at positions len[b].., each attending to the cache and to the
 * earlier ones of the step, and writes the next-token logits of each (n,V) and,
 * if @p hidden is non-NULL, each last hidden state (n,C), before the final norm.
 * Speculative decoding verifies a draft this way (chapter 6). Row r computes
 * what a one-token ts_model_decode() at that position would.
 */
ts_status ts_model_decode_seq(ts_model *m, ts_kvcache *c, int b, const int *tokens, int n, float *logits,
                              float *hidden);

/** @brief Forget the positions len.. of sequence @p b (a rejected draft's cache rows): len[b] = len. */
ts_status ts_kvcache_truncate(ts_kvcache *c, int b, int len);

/** A greedy generation's stop rule: non-zero when @p token ends it (EOS, a newline, ...); it is not emitted. */
typedef int (*ts_stop_fn)(int token, void *ctx);

/** What self-speculative decoding did (chapter 6). */
typedef struct {
    long tokens;      /**< tokens emitted */
    long main_passes; /**< main-model forwards after the prefill (each a two-position verify step, or one token) */
    long drafted;     /**< drafts the MTP module proposed and the main model checked */
    long accepted;    /**< drafts equal to the main model's argmax */
} ts_spec_stats;

/**
 * @brief Plain greedy decoding of one prompt: prefill, then one ts_model_decode()
 * per token; at most @p max_new tokens into @p out, fewer if @p stop says so.
 * @p stats (may be NULL) counts the decode passes.
 */
ts_status ts_generate_greedy(ts_model *m, const int *prompt, int n, int max_new, ts_stop_fn stop, void *stop_ctx,
                             int *out, int *n_out, ts_spec_stats *stats);

/**
 * @brief Self-speculative greedy decoding (DeepSeek-V3 §5.4.3): the MTP module
 * (depth 1) drafts the token after next from the main model's last hidden
 * state and the token just chosen; the main model runs the chosen token and
 * the draft in one two-position step; the draft is accepted iff the main
 * model's argmax at the first position equals it, and then the second
 * position's argmax comes free; a rejected draft's cache row is dropped. The
 * output equals ts_generate_greedy()'s token for token. Needs D ≥ 1.
 */
ts_status ts_generate_speculative(ts_model *m, const int *prompt, int n, int max_new, ts_stop_fn stop, void *stop_ctx,
                                  int *out, int *n_out, ts_spec_stats *stats);

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
