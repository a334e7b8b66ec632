/**
 * @file fileio.h
 * @brief Whole-file reads and atomic writes (temporary file, fsync, rename),
 *        so that a crash or a full disk never leaves a half-written file in
 *        place of one the user saved.
 */
#ifndef TS_FILEIO_H
#define TS_FILEIO_H

#include <stdio.h>

#include "core/common.h"

/** @brief Read a whole file; *data is NUL-terminated and must be freed by the caller. */
ts_status ts_read_file(const char *path, char **data, size_t *len);

/** A file being written under a temporary name until ts_atomic_commit(). */
typedef struct {
    FILE *f;          /**< write through this */
    char path[4096];  /**< final name */
    char tmp[4120];   /**< temporary name beside it */
} ts_atomic_file;

/** @brief Open "<path>.tmp.<pid>" for writing. */
ts_status ts_atomic_open(ts_atomic_file *af, const char *path);

/** @brief Flush, fsync, close and rename onto the final name. On failure the old file is untouched. */
ts_status ts_atomic_commit(ts_atomic_file *af);

/** @brief Close and delete the temporary file (the old file, if any, is untouched). */
void ts_atomic_abort(ts_atomic_file *af);

/** @brief Write @p len bytes to @p path atomically. */
ts_status ts_write_file_atomic(const char *path, const void *data, size_t len);

/** @brief Create a folder (and its parents) if missing. */
ts_status ts_mkdir_p(const char *path);

#endif
