/**
 * @file loss.c
 * @brief The losses post-training hands the model's backward (see loss.h).
 */
#include "train/loss.h"

#include <math.h>
#include <stdlib.h>

#include "core/ops.h"

ts_status ts_loss_crossentropy(ts_ce_result *res, float *d_logits, float *token_losses, const float *logits,
                               const int *targets, const float *weights, double normalizer, int N, int V) {
    if (!isfinite(normalizer) || normalizer < 0 || (normalizer > 0 && !((float)normalizer > 0.0f)))
        return ts_fail(TS_ERR_ARG, "cross-entropy normaliser %g: expected 0 (the counted tokens) or a finite Z > 0",
                       normalizer);
    for (int n = 0; n < N; n++) {
        if (targets[n] != TS_IGNORE && (targets[n] < 0 || targets[n] >= V))
            return ts_fail(TS_ERR_RANGE, "target %d at row %d is outside the vocabulary (0..%d) and not TS_IGNORE",
                           targets[n], n, V - 1);
        if (weights && !isfinite(weights[n]))
            return ts_fail(TS_ERR_RANGE, "cross-entropy weight at row %d is %g: expected a finite number", n,
                           (double)weights[n]);
    }
    float *scratch = ts_malloc(((size_t)N + (token_losses ? 0 : (size_t)N)) * sizeof(float), "cross-entropy rows");
    if (!scratch) return TS_ERR_NOMEM;
    float *dloss = scratch, *losses = token_losses ? token_losses : scratch + N;
    // losses[n] = −log softmax(logits_n)[targets_n], 0 where ignored
    int counted = crossentropy_forward(losses, logits, targets, N, V);
    double Z = normalizer > 0 ? normalizer : (double)counted;
    // L = Σ w_n·losses[n] / Z, summed in double in row order (chapter 2's mean when w = 1, Z = counted)
    double sum = 0;
    for (int n = 0; n < N; n++) {
        if (!weights) sum += losses[n];
        else if (targets[n] != TS_IGNORE) sum += (double)weights[n] * losses[n];
    }
    res->loss = Z > 0 ? (float)(sum / Z) : 0.0f;
    res->n_counted = counted;
    res->normalizer = Z;
    if (d_logits && Z > 0) {
        // dL/dlosses[n] = w_n / Z; the op adds dloss_n·(softmax − onehot) on counted rows
        float scale = 1.0f / (float)Z;
        for (int n = 0; n < N; n++) dloss[n] = weights ? weights[n] * scale : scale;
        crossentropy_backward(d_logits, dloss, logits, targets, N, V);
    }
    free(scratch);
    return TS_OK;
}
