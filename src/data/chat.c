/**
 * @file chat.c
 * @brief The r1 and r1-zero chat templates, in C and in Jinja.
 */
#include "data/chat.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const template_names[TS_TEMPLATE_N] = {"r1", "r1-zero", "question"};

const char *ts_template_name(ts_template t) { return (unsigned)t < TS_TEMPLATE_N ? template_names[t] : "?"; }

ts_status ts_template_parse(const char *name, ts_template *t) {
    for (int i = 0; i < TS_TEMPLATE_N; i++)
        if (strcmp(name, template_names[i]) == 0) {
            *t = (ts_template)i;
            return TS_OK;
        }
    return ts_fail(TS_ERR_ARG, "unknown chat template '%s' (expected r1 or r1-zero)", name);
}

//! [r1-zero-template]
/** DeepSeek-R1 paper, Table 1, verbatim, up to "{prompt}", where the question goes. */
#define R1_ZERO_HEAD                                                                                                    \
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "          \
    "assistant first thinks about the reasoning process in the mind and then provides the user with the answer. The " \
    "reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, "   \
    "i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: "
#define R1_ZERO_TAIL ". Assistant:" /**< after the question: the model continues from here */
//! [r1-zero-template]

/* The same two templates for Jinja (Hugging Face's chat_template conventions). */
static const char jinja_r1[] =
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|user|>{{ message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{% set content = message['content'] %}"
    "{% if content.startswith('<think>') %}{% set content = content[7:] %}"
    "{% if content.startswith('\\n') %}{% set content = content[1:] %}{% endif %}{% endif %}"
    "<|assistant|><think>\n{{ content }}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|><think>\n{% endif %}";
static const char jinja_r1_zero[] =
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}" R1_ZERO_HEAD "{{ message['content'] }}" R1_ZERO_TAIL
    "{% elif message['role'] == 'assistant' %} {{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

/* The question template: the user's words alone, answered after one space, as
 * the pretraining text's question lines are ("What is 31+86? 117"). A base model
 * reads it as its own corpus; chapter 8 runs R1-Zero's RL from it. */
static const char jinja_question[] =
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ message['content'] }}"
    "{% elif message['role'] == 'assistant' %} {{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

const char *ts_chat_jinja(ts_template t) {
    return t == TS_TEMPLATE_R1_ZERO ? jinja_r1_zero : t == TS_TEMPLATE_QUESTION ? jinja_question : jinja_r1;
}

const char *ts_chat_response_prefix(ts_template t) { return t == TS_TEMPLATE_R1 ? "<think>\n" : ""; }

static ts_status concat(char **out, int n, ...) {
    va_list ap;
    size_t len = 0;
    va_start(ap, n);
    for (int i = 0; i < n; i++) len += strlen(va_arg(ap, const char *));
    va_end(ap);
    *out = ts_malloc(len + 1, "chat template text");
    if (!*out) return TS_ERR_NOMEM;
    char *p = *out;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *s = va_arg(ap, const char *);
        size_t k = strlen(s);
        memcpy(p, s, k);
        p += k;
    }
    va_end(ap);
    *p = '\0';
    return TS_OK;
}

//! [chat-render]
ts_status ts_chat_render_prompt(ts_template t, const char *prompt, char **out) {
    if (t == TS_TEMPLATE_R1_ZERO) return concat(out, 3, R1_ZERO_HEAD, prompt, R1_ZERO_TAIL);
    if (t == TS_TEMPLATE_QUESTION) return concat(out, 1, prompt);
    return concat(out, 5, bpe_special_text(BPE_BOS), bpe_special_text(BPE_USER), prompt,
                  bpe_special_text(BPE_ASSISTANT), "<think>\n"); // the generation prompt opens the thinking
}

ts_status ts_chat_render_response(ts_template t, const char *response, char **out) {
    const char *eos = bpe_special_text(BPE_EOS);
    if (t == TS_TEMPLATE_R1_ZERO || t == TS_TEMPLATE_QUESTION) return concat(out, 3, " ", response, eos);
    const char *body = response; // "<think>" (and one newline) is already in the prompt
    if (strncmp(body, "<think>", 7) == 0) {
        body += 7;
        if (*body == '\n') body++;
    }
    return concat(out, 2, body, eos);
}
//! [chat-render]

ts_status ts_chat_tokenizer_config(char **out) {
    cJSON *root = cJSON_CreateObject(), *list = cJSON_CreateArray();
    if (!root || !list) {
        cJSON_Delete(root);
        cJSON_Delete(list);
        return ts_fail(TS_ERR_NOMEM, "tokenizer_config.json: out of memory");
    }
    cJSON_AddStringToObject(root, "tokenizer_class", "PreTrainedTokenizerFast");
    cJSON_AddStringToObject(root, "bos_token", bpe_special_text(BPE_BOS));
    cJSON_AddStringToObject(root, "eos_token", bpe_special_text(BPE_EOS));
    cJSON_AddStringToObject(root, "pad_token", bpe_special_text(BPE_PAD));
    cJSON_AddBoolToObject(root, "add_bos_token", 0); // the r1 template writes <|bos|> itself
    const char *names[TS_TEMPLATE_N] = {"default", "r1_zero", "question"};
    for (int i = 0; i < TS_TEMPLATE_N; i++) {
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "name", names[i]);
        cJSON_AddStringToObject(entry, "template", ts_chat_jinja((ts_template)i));
        cJSON_AddItemToArray(list, entry);
    }
    cJSON_AddItemToObject(root, "chat_template", list);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return ts_fail(TS_ERR_NOMEM, "tokenizer_config.json: out of memory");
    *out = ts_malloc(strlen(text) + 2, "tokenizer_config.json");
    if (*out) snprintf(*out, strlen(text) + 2, "%s\n", text);
    cJSON_free(text);
    return *out ? TS_OK : TS_ERR_NOMEM;
}

ts_status ts_chat_encode(const bpe_tokenizer *tok, ts_template t, const char *prompt, const char *response, int **ids,
                         int *n, int *n_prompt) {
    char *ptext = NULL, *rtext = NULL;
    int *pids = NULL, *rids = NULL;
    size_t np = 0, nr = 0;
    *ids = NULL;
    ts_status st = ts_chat_render_prompt(t, prompt, &ptext);
    if (!st) st = bpe_encode(tok, ptext, strlen(ptext), &pids, &np);
    if (!st && response) {
        if (!(st = ts_chat_render_response(t, response, &rtext))) st = bpe_encode(tok, rtext, strlen(rtext), &rids, &nr);
    }
    if (!st && np + nr > (size_t)1 << 30) st = ts_fail(TS_ERR_RANGE, "chat: a pair of %zu tokens is too long", np + nr);
    if (!st) {
        *ids = ts_malloc((np + nr + 1) * sizeof(int), "chat tokens");
        if (!*ids) st = TS_ERR_NOMEM;
    }
    if (!st) {
        memcpy(*ids, pids, np * sizeof(int));
        if (nr) memcpy(*ids + np, rids, nr * sizeof(int));
        *n = (int)(np + nr);
        *n_prompt = (int)np;
    }
    free(ptext);
    free(rtext);
    free(pids);
    free(rids);
    return st;
}
