/**
 * @file fp8.c
 * @brief E4M3 codec, tile-scaled quantisation and the simulated FP8 GEMM (see fp8.h).
 */
#include "core/fp8.h"

#include "core/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------------ */
/* E4M3 codec                                                          */
/* ------------------------------------------------------------------ */

//! [e4m3-encode]
uint8_t ts_e4m3_encode(float x) {
    uint8_t sign = signbit(x) ? 0x80 : 0x00;
    if (isnan(x)) return sign | TS_E4M3_NAN_CODE;
    float a = fabsf(x);
    // Saturate: 448 is the largest value, and everything above it (Inf too) is
    // clipped to it. (Without saturation, (464, 480) would round up to 1.875·2^8,
    // the bit pattern E4M3 spends on NaN; 464 itself is a tie that goes to 448,
    // whose mantissa 110 is even.)
    if (a >= TS_E4M3_MAX) return sign | TS_E4M3_MAX_CODE;
    // Below 2^-6 (the smallest normal) the values are the multiples of 2^-9:
    // code = round(a / 2^-9), an integer 0..8 that is the whole code, since
    // exponent field 0 and mantissa m mean m·2^-9, and 8 lands on `0001 000`,
    // which is 2^-6, the next binade's first value. a·512 is exact.
    if (a < 0x1p-6f) return sign | (uint8_t)rintf(a * 512.0f);
    // Normal: a = f·2^e with f in [1,2); keep 3 bits of f's fraction, rounding
    // (f-1)·8 to the nearest integer, ties to even (rintf in the default mode).
    // Both steps are exact in float, so the only rounding is rintf's.
    int e;
    float f = 2.0f * frexpf(a, &e);  // frexpf gives [0.5,1)
    e -= 1;
    int m = (int)rintf((f - 1.0f) * 8.0f);
    if (m == 8) { m = 0; e++; }      // rounded up into the next binade
    // e <= 8 here and (e,m) != (8,7): a < 448 rounds to at most 448.
    return sign | (uint8_t)((e + 7) << 3) | (uint8_t)m;
}
//! [e4m3-encode]

/* codes[i] = the E4M3 code of x[i] / s (of x[i] itself when s is 0), for a row of a tile:
 * ts_e4m3_encode()'s rounding done on the float's bit pattern, without branches (every case
 * computed, then selected), so that it vectorises. A normal float's bits, read as an integer, are
 * (biased exponent, 23-bit fraction) side by side, and E4M3 keeps the top 3 fraction bits: add
 * half of the 20 dropped bits (minus one unless the kept part is odd: ties to even) and shift
 * them out. A carry out of the fraction increments the exponent, exactly as rounding up into the
 * next binade should. E4M3's exponent bias is 7 and float's 127, so the code is the shifted
 * value less 120·8. Saturation, NaN and the subnormal range are ts_e4m3_encode()'s own rules. */
TS_VECTOR
static void encode_span(uint8_t *restrict codes, const float *restrict x, float s, int n) {
    for (int i = 0; i < n; i++) {
        float v = s > 0.0f ? x[i] / s : x[i];
#ifdef TS_F64  // the gradient-check build reads float as double: no float bit pattern to use
        codes[i] = ts_e4m3_encode(v);
#else
        uint32_t u;
        memcpy(&u, &v, sizeof u);
        uint32_t a = u & 0x7FFFFFFFu, sign = (u >> 24) & 0x80u;
        float f;
        memcpy(&f, &a, sizeof f);
        uint32_t sub = (uint32_t)(int32_t)rintf(f * 512.0f);                        // below 2^-6
        uint32_t normal = ((a + 0x7FFFFu + ((a >> 20) & 1u)) >> 20) - (120u << 3);
        uint32_t c = a < 0x3C800000u ? sub : normal;
        c = a >= 0x43E00000u ? TS_E4M3_MAX_CODE : c;                                // 448 and above, Inf
        c = a > 0x7F800000u ? TS_E4M3_NAN_CODE : c;                                 // NaN
        codes[i] = (uint8_t)(sign | (c & 0xFFu));
#endif
    }
}

/* One value through the quantiser's encoder, for the test that compares it with ts_e4m3_encode(). */
uint8_t ts_e4m3_encode_bits(float x) {
    uint8_t c;
    encode_span(&c, &x, 0.0f, 1);
    return c;
}

//! [e4m3-decode]
float ts_e4m3_decode(uint8_t code) {
    int e = (code >> 3) & 0xF, m = code & 0x7;
    if (e == 0xF && m == 0x7) return NAN;
    float a = e == 0 ? ldexpf((float)m, -9)            // subnormal: m/8 · 2^-6
                     : ldexpf((float)(8 + m), e - 10); // (1 + m/8) · 2^(e-7)
    return (code & 0x80) ? -a : a;
}
//! [e4m3-decode]

/* All 256 decoded values, for the loops that decode many codes (a table per
 * call: 256 decodes cost nothing next to a product, and no state is shared). */
static void e4m3_values(float val[256]) {
    for (int c = 0; c < 256; c++) val[c] = ts_e4m3_decode((uint8_t)c);
}

/* ------------------------------------------------------------------ */
/* Scaled quantisation                                                 */
/* ------------------------------------------------------------------ */

ts_fp8_config ts_fp8_default(void) {
    ts_fp8_config c = {.scaling = TS_FP8_FINE, .promote = TS_FP8_TILE, .acc_bits = 0, .pow2_scales = 0};
    return c;
}

int ts_fp8_tiles_c(const ts_fp8_matrix *q) { return (q->cols + q->tile_cols - 1) / q->tile_cols; }

static int tiles_r(const ts_fp8_matrix *q) { return (q->rows + q->tile_rows - 1) / q->tile_rows; }

ts_status ts_fp8_matrix_alloc(ts_fp8_matrix *q, int rows, int cols, int tile_rows, int tile_cols) {
    memset(q, 0, sizeof *q);
    if (rows <= 0 || cols <= 0 || tile_rows <= 0 || tile_cols <= 0)
        return ts_fail(TS_ERR_ARG, "fp8: matrix %dx%d with tiles %dx%d: sizes must be positive",
                       rows, cols, tile_rows, tile_cols);
    q->rows = rows;
    q->cols = cols;
    q->tile_rows = tile_rows < rows ? tile_rows : rows;
    q->tile_cols = tile_cols < cols ? tile_cols : cols;
    q->codes = ts_malloc((size_t)rows * cols, "fp8 codes");
    q->scales = ts_malloc((size_t)tiles_r(q) * ts_fp8_tiles_c(q) * sizeof(float), "fp8 scales");
    if (!q->codes || !q->scales) {
        ts_fp8_matrix_free(q);
        return TS_ERR_NOMEM;
    }
    return TS_OK;
}

void ts_fp8_matrix_free(ts_fp8_matrix *q) {
    if (!q) return;
    free(q->codes);
    free(q->scales);
    q->codes = NULL;
    q->scales = NULL;
}

/* op(x)[r][c]: x (rows, cols) row-major, or x stored transposed (cols, rows). */
static inline float x_at(const float *x, int ld, int trans, int r, int c) {
    return trans ? x[(size_t)c * ld + r] : x[(size_t)r * ld + c];
}

/* The scale that maps amax to 448: amax/448, or the power of two at or above it. */
static float tile_scale(float amax, int pow2) {
    float s = amax / TS_E4M3_MAX;
    if (!pow2 || s == 0.0f || !isfinite(s)) return s;
    int e;
    float f = frexpf(s, &e);                  // s = f·2^e, f in [0.5,1)
    return f == 0.5f ? s : ldexpf(1.0f, e);  // already a power of two, or the next one up
}

//! [fp8-quantize]
void ts_fp8_quantize(ts_fp8_matrix *q, const float *x, int ld, int trans, int pow2_scales) {
    int ntr = tiles_r(q), ntc = ts_fp8_tiles_c(q);
    TS_OMP(parallel for schedule(static) if ((double)q->rows * q->cols > 65536))
    for (int tr = 0; tr < ntr; tr++) {
        int r0 = tr * q->tile_rows, r1 = r0 + q->tile_rows < q->rows ? r0 + q->tile_rows : q->rows;
        float buf[TS_FP8_TILE];
        for (int tc = 0; tc < ntc; tc++) {
            int c0 = tc * q->tile_cols, c1 = c0 + q->tile_cols < q->cols ? c0 + q->tile_cols : q->cols;
            // The scale comes from the tile's *current* max-abs (no history, as V3).
            float amax = 0.0f;  // (a NaN fails the comparison and is skipped, as fmaxf skips it)
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++) {
                    float a = fabsf(x_at(x, ld, trans, r, c));
                    amax = a > amax ? a : amax;
                }
            float s = tile_scale(amax, pow2_scales);
            q->scales[(size_t)tr * ntc + tc] = s;
            // amax/s is 448 give or take one float rounding, which encodes to 448
            // either way; a tile of zeros (s = 0) keeps its zeros and their signs.
            for (int r = r0; r < r1; r++)
                for (int b0 = c0; b0 < c1; b0 += TS_FP8_TILE) {  // pieces of at most buf's size
                    int n = c1 - b0 < TS_FP8_TILE ? c1 - b0 : TS_FP8_TILE;
                    const float *row = x + (size_t)r * ld + b0;
                    if (trans) {  // the row's elements are a column of x: gather them first
                        for (int c = 0; c < n; c++) buf[c] = x[(size_t)(b0 + c) * ld + r];
                        row = buf;
                    }
                    encode_span(q->codes + (size_t)r * q->cols + b0, row, s, n);
                }
        }
    }
}
//! [fp8-quantize]

void ts_fp8_dequantize(const ts_fp8_matrix *q, float *out) {
    float val[256];
    e4m3_values(val);
    int ntc = ts_fp8_tiles_c(q);
    for (int r = 0; r < q->rows; r++)
        for (int c = 0; c < q->cols; c++) {
            float s = q->scales[(size_t)(r / q->tile_rows) * ntc + c / q->tile_cols];
            out[(size_t)r * q->cols + c] = val[q->codes[(size_t)r * q->cols + c]] * s;
        }
}

ts_status ts_fp8_transpose(ts_fp8_matrix *dst, const ts_fp8_matrix *src) {
    ts_status st = ts_fp8_matrix_alloc(dst, src->cols, src->rows, src->tile_cols, src->tile_rows);
    if (st) return st;
    for (int r = 0; r < src->rows; r++)
        for (int c = 0; c < src->cols; c++)
            dst->codes[(size_t)c * dst->cols + r] = src->codes[(size_t)r * src->cols + c];
    int ntr = tiles_r(src), ntc = ts_fp8_tiles_c(src);
    for (int tr = 0; tr < ntr; tr++)
        for (int tc = 0; tc < ntc; tc++)
            dst->scales[(size_t)tc * ntr + tr] = src->scales[(size_t)tr * ntc + tc];
    return TS_OK;
}

/* ------------------------------------------------------------------ */
/* GEMM                                                                */
/* ------------------------------------------------------------------ */

/* Round x to `bits` significant bits (1..23), to nearest, ties to even, into a
 * float: add half of the dropped part of the double's 53-bit significand
 * (minus one unless the kept part is odd) to the bit pattern and clear the
 * dropped bits; a carry moves into the exponent, as it should. Callers pass the
 * exact sum (a double holds part + product exactly: both are multiples of
 * 2^-18, the product of two smallest subnormals, and below 2^35 for chunks of
 * up to 2^17 products of at most 448²), so this is one rounding, not float32's
 * followed by a second one. The limited-precision accumulator of the chunk sums. */
static inline float round_sig(double x, int bits) {
    if (!isfinite(x)) return (float)x;  // a NaN code's product stays NaN
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    int drop = 53 - bits;
    uint64_t lsb = (u >> drop) & 1u;
    u += (UINT64_C(1) << (drop - 1)) - 1u + lsb;
    u &= ~((UINT64_C(1) << drop) - 1u);
    memcpy(&x, &u, sizeof x);
    return (float)x;  // exact: at most `bits` significant bits
}

/* K elements per promotion: cfg->promote, or all of K when that is 0 or more. */
static int chunk_of(const ts_fp8_config *cfg, int K) {
    return cfg->promote == 0 || cfg->promote > K ? K : cfg->promote;
}

/* Bits the chunk sums are rounded to, 0 for none (24 is float32 itself). */
static int acc_bits_of(const ts_fp8_config *cfg) { return cfg->acc_bits < 24 ? cfg->acc_bits : 0; }

/* Checks shared by both GEMMs; *chunk = K elements per promotion. */
static ts_status gemm_check(const ts_fp8_matrix *A, const ts_fp8_matrix *B, const ts_fp8_config *cfg,
                            int *chunk) {
    int K = A->cols;
    if (B->cols != K)
        return ts_fail(TS_ERR_ARG, "fp8 gemm: A is %dx%d and B is %dx%d: K differs", A->rows, A->cols,
                       B->rows, B->cols);
    if (cfg->acc_bits < 0 || cfg->acc_bits > 24 || cfg->promote < 0)
        return ts_fail(TS_ERR_ARG, "fp8 gemm: acc_bits %d (0..24) or promote %d (>= 0) out of range",
                       cfg->acc_bits, cfg->promote);
    *chunk = chunk_of(cfg, K);
    // A chunk's sum is scaled once, so the chunk must lie inside one tile of each operand.
    const ts_fp8_matrix *ops[2] = {A, B};
    for (int i = 0; i < 2; i++)
        if (ops[i]->tile_cols < K && ops[i]->tile_cols % *chunk != 0)
            return ts_fail(TS_ERR_ARG,
                           "fp8 gemm: promotion every %d elements straddles the %s tiles of width %d",
                           *chunk, i ? "B" : "A", ops[i]->tile_cols);
    return TS_OK;
}

static inline float scale_at(const ts_fp8_matrix *q, int r, int c) {
    return q->scales[(size_t)(r / q->tile_rows) * ts_fp8_tiles_c(q) + c / q->tile_cols];
}

//! [fp8-gemm-ref]
ts_status ts_fp8_gemm_ref(float *C, int ldc, const ts_fp8_matrix *A, const ts_fp8_matrix *B,
                          int accumulate, const ts_fp8_config *cfg) {
    int chunk;
    ts_status st = gemm_check(A, B, cfg, &chunk);
    if (st) return st;
    float val[256];
    e4m3_values(val);
    int K = A->cols, bits = acc_bits_of(cfg);
    for (int i = 0; i < A->rows; i++)
        for (int j = 0; j < B->rows; j++) {
            float acc = 0.0f;  // the float32 accumulator (CUDA cores, in V3)
            for (int k0 = 0; k0 < K; k0 += chunk) {
                int k1 = k0 + chunk < K ? k0 + chunk : K;
                // The Tensor Core's part: products of two E4M3 values are exact
                // in float (4 × 4 significant bits), their running sum is not.
                float part = 0.0f;
                for (int k = k0; k < k1; k++) {
                    float p = val[A->codes[(size_t)i * K + k]] * val[B->codes[(size_t)j * K + k]];
                    part = bits ? round_sig((double)part + p, bits) : part + p;
                }
                // Promotion: scale the chunk's sum by both tiles' scales, add in float32.
                acc += part * (scale_at(A, i, k0) * scale_at(B, j, k0));
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = accumulate ? *c + acc : acc;
        }
    return TS_OK;
}
//! [fp8-gemm-ref]

/* Scratch floats the fast GEMM needs with `threads` threads. */
static size_t gemm_work_floats(const ts_fp8_matrix *B, int threads) {
    return (size_t)B->cols * B->rows + (size_t)ts_fp8_tiles_c(B) * B->rows + (size_t)threads * (2 * B->rows + B->cols);
}

static int gemm_threads(void) {
#ifdef _OPENMP
    return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

/* part[j] += a·b[j] for all j: one k step of a row's chunk sums. Vectorised
 * across j (each part[j] still sums its products in k order, without FMA
 * contraction: the bits of the plain loop). */
TS_VECTOR
static void add_products(float *restrict part, float a, const float *restrict b, int n) {
    for (int j = 0; j < n; j++) part[j] += a * b[j];
}

/* part[j] = Σ_k a[k]·b[k][j] over one chunk, for JB columns at once, the sums kept in a local
 * block the compiler holds in vector registers across the whole chunk (instead of loading and
 * storing part[] at every k, as add_products() does). Each part[j] still adds its products one
 * by one in k order, without FMA contraction: the same bits. */
#define FP8_JB 64
TS_VECTOR
static void chunk_block(float *restrict part, const float *restrict a, const float *restrict b, int ldb, int kn) {
    float p[FP8_JB] = {0};
    for (int k = 0; k < kn; k++) {
        const float ak = a[k], *bk = b + (size_t)k * ldb;
        for (int j = 0; j < FP8_JB; j++) p[j] += ak * bk[j];
    }
    memcpy(part, p, sizeof p);
}

/* acc[j] += part[j]·(sa·sb[j]): a chunk's sums promoted to float32, as in ts_fp8_gemm_ref(). */
TS_VECTOR
static void promote(float *restrict acc, const float *restrict part, float sa, const float *restrict sb, int n) {
    for (int j = 0; j < n; j++) acc[j] += part[j] * (sa * sb[j]);
}

/* The same sums as ts_fp8_gemm_ref(), with each output's k order unchanged (so
 * the same bits), arranged to vectorise: B is decoded once into Bt (K,N), and a
 * row of C is computed for all j at once, k outer and j inner, in two row
 * buffers, the chunk sums `part` and the accumulators `acc`. */
static void gemm_fast(float *C, int ldc, const ts_fp8_matrix *A, const ts_fp8_matrix *B, int accumulate,
                      int chunk, int bits, int threads, float *work) {
    float val[256];
    e4m3_values(val);
    int M = A->rows, N = B->rows, K = A->cols;
    float *Bt = work, *Bs = work + (size_t)K * N; // Bs (tiles along K, N): B's scales, transposed
    for (int j = 0; j < N; j++)
        for (int k = 0; k < K; k++) Bt[(size_t)k * N + j] = val[B->codes[(size_t)j * K + k]];
    int ntc = ts_fp8_tiles_c(B);
    for (int tc = 0; tc < ntc; tc++)
        for (int j = 0; j < N; j++) Bs[(size_t)tc * N + j] = scale_at(B, j, tc * B->tile_cols);
    TS_OMP(parallel for schedule(static) num_threads(threads) if ((double)M * N * K > 1e6))
    for (int i = 0; i < M; i++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        float *part = Bs + (size_t)ntc * N + (size_t)t * (2 * N + K), *acc = part + N, *arow = acc + N;
        for (int j = 0; j < N; j++) acc[j] = 0.0f;
        for (int k0 = 0; k0 < K; k0 += chunk) {
            int k1 = k0 + chunk < K ? k0 + chunk : K;
            for (int k = k0; k < k1; k++) arow[k - k0] = val[A->codes[(size_t)i * K + k]];
            int j0 = 0;
            if (!bits)  // whole blocks of FP8_JB columns, then the rest below
                for (; j0 + FP8_JB <= N; j0 += FP8_JB) chunk_block(part + j0, arow, Bt + (size_t)k0 * N + j0, N, k1 - k0);
            for (int j = j0; j < N; j++) part[j] = 0.0f;
            for (int k = k0; k < k1; k++) {
                float a = arow[k - k0];
                const float *b = Bt + (size_t)k * N;
                if (bits)
                    for (int j = j0; j < N; j++) part[j] = round_sig((double)part[j] + (double)a * b[j], bits);
                else
                    add_products(part + j0, a, b + j0, N - j0);
            }
            promote(acc, part, scale_at(A, i, k0), Bs + (size_t)(k0 / B->tile_cols) * N, N);
        }
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) c[j] = accumulate ? c[j] + acc[j] : acc[j];
    }
}

ts_status ts_fp8_gemm(float *C, int ldc, const ts_fp8_matrix *A, const ts_fp8_matrix *B, int accumulate,
                      const ts_fp8_config *cfg) {
    int chunk;
    ts_status st = gemm_check(A, B, cfg, &chunk);
    if (st) return st;
    int threads = gemm_threads();
    float *work = ts_malloc(gemm_work_floats(B, threads) * sizeof(float), "fp8 gemm scratch");
    if (!work) return TS_ERR_NOMEM;
    gemm_fast(C, ldc, A, B, accumulate, chunk, acc_bits_of(cfg), threads, work);
    free(work);
    return TS_OK;
}

/* ------------------------------------------------------------------ */
/* The linear layer                                                    */
/* ------------------------------------------------------------------ */

/* Tiles of an operand: activations 1×128 along K, weights 128×128, or per tensor. */
static ts_status quantize_operand(ts_fp8_matrix *q, const float *x, int rows, int cols, int trans,
                                  int weight, const ts_fp8_config *cfg) {
    int tr = cfg->scaling == TS_FP8_PER_TENSOR ? rows : weight ? TS_FP8_TILE : 1;
    int tc = cfg->scaling == TS_FP8_PER_TENSOR ? cols : TS_FP8_TILE;
    ts_status st = ts_fp8_matrix_alloc(q, rows, cols, tr, tc);
    if (st) return st;
    ts_fp8_quantize(q, x, trans ? rows : cols, trans, cfg->pow2_scales);
    return TS_OK;
}

//! [fp8-matmul-forward]
ts_status fp8_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                             int N, int C, int OC, const ts_fp8_config *cfg) {
    // out (N,OC) = inp (N,C) · weight (OC,C)ᵀ: K = C, tiles along C.
    ts_fp8_matrix qx = {0}, qw = {0};
    ts_status st = quantize_operand(&qx, inp, N, C, 0, 0, cfg);
    if (!st) st = quantize_operand(&qw, weight, OC, C, 0, 1, cfg);
    if (!st) st = ts_fp8_gemm(out, OC, &qx, &qw, 0, cfg);
    if (!st && bias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
    ts_fp8_matrix_free(&qx);
    ts_fp8_matrix_free(&qw);
    return st;
}
//! [fp8-matmul-forward]

//! [fp8-matmul-backward]
ts_status fp8_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, int N, int C, int OC,
                              const ts_fp8_config *cfg) {
    // forward: out (N,OC) = inp (N,C) · weight (OC,C)ᵀ
    // Everything is quantised and checked before any gradient is touched, so a
    // failure leaves them as they were.
    ts_fp8_matrix qdy = {0}, qw = {0}, qwt = {0}, qdyt = {0}, qxt = {0};
    ts_status st = TS_OK;
    if (dinp) {
        // dinp (N,C) += dout (N,OC) · weight (OC,C): K = OC. dout in 1×128 tiles
        // along OC; B = weightᵀ (C,OC), whose 128×128 blocks are the weight's.
        st = quantize_operand(&qdy, dout, N, OC, 0, 0, cfg);
        if (!st) st = quantize_operand(&qw, weight, OC, C, 0, 1, cfg);
        if (!st) st = ts_fp8_transpose(&qwt, &qw);
    }
    if (!st && dweight) {
        // dweight (OC,C) += dout (N,OC)ᵀ · inp (N,C): K = N, the tokens. Both
        // operands tiled along the tokens: A = doutᵀ (OC,N), B = inpᵀ (C,N).
        st = quantize_operand(&qdyt, dout, OC, N, 1, 0, cfg);
        if (!st) st = quantize_operand(&qxt, inp, C, N, 1, 0, cfg);
    }
    int chunk_dx = 0, chunk_dw = 0;
    if (!st && dinp) st = gemm_check(&qdy, &qwt, cfg, &chunk_dx);
    if (!st && dweight) st = gemm_check(&qdyt, &qxt, cfg, &chunk_dw);
    int threads = gemm_threads();
    size_t wn = 0;
    if (!st && dinp) wn = gemm_work_floats(&qwt, threads);
    if (!st && dweight && gemm_work_floats(&qxt, threads) > wn) wn = gemm_work_floats(&qxt, threads);
    float *work = NULL;
    if (!st && wn && !(work = ts_malloc(wn * sizeof(float), "fp8 gemm scratch"))) st = TS_ERR_NOMEM;
    if (!st) {
        int bits = acc_bits_of(cfg);
        if (dinp) gemm_fast(dinp, C, &qdy, &qwt, 1, chunk_dx, bits, threads, work);
        if (dweight) gemm_fast(dweight, C, &qdyt, &qxt, 1, chunk_dw, bits, threads, work);
        // dbias[o] += Σ_n dout[n][o], in float32 as matmul_backward() does.
        if (dbias)
            for (int n = 0; n < N; n++)
                for (int o = 0; o < OC; o++) dbias[o] += dout[(size_t)n * OC + o];
    }
    free(work);
    ts_fp8_matrix_free(&qdy);
    ts_fp8_matrix_free(&qw);
    ts_fp8_matrix_free(&qwt);
    ts_fp8_matrix_free(&qdyt);
    ts_fp8_matrix_free(&qxt);
    return st;
}
//! [fp8-matmul-backward]
