/**
 * @file fuzz_trainstate.c
 * @brief training_state.safetensors reader, against the moments of the model
 *        fuzz/tiny-config.json describes. Oracles: a refused file is one line
 *        naming it and leaves the moments and the metadata untouched; an
 *        accepted one saves and loads back to the same bits and metadata.
 */
#include "fuzz_util.h"
#include "io/trainstate.h"
#include "model/checkpoint.h"

static ts_model model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *cfg_path = getenv("TS_FUZZ_CONFIG");
    ts_config c;
    if (ts_config_load(&c, cfg_path ? cfg_path : "fuzz/tiny-config.json") || ts_model_create(&model, &c, 1)) {
        fprintf(stderr, "fuzz_trainstate: %s (run from the repository root, or set TS_FUZZ_CONFIG)\n", ts_last_error());
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ts_params *p = &model.params;
    const char *path = fuzz_path(TS_TRAINSTATE_FILE);
    fuzz_write(path, data, size);
    memset(p->m, 0xa5, p->numel * sizeof(float));
    memset(p->v, 0x5a, p->numel * sizeof(float));
    ts_trainstate_meta meta;
    memset(&meta, 0xc3, sizeof meta);
    ts_clear_error();
    if (ts_trainstate_load(path, p, &meta, 0) != TS_OK) {
        fuzz_check_error(path);
        FUZZ_CHECK(fuzz_all_bytes(p->m, p->numel * sizeof(float), 0xa5) &&
                       fuzz_all_bytes(p->v, p->numel * sizeof(float), 0x5a),
                   "a refused training state changed the moments");
        FUZZ_CHECK(fuzz_all_bytes(&meta, sizeof meta, 0xc3), "a refused training state changed the metadata");
        return 0;
    }
    /* Save, load into the other halves, compare. */
    size_t bytes = p->numel * sizeof(float);
    float *m1 = malloc(bytes + 1), *v1 = malloc(bytes + 1);
    memcpy(m1, p->m, bytes);
    memcpy(v1, p->v, bytes);
    const char *again = fuzz_path("again.safetensors");
    FUZZ_CHECK(ts_trainstate_save(again, p, &meta) == TS_OK, "an accepted state does not save: %s", ts_last_error());
    ts_trainstate_meta back;
    memset(p->m, 0, bytes);
    memset(p->v, 0, bytes);
    FUZZ_CHECK(ts_trainstate_load(again, p, &back, meta.fingerprint) == TS_OK, "it does not load back: %s",
               ts_last_error());
    FUZZ_CHECK(memcmp(m1, p->m, bytes) == 0 && memcmp(v1, p->v, bytes) == 0, "moments changed in the round trip");
    FUZZ_CHECK(back.step == meta.step && back.data_pos == meta.data_pos && back.n_rng == meta.n_rng &&
                   back.fingerprint == meta.fingerprint,
               "metadata changed in the round trip");
    for (int k = 0; k < meta.n_rng; k++)
        FUZZ_CHECK(memcmp(back.rng[k].s, meta.rng[k].s, sizeof meta.rng[k].s) == 0, "rng.%d changed", k);
    free(m1);
    free(v1);
    return 0;
}
