/**
 * @file optim.c
 * @brief AdamW (Loshchilov & Hutter 2019), global-norm gradient clipping,
 *        and the warmup + cosine learning-rate schedule.
 */
#include "core/optim.h"

#include <math.h>

#include "core/common.h"
#include "core/ops.h"

ts_adamw ts_adamw_defaults(void) {
    ts_adamw cfg = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    return cfg;
}

//! [adamw]
/* Elements [lo, hi) of one tensor (decay wd; bias corrections bc1, bc2). */
TS_VECTOR
static void adamw_span(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, long lo,
                       long hi, const ts_adamw *cfg, float lr, float wd, float bc1, float bc2) {
    for (long i = lo; i < hi; i++) {
        m[i] = cfg->beta1 * m[i] + (1.0f - cfg->beta1) * g[i];
        v[i] = cfg->beta2 * v[i] + (1.0f - cfg->beta2) * g[i] * g[i];
        float m_hat = m[i] / bc1, v_hat = v[i] / bc2;
        w[i] -= lr * (m_hat / (sqrtf(v_hat) + cfg->eps) + wd * w[i]);
    }
}

void adamw_step(ts_params *p, const ts_adamw *cfg, float lr, long step) {
    // Bias corrections undo the zero initialisation of m and v (Adam, Kingma & Ba, alg. 1).
    float bc1 = (float)(1.0 - pow(cfg->beta1, (double)step));
    float bc2 = (float)(1.0 - pow(cfg->beta2, (double)step));
    // One parallel region for all tensors, each split between the threads with no
    // barrier in between (every element is updated on its own).
    TS_OMP(parallel if (p->numel > 65536))
    for (int t = 0; t < p->count; t++) {
        const ts_param *param = &p->params[t];
        // Decay is decoupled from the gradient (the "W" in AdamW), and skipped for
        // norm weights and biases, whose scale is not a capacity to be penalised.
        float wd = param->no_decay ? 0.0f : cfg->weight_decay;
        size_t o = param->offset;
        int lo, hi; // this thread's share of the tensor
        ts_thread_share((int)param->numel, &lo, &hi);
        adamw_span(p->data + o, p->grad + o, p->m + o, p->v + o, lo, hi, cfg, lr, wd, bc1, bc2);
    }
}
//! [adamw]

float grad_clip(float *grad, size_t n, float max_norm) {
    // One thread, index order, in double: the norm has the same bits on any thread count.
    double sumsq = 0.0;
    for (size_t i = 0; i < n; i++) sumsq += (double)grad[i] * grad[i];
    double norm = sqrt(sumsq);
    if (max_norm > 0.0f && norm > max_norm) {
        float s = (float)(max_norm / norm);
        for (size_t i = 0; i < n; i++) grad[i] *= s;
    }
    return (float)norm;
}

float lr_schedule(long step, long warmup, long total, float lr_max, float lr_min) {
    // Warmup: lr(0) = 0 rising linearly to lr(warmup) = lr_max (as Hugging Face's
    // get_cosine_schedule_with_warmup); then half a cosine down to lr(total) = lr_min.
    if (step < warmup) return lr_max * (float)step / (float)warmup;
    if (step >= total) return lr_min;
    double progress = (double)(step - warmup) / (double)(total - warmup);
    return (float)(lr_min + 0.5 * (lr_max - lr_min) * (1.0 + cos(TS_PI * progress)));
}
