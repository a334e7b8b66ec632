/* Chapter 2 checkpoints: safetensors round trips, F16/BF16 reading, and every
 * malformed file the reader must refuse with a message naming the problem. */
#include "testutil.h"

#include <dirent.h>

#include "core/arena.h"
#include "io/fileio.h"
#include "io/safetensors.h"

/* ---- helpers ------------------------------------------------------------- */


static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/** Write a safetensors file by hand: 8-byte length, @p header verbatim, then @p data. */
static void write_raw(const char *path, const char *header, const void *data, size_t data_len) {
    size_t n = strlen(header);
    unsigned char *buf = malloc(8 + n + data_len + 1);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    if (data_len) memcpy(buf + 8 + n, data, data_len);
    write_bytes(path, buf, 8 + n + data_len);
    free(buf);
}

/** Open @p path expecting failure with @p code and a message containing @p needle. */
static void expect_open_error(const char *path, ts_status code, const char *needle) {
    ts_safetensors st;
    ts_clear_error();
    ts_status s = ts_safetensors_open(&st, path);
    if (s == TS_OK) ts_safetensors_close(&st);
    assert_int_equal(s, code);
    if (!strstr(ts_last_error(), needle)) fail_msg("error '%s' does not mention '%s'", ts_last_error(), needle);
    assert_null(strchr(ts_last_error(), '\n'));
    ts_safetensors_close(&st); /* harmless after a failed open */
}

/** Expect ts_safetensors_load_params to fail with a message containing every needle. */
static void expect_load_error(ts_params *p, const char *path, const char *n1, const char *n2, const char *n3) {
    ts_clear_error();
    ts_status s = ts_safetensors_load_params(p, path);
    assert_int_not_equal(s, TS_OK);
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        if (needles[i] && !strstr(ts_last_error(), needles[i]))
            fail_msg("error '%s' does not mention '%s'", ts_last_error(), needles[i]);
}

/** A small registry: a.weight (2,4), b.bias (3) — 8 + 3 floats. */
static void small_params(ts_params *p) {
    ts_params_init(p);
    int s1[2] = {2, 4}, s2[1] = {3};
    assert_int_equal(ts_params_add(p, "a.weight", 2, s1, 0), 0);
    assert_int_equal(ts_params_add(p, "b.bias", 1, s2, 1), 1);
    assert_int_equal(ts_params_alloc(p, 0), TS_OK);
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/** Same values in every tensor (the arena's alignment padding is not compared). */
static void assert_params_equal(const ts_params *a, const ts_params *b) {
    assert_int_equal(a->count, b->count);
    for (int t = 0; t < a->count; t++)
        assert_memory_equal(a->data + a->params[t].offset, b->data + b->params[t].offset,
                            a->params[t].numel * sizeof(float));
}

static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp")) n++;
    closedir(d);
    return n;
}

/* ---- round trips ------------------------------------------------------------ */

static void save_load_round_trip_is_bit_identical(void **state) {
    (void)state;
    ts_params p, q;
    ts_params_init(&p);
    ts_params_init(&q);
    int s1[2] = {3, 5}, s2[1] = {7}, s3[3] = {2, 3, 4}, s4[4] = {1, 2, 1, 3}, s5[2] = {64, 33};
    const char *names[5] = {"model.embed_tokens.weight", "model.norm.weight", "model.layers.0.x.weight",
                            "model.layers.0.y.weight", "lm_head.weight"};
    const int *shapes[5] = {s1, s2, s3, s4, s5};
    const int ndims[5] = {2, 1, 3, 4, 2};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ts_params_add(&p, names[i], ndims[i], shapes[i], i == 1), i);
        assert_int_equal(ts_params_add(&q, names[i], ndims[i], shapes[i], i == 1), i);
    }
    assert_int_equal(ts_params_alloc(&p, 0), TS_OK);
    assert_int_equal(ts_params_alloc(&q, 0), TS_OK);
    tu_fill(p.data, p.numel, 3.0f, 7);
    /* Values a text format would mangle: -0, a subnormal, infinities, a NaN with a payload. */
    float *e = p.data + p.params[0].offset;
    e[0] = -0.0f;
    e[1] = from_bits(0x00000001u);
    e[2] = from_bits(0x7f800000u);
    e[3] = from_bits(0xff800000u);
    e[4] = from_bits(0x7fc01234u);
    e[5] = 1e-40f;
    e[6] = 3.4028235e38f;

    const char *path = tu_path("model.safetensors");
    assert_int_equal(ts_safetensors_save(&p, path, "{\"format\":\"pt\",\"note\":\"tinyseek \\\"test\\\"\"}"), TS_OK);
    for (size_t i = 0; i < q.numel; i++) q.data[i] = 123.0f;
    /* The file keeps the infinities and the NaN bit for bit (read raw below), but
     * a model never loads them: refused naming the tensor and the first index. */
    {
        ts_safetensors raw;
        float row[15];
        assert_int_equal(ts_safetensors_open(&raw, path), TS_OK);
        assert_int_equal(ts_safetensors_read_f32(&raw, names[0], row, 15), TS_OK);
        for (int i = 0; i < 15; i++) assert_int_equal(fbits(row[i]), fbits(e[i]));
        ts_safetensors_close(&raw);
    }
    assert_int_equal(ts_safetensors_load_params(&q, path), TS_ERR_FORMAT);
    assert_non_null(strstr(ts_last_error(), names[0]));
    assert_non_null(strstr(ts_last_error(), "+inf at index 2"));
    for (size_t i = 0; i < q.numel; i++) assert_true(q.data[i] == 123.0f); /* nothing copied */
    e[2] = 1.0f;
    e[3] = -2.0f;
    e[4] = 0.5f;
    assert_int_equal(ts_safetensors_save(&p, path, "{\"format\":\"pt\",\"note\":\"tinyseek \\\"test\\\"\"}"), TS_OK);
    assert_int_equal(ts_safetensors_load_params(&q, path), TS_OK);
    for (int t = 0; t < p.count; t++) {
        const float *a = p.data + p.params[t].offset, *b = q.data + q.params[t].offset;
        for (size_t i = 0; i < p.params[t].numel; i++) assert_int_equal(fbits(a[i]), fbits(b[i]));
    }

    /* The file itself: header aligned, tensors in registration order, metadata kept. */
    ts_safetensors st;
    assert_int_equal(ts_safetensors_open(&st, path), TS_OK);
    assert_int_equal(st.count, 5);
    assert_int_equal((size_t)(st.data - st.map) % 8, 0);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(st.tensors[i].name, names[i]);
        assert_int_equal(st.tensors[i].dtype, TS_DTYPE_F32);
        assert_int_equal(st.tensors[i].ndim, ndims[i]);
        for (int d = 0; d < ndims[i]; d++) assert_int_equal(st.tensors[i].shape[d], shapes[i][d]);
    }
    assert_int_equal(st.tensors[0].begin, 0);
    assert_int_equal(st.tensors[1].begin, 15 * 4);
    assert_string_equal(ts_safetensors_meta(&st, "format"), "pt");
    assert_string_equal(ts_safetensors_meta(&st, "note"), "tinyseek \"test\"");
    assert_null(ts_safetensors_meta(&st, "missing"));
    assert_non_null(ts_safetensors_find(&st, "lm_head.weight"));
    assert_null(ts_safetensors_find(&st, "lm_head"));
    float back[7];
    assert_int_equal(ts_safetensors_read_f32(&st, "model.norm.weight", back, 7), TS_OK);
    assert_memory_equal(back, p.data + p.params[1].offset, sizeof back);
    assert_int_equal(ts_safetensors_read_f32(&st, "model.norm.weight", back, 6), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "model.norm.weight"));
    assert_int_equal(ts_safetensors_read_f32(&st, "nope", back, 7), TS_ERR_FORMAT);
    assert_non_null(strstr(ts_last_error(), "'nope' is missing"));
    ts_safetensors_close(&st);
    ts_safetensors_close(&st); /* twice is harmless */
    assert_int_equal(count_tmp_files(tu_dir), 0);
    ts_params_free(&p);
    ts_params_free(&q);
}

static void low_level_writer_handles_scalars_and_empty_tensors(void **state) {
    (void)state;
    float logits[6] = {1, 2, 3, 4, 5, 6}, scalar = 2.5f;
    int s_logits[3] = {1, 2, 3}, s_empty[2] = {0, 4};
    ts_st_entry e[3] = {
        {"logits", 3, s_logits, logits},
        {"empty", 2, s_empty, NULL},
        {"loss", 0, NULL, &scalar},
    };
    const char *path = tu_path("logits.safetensors");
    assert_int_equal(ts_safetensors_write(path, e, 3, NULL), TS_OK);
    ts_safetensors st;
    assert_int_equal(ts_safetensors_open(&st, path), TS_OK);
    assert_int_equal(st.count, 3);
    assert_int_equal(st.meta_count, 0);
    const ts_st_tensor *t = ts_safetensors_find(&st, "empty");
    assert_non_null(t);
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->ndim, 2);
    t = ts_safetensors_find(&st, "loss");
    assert_non_null(t);
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    float x = 0, y[6];
    assert_int_equal(ts_safetensors_read_f32(&st, "loss", &x, 1), TS_OK);
    assert_true(x == 2.5f);
    assert_int_equal(ts_safetensors_read_f32(&st, "logits", y, 6), TS_OK);
    assert_memory_equal(y, logits, sizeof y);
    assert_int_equal(ts_safetensors_read_f32(&st, "empty", NULL, 0), TS_OK);
    ts_safetensors_close(&st);

    /* Bad entries are refused before anything is written. */
    ts_st_entry dup[2] = {{"x", 0, NULL, &scalar}, {"x", 0, NULL, &scalar}};
    assert_int_equal(ts_safetensors_write(tu_path("dup.safetensors"), dup, 2, NULL), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "'x' is given twice"));
    int neg[1] = {-3};
    ts_st_entry bad_shape = {"y", 1, neg, logits};
    assert_int_equal(ts_safetensors_write(tu_path("neg.safetensors"), &bad_shape, 1, NULL), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "'y'"));
    assert_int_equal(ts_safetensors_write(tu_path("meta.safetensors"), e, 1, "{\"step\": 3}"), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "'step' is not a string"));
    assert_int_equal(ts_safetensors_write(tu_path("meta.safetensors"), e, 1, "[1]"), TS_ERR_ARG);
    assert_non_null(strstr(ts_last_error(), "not a JSON object"));
    assert_int_equal(access(tu_path("dup.safetensors"), F_OK), -1);
    assert_int_equal(count_tmp_files(tu_dir), 0);
}

static void f16_and_bf16_convert_exactly(void **state) {
    (void)state;
    /* binary16 bit patterns and their exact values. */
    const uint16_t h[12] = {0x3c00, 0xc000, 0x0001, 0x8001, 0x03ff, 0x0200, 0x7bff,
                            0x3555, 0x0000, 0x8000, 0x7c00, 0xfc00};
    const float hv[12] = {1.0f,        -2.0f,          0x1p-24f,           -0x1p-24f,
                          0x3ffp-24f,  0x1p-15f,       65504.0f,           0.333251953125f,
                          0.0f,        -0.0f,          INFINITY,           -INFINITY};
    /* bfloat16: the upper half of a binary32. */
    const uint16_t b[6] = {0x3f80, 0xc040, 0x0001, 0x8080, 0x4049, 0x7f80};
    const float bv[6] = {1.0f, -3.0f, 0x1p-133f, -0x1p-126f, 3.140625f, INFINITY};
    for (int i = 0; i < 12; i++) assert_int_equal(fbits(ts_f16_to_f32(h[i])), fbits(hv[i]));
    for (int i = 0; i < 6; i++) assert_int_equal(fbits(ts_bf16_to_f32(b[i])), fbits(bv[i]));
    assert_true(isnan(ts_f16_to_f32(0x7e00)));
    assert_true(isnan(ts_f16_to_f32(0xfc01)));
    assert_true(isnan(ts_bf16_to_f32(0x7fc0)));
    /* Every f16 survives f16 -> f32 -> f16 by the round trip through a double. */
    for (uint32_t u = 0; u < 0x10000; u++) {
        float f = ts_f16_to_f32((uint16_t)u);
        if (isnan(f)) continue;
        int exp = (int)((u >> 10) & 0x1f), mant = (int)(u & 0x3ff);
        double want = exp == 0 ? ldexp(mant, -24) : exp == 31 ? INFINITY : ldexp(1024 + mant, exp - 25);
        if (u & 0x8000) want = -want;
        assert_true((double)f == want);
    }

    /* A hand-written file with one F16 (3,4) and one BF16 (6) tensor, loaded into a registry. */
    unsigned char data[24 + 12];
    for (int i = 0; i < 12; i++) {
        data[2 * i] = (unsigned char)(h[i] & 0xff);
        data[2 * i + 1] = (unsigned char)(h[i] >> 8);
    }
    for (int i = 0; i < 6; i++) {
        data[24 + 2 * i] = (unsigned char)(b[i] & 0xff);
        data[24 + 2 * i + 1] = (unsigned char)(b[i] >> 8);
    }
    const char *path = tu_path("half.safetensors");
    write_raw(path,
              "{\"h\":{\"dtype\":\"F16\",\"shape\":[3,4],\"data_offsets\":[0,24]},"
              "\"b\":{\"dtype\":\"BF16\",\"shape\":[6],\"data_offsets\":[24,36]}}",
              data, sizeof data);
    ts_params p;
    ts_params_init(&p);
    int sh[2] = {3, 4}, sb[1] = {6};
    assert_int_equal(ts_params_add(&p, "b", 1, sb, 0), 0);
    assert_int_equal(ts_params_add(&p, "h", 2, sh, 0), 1);
    assert_int_equal(ts_params_alloc(&p, 0), TS_OK);
    /* The last F16 values and the last BF16 value are infinities: a model refuses them
     * (naming the tensor and where), the raw reader converts them exactly. */
    assert_int_equal(ts_safetensors_load_params(&p, path), TS_ERR_FORMAT);
    assert_non_null(strstr(ts_last_error(), "'b' holds +inf at index 5 (element [5])"));
    ts_safetensors st;
    assert_int_equal(ts_safetensors_open(&st, path), TS_OK);
    float hx[12], bx[6];
    assert_int_equal(ts_safetensors_read_f32(&st, "h", hx, 12), TS_OK);
    assert_int_equal(ts_safetensors_read_f32(&st, "b", bx, 6), TS_OK);
    for (int i = 0; i < 12; i++) assert_int_equal(fbits(hx[i]), fbits(hv[i]));
    for (int i = 0; i < 6; i++) assert_int_equal(fbits(bx[i]), fbits(bv[i]));
    ts_safetensors_close(&st);
    /* Finite halves load through the registry with the same bits. */
    data[20] = data[22] = 0x00; /* h[10], h[11] = +0, +0 */
    data[21] = data[23] = 0x00;
    data[34] = 0x80; /* b[5] = 0x3f80 = 1.0 */
    data[35] = 0x3f;
    write_raw(path,
              "{\"h\":{\"dtype\":\"F16\",\"shape\":[3,4],\"data_offsets\":[0,24]},"
              "\"b\":{\"dtype\":\"BF16\",\"shape\":[6],\"data_offsets\":[24,36]}}",
              data, sizeof data);
    assert_int_equal(ts_safetensors_load_params(&p, path), TS_OK);
    for (int i = 0; i < 10; i++) assert_int_equal(fbits(p.data[p.params[1].offset + i]), fbits(hv[i]));
    for (int i = 0; i < 5; i++) assert_int_equal(fbits(p.data[p.params[0].offset + i]), fbits(bv[i]));
    assert_true(p.data[p.params[0].offset + 5] == 1.0f);
    assert_int_equal(ts_safetensors_open(&st, path), TS_OK);
    assert_int_equal(ts_safetensors_find(&st, "h")->dtype, TS_DTYPE_F16);
    assert_int_equal(ts_safetensors_find(&st, "b")->dtype, TS_DTYPE_BF16);
    assert_string_equal(ts_dtype_name(TS_DTYPE_BF16), "BF16");
    assert_int_equal(ts_dtype_size(TS_DTYPE_F16), 2);
    ts_safetensors_close(&st);
    ts_params_free(&p);
}

/* ---- malformed files ---------------------------------------------------------- */

static void truncated_files_are_refused(void **state) {
    (void)state;
    ts_params p;
    small_params(&p);
    tu_fill(p.data, p.numel, 1.0f, 3);
    const char *good = tu_path("good.safetensors");
    assert_int_equal(ts_safetensors_save(&p, good, NULL), TS_OK);
    char *bytes;
    size_t len;
    assert_int_equal(ts_read_file(good, &bytes, &len), TS_OK);
    size_t n = 0;
    for (int i = 0; i < 8; i++) n |= (size_t)(unsigned char)bytes[i] << (8 * i);
    assert_int_equal(len, 8 + n + 11 * 4);

    const char *cut = tu_path("cut.safetensors");
    struct {
        size_t at;
        const char *needle;
    } cuts[] = {
        {0, "shorter than the 8-byte"},        {3, "shorter than the 8-byte"},
        {7, "shorter than the 8-byte"},        {8, "runs past the end"},
        {8 + n / 2, "runs past the end"},      {8 + n - 1, "runs past the end"},
        {8 + n, "out of range"},               {8 + n + 5, "out of range"},
        {len - 1, "out of range"},             {len - 4, "truncated"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_bytes(cut, bytes, cuts[i].at);
        expect_open_error(cut, TS_ERR_FORMAT, cuts[i].needle);
        expect_load_error(&p, cut, "cut.safetensors", cuts[i].needle, NULL);
    }
    /* Every other cut point fails too, without reading past the end. */
    for (size_t at = 0; at < len; at++) {
        write_bytes(cut, bytes, at);
        ts_safetensors st;
        assert_int_not_equal(ts_safetensors_open(&st, cut), TS_OK);
    }
    /* Trailing bytes nobody describes are refused as well. */
    char *longer = malloc(len + 4);
    memcpy(longer, bytes, len);
    memset(longer + len, 0, 4);
    write_bytes(cut, longer, len + 4);
    expect_open_error(cut, TS_ERR_FORMAT, "belong to no tensor");
    free(longer);
    free(bytes);
    ts_params_free(&p);
}

static void header_length_beyond_the_file(void **state) {
    (void)state;
    unsigned char buf[16] = {0xe8, 0x03, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    const char *path = tu_path("hlen.safetensors");
    write_bytes(path, buf, sizeof buf);
    expect_open_error(path, TS_ERR_FORMAT, "header length 1000 runs past the end");
    /* A length near 2^64 must not wrap around. */
    memset(buf, 0xff, 8);
    write_bytes(path, buf, sizeof buf);
    expect_open_error(path, TS_ERR_FORMAT, "runs past the end");
    /* A missing file is an I/O error naming it. */
    expect_open_error(tu_path("no-such-file.safetensors"), TS_ERR_IO, "no-such-file.safetensors");
}

static void header_not_json(void **state) {
    (void)state;
    const char *path = tu_path("notjson.safetensors");
    write_raw(path, "{\"a\": {\"dtype\": \"F32\", ", NULL, 0);
    expect_open_error(path, TS_ERR_FORMAT, "not valid JSON");
    write_raw(path, "[1, 2, 3]", NULL, 0);
    expect_open_error(path, TS_ERR_FORMAT, "not a JSON object");
    write_raw(path, "hello", NULL, 0);
    expect_open_error(path, TS_ERR_FORMAT, "not a JSON object");
    write_raw(path, "", NULL, 0);
    expect_open_error(path, TS_ERR_FORMAT, "not a JSON object");
    write_raw(path, "{} {}", NULL, 0);
    expect_open_error(path, TS_ERR_FORMAT, "text after its JSON object");
    write_raw(path, "{\"a\": 3}", NULL, 0);
    expect_open_error(path, TS_ERR_FORMAT, "tensor 'a': entry is not a JSON object");
    /* An empty object with padding is a valid, empty file. */
    write_raw(path, "{}      ", NULL, 0);
    ts_safetensors st;
    assert_int_equal(ts_safetensors_open(&st, path), TS_OK);
    assert_int_equal(st.count, 0);
    ts_safetensors_close(&st);
}

static void entry_fields_missing_or_mistyped(void **state) {
    (void)state;
    const char *path = tu_path("fields.safetensors");
    float data[4] = {0};
    struct {
        const char *header, *needle;
    } cases[] = {
        {"{\"w\":{\"shape\":[4],\"data_offsets\":[0,16]}}", "tensor 'w': field 'dtype' is missing"},
        {"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", "tensor 'w': field 'shape' is missing"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}", "tensor 'w': field 'data_offsets' is missing"},
        {"{\"w\":{\"dtype\":32,\"shape\":[4],\"data_offsets\":[0,16]}}", "field 'dtype' is not a string"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", "field 'shape' is not an array"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[\"4\"],\"data_offsets\":[0,16]}}", "shape dimension 0 is a non-number"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", "shape dimension 0 is -4"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,1.5],\"data_offsets\":[0,16]}}", "shape dimension 1 is 1.5"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,4],\"data_offsets\":[0,16]}}", "9 dimensions"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}",
         "absurd"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,16]}}", "shape dimension 0"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":\"0-16\"}}", "not a pair"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16,32]}}", "not a pair"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-16,0]}}", "two whole numbers"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}", "end before they begin"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,16]}}", "hold 16 bytes"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"__metadata__\":{\"step\":1}}",
         "__metadata__ value 'step' is not a string"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"__metadata__\":[]}",
         "__metadata__ is not a JSON object"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]}}",
         "'w' appears twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_raw(path, cases[i].header, data, sizeof data);
        expect_open_error(path, TS_ERR_FORMAT, cases[i].needle);
    }
}

static void unknown_dtype(void **state) {
    (void)state;
    const char *path = tu_path("q4.safetensors");
    unsigned char data[8] = {0};
    write_raw(path, "{\"a.weight\":{\"dtype\":\"Q4\",\"shape\":[2,8],\"data_offsets\":[0,8]}}", data, 8);
    expect_open_error(path, TS_ERR_FORMAT, "tensor 'a.weight': unknown dtype 'Q4'");
    /* A known dtype that is not a float cannot fill parameters. */
    ts_params p;
    ts_params_init(&p);
    int s[1] = {1};
    assert_int_equal(ts_params_add(&p, "a.weight", 1, s, 0), 0);
    assert_int_equal(ts_params_alloc(&p, 0), TS_OK);
    write_raw(path, "{\"a.weight\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", data, 8);
    expect_load_error(&p, path, "'a.weight'", "dtype I64", "F32, F16 or BF16");
    ts_params_free(&p);
}

static void offsets_out_of_range(void **state) {
    (void)state;
    const char *path = tu_path("range.safetensors");
    float data[4] = {0};
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", data, sizeof data);
    expect_open_error(path, TS_ERR_FORMAT, "tensor 'w': data_offsets [0, 400] are out of range");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[1e30,1e30]}}", data, sizeof data);
    expect_open_error(path, TS_ERR_FORMAT, "out of range");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[18446744073709551615,4]}}", data,
              sizeof data);
    expect_open_error(path, TS_ERR_FORMAT, "tensor 'w'");
}

static void overlapping_and_gapped_tensors(void **state) {
    (void)state;
    const char *path = tu_path("overlap.safetensors");
    float data[9] = {0};
    write_raw(path,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
              data, 24);
    expect_open_error(path, TS_ERR_FORMAT, "tensors 'a' [0, 16] and 'b' [8, 24] overlap");
    write_raw(path,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
              data, 16);
    expect_open_error(path, TS_ERR_FORMAT, "overlap");
    write_raw(path,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[20,36]}}",
              data, 36);
    expect_open_error(path, TS_ERR_FORMAT, "gap of 4 bytes before tensor 'b'");
    /* Out of file order but tiling the data exactly is fine. */
    write_raw(path,
              "{\"b\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,32]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
              data, 32);
    ts_safetensors st;
    assert_int_equal(ts_safetensors_open(&st, path), TS_OK);
    assert_int_equal(st.count, 2);
    ts_safetensors_close(&st);
}

static void wrong_shape_for_the_config(void **state) {
    (void)state;
    ts_params p, q;
    small_params(&p);
    ts_params_init(&q);
    int s1[2] = {4, 2}, s2[1] = {3};
    assert_int_equal(ts_params_add(&q, "a.weight", 2, s1, 0), 0);
    assert_int_equal(ts_params_add(&q, "b.bias", 1, s2, 1), 1);
    assert_int_equal(ts_params_alloc(&q, 0), TS_OK);
    tu_fill(p.data, p.numel, 1.0f, 5);
    const char *path = tu_path("model.safetensors");
    assert_int_equal(ts_safetensors_save(&p, path, NULL), TS_OK);
    for (size_t i = 0; i < q.numel; i++) q.data[i] = 9.0f;
    expect_load_error(&q, path, "model.safetensors: tensor 'a.weight' has shape [2, 4], config expects [4, 2]",
                      NULL, NULL);
    for (size_t i = 0; i < q.numel; i++) assert_true(q.data[i] == 9.0f); /* untouched */
    ts_params_free(&q);

    /* A rank mismatch too. */
    ts_params_init(&q);
    int s3[1] = {8};
    assert_int_equal(ts_params_add(&q, "a.weight", 1, s3, 0), 0);
    assert_int_equal(ts_params_add(&q, "b.bias", 1, s2, 1), 1);
    assert_int_equal(ts_params_alloc(&q, 0), TS_OK);
    expect_load_error(&q, path, "'a.weight' has shape [2, 4], config expects [8]", NULL, NULL);
    ts_params_free(&q);
    ts_params_free(&p);
}

static void missing_and_extra_tensors(void **state) {
    (void)state;
    ts_params p, bigger, smaller;
    small_params(&p);
    const char *path = tu_path("model.safetensors");
    assert_int_equal(ts_safetensors_save(&p, path, NULL), TS_OK);

    ts_params_init(&bigger);
    int s1[2] = {2, 4}, s2[1] = {3}, s3[1] = {5};
    assert_int_equal(ts_params_add(&bigger, "a.weight", 2, s1, 0), 0);
    assert_int_equal(ts_params_add(&bigger, "b.bias", 1, s2, 1), 1);
    assert_int_equal(ts_params_add(&bigger, "model.norm.weight", 1, s3, 1), 2);
    assert_int_equal(ts_params_alloc(&bigger, 0), TS_OK);
    expect_load_error(&bigger, path, "tensor 'model.norm.weight' is missing", "[5]", NULL);

    ts_params_init(&smaller);
    assert_int_equal(ts_params_add(&smaller, "a.weight", 2, s1, 0), 0);
    assert_int_equal(ts_params_alloc(&smaller, 0), TS_OK);
    expect_load_error(&smaller, path, "tensor 'b.bias' is not used by the config", NULL, NULL);

    /* __metadata__ is not a tensor and never counts as an extra one. */
    assert_int_equal(ts_safetensors_save(&p, path, "{\"format\":\"pt\"}"), TS_OK);
    assert_int_equal(ts_safetensors_load_params(&p, path), TS_OK);
    ts_params_free(&p);
    ts_params_free(&bigger);
    ts_params_free(&smaller);
}

static void random_corruption_never_crashes(void **state) {
    (void)state;
    ts_params p;
    small_params(&p);
    tu_fill(p.data, p.numel, 1.0f, 11);
    const char *good = tu_path("fuzz-good.safetensors"), *bad = tu_path("fuzz.safetensors");
    assert_int_equal(ts_safetensors_save(&p, good, "{\"k\":\"v\"}"), TS_OK);
    char *bytes;
    size_t len;
    assert_int_equal(ts_read_file(good, &bytes, &len), TS_OK);
    char *copy = malloc(len);
    ts_rng r;
    ts_rng_seed(&r, 99, TS_STREAM_TEST);
    const char tokens[] = "{}[]\",:-0123456789eE. \\x";
    int accepted = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(copy, bytes, len);
        int flips = 1 + (int)ts_rng_below(&r, 4);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)ts_rng_below(&r, len);
            copy[at] = ts_rng_below(&r, 2) ? (char)ts_rng_below(&r, 256) : tokens[ts_rng_below(&r, sizeof tokens - 1)];
        }
        write_bytes(bad, copy, len);
        ts_safetensors st;
        if (ts_safetensors_open(&st, bad) == TS_OK) {
            float buf[8];
            for (int i = 0; i < st.count; i++)
                if (st.tensors[i].numel <= 8) (void)ts_safetensors_read_f32(&st, st.tensors[i].name, buf, st.tensors[i].numel);
            ts_safetensors_close(&st);
        } else {
            assert_true(ts_last_error()[0] != '\0');
            assert_null(strchr(ts_last_error(), '\n'));
        }
        if (ts_safetensors_load_params(&p, bad) == TS_OK) accepted++;
    }
    assert_true(accepted < 3000);
    free(copy);
    free(bytes);
    ts_params_free(&p);
}

/* ---- atomic saves --------------------------------------------------------------- */

static void aborted_save_leaves_the_old_file(void **state) {
    (void)state;
    ts_params p, q;
    small_params(&p);
    small_params(&q);
    tu_fill(p.data, p.numel, 1.0f, 21);
    const char *path = tu_path("atomic.safetensors");
    assert_int_equal(ts_safetensors_save(&p, path, NULL), TS_OK);

    /* A writer that fails midway: half a file under the temporary name, then abort. */
    ts_atomic_file af;
    assert_int_equal(ts_atomic_open(&af, path), TS_OK);
    assert_int_equal(fwrite("\x10\0\0\0\0\0\0\0{\"a.we", 1, 14, af.f), 14);
    fflush(af.f);
    assert_int_equal(count_tmp_files(tu_dir), 1);
    ts_atomic_abort(&af);
    assert_int_equal(count_tmp_files(tu_dir), 0);
    assert_int_equal(ts_safetensors_load_params(&q, path), TS_OK);
    assert_params_equal(&q, &p);

    /* Saving over an existing file replaces it whole. */
    tu_fill(p.data, p.numel, 1.0f, 22);
    assert_int_equal(ts_safetensors_save(&p, path, NULL), TS_OK);
    assert_int_equal(ts_safetensors_load_params(&q, path), TS_OK);
    assert_params_equal(&q, &p);
    assert_int_equal(count_tmp_files(tu_dir), 0);

    /* A save that cannot even start reports the path and leaves nothing behind. */
    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/missing-folder/model.safetensors", tu_dir);
    assert_int_equal(ts_safetensors_save(&p, nodir, NULL), TS_ERR_IO);
    assert_non_null(strstr(ts_last_error(), "missing-folder"));
    assert_int_equal(count_tmp_files(tu_dir), 0);
    ts_params_free(&p);
    ts_params_free(&q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(save_load_round_trip_is_bit_identical),
        cmocka_unit_test(low_level_writer_handles_scalars_and_empty_tensors),
        cmocka_unit_test(f16_and_bf16_convert_exactly),
        cmocka_unit_test(truncated_files_are_refused),
        cmocka_unit_test(header_length_beyond_the_file),
        cmocka_unit_test(header_not_json),
        cmocka_unit_test(entry_fields_missing_or_mistyped),
        cmocka_unit_test(unknown_dtype),
        cmocka_unit_test(offsets_out_of_range),
        cmocka_unit_test(overlapping_and_gapped_tensors),
        cmocka_unit_test(wrong_shape_for_the_config),
        cmocka_unit_test(missing_and_extra_tensors),
        cmocka_unit_test(random_corruption_never_crashes),
        cmocka_unit_test(aborted_save_leaves_the_old_file),
    };
    return cmocka_run_group_tests_name("ch02_safetensors", tests, tu_setup_dir, tu_teardown_dir);
}
