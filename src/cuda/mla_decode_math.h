/**
 * @file mla_decode_math.h
 * @brief The arithmetic every version of appendix A's decode kernel relies on,
 *        as inline functions that both gcc (the CPU test, tests/test_appA_decode_math.c)
 *        and nvcc (src/cuda/mla_decode.cu) compile: the score of one cached
 *        latent row, the online softmax over tiles of positions, the split of a
 *        sequence into split-KV chunks, and the log-sum-exp combine of the splits.
 *
 * Shapes: LAT = kv_lora_rank + qk_rope_head_dim (dc + dr) floats per cached row
 * [c_kv; k_rope]; an absorbed query is LAT floats [W_UKᵀ q_nope; q_rope]; the
 * output of one head is dc floats, Σ_t p_t c_t (the values are the first dc
 * columns of the same rows).
 *
 * Why the algebra holds. For scores s_t, softmax weights p_t = exp(s_t − lse)
 * with lse = log Σ_t exp(s_t). Over a prefix with running max m and running
 * sum l = Σ exp(s_t − m), a new tile with larger max m' changes every earlier
 * term by the same factor α = exp(m − m'), so the partial sums (l and the
 * unnormalised output Σ exp(s_t − m) c_t) are rescaled by α and the tile's
 * terms added: the online softmax. Two disjoint ranges with results (o₁, lse₁)
 * and (o₂, lse₂), each o normalised over its own range, combine as
 * lse = log(exp lse₁ + exp lse₂), o = exp(lse₁ − lse) o₁ + exp(lse₂ − lse) o₂:
 * the split-KV combine. An empty range has lse = −∞ and weight 0; a sequence
 * with no positions at all has output 0 and lse = −∞.
 */
#ifndef TS_CUDA_MLA_DECODE_MATH_H
#define TS_CUDA_MLA_DECODE_MATH_H

#include <math.h>

#ifdef __CUDACC__
/** Compiled for the host and the device by nvcc, as a static inline function by a C compiler. */
#define TS_HD __host__ __device__ static inline
#else
/** Compiled for the host and the device by nvcc, as a static inline function by a C compiler. */
#define TS_HD static inline
#endif

/** Running state of one head's softmax over the positions folded in so far. */
typedef struct {
    float m; /**< largest score so far (−∞ before any position) */
    float l; /**< Σ exp(s_t − m) over those positions */
} ts_softmax_state;

/** @brief The state before any position: m = −∞, l = 0. */
TS_HD void ts_softmax_init(ts_softmax_state *st) {
    st->m = -INFINITY;
    st->l = 0.0f;
}

/** @brief The score of one cached row: scale · q·c over the LAT floats (the rope part included). */
TS_HD float ts_latent_score(const float *q, const float *c, int lat, float scale) {
    float dot = 0.0f;
    for (int k = 0; k < lat; k++) dot += q[k] * c[k];
    return scale * dot;
}

// [online-softmax]
/**
 * @brief Fold one tile of @p n scores s[0..n) into @p st. Overwrites s[t] with
 * p_t = exp(s_t − m') (m' the new running max), adds Σ p_t to st->l, and returns
 * α = exp(m − m'), the factor by which the caller must multiply its running
 * output Σ exp(s − m) c before adding Σ_t p_t c_t of this tile.
 */
TS_HD float ts_softmax_tile(ts_softmax_state *st, float *s, int n) {
    float m_new = st->m;
    for (int t = 0; t < n; t++) m_new = fmaxf(m_new, s[t]);
    if (m_new == -INFINITY) return 1.0f; // nothing seen yet and an empty tile: nothing to rescale
    // an empty prefix (m = −∞) has nothing to rescale; exp(−∞ − m') is 0 anyway, written out for clarity
    float alpha = st->m == -INFINITY ? 0.0f : expf(st->m - m_new);
    float sum = 0.0f;
    for (int t = 0; t < n; t++) {
        s[t] = expf(s[t] - m_new);
        sum += s[t];
    }
    st->l = st->l * alpha + sum;
    st->m = m_new;
    return alpha;
}
// [online-softmax]

/**
 * @brief The end of a range: returns 1/l, the factor that normalises the
 * running output, and writes the range's log-sum-exp m + log l to @p lse.
 * An empty range (l = 0) gives 0 (the output stays 0) and lse = −∞.
 */
TS_HD float ts_softmax_finish(const ts_softmax_state *st, float *lse) {
    if (st->l == 0.0f) {
        *lse = -INFINITY;
        return 0.0f;
    }
    *lse = st->m + logf(st->l);
    return 1.0f / st->l;
}

/**
 * @brief Split @p n positions into @p nsplit chunks of ceil(n / nsplit): chunk
 * @p i is [*t0, *t1), empty (t0 = t1) when the sequence is too short to reach it.
 */
TS_HD void ts_split_range(int n, int nsplit, int i, int *t0, int *t1) {
    int chunk = (n + nsplit - 1) / nsplit;
    int a = i * chunk < n ? i * chunk : n;
    *t0 = a;
    *t1 = a + chunk < n ? a + chunk : n;
}

// [lse-combine]
/**
 * @brief The log-sum-exp of the whole sequence from its splits' @p lse[0..n)
 * (−∞ for an empty split): log Σ_i exp(lse_i), taken around the largest so no
 * exp overflows. −∞ when every split is empty.
 */
TS_HD float ts_lse_merge(const float *lse, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = fmaxf(mx, lse[i]);
    if (mx == -INFINITY) return -INFINITY;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += expf(lse[i] - mx);
    return mx + logf(sum);
}

/**
 * @brief The weight of a split's normalised output in the combined one:
 * exp(lse_i − lse), the share of the softmax mass that lies in the split
 * (0 for an empty split, and when the whole sequence is empty).
 */
TS_HD float ts_split_weight(float lse_i, float lse) {
    return lse == -INFINITY ? 0.0f : expf(lse_i - lse);
}
// [lse-combine]

#endif
