/**
 * @file mlp.c
 * @brief SwiGLU MLP forward and backward.
 */
#include "model/mlp.h"

#include <string.h>

#include "core/linear.h"
#include "core/ops.h"

long long mlp_params(int C, int F) { return 3LL * C * F; }

//! [mlp-forward]
void mlp_forward(float *y, const ts_mlp_acts *a, const float *x, const ts_mlp_weights *w, int N, int C, int F) {
    linear_forward(a->gate, x, w->gate_proj, NULL, N, C, F); // gate (N,F) = x · W_gateᵀ
    linear_forward(a->up, x, w->up_proj, NULL, N, C, F);     // up   (N,F) = x · W_upᵀ
    swiglu_forward(a->hidden, a->gate, a->up, (long)N * F);   // hidden = silu(gate) ⊙ up
    linear_forward(y, a->hidden, w->down_proj, NULL, N, F, C); // y (N,C) = hidden · W_downᵀ
}
//! [mlp-forward]

//! [mlp-backward]
void mlp_backward(float *dx, const ts_mlp_weights *dw, const ts_mlp_acts *d, const float *dy, const ts_mlp_acts *a,
                  const float *x, const ts_mlp_weights *w, int N, int C, int F) {
    size_t NF = (size_t)N * F;
    memset(d->hidden, 0, NF * sizeof(float));
    memset(d->gate, 0, NF * sizeof(float));
    memset(d->up, 0, NF * sizeof(float));
    // y = hidden · W_downᵀ
    linear_backward(d->hidden, dw->down_proj, NULL, dy, a->hidden, w->down_proj, N, F, C);
    // hidden = silu(gate) ⊙ up
    swiglu_backward(d->gate, d->up, d->hidden, a->gate, a->up, (long)NF);
    // gate = x · W_gateᵀ, up = x · W_upᵀ: both paths add into dx
    linear_backward(dx, dw->gate_proj, NULL, d->gate, x, w->gate_proj, N, C, F);
    linear_backward(dx, dw->up_proj, NULL, d->up, x, w->up_proj, N, C, F);
}
//! [mlp-backward]
