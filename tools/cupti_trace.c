/* A kernel timeline for any CUDA program, CUDA graphs included (Nsight
 * Systems is not on the GPU machine): preload it, and every kernel's start
 * and end (GPU nanoseconds), stream and name go to $G4_TRACE (CSV) when the
 * program exits. tools/trace_summary.py turns that into a per-token table.
 *   cc -shared -fPIC -O2 -I/usr/local/cuda/include tools/cupti_trace.c \
 *      -L/usr/local/cuda/lib -lcupti -Wl,-rpath,/usr/local/cuda/lib -o build-cuda/libcupti_trace.so
 *   G4_TRACE=trace.csv LD_PRELOAD=build-cuda/libcupti_trace.so build-cuda/gemma4 bench --gpu ... */
#include <cupti.h>
#include <stdio.h>
#include <stdlib.h>

#define TRACE_BUFFER (32u << 20)

static FILE *out;

static void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records) {
    *size = TRACE_BUFFER;
    *buffer = aligned_alloc(8, TRACE_BUFFER);
    *max_records = 0;
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid) {
    (void)ctx;
    (void)stream;
    (void)size;
    CUpti_Activity *rec = NULL;
    while (out && cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
        if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
        const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)rec;
        fprintf(out, "%llu,%llu,%u,%s\n", (unsigned long long)k->start, (unsigned long long)k->end, k->streamId, k->name);
    }
    size_t dropped = 0;
    if (cuptiActivityGetNumDroppedRecords(NULL, 0, &dropped) == CUPTI_SUCCESS && dropped)
        fprintf(stderr, "cupti_trace: %zu records dropped\n", dropped);
    free(buffer);
}

__attribute__((constructor)) static void trace_start(void) {
    const char *path = getenv("G4_TRACE");
    if (!path || !(out = fopen(path, "w"))) return;
    fprintf(out, "start_ns,end_ns,stream,name\n");
    if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS ||
        cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS)
        fprintf(stderr, "cupti_trace: cannot enable kernel activity records\n");
}

__attribute__((destructor)) static void trace_stop(void) {
    if (!out) return;
    cuptiActivityFlushAll(1);
    fclose(out);
    out = NULL;
}
