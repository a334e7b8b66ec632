/**
 * @file student.c
 * @brief Exercise (chapter 1): write bpe_apply_merge(), the step BPE repeats.
 *
 * Training learns a merge rule "the pair (left, right) becomes new_id" and
 * applies it to every chunk of the corpus; encoding applies the learned rules
 * one by one. Both call this function, so once yours is linked in, the whole
 * tokenizer runs on your code.
 *
 * Replace every occurrence of the adjacent pair (left, right) in ids[0..n) by
 * the single id new_id, scanning left to right, without overlap (with
 * left == right, "a a a" becomes "aa a", not "a aa"), in place, and return the
 * new length. Example: ids = {5, 7, 5, 7, 7}, (5, 7) -> 300 gives
 * {300, 300, 7} and returns 3.
 *
 * Build the library with this file instead of the one in src/data/bpe.c and
 * run the tests that check it:
 *     make exercise EX=bpe_apply_merge
 * Checked by exercises/bpe_apply_merge/test_bpe_apply_merge.c (the function
 * alone) and tests/test_ch01_bpe.c (training and encoding on top of it).
 * Step through it: the test binaries are in build/debug/exercise/bpe_apply_merge/tests/.
 */
#include "data/bpe.h"

int bpe_apply_merge(int *ids, int n, int left, int right, int new_id) {
    /* TODO: your code here. Hint: read with one index and write with a second
     * one that never gets ahead of the first, so the array can be rewritten in
     * place. */
    (void)ids;
    (void)left;
    (void)right;
    (void)new_id;
    return n;
}
