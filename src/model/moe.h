/**
 * @file moe.h
 * @brief DeepSeekMoE (chapter 5): fine-grained routed experts plus always-on
 *        shared experts, sigmoid/softmax routing with a selection-only bias,
 *        group-limited routing, and both load-balancing methods of DeepSeek-V3.
 *
 * For one token x (C values), with E = n_routed_experts routed experts and
 * K = num_experts_per_tok chosen per token (DeepSeek-V3 §2.1.2):
 *
 *     s      = softmax(W_g x) or sigmoid(W_g x)                      (E)  router scores
 *     chosen = top-K of s + b, among the topk_group best groups        b = e_score_correction_bias
 *     g_k    = routed_scaling_factor · s_k / Σ_chosen s   (norm_topk_prob; else without the division)
 *     y      = shared(x) + Σ_{k chosen} g_k · expert_k(x)
 *
 * Every routed and shared expert is a SwiGLU MLP (src/model/mlp.h) of
 * intermediate size moe_intermediate_size; Hugging Face fuses the
 * n_shared_experts shared experts into one MLP of n_shared·moe_intermediate_size.
 *
 * Weights (Hugging Face names, layer N):
 *
 *     model.layers.N.mlp.gate.weight                      (E, C)   router W_g
 *     model.layers.N.mlp.gate.e_score_correction_bias     (E)      b, selection only
 *     model.layers.N.mlp.experts.I.{gate,up}_proj.weight  (Fe, C), down_proj (C, Fe)
 *     model.layers.N.mlp.shared_experts.{gate,up}_proj.weight (n_shared·Fe, C), down_proj (C, n_shared·Fe)
 *
 * The bias is registered in the parameter arena, so the checkpoint and the
 * training state carry it like any weight, but it never receives a gradient:
 * its gradient stays exactly zero, so AdamW's moments stay zero and its update
 * m̂/(√v̂+ε) is exactly zero (and it is marked no_decay). Only
 * ts_model_update_router_bias() changes it, after each optimizer step.
 *
 * Shapes: N = B·T tokens, C hidden, E routed experts, K chosen per token,
 * Fe = moe_intermediate_size, Fs = n_shared_experts·Fe.
 */
#ifndef TS_MOE_H
#define TS_MOE_H

#include "core/arena.h"
#include "model/config.h"
#include "model/mlp.h"

struct ts_model;

struct ts_moe_remote;

/** Views of one MoE layer's weights (or of their gradients). */
typedef struct {
    float *gate;             /**< (E, C) router weight W_g (mlp.gate.weight) */
    float *bias;             /**< (E) mlp.gate.e_score_correction_bias: selection only, never a gradient */
    ts_mlp_weights *experts; /**< E routed experts, each (Fe, C) / (C, Fe) */
    ts_mlp_weights shared;   /**< the fused shared experts (Fs); NULL pointers when n_shared_experts = 0 */
    const struct ts_moe_remote *remote; /**< appendix C: the routed experts run on the ranks that own them
                                             (expert parallel, src/dist/ep.h); NULL = all of them here */
} ts_moe_weights;

/** What the forward keeps for the backward (and what the notebook and the load log read). */
typedef struct ts_moe_acts {
    float *logits;      /**< (N, E) router logits W_g x */
    float *scores;      /**< (N, E) s = softmax or sigmoid of the logits */
    int *topk_idx;      /**< (N, K) chosen experts, best first */
    float *topk_w;      /**< (N, K) weights g applied to them */
    int *counts;        /**< (E) tokens routed to each expert (its load) */
    int *offsets;       /**< (E+1) first dispatched row of each expert */
    int *rows;          /**< (N·K) token of each dispatched row, grouped by expert, tokens in order */
    int *slot_row;      /**< (N·K) dispatched row of slot t·K+k */
    float *xin;         /**< (N·K, C) gathered expert inputs */
    ts_mlp_acts expert; /**< (N·K, Fe) each: every expert's gate, up, hidden, expert after expert */
    float *eout;        /**< (N·K, C) expert outputs before weighting */
    ts_mlp_acts shared; /**< (N, Fs) the shared experts' activations */
    float *f;           /**< (B, E) f_i of the auxiliary loss, per sequence */
    float *work;        /**< (E + n_group) routing scratch */
    double aux_loss;    /**< α · mean over sequences of Σ_i f_i P_i (0 when aux_loss_alpha = 0) */
} ts_moe_acts;

/**
 * Appendix C: where the routed experts run when they do not all live in this
 * process. moe_forward() and moe_backward() route, gather, combine and
 * differentiate the router as always, and hand over only the expert step:
 * the R = N·K dispatched rows, grouped by expert as a->offsets says.
 */
typedef struct ts_moe_remote {
    /** a->eout (R,C) = expert_e(a->xin rows) for each expert e's rows. */
    void (*forward)(void *ctx, ts_moe_acts *a, const ts_moe_weights *w, const ts_config *c);
    /** d_xin (R,C) = dL/d(a->xin rows) from d_eout (R,C); dw->experts of the experts this process owns += their gradients. */
    void (*backward)(void *ctx, float *d_xin, const ts_moe_weights *dw, const float *d_eout, const ts_moe_acts *a,
                     const ts_moe_weights *w, const ts_config *c);
    void *ctx; /**< passed to both */
} ts_moe_remote;

/** Gradient scratch shared by all MoE layers. */
typedef struct {
    float *d_eout;     /**< (N·K, C) dL/d(expert output) = g · dy, gathered */
    float *d_xin;      /**< (N·K, C) dL/d(gathered input) */
    ts_mlp_acts d_mlp; /**< (N, max(Fe, Fs)) each: an MLP backward's intermediates */
    float *d_w;        /**< (N, K) dL/dg */
    float *d_scores;   /**< (N, E) dL/ds */
    float *d_logits;   /**< (N, E) dL/d(router logits) */
} ts_moe_scratch;

/** @brief 1 if layer @p l of @p c is a mixture of experts (n_routed_experts > 0 and l ≥ first_k_dense_replace). */
int ts_moe_is_layer(const ts_config *c, int l);

/**
 * @brief 1 if the routing method needs the selection bias in a checkpoint:
 * DeepSeek-V3's "noaux_tc" balances with it. DeepSeek-V2's "greedy" and
 * "group_limited_greedy" have none (their checkpoints carry no
 * e_score_correction_bias); tinyseek still registers it for them, at 0, so
 * that the bias update (`--bias-update-speed`) can be tried on any router.
 */
int moe_bias_required(const ts_config *c);

/** @brief Register layer @p l's router, bias, routed and shared experts (Hugging Face names); 0 or -1. */
int moe_register(ts_params *p, const ts_config *c, int l);

/**
 * @brief Parameters of one MoE layer: @p total (router W_g and its bias, every
 * routed and shared expert) and @p active per token (the router, K routed and
 * the shared experts).
 */
void moe_params(const ts_config *c, long long *total, long long *active);

/** @brief Point @p w (whose experts array holds E entries) at layer @p l's tensors in @p base (data or grad). */
void moe_bind(ts_moe_weights *w, const ts_params *p, float *base, const ts_config *c, int l);

/** @brief Carve the activations of a MoE layer for B sequences of T tokens (measuring arena: only sizes). */
void moe_carve_acts(ts_moe_acts *a, ts_arena *ar, const ts_config *c, int B, int T);

/** @brief Carve the backward scratch for N tokens. */
void moe_carve_scratch(ts_moe_scratch *s, ts_arena *ar, const ts_config *c, int N);

// [moe-route-signature]
/**
 * @brief Route one token: choose K experts and their weights.
 * @param idx    (K) chosen experts, best biased score first (ties: lower index)
 * @param weight (K) g: scores without the bias, renormalised over the K when
 *               norm_topk_prob, times routed_scaling_factor
 * @param s      (E) router scores of the token
 * @param bias   (E) selection bias, or NULL for none
 * @param c      the config (E, K, n_group, topk_group, norm_topk_prob, routed_scaling_factor)
 * @param work   (E + n_group) scratch
 */
void moe_route_token(int *idx, float *weight, const float *s, const float *bias, const ts_config *c, float *work);

// [moe-route-signature]
/**
 * @brief y (N,C) = shared(x) + Σ_chosen g·expert(x) for x (B·T, C); fills @p a.
 * Tokens are dispatched by expert: each expert's tokens are gathered and run
 * as one MLP. With aux_loss_alpha > 0 also computes a->aux_loss (sequences of T tokens).
 */
void moe_forward(float *y, ts_moe_acts *a, const float *x, const ts_moe_weights *w, const ts_config *c, int B, int T);

/**
 * @brief Backward of moe_forward(), including the router (through the routing
 * weights and the auxiliary loss, whose weight is 1 in the total loss):
 * dx += dL/dx, dw += dL/dw (dw->bias untouched). dx may be NULL.
 */
void moe_backward(float *dx, const ts_moe_weights *dw, const ts_moe_scratch *s, const float *dy, const ts_moe_acts *a,
                  const float *x, const ts_moe_weights *w, const ts_config *c, int B, int T);

/**
 * @brief The auxiliary-loss-free balancing step (DeepSeek-V3 §2.1.2):
 * b_i −= γ·sign(load_i − mean load), from the tokens per expert @p counts (E).
 */
void moe_update_bias(float *bias, const int *counts, int E, float gamma);

/** @brief Number of MoE layers of the model. */
int ts_model_moe_layers(const struct ts_model *m);

/** @brief Tokens routed to each expert in the last forward: (MoE layers, E) ints into @p counts. */
void ts_model_expert_load(const struct ts_model *m, int *counts);

/** @brief moe_update_bias() on every MoE layer, from the last forward's loads. */
void ts_model_update_router_bias(struct ts_model *m, float gamma);

/**
 * @brief Routing of MoE layer @p layer (a model layer index) in the last
 * forward: chosen experts @p idx (N,K) and weights @p weight (N,K), either may
 * be NULL; returns N, or -1 (ts_last_error()) if the layer is dense or no
 * forward ran. For notebooks (ctypes).
 */
int ts_model_routing(const struct ts_model *m, int layer, int *idx, float *weight);

/** @brief View of MoE layer @p layer's router scores (N, E) from the last forward; 0 or -1. */
int ts_model_view_router_scores(const struct ts_model *m, int layer, ts_view *out);

#endif
