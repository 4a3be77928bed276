/* Attention over the KV cache (gemma4-architecture.md §3, scale 1.0, no
 * soft-cap): one block per (token, query head) and key range; its warps take
 * every ATTN_WARPS-th key of the range with an online softmax, each lane
 * holding head_dim/32 dimensions, and the warps' partial results are merged
 * at the end. A decode step has too few (token, head) pairs to fill the GPU
 * (16 blocks for the 26B), so their windows are split over several blocks
 * whose results the last one to finish merges (flash decoding). Keys are found by each token's own sequence and position, so
 * a batch may mix sequences; sliding layers see the last `window` positions,
 * the token itself included.
 *
 * A decode step of one token may fold the q/k norms and RoPE in
 * (gpu_attention_rope): its query is formed from the raw projection in each
 * warp's registers, and the split whose keys end at the token's own position
 * forms that key and value from the raw projections as well (first, in one
 * warp, its loads beside the query's), instead of reading them back from the
 * cache, where the block of the group's first head stores them. One launch
 * less on every layer's critical path. */
#include "cuda/gpu.h"

#include <math.h>
#include <string.h>

#define ATTN_WARPS 4
#define ATTN_SPLIT_KEYS 8 /* fewest keys worth a block of their own (G4_ATTN_SPLIT_KEYS) */
#define ATTN_MAX_SPLITS 512

/* One head's norm weights and RoPE frequencies in the registers of the
 * lanes that apply them (lane l has dimensions i·32 + l, so pair (j, j +
 * hd/2) is in one lane's registers (i, i + PER_LANE/2), or for head dim 32 in
 * lanes l and l ^ 16). They are weights, so they are loaded before the kernel
 * waits for the q/k/v product: read after it, each was a DRAM round trip
 * (the product's stream evicts them from L2) between two reductions on the
 * critical path. */
template <int PER_LANE> struct head_consts {
    static const int FREQS = PER_LANE == 1 ? 1 : PER_LANE / 2;
    float w[PER_LANE];   /* 1 where the norm has no weight: v·s·1 is v·s */
    float freq[FREQS];   /* frequency of the lane's pair i; unused at or past n_pairs */
};

template <int PER_LANE>
static __device__ void load_head_consts(head_consts<PER_LANE> &c, const float *w, const float *inv_freq, int n_pairs) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) c.w[i] = w ? __ldg(w + i * 32 + lane) : 1.0f;
#pragma unroll
    for (int i = 0; i < head_consts<PER_LANE>::FREQS; i++) {
        const int j = PER_LANE == 1 ? lane & 15 : i * 32 + lane;
        c.freq[i] = inv_freq && j < n_pairs ? __ldg(inv_freq + j) : 0.0f;
    }
}

/* Rotate-half RoPE of one head held by a warp, pairs below n_pairs. */
template <int PER_LANE>
static __device__ __forceinline__ void rotate(float (&v)[PER_LANE], const float *cs, const float *sn, int n_pairs) {
    const int lane = threadIdx.x & 31;
    if constexpr (PER_LANE == 1) {
        const float other = __shfl_xor_sync(0xffffffffu, v[0], 16);
        if ((lane & 15) < n_pairs) v[0] = lane < 16 ? v[0] * cs[0] - other * sn[0] : v[0] * cs[0] + other * sn[0];
    } else {
#pragma unroll
        for (int i = 0; i < PER_LANE / 2; i++) {
            if (i * 32 + lane >= n_pairs) continue;
            const float a = v[i], b = v[i + PER_LANE / 2];
            v[i] = a * cs[i] - b * sn[i];
            v[i + PER_LANE / 2] = b * cs[i] + a * sn[i];
        }
    }
}

/* q = RoPE(q_norm(q)) of one head held by a warp and, in the warp that forms
 * key p (with_kv, warp-uniform), also K = RoPE(k_norm(k)) and V = rmsnorm(v):
 * the three sums of squares go through one chain of shuffles, and the angles
 * (one position) are computed once. The maths of kernels.cu's q/k norms and
 * rope_head: squares summed in double, pow, float32 angles. */
template <int PER_LANE>
static __device__ void norm_rope_qkv(float (&q)[PER_LANE], float (&k)[PER_LANE], float (&v)[PER_LANE], bool with_kv,
                                     const head_consts<PER_LANE> &qc, const head_consts<PER_LANE> &kc, bool rope,
                                     int n_pairs, int pos, float eps) {
    double sq = 0, sk = 0, sv = 0;
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) {
        sq += (double)q[i] * q[i];
        if (with_kv) {
            sk += (double)k[i] * k[i];
            sv += (double)v[i] * v[i];
        }
    }
    for (int o = 16; o; o >>= 1) {
        sq += __shfl_xor_sync(0xffffffffu, sq, o);
        if (with_kv) {
            sk += __shfl_xor_sync(0xffffffffu, sk, o);
            sv += __shfl_xor_sync(0xffffffffu, sv, o);
        }
    }
    const float s_q = powf((float)(sq / (PER_LANE * 32)) + eps, -0.5f);
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) q[i] = q[i] * s_q * qc.w[i];
    if (with_kv) {
        const float s_k = powf((float)(sk / (PER_LANE * 32)) + eps, -0.5f);
        const float s_v = powf((float)(sv / (PER_LANE * 32)) + eps, -0.5f);
#pragma unroll
        for (int i = 0; i < PER_LANE; i++) {
            k[i] = k[i] * s_k * kc.w[i];
            v[i] = v[i] * s_v;
        }
    }
    if (!rope) return;
    float cs[head_consts<PER_LANE>::FREQS], sn[head_consts<PER_LANE>::FREQS];
#pragma unroll
    for (int i = 0; i < head_consts<PER_LANE>::FREQS; i++) {
        const float angle = (float)pos * qc.freq[i];
        cs[i] = cosf(angle);
        sn[i] = sinf(angle);
    }
    rotate<PER_LANE>(q, cs, sn, n_pairs);
    if (with_kv) rotate<PER_LANE>(k, cs, sn, n_pairs);
}

/* Keys [k0, k1] of a head's cache rows into L2 (keys and values), before the
 * block waits for the q/k/v product. */
template <int PER_LANE>
static __device__ void prefetch_keys(const float *kbase, const float *vbase, const gpu_kv_layer &kv, int64_t k0, int64_t k1) {
    if (k0 < 0) k0 = 0;
    for (int64_t i = threadIdx.x; i < (k1 - k0 + 1) * PER_LANE; i += blockDim.x) {
        const int64_t key = k0 + i / PER_LANE, slot = kv.ring ? key % kv.ring : key;
        const int64_t off = slot * kv.row_size + (i % PER_LANE) * 32; /* PER_LANE lines of 128 bytes a head */
        asm volatile("prefetch.global.L2 [%0];" ::"l"(kbase + off));
        if (vbase != kbase) asm volatile("prefetch.global.L2 [%0];" ::"l"(vbase + off));
    }
}

/* Key p of token t, KV head g, formed by one warp (kn, vn: as kv_write in
 * kernels.cu, by norm_rope_qkv), added to the warp's online softmax, and
 * stored into the cache if `store`. */
template <int PER_LANE>
static __device__ void own_key(int64_t p, const float (&kn)[PER_LANE], const float (&vn)[PER_LANE],
                               const float (&qr)[PER_LANE], float (&acc)[PER_LANE], float &m, float &l, bool store,
                               const gpu_kv_layer &kv, float *kbase, float *vbase) {
    const int lane = threadIdx.x & 31;
    float s = 0;
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) s += qr[i] * kn[i];
    for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    const float m_new = fmaxf(m, s), corr = expf(m - m_new), e = expf(s - m_new);
    l = l * corr + e;
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) acc[i] = acc[i] * corr + e * vn[i];
    m = m_new;
    if (!store) return;
    const int64_t slot = kv.ring ? p % kv.ring : p;
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) {
        vbase[slot * kv.row_size + i * 32 + lane] = vn[i];
        kbase[slot * kv.row_size + i * 32 + lane] = kn[i];
    }
}

/* This thread's dimensions (d = threadIdx.x + j·blockDim.x) of splits s0 ..
 * s0 + MERGE_SPLITS - 1 of a pair's partial sums, read through L2 (other
 * blocks wrote them). */
#define MERGE_SPLITS 8
template <int DIMS>
static __device__ void merge_loads(float (&pv)[MERGE_SPLITS][DIMS], const float *all, int hd, int s0, int used) {
#pragma unroll
    for (int s = 0; s < MERGE_SPLITS; s++)
#pragma unroll
        for (int j = 0; j < DIMS; j++) {
            const int d = threadIdx.x + j * blockDim.x;
            pv[s][j] = s0 + s < used && d < hd ? __ldcg(all + (s0 + s) * (hd + 2) + d) : 0.0f;
        }
}

/* One step of a warp's key loop: the rows of keys `key` and, if `two`,
 * key + ATTN_WARPS (else key's again, so the unused second score and its
 * zero weight stay finite), both requested before either score is reduced. */
template <int PER_LANE> struct key_rows {
    float k[2][PER_LANE], v[2][PER_LANE];
};

template <int PER_LANE>
static __device__ void load_keys(key_rows<PER_LANE> &kr, const gpu_kv_layer &kv, const float *kbase, const float *vbase,
                                 int64_t key, bool two) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int k = 0; k < 2; k++) {
        const int64_t at = key + (k && two ? ATTN_WARPS : 0), slot = kv.ring ? at % kv.ring : at;
#pragma unroll
        for (int i = 0; i < PER_LANE; i++) {
            kr.k[k][i] = kbase[slot * kv.row_size + i * 32 + lane];
            kr.v[k][i] = vbase[slot * kv.row_size + i * 32 + lane];
        }
    }
}

/* The step's keys added to the warp's online softmax. */
template <int PER_LANE>
static __device__ void add_keys(const key_rows<PER_LANE> &kr, bool two, const float (&qr)[PER_LANE],
                                float (&acc)[PER_LANE], float &m, float &l) {
    float s = 0, s2 = 0;
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) { s += qr[i] * kr.k[0][i]; s2 += qr[i] * kr.k[1][i]; }
    for (int o = 16; o; o >>= 1) {
        s += __shfl_xor_sync(0xffffffffu, s, o);
        s2 += __shfl_xor_sync(0xffffffffu, s2, o);
    }
    float m_new = fmaxf(m, two ? fmaxf(s, s2) : s), corr = expf(m - m_new), e = expf(s - m_new);
    float e2 = two ? expf(s2 - m_new) : 0.0f;
    l = l * corr + e + e2;
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) acc[i] = acc[i] * corr + e * kr.v[0][i] + e2 * kr.v[1][i];
    m = m_new;
}

/* The keys of (token, head) pair bh, split s of S: this block's share of the
 * window [first, p], merged with the other splits' by the last to finish. */
template <int PER_LANE, bool ROPE>
static __global__ void __launch_bounds__(ATTN_WARPS * 32)
    attention_kernel(const float *q, int n_heads, int group, gpu_kv_layer kv, int window, const int32_t *pos,
                     const int32_t *seq, float *out, gpu_attn_split sp, gpu_qk_rope r) {
    const int hd = PER_LANE * 32;
    const int bh = blockIdx.x, t = bh / n_heads, head = bh % n_heads, split = blockIdx.y, S = gridDim.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if constexpr (!ROPE) gpu_pdl_wait(); /* (ROPE: positions and the older keys come from earlier steps) */
    const int64_t p = pos[t];
    const int64_t first = window && p - window + 1 > 0 ? p - window + 1 : 0;
    /* at least ATTN_SPLIT_KEYS keys a split: short windows use fewer of the S blocks */
    const int64_t len = p - first + 1;
    int64_t chunk = (len + S - 1) / S;
    if (chunk < sp.min_keys) chunk = sp.min_keys;
    const int used = (int)((len + chunk - 1) / chunk);
    const int64_t kbeg = first + split * chunk;
    /* own: this block forms key p itself, so its loop stops before it */
    const bool own = ROPE && r.k_raw && split == used - 1;
    const int64_t kend = own ? p - 1 : kbeg + chunk - 1 < p ? kbeg + chunk - 1 : p;
    const float *qh = q + (int64_t)bh * hd;
    float *kbase = kv.k + (int64_t)seq[t] * kv.rows * kv.row_size + (int64_t)(head / group) * hd;
    float *vbase = kv.v + (int64_t)seq[t] * kv.rows * kv.row_size + (int64_t)(head / group) * hd;
    if (split >= used) return;
    /* ROPE: the weights, and the rows of this warp's first step when they are
     * older keys (from earlier steps), are in registers before the wait */
    head_consts<PER_LANE> qc, kc;
    key_rows<PER_LANE> kr;
    int64_t key = kbeg + warp;
    bool loaded = false;
    if constexpr (ROPE) {
        load_head_consts<PER_LANE>(qc, r.q_norm, r.inv_freq, r.n_pairs);
        if (own && warp == 0) load_head_consts<PER_LANE>(kc, r.k_norm, r.inv_freq, r.n_pairs);
        const int64_t last = key + ATTN_WARPS <= kend ? key + ATTN_WARPS : key;
        if (key <= kend && last < p) {
            load_keys<PER_LANE>(kr, kv, kbase, vbase, key, last != key);
            loaded = true;
        }
        prefetch_keys<PER_LANE>(kbase, vbase, kv, kbeg > p - r.prefetch_keys ? kbeg : p - r.prefetch_keys, kend);
        gpu_pdl_wait();
    }

    float qr[PER_LANE], acc[PER_LANE], kn[PER_LANE], vn[PER_LANE];
    const bool own_warp = own && warp == 0; /* its loads go out with the query's */
    if (own_warp) {
        const int64_t kv_row = ((int64_t)t * r.n_kv + head / group) * hd;
#pragma unroll
        for (int i = 0; i < PER_LANE; i++) { kn[i] = r.k_raw[kv_row + i * 32 + lane]; vn[i] = r.v_raw[kv_row + i * 32 + lane]; }
    }
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) { qr[i] = qh[i * 32 + lane]; acc[i] = 0; }
    float m = -INFINITY, l = 0;
    if constexpr (ROPE) {
        norm_rope_qkv<PER_LANE>(qr, kn, vn, own_warp, qc, kc, r.inv_freq != nullptr, r.n_pairs, (int)p, r.eps);
        if (own_warp) own_key<PER_LANE>(p, kn, vn, qr, acc, m, l, head % group == 0, kv, kbase, vbase);
    }
    for (; key <= kend; key += 2 * ATTN_WARPS) {
        const bool two = key + ATTN_WARPS <= kend;
        if (!loaded) load_keys<PER_LANE>(kr, kv, kbase, vbase, key, two);
        loaded = false;
        add_keys<PER_LANE>(kr, two, qr, acc, m, l);
    }
    __shared__ float sm_m[ATTN_WARPS], sm_l[ATTN_WARPS];
    __shared__ float sm_acc[ATTN_WARPS][PER_LANE * 32];
    __shared__ int sm_last;
    if (lane == 0) { sm_m[warp] = m; sm_l[warp] = l; }
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) sm_acc[warp][i * 32 + lane] = acc[i];
    __syncthreads();
    float M = -INFINITY;
    for (int w = 0; w < ATTN_WARPS; w++)
        if (sm_l[w] > 0) M = fmaxf(M, sm_m[w]);
    float L = 0, f[ATTN_WARPS];
    for (int w = 0; w < ATTN_WARPS; w++) {
        f[w] = sm_l[w] > 0 ? expf(sm_m[w] - M) : 0; /* a warp with no keys contributes nothing */
        L += sm_l[w] * f[w];
    }
    float *o = out + (int64_t)bh * hd;
    if (used == 1) {
        for (int d = threadIdx.x; d < hd; d += blockDim.x) {
            float s = 0;
            for (int w = 0; w < ATTN_WARPS; w++) s += sm_acc[w][d] * f[w];
            o[d] = s / L;
        }
        return;
    }
    /* split: this block's unnormalised sums relative to its own maximum M, then
     * the last block of the pair to finish merges all `used` of them (in split order) */
    float *mine = sp.part + ((int64_t)bh * S + split) * (hd + 2);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float s = 0;
        for (int w = 0; w < ATTN_WARPS; w++) s += sm_acc[w][d] * f[w];
        mine[d] = s;
    }
    if (threadIdx.x == 0) { mine[hd] = M; mine[hd + 1] = L; }
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        sm_last = atomicAdd(sp.count + bh, 1) == used - 1;
        if (sm_last) sp.count[bh] = 0; /* every split has counted: ready for the next launch */
    }
    __syncthreads();
    if (!sm_last) return;
    __threadfence();
    /* the merge, its loads first and together (each an L2 round trip): every split's maximum
     * and sum (a thread per split) and this thread's dimensions of the first MERGE_SPLITS
     * splits; then warp 0 finds the common maximum, the weights and the denominator (a lane
     * per split), and each thread sums its dimensions in split order */
    constexpr int DIMS = (hd + ATTN_WARPS * 32 - 1) / (ATTN_WARPS * 32); /* a thread's dimensions */
    __shared__ float sm_f[ATTN_MAX_SPLITS], sm_ls[ATTN_MAX_SPLITS], sm_L;
    const float *all = sp.part + (int64_t)bh * S * (hd + 2);
    float pv[MERGE_SPLITS][DIMS];
    merge_loads<DIMS>(pv, all, hd, 0, used);
    for (int s = threadIdx.x; s < used; s += blockDim.x) {
        sm_f[s] = __ldcg(all + s * (hd + 2) + hd); /* the maximum, until warp 0 makes it the weight */
        sm_ls[s] = __ldcg(all + s * (hd + 2) + hd + 1);
    }
    __syncthreads();
    if (warp == 0) {
        float MM = -INFINITY, LL = 0;
        for (int s = lane; s < used; s += 32)
            if (sm_ls[s] > 0) MM = fmaxf(MM, sm_f[s]);
        for (int k = 16; k; k >>= 1) MM = fmaxf(MM, __shfl_xor_sync(0xffffffffu, MM, k));
        for (int s = lane; s < used; s += 32) {
            sm_f[s] = sm_ls[s] > 0 ? expf(sm_f[s] - MM) : 0.0f; /* a split with no keys adds nothing */
            LL += sm_ls[s] * sm_f[s];
        }
        for (int k = 16; k; k >>= 1) LL += __shfl_xor_sync(0xffffffffu, LL, k);
        if (lane == 0) sm_L = LL;
    }
    __syncthreads();
    float acc_d[DIMS] = {};
    for (int s0 = 0; s0 < used; s0 += MERGE_SPLITS) {
        if (s0) merge_loads<DIMS>(pv, all, hd, s0, used);
#pragma unroll
        for (int s = 0; s < MERGE_SPLITS; s++)
#pragma unroll
            for (int j = 0; j < DIMS; j++)
                if (s0 + s < used) acc_d[j] += pv[s][j] * sm_f[s0 + s];
    }
#pragma unroll
    for (int j = 0; j < DIMS; j++) {
        const int d = threadIdx.x + j * blockDim.x;
        if (d < hd) o[d] = acc_d[j] / sm_L;
    }
}

/* Splits per (token, head) pair: enough blocks for every SM twice over when
 * the pairs alone are too few (decode: 8 to 32 heads, one token). Fewer
 * pairs than target, so pairs · S < 2 · target: the scratch's size. */
static int attention_splits(const gpu_attn_split *sp, int pairs, int hd) {
    if (!sp || !sp->part || pairs >= sp->target || hd > sp->max_hd) return 1;
    int s = (sp->target + pairs - 1) / pairs;
    return s < ATTN_MAX_SPLITS ? s : ATTN_MAX_SPLITS;
}

template <bool ROPE>
static void launch(cudaStream_t st, const float *q, int n, int n_heads, int hd, const gpu_kv_layer *kv, int window,
                   const int32_t *pos, const int32_t *seq, float *out, const gpu_attn_split *split, const gpu_qk_rope &r) {
    int group = n_heads / (int)(kv->row_size / hd);
    gpu_attn_split sp;
    memset(&sp, 0, sizeof sp);
    if (split) sp = *split;
    if (sp.min_keys < 1) sp.min_keys = ATTN_SPLIT_KEYS;
    dim3 grid(n * n_heads, attention_splits(split, n * n_heads, hd)), block(ATTN_WARPS * 32);
    switch (hd / 32) {
    case 1: gpu_launch(attention_kernel<1, ROPE>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out, sp, r); break;
    case 2: gpu_launch(attention_kernel<2, ROPE>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out, sp, r); break;
    case 4: gpu_launch(attention_kernel<4, ROPE>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out, sp, r); break;
    case 8: gpu_launch(attention_kernel<8, ROPE>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out, sp, r); break;
    default: gpu_launch(attention_kernel<16, ROPE>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out, sp, r); break;
    }
}

void gpu_attention(cudaStream_t st, const float *q, int n, int n_heads, int hd, const gpu_kv_layer *kv, int window,
                   const int32_t *pos, const int32_t *seq, float *out, const gpu_attn_split *split) {
    gpu_qk_rope none;
    memset(&none, 0, sizeof none);
    launch<false>(st, q, n, n_heads, hd, kv, window, pos, seq, out, split, none);
}

static long rope_launches;
extern "C" long g4_gpu_attention_rope_count(void) { return rope_launches; }

void gpu_attention_rope(cudaStream_t st, const gpu_qk_rope *r, float *out, const gpu_attn_split *split) {
    launch<true>(st, r->q, 1, r->n_heads, r->hd, &r->attn_kv, r->window, r->pos, r->seq, out, split, *r);
    rope_launches++;
}
