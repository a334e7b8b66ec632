/**
 * @file mtp_loss.h
 * @brief The multi-token prediction objective (chapter 6; DeepSeek-V3 eq. 24-25):
 *
 *     L = L_main + (λ/D) · Σ_{k=1..D} L_k  (+ the MoE balance losses, main and modules, at aux_weight)
 *
 * L_main is the main head's mean cross-entropy (train/loss.h), L_k module k's
 * mean cross-entropy over its valid positions, whose targets are the main
 * targets shifted by k (ts_mtp_targets()). One call runs the forward of the
 * main model and the modules, the losses, and the backward: module D down to
 * module 1 (ts_mtp_backward()), whose gradient into the main model's hidden
 * state joins the main head's (ts_model_backward_from()'s d_hidden).
 * With D = 0 it computes what pretraining's cross-entropy step does, bit for bit.
 */
#ifndef TS_MTP_LOSS_H
#define TS_MTP_LOSS_H

#include "model/model.h"

/** What one ts_mtp_loss_step() computed. */
typedef struct {
    float loss;          /**< the objective L (with the balance losses at aux_weight) */
    float main_loss;     /**< L_main */
    float mtp_loss[8];   /**< L_k for k = 1..min(D, 8): mean cross-entropy of depth k, unweighted */
    float mtp_mean;      /**< (1/D) Σ_k L_k (0 when D = 0) */
    float aux_loss;      /**< the balance losses, main layers and modules (before aux_weight) */
} ts_mtp_loss_result;

/**
 * @brief Forward, loss and backward of the MTP objective on tokens/targets (B,T)
 * (targets TS_IGNORE = not counted; @p weights (B,T) per-token weights of the main
 * loss and, shifted, of each depth's, or NULL): gradients += dL/dθ. @p lambda ≥ 0
 * weighs the modules' mean loss; @p aux_weight the balance losses (1 as chapter 5
 * trains). Fails on a frozen model, a bad token or weight, or lambda < 0.
 */
ts_status ts_mtp_loss_step(ts_model *m, const int *tokens, const int *targets, const float *weights, int B, int T,
                           float lambda, float aux_weight, ts_mtp_loss_result *res);

/**
 * @brief The forward half, for evaluation: main and per-depth mean
 * cross-entropies of (tokens, targets) without any gradient (works on a frozen model).
 */
ts_status ts_mtp_eval(ts_model *m, const int *tokens, const int *targets, int B, int T, ts_mtp_loss_result *res);

#endif
