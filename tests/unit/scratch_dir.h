/* Scratch files for the file-format tests: a fresh mkdtemp directory, paths
 * in it (a few rotating buffers, so a caller can hold two), whole-file
 * writes, and removal of the directory with everything in it. */
#ifndef G4_TESTS_SCRATCH_DIR_H
#define G4_TESTS_SCRATCH_DIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static char *tmpdir;

/* template: "/tmp/NAME_XXXXXX" in writable storage; exits on failure. */
static void scratch_dir_make(char *template) {
    tmpdir = mkdtemp(template);
    if (!tmpdir) {
        perror("mkdtemp");
        exit(2);
    }
}

static const char *tmp_path(const char *name) {
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static int scratch_remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

static void scratch_dir_remove(void) { nftw(tmpdir, scratch_remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

#endif
