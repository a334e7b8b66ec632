/**
 * @file test_bpe_apply_merge.c
 * @brief Exercise tests: bpe_apply_merge() on its own (make exercise EX=bpe_apply_merge).
 */
#include "testutil.h"

#include "data/bpe.h"

/* Apply the merge to a copy of in[0..n) and compare with want[0..n_want). */
static void check(const int *in, int n, int left, int right, int new_id, const int *want, int n_want) {
    int ids[64];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) ids[i] = in[i];
    int got = bpe_apply_merge(ids, n, left, right, new_id);
    assert_int_equal(got, n_want);
    for (int i = 0; i < n_want; i++) assert_int_equal(ids[i], want[i]);
}

static void test_example_from_the_text(void **state) {
    (void)state;
    const int in[] = {5, 7, 5, 7, 7}, want[] = {300, 300, 7};
    check(in, 5, 5, 7, 300, want, 3);
}

static void test_no_occurrence_leaves_ids_alone(void **state) {
    (void)state;
    const int in[] = {1, 2, 3, 4};
    check(in, 4, 2, 1, 99, in, 4);   /* the reversed pair is not the pair */
    check(in, 4, 4, 5, 99, in, 4);   /* a pair that would run off the end */
}

static void test_pair_at_both_ends(void **state) {
    (void)state;
    const int in[] = {8, 9, 1, 8, 9}, want[] = {42, 1, 42};
    check(in, 5, 8, 9, 42, want, 3);
}

static void test_left_to_right_without_overlap(void **state) {
    (void)state;
    const int in3[] = {3, 3, 3}, want3[] = {7, 3};
    check(in3, 3, 3, 3, 7, want3, 2);
    const int in4[] = {3, 3, 3, 3}, want4[] = {7, 7};
    check(in4, 4, 3, 3, 7, want4, 2);
}

static void test_short_inputs(void **state) {
    (void)state;
    const int one[] = {5};
    check(one, 1, 5, 5, 9, one, 1);
    int empty[1] = {0};
    assert_int_equal(bpe_apply_merge(empty, 0, 1, 2, 3), 0);
    const int two[] = {1, 2}, want[] = {3};
    check(two, 2, 1, 2, 3, want, 1);
}

static void test_new_id_is_not_merged_again(void **state) {
    (void)state;
    /* (1,1) -> 1 must not chain: 1 1 1 1 becomes 1 1, not 1. */
    const int in[] = {1, 1, 1, 1}, want[] = {1, 1};
    check(in, 4, 1, 1, 1, want, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_from_the_text),
        cmocka_unit_test(test_no_occurrence_leaves_ids_alone),
        cmocka_unit_test(test_pair_at_both_ends),
        cmocka_unit_test(test_left_to_right_without_overlap),
        cmocka_unit_test(test_short_inputs),
        cmocka_unit_test(test_new_id_is_not_merged_again),
    };
    return cmocka_run_group_tests_name("exercise bpe_apply_merge", tests, NULL, NULL);
}
