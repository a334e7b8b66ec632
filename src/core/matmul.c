/**
 * @file matmul.c
 * @brief sgemm, two ways, and the linear layer built on it.
 *
 * ts_sgemm() is cblas_sgemm() when built with BLAS=1 (TS_USE_BLAS) and the
 * project's own blocked loops with BLAS=0. The blocked loops follow the
 * GotoBLAS/BLIS recipe, in miniature:
 *
 *   1. cut K into blocks of KC and N into blocks of NC, so that one packed
 *      block of op(B) (KC x NC floats, 1 MiB) stays in the L2 cache;
 *   2. copy ("pack") op(B)'s block into NR-wide column panels and op(A)'s rows
 *      into MR-tall row panels, each contiguous and zero-padded at the edges,
 *      so the kernel reads both with unit stride whatever the transposes;
 *   3. the micro-kernel keeps an MR x NR tile of C in registers for the whole
 *      KC loop: per k it loads NR values of B, broadcasts MR values of A and
 *      does MR*NR multiply-adds (6 x 32 = 12 AVX-512 registers of 32).
 *
 * Threads split the (row panel, column panel) tiles of C, which are
 * independent outputs; every element of C is summed over k in the same order
 * whatever the thread count, so the C loops even give the same bits with 1
 * and 2 threads. ts_sgemm_ref() is the three-loop definition the tests
 * compare against.
 */
#include "core/ops.h"

#include <stdlib.h>

#ifdef TS_USE_BLAS
#include <cblas.h>
#endif

/* op(X)[r][c] for a row-major X with leading dimension ld, transposed if trans. */
static inline float op_at(const float *X, int ld, int trans, int r, int c) {
    return trans ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

/* C = beta * C for an (M,N) block; beta == 0 overwrites, so C may hold garbage
 * (even NaN) on entry, as BLAS allows. */
static void scale_c(float *C, int ldc, int M, int N, float beta) {
    TS_OMP(parallel for schedule(static) if ((double)M * N > 65536))
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

/* Tile and block sizes. MR x NR is the register tile (measured fastest on an
 * AVX-512 core: 6 x 32 = 12 accumulators); KC x NC the packed block of op(B). */
enum { MR = 6, NR = 32, KC = 256, NC = 1024 };

/* apack (kc, MR): rows r0..r0+MR-1 of op(A), columns p0..p0+kc-1, k-major. */
static void pack_a(float *apack, const float *A, int lda, int trans_a, int M, int r0, int p0, int kc) {
    for (int p = 0; p < kc; p++)
        for (int i = 0; i < MR; i++)
            apack[p * MR + i] = r0 + i < M ? op_at(A, lda, trans_a, r0 + i, p0 + p) : 0.0f;
}

/* bpack (kc, NR): rows p0..p0+kc-1 of op(B), columns c0..c0+NR-1 (< c_end). */
static void pack_b(float *bpack, const float *B, int ldb, int trans_b, int c_end, int p0, int c0, int kc) {
    for (int p = 0; p < kc; p++)
        for (int j = 0; j < NR; j++)
            bpack[p * NR + j] = c0 + j < c_end ? op_at(B, ldb, trans_b, p0 + p, c0 + j) : 0.0f;
}

//! [sgemm-kernel]
/* C[0:mr, 0:nr] += alpha * apack (kc,MR)ᵀ · bpack (kc,NR).
 * The fixed MR and NR let the compiler unroll the i loop and vectorise the j
 * loop, keeping acc in registers; only the tile's valid mr x nr part is written. */
TS_KERNEL
static void micro_kernel(int kc, const float *restrict apack, const float *restrict bpack,
                         float alpha, float *restrict C, int ldc, int mr, int nr) {
    float acc[MR][NR] = {{0.0f}};
    for (int p = 0; p < kc; p++) {
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += apack[p * MR + i] * bpack[p * NR + j];
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) C[(size_t)i * ldc + j] += alpha * acc[i][j];
}
//! [sgemm-kernel]

static void sgemm_blocked(int trans_a, int trans_b, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta,
                          float *C, int ldc) {
    int kc_max = K < KC ? K : KC;
    int nc_max = N < NC ? N : NC;
    int m_panels = (M + MR - 1) / MR;
    int nb_panels = (nc_max + NR - 1) / NR;
    /* aligned_alloc wants a size that is a multiple of the alignment */
    size_t abytes = ((size_t)m_panels * MR * kc_max * sizeof(float) + 63) & ~(size_t)63;
    size_t bbytes = ((size_t)nb_panels * NR * kc_max * sizeof(float) + 63) & ~(size_t)63;
    float *apack = aligned_alloc(64, abytes);
    float *bpack = aligned_alloc(64, bbytes);
    if (!apack || !bpack) { /* out of memory: still give the right answer, slowly */
        free(apack);
        free(bpack);
        ts_sgemm_ref(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    scale_c(C, ldc, M, N, beta);

    /* One parallel region; every thread walks the same block loops and the
     * `omp for`s split the packing and the tiles (each ends in a barrier). */
    TS_OMP(parallel if (2.0 * M * N * K > 1e6))
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        int n_panels = (nc + NR - 1) / NR;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            TS_OMP(for schedule(static))
            for (int jp = 0; jp < n_panels; jp++)
                pack_b(bpack + (size_t)jp * NR * kc, B, ldb, trans_b, jc + nc, pc, jc + jp * NR, kc);
            TS_OMP(for schedule(static))
            for (int ip = 0; ip < m_panels; ip++)
                pack_a(apack + (size_t)ip * MR * kc, A, lda, trans_a, M, ip * MR, pc, kc);
            TS_OMP(for collapse(2) schedule(static))
            for (int ip = 0; ip < m_panels; ip++) {
                for (int jp = 0; jp < n_panels; jp++) {
                    int i0 = ip * MR, j0 = jc + jp * NR;
                    int mr = M - i0 < MR ? M - i0 : MR;
                    int nr = jc + nc - j0 < NR ? jc + nc - j0 : NR;
                    micro_kernel(kc, apack + (size_t)ip * MR * kc, bpack + (size_t)jp * NR * kc,
                                 alpha, C + (size_t)i0 * ldc + j0, ldc, mr, nr);
                }
            }
        }
    }
    free(apack);
    free(bpack);
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
