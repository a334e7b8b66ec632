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

static void join(char *out, size_t cap, const char *dir, const char *file) {
    snprintf(out, cap, "%s/%s", dir, file);
}

ts_status ts_checkpoint_save(const ts_model *m, const char *dir, const char *tokenizer_json) {
    char path[4096];
    ts_status st = ts_mkdir_p(dir);
    if (st) return st;
    join(path, sizeof path, dir, "config.json");
    if ((st = ts_config_save(&m->cfg, path))) return st;
    join(path, sizeof path, dir, "model.safetensors");
    if ((st = ts_safetensors_save(&m->params, path, "{\"format\": \"pt\", \"producer\": \"tinyseek\"}"))) return st;
    if (tokenizer_json) {
        join(path, sizeof path, dir, "tokenizer.json");
        if (strcmp(tokenizer_json, path) == 0) return TS_OK; /* already in place */
        char *text = NULL;
        size_t len = 0;
        if ((st = ts_read_file(tokenizer_json, &text, &len))) return st;
        st = ts_write_file_atomic(path, text, len);
        free(text);
    }
    return st;
}

ts_status ts_checkpoint_load(ts_model *m, const char *dir, int with_optimizer) {
    char path[4096];
    ts_config cfg;
    memset(m, 0, sizeof *m); /* on any failure the model is left empty */
    join(path, sizeof path, dir, "config.json");
    ts_status st = ts_config_load(&cfg, path);
    if (st) return st;
    if ((st = ts_model_create(m, &cfg, with_optimizer))) {
        ts_model_free(m); /* what a half-done create allocated */
        return st;
    }
    join(path, sizeof path, dir, "model.safetensors");
    if ((st = ts_safetensors_load_params(&m->params, path))) {
        ts_model_free(m);
        return st;
    }
    return TS_OK;
}
