/* Exercise mtp_combine_backward: the gradients of x = M·[hnorm(h); enorm(e)]
 * with respect to h, e, M and both norms' weights, against central finite
 * differences of L = Σ r ⊙ x (r random), and accumulated (+=) into what the
 * gradients held before. */
#include "testutil.h"

#include "core/gradcheck.h"
#include "model/mtp.h"

enum { N = 3, C = 5 };

typedef struct {
    float h[N * C], e[N * C], eh[C * 2 * C], hn[C], en[C], r[N * C];
} inputs;

static double loss(void *ctx) {
    inputs *in = ctx;
    float x[N * C], cat[N * 2 * C], hr[N], er[N];
    ts_mtp_weights w = {in->en, in->hn, in->eh, NULL};
    mtp_combine_forward(x, cat, hr, er, in->h, in->e, &w, N, C, 1e-5f);
    double s = 0;
    for (int i = 0; i < N * C; i++) s += (double)in->r[i] * x[i];
    return s;
}

static void gradients_match_finite_differences(void **state) {
    (void)state;
    inputs in;
    tu_fill(in.h, N * C, 1.0f, 1);
    tu_fill(in.e, N * C, 1.0f, 2);
    tu_fill(in.eh, C * 2 * C, 0.5f, 3);
    tu_fill(in.hn, C, 0.5f, 4);
    tu_fill(in.en, C, 0.5f, 5);
    tu_fill(in.r, N * C, 1.0f, 6);
    for (int i = 0; i < C; i++) { /* norm weights around 1 */
        in.hn[i] += 1.0f;
        in.en[i] += 1.0f;
    }
    float x[N * C], cat[N * 2 * C], hr[N], er[N], d_cat[N * 2 * C];
    ts_mtp_weights w = {in.en, in.hn, in.eh, NULL};
    mtp_combine_forward(x, cat, hr, er, in.h, in.e, &w, N, C, 1e-5f);
    /* gradients start at 0.25 everywhere: the function must add, not overwrite */
    float dh[N * C], de[N * C], deh[C * 2 * C], dhn[C], den[C], head = 7.0f;
    float *bufs[] = {dh, de, deh, dhn, den};
    size_t sizes[] = {N * C, N * C, C * 2 * C, C, C};
    for (int b = 0; b < 5; b++)
        for (size_t i = 0; i < sizes[b]; i++) bufs[b][i] = 0.25f;
    for (int i = 0; i < N * 2 * C; i++) d_cat[i] = 1e3f; /* garbage: scratch */
    ts_mtp_weights dw = {den, dhn, deh, &head};
    mtp_combine_backward(dh, de, &dw, d_cat, in.r, cat, hr, er, in.h, in.e, &w, N, C);
    assert_true(head == 7.0f);
    for (int b = 0; b < 5; b++)
        for (size_t i = 0; i < sizes[b]; i++) bufs[b][i] -= 0.25f;
    ts_gc_tensor t[] = {{"h", in.h, dh, N * C}, {"e", in.e, de, N * C}, {"eh_proj", in.eh, deh, C * 2 * C},
                        {"hnorm", in.hn, dhn, C}, {"enorm", in.en, den, C}};
    ts_gc_result res[5];
    double worst = ts_gradcheck(loss, &in, t, 5, 1e-2, 0, res, stdout);
    printf("  worst relative error %.2e\n", worst);
    for (int i = 0; i < 5; i++) {
        if (!(res[i].grad_scale > 0)) fail_msg("%s received no gradient", t[i].name);
        if (res[i].max_rel > 1e-3) fail_msg("%s: relative error %.2e", t[i].name, res[i].max_rel);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gradients_match_finite_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
