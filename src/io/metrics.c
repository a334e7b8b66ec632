/**
 * @file metrics.c
 * @brief CSV metrics: header, rows flushed one by one, resume by truncation.
 */
#include "io/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/fileio.h"

/** Build "a,b,c" into a malloc'd string, checking the names. */
static ts_status build_header(const char *path, const char *const *columns, int n, char **out) {
    *out = NULL;
    if (n < 1 || !columns) return ts_fail(TS_ERR_ARG, "%s: a metrics file needs at least one column", path);
    size_t len = 1;
    for (int i = 0; i < n; i++) {
        if (!columns[i] || !columns[i][0] || strpbrk(columns[i], ",\"\r\n"))
            return ts_fail(TS_ERR_ARG, "%s: column %d name '%s' is empty or has a comma, quote or line break", path, i,
                           columns[i] ? columns[i] : "(null)");
        len += strlen(columns[i]) + 1;
    }
    char *h = ts_malloc(len, "metrics header");
    if (!h) return TS_ERR_NOMEM;
    h[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i) strcat(h, ",");
        strcat(h, columns[i]);
    }
    *out = h;
    return TS_OK;
}

ts_status ts_metrics_open(ts_metrics *m, const char *path, const char *const *columns, int n, int append) {
    memset(m, 0, sizeof *m);
    if (!path || strlen(path) >= sizeof m->path) return ts_fail(TS_ERR_ARG, "metrics path missing or too long");
    strcpy(m->path, path);
    char *header;
    ts_status s = build_header(path, columns, n, &header);
    if (s) return s;

    int write_header = 1;
    if (append) {
        char *old = NULL;
        size_t len = 0;
        struct stat sb;
        if (stat(path, &sb) == 0 && (s = ts_read_file(path, &old, &len))) {
            free(header);
            return s;
        }
        if (old && len > 0) {
            size_t first = strcspn(old, "\r\n");
            if (first != strlen(header) || memcmp(old, header, first) != 0) {
                s = ts_fail(TS_ERR_FORMAT, "%s: header is '%.*s' but this run writes '%s' (use a new metrics file)",
                            path, (int)(first < 200 ? first : 200), old, header);
                free(old);
                free(header);
                return s;
            }
            write_header = 0;
            /* A crash can leave half a row: cut the file after its last complete line. */
            if (old[len - 1] != '\n') {
                size_t keep = len;
                while (keep > 0 && old[keep - 1] != '\n') keep--;
                if (keep == 0) write_header = 1; /* only a header without newline: rewrite it */
                if (truncate(path, (off_t)keep) != 0) {
                    s = ts_fail(TS_ERR_IO, "%s: cannot cut its partial last line (%s)", path, strerror(errno));
                    free(old);
                    free(header);
                    return s;
                }
            }
        }
        free(old);
    }
    m->f = fopen(path, append ? "a" : "w");
    if (!m->f) {
        free(header);
        return ts_fail(TS_ERR_IO, "%s: cannot open for writing (%s)", path, strerror(errno));
    }
    m->ncols = n;
    if (write_header) fprintf(m->f, "%s\n", header);
    free(header);
    if (fflush(m->f) != 0 || ferror(m->f)) {
        fclose(m->f);
        m->f = NULL;
        return ts_fail(TS_ERR_IO, "%s: cannot write the header", path);
    }
    return TS_OK;
}

ts_status ts_metrics_row(ts_metrics *m, const double *values) {
    if (!m->f) return ts_fail(TS_ERR_ARG, "%s: metrics file is not open", m->path[0] ? m->path : "metrics");
    for (int i = 0; i < m->ncols; i++) {
        double x = values[i];
        if (i) fputc(',', m->f);
        if (isnan(x))
            fputs("nan", m->f);
        else if (x == floor(x) && fabs(x) < 1e15)
            fprintf(m->f, "%.0f", x == 0 ? 0.0 : x); /* no "-0" */
        else
            fprintf(m->f, "%.6g", x);
    }
    fputc('\n', m->f);
    if (fflush(m->f) != 0 || ferror(m->f)) return ts_fail(TS_ERR_IO, "%s: write failed (%s)", m->path, strerror(errno));
    return TS_OK;
}

ts_status ts_metrics_close(ts_metrics *m) {
    if (!m->f) return TS_OK;
    int bad = ferror(m->f) != 0;
    if (fclose(m->f) != 0) bad = 1;
    m->f = NULL;
    if (bad) return ts_fail(TS_ERR_IO, "%s: write failed", m->path);
    return TS_OK;
}

ts_status ts_metrics_truncate_after(const char *path, long step) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) return TS_OK;
        return ts_fail(TS_ERR_IO, "%s: cannot stat (%s)", path, strerror(errno));
    }
    char *text;
    size_t len;
    ts_status s = ts_read_file(path, &text, &len);
    if (s) return s;
    char *out = ts_malloc(len + 1, "metrics rewrite");
    if (!out) {
        free(text);
        return TS_ERR_NOMEM;
    }
    size_t n = 0;
    char *line = text;
    int first = 1;
    while (line < text + len) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        if (!nl) break; /* a partial last line: dropped */
        size_t l = (size_t)(nl - line) + 1;
        int keep = first;
        if (!first) {
            char *end;
            errno = 0;
            double v = strtod(line, &end);
            keep = end != line && (*end == ',' || *end == '\n' || *end == '\r') && errno == 0 && v <= (double)step;
        }
        if (keep) {
            memcpy(out + n, line, l);
            n += l;
        }
        first = 0;
        line = nl + 1;
    }
    free(text);
    s = ts_write_file_atomic(path, out, n);
    free(out);
    return s;
}
