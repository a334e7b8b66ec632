/**
 * @file savedir.h
 * @brief A folder saved as a unit: a reader sees the previous complete
 *        contents or the new complete contents, never a mix.
 *
 * A checkpoint is several files (config, weights, tokenizer, training state)
 * that only make sense together. Renaming each into place one after another
 * leaves a mix when the process dies between two renames. Instead:
 *
 *   1. ts_savedir_begin() creates a fresh sibling folder `DIR.tmp-PID`;
 *   2. the caller writes every file into it (each fsynced);
 *   3. ts_savedir_commit() hard-links into it everything of DIR that is not
 *      being replaced (the user's notes, a metrics CSV still being appended
 *      to: a link shares the file, so an open writer keeps writing to it),
 *      fsyncs the folder, and swaps it with DIR in one step (Linux
 *      `renameat2(RENAME_EXCHANGE)`); the old contents, now under the
 *      temporary name, are removed, after moving anything that could not be
 *      linked (a sub-folder, a file created during the save) into DIR.
 *
 * A process killed anywhere leaves DIR either as it was or as new, and maybe a
 * stale `DIR.tmp-PID` beside it; the next ts_savedir_begin() or
 * ts_savedir_clean() removes stale ones, first moving into DIR whatever in
 * them is neither one of the caller's own files nor already in DIR, so
 * nothing the user kept there is ever lost. Where the filesystem cannot
 * exchange two folders, commit falls back to renaming file by file (a reader
 * may then see a mix; the training state's weights hash is the safety net).
 *
 * Test hook: the environment variable `TS_TEST_KILL_AT=STAGE[:N]` makes
 * ts_savedir_test_point(STAGE) raise SIGKILL (during the N-th save of the
 * process, default the first), so a test can stop a save at every stage:
 * `begin` (empty temporary folder), the caller's own stages (one per file
 * written), `linked` (everything in place, before the swap), `swapped` (new
 * folder in place, old one not yet removed), `done` (save complete).
 * It is read only on the save path and does nothing when unset.
 */
#ifndef TS_SAVEDIR_H
#define TS_SAVEDIR_H

#include "core/common.h"

/** A save in progress. */
typedef struct {
    char dir[4096];                /**< the folder being replaced, resolved (no symlink, no trailing slash) */
    char tmp[4200];                /**< the fresh sibling being filled: `<dir>.tmp-PID` */
    const char *const *own_files;  /**< NULL-terminated names the caller writes (stale copies are discarded) */
} ts_savedir;

/**
 * @brief Start saving @p dir as a unit: create @p dir if missing, remove stale
 *        temporaries of earlier killed saves, create the empty folder s->tmp.
 * @param s         the save
 * @param dir       the folder the files belong in
 * @param own_files NULL-terminated list of file names the caller may write;
 *                  copies of them in stale temporaries are discarded, never
 *                  moved into @p dir. Must stay valid until commit/abort.
 */
ts_status ts_savedir_begin(ts_savedir *s, const char *dir, const char *const *own_files);

/**
 * @brief Can @p dir (which must exist) be saved as a unit? Not the root, not
 *        the current folder or one above it (a save replaces the folder, and
 *        the process would be left in a deleted one). Checked by
 *        ts_savedir_begin(); call it before long work whose result goes there.
 */
ts_status ts_savedir_check(const char *dir);

/**
 * @brief Put s->tmp in place of s->dir as described above. On failure before
 *        the swap, s->dir is untouched and s->tmp removed.
 */
ts_status ts_savedir_commit(ts_savedir *s);

/** @brief Give up a save: remove s->tmp (s->dir is untouched). */
void ts_savedir_abort(ts_savedir *s);

/**
 * @brief Remove stale temporaries of @p dir left by killed saves (and
 *        `NAME.tmp.PID` files of killed atomic writes inside it), rescuing
 *        into @p dir anything in them that is not one of @p own_files and not
 *        already there. A missing @p dir is not an error.
 */
ts_status ts_savedir_clean(const char *dir, const char *const *own_files);

/** @brief Test hook: SIGKILL this process here if TS_TEST_KILL_AT names @p stage (see above). */
void ts_savedir_test_point(const char *stage);

#endif
