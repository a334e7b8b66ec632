/**
 * @file inspect.h
 * @brief Looking inside a model from a debugger, a notebook (ctypes) or a test:
 *        heap-allocated models and shaped views of weights and activations.
 */
#ifndef TS_INSPECT_H
#define TS_INSPECT_H

#include "model/model.h"

/** @brief Load a checkpoint folder into a new heap-allocated model; NULL (and ts_last_error()) on failure. */
ts_model *ts_model_open(const char *dir);

/** @brief Free a model made by ts_model_open(). */
void ts_model_close(ts_model *m);

/**
 * @brief Forward one sequence of @p n tokens (no loss); returns 0, or -1 with
 * ts_last_error() set (token out of range, too long).
 */
int ts_model_run(ts_model *m, const int *tokens, int n);

/** @brief View of the parameter called @p name (Hugging Face name). Returns 0, or -1 if there is none. */
int ts_model_view_param(const ts_model *m, const char *name, ts_view *out);

/** @brief View of layer @p layer's attention probabilities (B,H,T,T) from the last forward. */
int ts_model_view_attention(const ts_model *m, int layer, ts_view *out);

/** @brief View of the logits (B*T, V) of the last forward. */
int ts_model_view_logits(const ts_model *m, ts_view *out);

/**
 * @brief Bytes per token (all layers) of the KV cache this model allocates;
 * for an MLA model the absorbed (latent) cache, or with @p naive the naive one
 * (full per-head keys and values). -1 on failure.
 */
long long ts_model_kv_bytes_per_token(const ts_model *m, int naive);

/**
 * @brief The logits of one sequence of @p n tokens computed through the KV cache:
 * token 0 prefilled, every later token decoded one at a time (an MLA model's
 * absorbed cache, or with @p naive its naive one). out (n, V): row t predicts
 * token t+1, as the full forward's row t does. Returns 0, or -1 with ts_last_error().
 * Uses the model's activation arena (the forward's last activations are overwritten).
 */
int ts_model_cached_logits(ts_model *m, const int *tokens, int n, int naive, float *out);

#endif
