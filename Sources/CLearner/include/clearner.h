// CLearner: the thin C shim under the Learner module.
// Every function is prefixed `tl_`. Handles are opaque and paired with a free function;
// a non-zero `int` status means failure and becomes a Swift `throw` on the other side.
#ifndef CLEARNER_H
#define CLEARNER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------- BLAS (OpenBLAS)
/// Row-major C = alpha * op(A) * op(B) + beta * C. op(X) = X^T when trans != 0.
void tl_sgemm(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void tl_blas_set_threads(int n);
int tl_blas_get_threads(void);
/// The kernel family OpenBLAS runs ("SkylakeX", "Haswell", ...). A DYNAMIC_ARCH OpenBLAS that
/// does not know this CPU falls back to "Prescott"; the shim then selects the newest family the
/// CPU supports, unless OPENBLAS_CORETYPE is set (see blas.c).
const char *tl_blas_core_name(void);

// ---------------------------------------------------------------- CRC32C (Castagnoli)
/// CRC32C of `len` bytes, continuing from `crc` (pass 0 to start). SSE4.2 when present, table otherwise.
uint32_t tl_crc32c_extend(uint32_t crc, const void *data, size_t len);
/// Which implementation `tl_crc32c_extend` uses: 1 = SSE4.2 instruction, 0 = table.
int tl_crc32c_uses_hardware(void);
/// The table implementation alone (for tests comparing both paths).
uint32_t tl_crc32c_extend_table(uint32_t crc, const void *data, size_t len);
/// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t tl_masked_crc32c(const void *data, size_t len);

// ---------------------------------------------------------------- tf.train.Example (protobuf-c)
typedef struct tl_example tl_example;

enum tl_feature_kind { TL_FEATURE_NONE = 0, TL_FEATURE_BYTES = 1, TL_FEATURE_FLOAT = 2, TL_FEATURE_INT64 = 3 };

/// Parses a serialized Example. Returns 0 and sets *out on success (free with tl_example_free).
int tl_example_parse(const uint8_t *data, size_t len, tl_example **out);
void tl_example_free(tl_example *ex);
size_t tl_example_feature_count(const tl_example *ex);
/// Key of feature i (NUL-terminated, owned by ex).
const char *tl_example_feature_key(const tl_example *ex, size_t i);
/// Kind and element count of the feature named `key`; TL_FEATURE_NONE when absent.
int tl_example_find(const tl_example *ex, const char *key, size_t *count);
/// Copies up to n values; returns the number copied, or -1 when the key is absent or of another kind.
long tl_example_copy_floats(const tl_example *ex, const char *key, float *out, size_t n);
long tl_example_copy_int64s(const tl_example *ex, const char *key, int64_t *out, size_t n);
/// Pointer/length of bytes value `index` (owned by ex); returns 0 on success.
int tl_example_bytes(const tl_example *ex, const char *key, size_t index, const uint8_t **data, size_t *len);

// ---------------------------------------------------------------- CPU kernels (vector loops)
// All pointers are contiguous float arrays of length n unless stated.
void tl_add(const float *a, const float *b, float *out, size_t n);
void tl_sub(const float *a, const float *b, float *out, size_t n);
void tl_mul(const float *a, const float *b, float *out, size_t n);
void tl_div(const float *a, const float *b, float *out, size_t n);
/// Broadcast binary op over rank <= 8 with element strides (0 on broadcast axes). op: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min, 6 pow, 7 eq, 8 gt, 9 lt, 10 ge, 11 le.
void tl_binary_strided(int op, int rank, const int64_t *shape,
                       const float *a, const int64_t *astride,
                       const float *b, const int64_t *bstride, float *out);
/// Unary op. op: 0 neg, 1 exp, 2 log, 3 sqrt, 4 relu, 5 sigmoid, 6 tanh, 7 gelu(tanh approx), 8 abs, 9 sign, 10 square, 11 reciprocal.
void tl_unary(int op, const float *x, float *out, size_t n);
/// out = x * s + t
void tl_affine(const float *x, float s, float t, float *out, size_t n);
void tl_pow_scalar(const float *x, float p, float *out, size_t n);
/// Backward of unary activations given x, y = f(x) and upstream g. op as tl_unary (4..7).
void tl_unary_backward(int op, const float *x, const float *y, const float *g, float *out, size_t n);
/// Reductions over the middle axis of a [outer, mid, inner] view. op: 0 sum, 1 max (argmax to idx when not NULL).
void tl_reduce_mid(int op, const float *x, size_t outer, size_t mid, size_t inner, float *out, int32_t *idx);
/// Softmax / log-softmax along rows of an [rows, cols] matrix.
void tl_softmax_rows(const float *x, float *out, size_t rows, size_t cols, int log);
/// Permute a rank <= 8 tensor: out[i...] = x[perm...]; xstride are x's strides in perm order.
void tl_permute(int rank, const int64_t *outshape, const float *x, const int64_t *xstride, float *out);
/// Sum of all elements in double precision.
double tl_sum(const float *x, size_t n);
/// y += a * x
void tl_axpy(float a, const float *x, float *y, size_t n);

// ---------------------------------------------------------------- Optimizer updates (in place, fused)
/// SGD with momentum/Nesterov and L2 weight decay (PyTorch semantics).
void tl_sgd_update(float *w, const float *g, float *buf, size_t n, float lr, float momentum,
                   float dampening, float weight_decay, int nesterov, int first_step);
/// Adam / AdamW (decoupled when adamw != 0). bc1 = 1 - beta1^t, bc2 = 1 - beta2^t.
void tl_adam_update(float *w, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                    float beta2, float eps, float weight_decay, int adamw, float bc1, float bc2);
/// RMSProp (PyTorch semantics, optional momentum and centered).
void tl_rmsprop_update(float *w, const float *g, float *sq, float *mom, float *gavg, size_t n, float lr,
                       float alpha, float eps, float weight_decay, float momentum, int centered);

#ifdef __cplusplus
}
#endif
#endif
