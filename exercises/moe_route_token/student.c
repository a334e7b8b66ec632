/**
 * @file student.c
 * @brief Exercise (chapter 5): write moe_route_token(), DeepSeek-V3's router
 *        for one token.
 *
 * Given the token's router scores s[0..E) (softmax or sigmoid of W_g x, already
 * computed) and the selection bias b[0..E) (NULL = no bias), choose K experts
 * and their weights, with E = c->n_routed_experts, K = c->num_experts_per_tok:
 *
 *  1. Selection scores: v_e = s_e + b_e.
 *  2. Group-limited routing, when G = c->n_group > 1: the E experts form G
 *     groups of E/G consecutive experts. A group's score is the sum of its two
 *     best v (its only v when a group has one expert). Keep the
 *     c->topk_group best groups; experts of the other groups cannot be chosen.
 *  3. idx[0..K) = the K allowed experts with the largest v, best first
 *     (ties: the lower index first, as argmax() below does).
 *  4. weight[k] = s[idx[k]] (the bias never enters a weight); with
 *     c->norm_topk_prob divide each by (Σ_k s[idx[k]] + 1e-20f); then multiply
 *     by c->routed_scaling_factor. Compute it in this order (s / sum * scale):
 *     the tests compare some results bit for bit.
 *
 * work holds E + G floats of scratch (for v and the group scores).
 *
 *     make exercise EX=moe_route_token
 * builds the library with this function instead of the one in src/model/moe.c
 * (moe_forward calls it for every token) and runs tests/test_ch05_moe.c.
 */
#include <math.h>

#include "model/moe.h"

/* Index of the largest of v[0..n), the lowest index among ties. */
static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

void moe_route_token(int *idx, float *weight, const float *s, const float *bias, const ts_config *c, float *work) {
    /* TODO: your code here. This placeholder picks experts 0..K-1 with weight 0,
     * so the tests fail instead of crashing. Hint: −INFINITY in work marks an
     * expert that can no longer be chosen. */
    (void)s;
    (void)bias;
    (void)work;
    (void)argmax;
    for (int k = 0; k < c->num_experts_per_tok; k++) {
        idx[k] = k;
        weight[k] = 0.0f;
    }
}
