/**
 * @file fuzz_tokenizer.c
 * @brief tokenizer.json loader. Oracles: a refused file is one line naming it
 *        and leaves the tokenizer empty; an accepted one writes back to JSON
 *        that loads to the same JSON again, and decode(encode(x)) == x for
 *        any bytes x (the input itself).
 */
#include "data/bpe.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bpe_tokenizer tok;
    memset(&tok, 0x5a, sizeof tok);
    ts_clear_error();
    if (bpe_from_json(&tok, (const char *)data, size, "fuzz/tokenizer.json") != TS_OK) {
        fuzz_check_error("fuzz/tokenizer.json");
        FUZZ_CHECK(fuzz_all_bytes(&tok, sizeof tok, 0), "a refused tokenizer is not left empty");
        return 0;
    }
    char *j1 = NULL, *j2 = NULL;
    FUZZ_CHECK(bpe_to_json(&tok, &j1) == TS_OK, "an accepted tokenizer does not write: %s", ts_last_error());
    bpe_tokenizer back;
    FUZZ_CHECK(bpe_from_json(&back, j1, strlen(j1), "again") == TS_OK, "its JSON does not load: %s", ts_last_error());
    FUZZ_CHECK(bpe_to_json(&back, &j2) == TS_OK, "second write failed");
    FUZZ_CHECK(strcmp(j1, j2) == 0, "to_json -> from_json -> to_json changed the text");
    /* Any bytes survive encode then decode (a byte-level BPE covers every byte). */
    size_t n = size < 512 ? size : 512;
    int *ids = NULL;
    size_t n_ids = 0;
    char *text = NULL;
    size_t len = 0;
    FUZZ_CHECK(bpe_encode(&tok, data, n, &ids, &n_ids) == TS_OK, "encode failed: %s", ts_last_error());
    FUZZ_CHECK(bpe_decode(&tok, ids, n_ids, &text, &len) == TS_OK, "decode failed: %s", ts_last_error());
    FUZZ_CHECK(len == n && memcmp(text, data, n) == 0, "decode(encode(x)) != x");
    free(ids);
    free(text);
    free(j1);
    free(j2);
    bpe_free(&back);
    bpe_free(&tok);
    return 0;
}
