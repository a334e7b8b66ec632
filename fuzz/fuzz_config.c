/**
 * @file fuzz_config.c
 * @brief config.json parser. Oracles: a refused config is one line naming the
 *        file; an accepted one saves, loads back and saves to the same text
 *        (so everything a config can hold survives a checkpoint: no inf saved
 *        as null, no field lost), with the same values.
 */
#include "fuzz_util.h"
#include "model/config.h"
#include "io/fileio.h"

static void same_config(const ts_config *a, const ts_config *b) {
#define SAME(f) FUZZ_CHECK(a->f == b->f, "field " #f " changed in the round trip")
    SAME(arch); SAME(vocab_size); SAME(hidden_size); SAME(num_hidden_layers); SAME(num_attention_heads);
    SAME(num_key_value_heads); SAME(intermediate_size); SAME(max_position_embeddings); SAME(rms_norm_eps);
    SAME(rope_theta); SAME(tie_word_embeddings); SAME(initializer_range); SAME(has_yarn);
    if (a->arch == TS_ARCH_LLAMA) SAME(head_dim);
    if (a->arch == TS_ARCH_DEEPSEEK_V3) {
        SAME(q_lora_rank); SAME(kv_lora_rank); SAME(qk_nope_head_dim); SAME(qk_rope_head_dim); SAME(v_head_dim);
    }
    if (a->n_routed_experts > 0) {
        SAME(n_routed_experts); SAME(n_shared_experts); SAME(num_experts_per_tok); SAME(moe_intermediate_size);
        SAME(first_k_dense_replace); SAME(n_group); SAME(topk_group); SAME(routed_scaling_factor);
        SAME(norm_topk_prob); SAME(aux_loss_alpha);
        FUZZ_CHECK(strcmp(a->scoring_func, b->scoring_func) == 0, "scoring_func changed");
    }
    if (a->has_yarn) {
        SAME(yarn.factor); SAME(yarn.original_max_position); SAME(yarn.beta_fast); SAME(yarn.beta_slow);
        SAME(yarn.mscale); SAME(yarn.mscale_all_dim);
    }
#undef SAME
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    ts_config c;
    ts_clear_error();
    if (ts_config_parse(&c, text, "fuzz/config.json") != TS_OK) {
        fuzz_check_error("fuzz/config.json");
        free(text);
        return 0;
    }
    free(text);
    const char *p1 = fuzz_path("config1.json"), *p2 = fuzz_path("config2.json");
    FUZZ_CHECK(ts_config_save(&c, p1) == TS_OK, "an accepted config does not save: %s", ts_last_error());
    ts_config back;
    FUZZ_CHECK(ts_config_load(&back, p1) == TS_OK, "a saved config does not load: %s", ts_last_error());
    same_config(&c, &back);
    FUZZ_CHECK(ts_config_save(&back, p2) == TS_OK, "second save failed: %s", ts_last_error());
    char *t1, *t2;
    size_t n1, n2;
    FUZZ_CHECK(ts_read_file(p1, &t1, &n1) == TS_OK && ts_read_file(p2, &t2, &n2) == TS_OK, "cannot read back");
    FUZZ_CHECK(n1 == n2 && memcmp(t1, t2, n1) == 0, "save -> load -> save changed the text");
    free(t1);
    free(t2);
    return 0;
}
