/**
 * @file config.c
 * @brief config.json ⇄ ts_config, with one-line errors naming the field.
 */
#include "model/config.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"

void ts_config_default(ts_config *c) {
    memset(c, 0, sizeof *c);
    strcpy(c->model_type, "llama");
    c->arch = TS_ARCH_LLAMA;
    c->vocab_size = 512;
    c->hidden_size = 128;
    c->num_hidden_layers = 4;
    c->num_attention_heads = 4;
    c->num_key_value_heads = 4;
    c->head_dim = 32;
    c->intermediate_size = 384;
    c->max_position_embeddings = 256;
    c->rms_norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->tie_word_embeddings = 0;
    c->initializer_range = 0.02f;
    c->bos_token_id = -1;
    c->eos_token_id = -1;
    c->n_group = 1;
    c->topk_group = 1;
    c->routed_scaling_factor = 1.0f;
    strcpy(c->scoring_func, "softmax");
    strcpy(c->topk_method, "greedy");
}

/* ---- field readers: each names the field and the file on error ---------- */

typedef struct {
    const cJSON *root;
    const char *source;
    ts_status status; /* first error, sticky */
} reader;

static const cJSON *field(reader *r, const char *name, int required) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(r->root, name);
    if ((!item || cJSON_IsNull(item)) && required && !r->status)
        r->status = ts_fail(TS_ERR_FORMAT, "%s: missing required field '%s'", r->source, name);
    return (item && !cJSON_IsNull(item)) ? item : NULL;
}

static void read_int(reader *r, const char *name, int *dst, int required) {
    const cJSON *item = field(r, name, required);
    if (!item || r->status) return;
    double v = item->valuedouble;
    if (!cJSON_IsNumber(item) || v != floor(v) || fabs(v) > 2147483647.0) {
        r->status = ts_fail(TS_ERR_FORMAT, "%s: field '%s' must be an integer", r->source, name);
        return;
    }
    *dst = (int)v;
}

static void read_float(reader *r, const char *name, float *dst, int required) {
    const cJSON *item = field(r, name, required);
    if (!item || r->status) return;
    if (!cJSON_IsNumber(item)) {
        r->status = ts_fail(TS_ERR_FORMAT, "%s: field '%s' must be a number", r->source, name);
        return;
    }
    *dst = (float)item->valuedouble;
}

static void read_bool(reader *r, const char *name, int *dst, int required) {
    const cJSON *item = field(r, name, required);
    if (!item || r->status) return;
    if (!cJSON_IsBool(item)) {
        r->status = ts_fail(TS_ERR_FORMAT, "%s: field '%s' must be true or false", r->source, name);
        return;
    }
    *dst = cJSON_IsTrue(item);
}

static void read_string(reader *r, const char *name, char *dst, size_t cap, int required) {
    const cJSON *item = field(r, name, required);
    if (!item || r->status) return;
    if (!cJSON_IsString(item) || strlen(item->valuestring) >= cap) {
        r->status = ts_fail(TS_ERR_FORMAT, "%s: field '%s' must be a string (< %zu chars)", r->source, name, cap);
        return;
    }
    strcpy(dst, item->valuestring);
}

/* rope_scaling: {"type": "yarn", "factor": .., ...}; other types are refused. */
static void read_rope_scaling(reader *r, ts_config *c) {
    const cJSON *rs = field(r, "rope_scaling", 0);
    if (!rs || r->status) return;
    if (!cJSON_IsObject(rs)) {
        r->status = ts_fail(TS_ERR_FORMAT, "%s: field 'rope_scaling' must be an object or null", r->source);
        return;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!type) type = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "yarn") != 0) {
        r->status = ts_fail(TS_ERR_FORMAT, "%s: rope_scaling.type must be \"yarn\" (the only scaling tinyseek implements)", r->source);
        return;
    }
    reader sub = {rs, r->source, TS_OK};
    c->has_yarn = 1;
    c->yarn.factor = 1.0f;
    c->yarn.original_max_position = c->max_position_embeddings;
    c->yarn.beta_fast = 32.0f;
    c->yarn.beta_slow = 1.0f;
    c->yarn.mscale = 1.0f;
    c->yarn.mscale_all_dim = 0.0f;
    read_float(&sub, "factor", &c->yarn.factor, 1);
    read_int(&sub, "original_max_position_embeddings", &c->yarn.original_max_position, 1);
    read_float(&sub, "beta_fast", &c->yarn.beta_fast, 0);
    read_float(&sub, "beta_slow", &c->yarn.beta_slow, 0);
    read_float(&sub, "mscale", &c->yarn.mscale, 0);
    read_float(&sub, "mscale_all_dim", &c->yarn.mscale_all_dim, 0);
    if (sub.status) {
        r->status = ts_fail(sub.status, "%s (in rope_scaling)", ts_last_error());
    }
}

ts_status ts_config_parse(ts_config *c, const char *json, const char *source) {
    ts_config_default(c);
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ts_fail(TS_ERR_FORMAT, "%s: not a JSON object", source);
    }
    reader r = {root, source, TS_OK};
    read_string(&r, "model_type", c->model_type, sizeof c->model_type, 0);
    if (!r.status) {
        if (strcmp(c->model_type, "llama") == 0) c->arch = TS_ARCH_LLAMA;
        else if (strcmp(c->model_type, "deepseek_v3") == 0 || strcmp(c->model_type, "deepseek_v2") == 0)
            c->arch = TS_ARCH_DEEPSEEK_V3;
        else
            r.status = ts_fail(TS_ERR_FORMAT, "%s: model_type '%s' is not supported (expected \"llama\" or \"deepseek_v3\")",
                               source, c->model_type);
    }
    read_int(&r, "vocab_size", &c->vocab_size, 1);
    read_int(&r, "hidden_size", &c->hidden_size, 1);
    read_int(&r, "num_hidden_layers", &c->num_hidden_layers, 1);
    read_int(&r, "num_attention_heads", &c->num_attention_heads, 1);
    c->num_key_value_heads = c->num_attention_heads;
    read_int(&r, "num_key_value_heads", &c->num_key_value_heads, 0);
    c->head_dim = c->num_attention_heads > 0 ? c->hidden_size / c->num_attention_heads : 0;
    read_int(&r, "head_dim", &c->head_dim, 0);
    read_int(&r, "intermediate_size", &c->intermediate_size, 1);
    read_int(&r, "max_position_embeddings", &c->max_position_embeddings, 1);
    read_float(&r, "rms_norm_eps", &c->rms_norm_eps, 1);
    read_float(&r, "rope_theta", &c->rope_theta, 0);
    read_bool(&r, "tie_word_embeddings", &c->tie_word_embeddings, 0);
    read_float(&r, "initializer_range", &c->initializer_range, 0);
    read_int(&r, "bos_token_id", &c->bos_token_id, 0);
    read_int(&r, "eos_token_id", &c->eos_token_id, 0);

    int deepseek = c->arch == TS_ARCH_DEEPSEEK_V3;
    read_int(&r, "q_lora_rank", &c->q_lora_rank, 0); /* null or absent = plain q_proj */
    read_int(&r, "kv_lora_rank", &c->kv_lora_rank, deepseek);
    read_int(&r, "qk_nope_head_dim", &c->qk_nope_head_dim, deepseek);
    read_int(&r, "qk_rope_head_dim", &c->qk_rope_head_dim, deepseek);
    read_int(&r, "v_head_dim", &c->v_head_dim, deepseek);
    read_int(&r, "n_routed_experts", &c->n_routed_experts, 0);
    int moe = c->n_routed_experts > 0; /* MoE works with any attention (chapter 5) */
    read_int(&r, "n_shared_experts", &c->n_shared_experts, 0);
    read_int(&r, "num_experts_per_tok", &c->num_experts_per_tok, moe);
    read_int(&r, "moe_intermediate_size", &c->moe_intermediate_size, moe);
    read_int(&r, "first_k_dense_replace", &c->first_k_dense_replace, 0);
    read_int(&r, "n_group", &c->n_group, 0);
    read_int(&r, "topk_group", &c->topk_group, 0);
    read_float(&r, "routed_scaling_factor", &c->routed_scaling_factor, 0);
    read_string(&r, "scoring_func", c->scoring_func, sizeof c->scoring_func, 0);
    read_bool(&r, "norm_topk_prob", &c->norm_topk_prob, 0);
    read_string(&r, "topk_method", c->topk_method, sizeof c->topk_method, 0);
    read_float(&r, "aux_loss_alpha", &c->aux_loss_alpha, 0);
    read_int(&r, "num_nextn_predict_layers", &c->num_nextn_predict_layers, 0);
    read_rope_scaling(&r, c);
    cJSON_Delete(root);
    if (r.status) return r.status;
    return ts_config_validate(c, source);
}

#define REQUIRE(cond, ...)                                       \
    do {                                                         \
        if (!(cond)) return ts_fail(TS_ERR_RANGE, __VA_ARGS__); \
    } while (0)

ts_status ts_config_validate(const ts_config *c, const char *source) {
    REQUIRE(c->vocab_size > 0, "%s: vocab_size must be positive, got %d", source, c->vocab_size);
    REQUIRE(c->hidden_size > 0, "%s: hidden_size must be positive, got %d", source, c->hidden_size);
    REQUIRE(c->num_hidden_layers > 0, "%s: num_hidden_layers must be positive, got %d", source, c->num_hidden_layers);
    REQUIRE(c->num_attention_heads > 0, "%s: num_attention_heads must be positive, got %d", source, c->num_attention_heads);
    REQUIRE(c->intermediate_size > 0, "%s: intermediate_size must be positive, got %d", source, c->intermediate_size);
    REQUIRE(c->max_position_embeddings > 0, "%s: max_position_embeddings must be positive, got %d", source,
            c->max_position_embeddings);
    REQUIRE(c->rms_norm_eps > 0, "%s: rms_norm_eps must be positive", source);
    REQUIRE(c->rope_theta > 1, "%s: rope_theta must be > 1, got %g", source, c->rope_theta);
    REQUIRE(c->bos_token_id < c->vocab_size && c->eos_token_id < c->vocab_size,
            "%s: bos_token_id/eos_token_id must be below vocab_size %d", source, c->vocab_size);
    if (c->arch == TS_ARCH_LLAMA) {
        REQUIRE(c->num_key_value_heads > 0 && c->num_attention_heads % c->num_key_value_heads == 0,
                "%s: num_key_value_heads (%d) must divide num_attention_heads (%d)", source, c->num_key_value_heads,
                c->num_attention_heads);
        REQUIRE(c->head_dim > 0 && c->head_dim % 2 == 0, "%s: head_dim must be positive and even (RoPE rotates pairs), got %d",
                source, c->head_dim);
    } else {
        REQUIRE(c->q_lora_rank >= 0, "%s: q_lora_rank must be >= 0 (0 = plain q_proj)", source);
        REQUIRE(c->kv_lora_rank > 0, "%s: kv_lora_rank must be positive", source);
        REQUIRE(c->qk_nope_head_dim > 0, "%s: qk_nope_head_dim must be positive", source);
        REQUIRE(c->qk_rope_head_dim > 0 && c->qk_rope_head_dim % 2 == 0, "%s: qk_rope_head_dim must be positive and even",
                source);
        REQUIRE(c->v_head_dim > 0, "%s: v_head_dim must be positive", source);
    }
    if (c->n_routed_experts > 0) {
        REQUIRE(c->num_experts_per_tok > 0 && c->num_experts_per_tok <= c->n_routed_experts,
                "%s: num_experts_per_tok must be in 1..n_routed_experts (%d)", source, c->n_routed_experts);
        REQUIRE(c->moe_intermediate_size > 0, "%s: moe_intermediate_size must be positive", source);
        REQUIRE(c->n_group > 0 && c->n_routed_experts % c->n_group == 0,
                "%s: n_group (%d) must divide n_routed_experts (%d)", source, c->n_group, c->n_routed_experts);
        REQUIRE(c->topk_group > 0 && c->topk_group <= c->n_group, "%s: topk_group must be in 1..n_group", source);
        REQUIRE(c->num_experts_per_tok <= c->topk_group * (c->n_routed_experts / c->n_group),
                "%s: num_experts_per_tok (%d) exceeds the experts of the topk_group kept groups (%d x %d)", source,
                c->num_experts_per_tok, c->topk_group, c->n_routed_experts / c->n_group);
        REQUIRE(c->routed_scaling_factor > 0, "%s: routed_scaling_factor must be positive", source);
        REQUIRE(c->aux_loss_alpha >= 0, "%s: aux_loss_alpha must be >= 0", source);
        REQUIRE(strcmp(c->scoring_func, "softmax") == 0 || strcmp(c->scoring_func, "sigmoid") == 0,
                "%s: scoring_func must be \"softmax\" or \"sigmoid\", got \"%s\"", source, c->scoring_func);
        REQUIRE(c->n_shared_experts >= 0, "%s: n_shared_experts must be >= 0", source);
        REQUIRE(c->first_k_dense_replace >= 0, "%s: first_k_dense_replace must be >= 0", source);
    }
    // chapter 6: D modules, module k predicting k+1 tokens ahead from positions 0..T-1-k
    REQUIRE(c->num_nextn_predict_layers >= 0 && c->num_nextn_predict_layers < c->max_position_embeddings &&
                c->num_nextn_predict_layers <= 64,
            "%s: num_nextn_predict_layers must be in 0..min(64, max_position_embeddings - 1), got %d", source,
            c->num_nextn_predict_layers);
    if (c->has_yarn) {
        REQUIRE(c->yarn.factor >= 1, "%s: rope_scaling.factor must be >= 1", source);
        REQUIRE(c->yarn.original_max_position > 0, "%s: rope_scaling.original_max_position_embeddings must be positive",
                source);
    }
    return TS_OK;
}

ts_status ts_config_load(ts_config *c, const char *path) {
    char *text = NULL;
    ts_status st = ts_read_file(path, &text, NULL);
    if (st) return st;
    st = ts_config_parse(c, text, path);
    free(text);
    return st;
}

ts_status ts_config_save(const ts_config *c, const char *path) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model_type", c->model_type);
    cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(c->arch == TS_ARCH_LLAMA ? "LlamaForCausalLM" : "DeepseekV3ForCausalLM"));
    cJSON_AddNumberToObject(root, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(root, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(root, "num_hidden_layers", c->num_hidden_layers);
    cJSON_AddNumberToObject(root, "num_attention_heads", c->num_attention_heads);
    cJSON_AddNumberToObject(root, "num_key_value_heads", c->num_key_value_heads);
    if (c->arch == TS_ARCH_LLAMA) cJSON_AddNumberToObject(root, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(root, "intermediate_size", c->intermediate_size);
    cJSON_AddNumberToObject(root, "max_position_embeddings", c->max_position_embeddings);
    cJSON_AddNumberToObject(root, "rms_norm_eps", c->rms_norm_eps);
    cJSON_AddNumberToObject(root, "rope_theta", c->rope_theta);
    cJSON_AddBoolToObject(root, "tie_word_embeddings", c->tie_word_embeddings);
    cJSON_AddNumberToObject(root, "initializer_range", c->initializer_range);
    if (c->bos_token_id >= 0) cJSON_AddNumberToObject(root, "bos_token_id", c->bos_token_id);
    if (c->eos_token_id >= 0) cJSON_AddNumberToObject(root, "eos_token_id", c->eos_token_id);
    cJSON_AddStringToObject(root, "hidden_act", "silu");
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    if (c->arch == TS_ARCH_DEEPSEEK_V3) {
        if (c->q_lora_rank > 0) cJSON_AddNumberToObject(root, "q_lora_rank", c->q_lora_rank);
        else cJSON_AddNullToObject(root, "q_lora_rank");
        cJSON_AddNumberToObject(root, "kv_lora_rank", c->kv_lora_rank);
        cJSON_AddNumberToObject(root, "qk_nope_head_dim", c->qk_nope_head_dim);
        cJSON_AddNumberToObject(root, "qk_rope_head_dim", c->qk_rope_head_dim);
        cJSON_AddNumberToObject(root, "v_head_dim", c->v_head_dim);
    }
    if (c->arch == TS_ARCH_DEEPSEEK_V3 || c->n_routed_experts > 0) { /* MoE fields, with any attention */
        cJSON_AddNumberToObject(root, "n_routed_experts", c->n_routed_experts);
        cJSON_AddNumberToObject(root, "n_shared_experts", c->n_shared_experts);
        cJSON_AddNumberToObject(root, "num_experts_per_tok", c->num_experts_per_tok);
        cJSON_AddNumberToObject(root, "moe_intermediate_size", c->moe_intermediate_size);
        cJSON_AddNumberToObject(root, "first_k_dense_replace", c->first_k_dense_replace);
        cJSON_AddNumberToObject(root, "n_group", c->n_group);
        cJSON_AddNumberToObject(root, "topk_group", c->topk_group);
        cJSON_AddNumberToObject(root, "routed_scaling_factor", c->routed_scaling_factor);
        cJSON_AddStringToObject(root, "scoring_func", c->scoring_func);
        cJSON_AddBoolToObject(root, "norm_topk_prob", c->norm_topk_prob);
        cJSON_AddStringToObject(root, "topk_method", c->topk_method);
        cJSON_AddNumberToObject(root, "aux_loss_alpha", c->aux_loss_alpha);
        cJSON_AddNumberToObject(root, "num_nextn_predict_layers", c->num_nextn_predict_layers);
    } else if (c->num_nextn_predict_layers > 0) { // chapter 6: a dense model can carry MTP modules too
        cJSON_AddNumberToObject(root, "num_nextn_predict_layers", c->num_nextn_predict_layers);
    }
    if (c->has_yarn) {
        cJSON *rs = cJSON_AddObjectToObject(root, "rope_scaling");
        cJSON_AddStringToObject(rs, "type", "yarn");
        cJSON_AddNumberToObject(rs, "factor", c->yarn.factor);
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->yarn.original_max_position);
        cJSON_AddNumberToObject(rs, "beta_fast", c->yarn.beta_fast);
        cJSON_AddNumberToObject(rs, "beta_slow", c->yarn.beta_slow);
        cJSON_AddNumberToObject(rs, "mscale", c->yarn.mscale);
        cJSON_AddNumberToObject(rs, "mscale_all_dim", c->yarn.mscale_all_dim);
    } else {
        cJSON_AddNullToObject(root, "rope_scaling");
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return ts_fail(TS_ERR_NOMEM, "%s: out of memory formatting config", path);
    size_t len = strlen(text);
    char *with_nl = realloc(text, len + 2);
    if (!with_nl) {
        free(text);
        return ts_fail(TS_ERR_NOMEM, "%s: out of memory formatting config", path);
    }
    with_nl[len] = '\n';
    with_nl[len + 1] = '\0';
    ts_status st = ts_write_file_atomic(path, with_nl, len + 1);
    free(with_nl);
    return st;
}

int ts_config_qk_head_dim(const ts_config *c) {
    return c->arch == TS_ARCH_LLAMA ? c->head_dim : c->qk_nope_head_dim + c->qk_rope_head_dim;
}

int ts_config_v_head_dim(const ts_config *c) { return c->arch == TS_ARCH_LLAMA ? c->head_dim : c->v_head_dim; }
