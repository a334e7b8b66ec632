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

/**
 * @brief Refuse, with one line naming @p path, anything that is not a regular
 * file: a missing file, a folder ("is a folder, expected a file"), a FIFO,
 * socket or device (which would block or never end). Only stat()s the path.
 */
ts_status ts_check_input_file(const char *path);

/**
 * @brief Open a regular file for reading, refusing anything else before
 * opening it (ts_check_input_file()); never blocks on a FIFO.
 * @return a file descriptor, or -1 with ts_last_error() set.
 */
int ts_open_input_file(const char *path);

/** @brief Read a whole regular file (see ts_open_input_file()); *data is NUL-terminated and must be freed by the caller. */
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
