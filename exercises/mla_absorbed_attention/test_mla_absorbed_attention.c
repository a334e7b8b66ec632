/* Exercise mla_absorbed_attention: the absorbed decode, which runs your
 * function, must give the naive training forward's next-token logits at every
 * position (1e-5 relative), with and without the low-rank query, with YaRN,
 * for two sequences of different lengths decoded together. */
#include "testutil.h"

#include "model/model.h"

static ts_config config(int q_lora, int yarn) {
    ts_config c;
    ts_config_default(&c);
    strcpy(c.model_type, "deepseek_v3");
    c.arch = TS_ARCH_DEEPSEEK_V3;
    c.vocab_size = 17;
    c.hidden_size = 16;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 3;
    c.num_key_value_heads = 3;
    c.intermediate_size = 20;
    c.max_position_embeddings = 32;
    c.q_lora_rank = q_lora ? 6 : 0;
    c.kv_lora_rank = 8;
    c.qk_nope_head_dim = 5;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 3; /* every size different: a swapped dimension shows */
    c.initializer_range = 0.3f;
    if (yarn) {
        c.has_yarn = 1;
        c.yarn = (ts_yarn){4.0f, 8, 32.0f, 1.0f, 1.0f, 1.0f};
    }
    return c;
}

static void check(int q_lora, int yarn) {
    ts_config c = config(q_lora, yarn);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    ts_model_init_weights(&m, 2);
    enum { T = 12 };
    int V = c.vocab_size, seq[2][T];
    ts_rng r;
    ts_rng_seed(&r, 3, TS_STREAM_TEST);
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < T; t++) seq[b][t] = (int)ts_rng_below(&r, (uint64_t)V);
    float full[2][T * 17], logits[2 * 17];
    for (int b = 0; b < 2; b++) {
        ts_model_forward(&m, seq[b], NULL, 1, T);
        memcpy(full[b], m.logits, sizeof full[b]);
    }
    ts_kvcache kv;
    assert_int_equal(ts_kvcache_create(&kv, &m, 2, T), TS_OK);
    int plen[2] = {1, 5};
    double worst = 0;
    for (int b = 0; b < 2; b++) assert_int_equal(ts_model_prefill(&m, &kv, b, seq[b], plen[b], NULL), TS_OK);
    for (int step = 0;; step++) {
        int toks[2], active[2], any = 0;
        for (int b = 0; b < 2; b++) {
            active[b] = plen[b] + step < T;
            toks[b] = active[b] ? seq[b][plen[b] + step] : 0;
            any |= active[b];
        }
        if (!any) break;
        assert_int_equal(ts_model_decode(&m, &kv, toks, active, logits), TS_OK);
        for (int b = 0; b < 2; b++) {
            if (!active[b]) continue;
            double e = tu_rel_err(logits + b * V, full[b] + (plen[b] + step) * V, (size_t)V);
            if (e > worst) worst = e;
        }
    }
    printf("absorbed decode (%s q_lora%s) vs naive forward: max relative difference %.2e\n", q_lora ? "with" : "without",
           yarn ? ", YaRN" : "", worst);
    assert_true(worst <= 1e-5);
    ts_kvcache_free(&kv);
    ts_model_free(&m);
}

static void plain_query(void **state) {
    (void)state;
    check(0, 0);
}

static void low_rank_query(void **state) {
    (void)state;
    check(1, 0);
}

static void with_yarn(void **state) {
    (void)state;
    check(1, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_query),
        cmocka_unit_test(low_rank_query),
        cmocka_unit_test(with_yarn),
    };
    return cmocka_run_group_tests_name("mla_absorbed_attention", tests, NULL, NULL);
}
