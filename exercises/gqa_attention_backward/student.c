/**
 * @file student.c
 * @brief Exercise (chapter 3): write gqa_attention_backward(), the backward of
 *        causal attention whose H query heads share Hkv key/value heads.
 *
 * The forward (src/core/gqa_attention.c, gqa_attention_forward) lets query
 * head h = j·G + g (g = 0..G-1, G = H/Hkv) attend with key/value head j:
 *
 *     S_h[t][s] = scale · q_{t,h}·k_{s,j}   (s <= t),   P_h = softmax(S_h),
 *     out_{t,h} = Σ_s P_h[t][s] · v_{s,j}
 *
 * Shapes: q, dq (B,T,H,Dqk); k, dk (B,T,Hkv,Dqk); v, dv (B,T,Hkv,Dv);
 * dout (B,T,H,Dv); att (B,H,T,T) holds every P_h. ADD (+=, never overwrite)
 * into dq, dk and dv (each may be NULL).
 *
 * The backward of one query head against its key/value head is chapter 2's
 * attention backward; head_backward() below does it for you (with the right
 * strides), and ADDS its share into the dk/dv rows it is given. Your part:
 *  - which key/value head's dk/dv each query head's share goes to;
 *  - a shared k_{s,j} (and v_{s,j}) must end up with the SUM of the shares of
 *    all G query heads of group j (chapter 3 derives why);
 *  - with OpenMP (TS_OMP_HEADS spreads a loop nest of two loops over threads)
 *    no two threads may ever add into the same dk/dv row at the same time,
 *    and the result must be the same bits for 1 and 2 threads
 *    (test core_gqa_backward_same_bits_any_threads). Each thread needs its own
 *    T·T block of scratch: scratch + attention_thread_id()·T·T.
 *
 *     make exercise EX=gqa_attention_backward
 * builds the library with this file in place of the library's function and
 * runs tests/test_ch03_gqa.c (finite differences, reference loops, MHA bits,
 * thread determinism, whole-model gradient checks).
 */
#include "core/gqa_attention.h"

#include <stddef.h>

#include "core/ops.h"

/* bthd(b,t,h,T,H,D): offset of element (b,t,h,0) of a (B,T,H,D) tensor;
 * TS_OMP_HEADS: put it right before a `for (b ...) for (...)` nest to spread it
 * over threads; attention_thread_id(): 0 .. threads-1 inside that loop. */
#include "core/attention_util.h"

/* Backward of ONE query head against its key/value head, for one sequence:
 * q/dq/dout point at element (b,0,h,0) of their (B,T,H,·) tensors, k/v/dk/dv
 * at (b,0,j,0) of their (B,T,Hkv,·) tensors, P at head h's (T,T) block of att.
 * ADDS into dq, dk, dv (any may be NULL). dS (T,T) is scratch. */
static void head_backward(float *dq, float *dk, float *dv, float *dS, const float *dout,
                          const float *P, const float *q, const float *k, const float *v,
                          int T, int H, int Hkv, int Dqk, int Dv, float scale) {
    attention_head_backward(dq, dk, dv, dS, dout, P, q, k, v, T, Dqk, Dv, H * Dqk, Hkv * Dqk, Hkv * Dv, H * Dv,
                            scale);
}

void gqa_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                            const float *att, const float *q, const float *k, const float *v,
                            int B, int T, int H, int Hkv, int Dqk, int Dv, float scale) {
    /* TODO: your code here. */
    (void)dq; (void)dk; (void)dv; (void)scratch; (void)dout; (void)att; (void)q; (void)k; (void)v;
    (void)B; (void)T; (void)H; (void)Hkv; (void)Dqk; (void)Dv; (void)scale;
    (void)bthd; (void)attention_thread_id; (void)head_backward;
}
