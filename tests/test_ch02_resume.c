/* Chapter 2: a checkpoint folder is saved as a unit. `tinyseek pretrain` is
 * killed (SIGKILL, through the TS_TEST_KILL_AT test hook) at every stage of a
 * save, then resumed: the result is bit for bit the uninterrupted run's, or —
 * only where no complete checkpoint existed yet — the resume refuses with one
 * line. Files the user keeps in the folder survive every kill; stale
 * temporaries are cleaned; a training state beside weights from another save
 * is refused; a run whose weights turn non-finite stops with exit 3 and one
 * line naming the step and the tensor (tests/test_ch02_train.c checks the
 * non-finite loss and gradient cases through the library). */
#include "testutil.h"

#include <dirent.h>
#include <sys/stat.h>

#include "data/bpe.h"
#include "data/tasks.h"
#include "io/fileio.h"
#include "io/safetensors.h"
#include "io/trainstate.h"
#include "train/pretrain.h"

/* The save's stages, in order (io/savedir.h, model/checkpoint.c, train/loop.c). */
static const char *const stages[] = {"begin", "config", "model", "tokenizer", "state", "linked", "swapped", "done"};
#define N_STAGES 8
#define FIRST_COMPLETE 6 /* "swapped": the first stage at which the new folder is in place */

static char root[64];   /* the suite's temporary folder */
static char base[256];  /* the uninterrupted run */
static char flags[1024]; /* data and training flags shared by every run */

static void make_corpus(char **text, size_t *len) {
    task_config cfg;
    task_config_default(&cfg);
    size_t n = 300;
    task_problem *p = calloc(n, sizeof *p);
    assert_int_equal(task_generate(&cfg, 5, TASK_TRAIN, n, p), TS_OK);
    size_t cap = n * (TASK_PROMPT_MAX + TASK_RESPONSE_MAX + 2), used = 0;
    char *buf = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        task_text t;
        task_render(&p[i], &t);
        used += (size_t)snprintf(buf + used, cap - used, "%s%s\n", t.prompt, t.response);
    }
    free(p);
    *text = buf;
    *len = used;
}

static int cli(char *out, size_t cap, const char *env, const char *out_dir, const char *extra) {
    return tu_run(out, cap, "%s '%s' pretrain --out '%s' %s %s", env ? env : "", tu_cli(), out_dir, flags,
                  extra ? extra : "");
}

static int setup_group(void **state) {
    (void)state;
    tu_tmpdir(root);
    char *text;
    size_t len;
    make_corpus(&text, &len);
    char path[256], tok_path[256], cfg_path[256];
    snprintf(path, sizeof path, "%s/corpus.txt", root);
    assert_int_equal(ts_write_file_atomic(path, text, len), TS_OK);
    bpe_tokenizer tok;
    assert_int_equal(bpe_train(&tok, text, len, 280, NULL, NULL), TS_OK);
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", root);
    assert_int_equal(bpe_save(&tok, tok_path), TS_OK);
    ts_config c;
    ts_config_default(&c);
    c.vocab_size = tok.vocab_size;
    c.hidden_size = 16;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.head_dim = 8;
    c.intermediate_size = 32;
    c.max_position_embeddings = 32;
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", root);
    assert_int_equal(ts_config_save(&c, cfg_path), TS_OK);
    bpe_free(&tok);
    free(text);
    /* Four steps, a save after each: the kills below hit the first and the second save. */
    snprintf(flags, sizeof flags,
             "--config '%s' --text '%s' --tokenizer '%s' --steps 4 --warmup 1 --batch 2 --seq 12 --eval-every 2 "
             "--eval-batches 1 --save-every 1 --threads 1 --quiet",
             cfg_path, path, tok_path);
    snprintf(base, sizeof base, "%s/base", root);
    char out[4096];
    if (cli(out, sizeof out, NULL, base, NULL) != 0) fail_msg("the uninterrupted run failed:\n%s", out);
    return 0;
}

static int teardown_group(void **state) {
    (void)state;
    tu_rmdir(root);
    return 0;
}

static int same_file(const char *dir_a, const char *dir_b, const char *name) {
    return tu_run(NULL, 0, "cmp -s '%s/%s' '%s/%s'", dir_a, name, dir_b, name) == 0;
}

/* metrics.csv without the timing columns (tokens_per_s, elapsed_s). */
static int same_metrics(const char *dir_a, const char *dir_b) {
    return tu_run(NULL, 0, "bash -c \"cmp -s <(cut -d, -f1-5 '%s/metrics.csv') <(cut -d, -f1-5 '%s/metrics.csv')\"",
                  dir_a, dir_b) == 0;
}

/* Names in @p parent starting with @p prefix and containing ".tmp" (stale temporaries). */
static int count_temporaries(const char *parent, const char *prefix) {
    DIR *d = opendir(parent);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && strstr(e->d_name, ".tmp")) n++;
    closedir(d);
    return n;
}

/* Kill the run at @p stage of its @p nth save, resume, compare with the uninterrupted run. */
static void kill_and_resume(const char *stage, int nth) {
    char parent[256], dir[300], env[64], out[4096], notes[400];
    snprintf(parent, sizeof parent, "%s/kill-%s-%d", root, stage, nth);
    assert_int_equal(mkdir(parent, 0777), 0);
    snprintf(dir, sizeof dir, "%s/run", parent);
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(notes, sizeof notes, "%s/notes.txt", dir); /* the user's own file in the checkpoint folder */
    assert_int_equal(ts_write_file_atomic(notes, "keep me\n", 8), TS_OK);
    /* A user's sub-folder, a user's file that looks like a temporary (no such
     * process), and a leftover of a killed write of ours, which must go. */
    assert_int_equal(tu_run(NULL, 0,
                            "mkdir '%s/sub' && echo inner > '%s/sub/inner.txt' && echo mine > '%s/notes.tmp.999999999' "
                            "&& echo stale > '%s/model.safetensors.tmp.999999999'",
                            dir, dir, dir, dir),
                     0);

    snprintf(env, sizeof env, "TS_TEST_KILL_AT=%s:%d", stage, nth);
    int rc = cli(out, sizeof out, env, dir, NULL);
    if (rc != -1 && rc != 128 + 9) fail_msg("%s: the run was not killed (exit %d):\n%s", env, rc, out);

    rc = cli(out, sizeof out, NULL, dir, "--resume");
    int complete_before_kill = nth > 1 || strcmp(stage, stages[FIRST_COMPLETE]) == 0 || strcmp(stage, "done") == 0;
    if (complete_before_kill) {
        if (rc != 0) fail_msg("%s: resume failed (exit %d):\n%s", env, rc, out);
        if (!same_file(base, dir, "model.safetensors") || !same_file(base, dir, TS_TRAINSTATE_FILE) ||
            !same_file(base, dir, "config.json") || !same_file(base, dir, "tokenizer.json"))
            fail_msg("%s: the resumed checkpoint differs from the uninterrupted run's", env);
        if (!same_metrics(base, dir)) fail_msg("%s: the resumed metrics.csv differs from the uninterrupted run's", env);
    } else { /* killed before the first checkpoint was in place: nothing to resume from */
        if (rc == 0 || tu_count_lines(out) != 1 || !strstr(out, "tinyseek: "))
            fail_msg("%s: expected a one-line refusal; got exit %d:\n%s", env, rc, out);
    }
    char *kept;
    assert_int_equal(ts_read_file(notes, &kept, NULL), TS_OK);
    if (strcmp(kept, "keep me\n") != 0) fail_msg("%s: notes.txt was changed", env);
    free(kept);
    if (tu_run(NULL, 0, "grep -qx inner '%s/sub/inner.txt' && grep -qx mine '%s/notes.tmp.999999999'", dir, dir) != 0)
        fail_msg("%s: the user's sub-folder or notes.tmp.999999999 was lost", env);
    if (count_temporaries(parent, "run") != 0) fail_msg("%s: stale temporaries left beside the folder", env);
    if (count_temporaries(dir, "model") + count_temporaries(dir, "config") + count_temporaries(dir, "training") != 0)
        fail_msg("%s: stale temporaries left inside the folder", env);
}

static void kill_at_every_stage_of_the_first_save(void **state) {
    (void)state;
    for (int s = 0; s < N_STAGES; s++) kill_and_resume(stages[s], 1);
}

static void kill_at_every_stage_of_a_later_save(void **state) {
    (void)state;
    for (int s = 0; s < N_STAGES; s++) kill_and_resume(stages[s], 2);
}

/* Weights from one save beside the training state of another: refused, one line. */
static void mixed_files_are_refused(void **state) {
    (void)state;
    char dir[256], out[4096];
    snprintf(dir, sizeof dir, "%s/mixed", root);
    assert_int_equal(cli(out, sizeof out, NULL, dir, "--stop-after 1"), 0);
    assert_int_equal(tu_run(NULL, 0, "cp '%s/model.safetensors' '%s/step1.safetensors'", dir, root), 0);
    assert_int_equal(cli(out, sizeof out, NULL, dir, "--resume --stop-after 2"), 0);
    assert_int_equal(tu_run(NULL, 0, "cp '%s/step1.safetensors' '%s/model.safetensors'", root, dir), 0);
    int rc = cli(out, sizeof out, NULL, dir, "--resume");
    if (rc != 2 || tu_count_lines(out) != 1 || !strstr(out, "different saves") || !strstr(out, "step 2"))
        fail_msg("expected exit 2 and one line about files from different saves; got exit %d:\n%s", rc, out);
    /* The files put back as they were: the resume goes through and matches. */
    assert_int_equal(cli(out, sizeof out, NULL, dir, "--stop-after 2"), 0);
    assert_int_equal(cli(out, sizeof out, NULL, dir, "--resume"), 0);
    assert_true(same_file(base, dir, "model.safetensors"));
}

/* A training state whose AdamW first moment of one weight of layer 1's MLP is
 * huge (finite, so nothing refuses to load it): the first step after the
 * resume sends that weight to infinity. */
static void poison_state(const char *dir) {
    char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, TS_TRAINSTATE_FILE);
    ts_safetensors st;
    assert_int_equal(ts_safetensors_open(&st, path), TS_OK);
    const ts_st_tensor *t = ts_safetensors_find(&st, "m.model.layers.1.mlp.down_proj.weight");
    assert_non_null(t);
    long offset = (long)(st.data - st.map) + (long)t->begin;
    ts_safetensors_close(&st);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    float huge = 3e38f;
    assert_int_equal(fseek(f, offset, SEEK_SET), 0);
    assert_int_equal(fwrite(&huge, sizeof huge, 1, f), 1);
    fclose(f);
}

/* The first step after the resume (step 2) sends that weight to infinity:
 * the run stops right after AdamW, before any forward, evaluation or save sees
 * it: exit 3, one line naming the step and the weight, checkpoint untouched. */
static void nonfinite_weight_stops_the_run(void **state) {
    (void)state;
    char dir[256], out[4096];
    snprintf(dir, sizeof dir, "%s/diverge", root);
    assert_int_equal(cli(out, sizeof out, NULL, dir, "--stop-after 1"), 0);
    poison_state(dir);
    assert_int_equal(tu_run(NULL, 0, "cp '%s/model.safetensors' '%s/before.safetensors'", dir, root), 0);
    int rc = cli(out, sizeof out, NULL, dir, "--resume");
    if (rc != 3 || tu_count_lines(out) != 1 || !strstr(out, "step 2:") ||
        !strstr(out, "weight model.layers.1.mlp.down_proj.weight (element 0 is -inf)"))
        fail_msg("expected exit 3 and one line naming step 2 and the weight; got exit %d:\n%s", rc, out);
    printf("%s", out);
    assert_int_equal(tu_run(NULL, 0, "cmp -s '%s/model.safetensors' '%s/before.safetensors'", dir, root), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill_at_every_stage_of_the_first_save),
        cmocka_unit_test(kill_at_every_stage_of_a_later_save),
        cmocka_unit_test(mixed_files_are_refused),
        cmocka_unit_test(nonfinite_weight_stops_the_run),
    };
    return cmocka_run_group_tests_name("ch02_resume", tests, setup_group, teardown_group);
}
