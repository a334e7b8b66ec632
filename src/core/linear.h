/**
 * @file linear.h
 * @brief The linear layers inside the blocks, in the precision the training
 *        step asks for: float32 (matmul_forward()) or simulated FP8
 *        (fp8_matmul_forward(), appendix B).
 *
 * DeepSeek-V3 (§3.3) runs the three products of every linear layer inside the
 * blocks in FP8 and keeps the rest in higher precision. tinyseek does the same
 * with an *autocast*-like setting, so the layers do not pass a precision around:
 *
 *     ts_autocast_begin(&opts->precision);   // the training loop, around one step
 *     ... loss.step(): forward, loss, backward ...
 *     st = ts_autocast_end();                // back to float32; the first FP8 failure, if any
 *
 * The attention projections (q/k/v/o), MLA's q_a/q_b/kv_a/kv_b/o, the dense
 * MLP's gate/up/down and the experts' (routed and shared) call linear_forward()
 * and linear_backward(), which follow the setting. What V3 keeps in higher
 * precision calls matmul_forward() and matmul_backward() directly and so stays
 * float32 whatever the setting: the output head (lm_head), the router
 * (mlp.gate); the embedding, the norms and attention's scores, softmax and
 * weighted values are not linear layers at all. Master weights, gradients and
 * optimizer moments are float32 always.
 *
 * With the setting at float32 (the default, and outside every training step)
 * linear_forward() *is* matmul_forward(): the same call, the same bits.
 *
 * **Threads.** The setting is one process-wide value, read by every thread and
 * written only by ts_autocast_begin()/ts_autocast_end(), which refuse to run
 * inside an OpenMP parallel region: set it around a step, never inside one.
 * linear_forward() may be called inside a parallel region (its FP8 GEMM then runs
 * on the calling thread); a failure there is recorded once, under a lock.
 */
#ifndef TS_LINEAR_H
#define TS_LINEAR_H

#include "core/common.h"
#include "core/fp8.h"

/** @brief What the linear layers inside the blocks compute in. */
typedef enum {
    TS_PRECISION_FP32 = 0, /**< float32: matmul_forward()/matmul_backward() */
    TS_PRECISION_FP8 = 1   /**< simulated FP8: fp8_matmul_forward()/fp8_matmul_backward() */
} ts_precision_mode;

/** @brief A precision setting; all zeros is float32. */
typedef struct {
    ts_precision_mode mode; /**< float32 or FP8 */
    ts_fp8_config fp8;      /**< the FP8 simulation's knobs (mode FP8 only): ts_fp8_default() is V3's */
} ts_precision;

/** @brief Float32 (the setting outside training steps). */
ts_precision ts_precision_fp32(void);

/** @brief FP8 with V3's settings and the given scaling (fine-grained tiles or one scale per tensor). */
ts_precision ts_precision_fp8(ts_fp8_scaling scaling);

/** @brief "fp32", "fp8 (tile scaling)" or "fp8 (per-tensor scaling)", for progress lines and logs. */
const char *ts_precision_name(const ts_precision *p);

/**
 * @brief Run the linear layers in @p p until ts_autocast_end().
 * @return TS_ERR_ARG (the setting unchanged) inside an OpenMP parallel region,
 *         while another setting is active (settings do not nest), or for FP8
 *         knobs out of range.
 */
ts_status ts_autocast_begin(const ts_precision *p);

/**
 * @brief Back to float32. @return TS_OK, or the first failure of an FP8 product
 * since ts_autocast_begin() (out of memory), whose message it restores in
 * ts_last_error(); that product fell back to float32, so the step's numbers are
 * defined but not what was asked for. TS_ERR_ARG inside a parallel region.
 */
ts_status ts_autocast_end(void);

/** @brief The setting in force (float32 outside ts_autocast_begin()/ts_autocast_end()). */
ts_precision ts_autocast_current(void);

/**
 * @brief Linear layer in the current precision: out = inp · weightᵀ (+ bias).
 * out (N,OC), inp (N,C), weight (OC,C), bias (OC) or NULL; as matmul_forward().
 */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC);

/**
 * @brief Backward of linear_forward() in the current precision: dinp += dout·weight,
 * dweight += doutᵀ·inp, dbias += Σ dout; any of dinp, dweight, dbias may be NULL.
 * As matmul_backward().
 */
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC);

#endif
