/* A tiny program for testing the gdb helpers (scripts/check-infra.sh builds it
 * with -g and prints its tensors from gdb). Not part of the library. */
#include <stdlib.h>

#include "core/arena.h"

volatile int ts_fixture_sink;

/* The breakpoint: everything is set up when we stop here. */
void ts_fixture_stop(ts_view *small, ts_view *big, int *ids, int n) { ts_fixture_sink = n + small->ndim + big->ndim + ids[0]; }

/* One query's attention, 2 heads x 3 keys, rows 4 floats apart (a decode
 * scratch of max_T = 4), and a row of scores that is no distribution; an MLA
 * latent cache of 2 rows [c_kv (3); k_rope (2)]. */
static float probs[2 * 4] = {0.25f, 0.5f, 0.25f, 99.0f, 0.125f, 0.125f, 0.75f, -99.0f};
static float not_probs[3] = {0.5f, 0.25f, 0.5f};
static float latent[2 * 5] = {1, 2, 3, -0.5f, 0.5f, 4, 5, 6, -1.5f, 1.5f};
/* A registry of two tensors in one buffer, no gradients (tsparam). */
static ts_param plist[2] = {{"a.weight", 0, 6, 2, {2, 3}, 0}, {"b.bias", 6, 2, 1, {2}, 1}};
static float pdata[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static ts_params reg = {plist, 2, 2, 8, pdata, NULL, NULL, NULL, NULL, 0};

int main(void) {
    static float a[2 * 3] = {0.5f, -1.25f, 3.0f, 10.0f, 0.001f, -7.0f};
    float *b = malloc(sizeof(float) * 3 * 40 * 50);
    if (!b) return 1;
    for (int i = 0; i < 3 * 40 * 50; i++) b[i] = (float)i;
    int ids[12];
    for (int i = 0; i < 12; i++) ids[i] = 256 + i * i;
    ts_view small = {"layer.w", a, 2, {2, 3}};
    ts_view big = {"acts", b, 3, {3, 40, 50}};
    ts_fixture_sink = (int)(probs[0] + not_probs[0] + latent[0] + reg.data[0]);
    ts_fixture_stop(&small, &big, ids, 12);
    free(b);
    return 0;
}
