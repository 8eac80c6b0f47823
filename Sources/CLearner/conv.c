// Convolution, pooling and batch-normalisation kernels for NCHW activations.
//
// Layout: activations are NCHW (PyTorch's), weights [out, in/groups, kH, kW]. For one image
// [C, H, W], im2col writes the column matrix [C·kH·kW, OH·OW] row by row (row index
// (c·kH + i)·kW + j, PyTorch's order), so a convolution of one group is one row-major sgemm
// W[out, C·kH·kW] · col[C·kH·kW, OH·OW] = y[out, OH·OW], already NCHW for that image.
// col2im is its adjoint: it accumulates a column matrix back into an image.
//
// Window geometry (tl_window2d): output size OH = (H + pad_top + pad_bottom − dh·(kh − 1) − 1) / sh + 1,
// input row of output row oy and kernel row i: iy = oy·sh − pad_top + i·dh (out of range: padding).
// Every kernel here works on the range it is given and never allocates: the Swift caller owns
// the buffers and splits work across cores.
#include "clearner.h"
#include <float.h>
#include <math.h>
#include <string.h>

// The range of output positions o in [0, out) whose input position o·s − pad + k·d lies in [0, in).
static inline void valid_range(int out, int in, int s, int pad, int offset, int *lo, int *hi) {
    // o·s + (offset − pad) >= 0  and  o·s + (offset − pad) < in
    int base = offset - pad;
    int a = base >= 0 ? 0 : (-base + s - 1) / s;
    int b = in - base <= 0 ? 0 : (in - base + s - 1) / s;
    if (a > out) a = out;
    if (b > out) b = out;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

// One row of a column matrix: kernel tap (i, j) of one channel plane xc [H, W] over all output
// positions, OH·OW floats (zeros where the tap reads padding).
static inline void im2col_row(const float *xc, const tl_window2d *w, int i, int j, float *row) {
    const int H = w->height, W = w->width, OH = w->out_h, OW = w->out_w, SW = w->stride_w;
    int oy0, oy1, ox0, ox1;
    valid_range(OH, H, w->stride_h, w->pad_top, i * w->dilation_h, &oy0, &oy1);
    valid_range(OW, W, SW, w->pad_left, j * w->dilation_w, &ox0, &ox1);
    if (oy0 > 0) memset(row, 0, sizeof(float) * (size_t)oy0 * OW);
    const int ix0 = ox0 * SW - w->pad_left + j * w->dilation_w;
    for (int oy = oy0; oy < oy1; oy++) {
        const int iy = oy * w->stride_h - w->pad_top + i * w->dilation_h;
        const float *xr = xc + (size_t)iy * W;
        float *out = row + (size_t)oy * OW;
        for (int ox = 0; ox < ox0; ox++) out[ox] = 0;
        if (SW == 1) {
            if (ox1 > ox0) memcpy(out + ox0, xr + ix0, sizeof(float) * (size_t)(ox1 - ox0));
        } else {
            for (int ox = ox0, ix = ix0; ox < ox1; ox++, ix += SW) out[ox] = xr[ix];
        }
        for (int ox = ox1; ox < OW; ox++) out[ox] = 0;
    }
    if (oy1 < OH) memset(row + (size_t)oy1 * OW, 0, sizeof(float) * (size_t)(OH - oy1) * OW);
}

// The adjoint of im2col_row: accumulates one row into the channel plane xc.
static inline void col2im_row(const float *row, const tl_window2d *w, int i, int j, float *xc) {
    const int H = w->height, W = w->width, OH = w->out_h, OW = w->out_w, SW = w->stride_w;
    int oy0, oy1, ox0, ox1;
    valid_range(OH, H, w->stride_h, w->pad_top, i * w->dilation_h, &oy0, &oy1);
    valid_range(OW, W, SW, w->pad_left, j * w->dilation_w, &ox0, &ox1);
    const int ix0 = ox0 * SW - w->pad_left + j * w->dilation_w;
    for (int oy = oy0; oy < oy1; oy++) {
        const int iy = oy * w->stride_h - w->pad_top + i * w->dilation_h;
        float *xr = xc + (size_t)iy * W;
        const float *in = row + (size_t)oy * OW;
        if (SW == 1) {
            float *dst = xr + ix0;
            const float *src = in + ox0;
            for (int k = 0; k < ox1 - ox0; k++) dst[k] += src[k];
        } else {
            for (int ox = ox0, ix = ix0; ox < ox1; ox++, ix += SW) xr[ix] += in[ox];
        }
    }
}

void tl_im2col(const float *x, const tl_window2d *w, float *col) {
    const size_t plane = (size_t)w->height * w->width, out = (size_t)w->out_h * w->out_w;
    float *row = col;
    for (int c = 0; c < w->channels; c++)
        for (int i = 0; i < w->kernel_h; i++)
            for (int j = 0; j < w->kernel_w; j++, row += out) im2col_row(x + c * plane, w, i, j, row);
}

void tl_col2im(const float *col, const tl_window2d *w, float *x) {
    const size_t plane = (size_t)w->height * w->width, out = (size_t)w->out_h * w->out_w;
    const float *row = col;
    for (int c = 0; c < w->channels; c++)
        for (int i = 0; i < w->kernel_h; i++)
            for (int j = 0; j < w->kernel_w; j++, row += out) col2im_row(row, w, i, j, x + c * plane);
}

void tl_swap_outer(const float *src, size_t a, size_t b, size_t p, size_t src_stride, size_t dst_stride, const float *bias,
                   size_t a0, size_t a1, float *dst) {
    for (size_t i = a0; i < a1; i++) {
        const float add = bias ? bias[i] : 0.0f;
        for (size_t j = 0; j < b; j++) {
            const float *s = src + i * src_stride + j * p;
            float *d = dst + j * dst_stride + i * p;
            if (bias) {
                for (size_t k = 0; k < p; k++) d[k] = s[k] + add;
            } else {
                memcpy(d, s, sizeof(float) * p);
            }
        }
    }
}

// ---------------------------------------------------------------- pooling
// Max pooling's forward pass is a gather (conv_gather.c); its backward pass scatters by argmax.
void tl_maxpool2d_backward(const float *g, const float *argmax, const tl_window2d *w, size_t planes, float *dx) {
    const size_t in = (size_t)w->height * w->width, out = (size_t)w->out_h * w->out_w;
    for (size_t p = 0; p < planes; p++) {
        float *dp = dx + p * in;
        memset(dp, 0, sizeof(float) * in);
        const float *gp = g + p * out, *ap = argmax + p * out;
        for (size_t o = 0; o < out; o++) {
            const int where = (int)ap[o];
            if (where >= 0) dp[where] += gp[o];
        }
    }
}

// The divisor of one average-pooling window: the whole window when padding counts (PyTorch's
// count_include_pad=True; the window clipped to the padded input), else only its valid part.
static inline int avg_divisor(const tl_window2d *w, int oy, int ox, int include_pad) {
    int y0 = oy * w->stride_h - w->pad_top, x0 = ox * w->stride_w - w->pad_left;
    int y1 = y0 + (w->kernel_h - 1) * w->dilation_h + 1, x1 = x0 + (w->kernel_w - 1) * w->dilation_w + 1;
    if (include_pad) {
        int ph = w->height + w->pad_bottom, pw = w->width + w->pad_right;
        int ylim = y1 < ph ? y1 : ph, xlim = x1 < pw ? x1 : pw;
        int ny = 0, nx = 0;
        for (int y = y0; y < ylim; y += w->dilation_h) ny++;
        for (int x = x0; x < xlim; x += w->dilation_w) nx++;
        return ny * nx;
    }
    int ny = 0, nx = 0;
    for (int i = 0; i < w->kernel_h; i++) { int y = y0 + i * w->dilation_h; if (y >= 0 && y < w->height) ny++; }
    for (int j = 0; j < w->kernel_w; j++) { int x = x0 + j * w->dilation_w; if (x >= 0 && x < w->width) nx++; }
    return ny * nx;
}

void tl_avgpool2d_forward(const float *x, const tl_window2d *w, size_t planes, int include_pad, float *out) {
    const int H = w->height, W = w->width, OH = w->out_h, OW = w->out_w;
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * (size_t)H * W;
        float *op = out + p * (size_t)OH * OW;
        for (int oy = 0; oy < OH; oy++) {
            for (int ox = 0; ox < OW; ox++) {
                float s = 0;
                for (int i = 0; i < w->kernel_h; i++) {
                    const int iy = oy * w->stride_h - w->pad_top + i * w->dilation_h;
                    if (iy < 0 || iy >= H) continue;
                    for (int j = 0; j < w->kernel_w; j++) {
                        const int ix = ox * w->stride_w - w->pad_left + j * w->dilation_w;
                        if (ix >= 0 && ix < W) s += xp[iy * W + ix];
                    }
                }
                const int d = avg_divisor(w, oy, ox, include_pad);
                op[oy * OW + ox] = d > 0 ? s / (float)d : 0;
            }
        }
    }
}

void tl_avgpool2d_backward(const float *g, const tl_window2d *w, size_t planes, int include_pad, float *dx) {
    const int H = w->height, W = w->width, OH = w->out_h, OW = w->out_w;
    for (size_t p = 0; p < planes; p++) {
        float *dp = dx + p * (size_t)H * W;
        memset(dp, 0, sizeof(float) * (size_t)H * W);
        const float *gp = g + p * (size_t)OH * OW;
        for (int oy = 0; oy < OH; oy++) {
            for (int ox = 0; ox < OW; ox++) {
                const int d = avg_divisor(w, oy, ox, include_pad);
                if (d <= 0) continue;
                const float v = gp[oy * OW + ox] / (float)d;
                for (int i = 0; i < w->kernel_h; i++) {
                    const int iy = oy * w->stride_h - w->pad_top + i * w->dilation_h;
                    if (iy < 0 || iy >= H) continue;
                    for (int j = 0; j < w->kernel_w; j++) {
                        const int ix = ox * w->stride_w - w->pad_left + j * w->dilation_w;
                        if (ix >= 0 && ix < W) dp[iy * W + ix] += v;
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- batch normalisation
// x is [N, C, S] (S = H·W, 1 for [N, C] inputs); statistics are per channel over N·S values.

// Sums with 16 independent partial sums, so that the compiler can keep them in vector
// registers (a single float accumulator is a serial chain it may not reorder).
#define LANES 16
static inline float sum_of(const float *p, size_t n) {
    float acc[LANES] = {0};
    size_t k = 0;
    for (; k + LANES <= n; k += LANES)
        for (int t = 0; t < LANES; t++) acc[t] += p[k + t];
    float s = 0;
    for (int t = 0; t < LANES; t++) s += acc[t];
    for (; k < n; k++) s += p[k];
    return s;
}

static inline float squared_deviation_of(const float *p, size_t n, float m) {
    float acc[LANES] = {0};
    size_t k = 0;
    for (; k + LANES <= n; k += LANES)
        for (int t = 0; t < LANES; t++) { const float d = p[k + t] - m; acc[t] += d * d; }
    float s = 0;
    for (int t = 0; t < LANES; t++) s += acc[t];
    for (; k < n; k++) { const float d = p[k] - m; s += d * d; }
    return s;
}

// Σ g and Σ g·(x − m) in one pass.
static inline void sums_of_gradient(const float *g, const float *x, size_t n, float m, float *sg, float *sgx) {
    float a[LANES] = {0}, b[LANES] = {0};
    size_t k = 0;
    for (; k + LANES <= n; k += LANES)
        for (int t = 0; t < LANES; t++) { a[t] += g[k + t]; b[t] += g[k + t] * (x[k + t] - m); }
    float sa = 0, sb = 0;
    for (int t = 0; t < LANES; t++) { sa += a[t]; sb += b[t]; }
    for (; k < n; k++) { sa += g[k]; sb += g[k] * (x[k] - m); }
    *sg = sa;
    *sgx = sb;
}
#undef LANES

void tl_batchnorm_stats(const float *x, size_t n, size_t c, size_t s, size_t c0, size_t c1, float *mean, float *var) {
    const double m = (double)(n * s);
    for (size_t ch = c0; ch < c1; ch++) {
        double sum = 0;
        for (size_t i = 0; i < n; i++) sum += sum_of(x + (i * c + ch) * s, s);
        const double mu = sum / m;
        double sq = 0;
        for (size_t i = 0; i < n; i++) sq += squared_deviation_of(x + (i * c + ch) * s, s, (float)mu);
        mean[ch] = (float)mu;
        var[ch] = (float)(sq / m);
    }
}

void tl_batchnorm_forward(const float *x, size_t n, size_t c, size_t s, size_t c0, size_t c1, const float *mean,
                          const float *var, float eps, const float *weight, const float *bias, float *y) {
    for (size_t ch = c0; ch < c1; ch++) {
        const float inv = 1.0f / sqrtf(var[ch] + eps);
        const float scale = weight[ch] * inv, shift = bias[ch] - mean[ch] * scale;
        for (size_t i = 0; i < n; i++) {
            const float *p = x + (i * c + ch) * s;
            float *q = y + (i * c + ch) * s;
            for (size_t k = 0; k < s; k++) q[k] = p[k] * scale + shift;
        }
    }
}

void tl_batchnorm_backward(const float *g, const float *x, size_t n, size_t c, size_t s, size_t c0, size_t c1,
                           const float *mean, const float *var, float eps, const float *weight, int batch_stats,
                           float *dx, float *dweight, float *dbias) {
    const float m = (float)(n * s);
    for (size_t ch = c0; ch < c1; ch++) {
        const float inv = 1.0f / sqrtf(var[ch] + eps), mu = mean[ch];
        double sg = 0, sgx = 0;
        for (size_t i = 0; i < n; i++) {
            float a, b;
            sums_of_gradient(g + (i * c + ch) * s, x + (i * c + ch) * s, s, mu, &a, &b);
            sg += a;
            sgx += b;
        }
        const float dbeta = (float)sg, dgamma = (float)(sgx * inv);
        if (dweight) dweight[ch] = dgamma;
        if (dbias) dbias[ch] = dbeta;
        if (!dx) continue;
        const float k1 = weight[ch] * inv;
        if (!batch_stats) {
            for (size_t i = 0; i < n; i++) {
                const float *gp = g + (i * c + ch) * s;
                float *dp = dx + (i * c + ch) * s;
                for (size_t k = 0; k < s; k++) dp[k] = gp[k] * k1;
            }
            continue;
        }
        // dx = γ·σ⁻¹ · (g − mean(g) − x̂ · mean(g·x̂)), x̂ = (x − μ)·σ⁻¹
        const float mg = dbeta / m, mgx = dgamma / m;
        for (size_t i = 0; i < n; i++) {
            const float *gp = g + (i * c + ch) * s, *xp = x + (i * c + ch) * s;
            float *dp = dx + (i * c + ch) * s;
            for (size_t k = 0; k < s; k++) dp[k] = k1 * (gp[k] - mg - (xp[k] - mu) * inv * mgx);
        }
    }
}
