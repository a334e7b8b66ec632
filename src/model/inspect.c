/**
 * @file inspect.c
 * @brief Shaped views into a model, for notebooks, debuggers and tests.
 */
#include "model/inspect.h"

#include <stdlib.h>
#include <string.h>

#include "model/checkpoint.h"

ts_model *ts_model_open(const char *dir) {
    ts_model *m = ts_malloc(sizeof *m, "model");
    if (!m) return NULL;
    if (ts_checkpoint_load(m, dir, TS_MODEL_FROZEN)) {
        free(m);
        return NULL;
    }
    return m;
}

void ts_model_close(ts_model *m) {
    if (!m) return;
    ts_model_free(m);
    free(m);
}

int ts_model_run(ts_model *m, const int *tokens, int n) {
    if (n <= 0 || n > m->cfg.max_position_embeddings) {
        ts_fail(TS_ERR_RANGE, "need 1..%d tokens, got %d", m->cfg.max_position_embeddings, n);
        return -1;
    }
    float r = ts_model_forward(m, tokens, NULL, 1, n);
    return r == r ? 0 : -1;
}

int ts_model_view_param(const ts_model *m, const char *name, ts_view *out) {
    int idx = ts_params_find(&m->params, name);
    if (idx < 0) {
        ts_fail(TS_ERR_ARG, "no parameter called '%s'", name);
        return -1;
    }
    *out = ts_params_view(&m->params, idx, m->params.data);
    return 0;
}

int ts_model_view_attention(const ts_model *m, int layer, ts_view *out) {
    if (!m->acts || m->cur_T == 0 || layer < 0 || layer >= m->cfg.num_hidden_layers) {
        ts_fail(TS_ERR_ARG, "no attention for layer %d (run a forward first; layers 0..%d)", layer,
                m->cfg.num_hidden_layers - 1);
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->name = "attention probabilities";
    out->data = m->attn == TS_ATTN_MLA ? m->acts[layer].mla.att : m->acts[layer].attn.att;
    out->ndim = 4;
    out->shape[0] = m->cur_B;
    out->shape[1] = m->cfg.num_attention_heads;
    out->shape[2] = m->cur_T;
    out->shape[3] = m->cur_T;
    return 0;
}

int ts_model_view_logits(const ts_model *m, ts_view *out) {
    if (!m->logits || m->cur_T == 0) {
        ts_fail(TS_ERR_ARG, "no logits yet: run a forward first");
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->name = "logits";
    out->data = m->logits;
    out->ndim = 2;
    out->shape[0] = m->cur_B * m->cur_T;
    out->shape[1] = m->cfg.vocab_size;
    return 0;
}

long long ts_model_kv_bytes_per_token(const ts_model *m, int naive) {
    ts_kvcache c;
    if (ts_kvcache_create_for(&c, &m->cfg, 1, 1, naive ? TS_KV_NAIVE : TS_KV_ABSORBED)) return -1;
    long long bytes = (long long)ts_kvcache_bytes_per_token(&c);
    ts_kvcache_free(&c);
    return bytes;
}

int ts_model_cached_logits(ts_model *m, const int *tokens, int n, int naive, float *out) {
    int V = m->cfg.vocab_size;
    ts_kvcache c;
    if (ts_kvcache_create_for(&c, &m->cfg, 1, n, naive ? TS_KV_NAIVE : TS_KV_ABSORBED)) return -1;
    int rc = ts_model_prefill(m, &c, 0, tokens, 1, out) ? -1 : 0;
    for (int t = 1; t < n && rc == 0; t++)
        if (ts_model_decode(m, &c, tokens + t, NULL, out + (size_t)t * V)) rc = -1;
    ts_kvcache_free(&c);
    return rc;
}
