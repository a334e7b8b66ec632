/**
 * @file fuzz_checkpoint.c
 * @brief A whole checkpoint folder through ts_checkpoint_load(): config.json
 *        and model.safetensors from one input, laid out as
 *        [u32 little-endian length of config.json][config.json][model.safetensors].
 *        Oracles: a refused folder is one line and leaves the model empty (all
 *        zero: nothing half-built, nothing leaked); an accepted one has only
 *        finite weights, runs a forward pass, and saves and loads back to the
 *        same bits. Configs too big for a fuzzing process (more than a few
 *        million parameters) are skipped after the config parser accepts them.
 */
#include <math.h>

#include "fuzz_util.h"
#include "model/checkpoint.h"

static int small_enough(const ts_config *c) {
    if (c->num_hidden_layers > 16 || c->max_position_embeddings > 4096 || c->n_routed_experts > 64) return 0;
    long long total = 0;
    ts_model_count_params(c, &total, NULL);
    return total <= (1 << 21);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    size_t n = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
    if (n > size - 4) return 0;
    const char *dir = fuzz_dir();
    char cfg_path[300], st_path[300];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", dir);
    fuzz_write(cfg_path, data + 4, n);
    fuzz_write(st_path, data + 4 + n, size - 4 - n);
    ts_config c;
    if (ts_config_load(&c, cfg_path) == TS_OK && !small_enough(&c)) return 0;

    ts_model m;
    memset(&m, 0x3c, sizeof m);
    ts_clear_error();
    if (ts_checkpoint_load(&m, dir, 0) != TS_OK) {
        fuzz_check_error(dir);
        FUZZ_CHECK(fuzz_all_bytes(&m, sizeof m, 0), "a refused checkpoint leaves the model half-built");
        return 0;
    }
    for (size_t i = 0; i < m.params.numel; i++) FUZZ_CHECK(isfinite(m.params.data[i]), "a non-finite weight loaded");
    int tokens[4], targets[4];
    for (int i = 0; i < 4; i++) tokens[i] = targets[i] = (i * 7) % m.cfg.vocab_size;
    int T = m.cfg.max_position_embeddings < 4 ? m.cfg.max_position_embeddings : 4;
    FUZZ_CHECK(ts_model_reserve(&m, 1, T) == TS_OK, "reserve: %s", ts_last_error());
    (void)ts_model_forward(&m, tokens, targets, 1, T);

    char again[300];
    snprintf(again, sizeof again, "%s/again", dir);
    FUZZ_CHECK(ts_checkpoint_save(&m, again, NULL) == TS_OK, "an accepted checkpoint does not save: %s", ts_last_error());
    ts_model back;
    FUZZ_CHECK(ts_checkpoint_load(&back, again, 0) == TS_OK, "it does not load back: %s", ts_last_error());
    FUZZ_CHECK(back.params.numel == m.params.numel &&
                   memcmp(back.params.data, m.params.data, m.params.numel * sizeof(float)) == 0,
               "weights changed in the round trip");
    ts_model_free(&back);
    ts_model_free(&m);
    return 0;
}
