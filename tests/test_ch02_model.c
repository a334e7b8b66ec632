/* Chapter 2: the dense transformer as a whole — gradient check of every
 * parameter, KV-cache decode against the full forward, sampling. */
#include "gradcheck_model.h"

#include "core/ops.h"
#include "model/model.h"

static ts_config tiny_config(int tied) {
    ts_config c;
    ts_config_default(&c);
    c.vocab_size = 13;
    c.hidden_size = 8;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.head_dim = 4;
    c.intermediate_size = 12;
    c.max_position_embeddings = 32;
    c.tie_word_embeddings = tied;
    c.initializer_range = 0.4f; /* large weights: every nonlinearity is exercised */
    return c;
}

typedef struct {
    ts_model *m;
    const int *tokens, *targets;
    int B, T;
} loss_ctx;

/* The mean loss, taken in double from the per-token losses: ts_model_forward()
 * rounds it to float, which would add up to half an ulp of noise to every
 * difference the gradient check takes. */
static double model_loss(void *ctx) {
    loss_ctx *l = ctx;
    ts_model_forward(l->m, l->tokens, l->targets, l->B, l->T);
    double sum = 0;
    for (int i = 0; i < l->B * l->T; i++) sum += l->m->losses[i];
    return sum / l->m->n_counted;
}

/* Make the norm weights differ from 1 so their gradients are not special. */
static void perturb_norms(ts_model *m) {
    ts_rng r;
    ts_rng_seed(&r, 99, TS_STREAM_TEST);
    for (int i = 0; i < m->params.count; i++) {
        ts_param *t = &m->params.params[i];
        if (t->ndim != 1) continue;
        for (size_t j = 0; j < t->numel; j++) m->params.data[t->offset + j] = 0.5f + ts_rng_uniform(&r);
    }
}

static void check_whole_model(int tied) {
    ts_config c = tiny_config(tied);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    ts_model_init_weights(&m, 1);
    perturb_norms(&m);
    enum { B = 2, T = 5 };
    assert_int_equal(ts_model_reserve(&m, B, T), TS_OK);
    int tokens[B * T], targets[B * T];
    ts_rng r;
    ts_rng_seed(&r, 7, TS_STREAM_TEST);
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (int)ts_rng_below(&r, (uint64_t)c.vocab_size);
        targets[i] = (int)ts_rng_below(&r, (uint64_t)c.vocab_size);
    }
    targets[3] = TS_IGNORE; /* masked positions must not matter */
    targets[7] = TS_IGNORE;
    ts_model_zero_grad(&m);
    ts_model_forward(&m, tokens, targets, B, T);
    ts_model_backward(&m);
    loss_ctx ctx = {&m, tokens, targets, B, T};
    printf("whole-model gradient check (%s embeddings), float32 model, double finite differences:\n",
           tied ? "tied" : "untied");
    /* The whole model runs in float32, so the loss itself carries rounding noise of
     * ~1e-7 relative; h = 2e-3 balances that against the O(h^4) truncation error.
     * Single ops reach <= 1e-4 (test_ch02_ops); end to end the worst tensor sits
     * near 7e-4 relative to its largest gradient, hence the 1e-3 bound. The same
     * check in double precision, over 20 seeds at 1e-6, is tests/f64/. */
    tu_model_gc g;
    tu_gradcheck_model(&g, &m, model_loss, &ctx, 2e-3, 0, NULL, stdout);
    assert_true(g.worst <= 1e-3);
    ts_model_free(&m);
}

static void gradcheck_untied(void **state) {
    (void)state;
    check_whole_model(0);
}

static void gradcheck_tied(void **state) {
    (void)state;
    check_whole_model(1);
}

/* Ignored targets give exactly zero loss contribution: changing their token changes nothing. */
static void ignored_targets_do_not_matter(void **state) {
    (void)state;
    ts_config c = tiny_config(0);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    ts_model_init_weights(&m, 3);
    assert_int_equal(ts_model_reserve(&m, 1, 6), TS_OK);
    int tokens[6] = {1, 2, 3, 4, 5, 6};
    int t1[6] = {2, TS_IGNORE, 4, TS_IGNORE, 6, 7};
    int t2[6] = {2, 9, 4, 11, 6, 7};
    ts_model_zero_grad(&m);
    float l1 = ts_model_forward(&m, tokens, t1, 1, 6);
    assert_int_equal(m.n_counted, 4);
    /* the same loss computed from only the four counted rows */
    double manual = 0;
    int rows[4] = {0, 2, 4, 5};
    for (int i = 0; i < 4; i++) manual += m.losses[rows[i]];
    assert_true(fabs(manual / 4 - l1) < 1e-6);
    float l2 = ts_model_forward(&m, tokens, t2, 1, 6);
    assert_true(l2 != l1);
    ts_model_free(&m);
}

/* Decode with the KV cache must give the same next-token logits as the full
 * forward at every position. Tolerance: 1e-5 relative to the logits' scale
 * (the two paths sum attention in different orders). */
static void kv_decode_matches_full_forward(void **state) {
    (void)state;
    ts_config c = tiny_config(0);
    c.hidden_size = 16;
    c.intermediate_size = 24;
    c.head_dim = 8;
    c.initializer_range = 0.2f;
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    ts_model_init_weights(&m, 5);
    enum { T = 20 };
    int seq[2][T];
    ts_rng r;
    ts_rng_seed(&r, 11, TS_STREAM_TEST);
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < T; t++) seq[b][t] = (int)ts_rng_below(&r, (uint64_t)c.vocab_size);
    /* Reference: full forward of each whole sequence. */
    float *full = malloc(2 * T * c.vocab_size * sizeof(float));
    assert_int_equal(ts_model_reserve(&m, 1, T), TS_OK);
    for (int b = 0; b < 2; b++) {
        ts_model_forward(&m, seq[b], NULL, 1, T);
        memcpy(full + (size_t)b * T * c.vocab_size, m.logits, T * c.vocab_size * sizeof(float));
    }
    /* Cached: two sequences with prompts of different lengths, decoded together. */
    ts_kvcache kv;
    assert_int_equal(ts_kvcache_create(&kv, &m, 2, T), TS_OK);
    assert_int_equal(kv.bytes, (size_t)2 * c.num_hidden_layers * 2 * T * c.num_key_value_heads * c.head_dim * sizeof(float));
    int plen[2] = {1, 7};
    float *logits = malloc(2 * c.vocab_size * sizeof(float));
    double worst = 0;
    for (int b = 0; b < 2; b++) {
        assert_int_equal(ts_model_prefill(&m, &kv, b, seq[b], plen[b], logits + b * c.vocab_size), TS_OK);
        double e = tu_rel_err(logits + b * c.vocab_size, full + ((size_t)b * T + plen[b] - 1) * c.vocab_size,
                              (size_t)c.vocab_size);
        if (e > worst) worst = e;
    }
    for (int step = 0;; step++) {
        int toks[2], active[2], any = 0;
        for (int b = 0; b < 2; b++) {
            int t = plen[b] + step;
            active[b] = t < T;
            toks[b] = active[b] ? seq[b][t] : 0;
            any |= active[b];
        }
        if (!any) break;
        assert_int_equal(ts_model_decode(&m, &kv, toks, active, logits), TS_OK);
        for (int b = 0; b < 2; b++) {
            if (!active[b]) continue;
            int t = plen[b] + step;
            double e = tu_rel_err(logits + b * c.vocab_size, full + ((size_t)b * T + t) * c.vocab_size,
                                  (size_t)c.vocab_size);
            if (e > worst) worst = e;
        }
    }
    printf("kv-cache decode vs full forward: max relative difference %.2e over %d positions\n", worst, 2 * T);
    assert_true(worst <= 1e-5);
    assert_int_equal(kv.len[0], T);
    assert_int_equal(kv.len[1], T);
    /* A full cache refuses another token instead of writing past its end. */
    int toks[2] = {1, 1};
    assert_int_not_equal(ts_model_decode(&m, &kv, toks, NULL, logits), TS_OK);
    ts_kvcache_free(&kv);
    free(logits);
    free(full);
    ts_model_free(&m);
}

static void sampling_rules(void **state) {
    (void)state;
    enum { V = 6 };
    float logits[V] = {0.1f, 2.0f, -1.0f, 1.5f, 0.0f, 1.9f};
    ts_rng r;
    ts_rng_seed(&r, 1, TS_STREAM_SAMPLE);
    ts_sampler greedy = {0, 0, 1};
    assert_int_equal(ts_sample(logits, V, &greedy, &r), 1);
    ts_sampler top1 = {1.0f, 1, 1};
    for (int i = 0; i < 50; i++) assert_int_equal(ts_sample(logits, V, &top1, &r), 1);
    ts_sampler top3 = {1.0f, 3, 1};
    for (int i = 0; i < 200; i++) {
        int s = ts_sample(logits, V, &top3, &r);
        assert_true(s == 1 || s == 5 || s == 3);
    }
    ts_sampler nucleus = {1.0f, 0, 0.3f}; /* the top token alone has more than 30% mass */
    for (int i = 0; i < 50; i++) assert_int_equal(ts_sample(logits, V, &nucleus, &r), 1);
    /* Plain temperature-1 sampling follows softmax(logits). */
    double p[V], z = 0;
    for (int i = 0; i < V; i++) z += p[i] = exp(logits[i]);
    int counts[V] = {0};
    ts_sampler plain = {1.0f, 0, 1};
    const int n = 60000;
    for (int i = 0; i < n; i++) counts[ts_sample(logits, V, &plain, &r)]++;
    for (int i = 0; i < V; i++) {
        double expect = n * p[i] / z, sd = sqrt(expect);
        assert_true(fabs(counts[i] - expect) < 5 * sd);
    }
    /* Same seed, same draws. */
    ts_rng a, b;
    ts_rng_seed(&a, 5, TS_STREAM_SAMPLE);
    ts_rng_seed(&b, 5, TS_STREAM_SAMPLE);
    for (int i = 0; i < 100; i++) assert_int_equal(ts_sample(logits, V, &plain, &a), ts_sample(logits, V, &plain, &b));
}

/* ts_sample() sorts by radix on the probabilities' bits; it must pick exactly what a plain
 * qsort by (descending p, lower id) would: the same token for the same random number, ties,
 * top-k and top-p included. The reference below is that qsort version, written out here. */
typedef struct {
    double p;
    int id;
} ref_prob_id;

static int ref_desc(const void *a, const void *b) {
    const ref_prob_id *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

static int ref_sample(const float *logits, int V, const ts_sampler *s, ts_rng *rng) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    ref_prob_id *pi = malloc((size_t)V * sizeof *pi);
    double sum = 0;
    for (int i = 0; i < V; i++) {
        pi[i].p = exp(((double)logits[i] - logits[best]) / s->temperature);
        pi[i].id = i;
        sum += pi[i].p;
    }
    qsort(pi, (size_t)V, sizeof *pi, ref_desc);
    int keep = V;
    if (s->top_k > 0 && s->top_k < keep) keep = s->top_k;
    if (s->top_p < 1.0f) {
        double mass = 0;
        for (int i = 0; i < keep; i++) {
            mass += pi[i].p / sum;
            if (mass >= s->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    double kept = 0;
    for (int i = 0; i < keep; i++) kept += pi[i].p;
    double u = ts_rng_uniform_double(rng) * kept, acc = 0;
    int pick = pi[keep - 1].id;
    for (int i = 0; i < keep; i++) {
        acc += pi[i].p;
        if (u < acc) {
            pick = pi[i].id;
            break;
        }
    }
    free(pi);
    return pick;
}

static void sampling_matches_qsort_reference(void **state) {
    (void)state;
    enum { V = 512 };
    float logits[V];
    ts_rng gen, a, b;
    ts_rng_seed(&gen, 11, TS_STREAM_SAMPLE);
    ts_rng_seed(&a, 12, TS_STREAM_SAMPLE);
    ts_rng_seed(&b, 12, TS_STREAM_SAMPLE);
    const ts_sampler samplers[] = {{0.6f, 0, 1}, {1.0f, 0, 1}, {0.6f, 20, 1}, {1.0f, 0, 0.9f}, {2.0f, 50, 0.95f}};
    long draws = 0;
    for (int trial = 0; trial < 300; trial++) {
        // Logits at several spreads (from near-uniform to one dominant token), with runs of
        // exact ties (equal probabilities, ordered by id) and a few far below the rest.
        float spread = (float)(trial % 6) * 3.0f + 0.01f;
        for (int i = 0; i < V; i++) logits[i] = spread * (float)(ts_rng_uniform_double(&gen) * 2 - 1);
        for (int i = 0; i < V; i += 7) logits[i] = logits[(i * 13) % V];
        for (int i = 3; i < V; i += 61) logits[i] = -1e4f;
        const ts_sampler *s = &samplers[trial % 5];
        for (int k = 0; k < 20; k++, draws++) {
            int got = ts_sample(logits, V, s, &a), want = ref_sample(logits, V, s, &b);
            if (got != want) fail_msg("trial %d draw %d: ts_sample picked %d, the qsort reference %d", trial, k, got, want);
        }
    }
    assert_int_equal(draws, 6000);
}

static void parameter_counts(void **state) {
    (void)state;
    for (int tied = 0; tied < 2; tied++) {
        ts_config c = tiny_config(tied);
        ts_model m;
        assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
        size_t sum = 0;
        for (int i = 0; i < m.params.count; i++) sum += m.params.params[i].numel;
        long long total, active;
        ts_model_count_params(&c, &total, &active);
        assert_int_equal((long long)sum, total);
        assert_int_equal(total, active); /* dense: every parameter is active */
        /* by hand: V*C (+V*C untied) + C + L*(2C + 4*C*H*D + 3*C*F) */
        long long hand = 13 * 8 + (tied ? 0 : 13 * 8) + 8 + 2 * (2 * 8 + 4 * 8 * 8 + 3 * 8 * 12);
        assert_int_equal(total, hand);
        ts_model_free(&m);
    }
}

static void model_rejects_bad_shapes(void **state) {
    (void)state;
    ts_config c = tiny_config(0);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    assert_int_not_equal(ts_model_reserve(&m, 1, 33), TS_OK); /* longer than max_position_embeddings */
    assert_non_null(strstr(ts_last_error(), "max_position_embeddings"));
    ts_kvcache kv;
    assert_int_equal(ts_kvcache_create(&kv, &m, 1, 8), TS_OK);
    int bad[2] = {3, 13};
    assert_int_not_equal(ts_model_prefill(&m, &kv, 0, bad, 2, NULL), TS_OK);
    assert_non_null(strstr(ts_last_error(), "vocabulary"));
    ts_kvcache_free(&kv);
    ts_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gradcheck_untied),
        cmocka_unit_test(gradcheck_tied),
        cmocka_unit_test(ignored_targets_do_not_matter),
        cmocka_unit_test(kv_decode_matches_full_forward),
        cmocka_unit_test(sampling_rules),
        cmocka_unit_test(sampling_matches_qsort_reference),
        cmocka_unit_test(parameter_counts),
        cmocka_unit_test(model_rejects_bad_shapes),
    };
    return cmocka_run_group_tests_name("ch02_model", tests, NULL, NULL);
}
