/* Chapter 1: the `tinyseek data` and `tinyseek tokenizer` commands, driven as a user would. */
#include "testutil.h"

static char out[1 << 16];

/* Run the CLI with arguments (a shell command line after the binary). */
#define CLI(...) tu_run(out, sizeof out, __VA_ARGS__)

/* Exit status 2 and exactly one line, "tinyseek: ...", containing each of the needles. */
static void expect_one_line_error(int status, const char *needle1, const char *needle2) {
    if (status != 2) fail_msg("expected exit status 2, got %d; output:\n%s", status, out);
    if (tu_count_lines(out) != 1) fail_msg("expected one line, got:\n%s", out);
    assert_int_equal(strncmp(out, "tinyseek: ", 10), 0);
    if (needle1 && !strstr(out, needle1)) fail_msg("'%s' should mention '%s'", out, needle1);
    if (needle2 && !strstr(out, needle2)) fail_msg("'%s' should mention '%s'", out, needle2);
}

static int files_equal(const char *a, const char *b) { return tu_run(NULL, 0, "cmp -s '%s' '%s'", a, b) == 0; }

static void data_then_tokenizer_round_trip(void **state) {
    (void)state;
    const char *cli = tu_cli();
    char d[64];
    tu_tmpdir(d);
    const char *flags = "--pretrain 2000 --pretrain-test 100 --sft 40 --sft-test 20 --rl 90 --test 30 --seed 3 "
                        "--min-digits 2 --digits 4 --ops add,sub,mul";
    assert_int_equal(CLI("OMP_NUM_THREADS=1 %s data --out %s/data %s", cli, d, flags), 0);
    assert_int_equal(tu_count_lines(out), 1);
    assert_non_null(strstr(out, "2000 + 100 lines"));
    assert_non_null(strstr(out, "30 per difficulty 2-4"));
    static const char *const files[] = {"pretrain_train.txt", "pretrain_test.txt", "sft_train.jsonl",
                                        "sft_test.jsonl",     "rl_train.jsonl",    "test.jsonl"};
    static const int lines[] = {2000, 100, 40, 20, 90, 90};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        assert_int_equal(tu_run(out, sizeof out, "wc -l < %s/data/%s", d, files[i]), 0);
        assert_int_equal(atoi(out), lines[i]);
    }
    /* Same command, same bytes, on 1 thread and on 2. */
    assert_int_equal(CLI("OMP_NUM_THREADS=2 %s data --out %s/again %s", cli, d, flags), 0);
    char a[160], b[160];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(a, sizeof a, "%s/data/%s", d, files[i]);
        snprintf(b, sizeof b, "%s/again/%s", d, files[i]);
        assert_true(files_equal(a, b));
    }
    /* --tagged-weight puts the think/answer format into the pretraining text; by default it is absent. */
    assert_int_equal(tu_run(out, sizeof out, "grep -c '<think>' %s/data/pretrain_train.txt", d), 1);
    assert_int_equal(CLI("%s data --out %s/tagged %s --tagged-weight 20", cli, d, flags), 0);
    assert_int_equal(tu_run(out, sizeof out, "grep -c '<think>' %s/tagged/pretrain_train.txt", d), 0);
    assert_true(atoi(out) > 100);

    assert_int_equal(CLI("%s tokenizer train --input %s/data/pretrain_train.txt --vocab-size 400 --out %s/tok.json "
                         "--log %s/merges.csv",
                         cli, d, d, d),
                     0);
    assert_int_equal(tu_count_lines(out), 1);
    assert_non_null(strstr(out, "bytes/token"));
    assert_int_equal(tu_run(out, sizeof out, "head -1 %s/merges.csv", d), 0);
    assert_string_equal(out, "merge,left,right,count,token_id,token\n");

    /* encode a file, decode the ids: the same bytes. */
    assert_int_equal(CLI("%s tokenizer encode --tokenizer %s/tok.json --input %s/data/pretrain_test.txt > %s/ids.txt",
                         cli, d, d, d),
                     0);
    assert_string_equal(out, "");
    assert_int_equal(CLI("%s tokenizer decode --tokenizer %s/tok.json --input %s/ids.txt > %s/back.txt", cli, d, d, d), 0);
    snprintf(a, sizeof a, "%s/data/pretrain_test.txt", d);
    snprintf(b, sizeof b, "%s/back.txt", d);
    assert_true(files_equal(a, b));

    /* --text and ids on the command line, special tokens included. */
    assert_int_equal(CLI("%s tokenizer encode --tokenizer %s/tok.json --text 'What is 12+7? <think>2+7=9 carry 0</think>'",
                         cli, d),
                     0);
    char ids[1024];
    size_t ids_len = strcspn(out, "\n");
    assert_true(ids_len > 0 && ids_len < sizeof ids);
    memcpy(ids, out, ids_len);
    ids[ids_len] = '\0';
    assert_int_equal(CLI("%s tokenizer decode --tokenizer %s/tok.json %s", cli, d, ids), 0);
    assert_string_equal(out, "What is 12+7? <think>2+7=9 carry 0</think>");

    /* show: pieces, digits one by one. */
    assert_int_equal(CLI("%s tokenizer show --tokenizer %s/tok.json --text 'What is 4821+379?'", cli, d), 0);
    assert_non_null(strstr(out, "[What][ is][ ][4][8][2][1][+][3][7][9][?]"));
    assert_int_equal(CLI("%s tokenizer show --tokenizer %s/tok.json", cli, d), 0);
    assert_non_null(strstr(out, "special"));
    assert_non_null(strstr(out, "[<think>]"));
    tu_rmdir(d);
}

static void unknown_flags_and_subcommands(void **state) {
    (void)state;
    const char *cli = tu_cli();
    expect_one_line_error(CLI("%s data --out /tmp/x --bogus 1", cli), "--bogus", NULL);
    expect_one_line_error(CLI("%s tokenizer train --nope", cli), "--nope", NULL);
    expect_one_line_error(CLI("%s tokenizer encode --tokenizer t.json --txt hi", cli), "--txt", NULL);
    expect_one_line_error(CLI("%s tokenizer", cli), "train, encode, decode or show", NULL);
    expect_one_line_error(CLI("%s tokenizer frobnicate", cli), "frobnicate", NULL);
    expect_one_line_error(CLI("%s data", cli), "--out", NULL);
    /* --help is not an error */
    assert_int_equal(CLI("%s tokenizer train --help", cli), 0);
    assert_non_null(strstr(out, "--vocab-size"));
}

static void missing_and_malformed_files(void **state) {
    (void)state;
    const char *cli = tu_cli();
    char d[64];
    tu_tmpdir(d);
    expect_one_line_error(CLI("%s tokenizer train --input %s/no-such-corpus.txt --vocab-size 300 --out %s/t.json", cli, d,
                              d),
                          "no-such-corpus.txt", NULL);
    expect_one_line_error(CLI("%s tokenizer encode --tokenizer %s/no-such-tokenizer.json --text hi", cli, d),
                          "no-such-tokenizer.json", NULL);
    expect_one_line_error(CLI("%s tokenizer train --vocab-size 300 --out %s/t.json", cli, d), "--input", NULL);
    /* A truncated tokenizer.json. */
    assert_int_equal(tu_run(NULL, 0, "printf '{\"model\": {\"type\": \"BP' > %s/broken.json", d), 0);
    expect_one_line_error(CLI("%s tokenizer encode --tokenizer %s/broken.json --text hi", cli, d), "broken.json",
                          "not valid JSON");
    /* A field of the wrong type. */
    assert_int_equal(tu_run(NULL, 0, "printf '{\"model\": {\"type\": \"BPE\", \"vocab\": 3}}' > %s/wrong.json", d), 0);
    expect_one_line_error(CLI("%s tokenizer decode --tokenizer %s/wrong.json 1 2", cli, d), "wrong.json", "model.vocab");
    /* --input that does not exist for encode/decode */
    assert_int_equal(CLI("%s tokenizer train --input %s/wrong.json --vocab-size 270 --out %s/t.json", cli, d, d), 0);
    expect_one_line_error(CLI("%s tokenizer encode --tokenizer %s/t.json --input %s/nothing.txt", cli, d, d),
                          "nothing.txt", NULL);
    expect_one_line_error(CLI("%s tokenizer encode --tokenizer %s/t.json --text a --input %s/t.json", cli, d, d),
                          "not both", NULL);
    /* data into a path that is a file */
    expect_one_line_error(CLI("%s data --out %s/t.json --pretrain 10 --test 5", cli, d), "t.json", NULL);
    tu_rmdir(d);
}

static void out_of_range_values(void **state) {
    (void)state;
    const char *cli = tu_cli();
    char d[64];
    tu_tmpdir(d);
    assert_int_equal(tu_run(NULL, 0, "echo 'hello hello world world' > %s/c.txt", d), 0);
    expect_one_line_error(CLI("%s tokenizer train --input %s/c.txt --vocab-size 100 --out %s/t.json", cli, d, d),
                          "--vocab-size", "100");
    expect_one_line_error(CLI("%s tokenizer train --input %s/c.txt --vocab-size 99999999 --out %s/t.json", cli, d, d),
                          "--vocab-size", NULL);
    expect_one_line_error(CLI("%s tokenizer train --input %s/c.txt --vocab-size lots --out %s/t.json", cli, d, d),
                          "--vocab-size", "lots");
    assert_int_equal(CLI("%s tokenizer train --input %s/c.txt --vocab-size 270 --out %s/t.json", cli, d, d), 0);
    /* token ids: too large, negative, not a number */
    expect_one_line_error(CLI("%s tokenizer decode --tokenizer %s/t.json 72 999999", cli, d), "999999", "out of range");
    expect_one_line_error(CLI("%s tokenizer decode --tokenizer %s/t.json -1", cli, d), "-1", "out of range");
    expect_one_line_error(CLI("%s tokenizer decode --tokenizer %s/t.json 7x", cli, d), "7x", NULL);
    assert_int_equal(tu_run(NULL, 0, "echo '72 105 100000' > %s/ids.txt", d), 0);
    expect_one_line_error(CLI("%s tokenizer decode --tokenizer %s/t.json --input %s/ids.txt", cli, d, d), "100000",
                          "ids.txt");
    assert_int_equal(CLI("%s tokenizer decode --tokenizer %s/t.json 72 105", cli, d), 0);
    assert_string_equal(out, "Hi");
    /* data flags */
    expect_one_line_error(CLI("%s data --out %s/x --digits 0", cli, d), "--digits", NULL);
    expect_one_line_error(CLI("%s data --out %s/x --digits 19", cli, d), "--digits", NULL);
    expect_one_line_error(CLI("%s data --out %s/x --ops add,div", cli, d), "div", NULL);
    expect_one_line_error(CLI("%s data --out %s/x --min-digits 3 --digits 2", cli, d), "--min-digits", NULL);
    expect_one_line_error(CLI("%s data --out %s/x --rl -5", cli, d), "--rl", NULL);
    expect_one_line_error(CLI("%s data --out %s/x --tagged-weight -1", cli, d), "--tagged-weight", NULL);
    expect_one_line_error(CLI("%s data --out %s/x --min-digits 1 --ops add --pretrain 10", cli, d), "test problems", NULL);
    tu_rmdir(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(data_then_tokenizer_round_trip),
        cmocka_unit_test(unknown_flags_and_subcommands),
        cmocka_unit_test(missing_and_malformed_files),
        cmocka_unit_test(out_of_range_values),
    };
    return cmocka_run_group_tests_name("ch01_cli", tests, NULL, NULL);
}
