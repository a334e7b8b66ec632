/**
 * @file linear.c
 * @brief linear_forward()/linear_backward(): matmul or simulated FP8, as the
 *        autocast setting says (see linear.h).
 */
#include "core/linear.h"

#include "core/ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* The setting, and the first FP8 failure since ts_autocast_begin(). Written only
 * outside parallel regions (begin/end), except `failed`/`failure`, which a
 * product may set from any thread, under the critical section below. */
static ts_precision current;  /* zeros: float32 */
static int active;            /* between begin and end */
static ts_status failed;
static char failure[512];

ts_precision ts_precision_fp32(void) {
    ts_precision p;
    memset(&p, 0, sizeof p);
    p.mode = TS_PRECISION_FP32;
    return p;
}

ts_precision ts_precision_fp8(ts_fp8_scaling scaling) {
    ts_precision p = ts_precision_fp32();
    p.mode = TS_PRECISION_FP8;
    p.fp8 = ts_fp8_default();
    p.fp8.scaling = scaling;
    return p;
}

const char *ts_precision_name(const ts_precision *p) {
    if (p->mode != TS_PRECISION_FP8) return "fp32";
    return p->fp8.scaling == TS_FP8_PER_TENSOR ? "fp8 (per-tensor scaling)" : "fp8 (tile scaling)";
}

static int in_parallel(void) {
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}

/* ts_fail() with the "autocast: " prefix. */
__attribute__((format(printf, 2, 3))) static ts_status autocast_fail(ts_status st, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ts_fail(st, "autocast: %s", msg);
}

/* Knobs ts_fp8_gemm() would refuse on some shape, refused here once for all. */
static ts_status check_fp8(const ts_fp8_config *c) {
    if (c->scaling != TS_FP8_FINE && c->scaling != TS_FP8_PER_TENSOR)
        return autocast_fail(TS_ERR_ARG, "fp8 scaling %d is neither tiles nor per tensor", (int)c->scaling);
    if (c->acc_bits < 0 || c->acc_bits > 24)
        return autocast_fail(TS_ERR_ARG, "fp8 acc_bits %d is outside 0..24", c->acc_bits);
    // Fine tiles are 128 wide along K: a promotion interval must not straddle two.
    if (c->promote < 0 || (c->scaling == TS_FP8_FINE && (c->promote == 0 || TS_FP8_TILE % c->promote != 0)))
        return autocast_fail(TS_ERR_ARG, "fp8 promote %d must divide the tile width %d (0 only per tensor)",
                       c->promote, TS_FP8_TILE);
    return TS_OK;
}

ts_status ts_autocast_begin(const ts_precision *p) {
    if (in_parallel()) return autocast_fail(TS_ERR_ARG, "set the precision outside parallel regions");
    if (active) return autocast_fail(TS_ERR_ARG, "a precision is already in force (settings do not nest)");
    if (p->mode != TS_PRECISION_FP32 && p->mode != TS_PRECISION_FP8)
        return autocast_fail(TS_ERR_ARG, "unknown precision mode %d", (int)p->mode);
    if (p->mode == TS_PRECISION_FP8) {
        ts_status st = check_fp8(&p->fp8);
        if (st) return st;
    }
    current = *p;
    active = 1;
    failed = TS_OK;
    failure[0] = '\0';
    return TS_OK;
}

ts_status ts_autocast_end(void) {
    if (in_parallel()) return autocast_fail(TS_ERR_ARG, "set the precision outside parallel regions");
    current = ts_precision_fp32();
    active = 0;
    ts_status st = failed;
    failed = TS_OK;
    if (st) autocast_fail(st, "%s", failure);
    return st;
}

ts_precision ts_autocast_current(void) { return current; }

/* An FP8 product failed (its outputs untouched): keep the first failure's message. */
static void record_failure(ts_status st) {
    TS_OMP(critical(ts_autocast_failure))
    {
        if (!failed) {
            failed = st;
            snprintf(failure, sizeof failure, "%s", ts_last_error());
        }
    }
}

//! [linear-forward]
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    // out (N,OC), inp (N,C), weight (OC,C), bias (OC)
    if (current.mode == TS_PRECISION_FP8) {
        ts_status st = fp8_matmul_forward(out, inp, weight, bias, N, C, OC, &current.fp8);
        if (!st) return;
        record_failure(st); // out untouched: fall through to float32, and the step reports it
    }
    matmul_forward(out, inp, weight, bias, N, C, OC);
}
//! [linear-forward]

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC) {
    // dinp (N,C), dweight (OC,C), dbias (OC), dout (N,OC), inp (N,C), weight (OC,C)
    if (current.mode == TS_PRECISION_FP8) {
        ts_status st = fp8_matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, &current.fp8);
        if (!st) return;
        record_failure(st); // gradients untouched
    }
    matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}
