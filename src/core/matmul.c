/**
 * @file matmul.c
 * @brief sgemm, two ways, and the linear layer built on it.
 *
 * ts_sgemm() runs either OpenBLAS's cblas_sgemm() (BLAS=1) or the project's
 * own loops, ts_sgemm_c() (BLAS=0, and with BLAS=1 where they are faster: see
 * ts_sgemm_uses_c_loops()). The own loops follow the GotoBLAS/BLIS recipe, in
 * miniature:
 *
 *   1. cut K into blocks of KC and N into blocks of NC, so that one packed
 *      block of op(B) (KC x NC floats, 512 KiB) stays in the core's L2 cache
 *      while every row panel of op(A) streams past it;
 *   2. copy ("pack") op(B)'s block into NR-wide column panels, contiguous and
 *      zero-padded at the edge, so the kernel reads them with unit stride
 *      whatever the transpose; op(A) is read in place, MR rows at a time (a
 *      panel is small enough to stay in L1 while it is reused);
 *   3. the micro-kernel keeps an MR x NR tile of C in registers for the whole
 *      KC loop: per k it loads NR values of B, broadcasts MR values of A and
 *      does MR*NR multiply-adds (8 x 32 = 16 AVX-512 registers of 32).
 *
 * Threads take contiguous ranges of row panels, each packing op(B) for itself,
 * so they never wait for one another inside a product (on a busy machine a
 * barrier waits for the slowest thread's next time slice). Each element of C
 * is summed over k in one fixed order whatever the thread count, so the C
 * loops give the same bits with any number of threads. Products too small to
 * repay threads, and products requested from inside a parallel region
 * (attention runs its heads in parallel), run on the calling thread alone.
 * Products of at most four rows (decode steps) skip the packing altogether.
 *
 * ts_sgemm_ref() is the three-loop definition the tests compare against.
 */
#include "core/ops.h"

#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ------------------------------------------------------------------ */
/* The project's own sgemm                                             */
/* ------------------------------------------------------------------ */

/* Tile and block sizes. MR x NR is the register tile: on an AVX-512 core 6 x 32
 * (12 accumulators) ran the kernel from L1 at ~210 GFLOP/s, near the 2-FMA-pipe
 * peak, against ~195 for 4 x 32 and ~180 for 12 x 16; on the training shapes
 * (K = 128..512, A read in place) 8 x 32 (16 accumulators) ran 3-10% faster
 * than 6 x 32, while 10 x 32 and 12 x 32 run out of the 32 registers and
 * fall to a third. KC x NC is the packed block of op(B) (512 KiB, half a Zen 4
 * L2); 128..512 x 256..1024 measured alike. */
enum { MR = 8, NR = 32, KC = 256, NC = 512 };

/* Products of fewer FLOPs than this run on one thread: ~60 µs of work on one
 * core, against the ~10-50 µs it takes to wake a sleeping thread and join it
 * (OMP_WAIT_POLICY=passive; with active waiting on a busy machine a join can
 * wait a whole time slice for a descheduled thread). */
#define TS_SGEMM_PAR_FLOPS 8e6

/* Products with at most this many rows skip the blocking (see small_m_cols()). */
enum { SMALL_M = 4 };

/* bpack = op(B)[0:kc, 0:nc] as NR-wide column panels, each (kc, NR) and
 * zero-padded past nc. op(B)[p][j] is B[p*rs + j*cs]: (rs, cs) = (ldb, 1) for B
 * itself, (1, ldb) for its transpose. Both loops read B with unit stride. */
TS_VECTOR
static void pack_b(float *restrict bpack, const float *restrict B, size_t rs, size_t cs, int kc, int nc) {
    for (int j0 = 0; j0 < nc; j0 += NR) {
        int cols = nc - j0 < NR ? nc - j0 : NR;
        float *dst = bpack + (size_t)j0 * kc;
        if (cs == 1) { /* rows of op(B) are contiguous: copy NR floats per k */
            for (int p = 0; p < kc; p++) {
                const float *src = B + p * rs + j0;
                if (cols == NR) {
                    for (int j = 0; j < NR; j++) dst[p * NR + j] = src[j]; /* two 64-byte moves */
                } else {
                    for (int j = 0; j < cols; j++) dst[p * NR + j] = src[j];
                    for (int j = cols; j < NR; j++) dst[p * NR + j] = 0.0f;
                }
            }
        } else { /* columns of op(B) are contiguous: transpose while copying, 8 x 8 at a time */
            const float *src = B + (size_t)j0 * cs;
            int p = 0;
            for (; p + 8 <= kc; p += 8)
                for (int jj = 0; jj < NR; jj += 8)
                    for (int j = jj; j < jj + 8; j++)
                        for (int q = p; q < p + 8; q++) dst[q * NR + j] = j < cols ? src[j * cs + q] : 0.0f;
            for (; p < kc; p++)
                for (int j = 0; j < NR; j++) dst[p * NR + j] = j < cols ? src[j * cs + p] : 0.0f;
        }
    }
}

//! [sgemm-kernel]
/* C[0:mr, 0:nr] = alpha · op(A)[0:MR, 0:kc] · bpack (kc,NR) + beta · C.
 * op(A)[i][p] is a[i*a_rs + p*a_cs]. A is read where it lies, not packed: a
 * row panel is only MR x kc floats, and the loop over column panels reuses it
 * from L1. Either a_cs == 1 (row-major A) or a_rs == 1 (transposed A, or the
 * zero-padded copy of a last partial panel); the two loops below are the same
 * arithmetic, written twice so that the compiler sees a unit stride.
 * The fixed MR and NR let the compiler unroll the i loop and vectorise the j
 * loop, keeping acc in registers; only the tile's valid mr x nr part is written.
 * beta == 0 does not read C (BLAS semantics: C may be uninitialised). */
TS_KERNEL
static void micro_kernel(int kc, const float *restrict a, size_t a_rs, size_t a_cs,
                         const float *restrict bpack, float alpha, float beta, float *restrict C,
                         int ldc, int mr, int nr) {
    float acc[MR][NR] = {{0.0f}};
    if (a_cs == 1) {
        for (int p = 0; p < kc; p++) {
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++)
                for (int j = 0; j < NR; j++) acc[i][j] += a[i * a_rs + p] * bpack[p * NR + j];
        }
    } else {
        for (int p = 0; p < kc; p++) {
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++)
                for (int j = 0; j < NR; j++) acc[i][j] += a[p * a_cs + i] * bpack[p * NR + j];
        }
    }
    for (int i = 0; i < mr; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < nr; j++) c[j] = alpha * acc[i][j] + (beta == 0.0f ? 0.0f : beta * c[j]);
    }
}
//! [sgemm-kernel]

/* One product, as the loops see it. op(X)[r][c] is X[r*rs + c*cs]. */
typedef struct {
    int M, N, K;
    float alpha, beta;
    const float *A, *B;
    size_t a_rs, a_cs, b_rs, b_cs;
    float *C;
    int ldc;
    int trans_a, trans_b, lda, ldb; /* as the caller gave them (for the reference fallback) */
} gemm_job;

/* Row panels [ip_lo, ip_hi) of C, all columns, by one thread with its own
 * packing buffer bpack (see alloc_bpack()). Threads share nothing but A and B, so
 * they never wait for each other inside a product; the price is that each
 * packs op(B) itself, which is cheap next to the row panels that reuse it.
 * Each element of C is summed over k in one fixed order (K blocks in turn,
 * k in order within a block) whichever thread computes it, so the result does
 * not depend on the thread count. */
static void sgemm_panels(const gemm_job *g, int ip_lo, int ip_hi, float *bpack) {
    float edge[MR * KC]; /* the last, partial row panel, zero-padded to MR rows */
    for (int jc = 0; jc < g->N; jc += NC) {
        int nc = g->N - jc < NC ? g->N - jc : NC;
        for (int pc = 0; pc < g->K; pc += KC) {
            int kc = g->K - pc < KC ? g->K - pc : KC;
            pack_b(bpack, g->B + pc * g->b_rs + jc * g->b_cs, g->b_rs, g->b_cs, kc, nc);
            float beta = pc == 0 ? g->beta : 1.0f; /* the first K block applies beta, the later ones add */
            for (int ip = ip_lo; ip < ip_hi; ip++) {
                int i0 = ip * MR, mr = g->M - i0 < MR ? g->M - i0 : MR;
                const float *a = g->A + i0 * g->a_rs + pc * g->a_cs;
                size_t a_rs = g->a_rs, a_cs = g->a_cs;
                if (mr < MR) {
                    for (int p = 0; p < kc; p++)
                        for (int i = 0; i < MR; i++) edge[p * MR + i] = i < mr ? a[i * a_rs + p * a_cs] : 0.0f;
                    a = edge;
                    a_rs = 1;
                    a_cs = MR;
                }
                for (int j0 = 0; j0 < nc; j0 += NR)
                    micro_kernel(kc, a, a_rs, a_cs, bpack + (size_t)j0 * kc, g->alpha, beta,
                                 g->C + (size_t)i0 * g->ldc + jc + j0, g->ldc, mr, nc - j0 < NR ? nc - j0 : NR);
            }
        }
    }
}

/* A packing buffer for op(B)'s blocks of this product: at most KC x NC floats,
 * less for small products (attention's per-head ones), which would otherwise
 * pay for faulting in pages they never touch. */
static float *alloc_bpack(const gemm_job *g) {
    size_t kc = g->K < KC ? (size_t)g->K : KC, nc = g->N < NC ? (size_t)g->N : NC;
    size_t bytes = kc * ((nc + NR - 1) / NR * NR) * sizeof(float);
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63); /* a multiple of 64 bytes */
}

/* Σ_p a[p]·b_r[p] for four rows b_r of B at once, into out[0..3]. Four
 * independent sets of 16 lanes keep both FMA pipes busy (one set alone waits
 * on its own additions); each set is added up pairwise, then the tail: a fixed
 * order, so the result never depends on the thread count. */
static inline __attribute__((always_inline)) void dot4(float *out, const float *a, const float *b0, const float *b1,
                                                       const float *b2, const float *b3, int K) {
    enum { L = 16 };
    float s0[L] = {0.0f}, s1[L] = {0.0f}, s2[L] = {0.0f}, s3[L] = {0.0f};
    int p = 0;
    for (; p + L <= K; p += L)
        for (int l = 0; l < L; l++) {
            float x = a[p + l];
            s0[l] += x * b0[p + l];
            s1[l] += x * b1[p + l];
            s2[l] += x * b2[p + l];
            s3[l] += x * b3[p + l];
        }
    for (int w = L / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) {
            s0[l] += s0[l + w];
            s1[l] += s1[l + w];
            s2[l] += s2[l + w];
            s3[l] += s3[l + w];
        }
    out[0] = s0[0];
    out[1] = s1[0];
    out[2] = s2[0];
    out[3] = s3[0];
    for (; p < K; p++) {
        out[0] += a[p] * b0[p];
        out[1] += a[p] * b1[p];
        out[2] += a[p] * b2[p];
        out[3] += a[p] * b3[p];
    }
}

/* Row panels [lo, hi) of the product, with a packing buffer of their own. Out
 * of memory for it, the reference loops compute those rows instead: still the
 * right answer, slowly. */
static void row_panels(const gemm_job *g, int lo, int hi) {
    if (lo >= hi) return;
    float *bpack = alloc_bpack(g);
    if (bpack) {
        sgemm_panels(g, lo, hi, bpack);
        free(bpack);
        return;
    }
    int i0 = lo * MR, rows = (hi * MR < g->M ? hi * MR : g->M) - i0;
    ts_sgemm_ref(g->trans_a, g->trans_b, rows, g->N, g->K, g->alpha, g->A + i0 * g->a_rs, g->lda, g->B, g->ldb,
                 g->beta, g->C + (size_t)i0 * g->ldc, g->ldc);
}

/* Columns [j_lo, j_hi) of a product with M <= SMALL_M rows (a decode step: one
 * row per sequence). Packing op(B) would cost as much as using it M times, so
 * B is read where it lies: with B transposed (a linear layer's weight), each
 * output is a dot product of two contiguous rows (dot4()); otherwise each row
 * of op(B) is added, scaled, into a block of outputs. Columns are independent. */
TS_KERNEL
static void small_m_cols(const gemm_job *g, int j_lo, int j_hi) {
    enum { JB = 256 };
    for (int i = 0; i < g->M; i++) {
        const float *a = g->A + i * g->a_rs;
        float *c = g->C + (size_t)i * g->ldc;
        if (g->b_rs == 1 && g->a_cs == 1) { /* both contiguous over k */
            float sum[4];
            for (int j = j_lo; j < j_hi; j += 4) {
                const float *b = g->B + j * g->b_cs;
                int n = j_hi - j < 4 ? j_hi - j : 4; /* the last group may reuse row j */
                dot4(sum, a, b, b + (n > 1) * g->b_cs, b + (n > 2 ? 2 : 0) * g->b_cs, b + (n > 3 ? 3 : 0) * g->b_cs,
                     g->K);
                for (int r = 0; r < n; r++)
                    c[j + r] = g->alpha * sum[r] + (g->beta == 0.0f ? 0.0f : g->beta * c[j + r]);
            }
        } else {
            for (int jb = j_lo; jb < j_hi; jb += JB) {
                int n = j_hi - jb < JB ? j_hi - jb : JB;
                float acc[JB] = {0.0f};
                for (int p = 0; p < g->K; p++) {
                    float x = a[p * g->a_cs];
                    const float *b = g->B + p * g->b_rs + jb * g->b_cs;
                    if (g->b_cs == 1)
                        for (int j = 0; j < n; j++) acc[j] += x * b[j];
                    else
                        for (int j = 0; j < n; j++) acc[j] += x * b[j * g->b_cs];
                }
                for (int j = 0; j < n; j++)
                    c[jb + j] = g->alpha * acc[j] + (g->beta == 0.0f ? 0.0f : g->beta * c[jb + j]);
            }
        }
    }
}

void ts_sgemm_c(int trans_a, int trans_b, int M, int N, int K, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* nothing to multiply */
        scale_c(C, ldc, M, N, beta);
        return;
    }
    gemm_job g = {.M = M, .N = N, .K = K, .alpha = alpha, .beta = beta, .A = A, .B = B,
                  .a_rs = trans_a ? 1 : (size_t)lda, .a_cs = trans_a ? (size_t)lda : 1,
                  .b_rs = trans_b ? 1 : (size_t)ldb, .b_cs = trans_b ? (size_t)ldb : 1,
                  .C = C, .ldc = ldc, .trans_a = trans_a, .trans_b = trans_b, .lda = lda, .ldb = ldb};
    /* Threads only pay off for big products, and a product called from inside
     * a parallel region (attention's heads) stays on its calling thread. */
    int threaded = 0;
#ifdef _OPENMP
    threaded = 2.0 * M * N * K > TS_SGEMM_PAR_FLOPS && !omp_in_parallel() && omp_get_max_threads() > 1;
#endif
    if (M <= SMALL_M) {
        if (!threaded) {
            small_m_cols(&g, 0, N);
            return;
        }
        TS_OMP(parallel)
        {
            int lo, hi; /* blocks of 16 columns */
            ts_thread_share((N + 15) / 16, &lo, &hi);
            small_m_cols(&g, 16 * lo, 16 * hi < N ? 16 * hi : N);
        }
        return;
    }
    int m_panels = (M + MR - 1) / MR;
    if (threaded && m_panels > 1) {
        TS_OMP(parallel)
        {
            int lo, hi;
            ts_thread_share(m_panels, &lo, &hi);
            row_panels(&g, lo, hi);
        }
    } else {
        row_panels(&g, 0, m_panels);
    }
}

/* ------------------------------------------------------------------ */
/* ts_sgemm: OpenBLAS or the C loops                                   */
/* ------------------------------------------------------------------ */

#ifdef TS_USE_BLAS
/* With BLAS=1, OpenBLAS runs the products unless the C loops are faster here:
 * on a CPU with AVX-512 whose OpenBLAS runs kernels without it (as
 * OPENBLAS_CORETYPE=Haswell forces), the C kernel's AVX-512 clone measured
 * faster on every shape the models use. TS_MATMUL=openblas or TS_MATMUL=c
 * decides instead. The choice is made once, so every call takes the same path. */
static _Atomic int use_c_loops = -1;

static int openblas_has_avx512(void) {
    const char *core = openblas_get_corename();
    static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids", "Zen4", "Zen5"};
    for (size_t i = 0; i < sizeof avx512 / sizeof avx512[0]; i++)
        if (core && strcasecmp(core, avx512[i]) == 0) return 1;
    return 0;
}

int ts_sgemm_uses_c_loops(void) {
    int v = use_c_loops;
    if (v < 0) {
        const char *env = getenv("TS_MATMUL");
        if (env && strcmp(env, "c") == 0) v = 1;
        else if (env && strcmp(env, "openblas") == 0) v = 0;
        else {
#if defined(__GNUC__) && defined(__x86_64__)
            __builtin_cpu_init();
            v = __builtin_cpu_supports("avx512f") && !openblas_has_avx512();
#else
            v = 0;
#endif
        }
        use_c_loops = v;
    }
    return v;
}
#else
int ts_sgemm_uses_c_loops(void) { return 1; }
#endif

const char *ts_matmul_backend(void) {
#ifdef TS_USE_BLAS
    static char name[96];
    if (ts_sgemm_uses_c_loops())
        snprintf(name, sizeof name, "c loops (faster here than openblas %s)", openblas_get_corename());
    else
        snprintf(name, sizeof name, "openblas (%s)", openblas_get_corename());
    return name;
#else
    return "c loops";
#endif
}

const char *ts_blas_core(void) {
#ifdef TS_USE_BLAS
    return openblas_get_corename();
#else
    return "none";
#endif
}

void ts_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
#ifdef TS_USE_BLAS
    /* A few rows (a decode step) always take the C path: OpenBLAS would pack all of B for them. */
    if (M > SMALL_M && K > 0 && !ts_sgemm_uses_c_loops()) {
        if (N > 0)
            cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                        M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    ts_sgemm_c(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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
