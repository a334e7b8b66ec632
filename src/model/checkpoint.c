/**
 * @file checkpoint.c
 * @brief Save and load Hugging Face model folders.
 */
#include "model/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "io/safetensors.h"
#include "io/savedir.h"
#include "io/trainstate.h"
#include "data/chat.h"
#include "model/gqa.h"

static void join(char *out, size_t cap, const char *dir, const char *file) {
    snprintf(out, cap, "%s/%s", dir, file);
}

const char *const ts_checkpoint_files[] = {"config.json",           "model.safetensors", "tokenizer.json",
                                           "tokenizer_config.json", TS_TRAINSTATE_FILE,  NULL};

/* tokenizer_config.json beside tokenizer.json: the special tokens and the chat
 * templates (data/chat.h) in Jinja, so other tools render prompts as tinyseek does. */
static ts_status write_tokenizer_config(const char *dir) {
    char path[4096], *text = NULL;
    join(path, sizeof path, dir, "tokenizer_config.json");
    ts_status st = ts_chat_tokenizer_config(&text);
    if (!st) st = ts_write_file_atomic(path, text, strlen(text));
    free(text);
    return st;
}

ts_status ts_checkpoint_write(const ts_model *m, const char *dir, const char *tokenizer_json) {
    char path[4096];
    ts_status st;
    join(path, sizeof path, dir, "config.json");
    if ((st = ts_config_save(&m->cfg, path))) return st;
    ts_savedir_test_point("config");
    join(path, sizeof path, dir, "model.safetensors");
    if ((st = ts_safetensors_save(&m->params, path, "{\"format\": \"pt\", \"producer\": \"tinyseek\"}"))) return st;
    ts_savedir_test_point("model");
    if (tokenizer_json) {
        if ((st = write_tokenizer_config(dir))) return st;
        join(path, sizeof path, dir, "tokenizer.json");
        if (strcmp(tokenizer_json, path) == 0) return TS_OK; /* already in place */
        char *text = NULL;
        size_t len = 0;
        if ((st = ts_read_file(tokenizer_json, &text, &len))) return st;
        st = ts_write_file_atomic(path, text, len);
        free(text);
        if (!st) ts_savedir_test_point("tokenizer");
    }
    return st;
}

ts_status ts_checkpoint_save(const ts_model *m, const char *dir, const char *tokenizer_json) {
    ts_savedir sd;
    ts_status st = ts_savedir_begin(&sd, dir, ts_checkpoint_files);
    if (st) return st;
    if ((st = ts_checkpoint_write(m, sd.tmp, tokenizer_json))) {
        ts_savedir_abort(&sd);
        return st;
    }
    return ts_savedir_commit(&sd);
}

/* A registered tensor that a checkpoint may lack: the MoE selection bias where
 * the routing method does not use it (DeepSeek-V2 folders have none); it then
 * stays 0, which selects exactly as no bias does. */
static int may_be_missing(const ts_config *c, const char *name) {
    return !moe_bias_required(c) && strstr(name, ".mlp.gate.e_score_correction_bias") != NULL;
}

/* Point @p present at the tensors of @p all that the file at @p path has, or
 * must have: the same data, without the optional ones the file lacks. */
static ts_status tensors_to_load(ts_params *present, ts_param **kept, const ts_params *all, const ts_config *c,
                                 const char *path) {
    *present = *all;
    *kept = NULL;
    int optional = 0;
    for (int i = 0; i < all->count; i++) optional |= may_be_missing(c, all->params[i].name);
    if (!optional) return TS_OK;
    ts_safetensors st;
    ts_status s = ts_safetensors_open(&st, path);
    if (s) return s;
    *kept = ts_malloc((size_t)all->count * sizeof **kept, "tensor list");
    if (!*kept) {
        ts_safetensors_close(&st);
        return TS_ERR_NOMEM;
    }
    int n = 0;
    for (int i = 0; i < all->count; i++)
        if (!may_be_missing(c, all->params[i].name) || ts_safetensors_find(&st, all->params[i].name))
            (*kept)[n++] = all->params[i];
    ts_safetensors_close(&st);
    present->params = *kept;
    present->count = n;
    present->index = NULL; /* the hash index holds positions in all->params: look names up in the subset itself */
    present->index_cap = 0;
    return TS_OK;
}

ts_status ts_checkpoint_load(ts_model *m, const char *dir, ts_model_mode mode) {
    char path[4096];
    ts_config cfg;
    memset(m, 0, sizeof *m); /* on any failure the model is left empty */
    join(path, sizeof path, dir, "config.json");
    ts_status st = ts_config_load(&cfg, path);
    if (st) return st;
    if ((st = ts_model_create(m, &cfg, mode))) {
        ts_model_free(m); /* what a half-done create allocated */
        return st;
    }
    join(path, sizeof path, dir, "model.safetensors");
    ts_params present;
    ts_param *kept;
    st = tensors_to_load(&present, &kept, &m->params, &cfg, path);
    if (!st) st = ts_safetensors_load_params(&present, path);
    free(kept);
    if (st) {
        ts_model_free(m);
        return st;
    }
    return TS_OK;
}

ts_status ts_checkpoint_load_main(ts_model *m, const char *dir, ts_model_mode mode, int *dropped) {
    char path[4096];
    ts_config cfg;
    if (dropped) *dropped = 0;
    join(path, sizeof path, dir, "config.json");
    ts_status st = ts_config_load(&cfg, path);
    if (st) return st;
    if (cfg.num_nextn_predict_layers == 0) return ts_checkpoint_load(m, dir, mode);
    // Load everything (so the file is checked against its own config), then keep the main model.
    ts_model full;
    if ((st = ts_checkpoint_load(&full, dir, TS_MODEL_FROZEN))) return st;
    int D = cfg.num_nextn_predict_layers;
    cfg.num_nextn_predict_layers = 0;
    if ((st = ts_model_create(m, &cfg, mode))) {
        ts_model_free(&full);
        return st;
    }
    for (int i = 0; i < m->params.count; i++) { // the main model's tensors are the first ones, by name
        const ts_param *t = &m->params.params[i];
        const ts_param *s = &full.params.params[ts_params_find(&full.params, t->name)];
        memcpy(m->params.data + t->offset, full.params.data + s->offset, t->numel * sizeof(float));
    }
    ts_model_free(&full);
    if (dropped) *dropped = D;
    return TS_OK;
}

/* ------------------------------------------------------------------ */
/* Converting a checkpoint: mean-pool the key/value heads of a group    */
/* ------------------------------------------------------------------ */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

ts_status ts_model_convert_gqa(ts_model *dst, const ts_model *src, int kv_heads) {
    const ts_config *sc = &src->cfg;
    memset(dst, 0, sizeof *dst);
    if (sc->arch != TS_ARCH_LLAMA)
        return ts_fail(TS_ERR_ARG, "convert-gqa: model_type '%s' has no k_proj/v_proj heads to pool (need \"llama\")",
                       sc->model_type);
    if (kv_heads <= 0 || sc->num_key_value_heads % kv_heads != 0)
        return ts_fail(TS_ERR_ARG, "convert-gqa: --kv-heads %d must divide the model's num_key_value_heads %d "
                       "(num_attention_heads %d)", kv_heads, sc->num_key_value_heads, sc->num_attention_heads);
    ts_config cfg = *sc;
    cfg.num_key_value_heads = kv_heads;
    ts_status st = ts_model_create(dst, &cfg, 0);
    if (st) return st;
    const ts_params *sp = &src->params, *dp = &dst->params;
    for (int i = 0; i < dp->count; i++) {
        const ts_param *t = &dp->params[i];
        int si = ts_params_find(sp, t->name);
        if (si < 0) {
            ts_model_free(dst);
            return ts_fail(TS_ERR_FORMAT, "convert-gqa: the source model has no tensor '%s'", t->name);
        }
        const ts_param *s = &sp->params[si];
        float *out = dp->data + t->offset;
        const float *in = sp->data + s->offset;
        if (ends_with(t->name, ".k_proj.weight") || ends_with(t->name, ".v_proj.weight"))
            gqa_mean_pool_heads(out, in, sc->num_key_value_heads, kv_heads, sc->head_dim, sc->hidden_size);
        else
            memcpy(out, in, t->numel * sizeof(float)); // same name, same shape: q_proj, o_proj, norms, MLP, ...
    }
    return TS_OK;
}
