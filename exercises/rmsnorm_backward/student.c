/**
 * @file student.c
 * @brief Exercise (chapter 2): write rmsnorm_backward(), the gradient of RMSNorm.
 *
 * The forward (src/core/ops.c, rmsnorm_forward) computes, for each of the N rows
 * x (C values, row n starting at inp + n*in_stride):
 *
 *     r   = 1 / sqrt(Σ_j x_j² / C + eps)     (saved as rstd[n])
 *     y_c = x_c · r · w_c                      (row n of out, at out + n*out_stride)
 *
 * Given dout = dL/dy, ADD (+=, never overwrite) into
 *
 *     dinp[n][j] += dL/dx_j        (skip when dinp is NULL)
 *     dweight[c] += dL/dw_c        (skip when dweight is NULL; a sum over all rows)
 *
 * Hint: ∂r/∂x_j = −r³·x_j / C. Write dL/dx_j as the sum over c of dy_c·∂y_c/∂x_j
 * and simplify; chapter 2 derives it if you get stuck.
 *
 *     make exercise EX=rmsnorm_backward
 * builds the library with this file in place of the library's rmsnorm_backward
 * and runs the finite-difference checks of tests/test_ch02_ops.c and the
 * whole-model check of tests/test_ch02_model.c.
 */
#include "core/ops.h"

void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, const float *rstd,
                      int N, int C, int in_stride, int out_stride) {
    /* TODO: your code here. */
    (void)dinp;
    (void)dweight;
    (void)dout;
    (void)inp;
    (void)weight;
    (void)rstd;
    (void)N;
    (void)C;
    (void)in_stride;
    (void)out_stride;
}
