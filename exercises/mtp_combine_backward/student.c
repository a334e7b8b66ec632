/**
 * @file student.c
 * @brief Exercise (chapter 6): write mtp_combine_backward(), the gradient of
 *        the MTP module's input (DeepSeek-V3 eq. 21).
 *
 * The forward (src/model/mtp.c, mtp_combine_forward) computes, for N rows,
 *
 *     cat = [hnorm(h) ; enorm(e)]      (N, 2C): row n is hnorm's C values, then enorm's
 *     x   = cat · M_kᵀ                 (N, C):  M_k = w->eh_proj, stored (C, 2C)
 *
 * with hnorm and enorm two RMSNorms (weights w->hnorm, w->enorm; their saved
 * 1/rms are hn_rstd and en_rstd). Given dx = dL/dx, ADD (+=) into
 *
 *     dh[n][j]  += dL/dh            de[n][j] += dL/de
 *     dw->eh_proj, dw->hnorm, dw->enorm += their gradients (leave dw->head_norm alone)
 *
 * d_cat is N·2C floats of scratch for dL/dcat. The library's ops do the work
 * (src/core/ops.h): matmul_backward() for the projection, rmsnorm_backward()
 * for each norm — whose strides let a norm read and write half of a row of
 * cat. Zero d_cat before an op adds into it.
 *
 *     make exercise EX=mtp_combine_backward
 * builds the library with this function in place of the one in
 * src/model/mtp.c and runs its finite-difference test, then
 * tests/test_ch06_mtp.c (whole-model gradient checks with one and two modules).
 */
#include <string.h>

#include "core/ops.h"
#include "model/mtp.h"

void mtp_combine_backward(float *dh, float *de, const ts_mtp_weights *dw, float *d_cat, const float *dx,
                          const float *cat, const float *hn_rstd, const float *en_rstd, const float *h, const float *e,
                          const ts_mtp_weights *w, int N, int C) {
    /* TODO: your code here. */
    (void)dh;
    (void)de;
    (void)dw;
    (void)d_cat;
    (void)dx;
    (void)cat;
    (void)hn_rstd;
    (void)en_rstd;
    (void)h;
    (void)e;
    (void)w;
    (void)N;
    (void)C;
}
