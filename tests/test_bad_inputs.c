/* Bad input through the command line, as a user (or an attacker) would give it:
 * malformed configs, checkpoints, tokenizers and training states, FIFOs and
 * folders where files belong, non-finite numbers, flags and token ids out of
 * range, text with newlines in it. Every case must end with exit status 2 and
 * exactly one line, "tinyseek: ...", naming the file or the field; never a
 * hang (each command runs under `timeout`), a crash or a silent default.
 * (test_ch01_cli.c and test_ch02_cli.c hold the earlier cases; none is repeated.) */
#include "testutil.h"

#include <cJSON.h>
#include <sys/stat.h>

#include "io/fileio.h"
#include "model/checkpoint.h"

static char out[1 << 16];
static char base[64];    /* fixture folder: data, tokenizer, configs, a checkpoint, an unfinished run */
static int cases;        /* bad inputs checked, reported at the end */

/* The unfinished run's own flags: a resume must repeat them (they are fingerprinted). */
#define RUN_FLAGS "--steps 3 --warmup 1 --batch 2 --seq 16 --eval-every 0 --quiet --threads 1"

/* Run a command line (after the binary) under a 60-second timeout (TS_BAD_INPUT_TIMEOUT); output in out. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
    char args[3500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *limit = getenv("TS_BAD_INPUT_TIMEOUT"); /* seconds; a hang shows as exit 124 */
    return tu_run(out, sizeof out, "timeout %s '%s' %s", limit ? limit : "60", tu_cli(), args);
}

/* Exit 2 (124 would be a hang), one line starting "tinyseek: ", containing each needle. */
static void expect_bad(int status, const char *needle1, const char *needle2) {
    cases++;
    if (status != 2) fail_msg("expected exit status 2, got %d%s; output:\n%s", status, status == 124 ? " (hang)" : "", out);
    if (tu_count_lines(out) != 1) fail_msg("expected one line, got:\n%s", out);
    if (strncmp(out, "tinyseek: ", 10) != 0) fail_msg("expected 'tinyseek: ...', got:\n%s", out);
    if (needle1 && !strstr(out, needle1)) fail_msg("'%s' should mention '%s'", out, needle1);
    if (needle2 && !strstr(out, needle2)) fail_msg("'%s' should mention '%s'", out, needle2);
}

/* Path of NAME in the fixture folder (the last 32 results stay valid). */
static const char *at(const char *name) {
    static char buf[32][256];
    static int next;
    char *p = buf[next++ & 31];
    snprintf(p, 256, "%s/%s", base, name);
    return p;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (tu_run(out, sizeof out, "%s", cmd) != 0) fail_msg("setup command failed: %s\n%s", cmd, out);
}

static void write_text(const char *path, const char *text) {
    assert_int_equal(ts_write_file_atomic(path, text, strlen(text)), TS_OK);
}

static const char *tiny_config =
    "{\"model_type\": \"llama\", \"vocab_size\": 300, \"hidden_size\": 16, \"num_hidden_layers\": 1,"
    " \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 8, \"intermediate_size\": 24,"
    " \"max_position_embeddings\": 32, \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0}";

static const char *moe_config =
    "{\"model_type\": \"deepseek_v3\", \"vocab_size\": 300, \"hidden_size\": 16, \"num_hidden_layers\": 2,"
    " \"num_attention_heads\": 2, \"intermediate_size\": 24, \"max_position_embeddings\": 32, \"rms_norm_eps\": 1e-6,"
    " \"q_lora_rank\": 8, \"kv_lora_rank\": 8, \"qk_nope_head_dim\": 4, \"qk_rope_head_dim\": 4, \"v_head_dim\": 4,"
    " \"n_routed_experts\": 4, \"n_shared_experts\": 1, \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 8,"
    " \"first_k_dense_replace\": 1, \"n_group\": 2, \"topk_group\": 1, \"routed_scaling_factor\": 2.5,"
    " \"scoring_func\": \"sigmoid\", \"norm_topk_prob\": true, \"topk_method\": \"noaux_tc\", \"aux_loss_alpha\": 0.001,"
    " \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": 8,"
    " \"beta_fast\": 32, \"beta_slow\": 1, \"mscale\": 1, \"mscale_all_dim\": 1}}";

static int setup(void **state) {
    (void)state;
    tu_tmpdir(base);
    sh("'%s' data --out %s --pretrain 200 --pretrain-test 20 --sft 20 --sft-test 10 --rl 20 --test 20 --seed 1 --digits 2", tu_cli(), at("data"));
    sh("'%s' tokenizer train --input %s --vocab-size 300 --out %s", tu_cli(), at("data/pretrain_train.txt"),
       at("tokenizer.json"));
    write_text(at("tiny.json"), tiny_config);
    write_text(at("moe.json"), moe_config);
    ts_config c;
    assert_int_equal(ts_config_load(&c, at("tiny.json")), TS_OK);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    ts_model_init_weights(&m, 1);
    assert_int_equal(ts_checkpoint_save(&m, at("ckpt"), at("tokenizer.json")), TS_OK);
    ts_model_free(&m);
    /* An unfinished run, so there is a training state to break. */
    sh("'%s' pretrain --config %s --tokenizer %s --data %s --out %s --stop-after 1 " RUN_FLAGS, tu_cli(), at("tiny.json"),
       at("tokenizer.json"), at("data"), at("run"));
    mkdir(at("a-folder"), 0700);
    if (mkfifo(at("fifo.json"), 0600) != 0) fail_msg("mkfifo failed");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    printf("[ INFO     ] %d bad inputs checked: exit 2, one line, naming the file or field\n", cases);
    tu_rmdir(base);
    return 0;
}

/* A fresh copy of the checkpoint (or of the run) as NAME; returns its path. */
static const char *copy_of(const char *what, const char *name) {
    const char *dst = at(name);
    sh("rm -rf '%s' && cp -r '%s' '%s'", dst, at(what), dst);
    return dst;
}

/* Resume the run in DIR with the run's own flags. */
static int resume(const char *dir) {
    return run("pretrain --resume --out '%s' --tokenizer '%s' --data '%s' " RUN_FLAGS, dir, at("tokenizer.json"),
               at("data"));
}

/* ---- config.json ---------------------------------------------------------------- */

/* The tiny config with one field replaced by raw JSON text, written as NAME. */
static const char *config_with(const char *base_json, const char *name, const char *field, const char *json_value) {
    cJSON *root = cJSON_Parse(base_json);
    cJSON *v = cJSON_Parse(json_value);
    assert_non_null(v);
    const char *dot = strchr(field, '.');
    if (dot) { /* one level down: "rope_scaling.factor" */
        char outer[64];
        snprintf(outer, sizeof outer, "%.*s", (int)(dot - field), field);
        cJSON *o = cJSON_GetObjectItem(root, outer);
        cJSON_DeleteItemFromObject(o, dot + 1);
        cJSON_AddItemToObject(o, dot + 1, v);
    } else {
        cJSON_DeleteItemFromObject(root, field);
        cJSON_AddItemToObject(root, field, v);
    }
    char *text = cJSON_PrintUnformatted(root);
    /* cJSON prints 1e39 as 1e+39 and a huge string as it is: what a user's file would hold. */
    const char *path = at(name);
    write_text(path, text);
    free(text);
    cJSON_Delete(root);
    return path;
}

static void info_refuses(const char *path, const char *needle1, const char *needle2) {
    expect_bad(run("info '%s'", path), needle1, needle2);
}

static void non_finite_config_numbers(void **state) {
    (void)state;
    /* 1e39 is a finite double but +inf as a float; cJSON would save inf as null. */
    static const char *const llama_fields[] = {"rms_norm_eps", "rope_theta", "initializer_range"};
    for (int i = 0; i < 3; i++)
        info_refuses(config_with(tiny_config, "c.json", llama_fields[i], "1e39"), llama_fields[i], "c.json");
    static const char *const moe_fields[] = {"routed_scaling_factor", "aux_loss_alpha", "rope_scaling.factor",
                                             "rope_scaling.beta_fast", "rope_scaling.beta_slow", "rope_scaling.mscale"};
    for (int i = 0; i < 6; i++) {
        const char *f = strchr(moe_fields[i], '.') ? strchr(moe_fields[i], '.') + 1 : moe_fields[i];
        info_refuses(config_with(moe_config, "m.json", moe_fields[i], "-1e39"), f, "m.json");
    }
}

static void out_of_range_config_numbers(void **state) {
    (void)state;
    info_refuses(config_with(tiny_config, "c.json", "rms_norm_eps", "0"), "rms_norm_eps", NULL);
    info_refuses(config_with(tiny_config, "c.json", "initializer_range", "-0.5"), "initializer_range", NULL);
    info_refuses(config_with(moe_config, "m.json", "rope_scaling.beta_slow", "0"), "beta_slow", NULL);
    info_refuses(config_with(moe_config, "m.json", "rope_scaling.beta_fast", "0.5"), "beta_fast", NULL);
    info_refuses(config_with(moe_config, "m.json", "rope_scaling.mscale", "-3"), "mscale", NULL);
    info_refuses(config_with(tiny_config, "c.json", "head_dim", "7"), "head_dim", NULL);
}

/* config_with() twice: two fields replaced. */
static const char *config_with2(const char *base_json, const char *name, const char *f1, const char *v1,
                                const char *f2, const char *v2) {
    char *text;
    assert_int_equal(ts_read_file(config_with(base_json, name, f1, v1), &text, NULL), TS_OK);
    const char *path = config_with(text, name, f2, v2);
    free(text);
    return path;
}

static void sizes_no_machine_holds(void **state) {
    (void)state;
    /* Refused at once from the config (no registration of 2e9 layers, no int overflow). */
    info_refuses(config_with(tiny_config, "c.json", "num_hidden_layers", "2000000000"), "num_hidden_layers", NULL);
    info_refuses(config_with2(tiny_config, "c.json", "num_attention_heads", "65536", "head_dim", "65536"),
                 "num_attention_heads x head_dim", "4294967296");
    info_refuses(config_with2(tiny_config, "c.json", "vocab_size", "2000000000", "hidden_size", "1000000"),
                 "vocab_size x hidden_size", "could ever be allocated");
}

static void untrusted_config_strings_stay_one_line(void **state) {
    (void)state;
    info_refuses(config_with(tiny_config, "c.json", "model_type", "\"lla\\nma\\r\\u0007\""), "model_type", "lla\\nma\\r\\x07");
    info_refuses(config_with(moe_config, "m.json", "scoring_func", "\"soft\\nmax\""), "scoring_func", "soft\\nmax");
    info_refuses(config_with(moe_config, "m.json", "topk_method", "\"best\\nguess\""), "topk_method", "best\\nguess");
    /* A 20000-character model_type: named, cut, still one line. */
    char *big = malloc(20010);
    big[0] = '"';
    memset(big + 1, 'x', 20000);
    strcpy(big + 20001, "\"");
    info_refuses(config_with(tiny_config, "c.json", "model_type", big), "model_type", "...");
    assert_true(strlen(out) < 1000);
    free(big);
}

static void config_structure(void **state) {
    (void)state;
    write_text(at("c.json"), "[1, 2, 3]");
    info_refuses(at("c.json"), "c.json", "not a JSON object");
    info_refuses(config_with(tiny_config, "c.json", "hidden_size", "-16"), "hidden_size", NULL);
    info_refuses(config_with(tiny_config, "c.json", "rope_scaling", "{\"type\": \"yarn\", \"factor\": \"big\"}"),
                 "factor", "rope_scaling");
}

/* ---- not a regular file: refused before it is opened (a FIFO would block) ---------- */

static void fifos_and_folders(void **state) {
    (void)state;
    const char *fifo = at("fifo.json"), *folder = at("a-folder");
    info_refuses(fifo, "fifo", "not a regular file");
    info_refuses(at("a-folder/config.json"), "config.json", NULL); /* missing, inside a folder */
    /* a folder given as config.json (info appends /config.json to a non-.json path) */
    mkdir(at("dir.json"), 0700);
    info_refuses(at("dir.json"), "dir.json", "is a folder");
    expect_bad(run("tokenizer encode --tokenizer '%s' --text hi", fifo), "fifo", "not a regular file");
    expect_bad(run("tokenizer encode --tokenizer '%s' --text hi", folder), "a-folder", "is a folder");
    expect_bad(run("tokenizer encode --tokenizer '%s' --input '%s'", at("tokenizer.json"), fifo), "fifo",
               "not a regular file");
    expect_bad(run("tokenizer encode --tokenizer '%s' --input '%s'", at("tokenizer.json"), folder), "a-folder",
               "is a folder");
    expect_bad(run("tokenizer train --input '%s' --vocab-size 300 --out '%s'", fifo, at("t.json")), "fifo", NULL);
    expect_bad(run("pretrain --config '%s' --tokenizer '%s' --text '%s' --out '%s' --steps 2 --warmup 1 --seq 16 --batch 2 --quiet",
                   at("tiny.json"), at("tokenizer.json"), fifo, at("out-fifo")),
               "fifo", "not a regular file");
    expect_bad(run("pretrain --config '%s' --tokenizer '%s' --data '%s' --out '%s' --steps 2 --warmup 1 --seq 16 --batch 2 --quiet", fifo,
                   at("tokenizer.json"), at("data"), at("out-fifo2")),
               "fifo", NULL);
    /* model.safetensors and config.json as FIFOs and folders, inside a checkpoint. */
    const char *ck = copy_of("ckpt", "ck-fifo");
    sh("rm '%s/model.safetensors' && mkfifo '%s/model.safetensors'", ck, ck);
    expect_bad(run("logits --model '%s' --out '%s' 1 2", ck, at("l.npy")), "model.safetensors", "not a regular file");
    sh("rm '%s/model.safetensors' && mkdir '%s/model.safetensors'", ck, ck);
    expect_bad(run("logits --model '%s' --out '%s' 1 2", ck, at("l.npy")), "model.safetensors", "is a folder");
    sh("rm '%s/config.json' && mkfifo '%s/config.json'", ck, ck);
    expect_bad(run("logits --model '%s' --out '%s' 1 2", ck, at("l.npy")), "config.json", "not a regular file");
    /* the training state as a FIFO and as a folder */
    const char *r = copy_of("run", "run-fifo");
    sh("rm '%s/training_state.safetensors' && mkfifo '%s/training_state.safetensors'", r, r);
    expect_bad(resume(r), "training_state.safetensors", NULL);
    sh("rm '%s/training_state.safetensors' && mkdir '%s/training_state.safetensors'", r, r);
    expect_bad(resume(r), "training_state.safetensors", NULL);
}

/* ---- model.safetensors -------------------------------------------------------------- */

/* Header JSON and data section of a safetensors file. */
static cJSON *read_st(const char *path, unsigned char **data, size_t *len) {
    char *bytes;
    size_t n;
    assert_int_equal(ts_read_file(path, &bytes, &n), TS_OK);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = (h << 8) | (unsigned char)bytes[i];
    char *hdr = strndup(bytes + 8, (size_t)h);
    cJSON *root = cJSON_Parse(hdr);
    assert_non_null(root);
    *len = n - 8 - (size_t)h;
    *data = malloc(*len + 1);
    memcpy(*data, bytes + 8 + h, *len);
    free(hdr);
    free(bytes);
    return root;
}

static void write_st(const char *path, cJSON *root, const unsigned char *data, size_t len) {
    char *hdr = cJSON_PrintUnformatted(root);
    size_t n = strlen(hdr);
    FILE *f = fopen(path, "wb");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(((uint64_t)n >> (8 * i)) & 0xff);
    assert_int_equal(fwrite(len8, 1, 8, f), 8);
    assert_int_equal(fwrite(hdr, 1, n, f), n);
    if (len) assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    free(hdr);
}

/* Put the float bits @p bits at element @p index of tensor @p name. */
static void poke(const char *path, const char *name, size_t index, uint32_t bits) {
    unsigned char *data;
    size_t len;
    cJSON *root = read_st(path, &data, &len);
    cJSON *off = cJSON_GetObjectItem(cJSON_GetObjectItem(root, name), "data_offsets");
    size_t at_byte = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble + 4 * index;
    assert_true(at_byte + 4 <= len);
    memcpy(data + at_byte, &bits, 4);
    write_st(path, root, data, len);
    cJSON_Delete(root);
    free(data);
}

static int logits_of(const char *ck) { return run("logits --model '%s' --out '%s' 1 2 3", ck, at("l.npy")); }

static void non_finite_weights(void **state) {
    (void)state;
    const char *ck = copy_of("ckpt", "ck-nan");
    poke(at("ck-nan/model.safetensors"), "model.layers.0.mlp.up_proj.weight", 37, 0x7fc00000u);
    expect_bad(logits_of(ck), "model.layers.0.mlp.up_proj.weight", "NaN at index 37 (element [2, 5])");
    ck = copy_of("ckpt", "ck-inf");
    poke(at("ck-inf/model.safetensors"), "model.norm.weight", 3, 0xff800000u);
    expect_bad(logits_of(ck), "model.norm.weight", "-inf at index 3");
    assert_int_equal(access(at("l.npy"), F_OK), -1); /* nothing written */
}

/* Edit the checkpoint's header with @p edit, then expect logits to fail naming the needles. */
static void header_case(void (*edit)(cJSON *root, unsigned char **data, size_t *len), const char *needle1,
                        const char *needle2) {
    const char *ck = copy_of("ckpt", "ck-hdr");
    unsigned char *data;
    size_t len;
    cJSON *root = read_st(at("ck-hdr/model.safetensors"), &data, &len);
    edit(root, &data, &len);
    write_st(at("ck-hdr/model.safetensors"), root, data, len);
    cJSON_Delete(root);
    free(data);
    expect_bad(logits_of(ck), needle1, needle2);
}

static void add_empty_name(cJSON *r, unsigned char **d, size_t *n) {
    (void)d, (void)n;
    cJSON *t = cJSON_Duplicate(cJSON_GetObjectItem(r, "model.norm.weight"), 1);
    cJSON_DeleteItemFromObject(r, "model.norm.weight");
    cJSON_AddItemToObject(r, "", t);
}
static void add_newline_name(cJSON *r, unsigned char **d, size_t *n) {
    /* one more tensor, of one float, called "extra\nweight<ESC>[31m" */
    *d = realloc(*d, *n + 4);
    memset(*d + *n, 0, 4);
    cJSON *t = cJSON_AddObjectToObject(r, "extra\nweight\x1b[31m");
    cJSON_AddStringToObject(t, "dtype", "F32");
    cJSON *shape = cJSON_AddArrayToObject(t, "shape");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(1));
    cJSON *off = cJSON_AddArrayToObject(t, "data_offsets");
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)*n));
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)*n + 4));
    *n += 4;
}
static void negative_dimension(cJSON *r, unsigned char **d, size_t *n) {
    (void)d, (void)n;
    cJSON *s = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "model.norm.weight"), "shape");
    cJSON_ReplaceItemInArray(s, 0, cJSON_CreateNumber(-16));
}
static void trailing_bytes(cJSON *r, unsigned char **d, size_t *n) {
    (void)r;
    *d = realloc(*d, *n + 12);
    memset(*d + *n, 0, 12);
    *n += 12;
}
static void metadata_not_strings(cJSON *r, unsigned char **d, size_t *n) {
    (void)d, (void)n;
    cJSON_DeleteItemFromObject(r, "__metadata__");
    cJSON *m = cJSON_AddObjectToObject(r, "__metadata__");
    cJSON_AddNumberToObject(m, "step", 3);
}
static void header_is_array(cJSON *r, unsigned char **d, size_t *n) {
    (void)d, (void)n;
    while (r->child) cJSON_Delete(cJSON_DetachItemViaPointer(r, r->child));
    r->type = cJSON_Array;
    cJSON_AddItemToArray(r, cJSON_CreateNumber(1));
}

static void malformed_safetensors(void **state) {
    (void)state;
    header_case(add_empty_name, "model.safetensors", "empty name");
    header_case(add_newline_name, "extra\\nweight\\x1b[31m", "not used by the config");
    header_case(negative_dimension, "model.norm.weight", "-16");
    header_case(trailing_bytes, "model.safetensors", "belong to no tensor");
    header_case(metadata_not_strings, "model.safetensors", "__metadata__");
    header_case(header_is_array, "model.safetensors", "JSON object");
    const char *ck = copy_of("ckpt", "ck-empty");
    sh("truncate -s 0 '%s/model.safetensors'", ck);
    expect_bad(logits_of(ck), "model.safetensors", "shorter than the 8-byte");
}

/* ---- tokenizer.json ----------------------------------------------------------------------- */

/* The fixture's tokenizer with @p edit applied, written as bad-tok.json; then encode must fail. */
static void tokenizer_case(void (*edit)(cJSON *root), const char *needle1, const char *needle2) {
    char *text;
    assert_int_equal(ts_read_file(at("tokenizer.json"), &text, NULL), TS_OK);
    cJSON *root = cJSON_Parse(text);
    free(text);
    edit(root);
    char *o = cJSON_PrintUnformatted(root);
    write_text(at("bad-tok.json"), o);
    free(o);
    cJSON_Delete(root);
    expect_bad(run("tokenizer encode --tokenizer '%s' --text 'What is 1+2?'", at("bad-tok.json")), needle1, needle2);
}

static cJSON *model_of(cJSON *root) { return cJSON_GetObjectItem(root, "model"); }
static void merge_unknown(cJSON *root) {
    cJSON *merges = cJSON_GetObjectItem(model_of(root), "merges");
    cJSON_ReplaceItemInArray(merges, 0, cJSON_CreateString("zz\nq xx"));
}
static void duplicate_id(cJSON *root) {
    cJSON *vocab = cJSON_GetObjectItem(model_of(root), "vocab");
    cJSON_SetNumberValue(cJSON_GetArrayItem(vocab, 1), cJSON_GetArrayItem(vocab, 0)->valuedouble);
}
static void missing_byte(cJSON *root) { /* the token "A" respelled "AAAA": byte 0x41 has no token */
    cJSON *vocab = cJSON_GetObjectItem(model_of(root), "vocab");
    cJSON *a = cJSON_DetachItemFromObject(vocab, "A");
    cJSON_AddItemToObject(vocab, "AAAA", a);
}
static void added_token_not_object(cJSON *root) {
    cJSON *added = cJSON_GetObjectItem(root, "added_tokens");
    cJSON_ReplaceItemInArray(added, 0, cJSON_CreateString("<|evil|>\n"));
}
static void id_not_integer(cJSON *root) {
    cJSON *vocab = cJSON_GetObjectItem(model_of(root), "vocab");
    cJSON_SetNumberValue(cJSON_GetArrayItem(vocab, 3), 1e300);
}

static void malformed_tokenizers(void **state) {
    (void)state;
    tokenizer_case(merge_unknown, "bad-tok.json", "model.merges[0]");
    tokenizer_case(duplicate_id, "bad-tok.json", "used twice");
    tokenizer_case(missing_byte, "bad-tok.json", "byte token for 0x41");
    tokenizer_case(added_token_not_object, "bad-tok.json", "added_tokens[0]");
    tokenizer_case(id_not_integer, "bad-tok.json", "model.vocab");
}

/* ---- training_state.safetensors ------------------------------------------------------------ */



static void set_meta(const char *path, const char *key, const char *value) {
    unsigned char *data;
    size_t len;
    cJSON *root = read_st(path, &data, &len);
    cJSON *m = cJSON_GetObjectItem(root, "__metadata__");
    cJSON_DeleteItemFromObject(m, key);
    cJSON_AddStringToObject(m, key, value);
    write_st(path, root, data, len);
    cJSON_Delete(root);
    free(data);
}

static void malformed_training_states(void **state) {
    (void)state;
    /* The intact run resumes: what fails below fails for the corruption alone. */
    const char *r = copy_of("run", "run-ok");
    assert_int_equal(resume(r), 0);
    r = copy_of("run", "run-nan");
    poke(at("run-nan/training_state.safetensors"), "m.model.norm.weight", 5, 0x7f800000u);
    expect_bad(resume(r), "m.model.norm.weight", "+inf at index 5");
    r = copy_of("run", "run-neg");
    poke(at("run-neg/training_state.safetensors"), "v.model.embed_tokens.weight", 0, 0xbf800000u); /* -1.0 */
    expect_bad(resume(r), "v.model.embed_tokens.weight", "never negative");
    r = copy_of("run", "run-meta");
    set_meta(at("run-meta/training_state.safetensors"), "format", "tinyseek\nsomething-else");
    expect_bad(resume(r), "training_state.safetensors", "tinyseek\\nsomething-else");
    r = copy_of("run", "run-rng");
    set_meta(at("run-rng/training_state.safetensors"), "rng.0", "1,2,3,\r4");
    expect_bad(resume(r), "rng.0", "\\r");
}

/* ---- flags and token ids -------------------------------------------------------------------- */

static void bad_flags_and_tokens(void **state) {
    (void)state;
    expect_bad(run("pretrain --lr inf"), "--lr", "finite");
    expect_bad(run("pretrain --lr nan"), "--lr", NULL);
    expect_bad(run("eval --yarn-factor 1e39"), "--yarn-factor", NULL);
    expect_bad(run("pretrain --steps $'4\\n2'"), "--steps", "4\\n2");
    expect_bad(run("pretrain $'--no\\nsuch'"), "--no\\nsuch", NULL);
    expect_bad(run("logits --model '%s' --out '%s' 1 2147483648", at("ckpt"), at("l.npy")), "2147483648", NULL);
    expect_bad(run("logits --model '%s' --out '%s' 1 300", at("ckpt"), at("l.npy")), "300", NULL);
    expect_bad(run("tokenizer decode --tokenizer '%s' 5 -2147483649", at("tokenizer.json")), "-2147483649", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(non_finite_config_numbers),
        cmocka_unit_test(out_of_range_config_numbers),
        cmocka_unit_test(sizes_no_machine_holds),
        cmocka_unit_test(untrusted_config_strings_stay_one_line),
        cmocka_unit_test(config_structure),
        cmocka_unit_test(fifos_and_folders),
        cmocka_unit_test(non_finite_weights),
        cmocka_unit_test(malformed_safetensors),
        cmocka_unit_test(malformed_tokenizers),
        cmocka_unit_test(malformed_training_states),
        cmocka_unit_test(bad_flags_and_tokens),
    };
    return cmocka_run_group_tests_name("bad_inputs", tests, setup, teardown);
}
