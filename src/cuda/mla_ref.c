/* Appendix A's reference: chapter 4's absorbed decode, called as the model calls
 * it, on the shapes and numbers the CUDA harness uses (see mla_ref.h). */
#include "cuda/mla_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "model/config.h"
#include "model/kvcache.h"
#include "model/mla.h"

int appA_shape_load(appA_shape *s, const char *config_path) {
    ts_config c;
    if (ts_config_load(&c, config_path) != TS_OK) {
        fprintf(stderr, "%s\n", ts_last_error());
        return -1;
    }
    if (c.kv_lora_rank <= 0 || c.qk_rope_head_dim <= 0) {
        fprintf(stderr, "%s: kv_lora_rank and qk_rope_head_dim must be positive (an MLA config)\n", config_path);
        return -1;
    }
    s->H = c.num_attention_heads;
    s->dc = c.kv_lora_rank;
    s->dr = c.qk_rope_head_dim;
    s->dn = c.qk_nope_head_dim;
    s->dv = c.v_head_dim;
    s->scale = mla_softmax_scale(&c);
    return 0;
}

int appA_reference(const char *config_path, int B, int max_T, const int *len, const float *cache, uint64_t seed,
                   float *qabs, float *olat, float *lse) {
    ts_config cfg;
    if (ts_config_load(&cfg, config_path) != TS_OK) {
        fprintf(stderr, "%s\n", ts_last_error());
        return -1;
    }
    int H = cfg.num_attention_heads, dn = cfg.qk_nope_head_dim, dr = cfg.qk_rope_head_dim;
    int dv = cfg.v_head_dim, dc = cfg.kv_lora_rank, dq = dn + dr, LAT = dc + dr;
    float scale = mla_softmax_scale(&cfg);
    // the cache as the model holds it: one layer of B sequences, max_T rows of [c_kv; k_rope]
    ts_kvcache kv;
    memset(&kv, 0, sizeof kv);
    kv.L = 1;
    kv.B = B;
    kv.max_T = max_T;
    kv.latent_dim = LAT;
    kv.latent = (float *)cache; // read only: mla_absorbed_attention takes the cache const
    float *q = malloc((size_t)B * H * dq * sizeof(float));
    float *wkv = malloc((size_t)H * (dn + dv) * dc * sizeof(float));
    float *ctx = malloc((size_t)B * H * dv * sizeof(float));
    float *qcat = malloc((size_t)B * H * LAT * sizeof(float));
    float *scores = malloc((size_t)B * H * max_T * sizeof(float));
    float *out = malloc((size_t)B * H * dc * sizeof(float));
    int *seq = malloc((size_t)B * sizeof(int)), *pos = malloc((size_t)B * sizeof(int));
    int rc = -1;
    if (!q || !wkv || !ctx || !qcat || !scores || !out || !seq || !pos) goto done;
    ts_rng rng;
    ts_rng_seed(&rng, seed, TS_STREAM_TEST);
    ts_rng_fill_uniform(&rng, q, (long)B * H * dq, -1.0f, 1.0f);
    // W_UK's entries ~ 3/√dn: the absorbed query then has entries of about unit size at any dn
    float a = 3.0f / sqrtf((float)dn);
    ts_rng_fill_uniform(&rng, wkv, (long)H * (dn + dv) * dc, -a, a);
    // the library decodes only sequences with a position: R rows, row r = sequence seq[r] at pos[r] = len − 1
    int R = 0;
    for (int b = 0; b < B; b++)
        if (len[b] > 0) {
            seq[R] = b;
            pos[R] = len[b] - 1;
            R++;
        }
    if (R > 0) mla_absorbed_attention(&cfg, wkv, &kv, 0, q, ctx, qcat, scores, out, seq, pos, R);
    ts_rng_fill_uniform(&rng, qabs, (long)B * H * LAT, -1.0f, 1.0f); // an empty sequence's query: anything
    memset(olat, 0, (size_t)B * H * dc * sizeof(float));
    for (int r = 0; r < R; r++) {
        memcpy(qabs + (size_t)seq[r] * H * LAT, qcat + (size_t)r * H * LAT, (size_t)H * LAT * sizeof(float));
        memcpy(olat + (size_t)seq[r] * H * dc, out + (size_t)r * H * dc, (size_t)H * dc * sizeof(float));
    }
    // log Σ_t exp(score) in double, around the max (one (b, h) per thread: V3 at 16k positions is ~10⁹ products)
#ifdef _OPENMP
#pragma omp parallel for collapse(2) schedule(dynamic)
#endif
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *qh = qabs + ((size_t)b * H + h) * LAT;
            double mx = -INFINITY, sum = 0.0;
            for (int pass = 0; pass < 2; pass++)
                for (int t = 0; t < len[b]; t++) {
                    const float *c = cache + ((size_t)b * max_T + t) * LAT;
                    double s = 0.0;
                    for (int k = 0; k < LAT; k++) s += (double)qh[k] * c[k];
                    s *= scale;
                    if (pass == 0) mx = s > mx ? s : mx;
                    else sum += exp(s - mx);
                }
            lse[(size_t)b * H + h] = len[b] > 0 ? (float)(mx + log(sum)) : -INFINITY;
        }
    rc = 0;
done:
    if (rc) fprintf(stderr, "appA_reference: out of memory (B %d, max_T %d, %s)\n", B, max_T, config_path);
    free(q);
    free(wkv);
    free(ctx);
    free(qcat);
    free(scores);
    free(out);
    free(seq);
    free(pos);
    return rc;
}
