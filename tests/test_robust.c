/* Library-level robustness: fast_expf on every kind of float, one-line errors
 * whatever they quote, linear parameter registration with 64-bit size checks,
 * FIFOs and folders refused before they are opened, non-finite numbers
 * refused, and the regressions the fuzzers found (fuzz/). */
#include "testutil.h"

#include <float.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "core/arena.h"
#include "core/ops.h"
#include "io/fileio.h"
#include "io/safetensors.h"
#include "io/trainstate.h"
#include "model/checkpoint.h"

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* The Cephes formula exactly as ops.c computed it before it handled every
 * float: for ordinary inputs the new fast_expf must give these very bits. */
static float old_fast_expf(float x) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187045e-06f;
    float xc = x < -87.33654f ? -87.33654f : x > 88.37626f ? 88.37626f : x;
    float t = xc * log2e;
    float n = (t + 12582912.0f) - 12582912.0f;
    float r = (xc - n * ln2_hi) - n * ln2_lo;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t b = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &b, sizeof scale);
    return x < -87.33654f ? 0.0f : p * scale;
}

static void fast_expf_is_defined_for_every_float(void **state) {
    (void)state;
    /* expf's semantics at the edges (below -87.34, where expf is subnormal, it gives 0). */
    assert_true(isnan(ts_fast_expf(NAN)));
    assert_true(isnan(ts_fast_expf(-NAN)));
    assert_true(isinf(ts_fast_expf(INFINITY)) && ts_fast_expf(INFINITY) > 0);
    assert_true(ts_fast_expf(-INFINITY) == 0.0f);
    assert_true(isinf(ts_fast_expf(FLT_MAX)));
    assert_true(ts_fast_expf(-FLT_MAX) == 0.0f);
    assert_true(isinf(ts_fast_expf(1e30f)));
    assert_true(isinf(ts_fast_expf(88.73f)) && isinf(expf(88.73f)));
    assert_true(ts_fast_expf(-1e30f) == 0.0f);
    assert_true(ts_fast_expf(-100.0f) == 0.0f);
    assert_true(ts_fast_expf(1e-40f) == 1.0f);
    assert_true(ts_fast_expf(0.0f) == 1.0f && ts_fast_expf(-0.0f) == 1.0f);
    /* Between 88.38 and ln(FLT_MAX) = 88.72 it follows expf (it used to stop at e^88.38). */
    for (float x = 88.38f; x <= 88.72f; x += 0.01f) {
        double want = exp((double)x);
        assert_true(isfinite(ts_fast_expf(x)));
        assert_true(fabs(ts_fast_expf(x) - want) <= 1e-5 * want);
    }
    /* Ordinary inputs: the same bits as before, within 1 ulp-ish of exp(). */
    uint64_t s = 12345;
    for (int i = 0; i < 200000; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        float x = -87.3f + (float)((s >> 11) * 0x1p-53) * (88.3f + 87.3f);
        float y = ts_fast_expf(x);
        if (bits_of(y) != bits_of(old_fast_expf(x))) fail_msg("bits changed at x = %.9g", (double)x);
        double want = exp((double)x);
        if (fabs(y - want) > 3e-7 * want) fail_msg("x = %.9g: %.9g vs exp %.9g", (double)x, (double)y, want);
    }
    /* Softmax and logsumexp of a row holding NaN or inf stay defined (and say so). */
    float row[4] = {1.0f, NAN, 2.0f, 3.0f}, y[4];
    ts_softmax_row(y, row, 4);
    assert_true(isnan(y[0] + y[1] + y[2] + y[3])); /* the NaN shows; it is not hidden */
    float inf_row[3] = {1.0f, INFINITY, 0.0f};
    assert_true(isnan(ts_logsumexp(inf_row, 3)) || isinf(ts_logsumexp(inf_row, 3)));
}

static void errors_are_one_line(void **state) {
    (void)state;
    char buf[32];
    assert_string_equal(ts_escape(buf, sizeof buf, "a\nb\tc\\d\x01"), "a\\nb\\tc\\\\d\\x01");
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ts_escape(buf, sizeof buf, big);
    assert_true(strlen(buf) < sizeof buf);
    assert_non_null(strstr(buf, "..."));
    assert_string_equal(ts_escape(buf, sizeof buf, ""), "");
    /* ts_fail() itself keeps a message on one line, whatever it quotes. */
    ts_fail(TS_ERR_FORMAT, "file %s: bad\r\nthing", "na\nme");
    assert_null(strchr(ts_last_error(), '\n'));
    assert_null(strchr(ts_last_error(), '\r'));
    assert_string_equal(ts_last_error(), "file na\\nme: bad\\r\\nthing");
    /* A message may quote the previous one (config.c does for rope_scaling). */
    ts_fail(TS_ERR_FORMAT, "inner");
    ts_fail(TS_ERR_FORMAT, "%s (outer)", ts_last_error());
    assert_string_equal(ts_last_error(), "inner (outer)");
}

static void registration_is_linear_and_sizes_are_checked(void **state) {
    (void)state;
    ts_params p;
    ts_params_init(&p);
    int shape[1] = {1};
    const int n = 300000; /* quadratic registration would take minutes */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char name[64];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "model.layers.%d.w", i);
        assert_int_equal(ts_params_add(&p, name, 1, shape, 0), i);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (secs > 30) fail_msg("registering %d tensors took %.1f s", n, secs);
    for (int i = 0; i < n; i += 977) {
        snprintf(name, sizeof name, "model.layers.%d.w", i);
        assert_int_equal(ts_params_find(&p, name), i);
    }
    assert_int_equal(ts_params_find(&p, "model.layers.-1.w"), -1);
    assert_int_equal(ts_params_add(&p, "model.layers.5.w", 1, shape, 0), -1);
    assert_non_null(strstr(ts_last_error(), "registered twice"));
    /* 2^31-1 to the fourth power: checked in 64 bits, refused naming the tensor. */
    int huge[4] = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX};
    assert_int_equal(ts_params_add(&p, "too.big", 4, huge, 0), -1);
    assert_non_null(strstr(ts_last_error(), "too.big"));
    assert_non_null(strstr(ts_last_error(), "could ever be allocated"));
    assert_int_equal(ts_params_find(&p, "too.big"), -1);
    ts_params_free(&p);
    assert_int_equal(ts_params_find(&p, "anything"), -1); /* an empty registry */
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "a reader blocked on a FIFO\n";
    if (write(2, msg, sizeof msg - 1) < 0) _exit(3);
    _exit(3);
}

static void fifos_and_folders_are_refused_before_opening(void **state) {
    (void)state;
    char d[64];
    tu_tmpdir(d);
    char fifo[128], folder[128];
    snprintf(fifo, sizeof fifo, "%s/pipe", d);
    snprintf(folder, sizeof folder, "%s/folder", d);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(mkdir(folder, 0700), 0);
    signal(SIGALRM, on_alarm);
    alarm(20); /* opening a FIFO for reading would block until a writer comes */
    char *text;
    assert_int_equal(ts_read_file(fifo, &text, NULL), TS_ERR_IO);
    assert_non_null(strstr(ts_last_error(), "not a regular file"));
    assert_null(text);
    assert_int_equal(ts_read_file(folder, &text, NULL), TS_ERR_IO);
    assert_non_null(strstr(ts_last_error(), "is a folder, expected a file"));
    ts_safetensors st;
    assert_int_equal(ts_safetensors_open(&st, fifo), TS_ERR_IO);
    assert_non_null(strstr(ts_last_error(), "pipe"));
    assert_int_equal(ts_safetensors_open(&st, folder), TS_ERR_IO);
    assert_non_null(strstr(ts_last_error(), "is a folder"));
    ts_config c;
    assert_int_equal(ts_config_load(&c, fifo), TS_ERR_IO);
    alarm(0);
    tu_rmdir(d);
}

static ts_config tiny(void) {
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
    return c;
}

static void non_finite_config_values_are_refused(void **state) {
    (void)state;
    ts_config c = tiny();
    assert_int_equal(ts_config_validate(&c, "cfg"), TS_OK);
    c.rope_theta = INFINITY;
    assert_int_equal(ts_config_validate(&c, "cfg"), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "rope_theta"));
    c = tiny();
    c.rms_norm_eps = NAN;
    assert_int_equal(ts_config_validate(&c, "cfg"), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "rms_norm_eps"));
    c = tiny();
    c.initializer_range = -INFINITY;
    assert_int_equal(ts_config_validate(&c, "cfg"), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "initializer_range"));
    c = tiny();
    c.has_yarn = 1;
    c.yarn = (ts_yarn){.factor = 4, .original_max_position = 8, .beta_fast = NAN, .beta_slow = 1, .mscale = 1};
    assert_int_equal(ts_config_validate(&c, "cfg"), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "beta_fast"));
    /* Parsed: 1e39 is a double but not a float. */
    assert_int_equal(ts_config_parse(&c,
                                     "{\"vocab_size\":20,\"hidden_size\":16,\"num_hidden_layers\":1,"
                                     "\"num_attention_heads\":2,\"intermediate_size\":24,"
                                     "\"max_position_embeddings\":16,\"rms_norm_eps\":1e-5,\"rope_theta\":1e39}",
                                     "x.json"),
                     TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "x.json: field 'rope_theta' is 1e+39"));
}

/* Fuzzer finding (config): an error inside rope_scaling came out as " (in rope_scaling)",
 * ts_fail() having formatted its own buffer into itself. */
static void nested_config_errors_keep_their_text(void **state) {
    (void)state;
    ts_config c;
    assert_int_equal(ts_config_parse(&c,
                                     "{\"vocab_size\":20,\"hidden_size\":16,\"num_hidden_layers\":1,"
                                     "\"num_attention_heads\":2,\"intermediate_size\":24,\"max_position_embeddings\":16,"
                                     "\"rms_norm_eps\":1e-5,\"rope_scaling\":{\"type\":\"yarn\",\"factor\":\"big\"}}",
                                     "y.json"),
                     TS_ERR_FORMAT);
    assert_string_equal(ts_last_error(), "y.json: field 'factor' must be a number (in rope_scaling)");
}

/* Fuzzer finding (checkpoint): a refused checkpoint left the model as it was before the
 * call (garbage) or half-built; now it is always left empty. */
static void failed_checkpoint_load_leaves_the_model_empty(void **state) {
    (void)state;
    char d[64];
    tu_tmpdir(d);
    ts_config c = tiny();
    ts_model m, zero;
    memset(&zero, 0, sizeof zero);
    assert_int_equal(ts_model_create(&m, &c, 0), TS_OK);
    ts_model_init_weights(&m, 3);
    assert_int_equal(ts_checkpoint_save(&m, d, NULL), TS_OK);
    /* A NaN in the weights: refused, naming the tensor; the model comes back empty. */
    char path[160];
    snprintf(path, sizeof path, "%s/model.safetensors", d);
    m.params.data[m.params.params[2].offset + 5] = NAN;
    assert_int_equal(ts_safetensors_save(&m.params, path, NULL), TS_OK);
    ts_model_free(&m);
    memset(&m, 0x5c, sizeof m);
    assert_int_equal(ts_checkpoint_load(&m, d, 0), TS_ERR_FORMAT);
    assert_non_null(strstr(ts_last_error(), "NaN at index 5"));
    assert_memory_equal(&m, &zero, sizeof m);
    /* A config that does not parse: the same. */
    snprintf(path, sizeof path, "%s/config.json", d);
    assert_int_equal(ts_write_file_atomic(path, "{", 1), TS_OK);
    memset(&m, 0x5c, sizeof m);
    assert_int_equal(ts_checkpoint_load(&m, d, 0), TS_ERR_FORMAT);
    assert_memory_equal(&m, &zero, sizeof m);
    tu_rmdir(d);
}

static void non_finite_moments_are_refused(void **state) {
    (void)state;
    char d[64];
    tu_tmpdir(d);
    ts_config c = tiny();
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 1), TS_OK);
    for (size_t i = 0; i < m.params.numel; i++) m.params.m[i] = m.params.v[i] = 0.25f;
    ts_trainstate_meta meta = {.step = 2, .data_pos = 3, .fingerprint = 9, .n_rng = 0};
    char path[160];
    snprintf(path, sizeof path, "%s/" TS_TRAINSTATE_FILE, d);
    m.params.m[m.params.params[1].offset + 2] = INFINITY;
    assert_int_equal(ts_trainstate_save(path, &m.params, &meta), TS_OK);
    for (size_t i = 0; i < m.params.numel; i++) m.params.m[i] = m.params.v[i] = 7.0f;
    ts_trainstate_meta back = {.step = 99};
    assert_int_equal(ts_trainstate_load(path, &m.params, &back, 0), TS_ERR_FORMAT);
    assert_non_null(strstr(ts_last_error(), "+inf at index 2"));
    assert_non_null(strstr(ts_last_error(), m.params.params[1].name));
    for (size_t i = 0; i < m.params.numel; i++) assert_true(m.params.m[i] == 7.0f && m.params.v[i] == 7.0f);
    assert_int_equal(back.step, 99);
    ts_model_free(&m);
    tu_rmdir(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fast_expf_is_defined_for_every_float),
        cmocka_unit_test(errors_are_one_line),
        cmocka_unit_test(registration_is_linear_and_sizes_are_checked),
        cmocka_unit_test(fifos_and_folders_are_refused_before_opening),
        cmocka_unit_test(non_finite_config_values_are_refused),
        cmocka_unit_test(nested_config_errors_keep_their_text),
        cmocka_unit_test(failed_checkpoint_load_leaves_the_model_empty),
        cmocka_unit_test(non_finite_moments_are_refused),
    };
    return cmocka_run_group_tests_name("robust", tests, NULL, NULL);
}
