/**
 * @file student.c
 * @brief Exercise (chapter 4): write mla_absorbed_attention(), the decode-time
 *        attention of multi-head latent attention over the latent KV cache.
 *
 * The cache of layer l holds, for sequence b and position t, one row of
 * dc + dr floats (dc = kv_lora_rank, dr = qk_rope_head_dim):
 *
 *     ts_kvcache_latent_at(c, l, b, t)  =  c->latent + ((l * c->B + b) * c->max_T + t) * (dc + dr)
 *                                       =  [ c_kv (dc) ; k_rope (dr) ]
 *
 * c_kv already normed, k_rope already rotated; nothing per head is cached.
 * kv_b_proj (layer l's weight) is (H·(dn+dv), dc): for head h,
 * rows h·(dn+dv) .. +dn are W_UK[h] (dn, dc), the next dv rows W_UV[h] (dv, dc).
 * The naive path (the training forward) would compute, for each head,
 *
 *     k_nope_t = W_UK[h] c_t,   v_t = W_UV[h] c_t,
 *     score_t  = (q_nope·k_nope_t + q_rope·k_rope_t) · scale,   scale = mla_softmax_scale(cfg)
 *     ctx_h    = Σ_t softmax(score)_t · v_t
 *
 * Do it without ever forming k_nope_t or v_t: move the query into the latent
 * space once (q_nope·W_UK[h] c_t = (W_UK[h]ᵀ q_nope)·c_t), attend over the
 * cached rows as they are, and apply W_UV[h] once, after the softmax-weighted
 * sum of the c_t.
 *
 * Inputs: q (R, H·dq), dq = dn + dr, per head [q_nope (dn); q_rope (dr)], q_rope
 * already roped; row r belongs to sequence seq[r] and attends over positions
 * 0..pos[r] (its own entry at pos[r] is already in the cache).
 * Output: ctx (R, H·dv), per head the attention output (before o_proj).
 * Scratch you may use: qcat (R, H, dc+dr), scores (R, H, c->max_T), olat (R, H, dc).
 * ts_sgemm() (core/ops.h) multiplies matrices; plain loops are fine too.
 *
 *     make exercise EX=mla_absorbed_attention
 * builds the library with this file in place of the library's function and
 * checks the absorbed decode against the naive forward at every position.
 */
#include <math.h>
#include <string.h>

#include "model/mla.h"

void mla_absorbed_attention(const ts_config *cfg, const float *kv_b_proj, const ts_kvcache *c, int l, const float *q,
                            float *ctx, float *qcat, float *scores, float *olat, const int *seq, const int *pos,
                            int R) {
    /* TODO: your code here. */
    (void)cfg;
    (void)kv_b_proj;
    (void)c;
    (void)l;
    (void)q;
    (void)ctx;
    (void)qcat;
    (void)scores;
    (void)olat;
    (void)seq;
    (void)pos;
    (void)R;
}
