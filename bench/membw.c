/* Memory read bandwidth with N threads: each thread sums its own 512 MiB
 * slice with 512-bit loads (no prefetch hints: the hardware streams), best
 * of 5 passes, in huge pages. The bound that decode speed is compared against
 * (docs/benchmarks.md). Build: cc -O2 -mavx512f -pthread bench/membw.c -o membw */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { SLICE = 512 << 20 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static pthread_barrier_t start;
static double sink;

static void *reader(void *p) {
    const char *a = p;
    pthread_barrier_wait(&start);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < SLICE; i += 256) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(a + i));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(a + i + 64));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(a + i + 128));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(a + i + 192));
    }
    sink += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2;
    if (n < 1 || n > 64) return 2;
    char *buf = aligned_alloc(1 << 21, (size_t)n * SLICE);
    if (!buf) return 1;
    /* Huge pages, as the repacked weights get (model/repack.c): with 4 KB
     * pages the hardware prefetchers stop at every page and the figure
     * drops by half or more on this VM. */
    madvise(buf, (size_t)n * SLICE, MADV_HUGEPAGE);
    memset(buf, 1, (size_t)n * SLICE);
    double best = 0;
    for (int pass = 0; pass < 5; pass++) {
        pthread_t t[64];
        pthread_barrier_init(&start, NULL, (unsigned)n + 1);
        for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, reader, buf + (size_t)i * SLICE);
        pthread_barrier_wait(&start);
        double t0 = now();
        for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
        double gbs = (double)n * SLICE / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
        pthread_barrier_destroy(&start);
    }
    printf("%d thread(s): %.1f GB/s read\n", n, best);
    return 0;
}
