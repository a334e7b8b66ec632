/**
 * @file optim.h
 * @brief AdamW with decoupled weight decay, global gradient-norm clipping,
 *        and the warmup + cosine learning-rate schedule.
 */
#ifndef TS_OPTIM_H
#define TS_OPTIM_H

#include "arena.h"

/** AdamW hyper-parameters. */
typedef struct {
    float beta1;        /**< first-moment decay (0.9) */
    float beta2;        /**< second-moment decay (0.95) */
    float eps;          /**< denominator epsilon (1e-8) */
    float weight_decay; /**< decoupled decay, applied as w -= lr·wd·w (0.1) */
} ts_adamw;

/** @brief Sensible defaults: beta1 0.9, beta2 0.95, eps 1e-8, weight_decay 0.1. */
ts_adamw ts_adamw_defaults(void);

/**
 * @brief One AdamW step over every registered tensor (step counts from 1).
 * m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; m̂ = m/(1−β1^t); v̂ = v/(1−β2^t);
 * w ← w − lr·(m̂/(√v̂+ε) + wd·w), with wd = 0 for tensors marked no_decay.
 */
void adamw_step(ts_params *p, const ts_adamw *cfg, float lr, long step);

/**
 * @brief Global L2 norm of all gradients (accumulated in double, fixed order);
 * if max_norm > 0 and the norm exceeds it, scale every gradient by max_norm/norm.
 * @return the norm before clipping.
 */
float grad_clip(float *grad, size_t n, float max_norm);

/**
 * @brief Learning rate at @p step (0-based): linear warmup from 0 to lr_max over
 * @p warmup steps, then cosine decay to lr_min at @p total steps.
 * lr(0) = 0, lr(warmup) = lr_max, lr(total) = lr_min and after.
 */
float lr_schedule(long step, long warmup, long total, float lr_max, float lr_min);

#endif
