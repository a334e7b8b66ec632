/**
 * @file fuzz_safetensors.c
 * @brief safetensors reader. Oracles: a refused file is one line naming it
 *        and leaves the reader closed; an accepted one reads every float
 *        tensor, writes them back as F32 and reads the same names, shapes,
 *        metadata and bits; loading it into a registry of its own tensors
 *        either succeeds with those bits or fails leaving the registry's
 *        data untouched.
 */
#include <limits.h>

#include "core/arena.h"
#include "fuzz_util.h"
#include "io/safetensors.h"

static int is_float(ts_dtype d) { return d == TS_DTYPE_F32 || d == TS_DTYPE_F16 || d == TS_DTYPE_BF16; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("model.safetensors");
    fuzz_write(path, data, size);
    ts_safetensors st;
    ts_clear_error();
    if (ts_safetensors_open(&st, path) != TS_OK) {
        fuzz_check_error(path);
        FUZZ_CHECK(fuzz_all_bytes(&st, sizeof st, 0), "a refused file leaves the reader open");
        return 0;
    }
    /* Every float tensor, converted; the entries for writing them back. */
    float **vals = calloc((size_t)st.count + 1, sizeof *vals);
    ts_st_entry *e = calloc((size_t)st.count + 1, sizeof *e);
    int (*shapes)[TS_ST_MAX_DIMS] = calloc((size_t)st.count + 1, sizeof *shapes);
    int n = 0, fits = 1;
    for (int i = 0; i < st.count; i++) {
        const ts_st_tensor *t = &st.tensors[i];
        FUZZ_CHECK(t->end - t->begin == t->numel * ts_dtype_size(t->dtype) && t->end <= st.data_size,
                   "tensor '%s' accepted with bytes outside the file", t->name);
        FUZZ_CHECK(ts_safetensors_find(&st, t->name) == t, "find('%s') does not find it", t->name);
        if (!is_float(t->dtype)) continue;
        float *v = malloc(t->numel * sizeof(float) + 1);
        FUZZ_CHECK(ts_safetensors_read_f32(&st, t->name, v, t->numel) == TS_OK, "read_f32: %s", ts_last_error());
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] > INT_MAX) fits = 0;
            shapes[n][d] = (int)t->shape[d];
        }
        if (strcmp(t->name, "__metadata__") == 0) fits = 0;
        e[n] = (ts_st_entry){t->name, t->ndim, shapes[n], v};
        vals[n++] = v;
    }
    /* Write back (F32) with the same metadata, read again: same everything. */
    char *meta = NULL;
    if (st.meta_count) {
        size_t cap = 16;
        for (int i = 0; i < st.meta_count; i++) cap += 8 * (strlen(st.meta_keys[i]) + strlen(st.meta_values[i])) + 8;
        meta = malloc(cap);
        size_t k = 0;
        meta[k++] = '{';
        for (int i = 0; i < st.meta_count; i++) {
            const char *kv[2] = {st.meta_keys[i], st.meta_values[i]};
            for (int w = 0; w < 2; w++) {
                meta[k++] = '"';
                for (const unsigned char *c = (const unsigned char *)kv[w]; *c; c++) {
                    if (*c == '"' || *c == '\\') meta[k++] = '\\', meta[k++] = (char)*c;
                    else if (*c < 0x20) k += (size_t)sprintf(meta + k, "\\u%04x", *c);
                    else meta[k++] = (char)*c;
                }
                meta[k++] = '"';
                meta[k++] = w ? ',' : ':';
            }
        }
        meta[k - 1] = '}';
        meta[k] = '\0';
    }
    if (fits) {
        const char *again = fuzz_path("again.safetensors");
        FUZZ_CHECK(ts_safetensors_write(again, e, n, meta) == TS_OK, "an accepted file does not write back: %s",
                   ts_last_error());
        ts_safetensors st2;
        FUZZ_CHECK(ts_safetensors_open(&st2, again) == TS_OK, "what was written does not read: %s", ts_last_error());
        FUZZ_CHECK(st2.count == n && st2.meta_count == st.meta_count, "tensor or metadata count changed");
        for (int i = 0; i < st.meta_count; i++) {
            const char *v = ts_safetensors_meta(&st2, st.meta_keys[i]);
            FUZZ_CHECK(v && strcmp(v, ts_safetensors_meta(&st, st.meta_keys[i])) == 0, "metadata changed");
        }
        for (int i = 0; i < n; i++) {
            const ts_st_tensor *t = ts_safetensors_find(&st2, e[i].name);
            FUZZ_CHECK(t && t->ndim == e[i].ndim && t->dtype == TS_DTYPE_F32, "tensor '%s' changed", e[i].name);
            for (int d = 0; d < t->ndim; d++) FUZZ_CHECK(t->shape[d] == e[i].shape[d], "shape changed");
            float *w = malloc(t->numel * sizeof(float) + 1);
            FUZZ_CHECK(ts_safetensors_read_f32(&st2, e[i].name, w, t->numel) == TS_OK, "read back failed");
            FUZZ_CHECK(t->numel == 0 || memcmp(w, vals[i], t->numel * sizeof(float)) == 0, "bits changed");
            free(w);
        }
        ts_safetensors_close(&st2);
    }
    /* Load into a registry of the float tensors the registry can hold. */
    ts_params p;
    ts_params_init(&p);
    int ok = n > 0 && n == st.count;
    for (int i = 0; i < n && ok; i++)
        ok = e[i].ndim >= 1 && e[i].ndim <= TS_MAX_DIMS && strlen(e[i].name) < TS_NAME_MAX && fits &&
             ts_params_add(&p, e[i].name, e[i].ndim, e[i].shape, 0) == i;
    if (ok && ts_params_alloc(&p, 0) == TS_OK) {
        memset(p.data, 0xa5, p.numel * sizeof(float));
        if (ts_safetensors_load_params(&p, path) == TS_OK) {
            for (int i = 0; i < n; i++)
                FUZZ_CHECK(memcmp(p.data + p.params[i].offset, vals[i], p.params[i].numel * sizeof(float)) == 0,
                           "load_params gave other bits than read_f32");
        } else {
            fuzz_check_error(path);
            FUZZ_CHECK(fuzz_all_bytes(p.data, p.numel * sizeof(float), 0xa5), "a failed load changed the data");
        }
    }
    ts_params_free(&p);
    for (int i = 0; i < n; i++) free(vals[i]);
    free(vals);
    free(e);
    free(shapes);
    free(meta);
    ts_safetensors_close(&st);
    return 0;
}
