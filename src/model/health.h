/**
 * @file health.h
 * @brief Where did a NaN or an infinity first appear? Scans of the last
 *        forward's saved activations and of the gradients, for a training
 *        run that has to stop and say why.
 */
#ifndef TS_HEALTH_H
#define TS_HEALTH_H

#include <stddef.h>

#include "model/model.h"

/**
 * @brief The first non-finite output of the last forward, in forward order:
 *        the embedding, then per block the attention output, the residual
 *        after it, the MLP/MoE output and the block output, then the final
 *        norm and the logits. Writes e.g. "model.layers.1.mlp output
 *        (row 3, column 7 is inf)" into @p where.
 * @return 1 if one was found, 0 if every saved output is finite.
 */
int ts_model_find_nonfinite_output(const ts_model *m, char *where, size_t cap);

/**
 * @brief The first parameter, in registration order, whose entry in @p base
 *        (m->params.data for the weights, m->params.grad for the gradients)
 *        is not finite; writes e.g. "model.layers.0.self_attn.q_proj.weight
 *        (element 12 is nan)" into @p where.
 * @return 1 if one was found, 0 if every entry is finite (or @p base is NULL).
 */
int ts_model_find_nonfinite_param(const ts_model *m, const float *base, char *where, size_t cap);

#endif
