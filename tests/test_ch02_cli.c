/* Chapter 2 through the command line: every malformed checkpoint, bad token
 * or bad flag ends with exactly one line and exit status 2 — one test per case. */
#include "testutil.h"

#include <cJSON.h>

#include "io/fileio.h"
#include "model/checkpoint.h"

typedef struct {
    char dir[64];
    char st_path[128];
    char out[128];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    tu_tmpdir(f->dir);
    snprintf(f->st_path, sizeof f->st_path, "%s/model.safetensors", f->dir);
    snprintf(f->out, sizeof f->out, "%s/logits.npy", f->dir);
    ts_config c;
    ts_config_default(&c);
    c.vocab_size = 20;
    c.hidden_size = 16;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.head_dim = 8;
    c.intermediate_size = 24;
    c.max_position_embeddings = 16;
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    ts_model_init_weights(&m, 1);
    assert_int_equal(ts_checkpoint_save(&m, f->dir, NULL), TS_OK);
    ts_model_free(&m);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

/* Run `tinyseek logits` on the fixture; returns the status, output in out. */
static int run_logits(const fixture *f, char *out, size_t cap, const char *ids) {
    return tu_run(out, cap, "'%s' logits --model '%s' --out '%s' %s", tu_cli(), f->dir, f->out, ids);
}

/* The command must fail with status 2 and one line that contains every needle. */
static void expect_one_line_error(const fixture *f, const char *ids, const char *needle1, const char *needle2) {
    char out[4096];
    int rc = run_logits(f, out, sizeof out, ids);
    if (rc != 2 || tu_count_lines(out) != 1 || !strstr(out, needle1) || (needle2 && !strstr(out, needle2)))
        fail_msg("expected exit 2 and one line naming '%s'%s%s; got exit %d:\n%s", needle1, needle2 ? " and " : "",
                 needle2 ? needle2 : "", rc, out);
    assert_non_null(strstr(out, "tinyseek: "));
}

/* Read the safetensors file as (header JSON, data bytes). */
static cJSON *read_header(const fixture *f, unsigned char **data, size_t *data_len) {
    char *bytes;
    size_t len;
    assert_int_equal(ts_read_file(f->st_path, &bytes, &len), TS_OK);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | (unsigned char)bytes[i];
    char *hdr = strndup(bytes + 8, (size_t)n);
    cJSON *root = cJSON_Parse(hdr);
    assert_non_null(root);
    *data_len = len - 8 - (size_t)n;
    *data = malloc(*data_len);
    memcpy(*data, bytes + 8 + n, *data_len);
    free(hdr);
    free(bytes);
    return root;
}

/* Write a header (any JSON) and data back as a safetensors file. */
static void write_file(const fixture *f, cJSON *root, const unsigned char *data, size_t data_len) {
    char *hdr = cJSON_PrintUnformatted(root);
    size_t n = strlen(hdr);
    FILE *fp = fopen(f->st_path, "wb");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(((uint64_t)n >> (8 * i)) & 0xff);
    assert_int_equal(fwrite(len8, 1, 8, fp), 8);
    assert_int_equal(fwrite(hdr, 1, n, fp), n);
    assert_int_equal(fwrite(data, 1, data_len, fp), data_len);
    fclose(fp);
    free(hdr);
}

static void valid_checkpoint_works(void **state) {
    fixture *f = *state;
    char out[4096];
    assert_int_equal(run_logits(f, out, sizeof out, "1 2 3 4"), 0);
    assert_non_null(strstr(out, "(4, 20)"));
    assert_int_equal(access(f->out, F_OK), 0);
}

static void truncated_file(void **state) {
    fixture *f = *state;
    assert_int_equal(truncate(f->st_path, 5000), 0);
    expect_one_line_error(f, "1 2", "model.safetensors", NULL);
}

static void header_length_beyond_file(void **state) {
    fixture *f = *state;
    FILE *fp = fopen(f->st_path, "r+b");
    unsigned char huge[8] = {0, 0, 0, 0, 1, 0, 0, 0}; /* 2^32 bytes of header */
    assert_int_equal(fwrite(huge, 1, 8, fp), 8);
    fclose(fp);
    expect_one_line_error(f, "1 2", "model.safetensors", "header");
}

static void offsets_out_of_range(void **state) {
    fixture *f = *state;
    unsigned char *data;
    size_t len;
    cJSON *root = read_header(f, &data, &len);
    cJSON *t = cJSON_GetObjectItem(root, "model.norm.weight");
    cJSON *off = cJSON_GetObjectItem(t, "data_offsets");
    double begin = cJSON_GetArrayItem(off, 0)->valuedouble;
    cJSON_ReplaceItemInArray(off, 0, cJSON_CreateNumber(begin + 1e6));
    cJSON_ReplaceItemInArray(off, 1, cJSON_CreateNumber(begin + 1e6 + 64));
    write_file(f, root, data, len);
    cJSON_Delete(root);
    free(data);
    expect_one_line_error(f, "1 2", "model.safetensors", "model.norm.weight");
}

static void offsets_overlap(void **state) {
    fixture *f = *state;
    unsigned char *data;
    size_t len;
    cJSON *root = read_header(f, &data, &len);
    /* Point k_proj at q_proj's bytes: same size, so only the overlap is wrong. */
    cJSON *q = cJSON_GetObjectItem(root, "model.layers.0.self_attn.q_proj.weight");
    cJSON *k = cJSON_GetObjectItem(root, "model.layers.0.self_attn.k_proj.weight");
    cJSON_ReplaceItemInObject(k, "data_offsets", cJSON_Duplicate(cJSON_GetObjectItem(q, "data_offsets"), 1));
    write_file(f, root, data, len);
    cJSON_Delete(root);
    free(data);
    expect_one_line_error(f, "1 2", "model.safetensors", "overlap");
}

static void wrong_shape_for_config(void **state) {
    fixture *f = *state;
    char path[160], *text;
    snprintf(path, sizeof path, "%s/config.json", f->dir);
    assert_int_equal(ts_read_file(path, &text, NULL), TS_OK);
    cJSON *cfg = cJSON_Parse(text);
    free(text);
    cJSON_ReplaceItemInObject(cfg, "intermediate_size", cJSON_CreateNumber(32)); /* the file has 24 */
    char *out = cJSON_Print(cfg);
    assert_int_equal(ts_write_file_atomic(path, out, strlen(out)), TS_OK);
    free(out);
    cJSON_Delete(cfg);
    expect_one_line_error(f, "1 2", "mlp.gate_proj.weight", "32");
}

static void unknown_dtype(void **state) {
    fixture *f = *state;
    unsigned char *data;
    size_t len;
    cJSON *root = read_header(f, &data, &len);
    cJSON *t = cJSON_GetObjectItem(root, "model.norm.weight");
    cJSON_ReplaceItemInObject(t, "dtype", cJSON_CreateString("Q4"));
    write_file(f, root, data, len);
    cJSON_Delete(root);
    free(data);
    expect_one_line_error(f, "1 2", "model.safetensors", "Q4");
}

static void malformed_config(void **state) {
    fixture *f = *state;
    char path[160];
    snprintf(path, sizeof path, "%s/config.json", f->dir);
    const char *bad = "{\"model_type\": \"llama\", \"vocab_size\": \"twenty\"}";
    assert_int_equal(ts_write_file_atomic(path, bad, strlen(bad)), TS_OK);
    expect_one_line_error(f, "1 2", "config.json", "vocab_size");
}

static void missing_checkpoint(void **state) {
    fixture *f = *state;
    assert_int_equal(remove(f->st_path), 0);
    expect_one_line_error(f, "1 2", "model.safetensors", NULL);
}

static void token_out_of_range(void **state) {
    fixture *f = *state;
    expect_one_line_error(f, "1 20", "20", "vocabulary");
    expect_one_line_error(f, "1 -3", "-3", NULL);
    expect_one_line_error(f, "1 x", "'x'", NULL);
}

static void unknown_flag_and_missing_values(void **state) {
    fixture *f = *state;
    char out[4096];
    int rc = tu_run(out, sizeof out, "'%s' pretrain --no-such-flag 3", tu_cli());
    assert_int_equal(rc, 2);
    assert_int_equal(tu_count_lines(out), 1);
    assert_non_null(strstr(out, "--no-such-flag"));
    rc = tu_run(out, sizeof out, "'%s' generate --model '%s' --temperature hot 'x'", tu_cli(), f->dir);
    assert_int_equal(rc, 2);
    assert_int_equal(tu_count_lines(out), 1);
    assert_non_null(strstr(out, "--temperature"));
    rc = tu_run(out, sizeof out, "'%s' pretrain --steps 0", tu_cli());
    assert_int_equal(rc, 2);
    assert_int_equal(tu_count_lines(out), 1);
    rc = tu_run(out, sizeof out, "'%s' nonsense", tu_cli());
    assert_int_equal(rc, 2);
    assert_int_equal(tu_count_lines(out), 1);
}

static void info_reports_kv_cache(void **state) {
    fixture *f = *state;
    char out[4096];
    assert_int_equal(tu_run(out, sizeof out, "'%s' info '%s'", tu_cli(), f->dir), 0);
    /* 2 * kv heads * head_dim = 2*2*8 = 32 elements per token per layer */
    assert_non_null(strstr(out, "32 elements per token per layer"));
    assert_non_null(strstr(out, "attention MHA"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
int main(void) {
    const struct CMUnitTest tests[] = {
        T(valid_checkpoint_works), T(truncated_file),   T(header_length_beyond_file), T(offsets_out_of_range),
        T(offsets_overlap),        T(wrong_shape_for_config), T(unknown_dtype),        T(malformed_config),
        T(missing_checkpoint),     T(token_out_of_range), T(unknown_flag_and_missing_values), T(info_reports_kv_cache),
    };
    return cmocka_run_group_tests_name("ch02_cli", tests, NULL, NULL);
}
