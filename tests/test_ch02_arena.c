/* Chapter 2 foundations: the parameter arena, the activation arena, the RNG. */
#include "testutil.h"

#include "core/arena.h"

static void params_layout_is_aligned_and_mirrored(void **state) {
    (void)state;
    ts_params p;
    ts_params_init(&p);
    int s1[2] = {3, 5}, s2[1] = {7}, s3[3] = {2, 2, 2};
    assert_int_equal(ts_params_add(&p, "a.weight", 2, s1, 0), 0);
    assert_int_equal(ts_params_add(&p, "b.weight", 1, s2, 1), 1);
    assert_int_equal(ts_params_add(&p, "c.weight", 3, s3, 0), 2);
    assert_int_equal(ts_params_add(&p, "a.weight", 1, s2, 0), -1); /* duplicate name */
    assert_int_equal(ts_params_alloc(&p, 1), TS_OK);
    assert_int_equal(p.params[0].offset, 0);
    assert_int_equal(p.params[1].offset, 16);
    assert_int_equal(p.params[2].offset, 32);
    assert_int_equal(p.numel, 40);
    assert_int_equal(p.params[1].no_decay, 1);
    assert_int_equal(ts_params_find(&p, "c.weight"), 2);
    assert_int_equal(ts_params_find(&p, "nope"), -1);
    assert_non_null(p.m);
    assert_non_null(p.v);
    for (size_t i = 0; i < p.numel; i++) assert_true(p.data[i] == 0.0f && p.grad[i] == 0.0f);
    int s4[1] = {1};
    assert_int_equal(ts_params_add(&p, "late", 1, s4, 0), -1); /* after alloc */
    assert_non_null(strstr(ts_last_error(), "late"));
    ts_params_free(&p);
}

static void arena_measures_then_allocates(void **state) {
    (void)state;
    ts_arena a = {0};
    assert_null(ts_arena_floats(&a, 10));
    assert_null(ts_arena_ints(&a, 3));
    size_t need = a.used;
    assert_true(need >= 64 + 12);
    assert_int_equal(ts_arena_create(&a, need), TS_OK);
    float *x = ts_arena_floats(&a, 10);
    int *y = ts_arena_ints(&a, 3);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(((uintptr_t)x) % 64, 0);
    assert_int_equal(((uintptr_t)y) % 64, 0);
    assert_null(ts_arena_floats(&a, 1)); /* exhausted */
    ts_arena_reset(&a);
    assert_ptr_equal(ts_arena_floats(&a, 10), x);
    ts_arena_free(&a);
}

static void rng_streams_are_reproducible_and_distinct(void **state) {
    (void)state;
    ts_rng a, b, c;
    ts_rng_seed(&a, 42, TS_STREAM_INIT);
    ts_rng_seed(&b, 42, TS_STREAM_INIT);
    ts_rng_seed(&c, 42, TS_STREAM_DATA);
    int same_c = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = ts_rng_u64(&a), y = ts_rng_u64(&b), z = ts_rng_u64(&c);
        assert_true(x == y);
        same_c += (x == z);
    }
    assert_int_equal(same_c, 0);
    /* Uniform draws are in range and roughly centred; normals have unit variance. */
    double sum = 0, sq = 0;
    for (int i = 0; i < 100000; i++) {
        float u = ts_rng_uniform(&a);
        assert_true(u >= 0.0f && u < 1.0f);
        sum += u;
        float g = ts_rng_normal(&a);
        sq += (double)g * g;
    }
    assert_true(fabs(sum / 100000 - 0.5) < 0.01);
    assert_true(fabs(sq / 100000 - 1.0) < 0.02);
    for (int i = 0; i < 1000; i++) assert_true(ts_rng_below(&a, 7) < 7);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(params_layout_is_aligned_and_mirrored),
        cmocka_unit_test(arena_measures_then_allocates),
        cmocka_unit_test(rng_streams_are_reproducible_and_distinct),
    };
    return cmocka_run_group_tests_name("ch02_arena", tests, NULL, NULL);
}
