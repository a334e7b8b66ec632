/**
 * @file gradcheck.c
 * @brief Fourth-order central differences against analytic gradients.
 */
#include "core/gradcheck.h"

#include <math.h>

//! [gradcheck]
/* dL/dx at x[i] from L at x ± h and x ± 2h. A float32 can only move by what it
 * can represent, so the denominator uses the steps actually taken: for exact
 * steps it is 12h, and otherwise it removes the first-order error a rounded
 * step would cause (|error| ≈ ulp(x)/h, up to 1e-5 relative for h = 1e-2). */
static double numeric_grad(ts_loss_fn loss, void *ctx, float *x, double h) {
    const float x0 = *x;
    double step[4], value[4];
    const double offsets[4] = {h, -h, 2 * h, -2 * h};
    for (int j = 0; j < 4; j++) {
        *x = (float)(x0 + offsets[j]);
        step[j] = (double)*x - (double)x0;
        value[j] = loss(ctx);
    }
    *x = x0; /* the exact original bits */
    double num = 8.0 * (value[0] - value[1]) - (value[2] - value[3]);
    double den = 8.0 * (step[0] - step[1]) - (step[2] - step[3]);
    return num / den;
}

double ts_gradcheck(ts_loss_fn loss, void *ctx, const ts_gc_tensor *tensors, int n_tensors,
                    double h, size_t max_per_tensor, ts_gc_result *results, FILE *report) {
    double worst = 0.0;
    for (int t = 0; t < n_tensors; t++) {
        const ts_gc_tensor *tensor = &tensors[t];
        size_t n = tensor->n;
        size_t count = (max_per_tensor == 0 || max_per_tensor > n) ? n : max_per_tensor;
        ts_gc_result r = {0};
        double max_analytic = 0.0, max_numeric = 0.0;
        int saw_nan = 0; /* a NaN must never pass as "no error" */
        for (size_t i = 0; i < n; i++) {
            saw_nan |= isnan(tensor->grad[i]);
            max_analytic = fmax(max_analytic, fabs(tensor->grad[i]));
        }
        for (size_t j = 0; j < count; j++) {
            /* evenly spaced, first and last included: 0, …, n−1 */
            size_t i = count == 1 ? 0 : j * (n - 1) / (count - 1);
            double numeric = numeric_grad(loss, ctx, &tensor->x[i], h);
            double diff = fabs(numeric - (double)tensor->grad[i]);
            saw_nan |= isnan(diff);
            max_numeric = fmax(max_numeric, fabs(numeric));
            if (diff > r.max_abs || j == 0) {
                r.max_abs = diff;
                r.worst = i;
            }
        }
        r.checked = count;
        r.grad_scale = fmax(max_analytic, max_numeric);
        r.max_rel = r.grad_scale > 0.0 ? r.max_abs / r.grad_scale : 0.0;
        if (saw_nan) r.max_abs = r.max_rel = NAN;
        if (results) results[t] = r;
        if (report)
            fprintf(report, "gradcheck  %-24s n=%-6zu max_abs=%.1e  max_rel=%.1e  (scale %.2e, worst #%zu)\n",
                    tensor->name ? tensor->name : "?", count, r.max_abs, r.max_rel, r.grad_scale,
                    r.worst);
        if (isnan(r.max_rel) || r.max_rel > worst) worst = r.max_rel; /* once NaN, stays NaN */
    }
    return worst;
}
//! [gradcheck]
