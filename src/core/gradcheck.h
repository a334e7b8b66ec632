/**
 * @file gradcheck.h
 * @brief Finite-difference gradient checker.
 *
 * The model computes in float32; the checker perturbs one float32 input at a
 * time and evaluates the loss, accumulated in double, at x ± h and x ± 2h
 * (fourth-order central difference):
 *
 *     dL/dx ≈ (8(L(x+h) − L(x−h)) − (L(x+2h) − L(x−2h))) / 12h
 *
 * It reports, per tensor, the largest absolute difference between the
 * analytic and numeric gradients and that difference *relative to the
 * tensor's largest gradient* (max|a−n| / max(max|a|, max|n|)), which is
 * stable when single entries are near zero.
 */
#ifndef TS_GRADCHECK_H
#define TS_GRADCHECK_H

#include <stddef.h>
#include <stdio.h>

/** The loss as a function of the current inputs; must be deterministic. */
typedef double (*ts_loss_fn)(void *ctx);

/** One tensor to check: its values (perturbed in place, then restored) and its analytic gradient. */
typedef struct {
    const char *name;      /**< shown in the report */
    float *x;              /**< the input being perturbed */
    const float *grad;     /**< analytic gradient dL/dx, same length */
    size_t n;              /**< number of elements */
} ts_gc_tensor;

/** Result for one tensor. */
typedef struct {
    double max_abs;        /**< max |analytic − numeric| */
    double max_rel;        /**< max_abs / max(max|analytic|, max|numeric|) */
    double grad_scale;     /**< max(max|analytic|, max|numeric|) */
    size_t worst;          /**< index of the worst element */
    size_t checked;        /**< how many elements were checked */
} ts_gc_result;

/**
 * @brief Check each tensor against finite differences of @p loss.
 * @param loss the loss as a function of the current values of the tensors
 * @param ctx passed to @p loss
 * @param tensors the inputs to perturb, each with its analytic gradient
 * @param n_tensors number of entries in @p tensors
 * @param h step size: about 3e-2 for O(1) inputs, where the float32 rounding of the
 *        loss divided by h (~1e-7/h) balances the h⁴ truncation error
 * @param max_per_tensor check at most this many elements per tensor (evenly
 *        spaced, always including the first and last); 0 means all
 * @param results if non-NULL, one result per tensor is written there
 * @param report if non-NULL, one line per tensor is printed there
 * @return the worst max_rel over all tensors
 */
double ts_gradcheck(ts_loss_fn loss, void *ctx, const ts_gc_tensor *tensors, int n_tensors,
                    double h, size_t max_per_tensor, ts_gc_result *results, FILE *report);

#endif
