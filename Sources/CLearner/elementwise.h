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
#define TL_FLOAT_BITS(x) __float_as_uint(x)
#define TL_BITS_FLOAT(u) __uint_as_float(u)
#else
#include <math.h>
#include <string.h>
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

#ifndef TL_FLOAT_BITS
TL_HD unsigned int tl_float_bits(float x) {
    unsigned int u;
    memcpy(&u, &x, sizeof u);
    return u;
}
TL_HD float tl_bits_float(unsigned int u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
#define TL_FLOAT_BITS(x) tl_float_bits(x)
#define TL_BITS_FLOAT(u) tl_bits_float(u)
#endif

#define TL_SIGN(x) ((float)(((x) > 0.0f) - ((x) < 0.0f)))

// x rounded to the nearest bfloat16 (ties to even), as a float: the value a bf16 tensor holds
// (PyTorch's x.to(torch.bfloat16)). Mixed precision rounds the operands and results of matrix
// products and convolutions with it. A NaN stays a NaN (quiet), infinities stay.
TL_HD float tl_round_bf16(float x) {
    unsigned int u = TL_FLOAT_BITS(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return TL_BITS_FLOAT((u | 0x00400000u) & 0xffff0000u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return TL_BITS_FLOAT(u & 0xffff0000u);
}

// x rounded to the nearest IEEE half (ties to even), as a float: overflow above 65504 (from
// the midpoint 65520 up) gives infinity and tiny values become half subnormals (multiples of
// 2^-24), as a cast to float16 does. This is what makes fp16 training need loss scaling.
// Branch-free, so that the CPU loop vectorises: both roundings are computed and one selected.
TL_HD float tl_round_fp16(float x) {
    unsigned int u = TL_FLOAT_BITS(x);
    unsigned int a = u & 0x7fffffffu, sign = u & 0x80000000u;
    // Normal halves: keep 10 of the 23 mantissa bits, ties to even.
    unsigned int normal = (a + 0x0fffu + ((a >> 13) & 1u)) & 0xffffe000u;
    // Below 2^-14, multiples of 2^-24: |x|·2^24 (exact, < 1024) rounded to an integer, ties to
    // even, by adding and removing 2^23 (as rintf does, without a library call).
    float scaled = TL_BITS_FLOAT(a) * 16777216.0f;
    float whole = (scaled + 8388608.0f) - 8388608.0f;
    unsigned int subnormal = TL_FLOAT_BITS(whole * 5.9604644775390625e-8f);
    unsigned int r = a < 0x38800000u ? subnormal : normal;
    r = a >= 0x477ff000u ? 0x7f800000u : r; // >= 65520: infinity
    r = a >= 0x7f800000u ? a : r;            // infinity and NaN stay
    return TL_BITS_FLOAT(sign | r);
}

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
