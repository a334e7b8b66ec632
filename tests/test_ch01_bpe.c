/* Chapter 1: the byte-level BPE tokenizer. */
#include "testutil.h"

#include <cJSON.h>

#include "data/bpe.h"
#include "data/tasks.h"

/* ---- a corpus: toy-task lines plus some English ----------------------------------- */

static const char *english =
    "The quick brown fox jumps over the lazy dog. It's a dog's life, isn't it? "
    "They're here; we've seen 'em, and we'll see them again. I'd say I'm sure.\n"
    "Tokenizers split text into pieces: bytes first, then merges of frequent pairs.\n\n"
    "  Indented line\twith a tab, and trailing spaces   \n"
    "Unicode: caf\xc3\xa9, na\xc3\xafve, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e, emoji \xf0\x9f\x98\x80!\n";

/* n task lines (prompt + response) followed by the English text a few times. */
static char *make_corpus(int n, size_t *len) {
    task_config c;
    task_config_default(&c);
    c.ops = TASK_OP_BIT(TASK_ADD) | TASK_OP_BIT(TASK_SUB) | TASK_OP_BIT(TASK_MUL);
    c.max_digits = 4;
    ts_rng rng;
    ts_rng_seed(&rng, 1, TS_STREAM_TEST);
    size_t cap = (size_t)n * (TASK_PROMPT_MAX + TASK_RESPONSE_MAX + 2) + 8 * strlen(english) + 1, at = 0;
    char *buf = malloc(cap);
    for (int i = 0; i < n; i++) {
        task_problem p;
        task_sample(&rng, &c, &p);
        task_text t;
        task_render(&p, &t);
        at += (size_t)sprintf(buf + at, "%s %s\n", t.prompt, t.response);
    }
    for (int k = 0; k < 8; k++) at += (size_t)sprintf(buf + at, "%s", english);
    *len = at;
    return buf;
}

typedef struct {
    char *corpus;
    size_t len;
    bpe_tokenizer tok;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->corpus = make_corpus(2000, &f->len);
    if (bpe_train(&f->tok, f->corpus, f->len, 400, NULL, NULL) != TS_OK) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    bpe_free(&f->tok);
    free(f->corpus);
    free(f);
    return 0;
}

static void assert_roundtrip(const bpe_tokenizer *tok, const void *text, size_t len) {
    int *ids;
    size_t n;
    assert_int_equal(bpe_encode(tok, text, len, &ids, &n), TS_OK);
    char *back;
    size_t back_len;
    assert_int_equal(bpe_decode(tok, ids, n, &back, &back_len), TS_OK);
    assert_int_equal(back_len, len);
    if (len) assert_memory_equal(back, text, len);
    assert_int_equal(back[back_len], '\0');
    for (size_t i = 0; i < n; i++) assert_true(ids[i] >= 0 && ids[i] < tok->vocab_size);
    free(ids);
    free(back);
}

/* ---- tests ----------------------------------------------------------------------- */

static void apply_merge_replaces_pairs_left_to_right(void **state) {
    (void)state;
    int a[] = {1, 2, 1, 2, 2, 1};
    int n = bpe_apply_merge(a, 6, 1, 2, 9);
    assert_int_equal(n, 4);
    int want_a[] = {9, 9, 2, 1};
    assert_memory_equal(a, want_a, sizeof want_a);
    int b[] = {5, 5, 5, 5, 5}; /* overlapping: left to right, no overlap */
    n = bpe_apply_merge(b, 5, 5, 5, 7);
    assert_int_equal(n, 3);
    int want_b[] = {7, 7, 5};
    assert_memory_equal(b, want_b, sizeof want_b);
    int c[] = {3, 4};
    assert_int_equal(bpe_apply_merge(c, 2, 4, 3, 8), 2); /* order matters */
    assert_int_equal(bpe_apply_merge(c, 1, 3, 4, 8), 1); /* a pair needs two tokens */
    assert_int_equal(bpe_apply_merge(c, 0, 3, 4, 8), 0);
}

/* Chunks of s as "[..][..]" for readable comparisons. */
static void chunks(const char *s, char *out) {
    size_t len = strlen(s), at = 0;
    out[0] = '\0';
    for (size_t pos = 0; pos < len;) {
        size_t end = bpe_next_chunk((const unsigned char *)s, len, pos);
        assert_true(end > pos && end <= len);
        at += (size_t)sprintf(out + at, "[%.*s]", (int)(end - pos), s + pos);
        pos = end;
    }
}

static void pretokenizer_follows_digits_and_gpt2_rules(void **state) {
    (void)state;
    struct {
        const char *in, *want;
    } cases[] = {
        {"What is 4821+379?", "[What][ is][ ][4][8][2][1][+][3][7][9][?]"},
        {"1+9=10 carry 1 ; 2", "[1][+][9][=][1][0][ carry][ ][1][ ;][ ][2]"},
        {"Hello  world", "[Hello][ ][ world]"},
        {"don't they're we'll I'd", "[don]['t][ they]['re][ we]['ll][ I]['d]"},
        {"a\n\nb", "[a][\n][\n][b]"},
        {"x   ", "[x][   ]"},
        {"  x", "[ ][ x]"},
        {"x=-1", "[x][=-][1]"},
        {"hi!! ?", "[hi][!!][ ?]"},
        {"abc123def", "[abc][1][2][3][def]"},
        {"caf\xc3\xa9 ok", "[caf\xc3\xa9][ ok]"},
        {"\t\tx", "[\t][\t][x]"},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        chunks(cases[i].in, out);
        assert_string_equal(out, cases[i].want);
    }
}

static void roundtrip_any_bytes(void **state) {
    fixture *f = *state;
    ts_rng rng;
    ts_rng_seed(&rng, 42, TS_STREAM_TEST);
    unsigned char all[512];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i, all[511 - i] = (unsigned char)i;
    assert_roundtrip(&f->tok, all, sizeof all);
    assert_roundtrip(&f->tok, "", 0);
    assert_roundtrip(&f->tok, "\0\0\0", 3);
    assert_roundtrip(&f->tok, "\xff\xfe\xc3", 3);               /* invalid UTF-8 */
    assert_roundtrip(&f->tok, "<think", 6);                     /* half a special token */
    assert_roundtrip(&f->tok, "<<think>>", 9);
    assert_roundtrip(&f->tok, f->corpus, f->len);
    static const char *const pieces[] = {"<think>", "</answer>", "<|bos|>", " carry ", "7", "\n", "'s", "  "};
    unsigned char buf[400];
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = ts_rng_below(&rng, 300), at = 0;
        while (at < len) {
            if (ts_rng_below(&rng, 8) == 0) { /* mix in special tokens and common pieces */
                const char *p = pieces[ts_rng_below(&rng, sizeof pieces / sizeof pieces[0])];
                size_t n = strlen(p);
                if (at + n > sizeof buf) break;
                memcpy(buf + at, p, n);
                at += n;
            } else {
                buf[at++] = ts_rng_below(&rng, 2) ? (unsigned char)ts_rng_below(&rng, 256)
                                                  : (unsigned char)(" aeiouts0123<>/|"[ts_rng_below(&rng, 16)]);
            }
        }
        assert_roundtrip(&f->tok, buf, at);
    }
}

static int has_digit(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= '0' && s[i] <= '9') return 1;
    return 0;
}

static void digits_are_always_single_tokens(void **state) {
    fixture *f = *state;
    /* Even a corpus that is nothing but numbers learns no merge with a digit. */
    const char *numbers = "12345 12345 12345 100 100 100 2024-01-01 2024-01-01 3.14159 3.14159 x1 x1 x1";
    bpe_tokenizer num;
    assert_int_equal(bpe_train(&num, numbers, strlen(numbers), 300, NULL, NULL), TS_OK);
    const bpe_tokenizer *toks[2] = {&f->tok, &num};
    for (int k = 0; k < 2; k++) {
        const bpe_tokenizer *t = toks[k];
        assert_true(t->n_merges > 0);
        for (int id = 0; id < t->vocab_size; id++) {
            size_t n;
            const unsigned char *s = bpe_token_bytes(t, id, &n);
            if (has_digit(s, n)) assert_int_equal(n, 1);
        }
        for (int r = 0; r < t->n_merges; r++) {
            size_t nl, nr;
            const unsigned char *l = bpe_token_bytes(t, t->merges[r].left, &nl);
            const unsigned char *rt = bpe_token_bytes(t, t->merges[r].right, &nr);
            assert_false(has_digit(l, nl) || has_digit(rt, nr));
        }
        int *ids;
        size_t n;
        assert_int_equal(bpe_encode(t, "4821+379=5200", 13, &ids, &n), TS_OK);
        assert_int_equal(n, 13);
        assert_int_equal(ids[0], t->byte_id['4']);
        assert_int_equal(ids[12], t->byte_id['0']);
        free(ids);
    }
    bpe_free(&num);
}

static void special_tokens_encode_to_their_ids(void **state) {
    fixture *f = *state;
    const bpe_tokenizer *t = &f->tok;
    /* Specials come right after the merges, in enum order. */
    for (int s = 0; s < BPE_N_SPECIAL; s++) {
        assert_int_equal(bpe_special_id(t, (bpe_special)s), t->vocab_size - BPE_N_SPECIAL + s);
        int *ids;
        size_t n;
        const char *text = bpe_special_text((bpe_special)s);
        assert_int_equal(bpe_encode(t, text, strlen(text), &ids, &n), TS_OK);
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], bpe_special_id(t, (bpe_special)s));
        free(ids);
    }
    assert_string_equal(bpe_special_text(BPE_THINK), "<think>");
    assert_string_equal(bpe_special_text(BPE_ASSISTANT), "<|assistant|>");
    const char *text = "<|bos|><|user|>What is 1+2?<|assistant|><think>1+2=3 carry 0</think><answer>3</answer><|eos|>";
    int *ids;
    size_t n;
    assert_int_equal(bpe_encode(t, text, strlen(text), &ids, &n), TS_OK);
    assert_int_equal(ids[0], bpe_special_id(t, BPE_BOS));
    assert_int_equal(ids[1], bpe_special_id(t, BPE_USER));
    assert_int_equal(ids[n - 1], bpe_special_id(t, BPE_EOS));
    assert_int_equal(ids[n - 2], bpe_special_id(t, BPE_ANSWER_END));
    assert_int_equal(ids[n - 3], t->byte_id['3']);
    assert_int_equal(ids[n - 4], bpe_special_id(t, BPE_ANSWER));
    int specials = 0;
    for (size_t i = 0; i < n; i++) specials += t->is_special[ids[i]];
    assert_int_equal(specials, 8);
    free(ids);
    /* Not a special token: a near miss is ordinary bytes. */
    assert_int_equal(bpe_encode(t, "<think >", 8, &ids, &n), TS_OK);
    for (size_t i = 0; i < n; i++) assert_false(t->is_special[ids[i]]);
    free(ids);
}

static char *json_of(const bpe_tokenizer *t) {
    char *json;
    assert_int_equal(bpe_to_json(t, &json), TS_OK);
    return json;
}

static void training_is_deterministic(void **state) {
    fixture *f = *state;
    char *ref = json_of(&f->tok);
    int saved = ts_num_threads();
    for (int threads = 1; threads <= 2; threads++) {
        ts_set_num_threads(threads);
        for (int rep = 0; rep < 2; rep++) {
            bpe_tokenizer t;
            assert_int_equal(bpe_train(&t, f->corpus, f->len, 400, NULL, NULL), TS_OK);
            char *json = json_of(&t);
            assert_string_equal(json, ref);
            assert_memory_equal(t.merge_counts, f->tok.merge_counts, (size_t)t.n_merges * sizeof(int64_t));
            free(json);
            bpe_free(&t);
        }
    }
    ts_set_num_threads(saved);
    /* Pair counts never increase from one merge to the next (most frequent first). */
    for (int r = 1; r < f->tok.n_merges; r++) assert_true(f->tok.merge_counts[r] <= f->tok.merge_counts[r - 1]);
    free(ref);
}

/* Big enough (over 64 KiB of unique chunks) that the parallel path runs. */
static void threads_do_not_change_a_large_training_run(void **state) {
    (void)state;
    ts_rng rng;
    ts_rng_seed(&rng, 8, TS_STREAM_TEST);
    size_t cap = 400000, at = 0;
    char *text = malloc(cap);
    while (at < cap - 16) {
        int n = 3 + (int)ts_rng_below(&rng, 8);
        text[at++] = ' ';
        for (int i = 0; i < n; i++) text[at++] = (char)('a' + ts_rng_below(&rng, 1 + ts_rng_below(&rng, 26)));
    }
    char *ref = NULL;
    int saved = ts_num_threads();
    for (int threads = 1; threads <= 2; threads++) {
        ts_set_num_threads(threads);
        bpe_tokenizer t;
        assert_int_equal(bpe_train(&t, text, at, 1000, NULL, NULL), TS_OK);
        assert_int_equal(t.vocab_size, 1000);
        char *json = json_of(&t);
        if (ref) assert_string_equal(json, ref);
        free(ref);
        ref = json;
        bpe_free(&t);
    }
    ts_set_num_threads(saved);
    free(ref);
    free(text);
}

static void save_load_gives_the_same_tokenizer(void **state) {
    fixture *f = *state;
    char dir[64], path[128];
    tu_tmpdir(dir);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    assert_int_equal(bpe_save(&f->tok, path), TS_OK);
    bpe_tokenizer t;
    assert_int_equal(bpe_load(&t, path), TS_OK);
    assert_int_equal(t.vocab_size, f->tok.vocab_size);
    assert_int_equal(t.n_merges, f->tok.n_merges);
    assert_null(t.merge_counts);
    for (int s = 0; s < BPE_N_SPECIAL; s++)
        assert_int_equal(bpe_special_id(&t, (bpe_special)s), bpe_special_id(&f->tok, (bpe_special)s));
    int *a, *b;
    size_t na, nb;
    assert_int_equal(bpe_encode(&f->tok, f->corpus, f->len, &a, &na), TS_OK);
    assert_int_equal(bpe_encode(&t, f->corpus, f->len, &b, &nb), TS_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    free(a);
    free(b);
    /* Saving what was loaded gives the same bytes. */
    char *j1 = json_of(&f->tok), *j2 = json_of(&t);
    assert_string_equal(j1, j2);
    free(j1);
    free(j2);
    bpe_free(&t);
    tu_rmdir(dir);
}

static void tokenizer_json_is_hugging_face_shaped(void **state) {
    fixture *f = *state;
    char *json = json_of(&f->tok);
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(model, "type")->valuestring, "BPE");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "version")->valuestring, "1.0");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    assert_int_equal(cJSON_GetArraySize(vocab), f->tok.vocab_size - BPE_N_SPECIAL);
    assert_int_equal(cJSON_GetArraySize(merges), f->tok.n_merges);
    assert_int_equal(cJSON_GetArraySize(added), BPE_N_SPECIAL);
    /* GPT-2 byte-level spelling: space is "Ġ", newline "Ċ", '!' itself. */
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(vocab, "\xc4\xa0")->valueint, ' ');
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(vocab, "\xc4\x8a")->valueint, '\n');
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(vocab, "!")->valueint, '!');
    assert_non_null(cJSON_GetObjectItemCaseSensitive(vocab, "\xc4\xa0" "carry")); /* " carry" was learned */
    for (const cJSON *m = merges->child; m; m = m->next) {
        assert_true(cJSON_IsString(m));
        const char *sp = strchr(m->valuestring, ' ');
        assert_non_null(sp);
        assert_null(strchr(sp + 1, ' '));
    }
    const cJSON *a0 = cJSON_GetArrayItem(added, BPE_THINK);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(a0, "content")->valuestring, "<think>");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(a0, "id")->valueint, bpe_special_id(&f->tok, BPE_THINK));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a0, "special")));
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(pre, "type")->valuestring, "Sequence");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 0), "type")->valuestring, "Digits");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 0), "individual_digits")));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 1), "type")->valuestring, "ByteLevel");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "decoder"), "type")->valuestring,
                        "ByteLevel");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(root, "normalizer")));
    cJSON_Delete(root);
    free(json);
}

static void merges_reduce_token_count(void **state) {
    fixture *f = *state;
    size_t prev = f->len + 1;
    for (int vocab = 265; vocab <= 400; vocab += 45) {
        bpe_tokenizer t;
        assert_int_equal(bpe_train(&t, f->corpus, f->len, vocab, NULL, NULL), TS_OK);
        assert_true(t.vocab_size <= vocab);
        int *ids;
        size_t n;
        assert_int_equal(bpe_encode(&t, f->corpus, f->len, &ids, &n), TS_OK);
        if (vocab == 265) assert_int_equal(t.n_merges, 0);
        assert_true(n < prev); /* each larger vocabulary: strictly fewer tokens */
        prev = n;
        free(ids);
        bpe_free(&t);
    }
    assert_true((double)f->len / (double)prev > 1.8);
    /* Out of range vocabulary sizes are refused. */
    bpe_tokenizer t;
    assert_int_equal(bpe_train(&t, f->corpus, f->len, 264, NULL, NULL), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "vocab size"));
    assert_int_equal(bpe_train(&t, f->corpus, f->len, BPE_MAX_VOCAB + 1, NULL, NULL), TS_ERR_RANGE);
}

static void merge_log_has_one_row_per_merge(void **state) {
    fixture *f = *state;
    char dir[64], path[128];
    tu_tmpdir(dir);
    snprintf(path, sizeof path, "%s/merges.csv", dir);
    assert_int_equal(bpe_write_merge_log(&f->tok, path), TS_OK);
    FILE *fp = fopen(path, "r");
    char line[512];
    assert_non_null(fgets(line, sizeof line, fp));
    assert_string_equal(line, "merge,left,right,count,token_id,token\n");
    int rows = 0;
    while (fgets(line, sizeof line, fp)) {
        int r, l, rt, id;
        long long count;
        assert_int_equal(sscanf(line, "%d,%d,%d,%lld,%d,\"", &r, &l, &rt, &count, &id), 5);
        assert_int_equal(r, rows);
        assert_int_equal(l, f->tok.merges[r].left);
        assert_int_equal(id, f->tok.merges[r].id);
        assert_int_equal(count, f->tok.merge_counts[r]);
        rows++;
    }
    fclose(fp);
    assert_int_equal(rows, f->tok.n_merges);
    /* A loaded tokenizer has no counts to log. */
    bpe_tokenizer t = {0};
    assert_int_equal(bpe_write_merge_log(&t, path), TS_ERR_ARG);
    tu_rmdir(dir);
}

/* A small alphabet and many merges: merges that spell one string two ways must still save and load. */
static void many_merges_on_a_small_alphabet(void **state) {
    (void)state;
    ts_rng rng;
    ts_rng_seed(&rng, 5, TS_STREAM_TEST);
    char text[20000];
    size_t at = 0;
    while (at < sizeof text - 20) {
        int n = 1 + (int)ts_rng_below(&rng, 9);
        if (at) text[at++] = ' ';
        for (int i = 0; i < n; i++) text[at++] = "abc"[ts_rng_below(&rng, 3)];
    }
    bpe_tokenizer t, u;
    assert_int_equal(bpe_train(&t, text, at, 2000, NULL, NULL), TS_OK);
    assert_true(t.n_merges > 200);
    char *json = json_of(&t);
    assert_int_equal(bpe_from_json(&u, json, strlen(json), "mem"), TS_OK);
    int *a, *b;
    size_t na, nb;
    assert_int_equal(bpe_encode(&t, text, at, &a, &na), TS_OK);
    assert_int_equal(bpe_encode(&u, text, at, &b, &nb), TS_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    assert_roundtrip(&u, text, at);
    free(a);
    free(b);
    free(json);
    bpe_free(&t);
    bpe_free(&u);
    /* A hand-written file where "abc" is reached as ab+c and as a+bc. */
    bpe_tokenizer h;
    bpe_tokenizer base;
    assert_int_equal(bpe_train(&base, "", 0, 265, NULL, NULL), TS_OK);
    char *bj = json_of(&base);
    cJSON *root = cJSON_Parse(bj);
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    cJSON_AddNumberToObject(vocab, "ab", 256);
    cJSON_AddNumberToObject(vocab, "bc", 257);
    cJSON_AddNumberToObject(vocab, "abc", 258);
    for (cJSON *a_tok = cJSON_GetObjectItemCaseSensitive(root, "added_tokens")->child; a_tok; a_tok = a_tok->next)
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(a_tok, "id"),
                             cJSON_GetObjectItemCaseSensitive(a_tok, "id")->valueint + 3);
    const char *ms[] = {"a b", "b c", "ab c", "a bc"};
    for (int i = 0; i < 4; i++) cJSON_AddItemToArray(merges, cJSON_CreateString(ms[i]));
    char *hj = cJSON_Print(root);
    assert_int_equal(bpe_from_json(&h, hj, strlen(hj), "hand.json"), TS_OK);
    int *ids;
    size_t n;
    assert_int_equal(bpe_encode(&h, "abc bca", 7, &ids, &n), TS_OK);
    assert_int_equal(n, 4); /* [abc][ ][bc][a] */
    assert_int_equal(ids[0], 258);
    assert_int_equal(ids[2], 257);
    free(ids);
    bpe_free(&h);
    cJSON_free(hj);
    cJSON_Delete(root);
    free(bj);
    bpe_free(&base);
}

/* Write text to dir/name, try to load it, and expect TS_ERR_FORMAT naming the file and @p what. */
static void expect_bad(const char *dir, const char *name, const char *text, const char *what) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    fwrite(text, 1, strlen(text), fp);
    fclose(fp);
    bpe_tokenizer t;
    ts_clear_error();
    ts_status st = bpe_load(&t, path);
    if (st != TS_ERR_FORMAT) fail_msg("%s: expected a format error, got status %d (%s)", name, st, ts_last_error());
    const char *msg = ts_last_error();
    if (!strstr(msg, path) || !strstr(msg, what)) fail_msg("%s: message '%s' should name '%s'", name, msg, what);
    assert_null(strchr(msg, '\n')); /* one line */
    assert_int_equal(t.vocab_size, 0);
}

/* Replace the first occurrence of from with to. */
static char *replace(const char *s, const char *from, const char *to) {
    const char *p = strstr(s, from);
    assert_non_null(p);
    size_t n = strlen(s) - strlen(from) + strlen(to);
    char *out = malloc(n + 1);
    sprintf(out, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    return out;
}

static void malformed_files_are_reported(void **state) {
    fixture *f = *state;
    char dir[64];
    tu_tmpdir(dir);
    char *good = json_of(&f->tok);
    char *truncated = strdup(good);
    truncated[strlen(good) / 2] = '\0';
    expect_bad(dir, "truncated.json", truncated, "not valid JSON");
    expect_bad(dir, "empty.json", "", "not valid JSON");
    expect_bad(dir, "array.json", "[1, 2]", "top level");
    expect_bad(dir, "nomodel.json", "{\"version\": \"1.0\"}", "model");
    expect_bad(dir, "modelstr.json", "{\"model\": \"BPE\"}", "model");
    char *s;
    s = replace(good, "\"type\":\t\"BPE\"", "\"type\":\t\"WordPiece\"");
    expect_bad(dir, "wordpiece.json", s, "model.type");
    free(s);
    s = replace(good, "\"vocab\":\t{", "\"vocab\":\t[], \"x\": {");
    expect_bad(dir, "vocabarray.json", s, "model.vocab");
    free(s);
    s = replace(good, "\"!\":\t33", "\"!\":\t\"33\"");
    expect_bad(dir, "vocabstring.json", s, "model.vocab[\"!\"]");
    free(s);
    s = replace(good, "\"!\":\t33", "\"!\":\t34");
    expect_bad(dir, "dupid.json", s, "id 34 is used twice");
    free(s);
    s = replace(good, "\"!\":\t33", "\"!!!x\":\t33");
    expect_bad(dir, "nobyte.json", s, "byte token for 0x21");
    free(s);
    s = replace(good, "\"merges\":\t[\"", "\"merges\":\t[\"zzzq q\", \"");
    expect_bad(dir, "unknownmerge.json", s, "model.merges[0] names unknown token \"zzzq\"");
    free(s);
    s = replace(good, "\"merges\":\t[\"", "\"merges\":\t[\"nospace\", \"");
    expect_bad(dir, "onetoken.json", s, "model.merges[0]");
    free(s);
    s = replace(good, "\"merges\":\t[\"", "\"merges\":\t[\"q z\", \"");
    expect_bad(dir, "notinvocab.json", s, "merged token \"qz\"");
    free(s);
    s = replace(good, "\"merges\":\t[", "\"merges\":\t[7, ");
    expect_bad(dir, "mergenumber.json", s, "model.merges[0]");
    free(s);
    s = replace(good, "\"content\":\t\"<think>\"", "\"content\":\t\"<thonk>\"");
    expect_bad(dir, "nothink.json", s, "\"<think>\" is missing");
    free(s);
    s = replace(good, "\"content\":\t\"<think>\"", "\"content\":\t5");
    expect_bad(dir, "contentnum.json", s, "added_tokens[5].content");
    free(s);
    s = replace(good, "\"individual_digits\":\ttrue", "\"individual_digits\":\tfalse");
    expect_bad(dir, "digits.json", s, "pre_tokenizer");
    free(s);
    s = replace(good, "\"normalizer\":\tnull", "\"normalizer\":\t{\"type\": \"NFC\"}");
    expect_bad(dir, "normalizer.json", s, "normalizer");
    free(s);
    s = replace(good, "\"merges\":\t[", "\"merges\":\t{}, \"m\": [");
    expect_bad(dir, "mergesobject.json", s, "model.merges");
    free(s);
    /* Good text still loads (the replacements above were the only problem). */
    bpe_tokenizer t;
    assert_int_equal(bpe_from_json(&t, good, strlen(good), "good"), TS_OK);
    bpe_free(&t);
    /* A missing file is an IO error naming it. */
    char missing[128];
    snprintf(missing, sizeof missing, "%s/nope.json", dir);
    assert_int_equal(bpe_load(&t, missing), TS_ERR_IO);
    assert_non_null(strstr(ts_last_error(), "nope.json"));
    free(truncated);
    free(good);
    tu_rmdir(dir);
}

/* Random damage to a good file (flipped bytes, cuts, spliced copies): every
 * version either loads or fails with a one-line format error; none crashes
 * (run under ASan this also checks memory). */
static void damaged_files_never_crash(void **state) {
    fixture *f = *state;
    char *good = json_of(&f->tok);
    size_t n = strlen(good);
    char *buf = malloc(2 * n + 1);
    ts_rng rng;
    ts_rng_seed(&rng, 77, TS_STREAM_TEST);
    int loaded = 0, refused = 0;
    for (int iter = 0; iter < 300; iter++) {
        memcpy(buf, good, n + 1);
        size_t len = n;
        int kind = (int)ts_rng_below(&rng, 3);
        if (kind == 0) { /* flip a few bytes */
            for (int k = 0; k < 1 + (int)ts_rng_below(&rng, 4); k++)
                buf[ts_rng_below(&rng, len)] = (char)" \"{}[]:,0123456789abzĠ\\"[ts_rng_below(&rng, 24)];
        } else if (kind == 1) { /* cut */
            len = ts_rng_below(&rng, n);
        } else { /* copy a slice of the file over another place */
            size_t from = ts_rng_below(&rng, n), to = ts_rng_below(&rng, n), m = ts_rng_below(&rng, 64);
            if (from + m > n) m = n - from;
            memcpy(buf + to, good + from, m);
            len = to + m > n ? to + m : n;
        }
        bpe_tokenizer t;
        ts_status st = bpe_from_json(&t, buf, len, "damaged.json");
        if (st == TS_OK) {
            loaded++;
            assert_roundtrip(&t, "What is 12+7? <think>x</think>", 30);
            bpe_free(&t);
        } else {
            refused++;
            assert_int_equal(st, TS_ERR_FORMAT);
            assert_non_null(strstr(ts_last_error(), "damaged.json"));
            assert_null(strchr(ts_last_error(), '\n'));
        }
    }
    assert_true(refused > 100);
    (void)loaded;
    free(buf);
    free(good);
}

static void decode_rejects_out_of_range_ids(void **state) {
    fixture *f = *state;
    int ids[] = {72, f->tok.vocab_size};
    char *text;
    size_t len;
    assert_int_equal(bpe_decode(&f->tok, ids, 2, &text, &len), TS_ERR_RANGE);
    assert_non_null(strstr(ts_last_error(), "out of range"));
    int neg[] = {-1};
    assert_int_equal(bpe_decode(&f->tok, neg, 1, &text, &len), TS_ERR_RANGE);
    assert_null(bpe_token_bytes(&f->tok, f->tok.vocab_size, NULL));
    assert_null(bpe_token_bytes(&f->tok, -1, NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(apply_merge_replaces_pairs_left_to_right),
        cmocka_unit_test(pretokenizer_follows_digits_and_gpt2_rules),
        cmocka_unit_test_setup_teardown(roundtrip_any_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(digits_are_always_single_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(special_tokens_encode_to_their_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(training_is_deterministic, setup, teardown),
        cmocka_unit_test(threads_do_not_change_a_large_training_run),
        cmocka_unit_test_setup_teardown(save_load_gives_the_same_tokenizer, setup, teardown),
        cmocka_unit_test_setup_teardown(tokenizer_json_is_hugging_face_shaped, setup, teardown),
        cmocka_unit_test_setup_teardown(merges_reduce_token_count, setup, teardown),
        cmocka_unit_test_setup_teardown(merge_log_has_one_row_per_merge, setup, teardown),
        cmocka_unit_test(many_merges_on_a_small_alphabet),
        cmocka_unit_test_setup_teardown(malformed_files_are_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(damaged_files_never_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(decode_rejects_out_of_range_ids, setup, teardown),
    };
    return cmocka_run_group_tests_name("ch01_bpe", tests, NULL, NULL);
}
