/**
 * @file trainstate.c
 * @brief AdamW moments, step, RNG states and data cursor in a safetensors file.
 */
#include "io/trainstate.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

#define TRAINSTATE_FORMAT "tinyseek-training-state"
#define TRAINSTATE_VERSION "1"

uint64_t ts_fingerprint(uint64_t h, const void *data, size_t len) {
    if (h == 0) h = 0xcbf29ce484222325ULL; /* FNV offset basis */
    const unsigned char *b = data;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL; /* FNV prime */
    }
    return h;
}

/* ---- saving ------------------------------------------------------------------ */

static int add_string(cJSON *obj, const char *key, const char *value) {
    return cJSON_AddStringToObject(obj, key, value) != NULL;
}

static int add_u64(cJSON *obj, const char *key, uint64_t value) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, value);
    return add_string(obj, key, buf);
}

ts_status ts_trainstate_save(const char *path, const ts_params *p, const ts_trainstate_meta *meta) {
    if (!path || !p || !meta) return ts_fail(TS_ERR_ARG, "ts_trainstate_save: bad arguments");
    if (p->count > 0 && (!p->m || !p->v))
        return ts_fail(TS_ERR_ARG, "%s: the AdamW moments are not allocated", path);
    if (meta->step < 0 || meta->data_pos < 0 || meta->n_rng < 0 || meta->n_rng > TS_TRAINSTATE_MAX_RNG)
        return ts_fail(TS_ERR_ARG, "%s: step %ld, data_pos %ld or rng count %d out of range", path, meta->step,
                       meta->data_pos, meta->n_rng);

    cJSON *md = cJSON_CreateObject();
    int ok = md && add_string(md, "format", TRAINSTATE_FORMAT) && add_string(md, "version", TRAINSTATE_VERSION) &&
             add_u64(md, "step", (uint64_t)meta->step) && add_u64(md, "data_pos", (uint64_t)meta->data_pos) &&
             add_u64(md, "fingerprint", meta->fingerprint) && add_u64(md, "rng_streams", (uint64_t)meta->n_rng);
    if (ok && meta->weights_hash) ok = add_u64(md, "weights_hash", meta->weights_hash);
    for (int k = 0; ok && k < meta->n_rng; k++) {
        char key[16], words[96];
        const uint64_t *s = meta->rng[k].s;
        snprintf(key, sizeof key, "rng.%d", k);
        snprintf(words, sizeof words, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64, s[0], s[1], s[2], s[3]);
        ok = add_string(md, key, words);
    }
    char *md_text = ok ? cJSON_PrintUnformatted(md) : NULL;
    cJSON_Delete(md);

    size_t n = (size_t)p->count * 2;
    ts_st_entry *e = calloc(n + 1, sizeof *e);
    char *names = calloc(n + 1, TS_NAME_MAX + 2);
    if (!md_text || !e || !names) {
        free(md_text);
        free(e);
        free(names);
        return ts_fail(TS_ERR_NOMEM, "%s: out of memory preparing the training state", path);
    }
    for (int i = 0; i < p->count; i++) {
        const ts_param *t = &p->params[i];
        for (int which = 0; which < 2; which++) {
            size_t k = 2 * (size_t)i + (size_t)which;
            char *name = names + k * (TS_NAME_MAX + 2);
            snprintf(name, TS_NAME_MAX + 2, "%c.%s", which ? 'v' : 'm', t->name);
            e[k].name = name;
            e[k].ndim = t->ndim;
            e[k].shape = t->shape;
            e[k].data = (which ? p->v : p->m) + t->offset;
        }
    }
    ts_status st = ts_safetensors_write(path, e, (int)n, md_text);
    free(md_text);
    free(e);
    free(names);
    return st;
}

/* ---- loading ------------------------------------------------------------------ */

/** Parse a plain decimal u64 ("0".."18446744073709551615"; no sign, no spaces). */
static int parse_u64(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return 0;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE || *end != '\0') return 0;
    *out = (uint64_t)v;
    return 1;
}

/** A required metadata value. */
static ts_status meta_value(const ts_safetensors *st, const char *key, const char **out) {
    *out = ts_safetensors_meta(st, key);
    if (!*out)
        return ts_fail(TS_ERR_FORMAT, "%s: __metadata__ field '%s' is missing (not a tinyseek training state?)",
                       st->path, key);
    return TS_OK;
}

/** A required metadata value that is a decimal integer in [0, max]. */
static ts_status meta_uint(const ts_safetensors *st, const char *key, uint64_t max, uint64_t *out) {
    const char *text;
    ts_status s = meta_value(st, key, &text);
    if (s) return s;
    if (!parse_u64(text, out) || *out > max) {
        char shown[48];
        return ts_fail(TS_ERR_FORMAT, "%s: __metadata__ field '%s' is '%s', expected a whole number in 0..%" PRIu64,
                       st->path, key, ts_escape(shown, sizeof shown, text), max);
    }
    return TS_OK;
}

static ts_status read_meta(const ts_safetensors *st, ts_trainstate_meta *m) {
    const char *text;
    ts_status s = meta_value(st, "format", &text);
    if (s) return s;
    char shown[72];
    if (strcmp(text, TRAINSTATE_FORMAT) != 0)
        return ts_fail(TS_ERR_FORMAT, "%s: __metadata__ field 'format' is '%s', expected '%s'", st->path,
                       ts_escape(shown, 48, text), TRAINSTATE_FORMAT);
    if ((s = meta_value(st, "version", &text))) return s;
    if (strcmp(text, TRAINSTATE_VERSION) != 0)
        return ts_fail(TS_ERR_FORMAT, "%s: training-state version '%s' is not supported (expected '%s')", st->path,
                       ts_escape(shown, 24, text), TRAINSTATE_VERSION);
    uint64_t step, pos, n_rng;
    if ((s = meta_uint(st, "step", (uint64_t)LONG_MAX, &step))) return s;
    if ((s = meta_uint(st, "data_pos", (uint64_t)LONG_MAX, &pos))) return s;
    if ((s = meta_uint(st, "fingerprint", UINT64_MAX, &m->fingerprint))) return s;
    if ((s = meta_uint(st, "rng_streams", TS_TRAINSTATE_MAX_RNG, &n_rng))) return s;
    if (ts_safetensors_meta(st, "weights_hash") && (s = meta_uint(st, "weights_hash", UINT64_MAX, &m->weights_hash)))
        return s;
    m->step = (long)step;
    m->data_pos = (long)pos;
    m->n_rng = (int)n_rng;
    for (int k = 0; k < m->n_rng; k++) {
        char key[16], buf[128];
        snprintf(key, sizeof key, "rng.%d", k);
        if ((s = meta_value(st, key, &text))) return s;
        /* Four decimal words separated by commas. */
        int ok = strlen(text) < sizeof buf;
        if (ok) strcpy(buf, text);
        char *word = buf;
        for (int w = 0; ok && w < 4; w++) {
            char *comma = strchr(word, ',');
            if ((w < 3) != (comma != NULL)) {
                ok = 0;
                break;
            }
            if (comma) *comma = '\0';
            ok = parse_u64(word, &m->rng[k].s[w]);
            word = comma ? comma + 1 : word;
        }
        if (!ok)
            return ts_fail(TS_ERR_FORMAT, "%s: __metadata__ field '%s' is '%s', expected four decimal words 'a,b,c,d'",
                           st->path, key, ts_escape(shown, sizeof shown, text));
        if (!(m->rng[k].s[0] | m->rng[k].s[1] | m->rng[k].s[2] | m->rng[k].s[3]))
            return ts_fail(TS_ERR_FORMAT, "%s: __metadata__ field '%s' is an all-zero RNG state", st->path, key);
    }
    return TS_OK;
}

/** Check that moment tensor "<prefix>.<name>" exists, is F32 and has the param's shape. */
static ts_status check_moment(const ts_safetensors *st, const ts_param *pa, char prefix, const char *what) {
    char name[TS_NAME_MAX + 2];
    snprintf(name, sizeof name, "%c.%s", prefix, pa->name);
    const ts_st_tensor *t = ts_safetensors_find(st, name);
    if (!t) return ts_fail(TS_ERR_FORMAT, "%s: tensor '%s' (%s of '%s') is missing", st->path, name, what, pa->name);
    int same = t->ndim == pa->ndim;
    for (int d = 0; same && d < pa->ndim; d++) same = t->shape[d] == pa->shape[d];
    if (!same) {
        char have[160] = "[", want[160] = "[";
        for (int d = 0; d < t->ndim && d < TS_ST_MAX_DIMS; d++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        for (int d = 0; d < pa->ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", d ? ", " : "", pa->shape[d]);
        strcat(have, "]");
        strcat(want, "]");
        return ts_fail(TS_ERR_FORMAT, "%s: tensor '%s' has shape %s, the model's '%s' is %s", st->path, name, have,
                       pa->name, want);
    }
    if (t->dtype != TS_DTYPE_F32)
        return ts_fail(TS_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected F32 (moments are kept at full precision)",
                       st->path, name, ts_dtype_name(t->dtype));
    ts_status s = ts_safetensors_check_finite(st, t);
    if (s) return s;
    /* AdamW divides by √v: a negative second moment would make the next step NaN. */
    for (size_t i = 0; prefix == 'v' && i < t->numel; i++) {
        float x;
        memcpy(&x, st->data + t->begin + 4 * i, sizeof x);
        if (x < 0)
            return ts_fail(TS_ERR_FORMAT, "%s: tensor '%s' holds %g at index %zu; a second moment is never negative",
                           st->path, name, (double)x, i);
    }
    return TS_OK;
}

ts_status ts_trainstate_load(const char *path, ts_params *p, ts_trainstate_meta *meta, uint64_t expected_fingerprint) {
    if (!path || !p || !meta) return ts_fail(TS_ERR_ARG, "ts_trainstate_load: bad arguments");
    if (p->count > 0 && (!p->m || !p->v))
        return ts_fail(TS_ERR_ARG, "%s: the AdamW moments are not allocated", path);
    ts_safetensors st;
    ts_status s = ts_safetensors_open(&st, path);
    if (s) return s;

    ts_trainstate_meta m;
    memset(&m, 0, sizeof m);
    s = read_meta(&st, &m);
    if (!s && expected_fingerprint && m.fingerprint != expected_fingerprint)
        s = ts_fail(TS_ERR_FORMAT,
                    "%s: run-config fingerprint %016" PRIx64 " differs from this run's %016" PRIx64
                    " (the config or training options changed since the state was saved)",
                    path, m.fingerprint, expected_fingerprint);
    for (int i = 0; i < p->count && !s; i++) {
        s = check_moment(&st, &p->params[i], 'm', "AdamW first moment");
        if (!s) s = check_moment(&st, &p->params[i], 'v', "AdamW second moment");
    }
    /* Every expected tensor exists and names are unique: more tensors means extras. */
    if (!s && st.count != 2 * p->count) {
        for (int i = 0; i < st.count && !s; i++) {
            const char *name = st.tensors[i].name;
            int known = (name[0] == 'm' || name[0] == 'v') && name[1] == '.' && ts_params_find(p, name + 2) >= 0;
            if (!known) {
                char shown[104];
                s = ts_fail(TS_ERR_FORMAT, "%s: tensor '%s' does not belong to this model (%d tensors expected, the file has %d)",
                            path, ts_escape(shown, sizeof shown, name), 2 * p->count, st.count);
            }
        }
    }
    if (!s) {
        for (int i = 0; i < p->count; i++) {
            const ts_param *pa = &p->params[i];
            char name[TS_NAME_MAX + 2];
            snprintf(name, sizeof name, "m.%s", pa->name);
            s = ts_safetensors_read_f32(&st, name, p->m + pa->offset, pa->numel);
            if (s) break;
            name[0] = 'v';
            s = ts_safetensors_read_f32(&st, name, p->v + pa->offset, pa->numel);
            if (s) break;
        }
        if (!s) *meta = m;
    }
    ts_safetensors_close(&st);
    return s;
}
