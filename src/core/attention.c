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
 * below is the same algebra as plain loops. Against per-head loops of dot
 * products over D, measured for T = 64..256, D = 16..64, 32 heads, forward +
 * backward: with OpenBLAS the full T x T products were 2–4x faster on one
 * thread; with BLAS=0 1.2–1.7x faster from T = 128 on. The products run on
 * blocks of 32 query rows, which skip the keys after the block (masked for
 * every row in it): 5/8 of the full products at T = 128, with the same bits
 * (the skipped terms are exact zeros).
 *
 * attention_head_forward()/attention_head_backward() compute one head with
 * any row strides; chapter 3's grouped-query attention (gqa_attention.c)
 * calls them too, so with as many key/value heads as query heads it gives
 * exactly these bits.
 *
 * Heads are independent, so a head's gradients are only ever written by one
 * thread, in a fixed order: results do not depend on thread timing.
 */
#include "core/ops.h"

#include <math.h>

#include "core/attention_util.h"

/* Queries are taken in blocks of this many rows: a block's rows see keys
 * 0..(its last row) only, so the products skip the keys after the block,
 * which every row of the block would mask. With T = 128 that is 5/8 of the
 * full T x T products; smaller blocks skip more but make more, smaller calls. */
enum { ATT_BLOCK = 32 };

static int min_int(int a, int b) { return a < b ? a : b; }

/* Rows [r0, r1) of P: softmax over s <= t of the scores already there, 0 for s > t. */
TS_VECTOR
static void causal_softmax_rows(float *P, int T, int r0, int r1) {
    for (int t = r0; t < r1; t++) {
        float *p = P + (size_t)t * T;
        ts_softmax_row(p, p, t + 1);
        for (int s = t + 1; s < T; s++) p[s] = 0.0f;
    }
}

/* Rows [r0, r1) of dS, which holds dP in columns [0, r1):
 * dS[t][s] = P[t][s]·(dP[t][s] − Σ_s' P[t][s']·dP[t][s']) for s <= t, 0 for t < s < r1. */
TS_VECTOR
static void causal_softmax_backward_rows(float *dS, const float *P, int T, int r0, int r1) {
    for (int t = r0; t < r1; t++) {
        const float *p = P + (size_t)t * T;
        float *d = dS + (size_t)t * T;
        float pdp = ts_dot(p, d, t + 1);
        for (int s = 0; s <= t; s++) d[s] = p[s] * (d[s] - pdp);
        for (int s = t + 1; s < r1; s++) d[s] = 0.0f; /* masked scores get no gradient */
    }
}

//! [attention-forward]
void attention_head_forward(float *out, float *P, const float *q, const float *k, const float *v, int T, int Dqk,
                            int Dv, int ldq, int ldk, int ldv, int ldo, float scale) {
    for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
        int r1 = min_int(r0 + ATT_BLOCK, T), rows = r1 - r0;
        // S[r0:r1, 0:r1] = scale · Q[r0:r1]·K[0:r1]ᵀ, into P (keys after the block are masked for all its rows)
        ts_sgemm(0, 1, rows, r1, Dqk, scale, q + (size_t)r0 * ldq, ldq, k, ldk, 0.0f, P + (size_t)r0 * T, T);
        causal_softmax_rows(P, T, r0, r1);
        // out[r0:r1] = P[r0:r1, 0:r1]·V[0:r1]
        ts_sgemm(0, 0, rows, Dv, r1, 1.0f, P + (size_t)r0 * T, T, v, ldv, 0.0f, out + (size_t)r0 * ldo, ldo);
    }
}
//! [attention-forward]

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int B, int T, int H, int Dqk, int Dv, float scale) {
    // out (B,T,H,Dv), att (B,H,T,T), q (B,T,H,Dqk), k (B,T,H,Dqk), v (B,T,H,Dv)
    TS_OMP_HEADS
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            attention_head_forward(out + bthd(b, 0, h, T, H, Dv), att + ((size_t)b * H + h) * T * T,
                                   q + bthd(b, 0, h, T, H, Dqk), k + bthd(b, 0, h, T, H, Dqk),
                                   v + bthd(b, 0, h, T, H, Dv), T, Dqk, Dv, H * Dqk, H * Dqk, H * Dv, H * Dv,
                                   scale);
}

//! [attention-backward]
void attention_head_backward(float *dq, float *dk, float *dv, float *dS, const float *dout, const float *P,
                             const float *q, const float *k, const float *v, int T, int Dqk, int Dv, int ldq,
                             int ldk, int ldv, int ldo, float scale) {
    // Query rows t see keys s <= t, so row block [r0, r1) needs dS only in columns [0, r1),
    // and key block [c0, c1) gets gradient only from query rows [c0, T).
    for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
        int r1 = min_int(r0 + ATT_BLOCK, T), rows = r1 - r0;
        // forward: out = P·V  →  dP = dout·Vᵀ
        ts_sgemm(0, 1, rows, r1, Dv, 1.0f, dout + (size_t)r0 * ldo, ldo, v, ldv, 0.0f, dS + (size_t)r0 * T, T);
        // forward: P[t] = softmax(S[t])  →  dS[t][s] = P[t][s]·(dP[t][s] − Σ_s' P[t][s']·dP[t][s'])
        causal_softmax_backward_rows(dS, P, T, r0, r1);
        // forward: S = scale·Q·Kᵀ  →  dQ += scale·dS·K
        if (dq)
            ts_sgemm(0, 0, rows, Dqk, r1, scale, dS + (size_t)r0 * T, T, k, ldk, 1.0f, dq + (size_t)r0 * ldq, ldq);
    }
    for (int c0 = 0; c0 < T; c0 += ATT_BLOCK) {
        int c1 = min_int(c0 + ATT_BLOCK, T), cols = c1 - c0;
        // dV += Pᵀ·dout  and  dK += scale·dSᵀ·Q, over the query rows [c0, T) that see these keys
        if (dv)
            ts_sgemm(1, 0, cols, Dv, T - c0, 1.0f, P + (size_t)c0 * T + c0, T, dout + (size_t)c0 * ldo, ldo, 1.0f,
                     dv + (size_t)c0 * ldv, ldv);
        if (dk)
            ts_sgemm(1, 0, cols, Dqk, T - c0, scale, dS + (size_t)c0 * T + c0, T, q + (size_t)c0 * ldq, ldq, 1.0f,
                     dk + (size_t)c0 * ldk, ldk);
    }
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
            attention_head_backward(dq ? dq + qk0 : NULL, dk ? dk + qk0 : NULL, dv ? dv + v0 : NULL,
                                    scratch + (size_t)attention_thread_id() * T * T, dout + v0,
                                    att + ((size_t)b * H + h) * T * T, q + qk0, k + qk0, v + v0, T, Dqk, Dv,
                                    H * Dqk, H * Dqk, H * Dv, H * Dv, scale);
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
