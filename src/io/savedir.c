/**
 * @file savedir.c
 * @brief Folder saved as a unit: fill a sibling, swap it into place, clean up.
 */
#define _GNU_SOURCE /* renameat2 and RENAME_EXCHANGE (glibc >= 2.28) */
#include "io/savedir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/fileio.h"

static int save_count; /* ts_savedir_begin() calls so far, for TS_TEST_KILL_AT's :N */

void ts_savedir_test_point(const char *stage) {
    const char *want = getenv("TS_TEST_KILL_AT");
    if (!want || !*want) return;
    size_t len = strcspn(want, ":");
    long nth = want[len] == ':' ? strtol(want + len + 1, NULL, 10) : 1;
    if (strlen(stage) == len && strncmp(want, stage, len) == 0 && nth == save_count) raise(SIGKILL);
}

/* ---- helpers ------------------------------------------------------------------ */

static int join(char *out, size_t cap, const char *dir, const char *name) {
    return snprintf(out, cap, "%s/%s", dir, name) < (int)cap;
}

static int pid_alive(long pid) {
    return pid > 0 && pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* "<prefix>.tmp.<pid>" (fileio.c's atomic writes) or "<prefix>.tmp-<pid>" (a save's
 * folder) whose process is gone: a leftover of a killed write. */
static int dead_temp(const char *name, char sep) {
    size_t n = strlen(name), d = n;
    while (d > 0 && name[d - 1] >= '0' && name[d - 1] <= '9') d--; /* the trailing pid */
    if (d == n || d < 6 || name[d - 1] != sep || strncmp(name + d - 5, ".tmp", 4) != 0) return 0;
    return !pid_alive(strtol(name + d, NULL, 10));
}

static int is_own(const char *name, const char *const *own) {
    for (; own && *own; own++)
        if (strcmp(name, *own) == 0) return 1;
    return 0;
}

/* A dead "<own file>.tmp.<pid>": only the caller's own names, never a user's file that happens to look alike. */
static int dead_own_temp(const char *name, const char *const *own) {
    if (!dead_temp(name, '.')) return 0;
    for (; own && *own; own++) {
        size_t n = strlen(*own);
        if (strncmp(name, *own, n) == 0 && strncmp(name + n, ".tmp.", 5) == 0 && !strchr(name + n + 5, '.')) return 1;
    }
    return 0;
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* The folder's resolved path (realpath, so a symlinked folder is saved where it points). */
static ts_status resolve(const char *dir, char *out) {
    char buf[PATH_MAX];
    if (!realpath(dir, buf)) return ts_fail(TS_ERR_IO, "%s: cannot resolve the folder (%s)", dir, strerror(errno));
    if (strlen(buf) >= 4096) return ts_fail(TS_ERR_ARG, "%s: path too long", dir);
    if (strcmp(buf, "/") == 0) return ts_fail(TS_ERR_ARG, "%s: cannot save a checkpoint as the root folder", dir);
    strcpy(out, buf);
    return TS_OK;
}

/*
 * Empty @p from into @p into, then remove it: a dead temporary or one of the
 * caller's own files is deleted; a second name of a file @p into already has
 * (a hard link made by commit) is deleted; anything else @p into lacks (the
 * user's sub-folders, files created during a save) is moved there. What
 * cannot be handled that way (a different file of the same name) stays, and
 * so does the folder: nothing is ever deleted that exists nowhere else.
 */
static void drain_and_remove(const char *from, const char *into, const char *const *own) {
    DIR *d = opendir(from);
    if (!d) return;
    struct dirent *e;
    char src[8400], dst[8400];
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) continue;
        struct stat a, b;
        if (!join(src, sizeof src, from, n) || !join(dst, sizeof dst, into, n) || lstat(src, &a) != 0) continue;
        int plain = !S_ISDIR(a.st_mode);
        if (plain && (dead_own_temp(n, own) || is_own(n, own))) {
            unlink(src);
        } else if (lstat(dst, &b) == 0) {
            if (plain && a.st_dev == b.st_dev && a.st_ino == b.st_ino) unlink(src);
        } else {
            (void)rename(src, dst);
        }
    }
    closedir(d);
    (void)rmdir(from); /* fails, harmlessly, if something had to stay */
}

/* ---- the save ------------------------------------------------------------------ */

ts_status ts_savedir_clean(const char *dir, const char *const *own_files) {
    struct stat sb;
    if (stat(dir, &sb) != 0) return TS_OK;
    char real[4096];
    ts_status st = resolve(dir, real);
    if (st) return st;
    /* `NAME.tmp.<pid>` files of killed atomic writes inside the folder */
    DIR *d = opendir(real);
    if (d) {
        struct dirent *e;
        char path[8400];
        while ((e = readdir(d)))
            if (dead_own_temp(e->d_name, own_files) && join(path, sizeof path, real, e->d_name) && lstat(path, &sb) == 0 &&
                S_ISREG(sb.st_mode))
                unlink(path);
        closedir(d);
    }
    /* `<base>.tmp-<pid>` siblings of killed saves */
    char parent[4096];
    strcpy(parent, real);
    char *slash = strrchr(parent, '/');
    const char *base = slash + 1;
    size_t blen = strlen(base);
    if (slash == parent) parent[1] = '\0', base = real + 1;
    else *slash = '\0';
    d = opendir(parent);
    if (!d) return TS_OK;
    struct dirent *e;
    char path[8400];
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) == 0 && n[blen] == '.' && dead_temp(n, '-') && strrchr(n, '.') == n + blen &&
            join(path, sizeof path, parent, n))
            drain_and_remove(path, real, own_files);
    }
    closedir(d);
    return TS_OK;
}

ts_status ts_savedir_check(const char *dir) {
    char real[4096], cwd[PATH_MAX];
    ts_status st = resolve(dir, real);
    if (st) return st;
    /* The folder is replaced as a whole: the process (and the shell that started
     * it) would be left standing in a deleted folder. */
    size_t n = strlen(real);
    if (getcwd(cwd, sizeof cwd) && strncmp(cwd, real, n) == 0 && (cwd[n] == '\0' || cwd[n] == '/'))
        return ts_fail(TS_ERR_ARG, "%s: cannot save a checkpoint into the current folder or one above it "
                                   "(a save replaces the whole folder); give a sub-folder", dir);
    return TS_OK;
}

ts_status ts_savedir_begin(ts_savedir *s, const char *dir, const char *const *own_files) {
    memset(s, 0, sizeof *s);
    s->own_files = own_files;
    save_count++;
    ts_status st = ts_mkdir_p(dir);
    if (st) return st;
    if ((st = ts_savedir_check(dir))) return st;
    if ((st = resolve(dir, s->dir))) return st;
    if ((st = ts_savedir_clean(s->dir, own_files))) return st;
    snprintf(s->tmp, sizeof s->tmp, "%s.tmp-%ld", s->dir, (long)getpid());
    struct stat sb;
    if (mkdir(s->tmp, 0777) != 0) {
        ts_status e = ts_fail(TS_ERR_IO, "%s: cannot create the folder to save into (%s)", s->tmp, strerror(errno));
        s->tmp[0] = '\0';
        return e;
    }
    if (stat(s->dir, &sb) == 0) (void)chmod(s->tmp, sb.st_mode & 07777); /* keep the folder's permissions */
    ts_savedir_test_point("begin");
    return TS_OK;
}

void ts_savedir_abort(ts_savedir *s) {
    if (s->tmp[0]) drain_and_remove(s->tmp, s->dir, s->own_files);
    s->tmp[0] = '\0';
}

/* Hard-link into s->tmp every file of s->dir the save does not replace. */
static void link_others(const ts_savedir *s) {
    DIR *d = opendir(s->dir);
    if (!d) return;
    struct dirent *e;
    char src[8400], dst[8400];
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        struct stat a, b;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || dead_own_temp(n, s->own_files)) continue;
        if (!join(src, sizeof src, s->dir, n) || !join(dst, sizeof dst, s->tmp, n)) continue;
        if (lstat(dst, &b) == 0 || lstat(src, &a) != 0 || S_ISDIR(a.st_mode)) continue; /* replaced, or moved later */
        (void)linkat(AT_FDCWD, src, AT_FDCWD, dst, 0); /* on failure it is moved after the swap instead */
    }
    closedir(d);
}

/* No folder exchange here: move the new files over the old ones one by one. */
static ts_status rename_each(ts_savedir *s) {
    DIR *d = opendir(s->tmp);
    if (!d) return ts_fail(TS_ERR_IO, "%s: cannot list (%s)", s->tmp, strerror(errno));
    struct dirent *e;
    char src[8400], dst[8400];
    ts_status st = TS_OK;
    while ((e = readdir(d)) && !st) {
        const char *n = e->d_name;
        struct stat a, b;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) continue;
        if (!join(src, sizeof src, s->tmp, n) || !join(dst, sizeof dst, s->dir, n) || lstat(src, &a) != 0) continue;
        if (lstat(dst, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) continue; /* a carried-over link */
        if (rename(src, dst) != 0) st = ts_fail(TS_ERR_IO, "%s: cannot rename into place (%s)", dst, strerror(errno));
    }
    closedir(d);
    return st;
}

ts_status ts_savedir_commit(ts_savedir *s) {
    if (!s->tmp[0]) return ts_fail(TS_ERR_ARG, "ts_savedir_commit: no save in progress");
    link_others(s);
    fsync_dir(s->tmp);
    ts_savedir_test_point("linked");
    int swapped = 0;
#ifdef RENAME_EXCHANGE
    if (renameat2(AT_FDCWD, s->tmp, AT_FDCWD, s->dir, RENAME_EXCHANGE) == 0) {
        swapped = 1;
    } else if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != EXDEV && errno != EBUSY) {
        ts_status st = ts_fail(TS_ERR_IO, "%s: cannot swap the new checkpoint into place (%s); the previous one is untouched",
                               s->dir, strerror(errno));
        ts_savedir_abort(s);
        return st;
    }
#endif
    if (!swapped) {
        ts_status st = rename_each(s);
        if (st) {
            ts_savedir_abort(s);
            return st;
        }
    }
    char parent[4096];
    strcpy(parent, s->dir);
    *strrchr(parent, '/') = '\0';
    fsync_dir(parent[0] ? parent : "/");
    fsync_dir(s->dir);
    ts_savedir_test_point("swapped");
    drain_and_remove(s->tmp, s->dir, s->own_files); /* the previous contents */
    s->tmp[0] = '\0';
    ts_savedir_test_point("done");
    return TS_OK;
}
