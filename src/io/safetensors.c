/**
 * @file safetensors.c
 * @brief safetensors writer (F32) and validating reader (F32/F16/BF16).
 *
 * The reader maps the file and checks the header before anything is
 * trusted: every offset and size is compared against the bytes that really
 * exist, with overflow-safe arithmetic, so a hostile file yields an error
 * message and never an out-of-bounds read.
 */
#include "io/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/fileio.h"

/* ---- dtypes and conversions ----------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} dtype_info[TS_DTYPE_COUNT] = {
    [TS_DTYPE_F32] = {"F32", 4},         [TS_DTYPE_F16] = {"F16", 2},   [TS_DTYPE_BF16] = {"BF16", 2},
    [TS_DTYPE_F64] = {"F64", 8},         [TS_DTYPE_I64] = {"I64", 8},   [TS_DTYPE_I32] = {"I32", 4},
    [TS_DTYPE_I16] = {"I16", 2},         [TS_DTYPE_I8] = {"I8", 1},     [TS_DTYPE_U8] = {"U8", 1},
    [TS_DTYPE_BOOL] = {"BOOL", 1},       [TS_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [TS_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};

const char *ts_dtype_name(ts_dtype dtype) {
    return (unsigned)dtype < TS_DTYPE_COUNT ? dtype_info[dtype].name : "?";
}

size_t ts_dtype_size(ts_dtype dtype) { return (unsigned)dtype < TS_DTYPE_COUNT ? dtype_info[dtype].size : 0; }

static int dtype_from_name(const char *s, ts_dtype *out) {
    for (int i = 0; i < TS_DTYPE_COUNT; i++)
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (ts_dtype)i;
            return 1;
        }
    return 0;
}

static float bits_to_f32(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

float ts_f16_to_f32(uint16_t h) {
    /* binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
     * binary32: 1 sign, 8 exponent (bias 127), 23 mantissa bits. Every f16 is exact in f32. */
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13)); /* inf, NaN (payload kept) */
    if (exp != 0) return bits_to_f32(sign | ((exp + 127 - 15) << 23) | (mant << 13));
    if (mant == 0) return bits_to_f32(sign); /* ±0 */
    /* Subnormal: value = mant·2^-24. Shift until the leading 1 reaches the
     * implicit-bit position (bit 10); after k shifts value = 1.f·2^(-14-k). */
    int k = 0;
    while (!(mant & 0x400u)) {
        mant <<= 1;
        k++;
    }
    return bits_to_f32(sign | ((uint32_t)(127 - 14 - k) << 23) | ((mant & 0x3ffu) << 13));
}

float ts_bf16_to_f32(uint16_t b) { return bits_to_f32((uint32_t)b << 16); }

static uint16_t load_le16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t load_le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t load_le64(const unsigned char *p) {
    return (uint64_t)load_le32(p) | ((uint64_t)load_le32(p + 4) << 32);
}

static void store_le32(unsigned char *p, uint32_t x) {
    p[0] = (unsigned char)x;
    p[1] = (unsigned char)(x >> 8);
    p[2] = (unsigned char)(x >> 16);
    p[3] = (unsigned char)(x >> 24);
}

/* ---- small helpers ----------------------------------------------------------- */

/** A growing string, for building the JSON header. */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap) cap *= 2;
        char *grown = realloc(b->s, cap);
        if (!grown) {
            b->oom = 1;
            return;
        }
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/** Append @p s as a JSON string literal. */
static void sb_json_string(strbuf *b, const char *s) {
    sb_puts(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            char esc[2] = {'\\', (char)*c};
            sb_put(b, esc, 2);
        } else if (*c < 0x20) {
            sb_printf(b, "\\u%04x", *c);
        } else {
            sb_put(b, (const char *)c, 1);
        }
    }
    sb_puts(b, "\"");
}

/** "[64, 32]" from int64 sizes. */
static void format_shape64(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/** "[64, 32]" from int sizes. */
static void format_shape(char *buf, size_t cap, int ndim, const int *shape) {
    int64_t s64[TS_ST_MAX_DIMS];
    int nd = ndim < TS_ST_MAX_DIMS ? ndim : TS_ST_MAX_DIMS;
    for (int i = 0; i < nd; i++) s64[i] = shape[i];
    format_shape64(buf, cap, nd, s64);
}

/**
 * Record "<path>: <message>" as a TS_ERR_FORMAT error. Control characters
 * (from hostile tensor names) become '?' so the message stays one line.
 */
static ts_status file_error(ts_status status, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ts_status file_error(ts_status status, const char *path, const char *fmt, ...) {
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20) *c = '?';
    return ts_fail(status, "%s: %s", path, msg);
}

/** Short, printable copy of a name for messages (hostile names can be huge). */
static const char *short_name(const char *name, char *buf, size_t cap) { return ts_escape(buf, cap, name); }

/* ---- writing ----------------------------------------------------------------- */

/** Check the metadata text: a JSON object of strings. Returns its compact form (to free) or NULL. */
static char *metadata_compact(const char *path, const char *metadata_json, ts_status *st) {
    *st = TS_OK;
    cJSON *meta = cJSON_Parse(metadata_json);
    if (!meta || !cJSON_IsObject(meta)) {
        cJSON_Delete(meta);
        *st = file_error(TS_ERR_ARG, path, "metadata is not a JSON object: %.60s", metadata_json);
        return NULL;
    }
    for (cJSON *it = meta->child; it; it = it->next)
        if (!cJSON_IsString(it)) {
            *st = file_error(TS_ERR_ARG, path, "metadata value '%s' is not a string (safetensors metadata maps strings to strings)",
                             it->string ? it->string : "");
            cJSON_Delete(meta);
            return NULL;
        }
    char *text = cJSON_PrintUnformatted(meta);
    cJSON_Delete(meta);
    if (!text) *st = ts_fail(TS_ERR_NOMEM, "%s: out of memory printing metadata", path);
    return text;
}

ts_status ts_safetensors_write(const char *path, const ts_st_entry *entries, int n, const char *metadata_json) {
    if (!path || (n > 0 && !entries) || n < 0) return ts_fail(TS_ERR_ARG, "ts_safetensors_write: bad arguments");
    char shape_text[160];

    /* Validate the entries and lay them out back to back. */
    size_t *numel = ts_calloc((size_t)(n > 0 ? n : 1), sizeof *numel, "safetensors layout");
    if (!numel) return TS_ERR_NOMEM;
    ts_status status = TS_OK;
    for (int i = 0; i < n && status == TS_OK; i++) {
        const ts_st_entry *e = &entries[i];
        if (!e->name || !e->name[0] || strcmp(e->name, "__metadata__") == 0) {
            status = file_error(TS_ERR_ARG, path, "tensor %d has no usable name", i);
            break;
        }
        if (e->ndim < 0 || e->ndim > TS_ST_MAX_DIMS || (e->ndim > 0 && !e->shape)) {
            status = file_error(TS_ERR_ARG, path, "tensor '%s': rank %d is not in 0..%d", e->name, e->ndim, TS_ST_MAX_DIMS);
            break;
        }
        size_t count = 1;
        for (int d = 0; d < e->ndim; d++) {
            if (e->shape[d] < 0 || (e->shape[d] > 0 && count > SIZE_MAX / 4 / (size_t)e->shape[d])) {
                format_shape(shape_text, sizeof shape_text, e->ndim, e->shape);
                status = file_error(TS_ERR_ARG, path, "tensor '%s': bad shape %s", e->name, shape_text);
                break;
            }
            count *= (size_t)e->shape[d];
        }
        if (status) break;
        if (count > 0 && !e->data) {
            status = file_error(TS_ERR_ARG, path, "tensor '%s' has no data", e->name);
            break;
        }
        numel[i] = count;
        for (int j = 0; j < i; j++)
            if (strcmp(entries[j].name, e->name) == 0) {
                status = file_error(TS_ERR_ARG, path, "tensor '%s' is given twice", e->name);
                break;
            }
    }
    char *meta_text = NULL;
    if (status == TS_OK && metadata_json) meta_text = metadata_compact(path, metadata_json, &status);
    if (status) {
        free(numel);
        free(meta_text);
        return status;
    }

    /* The header: {"__metadata__":{...},"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...} */
    strbuf h = {0};
    sb_puts(&h, "{");
    if (meta_text) {
        sb_puts(&h, "\"__metadata__\":");
        sb_puts(&h, meta_text);
    }
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        const ts_st_entry *e = &entries[i];
        if (i > 0 || meta_text) sb_puts(&h, ",");
        sb_json_string(&h, e->name);
        sb_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) sb_printf(&h, "%s%d", d ? "," : "", e->shape[d]);
        size_t bytes = numel[i] * 4;
        sb_printf(&h, "],\"data_offsets\":[%zu,%zu]}", offset, offset + bytes);
        offset += bytes;
    }
    sb_puts(&h, "}");
    /* Pad with spaces so the data section starts 8-byte aligned (8 + N ≡ 0 mod 8). */
    while (!h.oom && h.len % 8 != 0) sb_puts(&h, " ");
    free(meta_text);
    if (h.oom) {
        free(h.s);
        free(numel);
        return ts_fail(TS_ERR_NOMEM, "%s: out of memory building the header", path);
    }

    ts_atomic_file af;
    status = ts_atomic_open(&af, path);
    if (status) {
        free(h.s);
        free(numel);
        return status;
    }
    unsigned char len8[8];
    uint64_t hlen = h.len;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hlen >> (8 * i));
    int ok = fwrite(len8, 1, 8, af.f) == 8 && fwrite(h.s, 1, h.len, af.f) == h.len;
    free(h.s);

    /* Data, converted to little-endian bytes in chunks (correct on any host). */
    enum { CHUNK = 4096 };
    unsigned char buf[CHUNK * 4];
    for (int i = 0; i < n && ok; i++) {
        const float *x = entries[i].data;
        for (size_t start = 0; start < numel[i] && ok; start += CHUNK) {
            size_t m = numel[i] - start < CHUNK ? numel[i] - start : CHUNK;
            for (size_t k = 0; k < m; k++) store_le32(buf + 4 * k, f32_to_bits(x[start + k]));
            ok = fwrite(buf, 4, m, af.f) == m;
        }
    }
    free(numel);
    if (!ok) {
        int err = errno;
        ts_atomic_abort(&af);
        return ts_fail(TS_ERR_IO, "%s: write failed (%s); the previous file is untouched", path, strerror(err));
    }
    return ts_atomic_commit(&af);
}

ts_status ts_safetensors_save(const ts_params *p, const char *path, const char *metadata_json) {
    if (!p || !path) return ts_fail(TS_ERR_ARG, "ts_safetensors_save: bad arguments");
    if (p->count > 0 && !p->data) return ts_fail(TS_ERR_ARG, "%s: the parameters are not allocated", path);
    ts_st_entry *e = ts_calloc((size_t)(p->count > 0 ? p->count : 1), sizeof *e, "checkpoint entries");
    if (!e) return TS_ERR_NOMEM;
    for (int i = 0; i < p->count; i++) {
        e[i].name = p->params[i].name;
        e[i].ndim = p->params[i].ndim;
        e[i].shape = p->params[i].shape;
        e[i].data = p->data + p->params[i].offset;
    }
    ts_status st = ts_safetensors_write(path, e, p->count, metadata_json);
    free(e);
    return st;
}

/* ---- reading ----------------------------------------------------------------- */

void ts_safetensors_close(ts_safetensors *st) {
    if (!st) return;
    if (st->map) munmap((void *)st->map, st->size);
    for (int i = 0; i < st->count; i++) free(st->tensors[i].name);
    free(st->tensors);
    free(st->by_name);
    for (int i = 0; i < st->meta_count; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    free(st->path);
    memset(st, 0, sizeof *st);
}

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* qsort has no context argument; the comparators reach the table through this. */
static _Thread_local const ts_st_tensor *sort_tensors;

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(sort_tensors[*(const int *)a].name, sort_tensors[*(const int *)b].name);
}

static int cmp_by_offset(const void *a, const void *b) {
    const ts_st_tensor *x = &sort_tensors[*(const int *)a], *y = &sort_tensors[*(const int *)b];
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/** A JSON number that is a whole number in [0, limit]; sets *out. */
static int json_whole(const cJSON *v, double limit, double *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0) || d > limit || d != floor(d)) return 0;
    *out = d;
    return 1;
}

/** Parse and check one tensor entry. */
static ts_status parse_entry(ts_safetensors *st, const cJSON *item, ts_st_tensor *t) {
    const char *path = st->path;
    char nb[100];
    const char *name = short_name(item->string, nb, sizeof nb);
    if (!cJSON_IsObject(item)) return file_error(TS_ERR_FORMAT, path, "tensor '%s': entry is not a JSON object", name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!dtype) return file_error(TS_ERR_FORMAT, path, "tensor '%s': field 'dtype' is missing", name);
    if (!shape) return file_error(TS_ERR_FORMAT, path, "tensor '%s': field 'shape' is missing", name);
    if (!offs) return file_error(TS_ERR_FORMAT, path, "tensor '%s': field 'data_offsets' is missing", name);
    if (!cJSON_IsString(dtype))
        return file_error(TS_ERR_FORMAT, path, "tensor '%s': field 'dtype' is not a string", name);
    if (!dtype_from_name(dtype->valuestring, &t->dtype)) {
        char db[40];
        return file_error(TS_ERR_FORMAT, path, "tensor '%s': unknown dtype '%s' (expected F32, F16 or BF16)", name,
                          short_name(dtype->valuestring, db, sizeof db));
    }

    if (!cJSON_IsArray(shape))
        return file_error(TS_ERR_FORMAT, path, "tensor '%s': field 'shape' is not an array of sizes", name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > TS_ST_MAX_DIMS)
        return file_error(TS_ERR_FORMAT, path, "tensor '%s': shape has %d dimensions, at most %d are supported", name,
                          ndim, TS_ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t numel = 1;
    int d = 0;
    for (const cJSON *s = shape->child; s; s = s->next, d++) {
        double size;
        /* 2^53: the largest size a JSON number holds exactly; products are checked below. */
        if (!json_whole(s, 9007199254740992.0, &size)) {
            char text[64];
            if (cJSON_IsNumber(s))
                snprintf(text, sizeof text, "%g", s->valuedouble);
            else
                snprintf(text, sizeof text, "a non-number");
            return file_error(TS_ERR_FORMAT, path,
                              "tensor '%s': shape dimension %d is %s, expected a whole number >= 0", name, d, text);
        }
        t->shape[d] = (int64_t)size;
        uint64_t u = (uint64_t)size;
        if (u != 0 && numel > UINT64_MAX / u)
            return file_error(TS_ERR_FORMAT, path, "tensor '%s': shape is absurd (its element count overflows)", name);
        numel *= u;
    }
    size_t elsize = dtype_info[t->dtype].size;
    char shape_text[200];
    format_shape64(shape_text, sizeof shape_text, t->ndim, t->shape);

    double b, e;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return file_error(TS_ERR_FORMAT, path, "tensor '%s': field 'data_offsets' is not a pair [begin, end]", name);
    const cJSON *jb = offs->child, *je = offs->child->next;
    if (!cJSON_IsNumber(jb) || !cJSON_IsNumber(je) || !(jb->valuedouble >= 0) || !(je->valuedouble >= 0) ||
        jb->valuedouble != floor(jb->valuedouble) || je->valuedouble != floor(je->valuedouble))
        return file_error(TS_ERR_FORMAT, path, "tensor '%s': data_offsets must be two whole numbers >= 0", name);
    b = jb->valuedouble;
    e = je->valuedouble;
    if (e < b)
        return file_error(TS_ERR_FORMAT, path, "tensor '%s': data_offsets [%.0f, %.0f] end before they begin", name, b,
                          e);
    if (e > (double)st->data_size)
        return file_error(TS_ERR_FORMAT, path,
                          "tensor '%s': data_offsets [%.0f, %.0f] are out of range of the data section (%zu bytes; "
                          "is the file truncated?)",
                          name, b, e, st->data_size);
    t->begin = (size_t)b;
    t->end = (size_t)e;
    if (numel > SIZE_MAX / elsize || numel * elsize != t->end - t->begin)
        return file_error(TS_ERR_FORMAT, path,
                          "tensor '%s': data_offsets [%zu, %zu] hold %zu bytes, but shape %s of %s needs %llu x %zu",
                          name, t->begin, t->end, t->end - t->begin, shape_text, dtype_info[t->dtype].name,
                          (unsigned long long)numel, elsize);
    t->numel = (size_t)numel;
    return TS_OK;
}

static ts_status parse_metadata(ts_safetensors *st, const cJSON *meta) {
    if (!cJSON_IsObject(meta))
        return file_error(TS_ERR_FORMAT, st->path, "__metadata__ is not a JSON object of strings");
    int n = cJSON_GetArraySize(meta);
    st->meta_keys = calloc((size_t)n + 1, sizeof *st->meta_keys);
    st->meta_values = calloc((size_t)n + 1, sizeof *st->meta_values);
    if (!st->meta_keys || !st->meta_values) return ts_fail(TS_ERR_NOMEM, "%s: out of memory reading metadata", st->path);
    for (const cJSON *it = meta->child; it; it = it->next) {
        char nb[100];
        if (!cJSON_IsString(it))
            return file_error(TS_ERR_FORMAT, st->path, "__metadata__ value '%s' is not a string",
                              short_name(it->string, nb, sizeof nb));
        int i = st->meta_count;
        st->meta_keys[i] = dup_string(it->string);
        st->meta_values[i] = dup_string(it->valuestring);
        if (!st->meta_keys[i] || !st->meta_values[i]) {
            st->meta_count++;
            return ts_fail(TS_ERR_NOMEM, "%s: out of memory reading metadata", st->path);
        }
        st->meta_count++;
    }
    return TS_OK;
}

/** Parse the header JSON (N bytes at @p hdr) and check the tensors against the data section. */
static ts_status parse_header(ts_safetensors *st, const char *hdr, size_t n) {
    const char *path = st->path;
    if (n == 0 || hdr[0] != '{') return file_error(TS_ERR_FORMAT, path, "header is not a JSON object (it must start with '{')");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, n, &end, 0);
    if (!root) {
        size_t at = (end && end >= hdr && end <= hdr + n) ? (size_t)(end - hdr) : 0;
        return file_error(TS_ERR_FORMAT, path, "header is not valid JSON (error near byte %zu of %zu)", at, n);
    }
    /* Only padding may follow the object. */
    for (const char *c = end; c && c < hdr + n; c++)
        if (*c != ' ' && *c != '\t' && *c != '\n' && *c != '\r' && *c != '\0') {
            cJSON_Delete(root);
            return file_error(TS_ERR_FORMAT, path, "header has text after its JSON object (at byte %zu)",
                              (size_t)(c - hdr));
        }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return file_error(TS_ERR_FORMAT, path, "header is not a JSON object");
    }

    int total = cJSON_GetArraySize(root);
    st->tensors = calloc((size_t)total + 1, sizeof *st->tensors);
    st->by_name = calloc((size_t)total + 1, sizeof *st->by_name);
    int *by_offset = calloc((size_t)total + 1, sizeof *by_offset);
    if (!st->tensors || !st->by_name || !by_offset) {
        free(by_offset);
        cJSON_Delete(root);
        return ts_fail(TS_ERR_NOMEM, "%s: out of memory reading the header", path);
    }
    ts_status status = TS_OK;
    int seen_meta = 0;
    for (const cJSON *item = root->child; item && status == TS_OK; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (seen_meta++) status = file_error(TS_ERR_FORMAT, path, "__metadata__ appears twice");
            else status = parse_metadata(st, item);
            continue;
        }
        if (!item->string[0]) { /* the writer cannot write one either */
            status = file_error(TS_ERR_FORMAT, path, "a tensor has an empty name");
            break;
        }
        ts_st_tensor *t = &st->tensors[st->count];
        memset(t, 0, sizeof *t);
        status = parse_entry(st, item, t);
        if (status) break;
        t->name = dup_string(item->string);
        if (!t->name) status = ts_fail(TS_ERR_NOMEM, "%s: out of memory reading the header", path);
        else st->count++;
    }
    cJSON_Delete(root);

    /* Names must be unique (JSON allows duplicate keys; safetensors does not). */
    if (status == TS_OK) {
        for (int i = 0; i < st->count; i++) st->by_name[i] = by_offset[i] = i;
        sort_tensors = st->tensors;
        qsort(st->by_name, (size_t)st->count, sizeof *st->by_name, cmp_by_name);
        for (int i = 1; i < st->count && status == TS_OK; i++) {
            const ts_st_tensor *a = &st->tensors[st->by_name[i - 1]], *b = &st->tensors[st->by_name[i]];
            char nb[100];
            if (strcmp(a->name, b->name) == 0)
                status = file_error(TS_ERR_FORMAT, path, "tensor '%s' appears twice in the header",
                                    short_name(a->name, nb, sizeof nb));
        }
    }
    /* The tensors must tile the data section exactly: no overlap, no gap, nothing after. */
    if (status == TS_OK) {
        qsort(by_offset, (size_t)st->count, sizeof *by_offset, cmp_by_offset);
        size_t pos = 0;
        const ts_st_tensor *prev = NULL;
        for (int i = 0; i < st->count && status == TS_OK; i++) {
            const ts_st_tensor *t = &st->tensors[by_offset[i]];
            char nb[100], nb2[100];
            if (t->begin < pos)
                status = file_error(TS_ERR_FORMAT, path, "tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap",
                                    short_name(prev->name, nb, sizeof nb), prev->begin, prev->end,
                                    short_name(t->name, nb2, sizeof nb2), t->begin, t->end);
            else if (t->begin > pos)
                status = file_error(TS_ERR_FORMAT, path,
                                    "gap of %zu bytes before tensor '%s' (data_offsets [%zu, %zu]); tensors must be "
                                    "packed back to back",
                                    t->begin - pos, short_name(t->name, nb, sizeof nb), t->begin, t->end);
            pos = t->end;
            prev = t;
        }
        if (status == TS_OK && pos != st->data_size)
            status = file_error(TS_ERR_FORMAT, path,
                                "the last %zu bytes of the data section belong to no tensor (header describes %zu of "
                                "%zu bytes)",
                                st->data_size - pos, pos, st->data_size);
    }
    free(by_offset);
    return status;
}

ts_status ts_safetensors_open(ts_safetensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    if (!path) return ts_fail(TS_ERR_ARG, "ts_safetensors_open: no path");
    st->path = dup_string(path);
    if (!st->path) return ts_fail(TS_ERR_NOMEM, "out of memory opening %s", path);
    int fd = ts_open_input_file(path); /* refuses a folder or a FIFO before opening it */
    if (fd < 0) {
        ts_safetensors_close(st); /* keeps the error message */
        return TS_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        ts_safetensors_close(st);
        return ts_fail(TS_ERR_IO, "%s: cannot tell its size", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        ts_safetensors_close(st);
        return ts_fail(TS_ERR_FORMAT, "%s: file is %zu bytes, shorter than the 8-byte header length", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (map == MAP_FAILED) {
        ts_safetensors_close(st);
        return ts_fail(TS_ERR_IO, "%s: cannot map (%s)", path, strerror(err));
    }
    st->map = map;
    st->size = size;

    uint64_t n = load_le64(st->map);
    if (n > size - 8) {
        ts_status s = ts_fail(TS_ERR_FORMAT,
                              "%s: header length %llu runs past the end of the file (%zu bytes; truncated or not a "
                              "safetensors file?)",
                              path, (unsigned long long)n, size);
        ts_safetensors_close(st);
        return s;
    }
    st->data = st->map + 8 + n;
    st->data_size = size - 8 - (size_t)n;
    ts_status s = parse_header(st, (const char *)st->map + 8, (size_t)n);
    if (s) ts_safetensors_close(st); /* keeps the error message */
    return s;
}

const ts_st_tensor *ts_safetensors_find(const ts_safetensors *st, const char *name) {
    int lo = 0, hi = st->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const ts_st_tensor *t = &st->tensors[st->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *ts_safetensors_meta(const ts_safetensors *st, const char *key) {
    for (int i = 0; i < st->meta_count; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

/** Convert a validated tensor to floats. */
static void convert_f32(const ts_safetensors *st, const ts_st_tensor *t, float *dst) {
    const unsigned char *src = st->data + t->begin;
    switch (t->dtype) {
    case TS_DTYPE_F32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (t->numel) memcpy(dst, src, t->numel * 4);
#else
        for (size_t i = 0; i < t->numel; i++) dst[i] = bits_to_f32(load_le32(src + 4 * i));
#endif
        break;
    case TS_DTYPE_F16:
        for (size_t i = 0; i < t->numel; i++) dst[i] = ts_f16_to_f32(load_le16(src + 2 * i));
        break;
    case TS_DTYPE_BF16:
        for (size_t i = 0; i < t->numel; i++) dst[i] = ts_bf16_to_f32(load_le16(src + 2 * i));
        break;
    default:
        break;
    }
}

static int is_float_dtype(ts_dtype d) { return d == TS_DTYPE_F32 || d == TS_DTYPE_F16 || d == TS_DTYPE_BF16; }

ts_status ts_safetensors_check_finite(const ts_safetensors *st, const ts_st_tensor *t) {
    if (!is_float_dtype(t->dtype)) return TS_OK;
    const unsigned char *src = st->data + t->begin;
    size_t i = 0, n = t->numel;
    /* All exponent bits set: ±inf or NaN, in each format. */
    if (t->dtype == TS_DTYPE_F32)
        while (i < n && (load_le32(src + 4 * i) & 0x7f800000u) != 0x7f800000u) i++;
    else if (t->dtype == TS_DTYPE_F16)
        while (i < n && (load_le16(src + 2 * i) & 0x7c00u) != 0x7c00u) i++;
    else
        while (i < n && (load_le16(src + 2 * i) & 0x7f80u) != 0x7f80u) i++;
    if (i == n) return TS_OK;
    float bad = t->dtype == TS_DTYPE_F32   ? bits_to_f32(load_le32(src + 4 * i))
                : t->dtype == TS_DTYPE_F16 ? ts_f16_to_f32(load_le16(src + 2 * i))
                                           : ts_bf16_to_f32(load_le16(src + 2 * i));
    /* The flat index as a position in the shape, e.g. [3, 17]. */
    char where[200] = "[";
    size_t rest = i, stride = t->numel;
    for (int d = 0; d < t->ndim; d++) {
        stride = t->shape[d] ? stride / (size_t)t->shape[d] : 1;
        size_t k = stride ? rest / stride : 0;
        rest -= k * stride;
        snprintf(where + strlen(where), sizeof where - strlen(where), "%s%zu", d ? ", " : "", k);
    }
    strncat(where, "]", sizeof where - strlen(where) - 1);
    char nb[100];
    return ts_fail(TS_ERR_FORMAT, "%s: tensor '%s' holds %s at index %zu (element %s); weights must be finite", st->path,
                   short_name(t->name, nb, sizeof nb), isnan(bad) ? "NaN" : bad > 0 ? "+inf" : "-inf", i, where);
}

ts_status ts_safetensors_read_f32(const ts_safetensors *st, const char *name, float *dst, size_t numel) {
    const ts_st_tensor *t = ts_safetensors_find(st, name);
    if (!t) return ts_fail(TS_ERR_FORMAT, "%s: tensor '%s' is missing", st->path, name);
    if (!is_float_dtype(t->dtype))
        return ts_fail(TS_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected F32, F16 or BF16", st->path, name,
                       dtype_info[t->dtype].name);
    if (t->numel != numel)
        return ts_fail(TS_ERR_ARG, "%s: tensor '%s' has %zu elements, the caller expects %zu", st->path, name,
                       t->numel, numel);
    if (numel && !dst) return ts_fail(TS_ERR_ARG, "%s: tensor '%s': no destination", st->path, name);
    convert_f32(st, t, dst);
    return TS_OK;
}

ts_status ts_safetensors_load_params(ts_params *p, const char *path) {
    if (!p || !path) return ts_fail(TS_ERR_ARG, "ts_safetensors_load_params: bad arguments");
    if (p->count > 0 && !p->data) return ts_fail(TS_ERR_ARG, "%s: the parameters are not allocated", path);
    ts_safetensors st;
    ts_status s = ts_safetensors_open(&st, path);
    if (s) return s;

    /* Check everything first, so a bad file leaves p->data as it was. */
    for (int i = 0; i < p->count && s == TS_OK; i++) {
        const ts_param *pa = &p->params[i];
        const ts_st_tensor *t = ts_safetensors_find(&st, pa->name);
        char want[160], have[200];
        format_shape(want, sizeof want, pa->ndim, pa->shape);
        if (!t) {
            s = ts_fail(TS_ERR_FORMAT, "%s: tensor '%s' is missing (the config expects shape %s)", path, pa->name,
                        want);
            break;
        }
        int same = t->ndim == pa->ndim;
        for (int d = 0; same && d < pa->ndim; d++) same = t->shape[d] == pa->shape[d];
        if (!same) {
            format_shape64(have, sizeof have, t->ndim, t->shape);
            s = ts_fail(TS_ERR_FORMAT, "%s: tensor '%s' has shape %s, config expects %s", path, pa->name, have, want);
        } else if (!is_float_dtype(t->dtype)) {
            s = ts_fail(TS_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected F32, F16 or BF16", path, pa->name,
                        dtype_info[t->dtype].name);
        }
    }
    /* A NaN or inf weight would turn every output into NaN without a word: refuse it here. */
    for (int i = 0; i < p->count && s == TS_OK; i++)
        s = ts_safetensors_check_finite(&st, ts_safetensors_find(&st, p->params[i].name));
    /* Every registered name was found and file names are unique, so more tensors means extras. */
    if (s == TS_OK && st.count != p->count) {
        for (int i = 0; i < st.count; i++) {
            if (ts_params_find(p, st.tensors[i].name) >= 0) continue;
            char nb[100];
            s = file_error(TS_ERR_FORMAT, path,
                           "tensor '%s' is not used by the config (%d tensors expected, the file has %d; wrong "
                           "config.json for this checkpoint?)",
                           short_name(st.tensors[i].name, nb, sizeof nb), p->count, st.count);
            break;
        }
    }
    for (int i = 0; i < p->count && s == TS_OK; i++)
        convert_f32(&st, ts_safetensors_find(&st, p->params[i].name), p->data + p->params[i].offset);
    ts_safetensors_close(&st);
    return s;
}
