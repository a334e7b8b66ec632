/**
 * @file config.c
 * @brief config.json ⇄ ts_config, with one-line errors naming the field.
 */
#include "model/config.h"

#include <cJSON.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
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
    double v = item->valuedouble;
    /* 1e39 parses as a double but is +inf as a float (and cJSON would save it as null). */
    if (!isfinite(v) || fabs(v) > FLT_MAX) {
        r->status = ts_fail(TS_ERR_RANGE, "%s: field '%s' is %g, outside the range of a float (|x| <= %g)", r->source,
                            name, v, (double)FLT_MAX);
        return;
    }
    *dst = (float)v;
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
        char shown[48];
        if (cJSON_IsString(item))
            r->status = ts_fail(TS_ERR_FORMAT, "%s: field '%s' is \"%s\", longer than %zu characters", r->source, name,
                                ts_escape(shown, sizeof shown, item->valuestring), cap - 1);
        else
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
        char msg[512]; /* ts_fail() writes where ts_last_error() points: copy it first */
        snprintf(msg, sizeof msg, "%s", ts_last_error());
        r->status = ts_fail(sub.status, "%s (in rope_scaling)", msg);
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
        else {
            char shown[80];
            r.status = ts_fail(TS_ERR_FORMAT, "%s: model_type '%s' is not supported (expected \"llama\" or \"deepseek_v3\")",
                               source, ts_escape(shown, sizeof shown, c->model_type));
        }
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

/* A float field that must be finite (every one) and, where it matters, in range. */
#define REQUIRE_FINITE(x, name) REQUIRE(isfinite(x), "%s: %s must be a finite number, got %g", source, name, (double)(x))

/* Parameters, gradients and moments of the model @p c describes, checked in
 * 64-bit (double) arithmetic before anything is registered or allocated: a
 * size no machine can hold is refused naming the field, instead of a hang in
 * registration or an int overflowing in a shape. */
static ts_status check_sizes(const ts_config *c, const char *source) {
    const double int_max = INT_MAX;
    double C = c->hidden_size, H = c->num_attention_heads, L = c->num_hidden_layers;
    /* Tensor dimensions are ints: products of fields that become one dimension must fit. */
    typedef struct {
        double value;
        const char *what;
    } product;
    product dims[8];
    int nd = 0;
    if (c->arch == TS_ARCH_LLAMA) {
        dims[nd++] = (product){H * c->head_dim, "num_attention_heads x head_dim"};
        dims[nd++] = (product){(double)c->num_key_value_heads * c->head_dim, "num_key_value_heads x head_dim"};
    } else {
        double qk = (double)c->qk_nope_head_dim + c->qk_rope_head_dim;
        dims[nd++] = (product){qk, "qk_nope_head_dim + qk_rope_head_dim"};
        dims[nd++] = (product){H * qk, "num_attention_heads x (qk_nope_head_dim + qk_rope_head_dim)"};
        dims[nd++] = (product){(double)c->kv_lora_rank + c->qk_rope_head_dim, "kv_lora_rank + qk_rope_head_dim"};
        dims[nd++] = (product){H * ((double)c->qk_nope_head_dim + c->v_head_dim),
                                       "num_attention_heads x (qk_nope_head_dim + v_head_dim)"};
        dims[nd++] = (product){H * c->v_head_dim, "num_attention_heads x v_head_dim"};
    }
    if (c->n_routed_experts > 0)
        dims[nd++] = (product){(double)c->n_shared_experts * c->moe_intermediate_size,
                                       "n_shared_experts x moe_intermediate_size"};
    for (int i = 0; i < nd; i++)
        REQUIRE(dims[i].value <= int_max, "%s: %s = %.0f is larger than a tensor dimension can be (%d)", source,
                dims[i].what, dims[i].value, INT_MAX);

    /* Parameters per layer and tensors per layer, as ts_model_create() registers them. */
    double attn, attn_tensors;
    if (c->arch == TS_ARCH_LLAMA) {
        attn = 2 * C * H * c->head_dim + 2 * C * (double)c->num_key_value_heads * c->head_dim;
        attn_tensors = 4;
    } else {
        double qk = (double)c->qk_nope_head_dim + c->qk_rope_head_dim, rq = c->q_lora_rank;
        attn = (rq > 0 ? C * rq + rq + rq * H * qk : C * H * qk) +
               C * ((double)c->kv_lora_rank + c->qk_rope_head_dim) + c->kv_lora_rank +
               (double)c->kv_lora_rank * H * ((double)c->qk_nope_head_dim + c->v_head_dim) + H * c->v_head_dim * C;
        attn_tensors = rq > 0 ? 7 : 5;
    }
    double E = c->n_routed_experts, moe_layers = 0;
    if (E > 0) moe_layers = c->first_k_dense_replace >= c->num_hidden_layers ? 0 : L - c->first_k_dense_replace;
    double dense = 2 * C + attn + 3 * C * c->intermediate_size;
    double experts = (E + c->n_shared_experts) * 3 * C * c->moe_intermediate_size;
    double moe = 2 * C + attn + E * (C + 1) + experts;
    double tensors = 2 + (L - moe_layers) * (5 + attn_tensors) + moe_layers * (7 + attn_tensors + 3 * E);
    double embed = (double)c->vocab_size * C * (c->tie_word_embeddings ? 1 : 2);
    /* Each tensor starts 16-float aligned; 4 floats per parameter: value, gradient, two AdamW moments. */
    double bytes = 16 * (embed + C + (L - moe_layers) * dense + moe_layers * moe + 16 * tensors);
    double rope = 8.0 * c->max_position_embeddings *
                  (c->arch == TS_ARCH_LLAMA ? c->head_dim : c->qk_rope_head_dim); /* cos and sin tables */
    const double limit = (double)TS_MAX_ALLOC_BYTES;
    if (bytes > limit) {
        const char *why;
        char buf[160];
        double layer_max = dense > moe || moe_layers == 0 ? dense : moe;
        if (embed >= layer_max * L) why = "vocab_size x hidden_size";
        else if (16 * layer_max <= limit) {
            snprintf(buf, sizeof buf, "num_hidden_layers %d x %.3g parameters per layer", c->num_hidden_layers, layer_max);
            why = buf;
        } else if (moe_layers > 0 && experts >= attn && experts >= 3 * C * c->intermediate_size)
            why = "n_routed_experts x moe_intermediate_size x hidden_size";
        else if (attn >= 3 * C * c->intermediate_size)
            why = "the attention projections (heads x head dims x hidden_size)";
        else
            why = "intermediate_size x hidden_size";
        return ts_fail(TS_ERR_RANGE,
                       "%s: %s: the model would need %.3g bytes for its parameters, gradients and AdamW moments, more "
                       "than could ever be allocated (%.3g)",
                       source, why, bytes, limit);
    }
    REQUIRE(tensors <= (1 << 28), "%s: num_hidden_layers %d with %.0f tensors per layer makes %.3g tensors, more than "
            "tinyseek can register (%d)", source, c->num_hidden_layers, (tensors - 2) / L, tensors, 1 << 28);
    REQUIRE(rope <= limit, "%s: max_position_embeddings %d: the RoPE tables would need %.3g bytes, more than could ever "
            "be allocated", source, c->max_position_embeddings, rope);
    return TS_OK;
}

ts_status ts_config_validate(const ts_config *c, const char *source) {
    REQUIRE_FINITE(c->rms_norm_eps, "rms_norm_eps");
    REQUIRE_FINITE(c->rope_theta, "rope_theta");
    REQUIRE_FINITE(c->initializer_range, "initializer_range");
    REQUIRE_FINITE(c->routed_scaling_factor, "routed_scaling_factor");
    REQUIRE_FINITE(c->aux_loss_alpha, "aux_loss_alpha");
    REQUIRE(c->initializer_range >= 0, "%s: initializer_range must be >= 0, got %g", source, c->initializer_range);
    REQUIRE(c->vocab_size > 0, "%s: vocab_size must be positive, got %d", source, c->vocab_size);
    REQUIRE(c->hidden_size > 0, "%s: hidden_size must be positive, got %d", source, c->hidden_size);
    REQUIRE(c->num_hidden_layers > 0, "%s: num_hidden_layers must be positive, got %d", source, c->num_hidden_layers);
    REQUIRE(c->num_attention_heads > 0, "%s: num_attention_heads must be positive, got %d", source, c->num_attention_heads);
    REQUIRE(c->intermediate_size > 0, "%s: intermediate_size must be positive, got %d", source, c->intermediate_size);
    REQUIRE(c->max_position_embeddings > 0, "%s: max_position_embeddings must be positive, got %d", source,
            c->max_position_embeddings);
    REQUIRE(c->rms_norm_eps > 0 && c->rms_norm_eps < 1, "%s: rms_norm_eps must be in (0, 1), got %g", source,
            c->rms_norm_eps);
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
        char shown[80];
        REQUIRE(strcmp(c->scoring_func, "softmax") == 0 || strcmp(c->scoring_func, "sigmoid") == 0,
                "%s: scoring_func must be \"softmax\" or \"sigmoid\", got \"%s\"", source,
                ts_escape(shown, sizeof shown, c->scoring_func));
        /* tinyseek routes by n_group/topk_group and the bias; these are the names Hugging Face's V2/V3 use for that. */
        REQUIRE(strcmp(c->topk_method, "greedy") == 0 || strcmp(c->topk_method, "group_limited_greedy") == 0 ||
                    strcmp(c->topk_method, "noaux_tc") == 0,
                "%s: topk_method must be \"greedy\", \"group_limited_greedy\" or \"noaux_tc\", got \"%s\"", source,
                ts_escape(shown, sizeof shown, c->topk_method));
        REQUIRE(c->n_shared_experts >= 0, "%s: n_shared_experts must be >= 0", source);
        REQUIRE(c->first_k_dense_replace >= 0, "%s: first_k_dense_replace must be >= 0", source);
    }
    // chapter 6: D modules, module k predicting k+1 tokens ahead from positions 0..T-1-k
    REQUIRE(c->num_nextn_predict_layers >= 0 && c->num_nextn_predict_layers < c->max_position_embeddings &&
                c->num_nextn_predict_layers <= 64,
            "%s: num_nextn_predict_layers must be in 0..min(64, max_position_embeddings - 1), got %d", source,
            c->num_nextn_predict_layers);
    if (c->has_yarn) {
        REQUIRE_FINITE(c->yarn.factor, "rope_scaling.factor");
        REQUIRE_FINITE(c->yarn.beta_fast, "rope_scaling.beta_fast");
        REQUIRE_FINITE(c->yarn.beta_slow, "rope_scaling.beta_slow");
        REQUIRE_FINITE(c->yarn.mscale, "rope_scaling.mscale");
        REQUIRE_FINITE(c->yarn.mscale_all_dim, "rope_scaling.mscale_all_dim");
        REQUIRE(c->yarn.factor >= 1, "%s: rope_scaling.factor must be >= 1", source);
        REQUIRE(c->yarn.original_max_position > 0, "%s: rope_scaling.original_max_position_embeddings must be positive",
                source);
        /* The ramp runs between the pairs turning beta_fast and beta_slow times: log(max_pos / (2π·beta)). */
        REQUIRE(c->yarn.beta_slow > 0 && c->yarn.beta_fast >= c->yarn.beta_slow,
                "%s: rope_scaling.beta_fast (%g) and beta_slow (%g) must satisfy beta_fast >= beta_slow > 0", source,
                c->yarn.beta_fast, c->yarn.beta_slow);
        /* 0.1·mscale·ln(factor) + 1 divides the softmax scale: keep it >= 1. */
        REQUIRE(c->yarn.mscale >= 0 && c->yarn.mscale_all_dim >= 0,
                "%s: rope_scaling.mscale and mscale_all_dim must be >= 0", source);
    }
    return check_sizes(c, source);
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
