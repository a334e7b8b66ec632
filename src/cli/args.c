/**
 * @file args.c
 * @brief Flag parsing and error printing shared by every subcommand.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/common.h"

int cli_error(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ts_one_line(msg, sizeof msg); /* a flag's value or a file's text may hold a newline */
    fprintf(stderr, "tinyseek: %s\n", msg);
    return 2;
}

int cli_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

int cli_lib_error(void) { return cli_error("%s", ts_last_error()[0] ? ts_last_error() : "unknown error"); }

static void print_usage(const char *cmd, const char *usage, const cli_opt *opts, int n_opts) {
    printf("usage: tinyseek %s %s\n", cmd, usage);
    for (int i = 0; i < n_opts; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s%s", opts[i].name, opts[i].type == OPT_FLAG ? "" : " X");
        printf("  %-24s %s", flag, opts[i].help);
        switch (opts[i].type) {
        case OPT_INT: printf(" (default %d)", *(int *)opts[i].dest); break;
        case OPT_LONG: printf(" (default %ld)", *(long *)opts[i].dest); break;
        case OPT_U64: printf(" (default %llu)", (unsigned long long)*(uint64_t *)opts[i].dest); break;
        case OPT_FLOAT: printf(" (default %g)", *(float *)opts[i].dest); break;
        case OPT_STR:
            if (*(const char **)opts[i].dest) printf(" (default %s)", *(const char **)opts[i].dest);
            break;
        case OPT_FLAG: break;
        }
        putchar('\n');
    }
}

static int set_value(const char *cmd, const cli_opt *o, const char *val) {
    char *end = NULL;
    errno = 0;
    int ranged = o->min <= o->max;
    switch (o->type) {
    case OPT_INT:
    case OPT_LONG: {
        long x = strtol(val, &end, 10);
        if (errno || end == val || *end)
            return cli_error("%s: --%s expects an integer, got '%s'", cmd, o->name, val);
        if (ranged && (x < o->min || x > o->max))
            return cli_error("%s: --%s must be between %.0f and %.0f, got %ld", cmd, o->name, o->min, o->max, x);
        if (o->type == OPT_INT) *(int *)o->dest = (int)x;
        else *(long *)o->dest = x;
        return 0;
    }
    case OPT_U64: {
        if (val[0] == '-') return cli_error("%s: --%s expects a non-negative integer, got '%s'", cmd, o->name, val);
        unsigned long long x = strtoull(val, &end, 10);
        if (errno || end == val || *end)
            return cli_error("%s: --%s expects a non-negative integer, got '%s'", cmd, o->name, val);
        *(uint64_t *)o->dest = (uint64_t)x;
        return 0;
    }
    case OPT_FLOAT: {
        double x = strtod(val, &end);
        if (errno || end == val || *end || !isfinite(x) || fabs(x) > FLT_MAX)
            return cli_error("%s: --%s expects a finite number, got '%s'", cmd, o->name, val);
        if (ranged && (x < o->min || x > o->max))
            return cli_error("%s: --%s must be between %g and %g, got %g", cmd, o->name, o->min, o->max, x);
        *(float *)o->dest = (float)x;
        return 0;
    }
    case OPT_STR:
        *(const char **)o->dest = val;
        return 0;
    case OPT_FLAG:
        return cli_error("%s: --%s takes no value", cmd, o->name);
    }
    return 2;
}

int cli_parse(const char *cmd, const char *usage, int argc, char **argv, const cli_opt *opts,
              int n_opts, const char **positional, int max_positional, int *n_positional) {
    int np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_usage(cmd, usage, opts, n_opts);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (a[0] == '-' && a[1] != '\0' && !(a[1] >= '0' && a[1] <= '9'))
                return cli_error("%s: unknown flag '%s' (see tinyseek %s --help)", cmd, a, cmd);
            if (np >= max_positional)
                return cli_error("%s: unexpected argument '%s' (see tinyseek %s --help)", cmd, a, cmd);
            positional[np++] = a;
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = NULL;
        for (int k = 0; k < n_opts; k++)
            if (strlen(opts[k].name) == len && strncmp(opts[k].name, name, len) == 0) o = &opts[k];
        if (!o) return cli_error("%s: unknown flag '--%.*s' (see tinyseek %s --help)", cmd, (int)len, name, cmd);
        if (o->type == OPT_FLAG) {
            if (eq) return cli_error("%s: --%s takes no value", cmd, o->name);
            *(int *)o->dest = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) return cli_error("%s: --%s needs a value", cmd, o->name);
            val = argv[++i];
        }
        int rc = set_value(cmd, o, val);
        if (rc) return rc;
    }
    if (n_positional) *n_positional = np;
    return 0;
}

void cli_train_apply(ts_train_opts *o, const cli_train_flags *f) {
    ts_set_num_threads(f->threads);
    o->adamw.weight_decay = f->wd;
    o->resume = f->resume;
    o->quiet = f->quiet;
}

int cli_train_check(const char *cmd, const ts_train_opts *o) {
    if (o->warmup >= o->steps && o->steps > 1)
        return cli_error("%s: --warmup (%ld) must be below --steps (%ld)", cmd, o->warmup, o->steps);
    return 0;
}
