// Convolution, pooling and batch-norm kernels; part of kernels.cu (included at its end).

// ------------------------------------------------------------------------------------------
// Convolution, pooling and batch normalisation over NCHW activations, as conv.c.
//
// tl_win is clearner.h's tl_window2d, field for field (15 int32, passed by value): one image
// [channels, height, width], the kernel, stride, per-side padding, dilation and the output
// [out_h, out_w]. Input row of output row oy and kernel row i: iy = oy·sh − pad_top + i·dh
// (outside [0, height): padding, reads as 0). Likewise columns.
struct tl_win {
    int channels, height, width;
    int kernel_h, kernel_w, stride_h, stride_w;
    int pad_top, pad_bottom, pad_left, pad_right;
    int dilation_h, dilation_w;
    int out_h, out_w;
};

// im2col of `images` consecutive images x [images, C, H, W] into col [images, C·kH·kW, OH·OW]
// (row (c·kH + i)·kW + j, column oy·OW + ox; as tl_im2col per image). One thread per column
// element, grid-stride; zeros where the window reads padding.
extern "C" __global__ void tl_k_im2col(const float *x, tl_win w, u64 images, float *col) {
    const u64 OH = w.out_h, OW = w.out_w, KH = w.kernel_h, KW = w.kernel_w, C = w.channels;
    const u64 n = images * C * KH * KW * OH * OW;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        u64 t = e;
        const int ox = (int)(t % OW); t /= OW;
        const int oy = (int)(t % OH); t /= OH;
        const int j = (int)(t % KW); t /= KW;
        const int i = (int)(t % KH); t /= KH;
        const u64 plane = t; // img·C + c
        const int iy = oy * w.stride_h - w.pad_top + i * w.dilation_h;
        const int ix = ox * w.stride_w - w.pad_left + j * w.dilation_w;
        float v = 0.0f;
        if (iy >= 0 && iy < w.height && ix >= 0 && ix < w.width)
            v = x[(plane * (u64)w.height + (u64)iy) * (u64)w.width + (u64)ix];
        col[e] = v;
    }
}

// col2im, the adjoint of tl_k_im2col, as a gather: x [images, C, H, W] = Σ over the column
// entries that read each pixel, so every pixel is written by one thread (no atomics, a fixed
// order). OVERWRITES x (tl_col2im accumulates into x; the caller zeroes x first there). The
// terms are added in tl_col2im's order: kernel row i, then column j, ascending.
extern "C" __global__ void tl_k_col2im(const float *col, tl_win w, u64 images, float *x) {
    const u64 H = w.height, W = w.width, C = w.channels, OH = w.out_h, OW = w.out_w;
    const u64 KH = w.kernel_h, KW = w.kernel_w;
    const u64 n = images * C * H * W;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        u64 t = e;
        const int ix = (int)(t % W); t /= W;
        const int iy = (int)(t % H); t /= H;
        const u64 plane = t; // img·C + c; its rows in col start at plane·kH·kW
        float s = 0.0f;
        for (int i = 0; i < (int)KH; i++) {
            const int ty = iy + w.pad_top - i * w.dilation_h; // = oy·sh
            if (ty < 0 || ty % w.stride_h != 0) continue;
            const int oy = ty / w.stride_h;
            if (oy >= (int)OH) continue;
            for (int j = 0; j < (int)KW; j++) {
                const int tx = ix + w.pad_left - j * w.dilation_w;
                if (tx < 0 || tx % w.stride_w != 0) continue;
                const int ox = tx / w.stride_w;
                if (ox >= (int)OW) continue;
                s += col[((plane * KH + (u64)i) * KW + (u64)j) * OH * OW + (u64)oy * OW + (u64)ox];
            }
        }
        x[e] = s;
    }
}

// Per-channel bias add in place: out [batch, channels, plane] += bias[channel]; n = batch·channels·plane.
extern "C" __global__ void tl_k_channel_bias(float *out, const float *bias, u64 n, u64 channels, u64 plane) {
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) out[e] += bias[(e / plane) % channels];
}

// Max pooling of `planes` planes x [planes, H, W] -> out, argmax [planes, OH, OW], one thread
// per output (grid-stride). argmax is the flat input index iy·W + ix of the first maximum in
// window order, as a float; −1 (and −inf) for a window wholly in padding. NaN wins and stops
// the scan, as tl_maxpool2d_forward (PyTorch).
extern "C" __global__ void tl_k_maxpool_fwd(const float *x, tl_win w, u64 planes, float *out, float *argmax) {
    const u64 OH = w.out_h, OW = w.out_w, H = w.height, W = w.width;
    const u64 n = planes * OH * OW;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        const int ox = (int)(e % OW), oy = (int)((e / OW) % OH);
        const float *xp = x + (e / (OH * OW)) * H * W;
        float best = TL_NEG_INF;
        int where = -1;
        bool stop = false;
        for (int i = 0; i < w.kernel_h && !stop; i++) {
            const int iy = oy * w.stride_h - w.pad_top + i * w.dilation_h;
            if (iy < 0 || iy >= w.height) continue;
            for (int j = 0; j < w.kernel_w; j++) {
                const int ix = ox * w.stride_w - w.pad_left + j * w.dilation_w;
                if (ix < 0 || ix >= w.width) continue;
                const float v = xp[iy * w.width + ix];
                const bool isnan_v = v != v;
                if (v > best || isnan_v || where < 0) {
                    best = v;
                    where = iy * w.width + ix;
                    if (isnan_v) { stop = true; break; }
                }
            }
        }
        out[e] = best;
        argmax[e] = (float)where;
    }
}

// Visits the outputs (oy, ox) whose window covers input pixel (iy, ix), in ascending output
// order (oy, then ox), as the CPU's scatter loops add them. For a fixed output the pixel is
// at most one kernel position, so each output is visited once. Kernel row i maps to
// oy = (iy + pad_top − i·dh) / sh, decreasing in i: walk i (and j) downwards.
#define TL_FOR_COVERING_OUTPUTS(w, iy, ix, BODY)                                        \
    for (int i_ = (w).kernel_h - 1; i_ >= 0; i_--) {                                    \
        const int ty_ = (iy) + (w).pad_top - i_ * (w).dilation_h;                       \
        if (ty_ < 0 || ty_ % (w).stride_h != 0) continue;                               \
        const int oy = ty_ / (w).stride_h;                                              \
        if (oy >= (w).out_h) continue;                                                  \
        for (int j_ = (w).kernel_w - 1; j_ >= 0; j_--) {                                \
            const int tx_ = (ix) + (w).pad_left - j_ * (w).dilation_w;                  \
            if (tx_ < 0 || tx_ % (w).stride_w != 0) continue;                           \
            const int ox = tx_ / (w).stride_w;                                          \
            if (ox >= (w).out_w) continue;                                              \
            BODY                                                                        \
        }                                                                               \
    }

// Max pooling backward as a gather: dx [planes, H, W] (overwritten) = Σ g[o] over the outputs o
// whose argmax is this pixel. One thread per input pixel: no atomics, deterministic. Indices
// are split in 32-bit arithmetic when they fit (a 64-bit division costs several times more),
// and an undilated window's covering outputs are a rectangle walked directly (at most 4
// outputs for ResNet's 3×3 stride-2 pooling, where the general walk tests 9 kernel taps).
__device__ __forceinline__ float tl_maxpool_bwd_pixel(const float *gp, const float *ap, const tl_win &w, int iy,
                                                      int ix) {
    const int me = iy * w.width + ix;
    float s = 0.0f;
    if (w.dilation_h == 1 && w.dilation_w == 1) {
        // Outputs oy with oy·sh − pt ≤ iy ≤ oy·sh − pt + kh − 1, in ascending order as the CPU adds them.
        const int ty = iy + w.pad_top, tx = ix + w.pad_left;
        const int y0 = ty - w.kernel_h + 1 > 0 ? (ty - w.kernel_h + 1 + w.stride_h - 1) / w.stride_h : 0;
        const int x0 = tx - w.kernel_w + 1 > 0 ? (tx - w.kernel_w + 1 + w.stride_w - 1) / w.stride_w : 0;
        const int y1 = ty / w.stride_h < w.out_h - 1 ? ty / w.stride_h : w.out_h - 1;
        const int x1 = tx / w.stride_w < w.out_w - 1 ? tx / w.stride_w : w.out_w - 1;
        for (int oy = y0; oy <= y1; oy++)
            for (int ox = x0; ox <= x1; ox++) {
                const int o = oy * w.out_w + ox;
                if ((int)ap[o] == me) s += gp[o];
            }
        return s;
    }
    TL_FOR_COVERING_OUTPUTS(w, iy, ix, {
        const u64 o = (u64)oy * w.out_w + (u64)ox;
        if ((int)ap[o] == me) s += gp[o];
    })
    return s;
}

extern "C" __global__ void tl_k_maxpool_bwd(const float *g, const float *argmax, tl_win w, u64 planes, float *dx) {
    const u64 OH = w.out_h, OW = w.out_w, H = w.height, W = w.width;
    const u64 n = planes * H * W;
    if (n < (1ull << 32)) {
        const unsigned W32 = (unsigned)W, HW32 = (unsigned)(H * W);
        for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
            const unsigned e32 = (unsigned)e, p = e32 / HW32, r = e32 - p * HW32, iy = r / W32, ix = r - iy * W32;
            dx[e] = tl_maxpool_bwd_pixel(g + (u64)p * OH * OW, argmax + (u64)p * OH * OW, w, (int)iy, (int)ix);
        }
        return;
    }
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        const int ix = (int)(e % W), iy = (int)((e / W) % H);
        const u64 p = e / (H * W);
        dx[e] = tl_maxpool_bwd_pixel(g + p * OH * OW, argmax + p * OH * OW, w, iy, ix);
    }
}

// The divisor of one average-pooling window, as avg_divisor in conv.c: with include_pad the
// window clipped to the padded input, else only its part inside the input.
__device__ __forceinline__ int tl_avg_divisor(const tl_win &w, int oy, int ox, int include_pad) {
    const int y0 = oy * w.stride_h - w.pad_top, x0 = ox * w.stride_w - w.pad_left;
    int ny = 0, nx = 0;
    if (include_pad) {
        const int y1 = y0 + (w.kernel_h - 1) * w.dilation_h + 1, x1 = x0 + (w.kernel_w - 1) * w.dilation_w + 1;
        const int ph = w.height + w.pad_bottom, pw = w.width + w.pad_right;
        const int ylim = y1 < ph ? y1 : ph, xlim = x1 < pw ? x1 : pw;
        for (int y = y0; y < ylim; y += w.dilation_h) ny++;
        for (int x = x0; x < xlim; x += w.dilation_w) nx++;
        return ny * nx;
    }
    for (int i = 0; i < w.kernel_h; i++) { const int y = y0 + i * w.dilation_h; if (y >= 0 && y < w.height) ny++; }
    for (int j = 0; j < w.kernel_w; j++) { const int x = x0 + j * w.dilation_w; if (x >= 0 && x < w.width) nx++; }
    return ny * nx;
}

// Average pooling x [planes, H, W] -> out [planes, OH, OW], one thread per output.
extern "C" __global__ void tl_k_avgpool_fwd(const float *x, tl_win w, u64 planes, int include_pad, float *out) {
    const u64 OH = w.out_h, OW = w.out_w, H = w.height, W = w.width;
    const u64 n = planes * OH * OW;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        const int ox = (int)(e % OW), oy = (int)((e / OW) % OH);
        const float *xp = x + (e / (OH * OW)) * H * W;
        float s = 0.0f;
        for (int i = 0; i < w.kernel_h; i++) {
            const int iy = oy * w.stride_h - w.pad_top + i * w.dilation_h;
            if (iy < 0 || iy >= w.height) continue;
            for (int j = 0; j < w.kernel_w; j++) {
                const int ix = ox * w.stride_w - w.pad_left + j * w.dilation_w;
                if (ix >= 0 && ix < w.width) s += xp[iy * w.width + ix];
            }
        }
        const int d = tl_avg_divisor(w, oy, ox, include_pad);
        out[e] = d > 0 ? s / (float)d : 0.0f;
    }
}

// Average pooling backward as a gather: dx [planes, H, W] (overwritten) = Σ g[o] / divisor(o)
// over the outputs o whose window covers the pixel (inside the input). One thread per pixel.
extern "C" __global__ void tl_k_avgpool_bwd(const float *g, tl_win w, u64 planes, int include_pad, float *dx) {
    const u64 OH = w.out_h, OW = w.out_w, H = w.height, W = w.width;
    const u64 n = planes * H * W;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        const int ix = (int)(e % W), iy = (int)((e / W) % H);
        const float *gp = g + (e / (H * W)) * OH * OW;
        float s = 0.0f;
        TL_FOR_COVERING_OUTPUTS(w, iy, ix, {
            const int d = tl_avg_divisor(w, oy, ox, include_pad);
            if (d > 0) s += gp[(u64)oy * OW + (u64)ox] / (float)d;
        })
        dx[e] = s;
    }
}

// Block sum in double; every thread gets the result. blockDim.x is a power of two in [32, 1024].
__device__ double tl_block_sum_d(double v) {
    __shared__ double shd[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int nwarps = blockDim.x >> 5;
    if (nwarps == 1) return v;
    int lane = threadIdx.x & 31, wp = threadIdx.x >> 5;
    __syncthreads(); // shd may still be read by a previous call
    if (lane == 0) shd[wp] = v;
    __syncthreads();
    v = lane < nwarps ? shd[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Batch norm over x [n, c, s] on a (channel, chunk) grid: block b works on channel
// b / chunks, and on part b % chunks of that channel's m = n·s values, taken image-major
// (value v is offset v % s of image v / s); m < 2^32. Enough chunks per channel keep every
// multiprocessor busy however few the channels are (one block per channel left most of the
// GPU idle on ResNet's 64-channel layers at 112×112), and each block reads a contiguous run
// of each image's plane, so the warps' loads are coalesced.
struct tl_bn_part {
    u64 ch, lo, hi;
};

__device__ __forceinline__ tl_bn_part tl_bn_block(u64 n, u64 s, u64 chunks) {
    const u64 m = n * s, len = (m + chunks - 1) / chunks, b = blockIdx.x % chunks;
    tl_bn_part p;
    p.ch = blockIdx.x / chunks;
    p.lo = b * len < m ? b * len : m;
    p.hi = p.lo + len < m ? p.lo + len : m;
    return p;
}

// The element of x [n, c, s] holding value v of channel ch.
__device__ __forceinline__ u64 tl_bn_index(u64 v, u64 c, u64 s, u64 ch) {
    const unsigned i = (unsigned)v / (unsigned)s, k = (unsigned)v - i * (unsigned)s;
    return ((u64)i * c + ch) * s + k;
}

// Per (channel, chunk): Σx and Σx² in double, into part[2·block], part[2·block + 1].
extern "C" __global__ void tl_k_bn_stats(const float *x, u64 n, u64 c, u64 s, u64 chunks, double *part) {
    const tl_bn_part p = tl_bn_block(n, s, chunks);
    if (p.ch >= c) return;
    double sum = 0.0, sq = 0.0;
    for (u64 v = p.lo + threadIdx.x; v < p.hi; v += blockDim.x) {
        const float xv = x[tl_bn_index(v, c, s, p.ch)];
        sum += (double)xv;
        sq += (double)xv * (double)xv;
    }
    sum = tl_block_sum_d(sum);
    sq = tl_block_sum_d(sq);
    if (threadIdx.x == 0) {
        part[2 * blockIdx.x] = sum;
        part[2 * blockIdx.x + 1] = sq;
    }
}

// Per channel (grid-stride over threads): the mean and the biased variance from the chunks'
// sums, E[x²] − mean² in double (the CPU's two-pass figures to within rounding).
extern "C" __global__ void tl_k_bn_stats_finish(const double *part, u64 c, u64 chunks, u64 m, float *mean,
                                                float *var) {
    for (u64 ch = tl_tid(); ch < c; ch += tl_nthreads()) {
        double sum = 0.0, sq = 0.0;
        for (u64 b = 0; b < chunks; b++) {
            sum += part[2 * (ch * chunks + b)];
            sq += part[2 * (ch * chunks + b) + 1];
        }
        const double mu = sum / (double)m, v = sq / (double)m - mu * mu;
        mean[ch] = (float)mu;
        var[ch] = (float)(v > 0.0 ? v : 0.0);
    }
}

// Batch-norm forward: y = x·scale + shift per channel of x [n, c, s] with
// scale = weight/√(var + eps), shift = bias − mean·scale (as tl_batchnorm_forward), on the
// (channel, chunk) grid: each block works out its channel's scale and shift once.
extern "C" __global__ void tl_k_bn_forward(const float *x, u64 n, u64 c, u64 s, u64 chunks, const float *mean,
                                           const float *var, float eps, const float *weight, const float *bias,
                                           float *y) {
    const tl_bn_part p = tl_bn_block(n, s, chunks);
    if (p.ch >= c) return;
    const float inv = 1.0f / sqrtf(var[p.ch] + eps);
    const float scale = weight[p.ch] * inv, shift = bias[p.ch] - mean[p.ch] * scale;
    for (u64 v = p.lo + threadIdx.x; v < p.hi; v += blockDim.x) {
        const u64 at = tl_bn_index(v, c, s, p.ch);
        y[at] = x[at] * scale + shift;
    }
}

// Batch-norm backward, as tl_batchnorm_backward. g, x, dx [n, c, s]; dweight, dbias [c].
// Per channel: dbias = Σ g, dweight = Σ g·(x − μ) / √(var + eps) (sums in double); dx = g·k1 when
// the statistics are constants (batch_stats == 0), else k1·(g − Σg/m − x̂·dweight/m) with
// k1 = weight/√(var + eps). Three launches: the chunks' sums (tl_k_bn_backward), the channels'
// totals (tl_k_bn_backward_finish, which also writes dweight and dbias), then dx
// (tl_k_bn_backward_dx), each chunk writing its own elements.
extern "C" __global__ void tl_k_bn_backward(const float *g, const float *x, u64 n, u64 c, u64 s, u64 chunks,
                                            const float *mean, double *part) {
    const tl_bn_part p = tl_bn_block(n, s, chunks);
    if (p.ch >= c) return;
    const float mu = mean[p.ch];
    double sg = 0.0, sgx = 0.0;
    for (u64 v = p.lo + threadIdx.x; v < p.hi; v += blockDim.x) {
        const u64 at = tl_bn_index(v, c, s, p.ch);
        const float gv = g[at];
        sg += (double)gv;
        sgx += (double)(gv * (x[at] - mu));
    }
    sg = tl_block_sum_d(sg);
    sgx = tl_block_sum_d(sgx);
    if (threadIdx.x == 0) {
        part[2 * blockIdx.x] = sg;
        part[2 * blockIdx.x + 1] = sgx;
    }
}

// Per channel: dbias and dweight from the chunks' sums; totals[2·ch] = dbias, totals[2·ch + 1] =
// dweight for the dx pass (dweight and dbias may be NULL).
extern "C" __global__ void tl_k_bn_backward_finish(const double *part, u64 c, u64 chunks, const float *var,
                                                   float eps, float *dweight, float *dbias, float *totals) {
    for (u64 ch = tl_tid(); ch < c; ch += tl_nthreads()) {
        double sg = 0.0, sgx = 0.0;
        for (u64 b = 0; b < chunks; b++) {
            sg += part[2 * (ch * chunks + b)];
            sgx += part[2 * (ch * chunks + b) + 1];
        }
        const float inv = 1.0f / sqrtf(var[ch] + eps);
        const float dbeta = (float)sg, dgamma = (float)(sgx * (double)inv);
        if (dweight) dweight[ch] = dgamma;
        if (dbias) dbias[ch] = dbeta;
        totals[2 * ch] = dbeta;
        totals[2 * ch + 1] = dgamma;
    }
}

extern "C" __global__ void tl_k_bn_backward_dx(const float *g, const float *x, u64 n, u64 c, u64 s, u64 chunks,
                                               const float *mean, const float *var, float eps, const float *weight,
                                               int batch_stats, const float *totals, float *dx) {
    const tl_bn_part p = tl_bn_block(n, s, chunks);
    if (p.ch >= c) return;
    const float inv = 1.0f / sqrtf(var[p.ch] + eps), mu = mean[p.ch];
    const float k1 = weight[p.ch] * inv, m = (float)(n * s);
    const float mg = totals[2 * p.ch] / m, mgx = totals[2 * p.ch + 1] / m;
    for (u64 v = p.lo + threadIdx.x; v < p.hi; v += blockDim.x) {
        const u64 at = tl_bn_index(v, c, s, p.ch);
        dx[at] = batch_stats ? k1 * (g[at] - mg - (x[at] - mu) * inv * mgx) : g[at] * k1;
    }
}

// ------------------------------------------------------------------------------------------
// Max over the middle axis of x viewed as [outer, mid, inner] -> out [outer, inner] and the
// arg-max idx [outer, inner] (int32, first maximum; a NaN first element stays), as
// tl_reduce_mid with op 1. One thread per output, coalesced along inner.
extern "C" __global__ void tl_k_max_mid(const float *x, float *out, int *idx, u64 outer, u64 mid, u64 inner) {
    const u64 n = outer * inner;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        const u64 o = e / inner, i = e - o * inner;
        const float *src = x + o * mid * inner + i;
        float best = src[0];
        int where = 0;
        for (u64 k = 1; k < mid; k++) {
            const float v = src[k * inner];
            if (v > best) { best = v; where = (int)k; }
        }
        out[e] = best;
        if (idx) idx[e] = where;
    }
}

// General permute (rank <= 8), as tl_permute: out is contiguous with shape p.shape[0..rank),
// out[i0, ..., i_{r-1}] = x[Σ i_d · p.stride[d]], p.stride being x's strides in output-axis
// order. One thread per output element.
struct tl_perm { u64 shape[8]; u64 stride[8]; };

extern "C" __global__ void tl_k_permute(const float *x, float *out, u64 n, int rank, tl_perm p) {
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        u64 t = e, off = 0;
        for (int d = rank - 1; d >= 0; d--) {
            const u64 q = t / p.shape[d];
            off += (t - q * p.shape[d]) * p.stride[d];
            t = q;
        }
        out[e] = x[off];
    }
}
