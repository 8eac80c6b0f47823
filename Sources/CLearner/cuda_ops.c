// The launchers of the elementwise, row, reduction, optimizer, dropout and indexing kernels:
// argument checks, then a launch (cuda_launch.c).
#include "cuda_internal.h"
#include "elementwise.h" // tl_unary_backward_reads

#include <math.h>
#include <string.h>

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

int tl_cuda_fill(float *out, float value, size_t n) {
    if (n == 0) return TL_CUDA_OK;
    unsigned long long nn = n;
    int vec = aligned16(out);
    void *args[] = {&out, &value, &nn, &vec};
    return tl_cuda_launch_items(TLK_tl_k_fill, vec ? nn / 4 + 1 : nn, args);
}

int tl_cuda_binary(int op, const float *a, size_t an, const float *b, size_t bn, float *out, size_t n) {
    if (op < 0 || op >= TL_BINARY_COUNT) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_binary: unknown op %d", op);
    if (n == 0) return TL_CUDA_OK;
    if (an == 0 || bn == 0 || n % an || n % bn)
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_binary: an=%zu and bn=%zu must divide n=%zu", an, bn, n);
    unsigned long long nn = n, a_n = an, b_n = bn;
    if (an == n && bn == n) {
        int vec = aligned16(a) && aligned16(b) && aligned16(out);
        void *args[] = {&op, &a, &b, &out, &nn, &vec};
        return tl_cuda_launch_items(TLK_tl_k_binary, vec ? nn / 4 + 1 : nn, args);
    }
    void *args[] = {&op, &a, &a_n, &b, &b_n, &out, &nn};
    return tl_cuda_launch_items(TLK_tl_k_binary_bcast, nn, args);
}

int tl_cuda_unary(int op, const float *x, float *out, size_t n) {
    if (op < 0 || op >= TL_UNARY_COUNT) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_unary: unknown op %d", op);
    if (n == 0) return TL_CUDA_OK;
    unsigned long long nn = n;
    int vec = aligned16(x) && aligned16(out);
    void *args[] = {&op, &x, &out, &nn, &vec};
    return tl_cuda_launch_items(TLK_tl_k_unary, vec ? nn / 4 + 1 : nn, args);
}

int tl_cuda_unary_backward(int op, const float *x, const float *y, const float *g, float *out, size_t n) {
    if (op < 0 || op >= TL_UNARY_COUNT)
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_unary_backward: unknown op %d", op);
    // The operands the op's backward formula reads (the op table says which).
    int reads = tl_unary_backward_reads(op);
    if (!g || ((reads & TL_READS_X) && !x) || ((reads & TL_READS_Y) && !y))
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_unary_backward: %s needs g%s%s", tl_unary_name(op),
                            (reads & TL_READS_X) ? ", x" : "", (reads & TL_READS_Y) ? ", y" : "");
    if (n == 0) return TL_CUDA_OK;
    unsigned long long nn = n;
    void *args[] = {&op, &x, &y, &g, &out, &nn};
    return tl_cuda_launch_items(TLK_tl_k_unary_backward, nn, args);
}

int tl_cuda_affine(const float *x, float sc, float t, float *out, size_t n) {
    if (n == 0) return TL_CUDA_OK;
    unsigned long long nn = n;
    int vec = aligned16(x) && aligned16(out);
    void *args[] = {&x, &sc, &t, &out, &nn, &vec};
    return tl_cuda_launch_items(TLK_tl_k_affine, vec ? nn / 4 + 1 : nn, args);
}

int tl_cuda_softmax_rows(const float *x, float *out, size_t rows, size_t cols, int log) {
    if (rows == 0 || cols == 0) return TL_CUDA_OK;
    unsigned long long r = rows, c = cols;
    void *args[] = {&x, &out, &r, &c, &log};
    return tl_cuda_launch_rows(TLK_tl_k_softmax_rows, rows, cols, args);
}

// The current device's label-report words as the kernels see them, NULL when there are none.
static unsigned long long *label_fault_words(void) {
    tl_cuda_device *d;
    if (tl_cuda_current(&d) == TL_CUDA_OK && d->label_fault) return (unsigned long long *)(uintptr_t)d->label_fault_dev;
    return NULL;
}

int tl_cuda_take_label_fault(long long *row, float *label, long long *classes) {
    // Never sets CUDA up: a device no kernel has run on has nothing to report.
    tl_cuda_device *d = tl_cuda_device_at(tl_cuda_get_device());
    if (d && d->label_fault && d->label_fault[0] != ~0ull) {
        unsigned long long packed = d->label_fault[0];
        uint32_t bits = (uint32_t)(packed & 0xffffffffu);
        float value;
        memcpy(&value, &bits, sizeof value);
        if (row) *row = (long long)(packed >> 32);
        if (label) *label = value;
        if (classes) *classes = (long long)d->label_fault[1];
        d->label_fault[0] = ~0ull;
        return 1;
    }
    if (row) *row = -1;
    if (label) *label = 0;
    if (classes) *classes = 0;
    return 0;
}

int tl_cuda_softmax_xent_smooth_forward(const float *logits, const float *labels, float *loss, size_t rows,
                                        size_t cols, float eps) {
    if (rows == 0) return TL_CUDA_OK;
    if (cols == 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_softmax_xent_forward: cols is 0");
    unsigned long long r = rows, c = cols, *fault = label_fault_words();
    void *args[] = {&logits, &labels, &loss, &r, &c, &eps, &fault};
    return tl_cuda_launch_rows(TLK_tl_k_xent_forward, rows, cols, args);
}

int tl_cuda_softmax_xent_forward(const float *logits, const float *labels, float *loss, size_t rows, size_t cols) {
    return tl_cuda_softmax_xent_smooth_forward(logits, labels, loss, rows, cols, 0.0f);
}

int tl_cuda_softmax_xent_smooth_backward(const float *logits, const float *labels, const float *gloss, float scale,
                                         float eps, float *dlogits, size_t rows, size_t cols) {
    if (rows == 0 || cols == 0) return TL_CUDA_OK;
    unsigned long long r = rows, c = cols, *fault = label_fault_words();
    void *args[] = {&logits, &labels, &gloss, &scale, &dlogits, &r, &c, &eps, &fault};
    return tl_cuda_launch_rows(TLK_tl_k_xent_backward, rows, cols, args);
}

int tl_cuda_softmax_xent_backward(const float *logits, const float *labels, const float *gloss, float scale,
                                  float *dlogits, size_t rows, size_t cols) {
    return tl_cuda_softmax_xent_smooth_backward(logits, labels, gloss, scale, 0.0f, dlogits, rows, cols);
}

int tl_cuda_sigmoid_xent(const float *x, const float *t, const float *w, size_t per_row, float *out, size_t n,
                         int backward, float scale) {
    if (n == 0) return TL_CUDA_OK;
    if (w && per_row == 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_sigmoid_xent: per_row is 0");
    unsigned long long nn = n, pr = per_row ? per_row : 1;
    void *args[] = {&x, &t, &w, &pr, &out, &nn, &backward, &scale};
    return tl_cuda_launch_items(TLK_tl_k_sigmoid_xent, nn, args);
}

// tl_k_binary_strided's parameter block, passed by value.
typedef struct tl_bcast_args {
    unsigned long long shape[8], astride[8], bstride[8];
} tl_bcast_args;

int tl_cuda_binary_strided(int op, int rank, const int64_t *shape, const float *a, const int64_t *astride,
                           const float *b, const int64_t *bstride, float *out) {
    if (op < 0 || op >= TL_BINARY_COUNT) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_binary_strided: unknown op %d", op);
    if (rank < 0 || rank > 8) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_binary_strided: rank %d is not in 0...8", rank);
    tl_bcast_args p;
    memset(&p, 0, sizeof p);
    unsigned long long n = 1;
    for (int k = 0; k < rank; k++) {
        if (shape[k] < 0 || astride[k] < 0 || bstride[k] < 0)
            return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_binary_strided: negative size or stride");
        p.shape[k] = (unsigned long long)shape[k];
        p.astride[k] = (unsigned long long)astride[k];
        p.bstride[k] = (unsigned long long)bstride[k];
        n *= p.shape[k];
    }
    if (n == 0) return TL_CUDA_OK;
    void *args[] = {&op, &a, &b, &out, &n, &rank, &p};
    return tl_cuda_launch_items(TLK_tl_k_binary_strided, n, args);
}

int tl_cuda_sum_mid(const float *x, size_t outer, size_t mid, size_t inner, float *out) {
    if (outer == 0 || inner == 0) return TL_CUDA_OK;
    unsigned long long o = outer, m = mid, i = inner;
    if (inner == 1) {
        void *args[] = {&x, &out, &o, &m};
        return tl_cuda_launch_rows(TLK_tl_k_sum_inner1, outer, mid, args);
    }
    unsigned long long gx = (inner + 31) / 32;
    if (gx > 0x7fffffffull) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_sum_mid: inner=%zu too large", inner);
    unsigned gy = outer < 65535 ? (unsigned)outer : 65535u;
    void *args[] = {&x, &out, &o, &m, &i};
    return tl_cuda_launch(TLK_tl_k_sum_mid, (unsigned)gx, gy, 32, 8, args);
}

int tl_cuda_sum_rows(const float *x, size_t rows, size_t cols, float *out) { return tl_cuda_sum_mid(x, 1, rows, cols, out); }
int tl_cuda_sum_cols(const float *x, size_t rows, size_t cols, float *out) { return tl_cuda_sum_mid(x, rows, cols, 1, out); }

int tl_cuda_sgd_update(float *w, const float *g, float *buf, size_t n, float lr, float momentum, float dampening,
                       float weight_decay, int nesterov, int first_step) {
    if (n == 0) return TL_CUDA_OK;
    if (momentum != 0.0f && !buf)
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_sgd_update: momentum needs a buffer");
    unsigned long long nn = n;
    int vec = aligned16(w) && aligned16(g) && (momentum == 0.0f || aligned16(buf));
    void *args[] = {&w, &g, &buf, &nn, &lr, &momentum, &dampening, &weight_decay, &nesterov, &first_step, &vec};
    return tl_cuda_launch_items(TLK_tl_k_sgd, vec ? nn / 4 + 1 : nn, args);
}

int tl_cuda_adam_update(float *w, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                        float eps, float weight_decay, int adamw, float bc1, float bc2) {
    if (n == 0) return TL_CUDA_OK;
    // The same derived scalars as tl_adam_update, computed the same way on the host.
    float step = lr / bc1;
    float inv_sqrt_bc2 = 1.0f / sqrtf(bc2);
    float decay = adamw ? 1.0f - lr * weight_decay : 1.0f;
    float l2 = adamw ? 0.0f : weight_decay;
    unsigned long long nn = n;
    int vec = aligned16(w) && aligned16(g) && aligned16(m) && aligned16(v);
    void *args[] = {&w, &g, &m, &v, &nn, &beta1, &beta2, &eps, &step, &inv_sqrt_bc2, &decay, &l2, &vec};
    return tl_cuda_launch_items(TLK_tl_k_adam, vec ? nn / 4 + 1 : nn, args);
}

int tl_cuda_rmsprop_update(float *w, const float *g, float *sq, float *mom, float *gavg, size_t n, float lr,
                           float alpha, float eps, float weight_decay, float momentum, int centered) {
    if (n == 0) return TL_CUDA_OK;
    if ((momentum > 0.0f && !mom) || (centered && !gavg))
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_rmsprop_update: momentum/centered need their buffers");
    unsigned long long nn = n;
    void *args[] = {&w, &g, &sq, &mom, &gavg, &nn, &lr, &alpha, &eps, &weight_decay, &momentum, &centered};
    return tl_cuda_launch_items(TLK_tl_k_rmsprop, nn, args);
}


int tl_cuda_dropout_mask(float *out, size_t n, uint64_t key, uint64_t step, float rate, float scale) {
    if (n == 0) return TL_CUDA_OK;
    unsigned long long nn = n, k = key, st = step;
    void *args[] = {&out, &nn, &k, &st, &rate, &scale};
    return tl_cuda_launch_items(TLK_tl_k_dropout_mask, nn, args);
}

// Copies host indices into a pooled device buffer (stream-ordered, so it may be freed as soon
// as the kernel is queued), after checking each against `rows`.
static int upload_indices(const int32_t *idx, size_t count, size_t rows, int **out, const char *what) {
    for (size_t i = 0; i < count; i++)
        if (idx[i] < 0 || (size_t)idx[i] >= rows)
            return tl_cuda_fail(TL_CUDA_ERR_INVALID, "%s: index %d at %zu is outside 0..<%zu", what, idx[i], i, rows);
    void *p = NULL;
    int s = tl_cuda_malloc(count * sizeof(int32_t), &p);
    if (s) return s;
    s = tl_cuda_memcpy_htod(p, idx, count * sizeof(int32_t));
    if (s) { tl_cuda_free(p); return s; }
    *out = (int *)p;
    return TL_CUDA_OK;
}

int tl_cuda_gather_rows(const float *x, size_t rows, size_t row, const int32_t *idx, size_t count, float *out) {
    if (count == 0 || row == 0) return TL_CUDA_OK;
    int *didx = NULL;
    int s = upload_indices(idx, count, rows, &didx, "tl_cuda_gather_rows");
    if (s) return s;
    unsigned long long c = count, r = row;
    void *args[] = {&x, &didx, &c, &r, &out};
    s = tl_cuda_launch_items(TLK_tl_k_gather_rows, c * r, args);
    tl_cuda_free(didx);
    return s;
}

int tl_cuda_scatter_add_rows(const float *g, size_t row, const int32_t *idx, size_t count, size_t rows, float *out) {
    int s = tl_cuda_fill(out, 0.0f, rows * row);
    if (s || count == 0 || row == 0) return s;
    int *didx = NULL;
    s = upload_indices(idx, count, rows, &didx, "tl_cuda_scatter_add_rows");
    if (s) return s;
    unsigned long long c = count, r = row;
    void *args[] = {&g, &didx, &c, &r, &out};
    s = tl_cuda_launch_items(TLK_tl_k_scatter_add_rows, c * r, args);
    tl_cuda_free(didx);
    return s;
}


int tl_cuda_max_mid(const float *x, size_t outer, size_t mid, size_t inner, float *out, int32_t *idx) {
    unsigned long long o = outer, m = mid, i = inner, n = o * i;
    if (n == 0) return TL_CUDA_OK;
    if (mid == 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_max_mid: empty axis");
    void *didx = NULL;
    int s = TL_CUDA_OK;
    if (idx && (s = tl_cuda_malloc(n * sizeof(int32_t), &didx))) return s;
    void *args[] = {&x, &out, &didx, &o, &m, &i};
    s = tl_cuda_launch_items(TLK_tl_k_max_mid, n, args);
    if (!s && idx) s = tl_cuda_memcpy_dtoh(idx, didx, n * sizeof(int32_t));
    tl_cuda_free(didx);
    return s;
}

// tl_k_permute's parameter block, passed by value.
typedef struct tl_perm_args {
    unsigned long long shape[8], stride[8];
} tl_perm_args;

int tl_cuda_permute(int rank, const int64_t *outshape, const float *x, const int64_t *xstride, float *out) {
    if (rank < 0 || rank > 8) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_permute: rank %d is not in 0...8", rank);
    tl_perm_args p;
    memset(&p, 0, sizeof p);
    unsigned long long n = 1;
    for (int k = 0; k < rank; k++) {
        if (outshape[k] < 0 || xstride[k] < 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_permute: negative size or stride");
        p.shape[k] = (unsigned long long)outshape[k];
        p.stride[k] = (unsigned long long)xstride[k];
        n *= p.shape[k];
    }
    if (n == 0) return TL_CUDA_OK;
    void *args[] = {&x, &out, &n, &rank, &p};
    return tl_cuda_launch_items(TLK_tl_k_permute, n, args);
}

