/**
 * @file posttrain_fixtures.h
 * @brief What the post-training suites (chapters 7-9) build their worlds from:
 *        a tokenizer trained on a few "What is a+b?" lines, chapter 5's
 *        architecture in miniature, and templated problems.
 */
#ifndef TS_POSTTRAIN_FIXTURES_H
#define TS_POSTTRAIN_FIXTURES_H

#include "testutil.h"
#include "data/bpe.h"
#include "data/sft_batch.h"
#include "model/config.h"

/** A tokenizer trained on 60 lines "What is a+b? c"; with @p word non-NULL each
 *  line ends " word" (two different words give two tokenizers that do not match). */
static inline void pt_tokenizer(bpe_tokenizer *tok, const char *word) {
    char text[8192];
    size_t n = 0;
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "What is %d+%d? %d%s%s\n", i % 9, i % 7, i % 9 + i % 7,
                              word ? " " : "", word ? word : "");
    memset(tok, 0, sizeof *tok);
    assert_int_equal(bpe_train(tok, text, n, 256 + BPE_N_SPECIAL + 8, NULL, NULL), TS_OK);
}

/** Chapter 5's architecture, small: MLA attention and a DeepSeekMoE layer after one dense one. */
static inline ts_config pt_tiny_mla(int vocab, int max_pos) {
    ts_config c;
    ts_config_default(&c);
    strcpy(c.model_type, "deepseek_v3");
    c.arch = TS_ARCH_DEEPSEEK_V3;
    c.vocab_size = vocab;
    c.hidden_size = 16;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.head_dim = 8;
    c.intermediate_size = 24;
    c.max_position_embeddings = max_pos;
    c.q_lora_rank = 8;
    c.kv_lora_rank = 8;
    c.qk_nope_head_dim = 4;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 4;
    c.n_routed_experts = 4;
    c.num_experts_per_tok = 2;
    c.n_shared_experts = 1;
    c.moe_intermediate_size = 8;
    c.first_k_dense_replace = 1;
    c.initializer_range = 0.2f;
    return c;
}

/** @p n problems "What is a+b?" (a, b from @p offset) with a worked response, the
 *  answer, and difficulty i mod 2. */
static inline void pt_problems(ts_examples *set, int n, int offset) {
    set->n = n;
    set->ex = calloc((size_t)n, sizeof *set->ex);
    for (int i = 0; i < n; i++) {
        int a = (7 * i + offset) % 10, b = (3 * i + offset) % 7;
        char buf[128];
        snprintf(buf, sizeof buf, "What is %d+%d?", a, b);
        set->ex[i].prompt = strdup(buf);
        snprintf(buf, sizeof buf, "<think>%d+%d=%d</think><answer>%d</answer>", a, b, a + b, a + b);
        set->ex[i].response = strdup(buf);
        snprintf(buf, sizeof buf, "%d", a + b);
        set->ex[i].answer = strdup(buf);
        set->ex[i].difficulty = i % 2;
    }
}

#endif
