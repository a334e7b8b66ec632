/**
 * @file progress.c
 * @brief The progress line: redrawn on a terminal, sparse plain lines otherwise.
 */
#include "io/progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"

/** Plain (non-terminal) mode prints at least this often, in seconds. */
#define PLAIN_PERIOD_S 30.0
/** Terminal mode redraws at most this often, in seconds. */
#define REDRAW_PERIOD_S 0.1

void ts_format_duration(double seconds, char *buf, size_t cap) {
    if (!(seconds >= 0) || seconds > 1e9) {
        snprintf(buf, cap, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, cap, "%ld:%02ld", s / 60, s % 60);
}

void ts_format_si(double x, char *buf, size_t cap) {
    const char *suffix[] = {"", "k", "M", "G", "T"};
    int k = 0;
    double a = fabs(x);
    while (a >= 999.5 && k < 4) {
        a /= 1000;
        x /= 1000;
        k++;
    }
    if (k == 0)
        snprintf(buf, cap, "%.0f", x);
    else
        snprintf(buf, cap, a < 9.995 ? "%.2f%s" : a < 99.95 ? "%.1f%s" : "%.0f%s", x, suffix[k]);
}

void ts_progress_start(ts_progress *p, const char *label, long total) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->unit = "step";
    p->total = total;
    p->start = ts_now();
    p->last_draw = -1e30;
    p->last_line = p->start;
    p->out = stderr;
    p->tty = isatty(fileno(stderr));
    const char *q = getenv("TINYSEEK_QUIET");
    p->quiet = q && q[0] && strcmp(q, "0") != 0;
    p->next_mark = total > 0 ? (total + 9) / 10 : 0;
}

/** Compose "label  step 120/600  <text>" into @p line. */
static size_t compose(const ts_progress *p, char *line, size_t cap, long done, const char *fmt, va_list ap) {
    size_t n;
    if (p->total > 0)
        n = (size_t)snprintf(line, cap, "%s  %s %ld/%ld", p->label, p->unit, done, p->total);
    else
        n = (size_t)snprintf(line, cap, "%s  %s %ld", p->label, p->unit, done);
    if (fmt && fmt[0] && n + 2 < cap) {
        n += (size_t)snprintf(line + n, cap - n, "  ");
        if (n < cap) n += (size_t)vsnprintf(line + n, cap - n, fmt, ap);
    }
    return n < cap ? n : cap - 1;
}

/** Print @p line: in place (tty) or as a line of its own. */
static void emit(ts_progress *p, const char *line, size_t n, int final) {
    if (p->tty && !p->quiet) {
        int pad = p->width > (int)n ? p->width - (int)n : 0;
        fprintf(p->out, "\r%s%*s", line, pad, ""); /* spaces blank the tail of a longer old line */
        p->width = (int)n;
        if (final) {
            fputc('\n', p->out);
            p->width = 0;
        }
    } else {
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
}

void ts_progress_update(ts_progress *p, long done, const char *fmt, ...) {
    p->done = done;
    if (p->quiet) return;
    double now = ts_now();
    if (p->tty) {
        if (now - p->last_draw < REDRAW_PERIOD_S && !(p->total > 0 && done >= p->total)) return;
        p->last_draw = now;
    } else {
        int at_mark = p->total > 0 && done >= p->next_mark;
        if (!at_mark && now - p->last_line < PLAIN_PERIOD_S) return;
        p->last_line = now;
        if (p->total > 0) {
            long every = (p->total + 9) / 10;
            p->next_mark = (done / every + 1) * every;
        }
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = compose(p, line, sizeof line, done, fmt, ap);
    va_end(ap);
    if (p->total > 0 && done > 0 && done < p->total && n + 16 < sizeof line) {
        char eta[32];
        ts_format_duration((now - p->start) / (double)done * (double)(p->total - done), eta, sizeof eta);
        n += (size_t)snprintf(line + n, sizeof line - n, "  ETA %s", eta);
    }
    emit(p, line, n, 0);
}

void ts_progress_done(ts_progress *p, const char *fmt, ...) {
    char line[512], took[32];
    va_list ap;
    va_start(ap, fmt);
    size_t n = compose(p, line, sizeof line, p->done, fmt, ap);
    va_end(ap);
    ts_format_duration(ts_now() - p->start, took, sizeof took);
    if (n + 8 < sizeof line) n += (size_t)snprintf(line + n, sizeof line - n, "  in %s", took);
    emit(p, line, n < sizeof line ? n : sizeof line - 1, 1);
}
