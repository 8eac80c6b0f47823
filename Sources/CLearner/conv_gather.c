// im2col and col2im for a chunk of images as gathers through precomputed offset tables.
//
// Every element of a column matrix is one input element (or a padding zero), and every input
// element's gradient is a sum of at most kH·kW column elements. Which ones depends only on the
// window geometry, not on the channel: so the offsets are computed once per call into a table
// (one entry per column-matrix element of one channel) and each row of the column matrix is a
// straight gather through it, with no per-row range arithmetic. That cost is what dominated the
// row-copy im2col on the deep layers of a ResNet, whose 2×2 and 4×4 planes made every copy a few
// floats long. On x86-64 the gathers use AVX-512 or AVX2 gather instructions, chosen at run time
// (per-function target attributes: the package needs no -m flags); elsewhere a scalar loop.
//
// col2im gathers too: input element q of image n sums, over the taps in order, the column
// elements that read it, so each gradient element is written once (no zeroing pass, no
// scatter) and the sum is in the same order as an accumulation tap by tap.
#include "clearner.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define TL_GATHER_X86 1
#include <immintrin.h>
#endif

// Each table is followed by its runs: for every 16 consecutive entries of a table row (a tap's
// row over the chunk for im2col, a tap's row over one image for col2im) a pair (s, step): every
// valid entry of the block is s + step·lane, with step 1 (a stride-1 convolution's rows) or 2 (a
// stride-2 one's), or step 0 when the block has no such form. A run is read with one masked load
// (step 2: two, and a permute) instead of a gather.
#define BLOCK 16

static size_t blocks(size_t n) { return (n + BLOCK - 1) / BLOCK; }

/// The run of idx[0..<count) with the given step, if it is one: 1 and its start, else 0.
static int run_of(const int32_t *idx, size_t count, int32_t step, int32_t *start) {
    int any = 0;
    for (size_t l = 0; l < count; l++) {
        if (idx[l] < 0) continue;
        const int32_t s = idx[l] - step * (int32_t)l;
        if (any && s != *start) return 0;
        *start = s;
        any = 1;
    }
    if (!any) *start = 0;
    return 1;
}

static void block_runs(const int32_t *idx, size_t n, int32_t *runs) {
    for (size_t b = 0; b < blocks(n); b++) {
        const size_t count = n - b * BLOCK < BLOCK ? n - b * BLOCK : BLOCK;
        int32_t start = 0, step = 0;
        for (int32_t candidate = 1; candidate <= 2 && step == 0; candidate++)
            if (run_of(idx + b * BLOCK, count, candidate, &start)) step = candidate;
        runs[2 * b] = step ? start : 0;
        runs[2 * b + 1] = step;
    }
}

size_t tl_im2col_table_size(const tl_window2d *w, size_t images) {
    const size_t ld = images * w->out_h * w->out_w;
    return (size_t)w->kernel_h * w->kernel_w * (ld + 2 * blocks(ld));
}

size_t tl_col2im_table_size(const tl_window2d *w, size_t images) {
    const size_t in_plane = (size_t)w->height * w->width;
    return (size_t)w->kernel_h * w->kernel_w * images * (in_plane + 2 * blocks(in_plane));
}

void tl_im2col_table(const tl_window2d *w, size_t images, int32_t *taps) {
    const int H = w->height, W = w->width, OH = w->out_h, OW = w->out_w;
    const size_t plane = (size_t)OH * OW, image = (size_t)w->channels * H * W, ld = images * plane;
    const int kk = w->kernel_h * w->kernel_w;
    for (int i = 0; i < w->kernel_h; i++)
        for (int j = 0; j < w->kernel_w; j++) {
            int32_t *row = taps + (size_t)(i * w->kernel_w + j) * ld;
            for (int oy = 0; oy < OH; oy++) {
                const int iy = oy * w->stride_h - w->pad_top + i * w->dilation_h;
                for (int ox = 0; ox < OW; ox++) {
                    const int ix = ox * w->stride_w - w->pad_left + j * w->dilation_w;
                    row[oy * OW + ox] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? iy * W + ix : -1;
                }
            }
            for (size_t n = 1; n < images; n++)
                for (size_t p = 0; p < plane; p++)
                    row[n * plane + p] = row[p] < 0 ? -1 : (int32_t)(row[p] + n * image);
        }
    int32_t *runs = taps + (size_t)kk * ld;
    for (int t = 0; t < kk; t++) block_runs(taps + (size_t)t * ld, ld, runs + (size_t)t * 2 * blocks(ld));
}

void tl_col2im_table(const tl_window2d *w, size_t images, int32_t *sources) {
    const int H = w->height, W = w->width, OH = w->out_h, OW = w->out_w;
    const size_t in_plane = (size_t)H * W, plane = (size_t)OH * OW, ld = images * in_plane;
    const int kk = w->kernel_h * w->kernel_w;
    for (int i = 0; i < w->kernel_h; i++)
        for (int j = 0; j < w->kernel_w; j++) {
            int32_t *row = sources + (size_t)(i * w->kernel_w + j) * ld;
            for (int iy = 0; iy < H; iy++) {
                // oy·s − pad + i·d = iy: the output row whose tap i reads input row iy, if any.
                const int ny = iy + w->pad_top - i * w->dilation_h, oy = ny / w->stride_h;
                const int row_ok = ny >= 0 && ny % w->stride_h == 0 && oy < OH;
                for (int ix = 0; ix < W; ix++) {
                    const int nx = ix + w->pad_left - j * w->dilation_w, ox = nx / w->stride_w;
                    const int ok = row_ok && nx >= 0 && nx % w->stride_w == 0 && ox < OW;
                    row[iy * W + ix] = ok ? oy * OW + ox : -1;
                }
            }
            for (size_t n = 1; n < images; n++)
                for (size_t q = 0; q < in_plane; q++)
                    row[n * in_plane + q] = row[q] < 0 ? -1 : (int32_t)(row[q] + n * plane);
        }
    int32_t *runs = sources + (size_t)kk * ld;
    for (size_t r = 0; r < (size_t)kk * images; r++) block_runs(sources + r * in_plane, in_plane, runs + r * 2 * blocks(in_plane));
}

// ---------------------------------------------------------------- kernels
// gather:     dst[k] = idx[k] >= 0 ? base[idx[k]] : 0                      for k < n
// gather_sum: dst[k] = Σ_t (idx[t·stride + k] >= 0 ? bases[t][idx[t·stride + k]] : 0)
// with runs + 2·(k / 16) (plus t·run_stride for tap t) the block's (start, step) pair.

static void gather_scalar(const float *base, const int32_t *idx, size_t n, float *dst) {
    for (size_t k = 0; k < n; k++) dst[k] = idx[k] >= 0 ? base[idx[k]] : 0.0f;
}

static void gather_sum_scalar(const float *const *bases, const int32_t *idx, size_t stride, int taps, size_t n, float *dst) {
    for (size_t k = 0; k < n; k++) {
        float acc = 0.0f;
        for (int t = 0; t < taps; t++) {
            const int32_t v = idx[t * stride + k];
            if (v >= 0) acc += bases[t][v];
        }
        dst[k] = acc;
    }
}

#ifdef TL_GATHER_X86
/// One block's lanes (tail: those below n − k): masked loads for a run, else a gather.
__attribute__((target("avx512f,bmi2")))
static inline __m512 block_avx512(const float *base, const int32_t *idx, const int32_t *run, __mmask16 tail) {
    const __m512i v = _mm512_maskz_loadu_epi32(tail, idx);
    const __mmask16 valid = _mm512_mask_cmpgt_epi32_mask(tail, v, _mm512_set1_epi32(-1));
    switch (run[1]) {
    case 1: return _mm512_maskz_loadu_ps(valid, base + run[0]);
    case 2: {
        // Lane l reads element 2l of the 32 from base + start: the even lanes of two loads.
        const __mmask16 low = (__mmask16)_pdep_u32(valid & 0xFFu, 0x5555u), high = (__mmask16)_pdep_u32(valid >> 8, 0x5555u);
        const __m512 a = _mm512_maskz_loadu_ps(low, base + run[0]), b = _mm512_maskz_loadu_ps(high, base + run[0] + 16);
        const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        return _mm512_permutex2var_ps(a, even, b);
    }
    default: return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, v, base, 4);
    }
}

__attribute__((target("avx512f")))
static inline __mmask16 tail_avx512(size_t left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

__attribute__((target("avx512f,bmi2")))
static void gather_avx512(const float *base, const int32_t *idx, const int32_t *runs, size_t n, float *dst) {
    for (size_t k = 0; k < n; k += 16) {
        const __mmask16 tail = tail_avx512(n - k);
        _mm512_mask_storeu_ps(dst + k, tail, block_avx512(base, idx + k, runs + 2 * (k / 16), tail));
    }
}

__attribute__((target("avx512f,bmi2")))
static void gather_sum_avx512(const float *const *bases, const int32_t *idx, size_t stride, const int32_t *runs,
                              size_t run_stride, int taps, size_t n, float *dst) {
    for (size_t k = 0; k < n; k += 16) {
        const __mmask16 tail = tail_avx512(n - k);
        __m512 acc = _mm512_setzero_ps();
        for (int t = 0; t < taps; t++)
            acc = _mm512_add_ps(acc, block_avx512(bases[t], idx + t * stride + k, runs + t * run_stride + 2 * (k / 16), tail));
        _mm512_mask_storeu_ps(dst + k, tail, acc);
    }
}

/// Eight lanes of a block (the half at `lane`, 0 or 8): a masked load for a stride-1 run, else a gather.
__attribute__((target("avx2")))
static inline __m256 half_avx2(const float *base, const int32_t *idx, const int32_t *run, int lane) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)idx);
    const __m256i valid = _mm256_cmpgt_epi32(v, _mm256_set1_epi32(-1));
    if (run[1] == 1) return _mm256_maskload_ps(base + run[0] + lane, valid);
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, v, _mm256_castsi256_ps(valid), 4);
}

__attribute__((target("avx2")))
static void gather_avx2(const float *base, const int32_t *idx, const int32_t *runs, size_t n, float *dst) {
    size_t k = 0;
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(dst + k, half_avx2(base, idx + k, runs + 2 * (k / 16), (int)(k % 16)));
    gather_scalar(base, idx + k, n - k, dst + k);
}

__attribute__((target("avx2")))
static void gather_sum_avx2(const float *const *bases, const int32_t *idx, size_t stride, const int32_t *runs,
                            size_t run_stride, int taps, size_t n, float *dst) {
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int t = 0; t < taps; t++)
            acc = _mm256_add_ps(acc, half_avx2(bases[t], idx + t * stride + k, runs + t * run_stride + 2 * (k / 16), (int)(k % 16)));
        _mm256_storeu_ps(dst + k, acc);
    }
    gather_sum_scalar(bases, idx + k, stride, taps, n - k, dst + k);
}
#endif

/// What the CPU has and what is in use: 0 = scalar, 1 = AVX2, 2 = AVX-512; -1 = not yet
/// probed. tl_set_gather_level lowers the level in use (the tests compare the levels).
static int gather_best = -1, gather_impl = -1;

static int gather_hardware(void) {
    int best = __atomic_load_n(&gather_best, __ATOMIC_RELAXED);
    if (best >= 0) return best;
    best = 0;
#ifdef TL_GATHER_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("bmi2")) best = 2;
    else if (__builtin_cpu_supports("avx2")) best = 1;
#endif
    __atomic_store_n(&gather_best, best, __ATOMIC_RELAXED);
    return best;
}

static int gather_probe(void) {
    const int impl = __atomic_load_n(&gather_impl, __ATOMIC_RELAXED);
    return impl >= 0 ? impl : gather_hardware();
}

int tl_gather_level(void) { return gather_probe(); }

void tl_set_gather_level(int level) {
    const int best = gather_hardware();
    __atomic_store_n(&gather_impl, level < 0 || level > best ? best : level, __ATOMIC_RELAXED);
}

static inline void gather(const float *base, const int32_t *idx, const int32_t *runs, size_t n, float *dst) {
#ifdef TL_GATHER_X86
    switch (gather_probe()) {
    case 2: gather_avx512(base, idx, runs, n, dst); return;
    case 1: gather_avx2(base, idx, runs, n, dst); return;
    default: break;
    }
#endif
    (void)runs;
    gather_scalar(base, idx, n, dst);
}

static inline void gather_sum(const float *const *bases, const int32_t *idx, size_t stride, const int32_t *runs,
                              size_t run_stride, int taps, size_t n, float *dst) {
#ifdef TL_GATHER_X86
    switch (gather_probe()) {
    case 2: gather_sum_avx512(bases, idx, stride, runs, run_stride, taps, n, dst); return;
    case 1: gather_sum_avx2(bases, idx, stride, runs, run_stride, taps, n, dst); return;
    default: break;
    }
#endif
    (void)runs;
    (void)run_stride;
    gather_sum_scalar(bases, idx, stride, taps, n, dst);
}

// ---------------------------------------------------------------- im2col / col2im

void tl_im2col_gather(const float *x, const tl_window2d *w, const int32_t *taps, size_t images, size_t r0, size_t r1,
                      size_t ld, float *col) {
    const size_t in_plane = (size_t)w->height * w->width, n = images * w->out_h * w->out_w;
    const size_t kk = (size_t)w->kernel_h * w->kernel_w;
    const int32_t *runs = taps + kk * n;
    for (size_t r = r0; r < r1; r++) {
        const size_t c = r / kk, t = r % kk;
        gather(x + c * in_plane, taps + t * n, runs + t * 2 * blocks(n), n, col + r * ld);
    }
}

void tl_col2im_gather(const float *col, const tl_window2d *w, const int32_t *sources, size_t images, size_t c0, size_t c1,
                      size_t ld, float *x) {
    const size_t in_plane = (size_t)w->height * w->width, image = in_plane * w->channels;
    const size_t stride = images * in_plane;
    const int kk = w->kernel_h * w->kernel_w;
    const int32_t *runs = sources + (size_t)kk * stride;
    const size_t per_row = 2 * blocks(in_plane);
    const float *bases[kk];
    for (size_t c = c0; c < c1; c++) {
        for (int t = 0; t < kk; t++) bases[t] = col + (c * kk + t) * ld;
        for (size_t n = 0; n < images; n++)
            gather_sum(bases, sources + n * in_plane, stride, runs + n * per_row, images * per_row, kk, in_plane,
                       x + n * image + c * in_plane);
    }
}

// ---------------------------------------------------------------- max pooling
// Output k of a plane takes, over the taps t in scan order, the value at taps[t·P + k]: a tap
// replaces the best so far when it is the first valid one, or when it is greater or NaN while
// the best is not NaN. Vectorised across 16 (8) outputs, the taps gathered.

/// Outputs from..<plane of every plane.
static void maxpool_scalar(const float *x, const int32_t *taps, int kk, size_t in_plane, size_t plane, size_t planes,
                           size_t from, float *out, float *argmax) {
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * in_plane;
        for (size_t k = from; k < plane; k++) {
            float best = -INFINITY;
            int32_t where = -1;
            for (int t = 0; t < kk; t++) {
                const int32_t v = taps[t * plane + k];
                if (v < 0) continue;
                const float value = xp[v];
                if (where < 0 || (!(value <= best) && best == best)) {
                    best = value;
                    where = v;
                }
            }
            out[p * plane + k] = best;
            argmax[p * plane + k] = (float)where;
        }
    }
}

#ifdef TL_GATHER_X86
__attribute__((target("avx512f")))
static void maxpool_avx512(const float *x, const int32_t *taps, int kk, size_t in_plane, size_t plane, size_t planes,
                           float *out, float *argmax) {
    const __m512i none = _mm512_set1_epi32(-1);
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * in_plane;
        for (size_t k = 0; k < plane; k += 16) {
            const __mmask16 tail = plane - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (plane - k)) - 1);
            __m512 best = _mm512_set1_ps(-INFINITY);
            __m512i where = none;
            for (int t = 0; t < kk; t++) {
                const __m512i v = _mm512_maskz_loadu_epi32(tail, taps + t * plane + k);
                const __mmask16 valid = _mm512_mask_cmpgt_epi32_mask(tail, v, none);
                const __m512 value = _mm512_mask_i32gather_ps(best, valid, v, xp, 4);
                const __mmask16 unset = _mm512_cmpeq_epi32_mask(where, none);
                const __mmask16 better = _mm512_cmp_ps_mask(value, best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q);
                const __mmask16 take = valid & (unset | better);
                best = _mm512_mask_mov_ps(best, take, value);
                where = _mm512_mask_mov_epi32(where, take, v);
            }
            _mm512_mask_storeu_ps(out + p * plane + k, tail, best);
            _mm512_mask_storeu_ps(argmax + p * plane + k, tail, _mm512_cvtepi32_ps(where));
        }
    }
}

__attribute__((target("avx2")))
static void maxpool_avx2(const float *x, const int32_t *taps, int kk, size_t in_plane, size_t plane, size_t planes,
                         float *out, float *argmax) {
    const __m256i none = _mm256_set1_epi32(-1);
    const size_t vectors = plane / 8 * 8;
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * in_plane;
        for (size_t k = 0; k < vectors; k += 8) {
            __m256 best = _mm256_set1_ps(-INFINITY);
            __m256i where = none;
            for (int t = 0; t < kk; t++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(taps + t * plane + k));
                const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(v, none));
                const __m256 value = _mm256_mask_i32gather_ps(best, xp, v, valid, 4);
                const __m256 unset = _mm256_castsi256_ps(_mm256_cmpeq_epi32(where, none));
                const __m256 better = _mm256_and_ps(_mm256_cmp_ps(value, best, _CMP_NLE_UQ), _mm256_cmp_ps(best, best, _CMP_ORD_Q));
                const __m256 take = _mm256_and_ps(valid, _mm256_or_ps(unset, better));
                best = _mm256_blendv_ps(best, value, take);
                where = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(where), _mm256_castsi256_ps(v), take));
            }
            _mm256_storeu_ps(out + p * plane + k, best);
            _mm256_storeu_ps(argmax + p * plane + k, _mm256_cvtepi32_ps(where));
        }
    }
    // The last outputs of each plane (fewer than 8).
    if (vectors < plane) maxpool_scalar(x, taps, kk, in_plane, plane, planes, vectors, out, argmax);
}
#endif

void tl_maxpool2d_forward(const float *x, const tl_window2d *w, const int32_t *taps, size_t planes, float *out, float *argmax) {
    const size_t in_plane = (size_t)w->height * w->width, plane = (size_t)w->out_h * w->out_w;
    const int kk = w->kernel_h * w->kernel_w;
#ifdef TL_GATHER_X86
    switch (gather_probe()) {
    case 2: maxpool_avx512(x, taps, kk, in_plane, plane, planes, out, argmax); return;
    case 1: maxpool_avx2(x, taps, kk, in_plane, plane, planes, out, argmax); return;
    default: break;
    }
#endif
    maxpool_scalar(x, taps, kk, in_plane, plane, planes, 0, out, argmax);
}
