/**
 * @file escape.c
 * @brief Untrusted text made safe to quote in a one-line error message.
 */
#include <stdio.h>
#include <string.h>

#include "core/common.h"

/* Write @p c escaped into out (at least 5 bytes free); returns bytes written. */
static size_t escape_byte(unsigned char c, int escape_backslash, char *out) {
    switch (c) {
    case '\n': memcpy(out, "\\n", 2); return 2;
    case '\r': memcpy(out, "\\r", 2); return 2;
    case '\t': memcpy(out, "\\t", 2); return 2;
    case '\\':
        if (!escape_backslash) break;
        memcpy(out, "\\\\", 2);
        return 2;
    default:
        if (c < 0x20 || c == 0x7f) {
            snprintf(out, 5, "\\x%02x", c);
            return 4;
        }
    }
    out[0] = (char)c;
    return 1;
}

static const char *escape_into(char *buf, size_t cap, const char *s, int escape_backslash) {
    if (!buf || cap == 0) return "";
    if (!s) s = "(null)";
    size_t j = 0;
    const size_t room = cap > 4 ? cap - 4 : 0; /* keep space for "..." and the terminator */
    for (size_t i = 0; s[i]; i++) {
        char tmp[5];
        size_t n = escape_byte((unsigned char)s[i], escape_backslash, tmp);
        if (j + n > room) { /* absurdly long: cut, and say so */
            if (cap >= 4) {
                memcpy(buf + j, "...", 3);
                j += 3;
            }
            break;
        }
        memcpy(buf + j, tmp, n);
        j += n;
    }
    buf[j < cap ? j : cap - 1] = '\0';
    return buf;
}

const char *ts_escape(char *buf, size_t cap, const char *s) { return escape_into(buf, cap, s, 1); }

void ts_one_line(char *msg, size_t cap) {
    char tmp[1024];
    size_t n = strlen(msg);
    if (n >= sizeof tmp) n = sizeof tmp - 1;
    memcpy(tmp, msg, n);
    tmp[n] = '\0';
    int plain = 1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)tmp[i] < 0x20 || tmp[i] == 0x7f) plain = 0;
    if (!plain) escape_into(msg, cap, tmp, 0);
}
