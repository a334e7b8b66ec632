/**
 * @file ops.c
 * @brief Embedding, RMSNorm, RoPE (with YaRN), softmax, SwiGLU and cross-entropy,
 *        each with its backward.
 *
 * Row-wise ops split rows between threads (rows are independent outputs).
 * Where a gradient sums over rows (dweight of RMSNorm, dtable of the
 * embedding) one thread walks the rows in order, so the bits never depend on
 * the thread count.
 */
#include "core/ops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/common.h"

/* Parallelise a loop only when it is big enough to pay for the threads. */
#define TS_PAR_MIN 65536.0

/* ------------------------------------------------------------------ */
/* Building blocks of the fast loops                                   */
/* ------------------------------------------------------------------ */

/* The helpers below are inlined into each TS_VECTOR function, so that every
 * compiled copy (AVX-512, AVX2, baseline) gets its own vectorised version. */
#if defined(__GNUC__)
#define TS_INLINE static inline __attribute__((always_inline))
#else
#define TS_INLINE static inline
#endif

/* e^x in float, within 1 ulp of expf() for x in [−87.3, 88.3], 0 below
 * (where expf() is subnormal or 0), +inf above ln(FLT_MAX) as expf(), NaN for
 * NaN (Cephes' expf: x = n·ln2 + r with |r| <= ln2/2, e^r by a degree-7
 * polynomial, 2^n written into the exponent bits). Unlike a call to expf() it
 * is branch-free straight-line code, so a loop over it runs 16 lanes at a
 * time. The fast loops use it; the _ref loops use expf().
 * Every float is defined: the clamp sends NaN to the low end before the cast
 * to int (a NaN cast is undefined behaviour, and so would be the shift of the
 * negative number it gives), and x in (88.3, 88.7] is computed as 2·e^(x−ln2)
 * so the exponent bits never reach 255; for any other x the multiply by
 * `twice` is by 1, so the bits are those of the plain Cephes formula. */
#ifndef TS_F64
TS_INLINE float fast_expf(float x) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187045e-06f;
    const float lo = -87.33654f, hi = 88.37626f;
    int big = x > hi;
    float xs = big ? x - 0.693147180559945f : x;
    float xc = xs > lo ? (xs < hi ? xs : hi) : lo; /* NaN compares false: it becomes lo */
    float t = xc * log2e;
    float n = (t + 12582912.0f) - 12582912.0f; /* round to nearest: 1.5·2^23 pushes the fraction out */
    float r = (xc - n * ln2_hi) - n * ln2_lo;  /* ln2 in two parts keeps r exact */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n, n in [-126, 127] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float twice = big ? 2.0f : 1.0f; /* exact; overflows to +inf past ln(FLT_MAX) as expf() does */
    float y = p * scale * twice;
    return x != x ? x : x < lo ? 0.0f : y;
}
#else /* the double-precision test build (tests/f64/f64.h): no float32 exponent bits to write */
TS_INLINE float fast_expf(float x) { return expf(x); }
#endif

/* Σ a[i]·b[i] in a fixed order: 16 running lanes, added pairwise at the end,
 * then the tail. (A single running sum is a chain of dependent adds the
 * compiler may not reorder; 16 lanes are one AVX-512 register.) */
TS_INLINE float dot_lanes(const float *a, const float *b, int n) {
    float lane[16] = {0.0f};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) lane[l] += a[i + l] * b[i + l];
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) lane[l] += lane[l + w];
    float sum = lane[0];
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

/* max of x[0..n) (n >= 1), lane-wise as dot_lanes(). */
TS_INLINE float max_lanes(const float *x, int n) {
    float lane[16];
    for (int l = 0; l < 16; l++) lane[l] = x[0];
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) lane[l] = x[i + l] > lane[l] ? x[i + l] : lane[l];
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) lane[l] = lane[l + w] > lane[l] ? lane[l + w] : lane[l];
    float m = lane[0];
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* y[i] = e^(x[i] − m); returns Σ y, summed lane-wise as dot_lanes(). y may be x. */
TS_INLINE float exp_sub_sum(float *y, const float *x, int n, float m) {
    float lane[16] = {0.0f};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) {
            y[i + l] = fast_expf(x[i + l] - m);
            lane[l] += y[i + l];
        }
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) lane[l] += lane[l + w];
    float sum = lane[0];
    for (; i < n; i++) {
        y[i] = fast_expf(x[i] - m);
        sum += y[i];
    }
    return sum;
}

float ts_fast_expf(float x) { return fast_expf(x); }

TS_VECTOR
float ts_dot(const float *a, const float *b, int n) { return dot_lanes(a, b, n); }

TS_VECTOR
void ts_softmax_row(float *y, const float *x, int n) {
    // y = e^(x − m) / Σ e^(x − m), m = max x: subtracting the max keeps e^ from overflowing
    float m = max_lanes(x, n);
    float inv = 1.0f / exp_sub_sum(y, x, n, m);
    for (int i = 0; i < n; i++) y[i] *= inv;
}

TS_VECTOR
float ts_logsumexp(const float *x, int n) {
    // log Σ e^x = m + log Σ e^(x − m), m = max x
    float m = max_lanes(x, n), lane[16] = {0.0f};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) lane[l] += fast_expf(x[i + l] - m);
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) lane[l] += lane[l + w];
    float sum = lane[0];
    for (; i < n; i++) sum += fast_expf(x[i] - m);
    return m + logf(sum);
}

/* `call` handles items [lo, hi); run it over [0, n), split between the threads
 * in contiguous, fixed shares when `big`, else on the calling thread. (An
 * OpenMP `if` clause would still enter the runtime, ~2 µs and a system call
 * per loop: too much for decode steps, which run these ops on a single row.) */
#define TS_SPLIT(n, big, lo, hi, call)                  \
    do {                                                \
        if (big) {                                      \
            TS_OMP(parallel)                            \
            {                                           \
                int lo, hi;                             \
                ts_thread_share((n), &lo, &hi);         \
                call;                                   \
            }                                           \
        } else {                                        \
            int lo = 0, hi = (n);                       \
            call;                                       \
        }                                               \
    } while (0)

/* ------------------------------------------------------------------ */
/* Embedding                                                           */
/* ------------------------------------------------------------------ */

static void embedding_rows(float *out, const int *tokens, const float *table, int lo, int hi, int C) {
    for (int n = lo; n < hi; n++)
        memcpy(out + (size_t)n * C, table + (size_t)tokens[n] * C, (size_t)C * sizeof(float));
}

void embedding_forward(float *out, const int *tokens, const float *table, int N, int C) {
    // out (N,C), tokens (N), table (V,C)
    TS_SPLIT(N, (double)N * C > TS_PAR_MIN, lo, hi, embedding_rows(out, tokens, table, lo, hi, C));
}

void embedding_backward(float *dtable, const float *dout, const int *tokens, int N, int C) {
    // forward: out[n] = table[tokens[n]]
    // A token can repeat, so rows are added one after the other (no two threads on one row).
    for (int n = 0; n < N; n++) {
        float *drow = dtable + (size_t)tokens[n] * C;
        const float *g = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) drow[c] += g[c];
    }
}

/* ------------------------------------------------------------------ */
/* RMSNorm (Zhang & Sennrich 2019)                                     */
/* ------------------------------------------------------------------ */

//! [rmsnorm]
/* Rows [lo, hi) of rmsnorm_forward(). */
TS_VECTOR
static void rmsnorm_rows(float *out, float *rstd, const float *inp, const float *weight, int lo, int hi, int C,
                         int in_stride, int out_stride, float eps) {
    for (int n = lo; n < hi; n++) {
        const float *x = inp + (size_t)n * in_stride;
        float *y = out + (size_t)n * out_stride;
        float r = 1.0f / sqrtf(dot_lanes(x, x, C) / (float)C + eps); // 1/rms(x)
        if (rstd) rstd[n] = r;
        for (int c = 0; c < C; c++) y[c] = x[c] * r * weight[c];
    }
}

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                     int N, int C, int in_stride, int out_stride, float eps) {
    // out (N,C) rows out_stride apart, rstd (N), inp (N,C) rows in_stride apart, weight (C)
    TS_SPLIT(N, (double)N * C > TS_PAR_MIN, lo, hi,
             rmsnorm_rows(out, rstd, inp, weight, lo, hi, C, in_stride, out_stride, eps));
}

/* The backward is written out in one function, row by row: it is chapter 2's
 * worked example (and its exercise), and it only runs in training, where a
 * plain OpenMP loop over rows costs nothing measurable. */
void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, const float *rstd,
                      int N, int C, int in_stride, int out_stride) {
    // forward: y_c = x_c · r · w_c,  r = (Σ_j x_j²/C + eps)^(−1/2),  ∂r/∂x_c = −r³·x_c/C
    //   dx_c += r·w_c·dy_c − (r³/C)·x_c·Σ_j dy_j·w_j·x_j
    if (dinp) {
        TS_OMP(parallel for schedule(static) if ((double)N * C > 65536.0))
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * in_stride;
            const float *dy = dout + (size_t)n * out_stride;
            float *dx = dinp + (size_t)n * in_stride;
            float r = rstd[n], dot = 0.0f;
            for (int c = 0; c < C; c++) dot += dy[c] * weight[c] * x[c];
            float k = r * r * r * dot / (float)C;
            for (int c = 0; c < C; c++) dx[c] += r * weight[c] * dy[c] - k * x[c];
        }
    }
    //   dw_c += Σ_n dy_c·x_c·r   (rows in order, on one thread: a fixed-order sum)
    if (dweight) {
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * in_stride;
            const float *dy = dout + (size_t)n * out_stride;
            float r = rstd[n];
            for (int c = 0; c < C; c++) dweight[c] += dy[c] * x[c] * r;
        }
    }
}
//! [rmsnorm]

/* ------------------------------------------------------------------ */
/* RoPE (Su et al. 2021) and YaRN (Peng et al. 2023)                   */
/* ------------------------------------------------------------------ */

/* The pair index i at which θ_i makes `rotations` full turns over `max_pos`
 * positions: max_pos·θ_i = 2π·rotations with θ_i = base^(−2i/dim) gives
 * i = dim·ln(max_pos / (2π·rotations)) / (2·ln base). */
static double yarn_correction_dim(double rotations, int dim, double base, int max_pos) {
    return dim * log(max_pos / (rotations * 2.0 * TS_PI)) / (2.0 * log(base));
}

//! [rope-yarn]
void rope_inv_freq(float *inv_freq, int dim, float base, const ts_yarn *yarn) {
    int half = dim / 2;
    for (int i = 0; i < half; i++) inv_freq[i] = (float)pow(base, -2.0 * i / dim);
    if (!yarn || yarn->factor <= 1.0f) return;
    /* Pairs that turn more than beta_fast times over the original context
     * (i < low) are high frequencies: they keep θ_i ("extrapolate"). Pairs that
     * turn fewer than beta_slow times (i > high) never saw a full period in
     * training: they are slowed to θ_i/factor ("interpolate"). In between, a
     * linear ramp blends the two. Bounds as DeepSeek-V3's reference code
     * (yarn_find_correction_range), including its clamp to [0, dim−1]. */
    double low = floor(yarn_correction_dim(yarn->beta_fast, dim, base, yarn->original_max_position));
    double high = ceil(yarn_correction_dim(yarn->beta_slow, dim, base, yarn->original_max_position));
    if (low < 0) low = 0;
    if (high > dim - 1) high = dim - 1;
    if (low == high) high += 0.001; /* avoid 0/0 in the ramp */
    for (int i = 0; i < half; i++) {
        double ramp = (i - low) / (high - low); /* 0 at low, 1 at high */
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        double theta = inv_freq[i];
        inv_freq[i] = (float)(theta / yarn->factor * ramp + theta * (1.0 - ramp));
    }
}
//! [rope-yarn]

float yarn_get_mscale(float factor, float mscale) {
    if (factor <= 1.0f) return 1.0f;
    return 0.1f * mscale * logf(factor) + 1.0f;
}

void rope_table(float *cos_t, float *sin_t, const float *inv_freq, int dim, int max_pos) {
    // cos_t, sin_t (max_pos, dim/2); angles in double so large positions stay accurate
    int half = dim / 2;
    for (int pos = 0; pos < max_pos; pos++)
        for (int i = 0; i < half; i++) {
            double angle = (double)pos * inv_freq[i];
            cos_t[(size_t)pos * half + i] = (float)cos(angle);
            sin_t[(size_t)pos * half + i] = (float)sin(angle);
        }
}

//! [rope]
/* Rows [lo, hi) of rope_forward() (sign = 1) and rope_backward() (sign = −1). */
TS_VECTOR
static void rope_rows(float *x, const int *pos, int lo, int hi, int H, int row_stride, int head_stride, int dim,
                      const float *cos_t, const float *sin_t, float sign) {
    int half = dim / 2;
    for (int n = lo; n < hi; n++) {
        const float *c = cos_t + (size_t)pos[n] * half;
        const float *s = sin_t + (size_t)pos[n] * half;
        for (int h = 0; h < H; h++) {
            float *xh = x + (size_t)n * row_stride + (size_t)h * head_stride;
            for (int i = 0; i < half; i++) {
                float x0 = xh[2 * i], x1 = xh[2 * i + 1], sn = sign * s[i];
                xh[2 * i] = x0 * c[i] - x1 * sn;
                xh[2 * i + 1] = x0 * sn + x1 * c[i];
            }
        }
    }
}

void rope_forward(float *x, const int *pos, int N, int H, int row_stride, int head_stride,
                  int dim, const float *cos_t, const float *sin_t) {
    // x (N, row_stride), head h at h*head_stride, rotated dims [0, dim); pos (N)
    //   (x0, x1) of pair i turns by φ = pos·θ_i: (x0 cos φ − x1 sin φ, x0 sin φ + x1 cos φ)
    TS_SPLIT(N, (double)N * H * dim > TS_PAR_MIN, lo, hi,
             rope_rows(x, pos, lo, hi, H, row_stride, head_stride, dim, cos_t, sin_t, 1.0f));
}

void rope_backward(float *dx, const int *pos, int N, int H, int row_stride, int head_stride,
                   int dim, const float *cos_t, const float *sin_t) {
    // forward: (y0, y1) = R(φ)·(x0, x1) with R(φ) = [[cos φ, −sin φ], [sin φ, cos φ]]
    //   (dx0, dx1) = R(φ)ᵀ·(dy0, dy1) = R(−φ)·(dy0, dy1), in place like the forward
    TS_SPLIT(N, (double)N * H * dim > TS_PAR_MIN, lo, hi,
             rope_rows(dx, pos, lo, hi, H, row_stride, head_stride, dim, cos_t, sin_t, -1.0f));
}
//! [rope]

/* ------------------------------------------------------------------ */
/* Softmax                                                             */
/* ------------------------------------------------------------------ */

static void softmax_rows(float *out, const float *inp, int lo, int hi, int V) {
    for (int n = lo; n < hi; n++) ts_softmax_row(out + (size_t)n * V, inp + (size_t)n * V, V);
}

void softmax_forward(float *out, const float *inp, int N, int V) {
    // out (N,V), inp (N,V); each row: e^(x − max x) / Σ e^(x − max x)
    TS_SPLIT(N, (double)N * V > TS_PAR_MIN, lo, hi, softmax_rows(out, inp, lo, hi, V));
}

TS_VECTOR
static void softmax_backward_rows(float *dinp, const float *dout, const float *out, int lo, int hi, int V) {
    for (int n = lo; n < hi; n++) {
        const float *y = out + (size_t)n * V;
        const float *dy = dout + (size_t)n * V;
        float *dx = dinp + (size_t)n * V;
        float dot = dot_lanes(dy, y, V);
        for (int v = 0; v < V; v++) dx[v] += y[v] * (dy[v] - dot);
    }
}

void softmax_backward(float *dinp, const float *dout, const float *out, int N, int V) {
    // forward: y_v = exp(x_v) / Σ_u exp(x_u)  →  ∂y_u/∂x_v = y_u(δ_uv − y_v)
    //   dx_v += y_v·(dy_v − Σ_u dy_u·y_u)
    TS_SPLIT(N, (double)N * V > TS_PAR_MIN, lo, hi, softmax_backward_rows(dinp, dout, out, lo, hi, V));
}

/* ------------------------------------------------------------------ */
/* SwiGLU (Shazeer 2020)                                               */
/* ------------------------------------------------------------------ */

TS_INLINE float sigmoidf(float x) { return 1.0f / (1.0f + fast_expf(-x)); }

TS_VECTOR
static void swiglu_span(float *restrict out, const float *restrict gate, const float *restrict up, long lo,
                        long hi) {
    for (long i = lo; i < hi; i++) out[i] = gate[i] * sigmoidf(gate[i]) * up[i];
}

void swiglu_forward(float *out, const float *gate, const float *up, long n) {
    // out, gate, up (n): out = silu(gate)·up, silu(g) = g·σ(g)
    int blocks = (int)((n + 4095) / 4096); /* threads take whole blocks of 4096 */
    TS_SPLIT(blocks, n > TS_PAR_MIN, lo, hi,
             swiglu_span(out, gate, up, 4096L * lo, 4096L * hi < n ? 4096L * hi : n));
}

TS_VECTOR
static void swiglu_backward_span(float *restrict dgate, float *restrict dup, const float *restrict dout,
                                 const float *restrict gate, const float *restrict up, long lo, long hi) {
    for (long i = lo; i < hi; i++) {
        float g = gate[i], s = sigmoidf(g);
        if (dgate) dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        if (dup) dup[i] += dout[i] * g * s;
    }
}

void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, long n) {
    // forward: out = g·σ(g)·u
    //   dgate += dout·u·σ(g)·(1 + g·(1 − σ(g)))   (d/dg of g·σ(g), since σ' = σ(1−σ))
    //   dup   += dout·g·σ(g)
    int blocks = (int)((n + 4095) / 4096);
    TS_SPLIT(blocks, n > TS_PAR_MIN, lo, hi,
             swiglu_backward_span(dgate, dup, dout, gate, up, 4096L * lo, 4096L * hi < n ? 4096L * hi : n));
}

/* ------------------------------------------------------------------ */
/* Cross-entropy                                                       */
/* ------------------------------------------------------------------ */

//! [crossentropy]
static void crossentropy_rows(float *losses, const float *logits, const int *targets, int lo, int hi, int V) {
    for (int n = lo; n < hi; n++) {
        const float *z = logits + (size_t)n * V;
        // −log softmax(z)[y] = logsumexp(z) − z_y
        losses[n] = targets[n] == TS_IGNORE ? 0.0f : ts_logsumexp(z, V) - z[targets[n]];
    }
}

int crossentropy_forward(float *losses, const float *logits, const int *targets, int N, int V) {
    // losses (N), logits (N,V), targets (N)
    TS_SPLIT(N, (double)N * V > TS_PAR_MIN, lo, hi, crossentropy_rows(losses, logits, targets, lo, hi, V));
    int counted = 0;
    for (int n = 0; n < N; n++) counted += targets[n] != TS_IGNORE;
    return counted;
}

TS_VECTOR
static void crossentropy_backward_rows(float *dlogits, const float *dloss, const float *logits,
                                       const int *targets, int lo, int hi, int V) {
    for (int n = lo; n < hi; n++) {
        if (targets[n] == TS_IGNORE) continue;
        const float *z = logits + (size_t)n * V;
        float *dz = dlogits + (size_t)n * V;
        float lse = ts_logsumexp(z, V);
        // softmax(z)_v = e^(z_v − logsumexp(z))
        for (int v = 0; v < V; v++) dz[v] += dloss[n] * fast_expf(z[v] - lse);
        dz[targets[n]] -= dloss[n];
    }
}

void crossentropy_backward(float *dlogits, const float *dloss, const float *logits,
                           const int *targets, int N, int V) {
    // forward: loss = logsumexp(z) − z_y
    //   dz_v += dloss·(softmax(z)_v − [v == y]); ignored rows get nothing
    TS_SPLIT(N, (double)N * V > TS_PAR_MIN, lo, hi,
             crossentropy_backward_rows(dlogits, dloss, logits, targets, lo, hi, V));
}
//! [crossentropy]
