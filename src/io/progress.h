/**
 * @file progress.h
 * @brief A one-line progress display for long loops (training, BPE merges).
 *
 * On a terminal the line is redrawn in place with `\r`, at most about ten
 * times a second:
 *
 *     train  step 120/600  loss 1.234  12.3k tok/s  ETA 0:42
 *
 * When stderr is not a terminal (a log file, CI) it prints a plain line only
 * at every 10% of the total or every 30 seconds, so logs stay short. With the
 * environment variable TINYSEEK_QUIET=1 only the final line is printed.
 * ts_progress_done() prints the final line with the elapsed time:
 *
 *     train  step 600/600  loss 1.101  in 0:58
 *
 * Everything goes to stderr, so stdout stays clean for results.
 */
#ifndef TS_PROGRESS_H
#define TS_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

/** State of one progress display. The fields after start() may be adjusted by the caller. */
typedef struct {
    char label[48];      /**< first word of every line, e.g. "train" */
    const char *unit;    /**< what is counted ("step" unless changed) */
    long total;          /**< count at completion; <= 0 if unknown (no ETA then) */
    long done;           /**< last count passed to ts_progress_update() */
    double start;        /**< ts_now() at start */
    double last_draw;    /**< when the terminal line was last redrawn */
    double last_line;    /**< when the last plain line was printed */
    long next_mark;      /**< plain mode: the count that prints the next line */
    int tty;             /**< 1: redraw in place; 0: plain lines */
    int quiet;           /**< 1: only the final line (TINYSEEK_QUIET=1) */
    int width;           /**< length of the line on screen, to blank what a shorter one leaves */
    FILE *out;           /**< where lines go (stderr) */
} ts_progress;

/**
 * @brief Start timing and decide the mode: redraw if stderr is a terminal,
 *        quiet if TINYSEEK_QUIET is set to anything but "" or "0".
 * @param p     the display to start
 * @param label first word of every line, e.g. "train"
 * @param total the count at completion (<= 0 if unknown).
 */
void ts_progress_start(ts_progress *p, const char *label, long total);

/**
 * @brief Report that @p done of total are finished; @p fmt (printf-style, may be
 *        NULL) adds the run's numbers, e.g. "loss %.3f  %s tok/s".
 *        Cheap to call every step: it prints only when due.
 */
void ts_progress_update(ts_progress *p, long done, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** @brief Print the final line (always, even when quiet) with the elapsed time. */
void ts_progress_done(ts_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** @brief Write a duration as "0:42", "12:03" or "1:02:03" into @p buf. */
void ts_format_duration(double seconds, char *buf, size_t cap);

/** @brief Write a count compactly: "950", "12.3k", "4.56M", "1.2G" into @p buf. */
void ts_format_si(double x, char *buf, size_t cap);

#endif
