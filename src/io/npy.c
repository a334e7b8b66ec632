/**
 * @file npy.c
 * @brief NumPy .npy v1.0 writer.
 */
#include "io/npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "io/fileio.h"

/** Write a 4-byte-element array; @p descr is '<f4' or '<i4'. */
static ts_status npy_save4(const char *path, const void *data, int ndim, const int *shape, const char *descr) {
    if (!path || ndim < 0 || ndim > TS_NPY_MAX_DIMS || (ndim > 0 && !shape))
        return ts_fail(TS_ERR_ARG, "%s: rank %d is not in 0..%d", path ? path : "npy", ndim, TS_NPY_MAX_DIMS);
    /* The dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (3,), } — a 1-tuple needs its comma. */
    char dict[400];
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && numel > SIZE_MAX / 4 / (size_t)shape[i]))
            return ts_fail(TS_ERR_ARG, "%s: dimension %d is %d", path, i, shape[i]);
        numel *= (size_t)shape[i];
        n += (size_t)snprintf(dict + n, sizeof dict - n, "%s%d", i ? ", " : "", shape[i]);
    }
    if (numel > 0 && !data) return ts_fail(TS_ERR_ARG, "%s: no data", path);
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", ndim == 1 ? "," : "");
    if (n >= sizeof dict) return ts_fail(TS_ERR_ARG, "%s: header too long", path);
    /* Pad with spaces and a final '\n' so 10 + header length is a multiple of 64. */
    size_t header_len = n + 1;
    while ((10 + header_len) % 64 != 0) header_len++;

    unsigned char head[10 + sizeof dict + 64];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (unsigned char)(header_len & 0xff);
    head[9] = (unsigned char)(header_len >> 8);
    memcpy(head + 10, dict, n);
    memset(head + 10 + n, ' ', header_len - n - 1);
    head[10 + header_len - 1] = '\n';

    ts_atomic_file af;
    ts_status st = ts_atomic_open(&af, path);
    if (st) return st;
    int ok = fwrite(head, 1, 10 + header_len, af.f) == 10 + header_len;
    /* Elements as little-endian bytes, in chunks (correct on any host). */
    const unsigned char *src = data;
    unsigned char buf[4096];
    for (size_t i = 0; ok && i < numel * 4; i += sizeof buf) {
        size_t m = numel * 4 - i < sizeof buf ? numel * 4 - i : sizeof buf;
        for (size_t k = 0; k < m; k += 4) {
            uint32_t x;
            memcpy(&x, src + i + k, 4);
            buf[k] = (unsigned char)x;
            buf[k + 1] = (unsigned char)(x >> 8);
            buf[k + 2] = (unsigned char)(x >> 16);
            buf[k + 3] = (unsigned char)(x >> 24);
        }
        ok = fwrite(buf, 1, m, af.f) == m;
    }
    if (!ok) {
        int err = errno;
        ts_atomic_abort(&af);
        return ts_fail(TS_ERR_IO, "%s: write failed (%s)", path, strerror(err));
    }
    return ts_atomic_commit(&af);
}

ts_status ts_npy_save_f32(const char *path, const float *data, int ndim, const int *shape) {
    return npy_save4(path, data, ndim, shape, "<f4");
}

ts_status ts_npy_save_i32(const char *path, const int32_t *data, int ndim, const int *shape) {
    return npy_save4(path, data, ndim, shape, "<i4");
}
