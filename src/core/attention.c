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
 * The fast path writes each head as matrix products, S = scale·Q·Kᵀ and
 * out = P·V (and four products in the backward), on ts_sgemm(); the reference
 * below is the same algebra as plain loops. The full T x T product wastes the
 * masked half, yet against per-head loops of dot products over D, measured
 * for T = 64..256, D = 16..64, 32 heads, forward + backward: with OpenBLAS it
 * was 2–4x faster on one thread; with BLAS=0 it was 1.2–1.7x faster from
 * T = 128 on, while at T = 64 it ranged from 1.4x faster to 1.6x slower over
 * two machines and 1–2 threads (such small products barely repay sgemm's
 * packing). The forward's remaining cost is mostly expf.
 *
 * Heads are independent, so a head's gradients are only ever written by one
 * thread, in a fixed order: results do not depend on thread timing.
 */
#include "core/ops.h"

#include <math.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Element (b,t,h,0) of a (B,T,H,D) tensor. */
static inline size_t bthd(int b, int t, int h, int T, int H, int D) {
    return (((size_t)b * T + t) * H + h) * D;
}

/* ------------------------------------------------------------------ */
/* Fast path: each head as two matrix products and a softmax           */
/* ------------------------------------------------------------------ */

/* The (b,h) loops below spread the heads over OpenMP threads; each head's
 * products then run single-threaded inside the region. The project's own sgemm
 * is written for that, and so is the OpenMP build of OpenBLAS that the Makefile
 * links (it sees it is inside a parallel region and stays on its thread). Only
 * the pthread build of OpenBLAS would set its own thread pool against OpenMP's,
 * so with it the heads run one after another and OpenBLAS threads each product. */
#if defined(TS_USE_BLAS) && !defined(TS_BLAS_OPENMP)
#define TS_OMP_HEADS
#else
#define TS_OMP_HEADS TS_OMP(parallel for collapse(2) schedule(static) if ((double)B * H * T * T * (Dqk + Dv) > 1e6))
#endif

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Row t of P (T,T): softmax over s <= t of the scores already in it, 0 for s > t. */
static void causal_softmax(float *P, int T) {
    for (int t = 0; t < T; t++) {
        float *p = P + (size_t)t * T;
        float maxval = -INFINITY;
        for (int s = 0; s <= t; s++) maxval = p[s] > maxval ? p[s] : maxval;
        float sum = 0.0f;
        for (int s = 0; s <= t; s++) {
            p[s] = expf(p[s] - maxval);
            sum += p[s];
        }
        float inv = 1.0f / sum;
        for (int s = 0; s <= t; s++) p[s] *= inv;
        for (int s = t + 1; s < T; s++) p[s] = 0.0f;
    }
}

//! [attention-forward]
/* One head: q, k, v, out point at element (b,0,h,0) of their (B,T,H,D) tensors,
 * so a head's rows are H*D floats apart: sgemm's leading dimension. P (T,T). */
static void head_forward(float *out, float *P, const float *q, const float *k, const float *v,
                         int T, int H, int Dqk, int Dv, float scale) {
    // S = scale · Q·Kᵀ (T,T), into P; the masked upper triangle is computed and then dropped
    ts_sgemm(0, 1, T, T, Dqk, scale, q, H * Dqk, k, H * Dqk, 0.0f, P, T);
    causal_softmax(P, T);
    // out = P·V (T,Dv)
    ts_sgemm(0, 0, T, Dv, T, 1.0f, P, T, v, H * Dv, 0.0f, out, H * Dv);
}
//! [attention-forward]

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int B, int T, int H, int Dqk, int Dv, float scale) {
    // out (B,T,H,Dv), att (B,H,T,T), q (B,T,H,Dqk), k (B,T,H,Dqk), v (B,T,H,Dv)
    TS_OMP_HEADS
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            head_forward(out + bthd(b, 0, h, T, H, Dv), att + ((size_t)b * H + h) * T * T,
                         q + bthd(b, 0, h, T, H, Dqk), k + bthd(b, 0, h, T, H, Dqk),
                         v + bthd(b, 0, h, T, H, Dv), T, H, Dqk, Dv, scale);
}

//! [attention-backward]
/* One head, as head_forward(); dS (T,T) is scratch. */
static void head_backward(float *dq, float *dk, float *dv, float *dS, const float *dout,
                          const float *P, const float *q, const float *k, const float *v,
                          int T, int H, int Dqk, int Dv, float scale) {
    // forward: out = P·V  →  dP = dout·Vᵀ,  dV += Pᵀ·dout
    ts_sgemm(0, 1, T, T, Dv, 1.0f, dout, H * Dv, v, H * Dv, 0.0f, dS, T);
    if (dv) ts_sgemm(1, 0, T, Dv, T, 1.0f, P, T, dout, H * Dv, 1.0f, dv, H * Dv);
    // forward: P[t] = softmax(S[t])  →  dS[t][s] = P[t][s]·(dP[t][s] − Σ_s' P[t][s']·dP[t][s'])
    for (int t = 0; t < T; t++) {
        const float *p = P + (size_t)t * T;
        float *d = dS + (size_t)t * T;
        float pdp = 0.0f;
        for (int s = 0; s <= t; s++) pdp += p[s] * d[s];
        for (int s = 0; s <= t; s++) d[s] = p[s] * (d[s] - pdp);
        for (int s = t + 1; s < T; s++) d[s] = 0.0f; /* masked scores get no gradient */
    }
    // forward: S = scale·Q·Kᵀ  →  dQ += scale·dS·K,  dK += scale·dSᵀ·Q
    if (dq) ts_sgemm(0, 0, T, Dqk, T, scale, dS, T, k, H * Dqk, 1.0f, dq, H * Dqk);
    if (dk) ts_sgemm(1, 0, T, Dqk, T, scale, dS, T, q, H * Dqk, 1.0f, dk, H * Dqk);
}
//! [attention-backward]

void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *att, const float *q, const float *k, const float *v,
                        int B, int T, int H, int Dqk, int Dv, float scale) {
    // dq, q (B,T,H,Dqk), dk, k (B,T,H,Dqk), dv, v, dout (B,T,H,Dv), att (B,H,T,T),
    // scratch (threads,T,T)
    TS_OMP_HEADS
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            size_t qk0 = bthd(b, 0, h, T, H, Dqk), v0 = bthd(b, 0, h, T, H, Dv);
            head_backward(dq ? dq + qk0 : NULL, dk ? dk + qk0 : NULL, dv ? dv + v0 : NULL,
                          scratch + (size_t)thread_id() * T * T, dout + v0,
                          att + ((size_t)b * H + h) * T * T, q + qk0, k + qk0, v + v0, T, H, Dqk,
                          Dv, scale);
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
            if (dv)
                for (int s = 0; s < T; s++)
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
            if (dq)
                for (int t = 0; t < T; t++)
                    for (int d = 0; d < Dqk; d++) {
                        float sum = 0.0f;
                        for (int s = 0; s <= t; s++)
                            sum += ds[(size_t)t * T + s] * k[bthd(b, s, h, T, H, Dqk) + d];
                        dq[bthd(b, t, h, T, H, Dqk) + d] += scale * sum;
                    }
            if (dk)
                for (int s = 0; s < T; s++)
                    for (int d = 0; d < Dqk; d++) {
                        float sum = 0.0f;
                        for (int t = s; t < T; t++)
                            sum += ds[(size_t)t * T + s] * q[bthd(b, t, h, T, H, Dqk) + d];
                        dk[bthd(b, s, h, T, H, Dqk) + d] += scale * sum;
                    }
        }
    }
}
