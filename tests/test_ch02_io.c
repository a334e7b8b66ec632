/* Chapter 2 I/O beside the checkpoint: training state (exact resume), CSV
 * metrics (header, rows, append, truncate), the progress line, .npy output. */
#include "testutil.h"

#include <dirent.h>

#include "core/arena.h"
#include "io/fileio.h"
#include "io/metrics.h"
#include "io/npy.h"
#include "io/progress.h"
#include "io/safetensors.h"
#include "io/trainstate.h"


static char *slurp(const char *path, size_t *len) {
    char *text;
    assert_int_equal(ts_read_file(path, &text, len), TS_OK);
    return text;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void assert_file_text(const char *path, const char *want) {
    size_t len;
    char *text = slurp(path, &len);
    if (strcmp(text, want) != 0) fail_msg("%s holds\n%s\nexpected\n%s", path, text, want);
    free(text);
}

static void assert_error_mentions(const char *needle) {
    if (!strstr(ts_last_error(), needle)) fail_msg("error '%s' does not mention '%s'", ts_last_error(), needle);
}

/* ---- training state ---------------------------------------------------------- */

/** Registry with moments: embed (5,4), norm (4), layer (3,2,2). */
static void moment_params(ts_params *p, int variant) {
    ts_params_init(p);
    int s1[2] = {5, 4}, s2[1] = {4}, s3[3] = {3, 2, 2}, s3b[3] = {3, 2, 3};
    assert_int_equal(ts_params_add(p, "model.embed_tokens.weight", 2, s1, 0), 0);
    assert_int_equal(ts_params_add(p, "model.norm.weight", 1, s2, 1), 1);
    assert_int_equal(ts_params_add(p, "model.layers.0.w", 3, variant == 1 ? s3b : s3, 0), 2);
    if (variant == 2) assert_int_equal(ts_params_add(p, "lm_head.weight", 2, s1, 0), 3);
    assert_int_equal(ts_params_alloc(p, 1), TS_OK);
}

static void sample_meta(ts_trainstate_meta *m) {
    memset(m, 0, sizeof *m);
    m->step = 1234;
    m->data_pos = 98765;
    m->fingerprint = 0xfedcba9876543210ULL;
    m->n_rng = 2;
    ts_rng_seed(&m->rng[0], 42, TS_STREAM_DATA);
    for (int i = 0; i < 17; i++) (void)ts_rng_u64(&m->rng[0]);
    m->rng[1].s[0] = UINT64_MAX;
    m->rng[1].s[1] = 0;
    m->rng[1].s[2] = 1;
    m->rng[1].s[3] = 0x8000000000000000ULL;
}

static void trainstate_round_trip_is_exact(void **state) {
    (void)state;
    ts_params p, q;
    moment_params(&p, 0);
    moment_params(&q, 0);
    tu_fill(p.m, p.numel, 0.1f, 1);
    tu_fill(p.v, p.numel, 1e-6f, 2);
    for (size_t i = 0; i < p.numel; i++) p.v[i] = fabsf(p.v[i]); /* a second moment is never negative */
    p.m[0] = -0.0f;
    p.v[1] = 1e-42f; /* subnormal */
    ts_trainstate_meta meta, back;
    sample_meta(&meta);
    const char *path = tu_path(TS_TRAINSTATE_FILE);
    assert_int_equal(ts_trainstate_save(path, &p, &meta), TS_OK);
    memset(&back, 0xab, sizeof back);
    assert_int_equal(ts_trainstate_load(path, &q, &back, meta.fingerprint), TS_OK);
    assert_int_equal(back.step, 1234);
    assert_int_equal(back.data_pos, 98765);
    assert_true(back.fingerprint == meta.fingerprint);
    assert_int_equal(back.n_rng, 2);
    for (int k = 0; k < 2; k++)
        for (int w = 0; w < 4; w++) assert_true(back.rng[k].s[w] == meta.rng[k].s[w]);
    /* The restored generator continues the same sequence. */
    for (int i = 0; i < 10; i++) assert_true(ts_rng_u64(&back.rng[0]) == ts_rng_u64(&meta.rng[0]));
    for (int t = 0; t < p.count; t++) {
        size_t off = p.params[t].offset, n = p.params[t].numel * sizeof(float);
        assert_memory_equal(q.m + off, p.m + off, n);
        assert_memory_equal(q.v + off, p.v + off, n);
    }
    /* Expected fingerprint 0 means "do not check". */
    assert_int_equal(ts_trainstate_load(path, &q, &back, 0), TS_OK);

    /* It is a plain safetensors file with named moments. */
    ts_safetensors st;
    assert_int_equal(ts_safetensors_open(&st, path), TS_OK);
    assert_int_equal(st.count, 6);
    assert_non_null(ts_safetensors_find(&st, "m.model.norm.weight"));
    assert_non_null(ts_safetensors_find(&st, "v.model.layers.0.w"));
    assert_string_equal(ts_safetensors_meta(&st, "step"), "1234");
    assert_string_equal(ts_safetensors_meta(&st, "fingerprint"), "18364758544493064720");
    assert_string_equal(ts_safetensors_meta(&st, "rng.1"), "18446744073709551615,0,1,9223372036854775808");
    ts_safetensors_close(&st);

    /* No RNG streams at all is fine too. */
    meta.n_rng = 0;
    assert_int_equal(ts_trainstate_save(path, &p, &meta), TS_OK);
    assert_int_equal(ts_trainstate_load(path, &q, &back, 0), TS_OK);
    assert_int_equal(back.n_rng, 0);
    ts_params_free(&p);
    ts_params_free(&q);
}

/** Save a state with @p meta_json as its metadata (hand-made, possibly broken). */
static void save_with_metadata(const ts_params *p, const char *path, const char *meta_json) {
    ts_st_entry e[16];
    char names[16][TS_NAME_MAX + 2];
    int n = 0;
    for (int i = 0; i < p->count; i++)
        for (int which = 0; which < 2; which++, n++) {
            snprintf(names[n], sizeof names[n], "%c.%s", which ? 'v' : 'm', p->params[i].name);
            e[n] = (ts_st_entry){names[n], p->params[i].ndim, p->params[i].shape,
                                 (which ? p->v : p->m) + p->params[i].offset};
        }
    assert_int_equal(ts_safetensors_write(path, e, n, meta_json), TS_OK);
}

static void trainstate_errors_name_the_problem(void **state) {
    (void)state;
    ts_params p, q, other_shape, bigger;
    moment_params(&p, 0);
    moment_params(&q, 0);
    moment_params(&other_shape, 1);
    moment_params(&bigger, 2);
    tu_fill(p.m, p.numel, 0.1f, 3);
    ts_trainstate_meta meta, back;
    sample_meta(&meta);
    const char *path = tu_path("state.safetensors");
    assert_int_equal(ts_trainstate_save(path, &p, &meta), TS_OK);

    /* Fingerprint of another run config. */
    for (size_t i = 0; i < q.numel; i++) q.m[i] = 7.0f;
    assert_int_equal(ts_trainstate_load(path, &q, &back, 0x1234), TS_ERR_FORMAT);
    assert_error_mentions("fingerprint");
    assert_error_mentions("state.safetensors");
    for (size_t i = 0; i < q.numel; i++) assert_true(q.m[i] == 7.0f); /* untouched */

    /* Shape mismatch names the moment, the parameter and both shapes. */
    assert_int_equal(ts_trainstate_load(path, &other_shape, &back, 0), TS_ERR_FORMAT);
    assert_error_mentions("tensor 'm.model.layers.0.w' has shape [3, 2, 2], the model's 'model.layers.0.w' is [3, 2, 3]");

    /* Moments missing for a parameter. */
    assert_int_equal(ts_trainstate_load(path, &bigger, &back, 0), TS_ERR_FORMAT);
    assert_error_mentions("'m.lm_head.weight' (AdamW first moment of 'lm_head.weight') is missing");

    /* Moments of a parameter the model does not have. */
    assert_int_equal(ts_trainstate_save(path, &bigger, &meta), TS_OK);
    assert_int_equal(ts_trainstate_load(path, &q, &back, 0), TS_ERR_FORMAT);
    assert_error_mentions("'m.lm_head.weight' does not belong to this model");

    /* Only the first moment present. */
    {
        ts_st_entry e[3];
        char names[3][TS_NAME_MAX + 2];
        for (int i = 0; i < 3; i++) {
            snprintf(names[i], sizeof names[i], "m.%s", p.params[i].name);
            e[i] = (ts_st_entry){names[i], p.params[i].ndim, p.params[i].shape, p.m + p.params[i].offset};
        }
        assert_int_equal(ts_safetensors_write(path, e, 3,
                                              "{\"format\":\"tinyseek-training-state\",\"version\":\"1\",\"step\":\"3\","
                                              "\"data_pos\":\"0\",\"fingerprint\":\"0\",\"rng_streams\":\"0\"}"),
                         TS_OK);
        assert_int_equal(ts_trainstate_load(path, &q, &back, 0), TS_ERR_FORMAT);
        assert_error_mentions("'v.model.embed_tokens.weight' (AdamW second moment");
    }

    /* Metadata missing or malformed. */
    const char *good = "\"format\":\"tinyseek-training-state\",\"version\":\"1\",\"data_pos\":\"5\","
                       "\"fingerprint\":\"77\"";
    struct {
        const char *meta, *needle;
    } cases[] = {
        {NULL, "field 'format' is missing"},
        {"{\"format\":\"pt\"}", "field 'format' is 'pt'"},
        {"{\"format\":\"tinyseek-training-state\",\"version\":\"9\"}", "version '9' is not supported"},
        {"{%s}", "field 'step' is missing"},
        {"{%s,\"step\":\"-3\",\"rng_streams\":\"0\"}", "field 'step' is '-3'"},
        {"{%s,\"step\":\"12abc\",\"rng_streams\":\"0\"}", "field 'step' is '12abc'"},
        {"{%s,\"step\":\"99999999999999999999999\",\"rng_streams\":\"0\"}", "field 'step'"},
        {"{%s,\"step\":\"3\"}", "field 'rng_streams' is missing"},
        {"{%s,\"step\":\"3\",\"rng_streams\":\"5\"}", "field 'rng_streams' is '5'"},
        {"{%s,\"step\":\"3\",\"rng_streams\":\"1\"}", "field 'rng.0' is missing"},
        {"{%s,\"step\":\"3\",\"rng_streams\":\"1\",\"rng.0\":\"1,2,3\"}", "'rng.0' is '1,2,3', expected four"},
        {"{%s,\"step\":\"3\",\"rng_streams\":\"1\",\"rng.0\":\"1,2,3,4,5\"}", "expected four decimal words"},
        {"{%s,\"step\":\"3\",\"rng_streams\":\"1\",\"rng.0\":\"1,,3,4\"}", "expected four decimal words"},
        {"{%s,\"step\":\"3\",\"rng_streams\":\"1\",\"rng.0\":\"0,0,0,0\"}", "all-zero RNG state"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char meta_json[512];
        if (cases[i].meta) snprintf(meta_json, sizeof meta_json, cases[i].meta, good);
        save_with_metadata(&p, path, cases[i].meta ? meta_json : NULL);
        memset(&back, 0x5a, sizeof back);
        ts_trainstate_meta before = back;
        assert_int_equal(ts_trainstate_load(path, &q, &back, 0), TS_ERR_FORMAT);
        assert_error_mentions(cases[i].needle);
        assert_memory_equal(&back, &before, sizeof back);
    }
    /* The hand-made metadata is right when complete. */
    char meta_json[512];
    snprintf(meta_json, sizeof meta_json, "{%s,\"step\":\"3\",\"rng_streams\":\"1\",\"rng.0\":\"1,2,3,4\"}", good);
    save_with_metadata(&p, path, meta_json);
    assert_int_equal(ts_trainstate_load(path, &q, &back, 77), TS_OK);
    assert_int_equal(back.step, 3);
    assert_int_equal(back.data_pos, 5);
    assert_true(back.rng[0].s[3] == 4);

    /* Missing file, and moments that were never allocated. */
    assert_int_equal(ts_trainstate_load(tu_path("nope.safetensors"), &q, &back, 0), TS_ERR_IO);
    assert_error_mentions("nope.safetensors");
    ts_params bare;
    ts_params_init(&bare);
    int s[1] = {2};
    assert_int_equal(ts_params_add(&bare, "x", 1, s, 0), 0);
    assert_int_equal(ts_params_alloc(&bare, 0), TS_OK);
    assert_int_equal(ts_trainstate_save(path, &bare, &meta), TS_ERR_ARG);
    assert_error_mentions("moments are not allocated");
    meta.n_rng = 5;
    assert_int_equal(ts_trainstate_save(path, &p, &meta), TS_ERR_ARG);
    ts_params_free(&bare);
    ts_params_free(&p);
    ts_params_free(&q);
    ts_params_free(&other_shape);
    ts_params_free(&bigger);
}

static void fingerprint_is_fnv1a(void **state) {
    (void)state;
    /* Published FNV-1a 64 test vectors. */
    assert_true(ts_fingerprint(0, "", 0) == 0xcbf29ce484222325ULL);
    assert_true(ts_fingerprint(0, "a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(ts_fingerprint(0, "foobar", 6) == 0x85944171f73967e8ULL);
    /* Chaining equals hashing the concatenation. */
    assert_true(ts_fingerprint(ts_fingerprint(0, "foo", 3), "bar", 3) == ts_fingerprint(0, "foobar", 6));
}

/* ---- metrics --------------------------------------------------------------------- */

static const char *const cols[] = {"step", "loss", "lr", "tokens_per_s"};

static void metrics_header_rows_and_formatting(void **state) {
    (void)state;
    const char *path = tu_path("metrics.csv");
    ts_metrics m;
    assert_int_equal(ts_metrics_open(&m, path, cols, 4, 0), TS_OK);
    double r1[4] = {1, 5.545177, 3e-5, 41230.5};
    double r2[4] = {2, 4.0, -0.0, 1e20};
    double r3[4] = {3, NAN, INFINITY, -2.5};
    assert_int_equal(ts_metrics_row(&m, r1), TS_OK);
    /* Each row is on disk before the next is written (a plotting tool can read a running file). */
    assert_file_text(path, "step,loss,lr,tokens_per_s\n1,5.54518,3e-05,41230.5\n");
    assert_int_equal(ts_metrics_row(&m, r2), TS_OK);
    assert_int_equal(ts_metrics_row(&m, r3), TS_OK);
    assert_int_equal(ts_metrics_close(&m), TS_OK);
    assert_int_equal(ts_metrics_close(&m), TS_OK);
    assert_file_text(path, "step,loss,lr,tokens_per_s\n1,5.54518,3e-05,41230.5\n2,4,0,1e+20\n3,nan,inf,-2.5\n");
    assert_int_equal(ts_metrics_row(&m, r1), TS_ERR_ARG); /* closed */

    /* Reopening without append starts over. */
    assert_int_equal(ts_metrics_open(&m, path, cols, 2, 0), TS_OK);
    assert_int_equal(ts_metrics_row(&m, r1), TS_OK);
    assert_int_equal(ts_metrics_close(&m), TS_OK);
    assert_file_text(path, "step,loss\n1,5.54518\n");

    /* Column names that would break the CSV are refused. */
    const char *bad[2] = {"step", "loss,val"};
    assert_int_equal(ts_metrics_open(&m, path, bad, 2, 0), TS_ERR_ARG);
    assert_error_mentions("'loss,val'");
    assert_int_equal(ts_metrics_open(&m, tu_path("no/such/dir.csv"), cols, 4, 0), TS_ERR_IO);
    assert_error_mentions("dir.csv");
}

static void metrics_append_and_truncate_for_resume(void **state) {
    (void)state;
    const char *path = tu_path("run.csv");
    ts_metrics m;
    /* An interrupted run wrote steps 1..5 and half of step 6; its state was saved at step 3. */
    write_text(path, "step,loss,lr,tokens_per_s\n1,5,0.1,10\n2,4,0.1,10\n3,3,0.1,10\n4,2,0.1,10\n5,1,0.1,10\n6,0.");
    assert_int_equal(ts_metrics_truncate_after(path, 3), TS_OK);
    assert_file_text(path, "step,loss,lr,tokens_per_s\n1,5,0.1,10\n2,4,0.1,10\n3,3,0.1,10\n");
    assert_int_equal(ts_metrics_open(&m, path, cols, 4, 1), TS_OK);
    double r4[4] = {4, 2.5, 0.1, 11};
    assert_int_equal(ts_metrics_row(&m, r4), TS_OK);
    assert_int_equal(ts_metrics_close(&m), TS_OK);
    assert_file_text(path, "step,loss,lr,tokens_per_s\n1,5,0.1,10\n2,4,0.1,10\n3,3,0.1,10\n4,2.5,0.1,11\n");

    /* Appending cuts a partial last line even without a truncate first. */
    write_text(path, "step,loss,lr,tokens_per_s\n1,5,0.1,10\n2,4,0");
    assert_int_equal(ts_metrics_open(&m, path, cols, 4, 1), TS_OK);
    assert_int_equal(ts_metrics_row(&m, r4), TS_OK);
    assert_int_equal(ts_metrics_close(&m), TS_OK);
    assert_file_text(path, "step,loss,lr,tokens_per_s\n1,5,0.1,10\n4,2.5,0.1,11\n");

    /* A header of another run is refused, naming both. */
    write_text(path, "step,loss\n1,5\n");
    assert_int_equal(ts_metrics_open(&m, path, cols, 4, 1), TS_ERR_FORMAT);
    assert_error_mentions("header is 'step,loss' but this run writes 'step,loss,lr,tokens_per_s'");
    assert_file_text(path, "step,loss\n1,5\n");

    /* Append to a missing or empty file writes the header. */
    const char *fresh = tu_path("fresh.csv");
    assert_int_equal(ts_metrics_truncate_after(fresh, 10), TS_OK); /* missing: nothing to do */
    assert_int_equal(access(fresh, F_OK), -1);
    assert_int_equal(ts_metrics_open(&m, fresh, cols, 4, 1), TS_OK);
    assert_int_equal(ts_metrics_close(&m), TS_OK);
    assert_file_text(fresh, "step,loss,lr,tokens_per_s\n");
    write_text(fresh, "");
    assert_int_equal(ts_metrics_open(&m, fresh, cols, 4, 1), TS_OK);
    assert_int_equal(ts_metrics_close(&m), TS_OK);
    assert_file_text(fresh, "step,loss,lr,tokens_per_s\n");

    /* Truncate keeps the header alone when every row is later, and drops junk rows. */
    write_text(path, "step,loss\r\n7,1\r\nxyz,2\r\n2.5,3\r\n9,4\r\n");
    assert_int_equal(ts_metrics_truncate_after(path, 3), TS_OK);
    assert_file_text(path, "step,loss\r\n2.5,3\r\n");
    assert_int_equal(ts_metrics_truncate_after(path, 0), TS_OK);
    assert_file_text(path, "step,loss\r\n");
    DIR *d = opendir(tu_dir);
    struct dirent *e;
    while ((e = readdir(d))) assert_null(strstr(e->d_name, ".tmp"));
    closedir(d);
}

/* ---- progress ---------------------------------------------------------------------- */

static void progress_plain_mode_prints_every_tenth(void **state) {
    (void)state;
    unsetenv("TINYSEEK_QUIET");
    FILE *f = tmpfile();
    assert_non_null(f);
    ts_progress p;
    ts_progress_start(&p, "train", 200);
    p.out = f;
    p.tty = 0;
    for (long i = 1; i <= 200; i++) ts_progress_update(&p, i, "loss %.3f", 1.0 / (double)i);
    ts_progress_done(&p, "loss %.3f", 0.005);
    fflush(f);
    rewind(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_int_equal(tu_count_lines(buf), 11); /* 20, 40, ..., 200, and the final line */
    assert_non_null(strstr(buf, "train  step 20/200  loss 0.050  ETA "));
    assert_non_null(strstr(buf, "train  step 200/200  loss 0.005\n")); /* no ETA at the end */
    assert_non_null(strstr(buf, "train  step 200/200  loss 0.005  in 0:00\n"));
    assert_null(strchr(buf, '\r'));
}

static void progress_terminal_mode_redraws_in_place(void **state) {
    (void)state;
    unsetenv("TINYSEEK_QUIET");
    FILE *f = tmpfile();
    ts_progress p;
    ts_progress_start(&p, "bpe", 0);
    p.out = f;
    p.tty = 1;
    p.unit = "merge";
    ts_progress_update(&p, 1, "vocab %d", 300);
    for (long i = 2; i < 1000; i++) ts_progress_update(&p, i, NULL); /* rate-limited: within 0.1 s */
    ts_progress_done(&p, NULL);
    fflush(f);
    rewind(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_true(strncmp(buf, "\rbpe  merge 1  vocab 300", 24) == 0);
    assert_int_equal(tu_count_lines(buf), 1);          /* one line, redrawn */
    assert_non_null(strstr(buf, "\rbpe  merge 999  in 0:00")); /* final line blanks the longer old one */
    assert_true(buf[n - 1] == '\n');
}

static void progress_quiet_prints_only_the_final_line(void **state) {
    (void)state;
    setenv("TINYSEEK_QUIET", "1", 1);
    FILE *f = tmpfile();
    ts_progress p;
    ts_progress_start(&p, "train", 10);
    p.out = f;
    assert_int_equal(p.quiet, 1);
    for (long i = 1; i <= 10; i++) ts_progress_update(&p, i, "loss %d", (int)i);
    ts_progress_done(&p, "loss %d", 10);
    unsetenv("TINYSEEK_QUIET");
    fflush(f);
    rewind(f);
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_string_equal(buf, "train  step 10/10  loss 10  in 0:00\n");
}

static void progress_formats(void **state) {
    (void)state;
    char b[32];
    ts_format_duration(42, b, sizeof b);
    assert_string_equal(b, "0:42");
    ts_format_duration(723.4, b, sizeof b);
    assert_string_equal(b, "12:03");
    ts_format_duration(3723, b, sizeof b);
    assert_string_equal(b, "1:02:03");
    ts_format_duration(NAN, b, sizeof b);
    assert_string_equal(b, "?");
    ts_format_si(950, b, sizeof b);
    assert_string_equal(b, "950");
    ts_format_si(12345, b, sizeof b);
    assert_string_equal(b, "12.3k");
    ts_format_si(4560000, b, sizeof b);
    assert_string_equal(b, "4.56M");
    ts_format_si(999999, b, sizeof b);
    assert_string_equal(b, "1.00M");
    ts_format_si(123456789012.0, b, sizeof b);
    assert_string_equal(b, "123G");
}

/* ---- npy ------------------------------------------------------------------------------ */

/** Check the .npy bytes: magic, version, header dict, alignment, size, data. */
static void check_npy(const char *path, const char *descr, const char *shape_text, const void *data, size_t bytes) {
    size_t len;
    char *b = slurp(path, &len);
    assert_true(len >= 10);
    assert_memory_equal(b, "\x93NUMPY", 6);
    assert_int_equal((unsigned char)b[6], 1);
    assert_int_equal((unsigned char)b[7], 0);
    size_t hlen = (unsigned char)b[8] | ((size_t)(unsigned char)b[9] << 8);
    assert_int_equal((10 + hlen) % 64, 0);
    assert_int_equal(len, 10 + hlen + bytes);
    char want[256];
    snprintf(want, sizeof want, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape_text);
    size_t wl = strlen(want);
    assert_true(hlen > wl);
    assert_memory_equal(b + 10, want, wl);
    for (size_t i = 10 + wl; i < 10 + hlen - 1; i++) assert_int_equal(b[i], ' ');
    assert_int_equal(b[10 + hlen - 1], '\n');
    if (bytes) assert_memory_equal(b + 10 + hlen, data, bytes); /* little-endian host */
    free(b);
}

static void npy_files_are_exact(void **state) {
    (void)state;
    float x[6] = {1.0f, -2.5f, 3.25f, 0.0f, 1e-45f, -0.0f};
    int s2[2] = {2, 3}, s1[1] = {6}, s3[3] = {1, 2, 3}, s0[2] = {0, 5};
    assert_int_equal(ts_npy_save_f32(tu_path("a.npy"), x, 2, s2), TS_OK);
    check_npy(tu_path("a.npy"), "<f4", "(2, 3)", x, sizeof x);
    assert_int_equal(ts_npy_save_f32(tu_path("b.npy"), x, 1, s1), TS_OK);
    check_npy(tu_path("b.npy"), "<f4", "(6,)", x, sizeof x);
    assert_int_equal(ts_npy_save_f32(tu_path("c.npy"), x, 3, s3), TS_OK);
    check_npy(tu_path("c.npy"), "<f4", "(1, 2, 3)", x, sizeof x);
    assert_int_equal(ts_npy_save_f32(tu_path("d.npy"), x, 0, NULL), TS_OK);
    check_npy(tu_path("d.npy"), "<f4", "()", x, 4);
    assert_int_equal(ts_npy_save_f32(tu_path("e.npy"), NULL, 2, s0), TS_OK);
    check_npy(tu_path("e.npy"), "<f4", "(0, 5)", NULL, 0);
    int32_t ids[3] = {7, -1, 65535};
    int s[1] = {3};
    assert_int_equal(ts_npy_save_i32(tu_path("ids.npy"), ids, 1, s), TS_OK);
    check_npy(tu_path("ids.npy"), "<i4", "(3,)", ids, sizeof ids);
    /* The dict is about 60 characters, so the data starts at byte 128, as NumPy's own files do. */
    size_t len;
    free(slurp(tu_path("a.npy"), &len));
    assert_int_equal(len, 128 + 24);

    int neg[1] = {-1};
    assert_int_equal(ts_npy_save_f32(tu_path("bad.npy"), x, 1, neg), TS_ERR_ARG);
    assert_error_mentions("bad.npy");
    assert_int_equal(ts_npy_save_f32(tu_path("bad.npy"), x, 9, s3), TS_ERR_ARG);
    assert_int_equal(access(tu_path("bad.npy"), F_OK), -1);
    assert_int_equal(ts_npy_save_f32(tu_path("no/dir/x.npy"), x, 1, s1), TS_ERR_IO);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trainstate_round_trip_is_exact),
        cmocka_unit_test(trainstate_errors_name_the_problem),
        cmocka_unit_test(fingerprint_is_fnv1a),
        cmocka_unit_test(metrics_header_rows_and_formatting),
        cmocka_unit_test(metrics_append_and_truncate_for_resume),
        cmocka_unit_test(progress_plain_mode_prints_every_tenth),
        cmocka_unit_test(progress_terminal_mode_redraws_in_place),
        cmocka_unit_test(progress_quiet_prints_only_the_final_line),
        cmocka_unit_test(progress_formats),
        cmocka_unit_test(npy_files_are_exact),
    };
    return cmocka_run_group_tests_name("ch02_io", tests, tu_setup_dir, tu_teardown_dir);
}
