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
#include <string.h>

#include "core/common.h"

/* Parallelise a row loop only when it is big enough to pay for the threads. */
#define TS_PAR_MIN 65536.0

/* ------------------------------------------------------------------ */
/* Embedding                                                           */
/* ------------------------------------------------------------------ */

void embedding_forward(float *out, const int *tokens, const float *table, int N, int C) {
    // out (N,C), tokens (N), table (V,C)
    TS_OMP(parallel for schedule(static) if ((double)N * C > TS_PAR_MIN))
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, table + (size_t)tokens[n] * C, (size_t)C * sizeof(float));
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
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                     int N, int C, int in_stride, int out_stride, float eps) {
    // out (N,C) rows out_stride apart, rstd (N), inp (N,C) rows in_stride apart, weight (C)
    TS_OMP(parallel for schedule(static) if ((double)N * C > TS_PAR_MIN))
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * in_stride;
        float *y = out + (size_t)n * out_stride;
        float ss = 0.0f;
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float r = 1.0f / sqrtf(ss / (float)C + eps);
        if (rstd) rstd[n] = r;
        for (int c = 0; c < C; c++) y[c] = x[c] * r * weight[c];
    }
}

void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, const float *rstd,
                      int N, int C, int in_stride, int out_stride) {
    // forward: y_c = x_c · r · w_c,  r = (Σ_j x_j²/C + eps)^(−1/2),  ∂r/∂x_c = −r³·x_c/C
    //   dx_c += r·w_c·dy_c − (r³/C)·x_c·Σ_j dy_j·w_j·x_j
    if (dinp) {
        TS_OMP(parallel for schedule(static) if ((double)N * C > TS_PAR_MIN))
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * in_stride;
            const float *dy = dout + (size_t)n * out_stride;
            float *dx = dinp + (size_t)n * in_stride;
            float r = rstd[n];
            float dot = 0.0f;
            for (int c = 0; c < C; c++) dot += dy[c] * weight[c] * x[c];
            float k = r * r * r * dot / (float)C;
            for (int c = 0; c < C; c++) dx[c] += r * weight[c] * dy[c] - k * x[c];
        }
    }
    //   dw_c += Σ_n dy_c·x_c·r   (rows in order: a sum over rows)
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
void rope_forward(float *x, const int *pos, int N, int H, int row_stride, int head_stride,
                  int dim, const float *cos_t, const float *sin_t) {
    // x (N, row_stride), head h at h*head_stride, rotated dims [0, dim); pos (N)
    int half = dim / 2;
    TS_OMP(parallel for schedule(static) if ((double)N * H * dim > TS_PAR_MIN))
    for (int n = 0; n < N; n++) {
        const float *c = cos_t + (size_t)pos[n] * half;
        const float *s = sin_t + (size_t)pos[n] * half;
        for (int h = 0; h < H; h++) {
            float *xh = x + (size_t)n * row_stride + (size_t)h * head_stride;
            for (int i = 0; i < half; i++) {
                float x0 = xh[2 * i], x1 = xh[2 * i + 1];
                xh[2 * i] = x0 * c[i] - x1 * s[i];
                xh[2 * i + 1] = x0 * s[i] + x1 * c[i];
            }
        }
    }
}

void rope_backward(float *dx, const int *pos, int N, int H, int row_stride, int head_stride,
                   int dim, const float *cos_t, const float *sin_t) {
    // forward: (y0, y1) = R(φ)·(x0, x1) with R(φ) = [[cos φ, −sin φ], [sin φ, cos φ]]
    //   (dx0, dx1) = R(φ)ᵀ·(dy0, dy1) = R(−φ)·(dy0, dy1), in place like the forward
    int half = dim / 2;
    TS_OMP(parallel for schedule(static) if ((double)N * H * dim > TS_PAR_MIN))
    for (int n = 0; n < N; n++) {
        const float *c = cos_t + (size_t)pos[n] * half;
        const float *s = sin_t + (size_t)pos[n] * half;
        for (int h = 0; h < H; h++) {
            float *g = dx + (size_t)n * row_stride + (size_t)h * head_stride;
            for (int i = 0; i < half; i++) {
                float dy0 = g[2 * i], dy1 = g[2 * i + 1];
                g[2 * i] = dy0 * c[i] + dy1 * s[i];
                g[2 * i + 1] = -dy0 * s[i] + dy1 * c[i];
            }
        }
    }
}
//! [rope]

/* ------------------------------------------------------------------ */
/* Softmax                                                             */
/* ------------------------------------------------------------------ */

void softmax_forward(float *out, const float *inp, int N, int V) {
    // out (N,V), inp (N,V); subtracting the row max keeps expf from overflowing
    TS_OMP(parallel for schedule(static) if ((double)N * V > TS_PAR_MIN))
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * V;
        float *y = out + (size_t)n * V;
        float maxval = -INFINITY;
        for (int v = 0; v < V; v++) maxval = x[v] > maxval ? x[v] : maxval;
        float sum = 0.0f;
        for (int v = 0; v < V; v++) {
            y[v] = expf(x[v] - maxval);
            sum += y[v];
        }
        float inv = 1.0f / sum;
        for (int v = 0; v < V; v++) y[v] *= inv;
    }
}

void softmax_backward(float *dinp, const float *dout, const float *out, int N, int V) {
    // forward: y_v = exp(x_v) / Σ_u exp(x_u)  →  ∂y_u/∂x_v = y_u(δ_uv − y_v)
    //   dx_v += y_v·(dy_v − Σ_u dy_u·y_u)
    TS_OMP(parallel for schedule(static) if ((double)N * V > TS_PAR_MIN))
    for (int n = 0; n < N; n++) {
        const float *y = out + (size_t)n * V;
        const float *dy = dout + (size_t)n * V;
        float *dx = dinp + (size_t)n * V;
        float dot = 0.0f;
        for (int v = 0; v < V; v++) dot += dy[v] * y[v];
        for (int v = 0; v < V; v++) dx[v] += y[v] * (dy[v] - dot);
    }
}

/* ------------------------------------------------------------------ */
/* SwiGLU (Shazeer 2020)                                               */
/* ------------------------------------------------------------------ */

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void swiglu_forward(float *out, const float *gate, const float *up, long n) {
    // out, gate, up (n)
    TS_OMP(parallel for schedule(static) if (n > TS_PAR_MIN))
    for (long i = 0; i < n; i++) out[i] = gate[i] * sigmoidf(gate[i]) * up[i];
}

void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, long n) {
    // forward: out = g·σ(g)·u
    //   dgate += dout·u·σ(g)·(1 + g·(1 − σ(g)))   (d/dg of g·σ(g), since σ' = σ(1−σ))
    //   dup   += dout·g·σ(g)
    TS_OMP(parallel for schedule(static) if (n > TS_PAR_MIN))
    for (long i = 0; i < n; i++) {
        float g = gate[i], s = sigmoidf(g);
        if (dgate) dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        if (dup) dup[i] += dout[i] * g * s;
    }
}

/* ------------------------------------------------------------------ */
/* Cross-entropy                                                       */
/* ------------------------------------------------------------------ */

//! [crossentropy]
int crossentropy_forward(float *losses, const float *logits, const int *targets, int N, int V) {
    // losses (N), logits (N,V), targets (N)
    // −log softmax(z)[y] = logsumexp(z) − z_y, with logsumexp = m + log Σ exp(z − m), m = max z
    TS_OMP(parallel for schedule(static) if ((double)N * V > TS_PAR_MIN))
    for (int n = 0; n < N; n++) {
        if (targets[n] == TS_IGNORE) {
            losses[n] = 0.0f;
            continue;
        }
        const float *z = logits + (size_t)n * V;
        float maxval = -INFINITY;
        for (int v = 0; v < V; v++) maxval = z[v] > maxval ? z[v] : maxval;
        float sum = 0.0f;
        for (int v = 0; v < V; v++) sum += expf(z[v] - maxval);
        losses[n] = maxval + logf(sum) - z[targets[n]];
    }
    int counted = 0;
    for (int n = 0; n < N; n++) counted += targets[n] != TS_IGNORE;
    return counted;
}

void crossentropy_backward(float *dlogits, const float *dloss, const float *logits,
                           const int *targets, int N, int V) {
    // forward: loss = logsumexp(z) − z_y
    //   dz_v += dloss·(softmax(z)_v − [v == y]); ignored rows get nothing
    TS_OMP(parallel for schedule(static) if ((double)N * V > TS_PAR_MIN))
    for (int n = 0; n < N; n++) {
        if (targets[n] == TS_IGNORE) continue;
        const float *z = logits + (size_t)n * V;
        float *dz = dlogits + (size_t)n * V;
        float maxval = -INFINITY;
        for (int v = 0; v < V; v++) maxval = z[v] > maxval ? z[v] : maxval;
        float sum = 0.0f;
        for (int v = 0; v < V; v++) sum += expf(z[v] - maxval);
        float inv = 1.0f / sum;
        for (int v = 0; v < V; v++) {
            float p = expf(z[v] - maxval) * inv;
            dz[v] += dloss[n] * (p - (v == targets[n] ? 1.0f : 0.0f));
        }
    }
}
//! [crossentropy]
