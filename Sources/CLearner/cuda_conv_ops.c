// The launchers of the convolution, pooling and batch-norm kernels (NCHW, tl_window2d geometry,
// as conv.c): the window checks, then a launch.
#include "cuda_internal.h"

// Checks a window the way Window2D builds it: positive sizes, an output that fits.
static int check_window(const tl_window2d *w, const char *what) {
    if (!w || w->channels <= 0 || w->height <= 0 || w->width <= 0 || w->kernel_h <= 0 || w->kernel_w <= 0 ||
        w->stride_h <= 0 || w->stride_w <= 0 || w->dilation_h <= 0 || w->dilation_w <= 0 || w->out_h <= 0 ||
        w->out_w <= 0 || w->pad_top < 0 || w->pad_bottom < 0 || w->pad_left < 0 || w->pad_right < 0)
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "%s: invalid window geometry", what);
    return TL_CUDA_OK;
}

int tl_cuda_im2col(const float *x, const tl_window2d *w, size_t images, float *col) {
    int s = check_window(w, "tl_cuda_im2col");
    if (s || images == 0) return s;
    unsigned long long im = images;
    unsigned long long n = im * (unsigned long long)w->channels * w->kernel_h * w->kernel_w * w->out_h * w->out_w;
    void *args[] = {&x, (void *)w, &im, &col};
    return tl_cuda_launch_items(TLK_tl_k_im2col, n, args);
}

int tl_cuda_col2im(const float *col, const tl_window2d *w, size_t images, float *x) {
    int s = check_window(w, "tl_cuda_col2im");
    if (s || images == 0) return s;
    unsigned long long im = images;
    unsigned long long n = im * (unsigned long long)w->channels * w->height * w->width;
    void *args[] = {&col, (void *)w, &im, &x};
    return tl_cuda_launch_items(TLK_tl_k_col2im, n, args);
}

int tl_cuda_channel_bias_add(float *out, const float *bias, size_t batch, size_t channels, size_t plane) {
    unsigned long long n = (unsigned long long)batch * channels * plane, c = channels, p = plane;
    if (n == 0) return TL_CUDA_OK;
    void *args[] = {&out, &bias, &n, &c, &p};
    return tl_cuda_launch_items(TLK_tl_k_channel_bias, n, args);
}

// A pooling kernel over `planes` planes, one item per output pixel, or per input pixel for a
// backward pass that gathers (per_input); the window is checked first.
static int launch_pooling(int kernel, const char *what, const tl_window2d *w, unsigned long long planes, int per_input,
                          void **args) {
    int s = check_window(w, what);
    if (s || planes == 0) return s;
    unsigned long long plane = per_input ? (unsigned long long)w->height * w->width : (unsigned long long)w->out_h * w->out_w;
    return tl_cuda_launch_items(kernel, planes * plane, args);
}

int tl_cuda_maxpool2d_forward(const float *x, const tl_window2d *w, size_t planes, float *out, float *argmax) {
    unsigned long long p = planes;
    void *args[] = {&x, (void *)w, &p, &out, &argmax};
    return launch_pooling(TLK_tl_k_maxpool_fwd, __func__, w, p, 0, args);
}

int tl_cuda_maxpool2d_backward(const float *g, const float *argmax, const tl_window2d *w, size_t planes, float *dx) {
    unsigned long long p = planes;
    void *args[] = {&g, &argmax, (void *)w, &p, &dx};
    return launch_pooling(TLK_tl_k_maxpool_bwd, __func__, w, p, 1, args);
}

int tl_cuda_avgpool2d_forward(const float *x, const tl_window2d *w, size_t planes, int include_pad, float *out) {
    unsigned long long p = planes;
    void *args[] = {&x, (void *)w, &p, &include_pad, &out};
    return launch_pooling(TLK_tl_k_avgpool_fwd, __func__, w, p, 0, args);
}

int tl_cuda_avgpool2d_backward(const float *g, const tl_window2d *w, size_t planes, int include_pad, float *dx) {
    unsigned long long p = planes;
    void *args[] = {&g, (void *)w, &p, &include_pad, &dx};
    return launch_pooling(TLK_tl_k_avgpool_bwd, __func__, w, p, 1, args);
}

// ------------------------------------------------------------------ batch norm
// The batch-norm kernels run on a (channel, chunk) grid (conv_kernels.cuh): chunks per channel
// so that there are about four blocks per multiprocessor in all, each with at least 2048 values.
#define TL_BN_THREADS 256u

static unsigned long long multiprocessors(void) {
    tl_cuda_device *d;
    if (tl_cuda_current(&d) == TL_CUDA_OK && d->sm_count > 0) return (unsigned long long)d->sm_count;
    return 1;
}

// Checks the sizes and picks the chunks per channel.
static int bn_grid(const char *what, size_t n, size_t c, size_t s, unsigned long long *chunks) {
    if (n == 0 || s == 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "%s: no values per channel", what);
    unsigned long long m = (unsigned long long)n * s;
    if (m >= (1ull << 32) || c >= (1ull << 31))
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "%s: %zu channels of %llu values are more than the kernels index", what,
                            c, m);
    unsigned long long want = (4 * multiprocessors() + c - 1) / c, most = (m + 2047) / 2048;
    if (want > most) want = most;
    if (want < 1) want = 1;
    while (want > 1 && want * c >= (1ull << 31)) want /= 2;
    *chunks = want;
    return TL_CUDA_OK;
}

int tl_cuda_batchnorm_stats(const float *x, size_t n, size_t c, size_t s, float *mean, float *var) {
    if (c == 0) return TL_CUDA_OK;
    unsigned long long chunks, nn = n, cc = c, ss = s, m = (unsigned long long)n * s;
    int st = bn_grid("tl_cuda_batchnorm_stats", n, c, s, &chunks);
    if (st) return st;
    void *part = NULL;
    if ((st = tl_cuda_malloc(c * chunks * 2 * sizeof(double), &part))) return st;
    void *a1[] = {&x, &nn, &cc, &ss, &chunks, &part};
    st = tl_cuda_launch(TLK_tl_k_bn_stats, (unsigned)(c * chunks), 1, TL_BN_THREADS, 1, a1);
    void *a2[] = {&part, &cc, &chunks, &m, &mean, &var};
    if (!st) st = tl_cuda_launch_items(TLK_tl_k_bn_stats_finish, c, a2);
    tl_cuda_free(part); // reuse is ordered after the queued kernels
    return st;
}

int tl_cuda_batchnorm_forward(const float *x, size_t n, size_t c, size_t s, const float *mean, const float *var,
                              float eps, const float *weight, const float *bias, float *y) {
    if (c == 0 || n == 0 || s == 0) return TL_CUDA_OK;
    unsigned long long chunks, nn = n, cc = c, ss = s;
    int st = bn_grid("tl_cuda_batchnorm_forward", n, c, s, &chunks);
    if (st) return st;
    void *args[] = {&x, &nn, &cc, &ss, &chunks, &mean, &var, &eps, &weight, &bias, &y};
    return tl_cuda_launch(TLK_tl_k_bn_forward, (unsigned)(c * chunks), 1, TL_BN_THREADS, 1, args);
}

int tl_cuda_batchnorm_backward(const float *g, const float *x, size_t n, size_t c, size_t s, const float *mean,
                               const float *var, float eps, const float *weight, int batch_stats, float *dx,
                               float *dweight, float *dbias) {
    if (c == 0) return TL_CUDA_OK;
    unsigned long long chunks, nn = n, cc = c, ss = s;
    int st = bn_grid("tl_cuda_batchnorm_backward", n, c, s, &chunks);
    if (st) return st;
    // The chunks' sums (doubles), then the channels' totals (floats), in one scratch block.
    void *part = NULL;
    if ((st = tl_cuda_malloc(c * chunks * 2 * sizeof(double) + c * 2 * sizeof(float), &part))) return st;
    float *totals = (float *)((char *)part + c * chunks * 2 * sizeof(double));
    void *a1[] = {&g, &x, &nn, &cc, &ss, &chunks, &mean, &part};
    st = tl_cuda_launch(TLK_tl_k_bn_backward, (unsigned)(c * chunks), 1, TL_BN_THREADS, 1, a1);
    void *a2[] = {&part, &cc, &chunks, &var, &eps, &dweight, &dbias, &totals};
    if (!st) st = tl_cuda_launch_items(TLK_tl_k_bn_backward_finish, c, a2);
    void *a3[] = {&g, &x, &nn, &cc, &ss, &chunks, &mean, &var, &eps, &weight, &batch_stats, &totals, &dx};
    if (!st && dx) st = tl_cuda_launch(TLK_tl_k_bn_backward_dx, (unsigned)(c * chunks), 1, TL_BN_THREADS, 1, a3);
    tl_cuda_free(part);
    return st;
}
