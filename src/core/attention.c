/**
 * @file attention.c
 * @brief Causal scaled dot-product attention, forward and backward.
 *
 * For one sequence and one head (Vaswani et al. 2017, eq. 1, with a causal mask):
 *
 *     S[t][s] = scale · q_t·k_s           (s <= t)
 *     P[t]    = softmax(S[t][0..t])       (saved in att; 0 for s > t)
 *     out_t   = Σ_{s<=t} P[t][s] · v_s
 *
 * q and k have Dqk dims, v and out Dv dims (they differ in MLA, where the
 * query/key carry an extra RoPE part).
 *
 * The fast path gives each (batch, head) pair to one thread: the pairs are
 * independent, so no gradient is ever written by two threads, and every sum
 * runs in the same order whatever the thread count. Inside a head the loops
 * run over contiguous head dimensions (dot products and axpys over D), which
 * vectorise. Measured against calling sgemm per head for T = 64..256,
 * D = 16..64 (two 2-core runs, see the chapter): the per-head loops win, since
 * those matrices are too small for sgemm's packing and threading to pay off,
 * and half of S is masked anyway.
 */
#include "core/ops.h"

#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Element (b,t,h,0) of a (B,T,H,D) tensor. */
static inline size_t bthd(int b, int t, int h, int T, int H, int D) {
    return (((size_t)b * T + t) * H + h) * D;
}

/* ------------------------------------------------------------------ */
/* Fast path: one (b,h) head per thread, vectorised over D             */
/* ------------------------------------------------------------------ */

//! [attention-forward]
/* One head: q, k, v, out point at (b,0,h,0); rows are `stride` floats apart.
 * att (T,T) is this head's probability matrix. */
TS_KERNEL
static void head_forward(float *out, float *att, const float *q, const float *k, const float *v,
                         int T, int Dqk, int Dv, size_t qk_stride, size_t v_stride, float scale) {
    for (int t = 0; t < T; t++) {
        const float *qt = q + t * qk_stride;
        float *p = att + (size_t)t * T;
        // S[t][s] = scale · q_t·k_s, then a max-subtracted softmax over s <= t
        float maxval = -INFINITY;
        for (int s = 0; s <= t; s++) {
            const float *ks = k + s * qk_stride;
            float dot = 0.0f;
            TS_OMP(simd reduction(+ : dot))
            for (int d = 0; d < Dqk; d++) dot += qt[d] * ks[d];
            p[s] = scale * dot;
            if (p[s] > maxval) maxval = p[s];
        }
        float sum = 0.0f;
        for (int s = 0; s <= t; s++) {
            p[s] = expf(p[s] - maxval);
            sum += p[s];
        }
        float inv = 1.0f / sum;
        for (int s = 0; s <= t; s++) p[s] *= inv;
        for (int s = t + 1; s < T; s++) p[s] = 0.0f;
        // out_t = Σ_s P[t][s] · v_s
        float *ot = out + t * v_stride;
        for (int d = 0; d < Dv; d++) ot[d] = 0.0f;
        for (int s = 0; s <= t; s++) {
            const float *vs = v + s * v_stride;
            float ps = p[s];
            TS_OMP(simd)
            for (int d = 0; d < Dv; d++) ot[d] += ps * vs[d];
        }
    }
}
//! [attention-forward]

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int B, int T, int H, int Dqk, int Dv, float scale) {
    // out (B,T,H,Dv), att (B,H,T,T), q (B,T,H,Dqk), k (B,T,H,Dqk), v (B,T,H,Dv)
    TS_OMP(parallel for collapse(2) schedule(static))
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            head_forward(out + bthd(b, 0, h, T, H, Dv), att + ((size_t)b * H + h) * T * T,
                         q + bthd(b, 0, h, T, H, Dqk), k + bthd(b, 0, h, T, H, Dqk),
                         v + bthd(b, 0, h, T, H, Dv), T, Dqk, Dv, (size_t)H * Dqk,
                         (size_t)H * Dv, scale);
}

//! [attention-backward]
/* One head, as head_forward(); dp (T) is scratch for one row of dP.
 * Each row t adds into dv_s and dk_s for s <= t in increasing t: a fixed order. */
TS_KERNEL
static void head_backward(float *dq, float *dk, float *dv, float *dp, const float *dout,
                          const float *att, const float *q, const float *k, const float *v,
                          int T, int Dqk, int Dv, size_t qk_stride, size_t v_stride, float scale) {
    for (int t = 0; t < T; t++) {
        const float *p = att + (size_t)t * T;
        const float *dout_t = dout + t * v_stride;
        // forward: out_t = Σ_s P[t][s]·v_s
        //   dP[t][s] = dout_t·v_s,   dv_s += P[t][s]·dout_t
        for (int s = 0; s <= t; s++) {
            const float *vs = v + s * v_stride;
            float dot = 0.0f;
            TS_OMP(simd reduction(+ : dot))
            for (int d = 0; d < Dv; d++) dot += dout_t[d] * vs[d];
            dp[s] = dot;
            if (dv) {
                float *dvs = dv + s * v_stride;
                float ps = p[s];
                TS_OMP(simd)
                for (int d = 0; d < Dv; d++) dvs[d] += ps * dout_t[d];
            }
        }
        // forward: P[t] = softmax(S[t])
        //   dS[t][s] = P[t][s]·(dP[t][s] − Σ_s' P[t][s']·dP[t][s'])
        float pdp = 0.0f;
        for (int s = 0; s <= t; s++) pdp += p[s] * dp[s];
        // forward: S[t][s] = scale · q_t·k_s
        //   dq_t += scale·Σ_s dS[t][s]·k_s,   dk_s += scale·dS[t][s]·q_t
        const float *qt = q + t * qk_stride;
        float *dqt = dq ? dq + t * qk_stride : NULL;
        for (int s = 0; s <= t; s++) {
            float ds = scale * p[s] * (dp[s] - pdp);
            if (dqt) {
                const float *ks = k + s * qk_stride;
                TS_OMP(simd)
                for (int d = 0; d < Dqk; d++) dqt[d] += ds * ks[d];
            }
            if (dk) {
                float *dks = dk + s * qk_stride;
                TS_OMP(simd)
                for (int d = 0; d < Dqk; d++) dks[d] += ds * qt[d];
            }
        }
    }
}
//! [attention-backward]

void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *att, const float *q, const float *k, const float *v,
                        int B, int T, int H, int Dqk, int Dv, float scale) {
    // dq, q (B,T,H,Dqk), dk, k (B,T,H,Dqk), dv, v, dout (B,T,H,Dv), att (B,H,T,T),
    // scratch (threads,T,T)
    TS_OMP(parallel for collapse(2) schedule(static))
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
#ifdef _OPENMP
            float *dp = scratch + (size_t)omp_get_thread_num() * T * T;
#else
            float *dp = scratch;
#endif
            size_t qk0 = bthd(b, 0, h, T, H, Dqk), v0 = bthd(b, 0, h, T, H, Dv);
            head_backward(dq ? dq + qk0 : NULL, dk ? dk + qk0 : NULL, dv ? dv + v0 : NULL, dp, dout + bthd(b, 0, h, T, H, Dv),
                          att + ((size_t)b * H + h) * T * T, q + bthd(b, 0, h, T, H, Dqk),
                          k + bthd(b, 0, h, T, H, Dqk), v + bthd(b, 0, h, T, H, Dv), T, Dqk, Dv,
                          (size_t)H * Dqk, (size_t)H * Dv, scale);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Reference: the equations as plain loops                             */
/* ------------------------------------------------------------------ */

void attention_forward_ref(float *out, float *att, const float *q, const float *k,
                           const float *v, int B, int T, int H, int Dqk, int Dv, float scale) {
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            for (int t = 0; t < T; t++) {
                float *p = att + (((size_t)b * H + h) * T + t) * T;
                float maxval = -INFINITY;
                for (int s = 0; s <= t; s++) {
                    float dot = 0.0f;
                    for (int d = 0; d < Dqk; d++)
                        dot += q[bthd(b, t, h, T, H, Dqk) + d] * k[bthd(b, s, h, T, H, Dqk) + d];
                    p[s] = scale * dot;
                    if (p[s] > maxval) maxval = p[s];
                }
                float sum = 0.0f;
                for (int s = 0; s <= t; s++) {
                    p[s] = expf(p[s] - maxval);
                    sum += p[s];
                }
                for (int s = 0; s < T; s++) p[s] = s <= t ? p[s] / sum : 0.0f;
                for (int d = 0; d < Dv; d++) {
                    float o = 0.0f;
                    for (int s = 0; s <= t; s++) o += p[s] * v[bthd(b, s, h, T, H, Dv) + d];
                    out[bthd(b, t, h, T, H, Dv) + d] = o;
                }
            }
        }
    }
}

void attention_backward_ref(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                            const float *att, const float *q, const float *k, const float *v,
                            int B, int T, int H, int Dqk, int Dv, float scale) {
    float *ds = scratch; /* (T,T): dP, then dS, of one head */
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            const float *p = att + ((size_t)b * H + h) * T * T;
            // out_t = Σ_s P[t][s]·v_s  →  dP[t][s] = dout_t·v_s,  dv_s += Σ_t P[t][s]·dout_t
            for (int t = 0; t < T; t++)
                for (int s = 0; s <= t; s++) {
                    float dot = 0.0f;
                    for (int d = 0; d < Dv; d++)
                        dot += dout[bthd(b, t, h, T, H, Dv) + d] * v[bthd(b, s, h, T, H, Dv) + d];
                    ds[(size_t)t * T + s] = dot;
                }
            for (int s = 0; s < T && dv; s++)
                for (int d = 0; d < Dv; d++) {
                    float sum = 0.0f;
                    for (int t = s; t < T; t++)
                        sum += p[(size_t)t * T + s] * dout[bthd(b, t, h, T, H, Dv) + d];
                    dv[bthd(b, s, h, T, H, Dv) + d] += sum;
                }
            // P[t] = softmax(S[t])  →  dS[t][s] = P[t][s]·(dP[t][s] − Σ_s' P[t][s']·dP[t][s'])
            for (int t = 0; t < T; t++) {
                float pdp = 0.0f;
                for (int s = 0; s <= t; s++) pdp += p[(size_t)t * T + s] * ds[(size_t)t * T + s];
                for (int s = 0; s <= t; s++)
                    ds[(size_t)t * T + s] = p[(size_t)t * T + s] * (ds[(size_t)t * T + s] - pdp);
            }
            // S[t][s] = scale·q_t·k_s  →  dq_t += scale·Σ_s dS[t][s]·k_s,  dk_s += scale·Σ_t dS[t][s]·q_t
            for (int t = 0; t < T && dq; t++)
                for (int d = 0; d < Dqk; d++) {
                    float sum = 0.0f;
                    for (int s = 0; s <= t; s++)
                        sum += ds[(size_t)t * T + s] * k[bthd(b, s, h, T, H, Dqk) + d];
                    dq[bthd(b, t, h, T, H, Dqk) + d] += scale * sum;
                }
            for (int s = 0; s < T && dk; s++)
                for (int d = 0; d < Dqk; d++) {
                    float sum = 0.0f;
                    for (int t = s; t < T; t++)
                        sum += ds[(size_t)t * T + s] * q[bthd(b, t, h, T, H, Dqk) + d];
                    dk[bthd(b, s, h, T, H, Dqk) + d] += scale * sum;
                }
        }
    }
}
