/* Chapter 4: multi-head latent attention — whole-model gradient checks of every
 * MLA tensor (with and without the low-rank query, with YaRN), the absorbed
 * decode against the naive training forward at every position, the cache that
 * is actually allocated against the formula and against MHA/GQA, Hugging Face
 * DeepSeek-V3 checkpoints (load; wrong shapes named), and YaRN's frequencies
 * and softmax scale against values computed here from the formulas. */
#include "gradcheck_model.h"

#include <cJSON.h>

#include "core/ops.h"
#include "io/fileio.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/model.h"

/* A tiny MLA model: every per-head size different, so a swapped dimension shows. */
static ts_config tiny_mla(int q_lora_rank, int yarn) {
    ts_config c;
    ts_config_default(&c);
    strcpy(c.model_type, "deepseek_v3");
    c.arch = TS_ARCH_DEEPSEEK_V3;
    c.vocab_size = 13;
    c.hidden_size = 8;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.intermediate_size = 12;
    c.max_position_embeddings = 32;
    c.q_lora_rank = q_lora_rank;
    c.kv_lora_rank = 6;
    c.qk_nope_head_dim = 3;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 5;
    c.initializer_range = 0.4f; /* large weights: every nonlinearity is exercised */
    if (yarn) {
        c.has_yarn = 1;
        c.yarn.factor = 4.0f;
        c.yarn.original_max_position = 8;
        c.yarn.beta_fast = 32.0f;
        c.yarn.beta_slow = 1.0f;
        c.yarn.mscale = 0.707f; /* differs from mscale_all_dim: the RoPE amplitude is not 1 */
        c.yarn.mscale_all_dim = 1.0f;
    }
    return c;
}

/* ------------------------------------------------------------------ */
/* Gradient check of the whole model                                   */
/* ------------------------------------------------------------------ */

typedef struct {
    ts_model *m;
    const int *tokens, *targets;
    int B, T;
} loss_ctx;

/* The mean cross-entropy of the forward's logits, computed here in double.
 * The model runs in float32, whose rounding (~1e-7 of the loss) is the noise
 * floor of the finite differences; taking the loss in double from the logits
 * removes the part the cross-entropy itself would add. */
static double model_loss(void *ctx) {
    loss_ctx *l = ctx;
    ts_model_forward(l->m, l->tokens, l->targets, l->B, l->T);
    int V = l->m->cfg.vocab_size, counted = 0;
    double sum = 0;
    for (int i = 0; i < l->B * l->T; i++) {
        if (l->targets[i] == TS_IGNORE) continue;
        const float *z = l->m->logits + (size_t)i * V;
        double mx = z[0], se = 0;
        for (int j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < V; j++) se += exp(z[j] - mx);
        sum += log(se) + mx - z[l->targets[i]];
        counted++;
    }
    return sum / counted;
}

static void perturb_norms(ts_model *m) {
    ts_rng r;
    ts_rng_seed(&r, 99, TS_STREAM_TEST);
    for (int i = 0; i < m->params.count; i++) {
        ts_param *t = &m->params.params[i];
        if (t->ndim != 1) continue;
        for (size_t j = 0; j < t->numel; j++) m->params.data[t->offset + j] = 0.5f + ts_rng_uniform(&r);
    }
}

static void check_whole_model(int q_lora_rank, int yarn) {
    ts_config c = tiny_mla(q_lora_rank, yarn);
    /* One block, 16 positions: in float32 the query path of a second block has
     * gradients so small (~1e-2) that rounding noise (~1e-4 absolute at this h)
     * would dominate them; one block still sends every MLA gradient on into
     * the embeddings, the same d_ln path a lower block receives. tests/f64/
     * checks two blocks in double precision, over 20 seeds at 1e-6. */
    c.num_hidden_layers = 1;
    c.initializer_range = 0.5f;
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    assert_int_equal(m.attn, TS_ATTN_MLA);
    ts_model_init_weights(&m, 1);
    perturb_norms(&m);
    enum { B = 2, T = 16 };
    int tokens[B * T], targets[B * T];
    ts_rng r;
    ts_rng_seed(&r, 7, TS_STREAM_TEST);
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (int)ts_rng_below(&r, (uint64_t)c.vocab_size);
        targets[i] = (int)ts_rng_below(&r, (uint64_t)c.vocab_size);
    }
    targets[3] = TS_IGNORE;
    ts_model_zero_grad(&m);
    ts_model_forward(&m, tokens, targets, B, T);
    ts_model_backward(&m);
    int mla_tensors = 0;
    for (int i = 0; i < m.params.count; i++) mla_tensors += strstr(m.params.params[i].name, "self_attn.") != NULL;
    /* q_a_proj, q_a_layernorm, q_b_proj (or q_proj), kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj */
    assert_int_equal(mla_tensors, c.num_hidden_layers * (q_lora_rank ? 7 : 5));
    loss_ctx ctx = {&m, tokens, targets, B, T};
    printf("whole-model gradient check, MLA %s q_lora%s:\n", q_lora_rank ? "with" : "without", yarn ? ", YaRN" : "");
    /* Same step and bound as test_ch02_model.c (float32 model, double differences). */
    tu_model_gc g;
    tu_gradcheck_model(&g, &m, model_loss, &ctx, 2e-3, 0, NULL, stdout);
    assert_true(g.worst <= 1e-3);
    ts_model_free(&m);
}

static void gradcheck_q_lora(void **state) {
    (void)state;
    check_whole_model(5, 0);
}

static void gradcheck_plain_q_proj(void **state) {
    (void)state;
    check_whole_model(0, 0);
}

static void gradcheck_q_lora_yarn(void **state) {
    (void)state;
    check_whole_model(5, 1);
}

/* ------------------------------------------------------------------ */
/* Absorbed decode = naive forward                                     */
/* ------------------------------------------------------------------ */

/* Two sequences with prompts of different lengths, decoded together through
 * the cache, against the full (naive, training) forward of each whole sequence:
 * every next-token distribution within 1e-5 relative. */
static double decode_vs_forward(const ts_config *c, ts_kv_mode mode) {
    ts_model m;
    assert_int_equal(ts_model_create(&m, c, 0), TS_OK);
    ts_model_init_weights(&m, 5);
    perturb_norms(&m);
    enum { T = 20 };
    int V = c->vocab_size, seq[2][T];
    ts_rng r;
    ts_rng_seed(&r, 11, TS_STREAM_TEST);
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < T; t++) seq[b][t] = (int)ts_rng_below(&r, (uint64_t)V);
    float *full = malloc((size_t)2 * T * V * sizeof(float));
    for (int b = 0; b < 2; b++) {
        ts_model_forward(&m, seq[b], NULL, 1, T);
        memcpy(full + (size_t)b * T * V, m.logits, (size_t)T * V * sizeof(float));
    }
    ts_kvcache kv;
    assert_int_equal(ts_kvcache_create_for(&kv, &m.cfg, 2, T, mode), TS_OK);
    assert_int_equal(kv.mla_naive, mode == TS_KV_NAIVE);
    int plen[2] = {1, 7};
    float *logits = malloc((size_t)2 * V * sizeof(float));
    double worst = 0;
    for (int b = 0; b < 2; b++) {
        assert_int_equal(ts_model_prefill(&m, &kv, b, seq[b], plen[b], logits + b * V), TS_OK);
        double e = tu_rel_err(logits + b * V, full + ((size_t)b * T + plen[b] - 1) * V, (size_t)V);
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
            double e = tu_rel_err(logits + b * V, full + ((size_t)b * T + plen[b] + step) * V, (size_t)V);
            if (e > worst) worst = e;
        }
    }
    assert_int_equal(kv.len[0], T);
    assert_int_equal(kv.len[1], T);
    ts_kvcache_free(&kv);
    free(logits);
    free(full);
    ts_model_free(&m);
    return worst;
}

static void absorbed_decode_matches_forward(void **state) {
    (void)state;
    const char *names[2] = {"absorbed", "naive"};
    for (int yarn = 0; yarn < 2; yarn++)
        for (int q_lora = 0; q_lora < 2; q_lora++)
            for (int mode = 0; mode < 2; mode++) {
                ts_config c = tiny_mla(q_lora ? 5 : 0, yarn);
                c.hidden_size = 16; /* a little wider than the gradient check's */
                c.kv_lora_rank = 8;
                c.initializer_range = 0.2f;
                double worst = decode_vs_forward(&c, (ts_kv_mode)mode);
                printf("%s decode vs full forward (%s q_lora%s): max relative difference %.2e over 40 positions\n",
                       names[mode], q_lora ? "with" : "without", yarn ? ", YaRN" : "", worst);
                assert_true(worst <= 1e-5);
            }
}

/* The decode must really use the cache: corrupting one cached latent entry
 * changes the next logits (so the comparison above cannot pass vacuously). */
static void absorbed_decode_reads_the_latent(void **state) {
    (void)state;
    ts_config c = tiny_mla(0, 0);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    ts_model_init_weights(&m, 3);
    ts_kvcache kv;
    assert_int_equal(ts_kvcache_create(&kv, &m, 1, 8), TS_OK);
    assert_null(kv.k);
    assert_null(kv.v);
    int prompt[4] = {1, 2, 3, 4}, tok = 5;
    float a[13], b[13];
    assert_int_equal(ts_model_prefill(&m, &kv, 0, prompt, 4, NULL), TS_OK);
    assert_int_equal(ts_model_decode(&m, &kv, &tok, NULL, a), TS_OK);
    assert_int_equal(ts_model_prefill(&m, &kv, 0, prompt, 4, NULL), TS_OK);
    kv.latent[1 * kv.latent_dim + 0] += 1.0f; /* layer 0, position 1, first c_kv element */
    assert_int_equal(ts_model_decode(&m, &kv, &tok, NULL, b), TS_OK);
    assert_true(tu_rel_err(a, b, 13) > 1e-4);
    ts_kvcache_free(&kv);
    ts_model_free(&m);
}

/* ------------------------------------------------------------------ */
/* The cache actually allocated                                        */
/* ------------------------------------------------------------------ */

static void load_repo_config(ts_config *c, const char *rel) {
    const char *root = getenv("TS_SRC");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root ? root : ".", rel);
    if (ts_config_load(c, path)) fail_msg("%s", ts_last_error());
}

static size_t allocated_per_token(const ts_config *c, ts_kv_mode mode) {
    ts_kvcache kv;
    assert_int_equal(ts_kvcache_create_for(&kv, c, 3, 17, mode), TS_OK);
    size_t per = ts_kvcache_bytes_per_token(&kv);
    assert_int_equal(per * 3 * 17, kv.bytes);
    ts_kvcache_free(&kv);
    return per;
}

static void cache_size_is_the_formula(void **state) {
    (void)state;
    /* the chapter's MLA model and chapter 3's models at the same parameter count */
    ts_config mla, mha, gqa4, gqa2, mqa;
    load_repo_config(&mla, "configs/ch04-mla.json");
    load_repo_config(&mha, "configs/ch03-mha.json");
    load_repo_config(&gqa4, "configs/ch03-gqa-kv4.json");
    load_repo_config(&gqa2, "configs/ch03-gqa-kv2.json");
    load_repo_config(&mqa, "configs/ch03-mqa.json");
    assert_int_equal(mla.arch, TS_ARCH_DEEPSEEK_V3);
    size_t L = (size_t)mla.num_hidden_layers, f = sizeof(float);
    size_t absorbed = allocated_per_token(&mla, TS_KV_ABSORBED);
    size_t naive = allocated_per_token(&mla, TS_KV_NAIVE);
    /* DeepSeek-V2 Table 1: MLA caches (d_c + d_h^R)·l elements per token */
    assert_int_equal(absorbed, (size_t)(mla.kv_lora_rank + mla.qk_rope_head_dim) * L * f);
    assert_int_equal(naive, (size_t)mla.num_attention_heads *
                                (mla.qk_nope_head_dim + mla.qk_rope_head_dim + mla.v_head_dim) * L * f);
    /* MHA 2·n_h·d_h·l, GQA 2·n_g·d_h·l */
    size_t bytes[4];
    const ts_config *other[4] = {&mha, &gqa4, &gqa2, &mqa};
    for (int i = 0; i < 4; i++) {
        bytes[i] = allocated_per_token(other[i], TS_KV_ABSORBED);
        assert_int_equal(bytes[i], 2 * (size_t)other[i]->num_key_value_heads * other[i]->head_dim *
                                       other[i]->num_hidden_layers * f);
    }
    printf("kv cache per token (bytes, fp32): MHA %zu, GQA-4 %zu, GQA-2 %zu, MQA %zu, MLA naive %zu, MLA absorbed %zu\n",
           bytes[0], bytes[1], bytes[2], bytes[3], naive, absorbed);
    /* smaller than MHA's and than GQA with 4 groups (as DeepSeek-V2: like GQA with 2.25 groups) */
    assert_true(absorbed < bytes[0]);
    assert_true(absorbed < bytes[1]);
    assert_true(absorbed < naive);
}

static void mla_parameter_counts(void **state) {
    (void)state;
    for (int q_lora = 0; q_lora < 2; q_lora++) {
        ts_config c = tiny_mla(q_lora ? 5 : 0, 0);
        ts_model m;
        assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
        size_t sum = 0;
        for (int i = 0; i < m.params.count; i++) sum += m.params.params[i].numel;
        long long total;
        ts_model_count_params(&c, &total, NULL);
        assert_int_equal((long long)sum, total);
        /* by hand, C=8 H=2 dn=3 dr=4 dv=5 dc=6 rq=5 */
        long long q = q_lora ? 8 * 5 + 5 + 5 * 2 * 7 : 8 * 2 * 7;
        long long attn = q + 8 * (6 + 4) + 6 + 6 * 2 * (3 + 5) + 2 * 5 * 8;
        long long hand = 2 * 13 * 8 + 8 + 2 * (2 * 8 + attn + 3 * 8 * 12);
        assert_int_equal(total, hand);
        ts_model_free(&m);
    }
}

/* ------------------------------------------------------------------ */
/* Hugging Face DeepSeek-V3 checkpoints                                */
/* ------------------------------------------------------------------ */

/* A Hugging Face style config.json, written by hand (with fields tinyseek ignores). */
static void write_hf_config(const char *dir, int q_lora) {
    char path[256], text[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    snprintf(text, sizeof text,
             "{\n  \"architectures\": [\"DeepseekV3ForCausalLM\"],\n"
             "  \"auto_map\": {\"AutoConfig\": \"configuration_deepseek.DeepseekV3Config\"},\n"
             "  \"model_type\": \"deepseek_v3\", \"attention_bias\": false, \"hidden_act\": \"silu\",\n"
             "  \"vocab_size\": 20, \"hidden_size\": 16, \"intermediate_size\": 24, \"num_hidden_layers\": 2,\n"
             "  \"num_attention_heads\": 2, \"num_key_value_heads\": 2, \"max_position_embeddings\": 16,\n"
             "  \"q_lora_rank\": %s, \"kv_lora_rank\": 6, \"qk_nope_head_dim\": 4, \"qk_rope_head_dim\": 2,\n"
             "  \"v_head_dim\": 3, \"n_routed_experts\": null, \"rms_norm_eps\": 1e-06, \"rope_theta\": 10000,\n"
             "  \"rope_scaling\": null, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\"\n}\n",
             q_lora ? "5" : "null");
    assert_int_equal(ts_write_file_atomic(path, text, strlen(text)), TS_OK);
}

/* The tensors of @p m written under their names in alphabetical order (the order
 * Hugging Face's writer uses), not tinyseek's registration order. */
static int by_name(const void *a, const void *b) {
    return strcmp(((const ts_st_entry *)a)->name, ((const ts_st_entry *)b)->name);
}

static void write_hf_weights(const char *dir, const ts_model *m) {
    ts_st_entry e[64];
    int n = m->params.count;
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        const ts_param *p = &m->params.params[i];
        e[i] = (ts_st_entry){p->name, p->ndim, p->shape, m->params.data + p->offset};
    }
    qsort(e, (size_t)n, sizeof e[0], by_name);
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(ts_safetensors_write(path, e, n, "{\"format\": \"pt\"}"), TS_OK);
}

static const char *hf_names_lora[] = {
    "model.layers.1.self_attn.q_a_proj.weight",           "model.layers.1.self_attn.q_a_layernorm.weight",
    "model.layers.1.self_attn.q_b_proj.weight",           "model.layers.1.self_attn.kv_a_proj_with_mqa.weight",
    "model.layers.1.self_attn.kv_a_layernorm.weight",     "model.layers.1.self_attn.kv_b_proj.weight",
    "model.layers.1.self_attn.o_proj.weight",
};

/* Build the model from the handwritten config, write its weights with HF names. */
static ts_model *hf_fixture(int q_lora) {
    write_hf_config(tu_dir, q_lora);
    ts_config c;
    assert_int_equal(ts_config_load(&c, tu_path("config.json")), TS_OK);
    ts_model *m = malloc(sizeof *m);
    assert_int_equal(ts_model_create(m, &c, 0), TS_OK);
    ts_model_init_weights(m, 9);
    perturb_norms(m);
    /* every name the V3 modeling code uses is registered, with its HF shape */
    int H = 2, dq = 6, dv = 3, dc = 6, C = 16;
    int rows[7] = {5, 5, H * dq, dc + 2, dc, H * (4 + dv), C};
    int cols[7] = {C, 0, 5, C, 0, dc, H * dv};
    for (int i = 0; i < 7; i++) {
        if (!q_lora && i < 3) continue;
        int idx = ts_params_find(&m->params, hf_names_lora[i]);
        if (idx < 0) fail_msg("%s is not registered", hf_names_lora[i]);
        assert_int_equal(m->params.params[idx].shape[0], rows[i]);
        if (cols[i]) assert_int_equal(m->params.params[idx].shape[1], cols[i]);
        else assert_int_equal(m->params.params[idx].ndim, 1);
    }
    if (!q_lora) assert_true(ts_params_find(&m->params, "model.layers.1.self_attn.q_proj.weight") >= 0);
    write_hf_weights(tu_dir, m);
    return m;
}

static void hf_checkpoint_loads(void **state) {
    (void)state;
    for (int q_lora = 0; q_lora < 2; q_lora++) {
        ts_model *ref = hf_fixture(q_lora);
        ts_model m;
        assert_int_equal(ts_checkpoint_load(&m, tu_dir, 0), TS_OK);
        int tokens[6] = {1, 5, 19, 2, 0, 7};
        ts_model_forward(ref, tokens, NULL, 1, 6);
        ts_model_forward(&m, tokens, NULL, 1, 6);
        assert_memory_equal(m.logits, ref->logits, 6 * 20 * sizeof(float));
        ts_model_free(&m);
        ts_model_free(ref);
        free(ref);
        char out[4096];
        int rc = tu_run(out, sizeof out, "'%s' logits --model '%s' --out '%s' 1 5 19 2", tu_cli(), tu_dir,
                        tu_path("logits.npy"));
        if (rc != 0) fail_msg("tinyseek logits on an HF DeepSeek-V3 folder failed (%d):\n%s", rc, out);
        assert_non_null(strstr(out, "(4, 20)"));
    }
}

/* Rewrite one tensor's shape in the safetensors header (same byte count). */
static void reshape_tensor(const char *name, int q_lora) {
    char *bytes;
    size_t len;
    const char *path = tu_path("model.safetensors");
    assert_int_equal(ts_read_file(path, &bytes, &len), TS_OK);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | (unsigned char)bytes[i];
    char *hdr = strndup(bytes + 8, (size_t)n);
    cJSON *root = cJSON_Parse(hdr);
    cJSON *t = cJSON_GetObjectItem(root, name);
    if (!t) fail_msg("no %s in the file", name);
    cJSON *shape = cJSON_GetObjectItem(t, "shape");
    int d0 = cJSON_GetArrayItem(shape, 0)->valueint;
    int d1 = cJSON_GetArraySize(shape) > 1 ? cJSON_GetArrayItem(shape, 1)->valueint : 1;
    cJSON *bad = cJSON_CreateArray(); /* transposed; a norm weight becomes (n, 1) */
    cJSON_AddItemToArray(bad, cJSON_CreateNumber(d1 == 1 && cJSON_GetArraySize(shape) == 1 ? d0 : d1));
    cJSON_AddItemToArray(bad, cJSON_CreateNumber(d1 == 1 && cJSON_GetArraySize(shape) == 1 ? 1 : d0));
    cJSON_ReplaceItemInObject(t, "shape", bad);
    char *newhdr = cJSON_PrintUnformatted(root);
    size_t m = strlen(newhdr);
    FILE *fp = fopen(path, "wb");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(((uint64_t)m >> (8 * i)) & 0xff);
    assert_int_equal(fwrite(len8, 1, 8, fp), 8);
    assert_int_equal(fwrite(newhdr, 1, m, fp), m);
    assert_int_equal(fwrite(bytes + 8 + n, 1, len - 8 - n, fp), len - 8 - n);
    fclose(fp);
    free(newhdr);
    cJSON_Delete(root);
    free(hdr);
    free(bytes);
    (void)q_lora;
}

static void wrong_shape_names_the_tensor(void **state) {
    (void)state;
    for (int q_lora = 0; q_lora < 2; q_lora++) {
        const char *plain[] = {"model.layers.1.self_attn.q_proj.weight"};
        int count = q_lora ? 7 : 5;
        for (int i = 0; i < count; i++) {
            const char *name = q_lora ? hf_names_lora[i] : i == 0 ? plain[0] : hf_names_lora[i + 2];
            ts_model *ref = hf_fixture(q_lora);
            ts_model_free(ref);
            free(ref);
            reshape_tensor(name, q_lora);
            char out[4096];
            int rc = tu_run(out, sizeof out, "'%s' logits --model '%s' --out '%s' 1 2", tu_cli(), tu_dir,
                            tu_path("logits.npy"));
            if (rc != 2 || tu_count_lines(out) != 1 || !strstr(out, name) || !strstr(out, "tinyseek: "))
                fail_msg("a wrong shape for %s: expected exit 2 and one line naming it; got exit %d:\n%s", name, rc,
                         out);
        }
    }
}

/* `tinyseek info` on the published configs reproduces DeepSeek-V2's Table 1
 * with the real numbers, and reports the cache tinyseek really allocates. */
static void info_reproduces_v2_table(void **state) {
    (void)state;
    const char *root = getenv("TS_SRC") ? getenv("TS_SRC") : ".";
    char out[8192];
    assert_int_equal(tu_run(out, sizeof out, "'%s' info '%s/configs/published/deepseek-v2.json'", tu_cli(), root), 0);
    /* 2·n_h·d_h·l = 2·128·128·60 and (d_c + d_h^R)·l = (512 + 64)·60: 4.5 d_h·l, GQA with 2.25 groups */
    assert_non_null(strstr(out, "= 1966080"));
    assert_non_null(strstr(out, "(512 + 64) x 60 = 34560 = 4.50 d_h l"));
    assert_non_null(strstr(out, "GQA with 2.25 groups"));
    assert_non_null(strstr(out, "allocated by tinyseek: 138240 bytes per token (fp32, = the formula x 4)"));
    assert_int_equal(tu_run(out, sizeof out, "'%s' info '%s/configs/published/deepseek-v3.json'", tu_cli(), root), 0);
    assert_non_null(strstr(out, "(512 + 64) x 61 = 35136"));
    assert_non_null(strstr(out, "= 1998848"));
    assert_non_null(strstr(out, "allocated by tinyseek: 140544 bytes per token"));
}

/* ------------------------------------------------------------------ */
/* YaRN                                                                */
/* ------------------------------------------------------------------ */

/* θ_i after YaRN, from the formulas of the YaRN paper (Peng et al. 2023, §3.2)
 * as DeepSeek's code sets the ramp's ends: the dimension where a frequency
 * turns r times over the original context is d(r) = dim·ln(L/(2πr)) / (2 ln base);
 * low = ⌊d(beta_fast)⌋, high = ⌈d(beta_slow)⌉ (clamped to [0, dim−1]); pairs below
 * low keep θ_i, pairs above high get θ_i/s, and a linear ramp blends in between. */
static double yarn_theta(int i, int dim, double base, double s, double L, double beta_fast, double beta_slow) {
    const double pi = 3.14159265358979323846;
    double theta = 1.0 / pow(base, (2.0 * i) / dim);
    double lo = floor(dim * log(L / (2 * pi * beta_fast)) / (2 * log(base)));
    double hi = ceil(dim * log(L / (2 * pi * beta_slow)) / (2 * log(base)));
    lo = fmax(lo, 0);
    hi = fmin(hi, dim - 1);
    if (hi == lo) hi += 0.001;
    double ramp = fmin(fmax((i - lo) / (hi - lo), 0), 1); /* 0: keep θ, 1: θ/s */
    return theta * (1 - ramp) + theta / s * ramp;
}

static void yarn_frequencies(void **state) {
    (void)state;
    /* DeepSeek-V3's published rope_scaling on its 64 rotated dims. */
    ts_yarn y = {40.0f, 4096, 32.0f, 1.0f, 1.0f, 1.0f};
    float f[32];
    rope_inv_freq(f, 64, 10000.0f, &y);
    /* By hand: d(32) = 64·ln(4096/(64π))/(2 ln 1e4) = 10.47 → low 10; d(1) = 22.5 → high 23. */
    for (int i = 0; i < 32; i++) {
        double want = yarn_theta(i, 64, 10000.0, 40.0, 4096.0, 32.0, 1.0);
        assert_float_equal(f[i], want, 1e-6 * want);
        double theta = 1.0 / pow(10000.0, i / 32.0);
        if (i <= 10) assert_float_equal(f[i], theta, 1e-6 * theta);             /* high frequencies kept */
        if (i >= 23) assert_float_equal(f[i], theta / 40.0, 1e-6 * theta / 40); /* low ones interpolated */
        if (i == 16) assert_float_equal(f[i], theta * (1 - 6.0 / 13) + theta / 40 * (6.0 / 13), 1e-6 * theta);
    }
    /* Without YaRN (or factor 1) the plain θ_i. */
    ts_yarn off = y;
    off.factor = 1.0f;
    rope_inv_freq(f, 64, 10000.0f, &off);
    for (int i = 0; i < 32; i++) assert_float_equal(f[i], 1.0 / pow(10000.0, i / 32.0), 1e-6 / pow(10000.0, i / 32.0));

    /* The tiny chapter-style case the model uses: dim 4, L = 8, s = 4 (ramp over both pairs). */
    ts_config c = tiny_mla(0, 1);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    /* the model's table: cos/sin(pos·θ_i) × mscale(s, 0.707)/mscale(s, 1.0), mscale(s, k) = 0.1·k·ln s + 1 */
    double amp = (0.1 * 0.707 * log(4.0) + 1) / (0.1 * 1.0 * log(4.0) + 1);
    for (int pos = 0; pos < 32; pos += 7)
        for (int i = 0; i < 2; i++) {
            double th = yarn_theta(i, 4, 10000.0, 4.0, 8.0, 32.0, 1.0);
            assert_float_equal(m.rope_cos[pos * 2 + i], amp * cos(pos * th), 1e-6);
            assert_float_equal(m.rope_sin[pos * 2 + i], amp * sin(pos * th), 1e-6);
        }
    /* softmax scale: (dn + dr)^(−1/2) · mscale(s, mscale_all_dim)² */
    double ms = 0.1 * 1.0 * log(4.0) + 1;
    assert_float_equal(mla_softmax_scale(&m.cfg), ms * ms / sqrt(7.0), 1e-6);
    assert_float_equal(yarn_get_mscale(40.0f, 0.707f), 0.1 * 0.707 * log(40.0) + 1, 1e-6);
    assert_float_equal(yarn_get_mscale(1.0f, 0.707f), 1.0, 0);
    ts_model_free(&m);
    /* no YaRN: plain 1/√(dn+dr) and an unscaled table */
    ts_config plain = tiny_mla(0, 0);
    assert_int_equal(ts_model_create(&m, &plain, 0), TS_OK);
    assert_float_equal(mla_softmax_scale(&m.cfg), 1.0 / sqrt(7.0), 1e-7);
    assert_float_equal(m.rope_cos[5 * 2 + 1], cos(5.0 / 100.0), 1e-6); /* θ_1 = 10000^(−2/4) */
    ts_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gradcheck_q_lora),
        cmocka_unit_test(gradcheck_plain_q_proj),
        cmocka_unit_test(gradcheck_q_lora_yarn),
        cmocka_unit_test(absorbed_decode_matches_forward),
        cmocka_unit_test(absorbed_decode_reads_the_latent),
        cmocka_unit_test(cache_size_is_the_formula),
        cmocka_unit_test(mla_parameter_counts),
        cmocka_unit_test_setup_teardown(hf_checkpoint_loads, tu_setup_dir, tu_teardown_dir),
        cmocka_unit_test_setup_teardown(wrong_shape_names_the_tensor, tu_setup_dir, tu_teardown_dir),
        cmocka_unit_test(info_reproduces_v2_table),
        cmocka_unit_test(yarn_frequencies),
    };
    return cmocka_run_group_tests_name("ch04_mla", tests, NULL, NULL);
}
