/**
 * @file cmd_logits.c
 * @brief `tinyseek logits`: the logits of one token sequence, as a .npy file,
 *        for comparison with other frameworks (np.load gives a (T, V) float32 array).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/bpe.h"
#include "io/npy.h"
#include "model/checkpoint.h"

int cmd_logits(int argc, char **argv) {
    const char *model_dir = NULL, *text = NULL, *out = NULL;
    int threads = 0;
    cli_opt opts[] = {
        {"model", OPT_STR, &model_dir, "checkpoint folder", 1, 0},
        {"text", OPT_STR, &text, "text to encode with the folder's tokenizer.json (instead of token ids)", 1, 0},
        {"out", OPT_STR, &out, "output .npy file, shape (T, vocab_size), float32", 1, 0},
        {"threads", OPT_INT, &threads, "threads (0 = default)", 0, 1024},
    };
    const char *pos[4096];
    int n_pos = 0;
    int rc = cli_parse("logits", "--model DIR --out F.npy (--text S | ID...)", argc, argv, opts,
                       (int)(sizeof opts / sizeof opts[0]), pos, 4096, &n_pos);
    if (rc) return rc == 1 ? 0 : rc;
    ts_set_num_threads(threads);
    if (!model_dir) return cli_error("logits: --model is required");
    if (!out) return cli_error("logits: --out is required");
    if (!text == !n_pos) return cli_error("logits: give either --text or token ids, not both or neither");
    ts_model m;
    if (ts_checkpoint_load(&m, model_dir, TS_MODEL_FROZEN)) return cli_lib_error();
    int *ids = NULL;
    size_t n = 0;
    if (text) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
        bpe_tokenizer tok;
        memset(&tok, 0, sizeof tok);
        if (bpe_load(&tok, path) || bpe_encode(&tok, text, strlen(text), &ids, &n)) rc = cli_lib_error();
        bpe_free(&tok);
    } else {
        ids = malloc((size_t)n_pos * sizeof(int));
        n = (size_t)n_pos;
        for (int i = 0; i < n_pos && !rc; i++) {
            char *end;
            long v = strtol(pos[i], &end, 10);
            if (*end || end == pos[i]) rc = cli_error("logits: '%s' is not a token id", pos[i]);
            else if (v < 0 || v >= m.cfg.vocab_size)
                rc = cli_error("logits: token id %ld is outside the vocabulary (0..%d)", v, m.cfg.vocab_size - 1);
            else ids[i] = (int)v;
        }
    }
    if (!rc && (n == 0 || (int)n > m.cfg.max_position_embeddings))
        rc = cli_error("logits: need 1..%d tokens, got %zu", m.cfg.max_position_embeddings, n);
    if (!rc && ts_model_reserve(&m, 1, (int)n)) rc = cli_lib_error();
    if (!rc && ts_model_forward_logits(&m, ids, 1, (int)n)) rc = cli_lib_error();
    if (!rc) {
        int shape[2] = {(int)n, m.cfg.vocab_size};
        if (ts_npy_save_f32(out, m.logits, 2, shape)) rc = cli_lib_error();
        else printf("logits: wrote (%zu, %d) float32 to %s\n", n, m.cfg.vocab_size, out);
    }
    free(ids);
    ts_model_free(&m);
    return rc;
}
