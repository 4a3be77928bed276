/* G4_GPU_PROFILE=1: where a forward pass spends its GPU time, stage by stage.
 * Each mark records an event on the stream the stage ran on; the time since
 * the previous mark on that stream is charged to the stage, and the totals
 * are printed when the context is freed. Graphs are off while profiling (a
 * replayed graph has no marks), so the launch gaps that graphs and
 * programmatic launches hide are part of every stage's figure. */
#include "cuda/gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROF_EVENTS 8192
#define PROF_STAGES 32

struct gpu_profile {
    cudaEvent_t ev[PROF_EVENTS];
    int stage[PROF_EVENTS], prev[PROF_EVENTS];
    int n, last[2]; /* last mark on the main / side stream */
    const char *name[PROF_STAGES];
    double ms[PROF_STAGES];
    long count[PROF_STAGES];
    int n_stages, forwards;
};

gpu_profile *gpu_profile_new(void) {
    const char *s = getenv("G4_GPU_PROFILE");
    if (!s || !atoi(s)) return NULL;
    gpu_profile *p = (gpu_profile *)calloc(1, sizeof *p);
    if (!p) return NULL;
    for (int i = 0; i < PROF_EVENTS; i++)
        if (cudaEventCreate(&p->ev[i]) != cudaSuccess) { free(p); return NULL; }
    p->last[0] = p->last[1] = -1;
    return p;
}

void gpu_profile_mark(gpu_profile *p, cudaStream_t st, int side, const char *stage) {
    if (!p || p->n >= PROF_EVENTS) return;
    int s = 0;
    while (s < p->n_stages && strcmp(p->name[s], stage)) s++;
    if (s == p->n_stages) {
        if (s == PROF_STAGES) return;
        p->name[p->n_stages++] = stage;
    }
    cudaEventRecord(p->ev[p->n], st);
    p->stage[p->n] = s;
    p->prev[p->n] = p->last[side];
    p->last[side] = p->n++;
}

/* After a forward has finished: charge its marks. */
void gpu_profile_collect(gpu_profile *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        float ms = 0;
        if (p->prev[i] >= 0 && cudaEventElapsedTime(&ms, p->ev[p->prev[i]], p->ev[i]) == cudaSuccess) {
            p->ms[p->stage[i]] += ms;
            p->count[p->stage[i]]++;
        }
    }
    p->n = 0;
    p->last[0] = p->last[1] = -1;
    p->forwards++;
}

void gpu_profile_free(gpu_profile *p) {
    if (!p) return;
    double total = 0;
    for (int s = 0; s < p->n_stages; s++) total += p->ms[s];
    fprintf(stderr, "GPU profile over %d forward passes (%.3f ms of marked stages):\n", p->forwards, total);
    for (int s = 0; s < p->n_stages; s++)
        fprintf(stderr, "  %-16s %9.3f ms  %7ld marks  %8.2f us each\n", p->name[s], p->ms[s], p->count[s],
                p->count[s] ? 1000 * p->ms[s] / p->count[s] : 0.0);
    for (int i = 0; i < PROF_EVENTS; i++) cudaEventDestroy(p->ev[i]);
    free(p);
}
