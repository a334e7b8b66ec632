/* Appendix A without a GPU: the arithmetic the CUDA kernels share with the
 * host (src/cuda/mla_decode_math.h: the online softmax over tiles, the split
 * of a sequence into split-KV chunks, the log-sum-exp combine), run here on
 * the CPU in the order version 4 and 5 run it, against the library's own
 * absorbed decode (mla_absorbed_attention(), chapter 4) on chapter 4's shapes
 * and on V3's at a few positions. Cache rows past a sequence's length hold NaN,
 * so a read past the length fails the comparison, as it does in the GPU harness. */
#include "testutil.h"

#include "cuda/mla_decode_math.h"
#include "model/config.h"
#include "model/kvcache.h"
#include "model/mla.h"

enum { TILE = 16 }; /* G_TILE of src/cuda/mla_decode.cu */

static void load_repo_config(ts_config *c, const char *rel) {
    const char *root = getenv("TS_SRC");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root ? root : ".", rel);
    if (ts_config_load(c, path)) fail_msg("%s", ts_last_error());
}

/* ------------------------------------------------------------------ */
/* The online softmax and the split ranges on their own                */
/* ------------------------------------------------------------------ */

/* Folding n scores tile by tile, whatever the tile size, gives the softmax-weighted
 * sum of n vectors and the log-sum-exp that one pass over all scores gives. */
static void online_softmax_matches_two_pass(void **state) {
    (void)state;
    enum { N = 53, D = 5 };
    float s0[N], v[N * D];
    tu_fill(s0, N, 6.0f, 11);
    tu_fill(v, N * D, 1.0f, 12);
    s0[17] = 40.0f; /* one large score arriving late: every earlier term must be rescaled */
    double mx = -INFINITY, sum = 0.0, want[D] = {0};
    for (int t = 0; t < N; t++) mx = s0[t] > mx ? s0[t] : mx;
    for (int t = 0; t < N; t++) sum += exp(s0[t] - mx);
    for (int t = 0; t < N; t++)
        for (int j = 0; j < D; j++) want[j] += exp(s0[t] - mx) / sum * v[t * D + j];
    double want_lse = mx + log(sum);
    int tiles[] = {1, 5, 16, N};
    for (size_t k = 0; k < sizeof tiles / sizeof tiles[0]; k++) {
        ts_softmax_state st;
        ts_softmax_init(&st);
        float acc[D] = {0}, s[N];
        for (int t0 = 0; t0 < N; t0 += tiles[k]) {
            int nt = t0 + tiles[k] < N ? tiles[k] : N - t0;
            memcpy(s, s0 + t0, (size_t)nt * sizeof(float));
            float alpha = ts_softmax_tile(&st, s, nt);
            for (int j = 0; j < D; j++) {
                acc[j] *= alpha;
                for (int t = 0; t < nt; t++) acc[j] += s[t] * v[(t0 + t) * D + j];
            }
        }
        float lse, inv = ts_softmax_finish(&st, &lse);
        for (int j = 0; j < D; j++) assert_float_equal(acc[j] * inv, want[j], 1e-5);
        assert_float_equal(lse, want_lse, 1e-5 * fabs(want_lse));
    }
    /* no position at all: output 0, lse −∞ */
    ts_softmax_state st;
    ts_softmax_init(&st);
    float lse, none[1];
    assert_float_equal(ts_softmax_tile(&st, none, 0), 1.0f, 0.0);
    assert_float_equal(ts_softmax_finish(&st, &lse), 0.0f, 0.0);
    assert_true(isinf(lse) && lse < 0);
}

/* The chunks of every split cover 0..n in order, each position once, for any
 * n (0 included) and any number of splits (more splits than positions included). */
static void split_ranges_cover_each_position_once(void **state) {
    (void)state;
    for (int n = 0; n <= 70; n++)
        for (int nsplit = 1; nsplit <= 12; nsplit++) {
            int next = 0;
            for (int i = 0; i < nsplit; i++) {
                int t0, t1;
                ts_split_range(n, nsplit, i, &t0, &t1);
                assert_true(t0 <= t1);
                if (t1 > t0) assert_int_equal(t0, next);
                if (t1 > t0) next = t1;
            }
            assert_int_equal(next, n);
        }
}

/* ------------------------------------------------------------------ */
/* Version 4/5's algebra against the library's absorbed decode         */
/* ------------------------------------------------------------------ */

typedef struct {
    ts_config cfg;
    int B, max_T, H, dc, dr, LAT;
    int len[4];
    float scale;
    float *cache;  /* (B, max_T, LAT), NaN past each length */
    float *qabs;   /* (B, H, LAT) the library's absorbed queries */
    float *olat;   /* (B, H, dc) its latent output (0 for an empty sequence) */
    double *lse;   /* (B, H) log Σ exp(score) in double */
} decode_case;

/* Run mla_absorbed_attention() on random queries, kv_b_proj and cache for B
 * sequences of the given lengths; keep its absorbed queries and its output. */
static void make_case(decode_case *k, const char *config, int B, const int *len, uint64_t seed) {
    memset(k, 0, sizeof *k);
    load_repo_config(&k->cfg, config);
    ts_config *c = &k->cfg;
    k->B = B;
    k->H = c->num_attention_heads;
    k->dc = c->kv_lora_rank;
    k->dr = c->qk_rope_head_dim;
    k->LAT = k->dc + k->dr;
    k->scale = mla_softmax_scale(c);
    for (int b = 0; b < B; b++) {
        k->len[b] = len[b];
        if (len[b] + 3 > k->max_T) k->max_T = len[b] + 3; /* rows past every length */
    }
    int H = k->H, dn = c->qk_nope_head_dim, dr = k->dr, dv = c->v_head_dim, dcl = k->dc, LAT = k->LAT;
    size_t ncache = (size_t)B * k->max_T * LAT;
    k->cache = malloc(ncache * sizeof(float));
    k->qabs = calloc((size_t)B * H * LAT, sizeof(float));
    k->olat = calloc((size_t)B * H * dcl, sizeof(float));
    k->lse = malloc((size_t)B * H * sizeof(double));
    float *q = malloc((size_t)B * H * (dn + dr) * sizeof(float));
    float *wkv = malloc((size_t)H * (dn + dv) * dcl * sizeof(float));
    float *ctx = malloc((size_t)B * H * dv * sizeof(float));
    float *qcat = malloc((size_t)B * H * LAT * sizeof(float));
    float *scores = malloc((size_t)B * H * k->max_T * sizeof(float));
    float *olat = malloc((size_t)B * H * dcl * sizeof(float));
    assert_non_null(k->cache && k->qabs && k->olat && k->lse && q && wkv && ctx && qcat && scores && olat);
    tu_fill(k->cache, ncache, 1.0f, seed);
    for (int b = 0; b < B; b++)
        for (int t = len[b]; t < k->max_T; t++)
            for (int j = 0; j < LAT; j++) k->cache[((size_t)b * k->max_T + t) * LAT + j] = NAN;
    tu_fill(q, (size_t)B * H * (dn + dr), 1.0f, seed + 1);
    tu_fill(wkv, (size_t)H * (dn + dv) * dcl, 3.0f / sqrtf((float)dn), seed + 2); /* absorbed query ~ unit size */
    ts_kvcache kv;
    memset(&kv, 0, sizeof kv);
    kv.L = 1, kv.B = B, kv.max_T = k->max_T, kv.latent_dim = LAT, kv.latent = k->cache;
    int seq[4], pos[4], R = 0;
    for (int b = 0; b < B; b++)
        if (len[b] > 0) seq[R] = b, pos[R] = len[b] - 1, R++;
    mla_absorbed_attention(c, wkv, &kv, 0, q, ctx, qcat, scores, olat, seq, pos, R);
    for (int r = 0; r < R; r++) {
        memcpy(k->qabs + (size_t)seq[r] * H * LAT, qcat + (size_t)r * H * LAT, (size_t)H * LAT * sizeof(float));
        memcpy(k->olat + (size_t)seq[r] * H * dcl, olat + (size_t)r * H * dcl, (size_t)H * dcl * sizeof(float));
    }
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *qh = k->qabs + ((size_t)b * H + h) * LAT;
            double mx = -INFINITY, sum = 0.0, s[2048];
            assert_true(len[b] <= 2048);
            for (int t = 0; t < len[b]; t++) {
                const float *ct = k->cache + ((size_t)b * k->max_T + t) * LAT;
                s[t] = 0.0;
                for (int j = 0; j < LAT; j++) s[t] += (double)qh[j] * ct[j];
                s[t] *= k->scale;
                mx = s[t] > mx ? s[t] : mx;
            }
            for (int t = 0; t < len[b]; t++) sum += exp(s[t] - mx);
            k->lse[(size_t)b * H + h] = len[b] ? mx + log(sum) : -INFINITY;
        }
    free(q);
    free(wkv);
    free(ctx);
    free(qcat);
    free(scores);
    free(olat);
}

static void free_case(decode_case *k) {
    free(k->cache);
    free(k->qabs);
    free(k->olat);
    free(k->lse);
}

/* One split of one head, as the kernels' group_attention() computes it: tiles of
 * TILE rows over [t0, t1), the scores of a tile first, then the online softmax,
 * then the rescaled running output. Writes the split's normalised output and lse. */
static void split_attention(const decode_case *k, int b, int h, int t0, int t1, float *o, float *lse) {
    const float *q = k->qabs + ((size_t)b * k->H + h) * k->LAT;
    ts_softmax_state st;
    ts_softmax_init(&st);
    for (int j = 0; j < k->dc; j++) o[j] = 0.0f;
    for (int r0 = t0; r0 < t1; r0 += TILE) {
        int nt = t1 - r0 < TILE ? t1 - r0 : TILE;
        const float *tile = k->cache + ((size_t)b * k->max_T + r0) * k->LAT;
        float s[TILE];
        for (int t = 0; t < nt; t++) s[t] = ts_latent_score(q, tile + (size_t)t * k->LAT, k->LAT, k->scale);
        float alpha = ts_softmax_tile(&st, s, nt);
        for (int j = 0; j < k->dc; j++) {
            float v = o[j] * alpha;
            for (int t = 0; t < nt; t++) v += s[t] * tile[(size_t)t * k->LAT + j];
            o[j] = v;
        }
    }
    float inv = ts_softmax_finish(&st, lse);
    for (int j = 0; j < k->dc; j++) o[j] *= inv;
}

/* Version 4/5 on the CPU: nsplit splits per sequence, each through split_attention(),
 * then the combine kernel's arithmetic. With @p equal_weights the combine averages the
 * splits instead (a wrong combine, to show the comparison can fail). */
static void split_kv_decode(const decode_case *k, int nsplit, int equal_weights, float *out, float *lse) {
    int H = k->H, dc = k->dc;
    float *part = malloc((size_t)nsplit * dc * sizeof(float)), plse[64];
    assert_non_null(part);
    assert_true(nsplit <= 64);
    for (int b = 0; b < k->B; b++)
        for (int h = 0; h < H; h++) {
            for (int i = 0; i < nsplit; i++) {
                int t0, t1;
                ts_split_range(k->len[b], nsplit, i, &t0, &t1);
                split_attention(k, b, h, t0, t1, part + (size_t)i * dc, &plse[i]);
            }
            float L = ts_lse_merge(plse, nsplit);
            int nonempty = 0;
            for (int i = 0; i < nsplit; i++) nonempty += plse[i] > -INFINITY;
            for (int j = 0; j < dc; j++) {
                float v = 0.0f;
                for (int i = 0; i < nsplit; i++) {
                    float w = equal_weights ? (plse[i] > -INFINITY ? 1.0f / nonempty : 0.0f) : ts_split_weight(plse[i], L);
                    v += w * part[(size_t)i * dc + j];
                }
                out[((size_t)b * H + h) * dc + j] = v;
            }
            lse[(size_t)b * H + h] = L;
        }
    free(part);
}

/* The split-KV result against the library, at several split counts; returns the output's relative error. */
static double check_splits(const decode_case *k, int nsplit, int equal_weights) {
    size_t n = (size_t)k->B * k->H * k->dc;
    float *out = malloc(n * sizeof(float)), *lse = malloc((size_t)k->B * k->H * sizeof(float));
    assert_non_null(out && lse);
    split_kv_decode(k, nsplit, equal_weights, out, lse);
    for (size_t i = 0; i < n; i++) assert_false(isnan(out[i])); /* no row past a length was read */
    double err = tu_rel_err(out, k->olat, n);
    if (!equal_weights)
        for (int b = 0; b < k->B; b++)
            for (int h = 0; h < k->H; h++) {
                double want = k->lse[(size_t)b * k->H + h];
                float got = lse[(size_t)b * k->H + h];
                if (isinf(want)) {
                    assert_true(isinf(got) && got < 0); /* an empty sequence: lse −∞, output 0 */
                    for (int j = 0; j < k->dc; j++) assert_float_equal(out[((size_t)b * k->H + h) * k->dc + j], 0.0f, 0.0);
                } else {
                    assert_float_equal(got, want, 1e-5 * fmax(1.0, fabs(want)));
                }
            }
    free(out);
    free(lse);
    return err;
}

static void run_shape(const char *config, int B, const int *len, uint64_t seed) {
    decode_case k;
    make_case(&k, config, B, len, seed);
    int splits[] = {1, 2, 3, 7, 64}; /* 64: more splits than positions, most of them empty */
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        double err = check_splits(&k, splits[i], 0);
        if (err > 1e-5) fail_msg("%s, %d splits: relative error %.3g against mla_absorbed_attention", config, splits[i], err);
    }
    /* the comparison has teeth: averaging the splits instead of weighting them by their mass fails it */
    double wrong = check_splits(&k, 3, 1);
    if (wrong < 1e-2) fail_msg("%s: an equal-weight combine is only %.3g off: the test cannot see a wrong combine", config, wrong);
    free_case(&k);
}

/* Chapter 4's model (8 heads, latent 64 + 8): a long, a short, an empty and a one-position sequence. */
static void split_kv_matches_absorbed_decode_ch04(void **state) {
    (void)state;
    int len[4] = {300, 37, 0, 1};
    run_shape("configs/ch04-mla.json", 4, len, 21);
}

/* DeepSeek-V3's attention (128 heads, latent 512 + 64, YaRN's scale) at a few positions. */
static void split_kv_matches_absorbed_decode_v3(void **state) {
    (void)state;
    int len[2] = {45, 0};
    run_shape("configs/published/deepseek-v3.json", 2, len, 31);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(online_softmax_matches_two_pass),
        cmocka_unit_test(split_ranges_cover_each_position_once),
        cmocka_unit_test(split_kv_matches_absorbed_decode_ch04),
        cmocka_unit_test(split_kv_matches_absorbed_decode_v3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
