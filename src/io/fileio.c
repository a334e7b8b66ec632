/**
 * @file fileio.c
 * @brief Whole-file reads, atomic writes, mkdir -p.
 */
#include "io/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ts_status ts_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ts_fail(TS_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return ts_fail(TS_ERR_IO, "%s: cannot seek (not a regular file?)", path);
    }
    long size = ftell(f);
    if (size < 0) {
        fclose(f);
        return ts_fail(TS_ERR_IO, "%s: cannot tell its size", path);
    }
    rewind(f);
    char *buf = ts_malloc((size_t)size + 1, path);
    if (!buf) {
        fclose(f);
        return TS_ERR_NOMEM;
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    if (got != (size_t)size) {
        free(buf);
        return ts_fail(TS_ERR_IO, "%s: short read (%zu of %ld bytes)", path, got, size);
    }
    buf[size] = '\0';
    *data = buf;
    if (len) *len = (size_t)size;
    return TS_OK;
}

ts_status ts_atomic_open(ts_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path) return ts_fail(TS_ERR_ARG, "%s: path too long", path);
    strcpy(af->path, path);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) return ts_fail(TS_ERR_IO, "%s: cannot create (%s)", af->tmp, strerror(errno));
    return TS_OK;
}

ts_status ts_atomic_commit(ts_atomic_file *af) {
    if (!af->f) return ts_fail(TS_ERR_ARG, "%s: not open", af->path);
    int bad = ferror(af->f) || fflush(af->f) != 0 || fsync(fileno(af->f)) != 0;
    int err = errno;
    if (fclose(af->f) != 0) bad = 1;
    af->f = NULL;
    if (bad) {
        remove(af->tmp);
        return ts_fail(TS_ERR_IO, "%s: write failed (%s); the previous file is untouched", af->path, strerror(err));
    }
    if (rename(af->tmp, af->path) != 0) {
        err = errno;
        remove(af->tmp);
        return ts_fail(TS_ERR_IO, "%s: cannot rename into place (%s)", af->path, strerror(err));
    }
    return TS_OK;
}

void ts_atomic_abort(ts_atomic_file *af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    if (af->tmp[0]) remove(af->tmp);
}

ts_status ts_write_file_atomic(const char *path, const void *data, size_t len) {
    ts_atomic_file af;
    ts_status st = ts_atomic_open(&af, path);
    if (st) return st;
    if (len && fwrite(data, 1, len, af.f) != len) {
        ts_atomic_abort(&af);
        return ts_fail(TS_ERR_IO, "%s: write failed", path);
    }
    return ts_atomic_commit(&af);
}

ts_status ts_mkdir_p(const char *path) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return ts_fail(TS_ERR_ARG, "%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return ts_fail(TS_ERR_IO, "%s: cannot create folder (%s)", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return ts_fail(TS_ERR_IO, "%s: cannot create folder (%s)", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) return ts_fail(TS_ERR_IO, "%s: exists and is not a folder", buf);
    return TS_OK;
}
