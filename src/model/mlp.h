/**
 * @file mlp.h
 * @brief The SwiGLU feed-forward network: down_proj(silu(gate_proj x) ⊙ up_proj x).
 *
 * Chapter 2's dense layer, and the building block of chapter 5's experts:
 * every routed and shared expert of DeepSeekMoE is one of these, only smaller.
 */
#ifndef TS_MLP_H
#define TS_MLP_H

/** Views of one MLP's weights (or of their gradients). */
typedef struct {
    float *gate_proj; /**< (F, C) */
    float *up_proj;   /**< (F, C) */
    float *down_proj; /**< (C, F) */
} ts_mlp_weights;

/** What the forward keeps for the backward (or, as gradients, the backward's scratch). */
typedef struct {
    float *gate;   /**< (N, F) gate_proj output */
    float *up;     /**< (N, F) up_proj output */
    float *hidden; /**< (N, F) silu(gate) ⊙ up */
} ts_mlp_acts;

/** @brief Parameters of one MLP of hidden size @p C and intermediate size @p F: gate, up and down projections. */
long long mlp_params(int C, int F);

/** @brief y (N,C) = down_proj(silu(gate_proj x) ⊙ up_proj x), x (N,C); fills @p a. */
void mlp_forward(float *y, const ts_mlp_acts *a, const float *x, const ts_mlp_weights *w, int N, int C, int F);

/**
 * @brief Backward of mlp_forward(): dx += dL/dx, dw += dL/dw. @p d is (N,F)
 * scratch for the three intermediate gradients (overwritten); dx may be NULL.
 */
void mlp_backward(float *dx, const ts_mlp_weights *dw, const ts_mlp_acts *d, const float *dy, const ts_mlp_acts *a,
                  const float *x, const ts_mlp_weights *w, int N, int C, int F);

#endif
