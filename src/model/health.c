/**
 * @file health.c
 * @brief First non-finite activation or gradient of a model.
 */
#include "model/health.h"

#include <math.h>
#include <stdio.h>

#include "model/moe.h"

/* Index of the first non-finite of x[0..n), or -1. */
static long first_nonfinite(const float *x, long n) {
    if (!x) return -1;
    for (long i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

static int report(char *where, size_t cap, const char *what, const float *x, long rows, long cols) {
    long i = first_nonfinite(x, rows * cols);
    if (i < 0) return 0;
    snprintf(where, cap, "%s (row %ld, column %ld is %s)", what, i / cols, i % cols, isnan(x[i]) ? "nan" : x[i] > 0 ? "inf" : "-inf");
    return 1;
}

int ts_model_find_nonfinite_output(const ts_model *m, char *where, size_t cap) {
    const ts_config *c = &m->cfg;
    long N = (long)m->cur_B * m->cur_T, C = c->hidden_size;
    if (N <= 0) return 0;
    if (report(where, cap, "model.embed_tokens output", m->embed, N, C)) return 1;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const ts_layer_acts *a = &m->acts[l];
        char name[96];
        snprintf(name, sizeof name, "model.layers.%d.self_attn output", l);
        if (report(where, cap, name, a->attn_y, N, C)) return 1;
        snprintf(name, sizeof name, "model.layers.%d residual after attention", l);
        if (report(where, cap, name, a->res1, N, C)) return 1;
        snprintf(name, sizeof name, "model.layers.%d.mlp output%s", l, ts_moe_is_layer(c, l) ? " (MoE)" : "");
        if (report(where, cap, name, a->mlp_y, N, C)) return 1;
        snprintf(name, sizeof name, "model.layers.%d output", l);
        if (report(where, cap, name, a->out, N, C)) return 1;
    }
    if (report(where, cap, "model.norm output", m->lnf, N, C)) return 1;
    return report(where, cap, "lm_head output (the logits)", m->logits, N, c->vocab_size);
}

int ts_model_find_nonfinite_param(const ts_model *m, const float *base, char *where, size_t cap) {
    if (!base) return 0;
    for (int i = 0; i < m->params.count; i++) {
        const ts_param *p = &m->params.params[i];
        long j = first_nonfinite(base + p->offset, (long)p->numel);
        if (j >= 0) {
            float x = base[p->offset + (size_t)j];
            snprintf(where, cap, "%s (element %ld is %s)", p->name, j, isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
            return 1;
        }
    }
    return 0;
}
