/* What a hand-off between two decode steps costs on this GPU, for choosing
 * between kernel boundaries and in-kernel waits (docs/cuda.md):
 * - N kernels in a CUDA graph, each with programmatic dependent launch
 *   (griddepcontrol, as gpu_launch), each block doing a dependent read and
 *   write of one line: µs per kernel, for grids of 1 block and of one block
 *   per SM;
 * - one kernel (every block resident at once) that passes N phases
 *   through a counter in memory (every block adds 1 after its write, and waits until the
 *   counter reaches its phase's count): µs per phase.
 *   nvcc -O3 -arch=sm_90 -o /tmp/probe tools/boundary_probe.cu && /tmp/probe */
#include <cuda_runtime.h>
#include <stdio.h>

#define N 512

static __global__ void step_kernel(float *buf, int i) {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    if (threadIdx.x == 0) buf[blockIdx.x * 32] = __ldcg(buf + ((blockIdx.x + 1) % gridDim.x) * 32) + (float)i;
}

static __global__ void phases_kernel(float *buf, unsigned *counter, int n) {
    for (int i = 0; i < n; i++) {
        if (threadIdx.x == 0) {
            buf[blockIdx.x * 32] = __ldcg(buf + ((blockIdx.x + 1) % gridDim.x) * 32) + (float)i;
            __threadfence();
            atomicAdd(counter, 1u);
            const unsigned target = (unsigned)(i + 1) * gridDim.x;
            unsigned seen;
            do asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(seen) : "l"(counter) : "memory");
            while (seen < target);
        }
        __syncthreads();
    }
}

static void launch_pdl(cudaStream_t st, int blocks, float *buf, int i) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.gridDim = blocks;
    cfg.blockDim = 256;
    cfg.stream = st;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    cudaLaunchKernelEx(&cfg, step_kernel, buf, i);
}

static float graph_us(cudaStream_t st, int blocks, float *buf) {
    cudaGraph_t g;
    cudaGraphExec_t ge;
    cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal);
    for (int i = 0; i < N; i++) launch_pdl(st, blocks, buf, i);
    cudaStreamEndCapture(st, &g);
    cudaGraphInstantiate(&ge, g, 0);
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    float best = 1e30f;
    for (int r = 0; r < 5; r++) {
        cudaEventRecord(a, st);
        cudaGraphLaunch(ge, st);
        cudaEventRecord(b, st);
        cudaEventSynchronize(b);
        float ms;
        cudaEventElapsedTime(&ms, a, b);
        if (ms < best) best = ms;
    }
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
    return best * 1000 / N;
}

static float phases_us(cudaStream_t st, int blocks, float *buf, unsigned *counter) {
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    float best = 1e30f;
    for (int r = 0; r < 5; r++) {
        cudaMemsetAsync(counter, 0, sizeof *counter, st);
        cudaEventRecord(a, st);
        phases_kernel<<<blocks, 256, 0, st>>>(buf, counter, N);
        cudaEventRecord(b, st);
        cudaEventSynchronize(b);
        float ms;
        cudaEventElapsedTime(&ms, a, b);
        if (ms < best) best = ms;
    }
    return best * 1000 / N;
}

int main(void) {
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    cudaStream_t st;
    cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    float *buf;
    unsigned *counter;
    cudaMalloc((void **)&buf, sizeof(float) * 32 * 4096);
    cudaMalloc((void **)&counter, sizeof *counter);
    cudaMemset(buf, 0, sizeof(float) * 32 * 4096);
    int grids[] = {1, sms, 4 * sms};
    for (int k = 0; k < 3; k++)
        printf("%4d blocks: kernel boundary (graph, PDL) %.2f us, counter phase %.2f us\n", grids[k],
               graph_us(st, grids[k], buf), phases_us(st, grids[k], buf, counter));
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) { fprintf(stderr, "probe: %s\n", cudaGetErrorString(e)); return 1; }
    return 0;
}
