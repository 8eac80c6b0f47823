// The elementwise op table: every unary and binary op's number, Swift name and per-element
// formula, written once. It reaches
// - C: the enums below (kernels.c expands the formulas into its loops),
// - Swift: the same enums, imported through CLearner as UnaryOp and BinaryOp,
// - CUDA: kernels.cu includes this header (Scripts/embed-kernels inlines it into the source
//   NVRTC compiles) and expands the formulas into its per-element switches.
// The formulas use helpers and macros of Sources/CLearner/elementwise.h (TL_SQRTF, TL_SIGN,
// tl_gelu, ...), so they are only expanded where that header is included.
//
// Adding an op is one line here; docs/OPS.md lists the rest (the Swift method and its test).
// This header is compiled by C, C++ and NVRTC: macros and enums only, no #include.
#ifndef TL_OPS_H
#define TL_OPS_H

// What the backward formula of a unary op reads besides the upstream gradient g.
#define TL_READS_NONE 0
#define TL_READS_X 1
#define TL_READS_Y 2
// The inputs an op is defined for, for tests that sweep every op.
#define TL_DOMAIN_ANY 0
#define TL_DOMAIN_POSITIVE 1

// X(ID, swift_name, backward_reads, domain, forward in x, backward in x, y = f(x) and g).
// The backward is g·f'(x), written in whichever of x and y is cheaper or more exact. The two
// rounding ops (mixed precision's casts) pass g through: the ops that round their operands
// round their gradients themselves (Precision.swift).
#define TL_UNARY_OPS(X)                                                                              \
    X(NEG, negate, TL_READS_NONE, TL_DOMAIN_ANY, -x, -g)                                             \
    X(EXP, exp, TL_READS_Y, TL_DOMAIN_ANY, expf(x), g * y)                                           \
    X(LOG, log, TL_READS_X, TL_DOMAIN_POSITIVE, logf(x), g / x)                                      \
    X(SQRT, sqrt, TL_READS_Y, TL_DOMAIN_POSITIVE, TL_SQRTF(x), g * 0.5f / y)                          \
    X(RELU, relu, TL_READS_Y, TL_DOMAIN_ANY, x > 0.0f ? x : 0.0f, y > 0.0f ? g : 0.0f)               \
    X(SIGMOID, sigmoid, TL_READS_Y, TL_DOMAIN_ANY, 1.0f / (1.0f + expf(-x)), g * y * (1.0f - y))     \
    X(TANH, tanh, TL_READS_Y, TL_DOMAIN_ANY, tanhf(x), g * (1.0f - y * y))                           \
    X(GELU, gelu, TL_READS_X, TL_DOMAIN_ANY, tl_gelu(x), g * tl_gelu_slope(x))                       \
    X(ABS, abs, TL_READS_X, TL_DOMAIN_ANY, fabsf(x), g * TL_SIGN(x))                                 \
    X(SIGN, sign, TL_READS_NONE, TL_DOMAIN_ANY, TL_SIGN(x), 0.0f)                                    \
    X(SQUARE, square, TL_READS_X, TL_DOMAIN_ANY, x * x, 2.0f * x * g)                                \
    X(RECIPROCAL, reciprocal, TL_READS_Y, TL_DOMAIN_POSITIVE, 1.0f / x, -g * y * y)                  \
    X(SOFTPLUS, softplus, TL_READS_X, TL_DOMAIN_ANY, x > 20.0f ? x : log1pf(expf(x)), x > 20.0f ? g : g / (1.0f + expf(-x))) \
    X(ROUND_BF16, roundBF16, TL_READS_NONE, TL_DOMAIN_ANY, tl_round_bf16(x), g)                      \
    X(ROUND_FP16, roundFP16, TL_READS_NONE, TL_DOMAIN_ANY, tl_round_fp16(x), g)

// X(ID, swift_name, result for operands x and y). Comparisons give 1.0 or 0.0.
#define TL_BINARY_OPS(X)                                                                             \
    X(ADD, add, x + y)                                                                               \
    X(SUB, subtract, x - y)                                                                          \
    X(MUL, multiply, x * y)                                                                          \
    X(DIV, divide, x / y)                                                                            \
    X(MAX, maximum, x > y ? x : y)                                                                   \
    X(MIN, minimum, x < y ? x : y)                                                                   \
    X(POW, pow, powf(x, y))                                                                          \
    X(EQ, equal, x == y ? 1.0f : 0.0f)                                                               \
    X(GT, greater, x > y ? 1.0f : 0.0f)                                                              \
    X(LT, less, x < y ? 1.0f : 0.0f)                                                                 \
    X(GE, greaterEqual, x >= y ? 1.0f : 0.0f)                                                        \
    X(LE, lessEqual, x <= y ? 1.0f : 0.0f)

// Swift imports each enum as a closed Swift enum with Int32 raw values, whose cases carry the
// table's Swift names: clang's attributes and a fixed underlying type. NVRTC (C++03 by
// default) and other compilers get plain enums of the same values.
#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(swift_name) && __has_attribute(enum_extensibility)
#define TL_SWIFT_NAME(name) __attribute__((swift_name(#name)))
#define TL_OPS_ENUM(tag) enum __attribute__((enum_extensibility(closed))) tag : int
#endif
#endif
#ifndef TL_SWIFT_NAME
#define TL_SWIFT_NAME(name)
#define TL_OPS_ENUM(tag) enum tag
#endif

#define TL_UNARY_ENUM_CASE(ID, name, reads, domain, forward, backward) TL_UNARY_##ID TL_SWIFT_NAME(name),
#define TL_BINARY_ENUM_CASE(ID, name, formula) TL_BINARY_##ID TL_SWIFT_NAME(name),
#define TL_OPS_COUNT_ONE(...) +1

typedef TL_OPS_ENUM(tl_unary_op) { TL_UNARY_OPS(TL_UNARY_ENUM_CASE) } tl_unary_op;
typedef TL_OPS_ENUM(tl_binary_op) { TL_BINARY_OPS(TL_BINARY_ENUM_CASE) } tl_binary_op;
// Valid op numbers are 0 ..< count.
enum { TL_UNARY_COUNT = 0 TL_UNARY_OPS(TL_OPS_COUNT_ONE), TL_BINARY_COUNT = 0 TL_BINARY_OPS(TL_OPS_COUNT_ONE) };

#endif
