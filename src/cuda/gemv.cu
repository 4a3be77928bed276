/* Matrix products with the weights: y = x · Wᵀ for a batch of activation rows.
 * - Few rows (decode): a bandwidth-bound GEMV. Each warp owns one output
 *   row and streams its weights with 16-byte loads (8 bf16 / 8 f32 / one
 *   32-element Q8_0 or Q4_0 block per lane and step), dequantising in
 *   registers; up to 8 activation rows share every weight load. For one
 *   token a warp may own 2 or 4 rows instead (gemv_rows_kernel), so each
 *   activation chunk read serves them all.
 * - Many rows (prefill): cuBLAS (gemm.cu).
 * - Grouped: item p multiplies matrix matrix[p] of a stack with activation
 *   row p / x_div: a token's chosen experts in one launch.
 * - Router: the GEMV whose last block to finish also picks the experts. */
#include "cuda/gpu.h"
#include "cuda/dequant.cuh"
#include "cuda/moe_topk.cuh"

#include <stdlib.h>
#include <string.h>

#define GEMV_WARPS 8 /* output rows per block */

#define GEMV_MAX_MATS 3 /* matrices that share one input: q/k/v, gate/up */

enum { GEMV_PLAIN, GEMV_GLU, GEMV_GELU_MUL }; /* what a launch writes (gemv_body) */

typedef struct gemv_args {
    gpu_matrix w[GEMV_MAX_MATS]; /* output rows are w[0]'s, then w[1]'s, ... */
    float *y[GEMV_MAX_MATS];
    int64_t y_stride[GEMV_MAX_MATS];
    int64_t row_end[GEMV_MAX_MATS]; /* cumulative rows */
    int n_mats;
    const int *matrix; /* grouped: the matrix of the stack for each item; NULL: matrix 0 */
    int64_t glu_up_row; /* gated (GLU): row r's partner is row r + glu_up_row of w[1] */
    int split;          /* warps per output row (launch_dt chooses) */
    const float *x;
    int64_t x_stride;
    int x_div;
    int n;
    int prefetch_lines;
    gpu_route route; /* ROUTE kernels: the top-k after the router's logits */
    const float *gate_mul; /* GEMV_GELU_MUL: y = gelu(x · w) ⊙ gate_mul (the per-layer-input gate) */
    int64_t gate_mul_stride;
} gemv_args;

/* Bytes of codes per element, times two (Q4_0 has half a byte). */
template <int DT> struct code_bytes_x2 { static const int v = 4; };
template <> struct code_bytes_x2<G4_DTYPE_F32> { static const int v = 8; };
template <> struct code_bytes_x2<G4_DTYPE_Q8_0> { static const int v = 2; };
template <> struct code_bytes_x2<G4_DTYPE_Q4_0> { static const int v = 1; };
template <> struct code_bytes_x2<GPU_DTYPE_Q4_AFFINE32> { static const int v = 1; };
template <> struct code_bytes_x2<GPU_DTYPE_Q8_AFFINE16> { static const int v = 2; };

#define GEMV_PREFETCH_LINES 8 /* 128-byte lines of its row a warp asks for before waiting (G4_GEMV_PREFETCH) */

/* s (and su, for GLU's up row) += one chunk's products with the activations
 * v = x[4i .. 4i+3], in the order both GEMV kernels keep, so their sums
 * agree bit for bit. */
template <int MODE>
static __device__ __forceinline__ void dot4(const float *wv, const float *uv, int i, float4 v, float &s, float &su) {
    s += wv[4 * i] * v.x + wv[4 * i + 1] * v.y + wv[4 * i + 2] * v.z + wv[4 * i + 3] * v.w;
    if (MODE == GEMV_GLU) su += uv[4 * i] * v.x + uv[4 * i + 1] * v.y + uv[4 * i + 2] * v.z + uv[4 * i + 3] * v.w;
}

/* Each lane's partial sums of N outputs added over the warp. */
template <int N, int MODE> static __device__ __forceinline__ void warp_sums(float (&acc)[N], float (&acc_u)[N]) {
#pragma unroll
    for (int t = 0; t < N; t++)
        for (int o = 16; o; o >>= 1) {
            acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], o);
            if (MODE == GEMV_GLU) acc_u[t] += __shfl_xor_sync(0xffffffffu, acc_u[t], o);
        }
}

/* The value written for item i's output row (MODE: see gemv_body). */
template <int MODE>
static __device__ __forceinline__ float gemv_result(const gemv_args &a, float acc, float acc_u, int64_t i, int64_t row) {
    return MODE == GEMV_GLU        ? gelu_tanh(acc) * acc_u
           : MODE == GEMV_GELU_MUL ? gelu_tanh(acc) * a.gate_mul[i * a.gate_mul_stride + row]
                                   : acc;
}

/* What a GEMV writes (MODE):
 * - GEMV_PLAIN: y = w row · x;
 * - GEMV_GLU: y = gelu(w[0] row · x) · (w[1] row + glu_up_row · x), the gate
 *   and up rows of one output read by the same warp, so the gated activation
 *   is written directly (no gate/up round trip through memory, one launch less);
 * - GEMV_GELU_MUL: y = gelu(w row · x) · gate_mul (the per-layer-input gate).
 * a.split (1 or GEMV_WARPS) warps share an output row, for matrices with too
 * few rows to keep the memory system busy at one warp per row. */
template <int DT, int NT, int MODE>
static __device__ __forceinline__ void gemv_body(const gemv_args &a) {
    const int CH = chunk<DT>::elems;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int split = a.split, part = warp % split;
    int64_t row = (int64_t)blockIdx.x * (GEMV_WARPS / split) + warp / split;
    const bool live = row < a.row_end[a.n_mats - 1]; /* a dead row's warps still meet the block's barrier */
    int m = 0;
    while (live && row >= a.row_end[m]) m++;
    if (live && m) row -= a.row_end[m - 1];
    const gpu_matrix &w = a.w[m], &u = a.w[MODE == GEMV_GLU ? 1 : m];
    /* Weights do not depend on earlier kernels: the head of this warp's row
     * is on its way to L2 while the kernel before finishes. */
    if (live && !a.matrix && part == 0) {
        size_t bytes = (size_t)w.cols * code_bytes_x2<DT>::v / 2;
        for (size_t off = (size_t)lane * 128; off < bytes && off < (size_t)a.prefetch_lines * 128; off += 32 * 128)
            asm volatile("prefetch.global.L2 [%0];" ::"l"((const char *)w.data + row * bytes + off));
    }
    gpu_pdl_wait();
    if (!live && split == 1) return;
    const int item0 = blockIdx.y * NT;
    const int n_items = a.n - item0 < NT ? a.n - item0 : NT;
    const int64_t mat = a.matrix ? a.matrix[item0] : 0;
    const int64_t base = mat * w.rows * w.cols + row * w.cols;
    const int64_t ubase = MODE == GEMV_GLU ? mat * u.rows * u.cols + (row + a.glu_up_row) * u.cols : 0;
    const float *x[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) x[t] = a.x + (int64_t)((item0 + (t < n_items ? t : 0)) / a.x_div) * a.x_stride;
    float acc[NT], acc_u[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = acc_u[t] = 0;
#pragma unroll 2
    for (int64_t c = (int64_t)(part * 32 + lane) * CH; live && c < w.cols; c += (int64_t)split * 32 * CH) {
        float wv[CH], uv[MODE == GEMV_GLU ? CH : 1];
        load_weights<DT>(w, base + c, wv);
        if (MODE == GEMV_GLU) load_weights<DT>(u, ubase + c, uv);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t >= n_items) break;
            const float4 *xp = (const float4 *)(x[t] + c);
            float s = 0, su = 0;
#pragma unroll
            for (int i = 0; i < CH / 4; i++) dot4<MODE>(wv, uv, i, __ldg(xp + i), s, su);
            acc[t] += s;
            acc_u[t] += su;
        }
    }
    warp_sums<NT, MODE>(acc, acc_u);
    if (split > 1) { /* a row's first warp adds the others' parts, in warp order */
        __shared__ float partial[GEMV_WARPS][2 * NT];
        if (lane == 0)
            for (int t = 0; t < NT; t++) { partial[warp][2 * t] = acc[t]; partial[warp][2 * t + 1] = acc_u[t]; }
        __syncthreads();
        if (part) return;
        for (int t = 0; t < NT; t++) {
            acc[t] = acc_u[t] = 0;
            for (int p = 0; p < split; p++) { acc[t] += partial[warp + p][2 * t]; acc_u[t] += partial[warp + p][2 * t + 1]; }
        }
    }
    if (lane || !live) return;
#pragma unroll
    for (int t = 0; t < NT; t++)
        if (t < n_items) {
            const int64_t i = item0 + t;
            a.y[m][i * a.y_stride[m] + row] = gemv_result<MODE>(a, acc[t], acc_u[t], i, row);
        }
}

/* RW output rows a warp, for one token (decode) with quantised weights: a
 * chunk's activations are read once into registers and serve all RW rows,
 * where gemv_body reads them from L1 again for every row (128 bytes of
 * floats for each 16 bytes of Q4_0 codes, which made those GEMVs L1-bound).
 * Each row's sum is formed in gemv_body's order at split 1, so the result is
 * bit-identical. Every matrix's rows must be a multiple of RW (rows_per_warp). */
template <int DT, int MODE, int RW>
static __global__ void __launch_bounds__(GEMV_WARPS * 32) gemv_rows_kernel(gemv_args a) {
    const int CH = chunk<DT>::elems;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int64_t row = ((int64_t)blockIdx.x * GEMV_WARPS + warp) * RW;
    const bool live = row < a.row_end[a.n_mats - 1];
    int m = 0;
    while (live && row >= a.row_end[m]) m++;
    if (live && m) row -= a.row_end[m - 1];
    const gpu_matrix &w = a.w[m], &u = a.w[MODE == GEMV_GLU ? 1 : m];
    if (live && !a.matrix) { /* as gemv_body: the rows' heads on their way to L2 before the wait */
        size_t bytes = (size_t)w.cols * code_bytes_x2<DT>::v / 2;
        for (int r = 0; r < RW; r++)
            for (size_t off = (size_t)lane * 128; off < bytes && off < (size_t)a.prefetch_lines * 128; off += 32 * 128)
                asm volatile("prefetch.global.L2 [%0];" ::"l"((const char *)w.data + (row + r) * bytes + off));
    }
    gpu_pdl_wait();
    if (!live) return;
    const int item = blockIdx.y;
    const int64_t mat = a.matrix ? a.matrix[item] : 0;
    const int64_t base = mat * w.rows * w.cols + row * w.cols;
    const int64_t ubase = MODE == GEMV_GLU ? mat * u.rows * u.cols + (row + a.glu_up_row) * u.cols : 0;
    const float *x = a.x + (int64_t)(item / a.x_div) * a.x_stride;
    float acc[RW], acc_u[RW];
#pragma unroll
    for (int r = 0; r < RW; r++) acc[r] = acc_u[r] = 0;
#pragma unroll 2
    for (int64_t c = (int64_t)lane * CH; c < w.cols; c += 32 * CH) {
        float4 xv[CH / 4];
#pragma unroll
        for (int i = 0; i < CH / 4; i++) xv[i] = __ldg((const float4 *)(x + c) + i);
#pragma unroll
        for (int r = 0; r < RW; r++) {
            float wv[CH], uv[MODE == GEMV_GLU ? CH : 1];
            load_weights<DT>(w, base + r * w.cols + c, wv);
            if (MODE == GEMV_GLU) load_weights<DT>(u, ubase + r * u.cols + c, uv);
            float s = 0, su = 0;
#pragma unroll
            for (int i = 0; i < CH / 4; i++) dot4<MODE>(wv, uv, i, xv[i], s, su);
            acc[r] += s;
            acc_u[r] += su;
        }
    }
    warp_sums<RW, MODE>(acc, acc_u);
#pragma unroll
    for (int r = 0; r < RW; r++) /* lane r writes row r: every lane holds every sum */
        if (lane == r) a.y[m][(int64_t)item * a.y_stride[m] + row + r] = gemv_result<MODE>(a, acc[r], acc_u[r], item, row + r);
}

/* The arguments of one launch: activations first, then each matrix that
 * reads them (its rows follow the previous matrix's). */
static gemv_args gemv_input(const float *x, int64_t x_stride, int x_div, int n) {
    gemv_args a;
    memset(&a, 0, sizeof a);
    a.x = x;
    a.x_stride = x_stride;
    a.x_div = x_div;
    a.n = n;
    return a;
}

static void gemv_output(gemv_args *a, const gpu_matrix *w, int64_t rows, float *y, int64_t y_stride) {
    int i = a->n_mats++;
    a->w[i] = *w;
    a->y[i] = y;
    a->y_stride[i] = y_stride;
    a->row_end[i] = (i ? a->row_end[i - 1] : 0) + rows;
}

/* Output rows below which each gets a whole block of warps. */
#define GEMV_SPLIT_ROWS 1024

/* Other launches whose rows would not give this % of the device's resident
 * warps one warp each share each row among 2-8 warps (H100, interleaved: E2B
 * 313 → 364 t/s, E4B 200 → 215, 26B-A4B 241 → 246, 31B unchanged; 75% and
 * 100% were no better, and 200% slowed the 26B-A4B, whose dense MLP shares
 * the GPU with the experts). */
#define GEMV_FILL 50

/* Tuning switches (read at each launch; captured graphs keep what they saw):
 * G4_GEMV_SPLIT_ROWS, G4_GEMV_SPLIT_ALL_ITEMS, G4_GEMV_FILL — which launches
 * get several warps per row; G4_GEMV_PREFETCH — lines of its row a warp
 * prefetches. */
static int64_t env_or(const char *name, int64_t fallback) {
    const char *s = getenv(name);
    return s ? atoll(s) : fallback;
}

int64_t gpu_resident_warps(void) {
    static int64_t warps = -1;
    if (warps < 0) {
        int sms = 0, per_sm = 0;
        if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0) != cudaSuccess ||
            cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, 0) != cudaSuccess)
            sms = per_sm = 0;
        warps = (int64_t)sms * per_sm / 32;
    }
    return warps;
}

static dim3 gemv_plan(gemv_args *a, int nt) {
    a->prefetch_lines = (int)env_or("G4_GEMV_PREFETCH", GEMV_PREFETCH_LINES);
    int64_t rows = a->row_end[a->n_mats - 1], col_blocks = (a->n + nt - 1) / nt;
    /* rows of all items: a grouped launch of 8 experts has 8 times the rows */
    int64_t work_rows = rows * (env_or("G4_GEMV_SPLIT_ALL_ITEMS", 1) ? col_blocks : 1);
    a->split = work_rows < env_or("G4_GEMV_SPLIT_ROWS", GEMV_SPLIT_ROWS) ? GEMV_WARPS : 1;
    int64_t target = env_or("G4_GEMV_FILL", GEMV_FILL) * gpu_resident_warps() / 100;
    if (target > 0 && a->split == 1) {
        /* too few rows to fill the device at a warp each: share rows among warps while every
         * warp still gets at least two 16-byte steps of its row */
        int elems = a->w[0].dtype == G4_DTYPE_BF16 || a->w[0].dtype == G4_DTYPE_F32 ? 8 : 32;
        int64_t steps = a->w[0].cols / (32 * elems);
        while (a->split < GEMV_WARPS && work_rows * a->split < target && steps >= 4 * a->split) a->split *= 2;
    }
    int rows_per_block = GEMV_WARPS / a->split;
    return dim3((unsigned)((rows + rows_per_block - 1) / rows_per_block), (unsigned)col_blocks);
}

/* ROUTE (the router's product): then the block that finishes last picks
 * each token's experts from the logits the others wrote, one launch less
 * than a separate top-k kernel, and leaves the counter at zero. The
 * per-expert scales are weights: every block has them in shared memory
 * before it waits, so the last one's choice needs no DRAM round trip. */
template <int DT, int NT, int MODE, int ROUTE>
static __global__ void __launch_bounds__(GEMV_WARPS * 32) gemv_kernel(gemv_args a) {
    __shared__ float scale[ROUTE ? TOPK_MAX_EXPERTS : 1];
    if (ROUTE)
        for (int e = threadIdx.x; e < a.row_end[0]; e += blockDim.x) scale[e] = __ldg(a.route.expert_scale + e);
    gemv_body<DT, NT, MODE>(a);
    if (!ROUTE) return;
    __shared__ int last;
    __shared__ topk_smem sm;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        last = atomicAdd(a.route.done, 1) == (int)(gridDim.x * gridDim.y) - 1;
        if (last) *a.route.done = 0;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    const gpu_route &r = a.route;
    for (int t = 0; t < a.n; t++) moe_topk_block(a.y[0], t, (int)a.row_end[0], r.K, scale, r.experts, r.weights, sm);
}

/* Rows a warp for this launch (1: gemv_body), for one token whose rows
 * need no sharing among warps. Fewer, busier warps read the activations
 * less often but keep fewer loads in flight, so the choice follows the
 * launch's rows (all items') against the device's resident warps R
 * (8448 on an H100): quantised weights take 4 rows a warp from 1.5·R rows
 * up, 2 from R/3. Per stage on an H100 (G4_GPU_PROFILE, 2026-12-07,
 * 26B-A4B/E4B Q4_0, 31B Q4_K_M; µs at 1/2/4 rows): 31B q/k/v, 16384 rows,
 * 112/84/80; the LM heads 772/436/338; E4B gate/up, 10240 rows, 38.5/33.4/
 * 40.7; 26B-A4B down, 2816 rows, 14.0/12.8/18.2; its gate/up, 2112 rows,
 * 12.9/13.4/22.2. bf16 weights read 8 times fewer
 * activation bytes per weight byte: 2 rows gained on the experts' short
 * rows (26B-A4B decode 248 → 257 t/s), lost on E4B's dense ones (221 →
 * 212 with 2 everywhere), and were even on the LM heads.
 * G4_GEMV_ROWS_PER_WARP (quantised) and G4_GEMV_ROWS_PER_WARP_BF16 (bf16,
 * f32) force 1, 2 or 4; 0 or unset: this rule. */
static long rows_kernel_launches;
extern "C" long g4_gpu_rows_kernel_count(void) { return rows_kernel_launches; }

static int rows_per_warp(const gemv_args &a, int dt, int nt) {
    if (nt != 1 || a.split != 1) return 1; /* nt 1: one token, or a grouped launch's items one per block row */
    const bool plain = dt == G4_DTYPE_BF16 || dt == G4_DTYPE_F32;
    int rw = (int)env_or(plain ? "G4_GEMV_ROWS_PER_WARP_BF16" : "G4_GEMV_ROWS_PER_WARP", 0);
    if (rw == 0) {
        const int64_t work = a.row_end[a.n_mats - 1] * a.n, r = gpu_resident_warps();
        rw = plain ? (a.matrix ? 2 : 1) : work >= 3 * r / 2 ? 4 : work >= r / 3 ? 2 : 1;
    }
    if (rw != 2 && rw != 4) return 1;
    for (int i = 0; i < a.n_mats; i++)
        if ((a.row_end[i] - (i ? a.row_end[i - 1] : 0)) % rw) return 1;
    return rw;
}

template <int DT, int MODE, int ROUTE> static void launch_dt(cudaStream_t st, gemv_args a, int nt) {
    dim3 grid = gemv_plan(&a, nt);
    if constexpr (!ROUTE) {
        int rw = rows_per_warp(a, DT, nt);
        if (rw > 1) {
            grid.x = (unsigned)((a.row_end[a.n_mats - 1] + GEMV_WARPS * rw - 1) / (GEMV_WARPS * rw));
            if (rw == 2) gpu_launch(gemv_rows_kernel<DT, MODE, 2>, grid, GEMV_WARPS * 32, st, a);
            else gpu_launch(gemv_rows_kernel<DT, MODE, 4>, grid, GEMV_WARPS * 32, st, a);
            rows_kernel_launches++;
            return;
        }
    }
    if constexpr (ROUTE) { /* the router: one token (decode) or up to 8 per warp */
        if (nt == 1) gpu_launch(gemv_kernel<DT, 1, MODE, ROUTE>, grid, GEMV_WARPS * 32, st, a);
        else gpu_launch(gemv_kernel<DT, 8, MODE, ROUTE>, grid, GEMV_WARPS * 32, st, a);
    } else switch (nt) {
    case 1: gpu_launch(gemv_kernel<DT, 1, MODE, ROUTE>, grid, GEMV_WARPS * 32, st, a); break;
    case 2: gpu_launch(gemv_kernel<DT, 2, MODE, ROUTE>, grid, GEMV_WARPS * 32, st, a); break;
    case 4: gpu_launch(gemv_kernel<DT, 4, MODE, ROUTE>, grid, GEMV_WARPS * 32, st, a); break;
    default: gpu_launch(gemv_kernel<DT, 8, MODE, ROUTE>, grid, GEMV_WARPS * 32, st, a); break;
    }
}

template <int DT> static void launch_mode(cudaStream_t st, const gemv_args &a, int nt, int mode) {
    if (a.route.done) launch_dt<DT, GEMV_PLAIN, 1>(st, a, nt);
    else if (mode == GEMV_GLU) launch_dt<DT, GEMV_GLU, 0>(st, a, nt);
    else if (mode == GEMV_GELU_MUL) launch_dt<DT, GEMV_GELU_MUL, 0>(st, a, nt);
    else launch_dt<DT, GEMV_PLAIN, 0>(st, a, nt);
}

static int launch_gemv(g4_gpu_context *c, const gemv_args &a, int nt, g4_error *err, int mode = GEMV_PLAIN) {
    switch ((int)a.w[0].dtype) {
    case G4_DTYPE_F32: launch_mode<G4_DTYPE_F32>(c->stream, a, nt, mode); break;
    case G4_DTYPE_BF16: launch_mode<G4_DTYPE_BF16>(c->stream, a, nt, mode); break;
    case G4_DTYPE_Q8_0: launch_mode<G4_DTYPE_Q8_0>(c->stream, a, nt, mode); break;
    case G4_DTYPE_Q4_0: launch_mode<G4_DTYPE_Q4_0>(c->stream, a, nt, mode); break;
    case GPU_DTYPE_Q4_AFFINE32: launch_mode<GPU_DTYPE_Q4_AFFINE32>(c->stream, a, nt, mode); break;
    case GPU_DTYPE_Q8_AFFINE16: launch_mode<GPU_DTYPE_Q8_AFFINE16>(c->stream, a, nt, mode); break;
    default: return g4_fail(err, "the GPU backend has no kernel for %s weights", g4_dtype_name(a.w[0].dtype));
    }
    CUDA_TRY(cudaGetLastError());
    return 0;
}

static int tokens_per_warp(int n) { return n >= 8 ? 8 : n >= 4 ? 4 : n >= 2 ? 2 : 1; }

/* One launch of the GEMV kernel for k matrices that read the same activations. */
static int gemv(g4_gpu_context *c, const gpu_matrix *const *w, float *const *y, const int64_t *y_stride, int k,
                const float *x, int64_t x_stride, int n, g4_error *err) {
    gemv_args a = gemv_input(x, x_stride, 1, n);
    for (int i = 0; i < k; i++) gemv_output(&a, w[i], w[i]->rows, y[i], y_stride[i]);
    return launch_gemv(c, a, tokens_per_warp(n), err);
}

int gpu_matmul(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *y,
               int64_t y_stride, g4_error *err) {
    if (n <= 0) return 0;
    if (n >= c->gemm_min_rows && gpu_gemm_type(w->dtype)) return gpu_matmul_gemm(c, w, x, x_stride, n, y, y_stride, err);
    return gemv(c, &w, &y, &y_stride, 1, x, x_stride, n, err);
}

int gpu_matmul_multi(g4_gpu_context *c, const gpu_matrix *const *w, float *const *y, const int64_t *y_stride, int k,
                     const float *x, int64_t x_stride, int n, g4_error *err) {
    int fused = k <= GEMV_MAX_MATS && n < c->gemm_min_rows;
    for (int i = 1; i < k; i++) fused &= w[i]->dtype == w[0]->dtype;
    if (fused) return n > 0 ? gemv(c, w, y, y_stride, k, x, x_stride, n, err) : 0;
    int all_bf16 = n >= c->gemm_min_rows;
    for (int i = 0; i < k; i++) all_bf16 &= gpu_gemm_in_bf16(w[i]->dtype) && w[i]->cols == w[0]->cols;
    if (all_bf16) return gpu_matmul_gemm_multi(c, w, y, y_stride, k, x, x_stride, n, 0, err); /* rounds x once */
    for (int i = 0; i < k; i++)
        if (gpu_matmul(c, w[i], x, x_stride, n, y[i], y_stride[i], err)) return -1;
    return 0;
}

int gpu_matmul_grouped(g4_gpu_context *c, const gpu_matrix *w, const int *matrix, const float *x, int64_t x_stride,
                       int x_div, int n, float *y, int64_t y_stride, int glu, g4_error *err) {
    if (n <= 0) return 0;
    gemv_args a = gemv_input(x, x_stride, x_div, n);
    gemv_output(&a, w, glu ? w->rows / 2 : w->rows, y, y_stride);
    a.matrix = matrix;
    if (glu) { /* the up rows are the second half of the same stack */
        a.w[1] = *w;
        a.glu_up_row = w->rows / 2;
    }
    return launch_gemv(c, a, 1, err, glu ? GEMV_GLU : GEMV_PLAIN);
}

static long fused_routes;
extern "C" long g4_gpu_fused_route_count(void) { return fused_routes; }

int gpu_matmul_route(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *logits,
                     const gpu_route *route, g4_error *err) {
    if (n <= 0) return 0;
    gemv_args a = gemv_input(x, x_stride, 1, n);
    gemv_output(&a, w, w->rows, logits, w->rows);
    a.route = *route;
    fused_routes++;
    return launch_gemv(c, a, n == 1 ? 1 : 8, err);
}

int gpu_matmul_gelu_mul(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *y,
                        int64_t y_stride, const float *mul, int64_t mul_stride, g4_error *err) {
    if (n <= 0) return 0;
    if (n >= c->gemm_min_rows && gpu_gemm_type(w->dtype)) {
        if (gpu_matmul_gemm(c, w, x, x_stride, n, y, y_stride, err)) return -1;
        gpu_gelu_gate(c->stream, y, y_stride, y, y_stride, mul, mul_stride, n, (int)w->rows);
        return 0;
    }
    gemv_args a = gemv_input(x, x_stride, 1, n);
    gemv_output(&a, w, w->rows, y, y_stride);
    a.gate_mul = mul;
    a.gate_mul_stride = mul_stride;
    return launch_gemv(c, a, tokens_per_warp(n), err, GEMV_GELU_MUL);
}

int gpu_matmul_glu(g4_gpu_context *c, const gpu_matrix *gate, const gpu_matrix *up, const float *x, int64_t x_stride,
                   int n, float *y, int64_t y_stride, g4_error *err) {
    if (n <= 0) return 0;
    if (gate->dtype != up->dtype) return g4_fail(err, "internal: gate and up matrices of different types"); /* callers check */
    gemv_args a = gemv_input(x, x_stride, 1, n);
    gemv_output(&a, gate, gate->rows, y, y_stride);
    a.w[1] = *up;
    return launch_gemv(c, a, tokens_per_warp(n), err, GEMV_GLU);
}
