/**
 * @file loss.h
 * @brief Losses outside the model: each turns the logits of
 *        ts_model_forward_logits() into a number and adds its gradient
 *        dL/dlogits, which ts_model_backward_from() takes from there.
 *
 * Cross-entropy lives in two places, on purpose:
 *  - core/ops.h holds the *op*: crossentropy_forward() gives −log softmax(z)[y]
 *    per row, crossentropy_backward() adds dloss_n·(softmax(z_n) − onehot(y_n)).
 *    Chapter 2's wrapper ts_model_forward(m, tokens, targets, B, T) uses it
 *    directly, because dependencies point cli → train → model → core and the
 *    model may not include train/.
 *  - this file holds the *loss* post-training uses (chapters 7-9): the same op
 *    with per-token weights (SFT masks, GRPO's per-token coefficients) and a
 *    normaliser the caller chooses (mean over counted tokens, over a whole
 *    batch split into pieces, or a constant as Dr. GRPO does). With no weights
 *    and the default normaliser it computes exactly what the wrapper does, bit
 *    for bit (tests/test_ch02_open.c).
 *
 * Gradients are *added* (+=) into d_logits, as every backward in tinyseek adds
 * into its gradients: several losses on the same logits (cross-entropy and a
 * teacher's KL, say) simply add up. Zero d_logits before the first.
 */
#ifndef TS_LOSS_H
#define TS_LOSS_H

#include "core/common.h"

/** What ts_loss_crossentropy() computed. */
typedef struct {
    float loss;        /**< Σ_n w_n · ce_n / Z over the counted rows */
    int n_counted;     /**< rows whose target is not TS_IGNORE */
    double normalizer; /**< the Z used (0 when nothing was counted and no Z was given) */
} ts_ce_result;

/**
 * @brief Weighted, masked token cross-entropy:
 *
 *     L = (1/Z) Σ_{n: targets[n] ≠ TS_IGNORE} w_n · (−log softmax(logits_n)[targets_n])
 *     dL/dlogits_n = (w_n/Z) · (softmax(logits_n) − onehot(targets_n)),   0 on ignored rows
 *
 * with w_n = weights[n] (any finite value: GRPO's coefficients can be negative),
 * or 1 when @p weights is NULL, and Z = @p normalizer, or the number of counted
 * rows when @p normalizer is 0 (L = 0, no gradient, when that number is 0).
 *
 * @param res          the loss, the counted rows and Z
 * @param d_logits     (N,V) if non-NULL: += dL/dlogits
 * @param token_losses (N) if non-NULL: −log softmax(logits_n)[targets_n], unweighted, 0 where ignored
 * @param logits       (N,V)
 * @param targets      (N) next tokens in 0..V−1, or TS_IGNORE
 * @param weights      (N) per-token weights, or NULL
 * @param normalizer   Z > 0, or 0 for the number of counted rows
 * @param N            rows (tokens)
 * @param V            vocabulary size
 * @return TS_OK; TS_ERR_RANGE for a target outside the vocabulary or a weight
 *         that is not finite; TS_ERR_ARG for a negative or non-finite
 *         normaliser; TS_ERR_NOMEM. Nothing is written on failure.
 */
ts_status ts_loss_crossentropy(ts_ce_result *res, float *d_logits, float *token_losses, const float *logits,
                               const int *targets, const float *weights, double normalizer, int N, int V);

#endif
