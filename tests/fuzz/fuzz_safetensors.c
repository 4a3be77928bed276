/* libFuzzer target for st_open: the input bytes are a whole .safetensors
 * file. st_open takes a path (it maps the file), so the bytes go into one
 * memfd, reopened through /proc/self/fd. Build and run: tests/fuzz/README.md. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io/safetensors.h"

static int memfd = -1;
static char memfd_path[64];
/* Keeps the byte-touching loop from being optimised away. */
static volatile unsigned sink;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_safetensors: invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (memfd < 0) {
        memfd = memfd_create("fuzz_safetensors", MFD_CLOEXEC);
        check(memfd >= 0, "memfd_create");
        snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    }
    check(ftruncate(memfd, 0) == 0, "ftruncate");
    check(pwrite(memfd, data, size, 0) == (ssize_t)size, "pwrite");

    st_file *f;
    g4_error err;
    if (st_open(memfd_path, &f, &err) != 0) {
        check(f == NULL && err.msg[0] != '\0', "failure leaves no file and a message");
        return 0;
    }
    /* Accepted files must keep every promise the API makes: each view lies
     * inside the input (touching every byte lets a bad one fault), names
     * round-trip through st_find, and sizes agree with shapes. */
    size_t n = st_count(f);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        const g4_tensor *t = st_tensor(f, i);
        check(t != NULL && t->name != NULL, "tensor has a name");
        check(st_find(f, t->name) == t, "st_find finds each tensor");
        check(t->ndim >= 0 && t->ndim <= G4_MAX_DIMS, "ndim in range");
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            numel *= t->shape[d];
        check(numel == t->numel, "numel matches shape");
        check(t->nbytes == (size_t)t->numel * g4_dtype_size(t->dtype), "nbytes");
        const uint8_t *p = t->data;
        for (size_t b = 0; b < t->nbytes; b++)
            sum += p[b];
        check((uintptr_t)p % g4_dtype_size(t->dtype) == 0, "aligned");
    }
    check(st_tensor(f, n) == NULL, "st_tensor past the end");
    (void)st_metadata(f, "format");
    sink = sum;
    st_close(f);
    return 0;
}
