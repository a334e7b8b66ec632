/**
 * @file reward.c
 * @brief GRPO's rule rewards: accuracy and format (see reward.h).
 */
#include "train/reward.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

ts_reward_opts ts_reward_opts_default(void) {
    ts_reward_opts o = {.accuracy_weight = 1.0f, .format_weight = 0.1f};
    return o;
}

int ts_answer_is_integer(const char *answer) {
    const char *p = answer;
    while (isspace((unsigned char)*p)) p++;
    if (*p == '-') p++;
    int digits = 0;
    while (isdigit((unsigned char)*p)) p++, digits++;
    while (isspace((unsigned char)*p)) p++;
    return digits > 0 && *p == '\0';
}

//! [rule-reward]
ts_reward ts_reward_of(ts_template t, const char *generated, const char *truth, const ts_reward_opts *o) {
    ts_reward r;
    memset(&r, 0, sizeof r);
    const char *prefix = ts_chat_response_prefix(t); // r1's prompt already opened <think>: score the whole response
    size_t np = strlen(prefix), ng = strlen(generated);
    char *text = malloc(np + ng + 1);
    if (!text) { // no memory: no reward (the caller's next allocation reports it)
        r.format = TS_FORMAT_NO_THINK;
        return r;
    }
    memcpy(text, prefix, np);
    memcpy(text + np, generated, ng + 1);
    char answer[256];
    r.format = ts_format_check(text);
    int has_answer = ts_answer_extract(text, answer, sizeof answer);
    r.parseable = has_answer && ts_answer_is_integer(answer);
    // the answer counts only in the template's structure: one think block, then one answer block
    int structured = r.format == TS_FORMAT_OK || r.format == TS_FORMAT_OUTSIDE;
    r.correct = structured && has_answer && ts_answer_matches(answer, truth);
    r.format_ok = r.format == TS_FORMAT_OK && r.parseable; // format alone is gamed: pay it with an answer only
    r.reward = o->accuracy_weight * (float)r.correct + o->format_weight * (float)r.format_ok;
    free(text);
    return r;
}
//! [rule-reward]
