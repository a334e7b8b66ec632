/**
 * @file mtp.h
 * @brief Multi-token prediction (chapter 6; DeepSeek-V3 §2.2): D modules after
 *        the main model, module k predicting the token k+1 places ahead, and
 *        the draft step of self-speculative decoding.
 *
 *     h⁰ = the main model's last hidden state (m->hidden, before its final norm)
 *
 *     module k = 1..D, positions i = 0..T−1−k of each sequence:
 *       h'ᵢ   = M_k · [hnorm(hᵢ^(k−1)) ; enorm(Emb(t_{i+k}))]      (eq. 21; M_k is (C, 2C))
 *       hᵢ^k  = TRM_k(h')ᵢ                                        (one causal block, RoPE positions 0..T−1−k)
 *       pᵢ^k  = softmax(lm_head · shared_head.norm(hᵢ^k))          predicts t_{i+k+1}   (eq. 22)
 *
 *     L = L_main + (λ/D) · Σ_k L_k,   L_k = mean cross-entropy over its valid positions (eq. 24-25)
 *
 * Each module's input is the previous module's output, so the chain keeps the
 * causal order of the predictions (V3 §2.2: unlike Gloeckle et al.'s parallel
 * heads). The embedding and the output head are the main model's, shared:
 * their gradients collect every depth's loss.
 *
 * The concatenation is the paper's order, hidden state first, embedding second
 * (vLLM and the V3 inference code concatenate [enorm(emb); hnorm(h)]: a
 * checkpoint converted from them needs eh_proj's two column halves swapped).
 *
 * Parameters carry DeepSeek-V3's Hugging Face names, module k at layer index
 * L+k−1: `model.layers.{L+k-1}.enorm.weight`, `.hnorm.weight`,
 * `.eh_proj.weight` (C, 2C), the block's usual names (`input_layernorm`,
 * `self_attn.*`, `post_attention_layernorm`, `mlp.*`), and
 * `.shared_head.norm.weight`. The shared embedding and head are not stored
 * again (V3's checkpoint keeps copies as `.embed_tokens` and `.shared_head.head`).
 *
 * The module's block is an ordinary block (ts_block_forward()): the main
 * model's attention, and a MoE layer when layer L+k−1 would be one
 * (ts_moe_is_layer()). Its balance loss joins the objective like any MoE
 * layer's, with the model's aux_weight (not scaled by λ/D): it balances that
 * layer's experts, whatever the loss its outputs feed.
 */
#ifndef TS_MTP_H
#define TS_MTP_H

#include "core/arena.h"
#include "core/common.h"
#include "model/config.h"

struct ts_model;
struct ts_kvcache;

/** Views of one module's own weights (its block lives in the model's layers[L+k−1]). */
typedef struct {
    float *enorm;     /**< (C) RMSNorm of the embedding of t_{i+k} */
    float *hnorm;     /**< (C) RMSNorm of the previous depth's hidden state */
    float *eh_proj;   /**< (C, 2C) M_k */
    float *head_norm; /**< (C) shared_head.norm: the module's final norm before the shared lm_head */
} ts_mtp_weights;

/** What module k's forward keeps for the backward, for B sequences of T−k positions. */
typedef struct {
    int *tokens;     /**< (N_k) input tokens t_{i+k} */
    int *pos;        /**< (N_k) RoPE positions 0..T−1−k */
    float *h_prev;   /**< (N_k,C) h^(k−1) at positions 0..T−1−k */
    float *emb;      /**< (N_k,C) Emb(t_{i+k}) */
    float *hn_rstd;  /**< (N_k) */
    float *en_rstd;  /**< (N_k) */
    float *cat;      /**< (N_k,2C) [hnorm(h^(k−1)); enorm(emb)] */
    float *x;        /**< (N_k,C) M_k·cat: the block's input */
    float *lnf;      /**< (N_k,C) shared_head.norm of the block's output h^k */
    float *lnf_rstd; /**< (N_k) */
    float *logits;   /**< (N_k,V) row b·(T−k)+i predicts t_{i+k+1} */
    float *d_logits; /**< (N_k,V) scratch for a loss's dL/dlogits (NULL in a frozen model) */
} ts_mtp_acts;

/**
 * @brief The module's input: x (N,C) = M_k · cat, cat (N,2C) = [hnorm(h); enorm(e)]
 * (the paper's order: hidden state first), h (N,C) the previous depth's hidden
 * states, e (N,C) the embeddings of the tokens k ahead. Saves cat and the two
 * norms' 1/rms (N each) for the backward.
 */
void mtp_combine_forward(float *x, float *cat, float *hn_rstd, float *en_rstd, const float *h, const float *e,
                         const ts_mtp_weights *w, int N, int C, float eps);

// [mtp-combine-backward-signature]
/**
 * @brief Backward of mtp_combine_forward(): given dx = dL/dx (N,C),
 * dh += dL/dh, de += dL/de (N,C each), and dw->eh_proj, dw->hnorm, dw->enorm
 * += their gradients (dw->head_norm untouched). @p d_cat is scratch of N·2C
 * floats (its contents on entry do not matter).
 */
void mtp_combine_backward(float *dh, float *de, const ts_mtp_weights *dw, float *d_cat, const float *dx,
                          const float *cat, const float *hn_rstd, const float *en_rstd, const float *h, const float *e,
                          const ts_mtp_weights *w, int N, int C);
// [mtp-combine-backward-signature]

/** Register module k = 1..D's parameters (after the main model's, so D = 0 changes nothing). */
int mtp_register(ts_params *p, const ts_config *c);

/** Point the D modules' views at @p base (params.data or params.grad). */
void mtp_bind(ts_mtp_weights *w, const ts_params *p, float *base, const ts_config *c);

/** Carve the D modules' activations (the blocks' own are carved with the main layers). */
void mtp_carve(ts_mtp_acts *a, float **scratch, ts_arena *ar, const ts_config *c, int frozen, int B, int T);

/** Valid positions per sequence of depth k for sequences of T tokens: T − k, or 0. */
static inline int ts_mtp_len(int T, int k) { return T > k ? T - k : 0; }

/**
 * @brief Forward of modules 1..@p depths (≤ D) after ts_model_forward_logits():
 * fills m->mtp_acts[k−1].logits ((B·(T−k), V), row b·(T−k)+i predicts the
 * target of main position i+k, i.e. t_{i+k+1}) and m->mtp_aux_loss (the
 * modules' MoE balance losses). Reads the tokens and m->hidden of the last
 * forward.
 */
ts_status ts_mtp_forward(struct ts_model *m, int depths);

/**
 * @brief Backward of ts_mtp_forward() over all D modules: grads += dL/dθ for a
 * loss whose gradient with respect to depth k's logits is d_logits[k−1]
 * ((B·(T−k), V); a NULL entry or array = none), and d_hidden (B·T, C) +=
 * dL/dh⁰, which the caller hands to ts_model_backward_from(). The modules'
 * balance losses join with weight @p aux_weight. Run it before the main
 * model's backward (they share the gradient scratch). Fails on a frozen model,
 * before a forward of all D modules, or for a bad aux_weight.
 */
ts_status ts_mtp_backward(struct ts_model *m, float *const *d_logits, float *d_hidden, float aux_weight);

/**
 * @brief Targets of depth k from the main targets (B,T): out[b·(T−k)+i] =
 * targets[b·T+i+k] (the main model's target at position i+k is t_{i+k+1}).
 */
void ts_mtp_targets(int *out, const int *targets, int B, int T, int k);

/** @brief Parameters of the D modules (the shared embedding and head not counted again). */
long long ts_mtp_count_params(const ts_config *c);

/**
 * @brief Module 1's decode step (the draft of self-speculative decoding): for
 * @p n rows of sequence @p b at positions len[b].., with the main model's hidden
 * states @p h (n,C) at those positions and the tokens that follow them
 * @p tokens (n), appends to @p cache (a one-layer cache of the module's block,
 * ts_mtp_cache_create()) and writes the logits of the token after next (n,V).
 * @p cat is scratch of n·2C floats.
 */
ts_status ts_mtp_decode(struct ts_model *m, struct ts_kvcache *cache, int b, const float *h, const int *tokens, int n,
                        float *cat, float *logits);

/** @brief A KV cache for module 1's block: B sequences of max_T positions. */
ts_status ts_mtp_cache_create(struct ts_kvcache *cache, const struct ts_model *m, int B, int max_T);

/**
 * @brief Fill module 1's cache for sequence @p b from the last prefill (1, n):
 * positions 0..n−2 (module position i reads h⁰ᵢ and t_{i+1}). Runs the module's
 * training forward over the prompt.
 */
ts_status ts_mtp_prefill(struct ts_model *m, struct ts_kvcache *cache, int b, int n);

#endif
