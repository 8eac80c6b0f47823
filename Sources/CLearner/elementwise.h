// Per-element formulas shared by the CPU kernels (kernels.c) and the CUDA kernels (kernels.cu):
// the helpers the op table (include/tl_ops.h) names, and one-element dispatch over the table.
// Both compilers see the same expressions, so the CPU reference and the GPU kernel of an op
// cannot drift apart. NVRTC gets this file inlined by Scripts/embed-kernels; it must compile as
// C, C++ and CUDA, and includes nothing but tl_ops.h outside the C branch.
#ifndef TL_ELEMENTWISE_H
#define TL_ELEMENTWISE_H

#include "tl_ops.h"

#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
#define TL_HD __device__ __forceinline__
#define TL_SQRTF(x) sqrtf(x)
#else
#include <math.h>
#define TL_HD static inline
// sqrtf without errno: with -fmath-errno (the C default) a sqrtf call may set errno for a
// negative argument, so clang keeps it scalar and calls the library on that path, and every
// loop holding one runs a scalar square root and division per element. The elementwise
// builtin is IEEE sqrt with no errno side effect (the same value), so such loops vectorise.
#if defined(__has_builtin)
#if __has_builtin(__builtin_elementwise_sqrt)
#define TL_SQRTF(x) __builtin_elementwise_sqrt(x)
#endif
#endif
#ifndef TL_SQRTF
#define TL_SQRTF(x) sqrtf(x)
#endif
#endif

#define TL_SIGN(x) ((float)(((x) > 0.0f) - ((x) < 0.0f)))

// GELU, tanh approximation (PyTorch's approximate="tanh"), and its derivative.
TL_HD float tl_gelu(float x) {
    const float c = 0.7978845608028654f; // sqrt(2/pi)
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

TL_HD float tl_gelu_slope(float x) {
    const float c = 0.7978845608028654f;
    float u = c * (x + 0.044715f * x * x * x), t = tanhf(u);
    float du = c * (1.0f + 3.0f * 0.044715f * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

// One element of each table. An op number outside the table gives x (forward) or g
// (backward); the entry points check the range first.
TL_HD float tl_unary_apply(int op, float x) {
    switch (op) {
#define TL_UNARY_APPLY_CASE(ID, name, reads, domain, forward, backward) \
    case TL_UNARY_##ID: return (forward);
        TL_UNARY_OPS(TL_UNARY_APPLY_CASE)
#undef TL_UNARY_APPLY_CASE
    default: return x;
    }
}

TL_HD float tl_unary_backward_apply(int op, float x, float y, float g) {
    (void)x;
    (void)y;
    switch (op) {
#define TL_UNARY_BACKWARD_CASE(ID, name, reads, domain, forward, backward) \
    case TL_UNARY_##ID: return (backward);
        TL_UNARY_OPS(TL_UNARY_BACKWARD_CASE)
#undef TL_UNARY_BACKWARD_CASE
    default: return g;
    }
}

// TL_READS_X | TL_READS_Y: what the backward of `op` reads besides g.
TL_HD int tl_unary_backward_reads(int op) {
    switch (op) {
#define TL_UNARY_READS_CASE(ID, name, reads, domain, forward, backward) \
    case TL_UNARY_##ID: return (reads);
        TL_UNARY_OPS(TL_UNARY_READS_CASE)
#undef TL_UNARY_READS_CASE
    default: return TL_READS_NONE;
    }
}

TL_HD float tl_binary_apply(int op, float x, float y) {
    switch (op) {
#define TL_BINARY_APPLY_CASE(ID, name, formula) \
    case TL_BINARY_##ID: return (formula);
        TL_BINARY_OPS(TL_BINARY_APPLY_CASE)
#undef TL_BINARY_APPLY_CASE
    default: return x;
    }
}

#endif
