/**
 * @file gqa_attention.c
 * @brief Causal attention with shared key/value heads (chapter 3), forward and backward.
 *
 * H query heads share Hkv key/value heads in groups of G = H/Hkv: query head
 * h = j·G + g (g = 0..G-1) reads key/value head j. For one sequence:
 *
 *     S_h[t][s] = scale · q_{t,h}·k_{s,j}       (s <= t)
 *     P_h[t]    = softmax(S_h[t][0..t])
 *     out_{t,h} = Σ_{s<=t} P_h[t][s] · v_{s,j}
 *
 * Per query head this is chapter 2's attention (src/core/attention.c) with
 * different strides: the key/value rows are Hkv·D floats apart instead of H·D.
 * The head functions below are attention.c's (attention_head_forward() and
 * attention_head_backward()) with those strides, so with Hkv = H the results
 * are the same bits.
 *
 * The backward is where sharing shows. k_{s,j} and v_{s,j} enter the scores
 * and outputs of all G query heads of group j, so their gradients are sums
 * over the group:
 *
 *     dk_{s,j} = Σ_{g<G} scale · Σ_t dS_{jG+g}[t][s] · q_{t,jG+g}
 *     dv_{s,j} = Σ_{g<G} Σ_t P_{jG+g}[t][s] · dout_{t,jG+g}
 *
 * The threads split the (sequence, key/value head) pairs: one thread owns a
 * group, walks its query heads in order g = 0..G-1 and adds each one's share
 * into dk/dv. No two threads ever write the same dk/dv row, and the order of
 * the additions never depends on the thread count, so results are
 * deterministic without atomics or per-thread copies.
 */
#include "core/gqa_attention.h"

#include <math.h>

#include "core/ops.h"

#include "core/attention_util.h"

/* One query head against its key/value head: attention.c's head functions,
 * with query rows H·D floats apart and key/value rows Hkv·D apart. */
static void head_forward(float *out, float *P, const float *q, const float *k, const float *v,
                         int T, int H, int Hkv, int Dqk, int Dv, float scale) {
    attention_head_forward(out, P, q, k, v, T, Dqk, Dv, H * Dqk, Hkv * Dqk, Hkv * Dv, H * Dv, scale);
}

//! [gqa-attention-forward]
void gqa_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                           int B, int T, int H, int Hkv, int Dqk, int Dv, float scale) {
    // out (B,T,H,Dv), att (B,H,T,T), q (B,T,H,Dqk), k (B,T,Hkv,Dqk), v (B,T,Hkv,Dv)
    int G = H / Hkv; // query heads per key/value head
    TS_OMP_HEADS
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int j = h / G; // the key/value head query head h reads
            head_forward(out + bthd(b, 0, h, T, H, Dv), att + ((size_t)b * H + h) * T * T,
                         q + bthd(b, 0, h, T, H, Dqk), k + bthd(b, 0, j, T, Hkv, Dqk),
                         v + bthd(b, 0, j, T, Hkv, Dv), T, H, Hkv, Dqk, Dv, scale);
        }
}
//! [gqa-attention-forward]

/* One query head's backward; dk/dv (this head's key/value head) are added to,
 * so calling it for every head of a group sums the group. dS (T,T) scratch. */
static void head_backward(float *dq, float *dk, float *dv, float *dS, const float *dout,
                          const float *P, const float *q, const float *k, const float *v,
                          int T, int H, int Hkv, int Dqk, int Dv, float scale) {
    attention_head_backward(dq, dk, dv, dS, dout, P, q, k, v, T, Dqk, Dv, H * Dqk, Hkv * Dqk, Hkv * Dv, H * Dv,
                            scale);
}

//! [gqa-attention-backward]
void gqa_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                            const float *att, const float *q, const float *k, const float *v,
                            int B, int T, int H, int Hkv, int Dqk, int Dv, float scale) {
    // dq, q (B,T,H,Dqk), dk, k (B,T,Hkv,Dqk), dv, v (B,T,Hkv,Dv), dout (B,T,H,Dv),
    // att (B,H,T,T), scratch (threads,T,T)
    int G = H / Hkv;
    TS_OMP_HEADS
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < Hkv; j++) { // one thread owns key/value head j of sequence b ...
            size_t k0 = bthd(b, 0, j, T, Hkv, Dqk), v0 = bthd(b, 0, j, T, Hkv, Dv);
            for (int g = 0; g < G; g++) { // ... and adds the share of each of its query heads, in order
                int h = j * G + g;
                size_t q0 = bthd(b, 0, h, T, H, Dqk), o0 = bthd(b, 0, h, T, H, Dv);
                head_backward(dq ? dq + q0 : NULL, dk ? dk + k0 : NULL, dv ? dv + v0 : NULL,
                              scratch + (size_t)attention_thread_id() * T * T, dout + o0,
                              att + ((size_t)b * H + h) * T * T, q + q0, k + k0, v + v0, T, H, Hkv,
                              Dqk, Dv, scale);
            }
        }
    }
}
//! [gqa-attention-backward]

/* ------------------------------------------------------------------ */
/* Reference: the equations as plain loops                             */
/* ------------------------------------------------------------------ */

void gqa_attention_forward_ref(float *out, float *att, const float *q, const float *k, const float *v,
                               int B, int T, int H, int Hkv, int Dqk, int Dv, float scale) {
    int G = H / Hkv;
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            int j = h / G;
            for (int t = 0; t < T; t++) {
                float *p = att + (((size_t)b * H + h) * T + t) * T;
                float maxval = -INFINITY;
                for (int s = 0; s <= t; s++) {
                    float dot = 0.0f;
                    for (int d = 0; d < Dqk; d++)
                        dot += q[bthd(b, t, h, T, H, Dqk) + d] * k[bthd(b, s, j, T, Hkv, Dqk) + d];
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
                    for (int s = 0; s <= t; s++) o += p[s] * v[bthd(b, s, j, T, Hkv, Dv) + d];
                    out[bthd(b, t, h, T, H, Dv) + d] = o;
                }
            }
        }
    }
}

void gqa_attention_backward_ref(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                                const float *att, const float *q, const float *k, const float *v,
                                int B, int T, int H, int Hkv, int Dqk, int Dv, float scale) {
    int G = H / Hkv;
    float *ds = scratch; /* (T,T): dP, then dS, of one query head */
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            int j = h / G;
            const float *p = att + ((size_t)b * H + h) * T * T;
            // out_t = Σ_s P[t][s]·v_s  →  dP[t][s] = dout_t·v_s,  dv_s += Σ_t P[t][s]·dout_t
            for (int t = 0; t < T; t++)
                for (int s = 0; s <= t; s++) {
                    float dot = 0.0f;
                    for (int d = 0; d < Dv; d++)
                        dot += dout[bthd(b, t, h, T, H, Dv) + d] * v[bthd(b, s, j, T, Hkv, Dv) + d];
                    ds[(size_t)t * T + s] = dot;
                }
            if (dv) // every query head of the group adds its share to the shared v_s
                for (int s = 0; s < T; s++)
                    for (int d = 0; d < Dv; d++) {
                        float sum = 0.0f;
                        for (int t = s; t < T; t++)
                            sum += p[(size_t)t * T + s] * dout[bthd(b, t, h, T, H, Dv) + d];
                        dv[bthd(b, s, j, T, Hkv, Dv) + d] += sum;
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
                            sum += ds[(size_t)t * T + s] * k[bthd(b, s, j, T, Hkv, Dqk) + d];
                        dq[bthd(b, t, h, T, H, Dqk) + d] += scale * sum;
                    }
            if (dk) // and to the shared k_s
                for (int s = 0; s < T; s++)
                    for (int d = 0; d < Dqk; d++) {
                        float sum = 0.0f;
                        for (int t = s; t < T; t++)
                            sum += ds[(size_t)t * T + s] * q[bthd(b, t, h, T, H, Dqk) + d];
                        dk[bthd(b, s, j, T, Hkv, Dqk) + d] += scale * sum;
                    }
        }
    }
}
