/**
 * @file cmd_tokenizer.c
 * @brief `tinyseek tokenizer train|encode|decode|show`: the byte-level BPE (chapter 1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/common.h"
#include "data/bpe.h"
#include "io/fileio.h"

#define N_OPTS(o) ((int)(sizeof(o) / sizeof((o)[0])))

/* ---- train ------------------------------------------------------------------ */

typedef struct {
    double start, last;
    int printed;
} progress_state;

/* Progress only for long runs, and only for a person watching a terminal. */
static void train_progress(int done, int max, void *ctx) {
    progress_state *p = ctx;
    double now = ts_now();
    if (now - p->last < 1.0 || !isatty(fileno(stderr))) return;
    p->last = now;
    p->printed = 1;
    fprintf(stderr, "\rtokenizer train: %d of at most %d merges (%.0f s)", done, max, now - p->start);
    fflush(stderr);
}

static int tok_train(int argc, char **argv) {
    const char *input = NULL, *out = NULL, *log = NULL;
    int vocab_size = 512, threads = 0;
    const cli_opt opts[] = {
        {"input", OPT_STR, &input, "text file to learn merges on", 1, 0},
        {"vocab-size", OPT_INT, &vocab_size, "tokens in all: 256 bytes + merges + 9 special", 256 + BPE_N_SPECIAL,
         BPE_MAX_VOCAB},
        {"out", OPT_STR, &out, "where to write tokenizer.json", 1, 0},
        {"log", OPT_STR, &log, "also write one CSV row per merge (merge,left,right,count,token_id,token)", 1, 0},
        {"threads", OPT_INT, &threads, "threads (0 = OMP_NUM_THREADS or all cores)", 0, 1024},
    };
    int rc = cli_parse("tokenizer train", "--input FILE --vocab-size N --out tokenizer.json [--log merges.csv]", argc,
                       argv, opts, N_OPTS(opts), NULL, 0, NULL);
    if (rc == 1) return 0;
    if (rc) return rc;
    if (!input) return cli_error("tokenizer train: --input FILE is required (the text to learn merges on)");
    if (!out) return cli_error("tokenizer train: --out FILE is required (where to write tokenizer.json)");
    ts_set_num_threads(threads);
    char *text;
    size_t len;
    if (ts_read_file(input, &text, &len)) return cli_error("tokenizer train: %s", ts_last_error());
    bpe_tokenizer tok;
    progress_state ps = {0};
    ps.start = ps.last = ts_now();
    ts_status st = bpe_train(&tok, text, len, vocab_size, train_progress, &ps);
    double seconds = ts_now() - ps.start;
    if (ps.printed) fputc('\n', stderr);
    if (!st) st = bpe_save(&tok, out);
    if (!st && log) st = bpe_write_merge_log(&tok, log);
    int *ids = NULL;
    size_t n_ids = 0;
    if (!st) st = bpe_encode(&tok, text, len, &ids, &n_ids);
    free(text);
    free(ids);
    if (st) {
        bpe_free(&tok);
        return cli_error("tokenizer train: %s", ts_last_error());
    }
    printf("tokenizer train: %d tokens (256 bytes + %d merges + %d special) from %zu bytes in %.2f s; "
           "%.2f bytes/token on the input -> %s\n",
           tok.vocab_size, tok.n_merges, tok.n_added, len, seconds, n_ids ? (double)len / (double)n_ids : 0.0, out);
    bpe_free(&tok);
    return 0;
}

/* ---- shared by encode / decode / show ------------------------------------------ */

static int load_tokenizer(const char *cmd, const char *path, bpe_tokenizer *tok) {
    if (!path) return cli_error("tokenizer %s: --tokenizer FILE is required (a tokenizer.json)", cmd);
    if (bpe_load(tok, path)) return cli_error("tokenizer %s: %s", cmd, ts_last_error());
    return 0;
}

/* The text to work on: --text S or the bytes of --input FILE (exactly one). */
static int get_text(const char *cmd, const char *text, const char *input, int required, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    if (text && input) return cli_error("tokenizer %s: give --text or --input, not both", cmd);
    if (input) {
        if (ts_read_file(input, data, len)) return cli_error("tokenizer %s: %s", cmd, ts_last_error());
        return 0;
    }
    if (text) {
        *len = strlen(text);
        *data = malloc(*len + 1);
        if (!*data) return cli_error("tokenizer %s: out of memory", cmd);
        memcpy(*data, text, *len + 1);
        return 0;
    }
    if (required) return cli_error("tokenizer %s: give the text with --text S or --input FILE", cmd);
    return 0;
}

static int encode_text(const char *cmd, const bpe_tokenizer *tok, const char *data, size_t len, int **ids, size_t *n) {
    if (bpe_encode(tok, data, len, ids, n)) return cli_error("tokenizer %s: %s", cmd, ts_last_error());
    return 0;
}

/* ---- encode ------------------------------------------------------------------- */

static int tok_encode(int argc, char **argv) {
    const char *path = NULL, *text = NULL, *input = NULL;
    const cli_opt opts[] = {
        {"tokenizer", OPT_STR, &path, "tokenizer.json to use", 1, 0},
        {"text", OPT_STR, &text, "text to encode", 1, 0},
        {"input", OPT_STR, &input, "file whose bytes to encode", 1, 0},
    };
    int rc = cli_parse("tokenizer encode", "--tokenizer FILE (--text S | --input FILE)", argc, argv, opts,
                       N_OPTS(opts), NULL, 0, NULL);
    if (rc == 1) return 0;
    if (rc) return rc;
    bpe_tokenizer tok;
    if ((rc = load_tokenizer("encode", path, &tok))) return rc;
    char *data;
    size_t len, n;
    int *ids = NULL;
    if (!(rc = get_text("encode", text, input, 1, &data, &len))) rc = encode_text("encode", &tok, data, len, &ids, &n);
    if (!rc) {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
    }
    free(ids);
    free(data);
    bpe_free(&tok);
    return rc;
}

/* ---- decode ------------------------------------------------------------------- */

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Parse one id; whitespace-separated lists come from --input. */
static int parse_id(const char *s, size_t n, const bpe_tokenizer *tok, const char *path, int *id) {
    char buf[32];
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno || end == buf || *end)
        return cli_error("tokenizer decode: '%s' is not a token id (expected an integer from 0 to %d)", buf,
                         tok->vocab_size - 1);
    if (v < 0 || v >= tok->vocab_size)
        return cli_error("tokenizer decode: token id %ld is out of range (expected 0 to %d for %s)", v,
                         tok->vocab_size - 1, path);
    *id = (int)v;
    return 0;
}

static int tok_decode(int argc, char **argv) {
    const char *path = NULL, *input = NULL;
    const cli_opt opts[] = {
        {"tokenizer", OPT_STR, &path, "tokenizer.json to use", 1, 0},
        {"input", OPT_STR, &input, "file of whitespace-separated ids (instead of ID arguments)", 1, 0},
    };
    const char **pos = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *pos);
    if (!pos) return cli_error("tokenizer decode: out of memory");
    int n_pos = 0;
    int rc = cli_parse("tokenizer decode", "--tokenizer FILE ID... (prints the bytes exactly, no newline added)", argc,
                       argv, opts, N_OPTS(opts), pos, argc, &n_pos);
    if (rc) {
        free(pos);
        return rc == 1 ? 0 : rc;
    }
    bpe_tokenizer tok;
    if ((rc = load_tokenizer("decode", path, &tok))) {
        free(pos);
        return rc;
    }
    char *list = NULL;
    size_t list_len = 0;
    if (input && n_pos) rc = cli_error("tokenizer decode: give ids as arguments or with --input, not both");
    else if (input && ts_read_file(input, &list, &list_len)) rc = cli_error("tokenizer decode: %s", ts_last_error());
    size_t cap = (size_t)n_pos + list_len / 2 + 1, n = 0;
    int *ids = rc ? NULL : malloc(cap * sizeof *ids);
    if (!rc && !ids) rc = cli_error("tokenizer decode: out of memory");
    for (int i = 0; !rc && i < n_pos; i++) rc = parse_id(pos[i], strlen(pos[i]), &tok, path, &ids[n++]);
    for (size_t i = 0; !rc && i < list_len;) {
        while (i < list_len && is_blank(list[i])) i++;
        size_t j = i;
        while (j < list_len && !is_blank(list[j])) j++;
        if (j > i) rc = parse_id(list + i, j - i, &tok, input, &ids[n++]);
        i = j;
    }
    char *text = NULL;
    size_t len = 0;
    if (!rc && bpe_decode(&tok, ids, n, &text, &len)) rc = cli_error("tokenizer decode: %s", ts_last_error());
    if (!rc && fwrite(text, 1, len, stdout) != len) rc = cli_error("tokenizer decode: cannot write the output");
    free(text);
    free(ids);
    free(list);
    free(pos);
    bpe_free(&tok);
    return rc;
}

/* ---- show --------------------------------------------------------------------- */

static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return 0;
        i += k;
    }
    return 1;
}

/* A token as a bracketed piece: [ is], [\n], [\xff]; UTF-8 shown as is when the token holds whole characters. */
static void print_piece(const bpe_tokenizer *tok, int id) {
    size_t n;
    const unsigned char *s = bpe_token_bytes(tok, id, &n);
    int utf8 = valid_utf8(s, n);
    putchar('[');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\\') fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar(']');
}

static int tok_show(int argc, char **argv) {
    const char *path = NULL, *text = NULL, *input = NULL;
    int ids_too = 0;
    const cli_opt opts[] = {
        {"tokenizer", OPT_STR, &path, "tokenizer.json to use", 1, 0},
        {"text", OPT_STR, &text, "text to show as tokens (without it: the learned tokens)", 1, 0},
        {"input", OPT_STR, &input, "file to show as tokens", 1, 0},
        {"ids", OPT_FLAG, &ids_too, "also print the ids under the pieces", 1, 0},
    };
    int rc = cli_parse("tokenizer show", "--tokenizer FILE [--text S | --input FILE]", argc, argv, opts, N_OPTS(opts),
                       NULL, 0, NULL);
    if (rc == 1) return 0;
    if (rc) return rc;
    bpe_tokenizer tok;
    if ((rc = load_tokenizer("show", path, &tok))) return rc;
    char *data;
    size_t len;
    if ((rc = get_text("show", text, input, 0, &data, &len))) {
        bpe_free(&tok);
        return rc;
    }
    if (data) {
        int *ids = NULL;
        size_t n = 0;
        if (!(rc = encode_text("show", &tok, data, len, &ids, &n))) {
            for (size_t i = 0; i < n; i++) print_piece(&tok, ids[i]);
            printf("\n%zu tokens for %zu bytes\n", n, len);
            if (ids_too) {
                for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
                putchar('\n');
            }
        }
        free(ids);
        free(data);
    } else {
        printf("%s: %d tokens: 256 bytes, %d merges, %d special\n", path, tok.vocab_size, tok.n_merges, tok.n_added);
        for (int r = 0; r < tok.n_merges; r++) {
            const bpe_merge *m = &tok.merges[r];
            printf("merge %d: ", r);
            print_piece(&tok, m->left);
            putchar('+');
            print_piece(&tok, m->right);
            printf(" -> %d ", m->id);
            print_piece(&tok, m->id);
            putchar('\n');
        }
        for (int k = 0; k < tok.n_added; k++) {
            printf("special %d ", tok.added_ids[k]);
            print_piece(&tok, tok.added_ids[k]);
            putchar('\n');
        }
    }
    bpe_free(&tok);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------ */

int cmd_tokenizer(int argc, char **argv) {
    static const char *usage = "usage: tinyseek tokenizer train|encode|decode|show [flags]   "
                               "(tinyseek tokenizer SUB --help for its flags)";
    if (argc < 2) return cli_error("tokenizer: expected a subcommand: train, encode, decode or show");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        puts(usage);
        return 0;
    }
    if (!strcmp(sub, "train")) return tok_train(argc - 1, argv + 1);
    if (!strcmp(sub, "encode")) return tok_encode(argc - 1, argv + 1);
    if (!strcmp(sub, "decode")) return tok_decode(argc - 1, argv + 1);
    if (!strcmp(sub, "show")) return tok_show(argc - 1, argv + 1);
    return cli_error("tokenizer: unknown subcommand '%s' (expected train, encode, decode or show)", sub);
}
