/**
 * @file checkpoint.c
 * @brief Save and load Hugging Face model folders.
 */
#include "model/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "io/safetensors.h"
#include "io/savedir.h"
#include "io/trainstate.h"

static void join(char *out, size_t cap, const char *dir, const char *file) {
    snprintf(out, cap, "%s/%s", dir, file);
}

const char *const ts_checkpoint_files[] = {"config.json", "model.safetensors", "tokenizer.json", TS_TRAINSTATE_FILE, NULL};

ts_status ts_checkpoint_write(const ts_model *m, const char *dir, const char *tokenizer_json) {
    char path[4096];
    ts_status st;
    join(path, sizeof path, dir, "config.json");
    if ((st = ts_config_save(&m->cfg, path))) return st;
    ts_savedir_test_point("config");
    join(path, sizeof path, dir, "model.safetensors");
    if ((st = ts_safetensors_save(&m->params, path, "{\"format\": \"pt\", \"producer\": \"tinyseek\"}"))) return st;
    ts_savedir_test_point("model");
    if (tokenizer_json) {
        join(path, sizeof path, dir, "tokenizer.json");
        if (strcmp(tokenizer_json, path) == 0) return TS_OK; /* already in place */
        char *text = NULL;
        size_t len = 0;
        if ((st = ts_read_file(tokenizer_json, &text, &len))) return st;
        st = ts_write_file_atomic(path, text, len);
        free(text);
        if (!st) ts_savedir_test_point("tokenizer");
    }
    return st;
}

ts_status ts_checkpoint_save(const ts_model *m, const char *dir, const char *tokenizer_json) {
    ts_savedir sd;
    ts_status st = ts_savedir_begin(&sd, dir, ts_checkpoint_files);
    if (st) return st;
    if ((st = ts_checkpoint_write(m, sd.tmp, tokenizer_json))) {
        ts_savedir_abort(&sd);
        return st;
    }
    return ts_savedir_commit(&sd);
}

ts_status ts_checkpoint_load(ts_model *m, const char *dir, int with_optimizer) {
    char path[4096];
    ts_config cfg;
    join(path, sizeof path, dir, "config.json");
    ts_status st = ts_config_load(&cfg, path);
    if (st) return st;
    if ((st = ts_model_create(m, &cfg, with_optimizer))) return st;
    join(path, sizeof path, dir, "model.safetensors");
    if ((st = ts_safetensors_load_params(&m->params, path))) {
        ts_model_free(m);
        return st;
    }
    return TS_OK;
}
