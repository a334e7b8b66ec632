/**
 * @file matmul.c
 * @brief sgemm, two ways, and the linear layer built on it.
 *
 * ts_sgemm() is cblas_sgemm() when built with BLAS=1 (TS_USE_BLAS) and the
 * project's own blocked loops with BLAS=0. The blocked loops follow the
 * GotoBLAS/BLIS recipe, in miniature:
 *
 *   1. cut K into blocks of KC and N into blocks of NC, so that one packed
 *      block of op(B) (KC x NC floats, 1 MiB) stays in the core's L2 cache
 *      while every row panel of op(A) streams past it;
 *   2. copy ("pack") op(B)'s block into NR-wide column panels and op(A)'s rows
 *      into MR-tall row panels, each contiguous and zero-padded at the edges,
 *      so the kernel reads both with unit stride whatever the transposes;
 *   3. the micro-kernel keeps an MR x NR tile of C in registers for the whole
 *      KC loop: per k it loads NR values of B, broadcasts MR values of A and
 *      does MR*NR multiply-adds (6 x 32 = 12 AVX-512 registers of 32).
 *
 * Threads share out the packing and the (row panel, column panel) tiles of
 * C, which are independent outputs. Each element of C is summed over k in one
 * fixed order whatever the thread count, so the C loops give the same bits
 * with any number of threads. Products too small to repay threads, and
 * products requested from inside a parallel region (attention with BLAS=0
 * runs its heads in parallel), run on the calling thread alone.
 *
 * ts_sgemm_ref() is the three-loop definition the tests compare against.
 */
#include "core/ops.h"

#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef TS_USE_BLAS
#include <cblas.h>
#endif

/* op(X)[r][c] for a row-major X with leading dimension ld, transposed if trans. */
static inline float op_at(const float *X, int ld, int trans, int r, int c) {
    return trans ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

/* C = beta * C for an (M,N) block (a product with K = 0); beta == 0 overwrites,
 * so C may hold garbage (even NaN) on entry, as BLAS allows. */
static void scale_c(float *C, int ldc, int M, int N, float beta) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
}

//! [sgemm-ref]
void ts_sgemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float sum = 0.0f;
            for (int p = 0; p < K; p++)
                sum += op_at(A, lda, trans_a, i, p) * op_at(B, ldb, trans_b, p, j);
            float *c = &C[(size_t)i * ldc + j];
            *c = alpha * sum + (beta == 0.0f ? 0.0f : beta * *c);
        }
    }
}
//! [sgemm-ref]

#ifndef TS_USE_BLAS

/* Tile and block sizes. MR x NR is the register tile: on an AVX-512 core 6 x 32
 * (12 accumulators) ran the kernel from L1 at ~210 GFLOP/s, near the 2-FMA-pipe
 * peak, against ~195 for 4 x 32 and ~180 for 12 x 16. KC x NC is the packed block
 * of op(B); 128..384 x 256..1024 measured alike. */
enum { MR = 6, NR = 32, KC = 256, NC = 1024 };

/* The packing routines address op(X)[r][c] as X[r*rs + c*cs]:
 * (rs, cs) = (ld, 1) for X itself and (1, ld) for its transpose. */

/* apack (kc, MR) = op(A)[0:rows, 0:kc] transposed, zero rows past `rows`. */
static void pack_a(float *apack, const float *A, size_t rs, size_t cs, int rows, int kc) {
    for (int p = 0; p < kc; p++)
        for (int i = 0; i < MR; i++) apack[p * MR + i] = i < rows ? A[i * rs + p * cs] : 0.0f;
}

/* bpack (kc, NR) = op(B)[0:kc, 0:cols], zero columns past `cols`. */
static void pack_b(float *bpack, const float *B, size_t rs, size_t cs, int cols, int kc) {
    for (int p = 0; p < kc; p++)
        for (int j = 0; j < NR; j++) bpack[p * NR + j] = j < cols ? B[p * rs + j * cs] : 0.0f;
}

//! [sgemm-kernel]
/* C[0:mr, 0:nr] = alpha · apack (kc,MR)ᵀ · bpack (kc,NR) + beta · C.
 * The fixed MR and NR let the compiler unroll the i loop and vectorise the j
 * loop, keeping acc in registers; only the tile's valid mr x nr part is written.
 * beta == 0 does not read C (BLAS semantics: C may be uninitialised). */
TS_KERNEL
static void micro_kernel(int kc, const float *restrict apack, const float *restrict bpack,
                         float alpha, float beta, float *restrict C, int ldc, int mr, int nr) {
    float acc[MR][NR] = {{0.0f}};
    for (int p = 0; p < kc; p++) {
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += apack[p * MR + i] * bpack[p * NR + j];
    }
    for (int i = 0; i < mr; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < nr; j++) c[j] = alpha * acc[i][j] + (beta == 0.0f ? 0.0f : beta * c[j]);
    }
}
//! [sgemm-kernel]

/* One product, as the block loops see it. op(X)[r][c] is X[r*rs + c*cs]. */
typedef struct {
    int M, N, K;
    float alpha, beta;
    const float *A, *B;
    size_t a_rs, a_cs, b_rs, b_cs;
    float *C;
    int ldc;
    float *apack, *bpack; /* (M rounded up to MR) x KC and KC x (NC rounded up to NR) floats */
} gemm_job;

/* Items [lo, hi) of n that thread tid of nth takes: contiguous, fixed shares. */
static void share(int n, int tid, int nth, int *lo, int *hi) {
    *lo = (int)((long)n * tid / nth);
    *hi = (int)((long)n * (tid + 1) / nth);
}

/* The block loops, run by thread tid of nth (nth = 1: the caller alone). Each
 * thread packs its share of the panels and computes its share of the tiles;
 * barriers keep packing and use apart. Which thread computes a tile never
 * changes its value, so the result does not depend on the thread count. */
static void sgemm_blocks(const gemm_job *g, int tid, int nth) {
    int m_panels = (g->M + MR - 1) / MR, lo, hi;
    for (int jc = 0; jc < g->N; jc += NC) {
        int nc = g->N - jc < NC ? g->N - jc : NC;
        int n_panels = (nc + NR - 1) / NR;
        for (int pc = 0; pc < g->K; pc += KC) {
            int kc = g->K - pc < KC ? g->K - pc : KC;
            share(n_panels, tid, nth, &lo, &hi);
            for (int jp = lo; jp < hi; jp++) {
                int j0 = jc + jp * NR, cols = jc + nc - j0 < NR ? jc + nc - j0 : NR;
                pack_b(g->bpack + (size_t)jp * NR * kc, g->B + pc * g->b_rs + j0 * g->b_cs,
                       g->b_rs, g->b_cs, cols, kc);
            }
            share(m_panels, tid, nth, &lo, &hi);
            for (int ip = lo; ip < hi; ip++) {
                int i0 = ip * MR, rows = g->M - i0 < MR ? g->M - i0 : MR;
                pack_a(g->apack + (size_t)ip * MR * kc, g->A + i0 * g->a_rs + pc * g->a_cs,
                       g->a_rs, g->a_cs, rows, kc);
            }
            if (nth > 1) {
                TS_OMP(barrier) /* every panel packed before any tile reads it */
            }
            /* the first K block applies beta, the later ones add to C */
            float beta = pc == 0 ? g->beta : 1.0f;
            share(m_panels * n_panels, tid, nth, &lo, &hi);
            for (int tile = lo; tile < hi; tile++) {
                int ip = tile / n_panels, jp = tile % n_panels;
                int i0 = ip * MR, j0 = jc + jp * NR;
                int mr = g->M - i0 < MR ? g->M - i0 : MR;
                int nr = jc + nc - j0 < NR ? jc + nc - j0 : NR;
                micro_kernel(kc, g->apack + (size_t)ip * MR * kc, g->bpack + (size_t)jp * NR * kc,
                             g->alpha, beta, g->C + (size_t)i0 * g->ldc + j0, g->ldc, mr, nr);
            }
            if (nth > 1) {
                TS_OMP(barrier) /* every tile done before the panels are packed again */
            }
        }
    }
}

static void sgemm_blocked(int trans_a, int trans_b, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta,
                          float *C, int ldc) {
    gemm_job g = {.M = M, .N = N, .K = K, .alpha = alpha, .beta = beta, .A = A, .B = B,
                  .a_rs = trans_a ? 1 : (size_t)lda, .a_cs = trans_a ? (size_t)lda : 1,
                  .b_rs = trans_b ? 1 : (size_t)ldb, .b_cs = trans_b ? (size_t)ldb : 1,
                  .C = C, .ldc = ldc};
    int kc_max = K < KC ? K : KC, nc_max = N < NC ? N : NC;
    size_t a_floats = (size_t)((M + MR - 1) / MR) * MR * kc_max;
    size_t b_floats = (size_t)((nc_max + NR - 1) / NR) * NR * kc_max;
    /* one 64-byte aligned buffer for both packs (aligned_alloc wants a multiple of 64 bytes) */
    size_t a_bytes = (a_floats * sizeof(float) + 63) & ~(size_t)63;
    size_t b_bytes = (b_floats * sizeof(float) + 63) & ~(size_t)63;
    g.apack = aligned_alloc(64, a_bytes + b_bytes);
    if (!g.apack) { /* out of memory: still give the right answer, slowly */
        ts_sgemm_ref(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    g.bpack = g.apack + a_bytes / sizeof(float);
    /* Threads only pay off for big products, and a product called from inside
     * a parallel region (attention's heads) stays on its calling thread. */
#ifdef _OPENMP
    if (2.0 * M * N * K > 1e6 && !omp_in_parallel()) {
        TS_OMP(parallel)
        sgemm_blocks(&g, omp_get_thread_num(), omp_get_num_threads());
        free(g.apack);
        return;
    }
#endif
    sgemm_blocks(&g, 0, 1);
    free(g.apack);
}

#endif /* !TS_USE_BLAS */

void ts_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* nothing to multiply; BLAS implementations disagree on lda checks here */
        scale_c(C, ldc, M, N, beta);
        return;
    }
#ifdef TS_USE_BLAS
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    sgemm_blocked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

/* ------------------------------------------------------------------ */
/* Linear layer                                                        */
/* ------------------------------------------------------------------ */

//! [matmul-forward]
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int C, int OC) {
    // out (N,OC), inp (N,C), weight (OC,C), bias (OC)
    // out = inp · weightᵀ: weight is stored (OC,C), so op(B) is its transpose
    ts_sgemm(0, 1, N, OC, C, 1.0f, inp, C, weight, C, 0.0f, out, OC);
    if (bias) {
        TS_OMP(parallel for schedule(static) if ((double)N * OC > 65536))
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
    }
}
//! [matmul-forward]

void matmul_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int C, int OC) {
    // out (N,OC), inp (N,C), weight (OC,C), bias (OC)
    for (int n = 0; n < N; n++) {
        for (int o = 0; o < OC; o++) {
            float sum = 0.0f;
            for (int c = 0; c < C; c++) sum += inp[(size_t)n * C + c] * weight[(size_t)o * C + c];
            out[(size_t)n * OC + o] = sum + (bias ? bias[o] : 0.0f);
        }
    }
}

//! [matmul-backward]
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC) {
    // dinp (N,C), dweight (OC,C), dbias (OC), dout (N,OC), inp (N,C), weight (OC,C)
    // forward: out[n][o] = Σ_c inp[n][c]·weight[o][c] + bias[o]
    // dinp (N,C) += dout (N,OC) · weight (OC,C)
    if (dinp) ts_sgemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    // dweight (OC,C) += doutᵀ (OC,N) · inp (N,C)
    if (dweight) ts_sgemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    // dbias[o] += Σ_n dout[n][o], each column summed in row order by one thread
    if (dbias) {
        TS_OMP(parallel for schedule(static) if ((double)N * OC > 65536))
        for (int o = 0; o < OC; o++) {
            float sum = 0.0f;
            for (int n = 0; n < N; n++) sum += dout[(size_t)n * OC + o];
            dbias[o] += sum;
        }
    }
}
//! [matmul-backward]

void matmul_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int C, int OC) {
    // forward: out[n][o] = Σ_c inp[n][c]·weight[o][c] + bias[o]
    if (dinp) {
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                float sum = 0.0f;
                for (int o = 0; o < OC; o++) sum += dout[(size_t)n * OC + o] * weight[(size_t)o * C + c];
                dinp[(size_t)n * C + c] += sum;
            }
    }
    if (dweight) {
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++) {
                float sum = 0.0f;
                for (int n = 0; n < N; n++) sum += dout[(size_t)n * OC + o] * inp[(size_t)n * C + c];
                dweight[(size_t)o * C + c] += sum;
            }
    }
    if (dbias) {
        for (int o = 0; o < OC; o++) {
            float sum = 0.0f;
            for (int n = 0; n < N; n++) sum += dout[(size_t)n * OC + o];
            dbias[o] += sum;
        }
    }
}
