// CPU reference kernels: plain loops over contiguous float buffers that the compiler
// vectorises. Multithreading is done by the Swift caller, which splits `n` into chunks,
// so every kernel here works on one range and never allocates.
#include "clearner.h"
#include "elementwise.h" // the op table's formulas and TL_SQRTF
#include <math.h>
#include <float.h>
#include <string.h>

// The optimizer updates, bound by a square root and a division per element, get AVX-512 and
// AVX2 clones chosen at load time (ifunc) next to the baseline build: 0.55 -> 0.44 ms for
// Adam over 670k parameters on 2 cores. TL_NO_CONTRACT keeps every clone's arithmetic
// identical to the baseline's (no fused multiply-adds), so results do not depend on the CPU.
// Not under ThreadSanitizer: an ifunc resolver runs while the program is being relocated,
// before the sanitizer's runtime is up, and its instrumented entry crashes there.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TL_NO_IFUNC 1
#endif
#endif
#if defined(__x86_64__) && defined(__linux__) && defined(__clang__) && defined(__has_attribute) && !defined(TL_NO_IFUNC)
#if __has_attribute(target_clones)
#define TL_OPTIMIZER_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef TL_OPTIMIZER_CLONES
#define TL_OPTIMIZER_CLONES
#endif
#ifdef __clang__
#define TL_NO_CONTRACT _Pragma("clang fp contract(off)")
#else
#define TL_NO_CONTRACT
#endif

void tl_add(const float *a, const float *b, float *out, size_t n) { for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i]; }
void tl_sub(const float *a, const float *b, float *out, size_t n) { for (size_t i = 0; i < n; i++) out[i] = a[i] - b[i]; }
void tl_mul(const float *a, const float *b, float *out, size_t n) { for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i]; }
void tl_div(const float *a, const float *b, float *out, size_t n) { for (size_t i = 0; i < n; i++) out[i] = a[i] / b[i]; }

// Inner loop along the last axis, specialised for the three stride patterns that occur in
// practice (both contiguous, one side broadcast as a scalar) so that they vectorise.
#define INNER_LOOP(EXPR)                                                                    \
    if (sa == 1 && sb == 1) { for (int64_t i = 0; i < n; i++) { float x = a[i], y = b[i]; out[i] = (EXPR); } } \
    else if (sa == 1 && sb == 0) { float y = b[0]; for (int64_t i = 0; i < n; i++) { float x = a[i]; out[i] = (EXPR); } } \
    else if (sa == 0 && sb == 1) { float x = a[0]; for (int64_t i = 0; i < n; i++) { float y = b[i]; out[i] = (EXPR); } } \
    else { for (int64_t i = 0; i < n; i++) { float x = a[i * sa], y = b[i * sb]; out[i] = (EXPR); } }

static void binary_inner(int op, int64_t n, const float *a, int64_t sa, const float *b, int64_t sb, float *out) {
    switch (op) {
#define TL_BINARY_INNER_CASE(ID, name, formula) \
    case TL_BINARY_##ID: INNER_LOOP(formula) break;
        TL_BINARY_OPS(TL_BINARY_INNER_CASE)
#undef TL_BINARY_INNER_CASE
    default: break;
    }
}

void tl_binary_strided(int op, int rank, const int64_t *shape,
                       const float *a, const int64_t *astride,
                       const float *b, const int64_t *bstride, float *out) {
    if (rank == 0) { out[0] = tl_binary_apply(op, a[0], b[0]); return; }
    int64_t inner = shape[rank - 1];
    int64_t outer = 1;
    for (int d = 0; d < rank - 1; d++) outer *= shape[d];
    int64_t idx[8] = {0};
    for (int64_t o = 0; o < outer; o++) {
        int64_t offa = 0, offb = 0;
        for (int d = 0; d < rank - 1; d++) { offa += idx[d] * astride[d]; offb += idx[d] * bstride[d]; }
        binary_inner(op, inner, a + offa, astride[rank - 1], b + offb, bstride[rank - 1], out + o * inner);
        for (int d = rank - 2; d >= 0; d--) { if (++idx[d] < shape[d]) break; idx[d] = 0; }
    }
}

// One loop per op of the table, the formula inlined so that each loop vectorises.
void tl_unary(int op, const float *in, float *out, size_t n) {
    switch (op) {
#define TL_UNARY_LOOP_CASE(ID, name, reads, domain, forward, backward) \
    case TL_UNARY_##ID: for (size_t i = 0; i < n; i++) { const float x = in[i]; out[i] = (forward); } break;
        TL_UNARY_OPS(TL_UNARY_LOOP_CASE)
#undef TL_UNARY_LOOP_CASE
    default: break;
    }
}

void tl_affine(const float *x, float s, float t, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] * s + t;
}

void tl_pow_scalar(const float *x, float p, float *out, size_t n) {
    if (p == 2.0f) { for (size_t i = 0; i < n; i++) out[i] = x[i] * x[i]; return; }
    for (size_t i = 0; i < n; i++) out[i] = powf(x[i], p);
}

// Every operand the formula reads is loaded unconditionally, so that selects (relu's) vectorise:
// a load under the condition compiles to a branch per element, mispredicted half the time.
void tl_unary_backward(int op, const float *xs, const float *ys, const float *gs, float *out, size_t n) {
    switch (op) {
#define TL_UNARY_BACKWARD_LOOP_CASE(ID, name, reads, domain, forward, backward)       \
    case TL_UNARY_##ID:                                                                \
        for (size_t i = 0; i < n; i++) {                                               \
            const float x = ((reads) & TL_READS_X) ? xs[i] : 0.0f;                     \
            const float y = ((reads) & TL_READS_Y) ? ys[i] : 0.0f;                     \
            const float g = gs[i];                                                     \
            (void)x;                                                                   \
            (void)y;                                                                   \
            (void)g;                                                                   \
            out[i] = (backward);                                                       \
        }                                                                              \
        break;
        TL_UNARY_OPS(TL_UNARY_BACKWARD_LOOP_CASE)
#undef TL_UNARY_BACKWARD_LOOP_CASE
    default: break;
    }
}

const char *tl_unary_name(int op) {
    switch (op) {
#define TL_UNARY_NAME_CASE(ID, name, reads, domain, forward, backward) \
    case TL_UNARY_##ID: return #name;
        TL_UNARY_OPS(TL_UNARY_NAME_CASE)
#undef TL_UNARY_NAME_CASE
    default: return "unknown";
    }
}

int tl_unary_domain(int op) {
    switch (op) {
#define TL_UNARY_DOMAIN_CASE(ID, name, reads, domain, forward, backward) \
    case TL_UNARY_##ID: return (domain);
        TL_UNARY_OPS(TL_UNARY_DOMAIN_CASE)
#undef TL_UNARY_DOMAIN_CASE
    default: return TL_DOMAIN_ANY;
    }
}

int tl_unary_reads(int op) { return tl_unary_backward_reads(op); }

const char *tl_binary_name(int op) {
    switch (op) {
#define TL_BINARY_NAME_CASE(ID, name, formula) \
    case TL_BINARY_##ID: return #name;
        TL_BINARY_OPS(TL_BINARY_NAME_CASE)
#undef TL_BINARY_NAME_CASE
    default: return "unknown";
    }
}

void tl_reduce_mid(int op, const float *x, size_t outer, size_t mid, size_t inner, float *out, int32_t *idx) {
    for (size_t o = 0; o < outer; o++) {
        const float *src = x + o * mid * inner;
        float *dst = out + o * inner;
        if (op == 0) {
            if (inner == 1) {
                // Eight independent double accumulators: one serial chain would wait on each
                // add's latency (the compiler may not reorder it), and rows can be long (H·W).
                double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0}, s = 0.0;
                size_t m = 0;
                for (; m + 8 <= mid; m += 8)
                    for (int l = 0; l < 8; l++) lanes[l] += src[m + l];
                for (; m < mid; m++) s += src[m];
                for (int l = 0; l < 8; l++) s += lanes[l];
                dst[0] = (float)s;
            } else {
                memcpy(dst, src, inner * sizeof(float));
                for (size_t m = 1; m < mid; m++) {
                    const float *row = src + m * inner;
                    for (size_t i = 0; i < inner; i++) dst[i] += row[i];
                }
            }
        } else {
            int32_t *di = idx ? idx + o * inner : NULL;
            memcpy(dst, src, inner * sizeof(float));
            if (di) memset(di, 0, inner * sizeof(int32_t));
            for (size_t m = 1; m < mid; m++) {
                const float *row = src + m * inner;
                for (size_t i = 0; i < inner; i++) {
                    if (row[i] > dst[i]) { dst[i] = row[i]; if (di) di[i] = (int32_t)m; }
                }
            }
        }
    }
}

void tl_softmax_rows(const float *x, float *out, size_t rows, size_t cols, int log) {
    for (size_t r = 0; r < rows; r++) {
        const float *src = x + r * cols;
        float *dst = out + r * cols;
        float m = -INFINITY;
        for (size_t c = 0; c < cols; c++) m = src[c] > m ? src[c] : m;
        float s = 0.0f;
        for (size_t c = 0; c < cols; c++) { float e = expf(src[c] - m); dst[c] = e; s += e; }
        if (log) {
            float ls = logf(s) + m;
            for (size_t c = 0; c < cols; c++) dst[c] = src[c] - ls;
        } else {
            float inv = 1.0f / s;
            for (size_t c = 0; c < cols; c++) dst[c] *= inv;
        }
    }
}

void tl_permute(int rank, const int64_t *outshape, const float *x, const int64_t *xstride, float *out) {
    if (rank == 0) { out[0] = x[0]; return; }
    int64_t inner = outshape[rank - 1], sInner = xstride[rank - 1];
    int64_t outer = 1;
    for (int d = 0; d < rank - 1; d++) outer *= outshape[d];
    int64_t idx[8] = {0};
    for (int64_t o = 0; o < outer; o++) {
        int64_t off = 0;
        for (int d = 0; d < rank - 1; d++) off += idx[d] * xstride[d];
        const float *src = x + off;
        float *dst = out + o * inner;
        if (sInner == 1) memcpy(dst, src, (size_t)inner * sizeof(float));
        else for (int64_t i = 0; i < inner; i++) dst[i] = src[i * sInner];
        for (int d = rank - 2; d >= 0; d--) { if (++idx[d] < outshape[d]) break; idx[d] = 0; }
    }
}

double tl_sum(const float *x, size_t n) {
    // Eight float partial sums vectorise; they are folded into a double per block of 4096
    // so that long sums keep their precision.
    double total = 0.0;
    for (size_t start = 0; start < n; start += 4096) {
        size_t end = start + 4096 < n ? start + 4096 : n;
        float p[8] = {0};
        size_t i = start;
        for (; i + 8 <= end; i += 8) for (int k = 0; k < 8; k++) p[k] += x[i + k];
        float s = 0.0f;
        for (; i < end; i++) s += x[i];
        for (int k = 0; k < 8; k++) s += p[k];
        total += s;
    }
    return total;
}

void tl_axpy(float a, const float *x, float *y, size_t n) { for (size_t i = 0; i < n; i++) y[i] += a * x[i]; }

// One loop per combination of the flags, each with constants in place of the flags: the loop
// with the flags tested per element did not vectorise (7 GB/s against 22 for the same traffic).
static inline __attribute__((always_inline)) void sgd_loop(float *w, const float *g, float *buf, size_t n, float lr,
                                                           float momentum, float dampening, float weight_decay,
                                                           const int with_momentum, const int nesterov, const int first_step) {
    TL_NO_CONTRACT
    for (size_t i = 0; i < n; i++) {
        float d = g[i] + weight_decay * w[i];
        if (with_momentum) {
            const float b = first_step ? d : momentum * buf[i] + (1.0f - dampening) * d;
            buf[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        w[i] -= lr * d;
    }
}

TL_OPTIMIZER_CLONES
void tl_sgd_update(float *w, const float *g, float *buf, size_t n, float lr, float momentum,
                   float dampening, float weight_decay, int nesterov, int first_step) {
    if (momentum == 0.0f) sgd_loop(w, g, buf, n, lr, momentum, dampening, weight_decay, 0, 0, 0);
    else if (first_step && nesterov) sgd_loop(w, g, buf, n, lr, momentum, dampening, weight_decay, 1, 1, 1);
    else if (first_step) sgd_loop(w, g, buf, n, lr, momentum, dampening, weight_decay, 1, 0, 1);
    else if (nesterov) sgd_loop(w, g, buf, n, lr, momentum, dampening, weight_decay, 1, 1, 0);
    else sgd_loop(w, g, buf, n, lr, momentum, dampening, weight_decay, 1, 0, 0);
}

TL_OPTIMIZER_CLONES
void tl_adam_update(float *w, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                    float beta2, float eps, float weight_decay, int adamw, float bc1, float bc2) {
    TL_NO_CONTRACT
    const float step = lr / bc1;
    const float inv_sqrt_bc2 = 1.0f / sqrtf(bc2);
    const float decay = adamw ? 1.0f - lr * weight_decay : 1.0f;
    const float l2 = adamw ? 0.0f : weight_decay;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + l2 * w[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = w[i] * decay - step * mi / (TL_SQRTF(vi) * inv_sqrt_bc2 + eps);
    }
}

TL_OPTIMIZER_CLONES
void tl_rmsprop_update(float *w, const float *g, float *sq, float *mom, float *gavg, size_t n, float lr,
                       float alpha, float eps, float weight_decay, float momentum, int centered) {
    TL_NO_CONTRACT
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + weight_decay * w[i];
        float s = alpha * sq[i] + (1.0f - alpha) * gi * gi;
        sq[i] = s;
        float denom;
        if (centered) {
            float a = alpha * gavg[i] + (1.0f - alpha) * gi;
            gavg[i] = a;
            denom = TL_SQRTF(s - a * a) + eps;
        } else {
            denom = TL_SQRTF(s) + eps;
        }
        if (momentum > 0.0f) {
            float b = momentum * mom[i] + gi / denom;
            mom[i] = b;
            w[i] -= lr * b;
        } else {
            w[i] -= lr * gi / denom;
        }
    }
}
