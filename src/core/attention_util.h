/**
 * @file attention_util.h
 * @brief Small helpers shared by the attention kernels (attention.c, gqa_attention.c, and
 *        model/mla.c's decode):
 *        indexing of (B,T,H,D) tensors, the thread id, and how heads are spread over threads.
 */
#ifndef TS_ATTENTION_UTIL_H
#define TS_ATTENTION_UTIL_H

#include <stddef.h>

#include "core/ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/** @brief Offset of element (b,t,h,0) of a (B,T,H,D) tensor. */
static inline size_t bthd(int b, int t, int h, int T, int H, int D) {
    return (((size_t)b * T + t) * H + h) * D;
}

/** @brief This thread's number inside a parallel region (0 outside one or without OpenMP). */
static inline int attention_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/**
 * @brief The pragma in front of two nested loops over independent (row or
 * sequence, head) pairs, threaded when @p cond holds.
 *
 * Heads are spread over OpenMP threads and each head's products run
 * single-threaded inside the region. The project's own sgemm is written for
 * that, and so is the OpenMP build of OpenBLAS that the Makefile links (it sees
 * it is inside a parallel region and stays on its thread). Only the pthread
 * build of OpenBLAS would set its own thread pool against OpenMP's, so with it
 * the heads run one after another and OpenBLAS threads each product.
 */
#if defined(TS_USE_BLAS) && !defined(TS_BLAS_OPENMP)
#define TS_OMP_HEADS_IF(cond)
#else
#define TS_OMP_HEADS_IF(cond) TS_OMP(parallel for collapse(2) schedule(static) if (cond))
#endif

/**
 * @brief TS_OMP_HEADS_IF() for the (b,h) loops of the training attention: small
 * batches (a prompt's prefill) run on the calling thread. Expects B, H, T, Dqk
 * and Dv in scope.
 */
#define TS_OMP_HEADS TS_OMP_HEADS_IF((double)B * H * T * T * (Dqk + Dv) > 1e6)

#endif
