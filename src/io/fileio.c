/**
 * @file fileio.c
 * @brief Whole-file reads, atomic writes, mkdir -p.
 */
#include "io/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ts_status ts_check_input_file(const char *path) {
    struct stat sb;
    if (!path || !*path) return ts_fail(TS_ERR_ARG, "no file name given");
    if (stat(path, &sb) != 0) return ts_fail(TS_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return ts_fail(TS_ERR_IO, "%s: is a folder, expected a file", path);
    if (!S_ISREG(sb.st_mode))
        return ts_fail(TS_ERR_IO, "%s: not a regular file (a pipe, socket or device cannot be read as input)", path);
    return TS_OK;
}

int ts_open_input_file(const char *path) {
    /* stat first: opening a FIFO for reading would block until a writer came.
     * O_NONBLOCK covers the file being swapped for one between stat and open;
     * the descriptor is checked again and made blocking for the reads. */
    if (ts_check_input_file(path)) return -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        ts_fail(TS_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        ts_fail(TS_ERR_IO, "%s: not a regular file", path);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

ts_status ts_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    if (len) *len = 0;
    int fd = ts_open_input_file(path);
    if (fd < 0) return TS_ERR_IO;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < 0 || (uint64_t)sb.st_size >= SIZE_MAX) {
        close(fd);
        return ts_fail(TS_ERR_IO, "%s: cannot tell its size", path);
    }
    size_t size = (size_t)sb.st_size;
    char *buf = ts_malloc(size + 1, path);
    if (!buf) {
        close(fd);
        return TS_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            close(fd);
            free(buf);
            return ts_fail(TS_ERR_IO, "%s: read failed (%s)", path, strerror(err));
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (got != size) {
        free(buf);
        return ts_fail(TS_ERR_IO, "%s: short read (%zu of %zu bytes; did the file change?)", path, got, size);
    }
    buf[size] = '\0';
    *data = buf;
    if (len) *len = size;
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
