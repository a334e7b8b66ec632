/**
 * @file ops.h
 * @brief The numerical building blocks, each a forward/backward pair.
 *
 * Conventions (DESIGN.md §2):
 *  - `x_forward(...)` and `x_backward(...)` take their arguments in the same order;
 *    shapes are written in comments, e.g. `// inp (N,C)`.
 *  - Backwards *accumulate* into gradients with `+=`, so a tensor used twice
 *    (tied embeddings, a residual stream) simply receives both contributions.
 *    A gradient pointer may be NULL when that gradient is not wanted.
 *  - Weights are stored (out, in), as PyTorch's Linear does.
 *  - Where speed needs a cleverer loop, the plain reference (`_ref`) sits next
 *    to the fast one and the tests compare them.
 */
#ifndef TS_OPS_H
#define TS_OPS_H

#include <stddef.h>

/**
 * @brief `TS_OMP(parallel for)` expands to `#pragma omp parallel for` when the
 * library is built with OpenMP and to nothing otherwise (MODE=debug builds
 * without -fopenmp, where a bare `#pragma omp` would be an unknown-pragma warning).
 * Loops marked this way only ever split *independent outputs* between threads,
 * so results never depend on thread timing.
 */
#ifdef _OPENMP
#define TS_OMP(...) _Pragma(TS_OMP_STR_(omp __VA_ARGS__))
#else
#define TS_OMP(...)
#endif
/** @cond internal */
#define TS_OMP_STR_(...) #__VA_ARGS__
/** @endcond */

/**
 * @brief Marks a hot inner kernel, such as sgemm's micro-kernel.
 * With GCC on x86-64 the function is compiled three times, for AVX-512, for AVX2+FMA
 * and for the baseline, and the loader picks the best one the CPU supports (the
 * default build targets baseline x86-64, which has 4-wide SSE only). It also lets
 * a*b+c fuse into one FMA, which ISO C mode (-std=c11) otherwise forbids, and
 * vectorises loops whose length is only known at run time (-O2's cost model
 * leaves those scalar); the chosen version is fixed per machine, so results
 * stay deterministic. Elsewhere it expands to nothing.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TS_KERNEL                                                                  \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), \
                   optimize("fp-contract=fast", "vect-cost-model=dynamic")))
#else
#define TS_KERNEL
#endif

/**
 * @brief Marks an element-wise or row-wise loop kernel: compiled for AVX-512,
 * AVX2 and the baseline like TS_KERNEL, with run-time-length loops vectorised,
 * but without FMA contraction, so each element gets exactly the bits of the
 * plain C expression (only the order of a few sums, written out lane by lane,
 * differs from a one-by-one loop).
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TS_VECTOR                                                                  \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), \
                   optimize("vect-cost-model=dynamic")))
#else
#define TS_VECTOR
#endif

/* ------------------------------------------------------------------ */
/* General matrix multiply                                             */
/* ------------------------------------------------------------------ */

/**
 * @brief C = alpha * op(A) * op(B) + beta * C, row-major (the BLAS sgemm contract).
 * op(A) is (M,K): A itself (lda >= K) or, if @p trans_a, A^T with A stored (K,M) (lda >= M).
 * op(B) is (K,N): B itself (ldb >= N) or, if @p trans_b, B^T with B stored (N,K) (ldb >= K).
 * Uses cblas_sgemm when built with BLAS=1, the project's own loops (ts_sgemm_c())
 * otherwise, and also with BLAS=1 where those are faster (ts_sgemm_uses_c_loops()).
 */
void ts_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/** @brief The project's own blocked sgemm (the same contract), in every build. */
void ts_sgemm_c(int trans_a, int trans_b, int M, int N, int K, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/**
 * @brief 1 if ts_sgemm() runs the project's own loops. Always with BLAS=0; with
 * BLAS=1 when the CPU has AVX-512 but OpenBLAS runs kernels without it (as
 * OPENBLAS_CORETYPE=Haswell forces), where the own kernel measured faster.
 * The environment variable TS_MATMUL=c or TS_MATMUL=openblas overrides.
 * Products of at most four rows take the own loops in every build.
 */
int ts_sgemm_uses_c_loops(void);

/** @brief Name of the matmul backend compiled in: "openblas (<core>)" or "c loops". */
const char *ts_matmul_backend(void);

/** @brief The OpenBLAS kernel set in use (openblas_get_corename()), or "none" without BLAS. */
const char *ts_blas_core(void);

/** @brief The same contract as ts_sgemm(), as three plain loops (the reference). */
void ts_sgemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/**
 * @brief Linear layer: out = inp · weightᵀ (+ bias).
 * out (N,OC), inp (N,C), weight (OC,C), bias (OC) or NULL.
 */
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int C, int OC);
/** @brief Reference loops for matmul_forward(). */
void matmul_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int C, int OC);
/**
 * @brief Backward of matmul_forward(): dinp += dout·weight, dweight += doutᵀ·inp, dbias += Σ dout.
 * Any of dinp, dweight, dbias may be NULL.
 */
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC);
/** @brief Reference loops for matmul_backward(). */
void matmul_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int C, int OC);

/* ------------------------------------------------------------------ */
/* Embedding                                                           */
/* ------------------------------------------------------------------ */

/** @brief out[n] = table[tokens[n]]. out (N,C), table (V,C). Tokens must be in range. */
void embedding_forward(float *out, const int *tokens, const float *table, int N, int C);
/** @brief dtable[tokens[n]] += dout[n]. */
void embedding_backward(float *dtable, const float *dout, const int *tokens, int N, int C);

/* ------------------------------------------------------------------ */
/* RMSNorm                                                             */
/* ------------------------------------------------------------------ */

// [rmsnorm-signature]
/**
 * @brief out = inp / rms(inp) * weight, rms = sqrt(mean(inp²) + eps).
 * out (N,C), rstd (N) saved 1/rms for the backward, inp (N,C), weight (C).
 * Rows may be strided: row n of inp starts at inp + n*in_stride (likewise out);
 * pass C for contiguous rows.
 */
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                     int N, int C, int in_stride, int out_stride, float eps);
/** @brief Backward of rmsnorm_forward() (same strides for dinp/inp and dout). */
void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, const float *rstd,
                      int N, int C, int in_stride, int out_stride);

// [rmsnorm-signature]
/* ------------------------------------------------------------------ */
/* Rotary position embedding (adjacent-pair layout, as DeepSeek)      */
/* ------------------------------------------------------------------ */

/** YaRN context-extension parameters (`rope_scaling` with type "yarn"). */
typedef struct {
    float factor;                 /**< context extension factor s (1 = off) */
    int original_max_position;    /**< original_max_position_embeddings */
    float beta_fast;              /**< ramp ends at this many rotations (default 32) */
    float beta_slow;              /**< ramp starts at this many rotations (default 1) */
    float mscale;                 /**< mscale (default 1) */
    float mscale_all_dim;         /**< mscale_all_dim (default 0) */
} ts_yarn;

/**
 * @brief Inverse frequencies θ_i = base^(−2i/dim), i = 0..dim/2−1, written to inv_freq (dim/2).
 * With @p yarn non-NULL and factor > 1, each θ_i is blended with θ_i/factor
 * by YaRN's linear ramp between the dimensions given by beta_fast and beta_slow.
 */
void rope_inv_freq(float *inv_freq, int dim, float base, const ts_yarn *yarn);

/**
 * @brief YaRN's attention-temperature factor for the softmax scale: 0.1·mscale·ln(factor)+1
 * (1 when factor <= 1). DeepSeek multiplies the softmax scale by
 * yarn_get_mscale(factor, mscale_all_dim)² — see the MLA chapter.
 */
float yarn_get_mscale(float factor, float mscale);

/** @brief cos/sin tables (max_pos, dim/2): angle = pos · inv_freq[i]. */
void rope_table(float *cos_t, float *sin_t, const float *inv_freq, int dim, int max_pos);

/** A RoPE table as the layers receive it: rope_table()'s cos and sin, (max_pos, dim/2) each. */
typedef struct {
    const float *cos; /**< (max_pos, dim/2) */
    const float *sin; /**< (max_pos, dim/2) */
    int dim;          /**< rotated dims per head */
} ts_rope;

/**
 * @brief Rotate adjacent pairs (2i, 2i+1) of each head in place by pos·θ_i.
 * x holds N rows; row n starts at x + n*row_stride and has H heads, head h at
 * offset h*head_stride; the rotated dims are [0, dim) of each head.
 * pos (N) is each row's position; cos_t/sin_t come from rope_table().
 */
void rope_forward(float *x, const int *pos, int N, int H, int row_stride, int head_stride,
                  int dim, const float *cos_t, const float *sin_t);
/** @brief Backward of rope_forward(): rotate the gradient in place by −pos·θ_i. */
void rope_backward(float *dx, const int *pos, int N, int H, int row_stride, int head_stride,
                   int dim, const float *cos_t, const float *sin_t);

/* ------------------------------------------------------------------ */
/* Softmax                                                             */
/* ------------------------------------------------------------------ */

/**
 * @brief e^x as the fast loops compute it (Cephes' polynomial, 16 lanes at a
 * time): within 1 ulp of expf() on [-87.3, 88.3], 0 below, +inf past
 * ln(FLT_MAX), NaN for NaN. Defined for every float. Exposed for its tests.
 */
float ts_fast_expf(float x);

/**
 * @brief One row: y = softmax(x) over n values (n >= 1), max-subtracted; y may be x.
 * Uses a vectorisable float exponential within 1 ulp of expf() (ops.c), and
 * sums in a fixed lane order, so the result is deterministic.
 */
void ts_softmax_row(float *y, const float *x, int n);

/** @brief Σ a[i]·b[i] over n values, summed in a fixed lane order (deterministic). */
float ts_dot(const float *a, const float *b, int n);

/** @brief log Σ_i e^(x_i) over n values (n >= 1), as max + log Σ e^(x − max). */
float ts_logsumexp(const float *x, int n);

/** @brief Row-wise softmax, max-subtracted. out (N,V), inp (N,V). */
void softmax_forward(float *out, const float *inp, int N, int V);
/** @brief dinp += out ⊙ (dout − Σ dout⊙out). */
void softmax_backward(float *dinp, const float *dout, const float *out, int N, int V);

/* ------------------------------------------------------------------ */
/* Causal multi-head attention (chapter 2)                             */
/* ------------------------------------------------------------------ */

/**
 * @brief Causal scaled dot-product attention, one key/value head per query head.
 * q (B,T,H,Dqk), k (B,T,H,Dqk), v (B,T,H,Dv), out (B,T,H,Dv),
 * att (B,H,T,T) saves the softmax probabilities for the backward
 * (entries above the diagonal are written as 0).
 * score[t][s] = scale · q_t·k_s for s <= t.
 */
void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int B, int T, int H, int Dqk, int Dv, float scale);
/**
 * @brief One head of causal attention (the fast path of attention_forward()):
 * q (T,Dqk), k (T,Dqk), v (T,Dv), out (T,Dv) with rows ldq, ldk, ldv, ldo floats
 * apart; P (T,T) receives the probabilities (0 above the diagonal).
 */
void attention_head_forward(float *out, float *P, const float *q, const float *k, const float *v, int T, int Dqk,
                            int Dv, int ldq, int ldk, int ldv, int ldo, float scale);
/**
 * @brief Backward of attention_head_forward(): accumulates into dq, dk, dv (any may
 * be NULL), with the same row strides (dout like out); dS (T,T) is scratch.
 */
void attention_head_backward(float *dq, float *dk, float *dv, float *dS, const float *dout, const float *P,
                             const float *q, const float *k, const float *v, int T, int Dqk, int Dv, int ldq,
                             int ldk, int ldv, int ldo, float scale);
/** @brief Reference loops for attention_forward(). */
void attention_forward_ref(float *out, float *att, const float *q, const float *k,
                           const float *v, int B, int T, int H, int Dqk, int Dv, float scale);
/**
 * @brief Backward of attention_forward(); accumulates into dq, dk, dv.
 * scratch must hold T*T floats per thread (ts_num_threads()*T*T).
 */
void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *att, const float *q, const float *k, const float *v,
                        int B, int T, int H, int Dqk, int Dv, float scale);
/** @brief Reference loops for attention_backward() (single-threaded: scratch needs T*T floats). */
void attention_backward_ref(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                            const float *att, const float *q, const float *k, const float *v,
                            int B, int T, int H, int Dqk, int Dv, float scale);

/* ------------------------------------------------------------------ */
/* SwiGLU                                                              */
/* ------------------------------------------------------------------ */

/** @brief out = silu(gate) ⊙ up, silu(x) = x·σ(x). All (n). */
void swiglu_forward(float *out, const float *gate, const float *up, long n);
/** @brief dgate += dout·up·σ(g)(1+g(1−σ(g))), dup += dout·silu(g). */
void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, long n);

/* ------------------------------------------------------------------ */
/* Cross-entropy over logits, with an ignore mask                      */
/* ------------------------------------------------------------------ */

/** Target value meaning "no loss at this position" (prompt tokens in SFT, padding). */
#define TS_IGNORE (-1)

/**
 * @brief losses[n] = −log softmax(logits[n])[targets[n]]; 0 where targets[n] == TS_IGNORE.
 * logits (N,V), targets (N), losses (N). Returns the number of counted rows.
 */
int crossentropy_forward(float *losses, const float *logits, const int *targets, int N, int V);
/**
 * @brief dlogits[n] += dloss[n] · (softmax(logits[n]) − onehot(targets[n])); ignored rows get nothing.
 * dloss (N) is usually 1/(number of counted rows) everywhere.
 */
void crossentropy_backward(float *dlogits, const float *dloss, const float *logits,
                           const int *targets, int N, int V);

#endif
