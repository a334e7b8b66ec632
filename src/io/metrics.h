/**
 * @file metrics.h
 * @brief Metrics as CSV: a header row, then one row per step, flushed as it
 *        is written so gnuplot (or `tail -f`) can read a run in progress.
 *
 *     step,loss,lr,tok_per_s
 *     1,5.54518,3e-05,41230.5
 *     2,5.41022,6e-05,42011.9
 *
 * Resuming a run: call ts_metrics_truncate_after() with the step the training
 * state was saved at (rows the interrupted run wrote after it would be
 * written again), then ts_metrics_open() with append = 1.
 */
#ifndef TS_METRICS_H
#define TS_METRICS_H

#include <stdio.h>

#include "core/common.h"

/** An open metrics file. */
typedef struct {
    FILE *f;          /**< the file, opened for appending rows */
    int ncols;        /**< number of columns every row has */
    char path[4096];  /**< its name, for error messages */
} ts_metrics;

/**
 * @brief Open a metrics CSV with the given column names.
 *
 * With @p append = 0 the file is created or emptied and the header row written.
 * With @p append = 1 an existing, non-empty file must start with exactly this
 * header (TS_ERR_FORMAT otherwise, naming both headers); a partial last line
 * left by a crash is cut off, and rows are appended after it. A missing or
 * empty file is started as with append = 0.
 * @param m       the metrics file to set up
 * @param path    CSV file name
 * @param columns @p n names; they may not contain commas, quotes or line breaks
 * @param n       number of columns (>= 1)
 * @param append  1 to continue an existing file (a resumed run), 0 to start over
 */
ts_status ts_metrics_open(ts_metrics *m, const char *path, const char *const *columns, int n, int append);

/**
 * @brief Write one row of ncols values and flush it. Whole numbers (|x| < 1e15)
 *        are printed without decimals, others with %.6g; NaN prints "nan".
 */
ts_status ts_metrics_row(ts_metrics *m, const double *values);

/** @brief Close the file; reports a write error that happened since the last row. Safe to call twice. */
ts_status ts_metrics_close(ts_metrics *m);

/**
 * @brief Rewrite @p path atomically keeping the header and the rows whose first
 *        column is <= @p step; rows that do not parse (a partial last line) are
 *        dropped. A missing file is not an error (nothing to keep).
 */
ts_status ts_metrics_truncate_after(const char *path, long step);

#endif
