// CLearner: the thin C shim under the Learner module.
// Every function is prefixed `tl_`. Handles are opaque and paired with a free function;
// a non-zero `int` status means failure and becomes a Swift `throw` on the other side.
#ifndef CLEARNER_H
#define CLEARNER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tl_ops.h" // tl_unary_op, tl_binary_op: the op numbers below

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------- standard streams
/// C's standard output stream. Swift 6 refuses a direct reference to the C global `stdout` (a
/// mutable global variable); nothing in this package assigns it, and stdio locks each FILE
/// itself, so reading it through a function is safe from any thread.
static inline FILE *tl_stdout(void) { return stdout; }

// ---------------------------------------------------------------- atomic settings
/// Relaxed atomic load and store of a `long`: process-wide settings (thread count, scratch
/// budgets) that kernels read on any thread while the program may set them.
static inline long tl_atomic_load_long(const long *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void tl_atomic_store_long(long *p, long v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline long tl_atomic_fetch_add_long(long *p, long v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

// ---------------------------------------------------------------- BLAS (OpenBLAS)
/// Row-major C = alpha * op(A) * op(B) + beta * C. op(X) = X^T when trans != 0.
void tl_sgemm(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/// OpenBLAS itself runs single-threaded (set when the shim loads): the engine splits sgemms
/// over its worker pool (Sources/CLearner/pool.c says why).
/// The kernel family OpenBLAS runs ("SkylakeX", "Haswell", ...). A DYNAMIC_ARCH OpenBLAS that
/// does not know this CPU falls back to "Prescott"; the shim then selects the newest family the
/// CPU supports, unless OPENBLAS_CORETYPE is set (see blas.c).
const char *tl_blas_core_name(void);

// ---------------------------------------------------------------- worker pool
/// A task of the engine's worker pool: fn(ctx, task).
typedef void (*tl_pool_task)(void *ctx, int task);
/// Runs fn(ctx, t) for t < tasks on up to `workers` threads (the caller one of them) and returns
/// when all are done: 1 when the pool ran them, 0 when the caller ran them all itself (the pool
/// busy with another thread's job or a nested call, or one worker asked for).
int tl_pool_run(int workers, int tasks, tl_pool_task fn, void *ctx);
/// How long an idle worker spins for the next job before it sleeps (default 200 µs).
void tl_pool_set_spin_ns(long ns);

// ---------------------------------------------------------------- stop signals
/// Records the first SIGINT, SIGTERM or SIGUSR1 instead of dying (a second one ends the process
/// at once with status 128 + signal). 0 on success.
int tl_stop_signals_install(void);
/// The signal recorded since the last clear, 0 when none.
int tl_stop_signal_pending(void);
/// Forgets the recorded signal.
void tl_stop_signal_clear(void);

// ---------------------------------------------------------------- CRC32C (Castagnoli)
/// CRC32C of `len` bytes, continuing from `crc` (pass 0 to start). SSE4.2 when present, table otherwise.
uint32_t tl_crc32c_extend(uint32_t crc, const void *data, size_t len);
/// Which implementation `tl_crc32c_extend` uses: 1 = SSE4.2 instruction, 0 = table.
int tl_crc32c_uses_hardware(void);
/// The table implementation alone (for tests comparing both paths).
uint32_t tl_crc32c_extend_table(uint32_t crc, const void *data, size_t len);
/// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t tl_masked_crc32c(const void *data, size_t len);

// ---------------------------------------------------------------- tf.train.Example (wire scan)
typedef struct tl_example tl_example;

enum tl_feature_kind { TL_FEATURE_NONE = 0, TL_FEATURE_BYTES = 1, TL_FEATURE_FLOAT = 2, TL_FEATURE_INT64 = 3 };

/// One bytes value, pointing into the parsed record.
typedef struct {
    const uint8_t *data;
    size_t len;
} tl_bytes_view;

/// Parses a serialized Example. Returns 0 and sets *out on success (free with tl_example_free),
/// 2 when malformed. `ex` borrows `data`: keys and bytes values point into it, so it must outlive `ex`.
int tl_example_parse(const uint8_t *data, size_t len, tl_example **out);
void tl_example_free(tl_example *ex);
/// Map entries in wire order (a repeated key appears once per entry).
size_t tl_example_feature_count(const tl_example *ex);
/// Key of entry i (not NUL-terminated; *len bytes, inside the parsed record).
const uint8_t *tl_example_feature_key(const tl_example *ex, size_t i, size_t *len);
/// Kind and element count of entry i.
int tl_example_entry(const tl_example *ex, size_t i, size_t *count);
/// Copies up to n values of entry i; returns the number copied, or -1 when it is of another kind.
long tl_example_entry_floats(const tl_example *ex, size_t i, float *out, size_t n);
long tl_example_entry_int64s(const tl_example *ex, size_t i, int64_t *out, size_t n);
/// Views of bytes values first ..< first + n of entry i; returns how many were filled, -1 for another kind.
long tl_example_entry_bytes(const tl_example *ex, size_t i, size_t first, tl_bytes_view *out, size_t n);
/// Index of the entry named `key` (the last entry of that name), -1 when absent.
long tl_example_lookup(const tl_example *ex, const char *key);
/// Kind and element count of the feature named `key` (the last entry of that name); TL_FEATURE_NONE when absent.
int tl_example_find(const tl_example *ex, const char *key, size_t *count);
/// Copies up to n values; returns the number copied, or -1 when the key is absent or of another kind.
long tl_example_copy_floats(const tl_example *ex, const char *key, float *out, size_t n);
long tl_example_copy_int64s(const tl_example *ex, const char *key, int64_t *out, size_t n);
/// Pointer/length of bytes value `index` (inside the parsed record); returns 0 on success.
int tl_example_bytes(const tl_example *ex, const char *key, size_t index, const uint8_t **data, size_t *len);
/// Parses `data` with both this scan and the protobuf-c generated parser (for tests): 1 both
/// accept with the same entries and values, 0 both reject, negative when they disagree.
int tl_example_reference_check(const uint8_t *data, size_t len);

// ---------------------------------------------------------------- CPU kernels (vector loops)
// All pointers are contiguous float arrays of length n unless stated.
void tl_add(const float *a, const float *b, float *out, size_t n);
void tl_sub(const float *a, const float *b, float *out, size_t n);
void tl_mul(const float *a, const float *b, float *out, size_t n);
void tl_div(const float *a, const float *b, float *out, size_t n);
/// Broadcast binary op over rank <= 8 with element strides (0 on broadcast axes); op a tl_binary_op.
void tl_binary_strided(int op, int rank, const int64_t *shape,
                       const float *a, const int64_t *astride,
                       const float *b, const int64_t *bstride, float *out);
/// Unary op; op a tl_unary_op (tl_ops.h). An op outside the table leaves out unwritten.
void tl_unary(int op, const float *x, float *out, size_t n);
/// The op table's names (the Swift case names), "unknown" outside the table.
const char *tl_unary_name(int op);
const char *tl_binary_name(int op);
/// TL_DOMAIN_ANY or TL_DOMAIN_POSITIVE: the inputs a unary op is defined for.
int tl_unary_domain(int op);
/// TL_READS_X | TL_READS_Y: what a unary op's backward reads besides the gradient (what the
/// tape must keep for it).
int tl_unary_reads(int op);
/// out = x * s + t
void tl_affine(const float *x, float s, float t, float *out, size_t n);
void tl_pow_scalar(const float *x, float p, float *out, size_t n);
/// Backward of a unary op, g·f'(x), given x, y = f(x) and upstream g; op as tl_unary. Only the
/// operands the table says the op reads (TL_READS_X, TL_READS_Y) are read; g always is.
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


// ---------------------------------------------------------------- Compressed streams (zlib; compress.c)
enum tl_compression { TL_COMPRESSION_NONE = 0, TL_COMPRESSION_GZIP = 1, TL_COMPRESSION_ZLIB = 2 };

/// Inflates a GZIP (concatenated members allowed) or ZLIB stream read from `fd` through a fixed buffer.
typedef struct tl_zreader tl_zreader;
/// mode: TL_COMPRESSION_GZIP or _ZLIB. Returns 0 and sets *out (free with tl_zreader_free; fd stays open).
int tl_zreader_open(int fd, int mode, tl_zreader **out);
void tl_zreader_free(tl_zreader *r);
/// Fills up to `cap` uncompressed bytes; returns the count (0 at the stream's end) or -1 with a
/// message in err (corrupt data, truncation, read error).
long tl_zreader_read(tl_zreader *r, void *buf, size_t cap, char *err, size_t errlen);

/// Deflates into `fd` as GZIP or ZLIB. level: -1 (zlib default) or 0..9.
typedef struct tl_zwriter tl_zwriter;
int tl_zwriter_open(int fd, int mode, int level, tl_zwriter **out);
void tl_zwriter_free(tl_zwriter *w);
/// Both return 0 on success, -1 with a message in err.
int tl_zwriter_write(tl_zwriter *w, const void *data, size_t len, char *err, size_t errlen);
/// Ends the stream (trailer written); the writer accepts no more data.
int tl_zwriter_finish(tl_zwriter *w, char *err, size_t errlen);
/// zlib's one-shot `uncompress` (ZLIB wrapper), for tests: bytes written, or -1.
long tl_zlib_uncompress(const void *src, size_t len, void *dst, size_t cap);

// ---------------------------------------------------------------- Images (libjpeg-turbo, libpng; image.c)
// Pixel layout everywhere here: interleaved rows, [height, width, channels] (HWC).
enum tl_image_format { TL_IMAGE_UNKNOWN = 0, TL_IMAGE_JPEG = 1, TL_IMAGE_PNG = 2 };
/// The format named by the blob's magic bytes.
int tl_image_format(const uint8_t *data, size_t len);
/// Decodes a JPEG or PNG to 8-bit pixels. channels: 0 keeps the file's (1 for grey, 3 for colour),
/// 1 or 3 converts (RGB->grey with ITU-R 601 weights, as Pillow's "L"). Alpha is dropped, palettes
/// expanded, 16-bit scaled to 8; data that ends early is an error. Returns 0 and sets *pixels (free
/// with tl_image_free) and sizes; non-zero with a message in err otherwise.
int tl_image_decode(const uint8_t *data, size_t len, int channels, uint8_t **pixels, int *height, int *width,
                    int *out_channels, char *err, size_t errlen);
void tl_image_free(uint8_t *pixels);
/// Decodes a PNG keeping its precision: HWC floats in [0, 1] (16-bit values / 65535, 8-bit and
/// lower widened first, so an 8-bit value v becomes v / 255), grey or RGB as stored (palettes
/// expanded, alpha dropped); *bit_depth is the file's. Free *pixels with free(). 0 on success;
/// non-zero with a message in err otherwise (not a PNG, damaged data, over the pixel limit).
int tl_png_decode_float(const uint8_t *data, size_t len, float **pixels, int *height, int *width, int *channels,
                        int *bit_depth, char *err, size_t errlen);
/// Encodes 8-bit HWC pixels (channels 1 or 3) as a baseline JPEG of `quality` (1-100) or an
/// 8-bit PNG into a fresh buffer (free with tl_image_free). 0 on success; non-zero with a
/// message in err otherwise.
int tl_image_encode_jpeg(const uint8_t *pixels, int height, int width, int channels, int quality, uint8_t **out,
                         size_t *out_len, char *err, size_t errlen);
int tl_image_encode_png(const uint8_t *pixels, int height, int width, int channels, uint8_t **out, size_t *out_len,
                        char *err, size_t errlen);
/// The size and channel count tl_image_decode with channels 0 would give, from the header alone
/// (no pixel decoded, so a scan over a data set's images costs little). 0 on success; non-zero
/// with a message in err for a blob that is not a JPEG or PNG, a damaged header or one over the
/// pixel limit. A header that reads may still hide damaged pixel data.
int tl_image_info(const uint8_t *data, size_t len, int *height, int *width, int *channels, char *err, size_t errlen);
/// out[i] = in[i] / divisor (a division, so x / 255 is correctly rounded, as numpy's).
void tl_u8_to_f32(const uint8_t *in, float *out, size_t n, float divisor);
/// Projective warp with bilinear sampling: output pixel centre (x+.5, y+.5) maps to the source
/// point m * (x+.5, y+.5, 1) (row-major 3x3, divided by its third coordinate). border 0: points
/// outside the source take `fill`; border 1: edges are replicated (resizing).
void tl_warp_bilinear_f32(const float *src, int h, int w, int c, float *dst, int oh, int ow, const double *m,
                          int border, float fill);
/// Mirrors an HWC float image in place: horizontal != 0 left-right, else top-bottom.
void tl_image_flip_f32(float *x, int h, int w, int c, int horizontal);
/// Colour adjustments of an HWC image in [0,1], clamped to [0,1] after each step (torchvision's
/// semantics): x*brightness; (x-mean(grey))*contrast+mean(grey); (x-grey)*saturation+grey per pixel.
/// A factor of 1 skips its step; contrast/saturation on 1-channel images use the image itself as grey.
void tl_image_color_f32(float *x, size_t pixels, int c, float brightness, float contrast, float saturation);
/// x[p, ch] = (x[p, ch] - mean[ch]) * inv_std[ch].
void tl_image_normalize_f32(float *x, size_t pixels, int c, const float *mean, const float *inv_std);
/// HWC -> CHW copy (dst holds h*w*c floats).
void tl_hwc_to_chw_f32(const float *src, int h, int w, int c, float *dst);
/// The most pixels (width x height) an image may have; larger ones are refused (non-zero, with a
/// message) before any pixel is allocated. Default 178,956,970, Pillow's refusal threshold.
void tl_image_set_max_pixels(size_t n);
size_t tl_image_max_pixels(void);
/// tl_image_decode into the calling thread's scratch buffer (valid until the thread's next call;
/// never freed by the caller), so decoding many images allocates once. dct_fast != 0 decodes
/// JPEGs with the fast integer inverse DCT (JDCT_IFAST, TensorFlow decode_jpeg's default)
/// instead of the accurate one (JDCT_ISLOW, libjpeg's and Pillow's default).
int tl_image_decode_scratch(const uint8_t *data, size_t len, int channels, int dct_fast, const uint8_t **pixels,
                            int *height, int *width, int *out_channels, char *err, size_t errlen);
/// tl_image_decode_scratch of the part of the image a crop keeps: for a JPEG only rows
/// top..top+height are decoded (those above skipped, those below never read) and only the iMCU
/// columns covering left..left+width (libjpeg-turbo's jpeg_skip_scanlines and
/// jpeg_crop_scanline), so a random resized crop decodes about the area it keeps. The pixels
/// returned start at (*origin_top, *origin_left) of the whole image and are *out_height x
/// *out_width (the region asked for with an iMCU of margin on each side, so chroma upsampling
/// sees the neighbours it would in a whole decode and the region's pixels equal that decode's).
/// PNGs, and a region outside the image, decode whole
/// (origin 0, 0).
int tl_image_decode_region_scratch(const uint8_t *data, size_t len, int channels, int dct_fast, int top, int left,
                                   int height, int width, const uint8_t **pixels, int *origin_top, int *origin_left,
                                   int *out_height, int *out_width, int *out_channels, char *err, size_t errlen);
/// One axis of an axis-aligned bilinear resample: output index i (counted from the far end when
/// `reversed`, a flip) samples the source at scale*(i+0.5)+offset, pixel centres at integer+0.5,
/// with taps clamped to source pixels [lower, upper) (the edges of the window being resized).
struct tl_resample_axis {
    double scale, offset;
    int lower, upper, reversed;
};
/// Resize + crop + flip + [0,1] scaling (+ normalisation when mean != NULL: (v-mean)*inv_std) of
/// 8-bit HWC pixels in one pass, written as oh x ow floats HWC, or CHW when chw != 0 (into a
/// batch tensor). Same values as tl_warp_bilinear_f32 on x/255 up to float rounding. Returns 0;
/// 1 for a window outside the source, 2 when out of memory.
int tl_resample_u8_f32(const uint8_t *src, int h, int w, int c, int oh, int ow, const struct tl_resample_axis *y_axis,
                       const struct tl_resample_axis *x_axis, float *dst, int chw, const float *mean,
                       const float *inv_std);

// ---------------------------------------------------------------- Convolution, pooling, batch norm (conv.c)
// Activations are NCHW. One window geometry describes an image [channels, height, width] and
// its output [out_h, out_w]: iy = oy·stride_h − pad_top + i·dilation_h for kernel row i.
typedef struct tl_window2d {
    int32_t channels, height, width;
    int32_t kernel_h, kernel_w, stride_h, stride_w;
    int32_t pad_top, pad_bottom, pad_left, pad_right;
    int32_t dilation_h, dilation_w;
    int32_t out_h, out_w;
} tl_window2d;

/// One image x [C, H, W] to columns [C·kH·kW, OH·OW] (zeros where the window reads padding).
void tl_im2col(const float *x, const tl_window2d *w, float *col);
/// The adjoint of tl_im2col: accumulates columns [C·kH·kW, OH·OW] into x [C, H, W] (x += col2im(col)).
void tl_col2im(const float *col, const tl_window2d *w, float *x);
/// Int32 entries of the table tl_im2col_table makes for a chunk of `images` images.
size_t tl_im2col_table_size(const tl_window2d *w, size_t images);
/// The offset table of tl_im2col_gather for a chunk of `images` images (tl_im2col_table_size
/// entries): first taps[t·ld + n·OH·OW + p] (ld = images·OH·OW) is the input element, relative to
/// the chunk's first image's channel plane (n·C·H·W + iy·W + ix), that tap t = i·kW + j reads for
/// output position p of image n, or −1 where it reads padding; then, for each tap and each 16
/// entries of its row, a pair (s, step): entry = s + step·lane on every valid lane, step 1 or 2,
/// or step 0 when the block has no such form. The offsets must fit int32.
void tl_im2col_table(const tl_window2d *w, size_t images, int32_t *taps);
/// Entries of the table tl_col2im_table makes for a chunk of `images` images.
size_t tl_col2im_table_size(const tl_window2d *w, size_t images);
/// The table of tl_col2im_gather: first sources[t·images·H·W + n·H·W + q], the column
/// (n·OH·OW + oy·OW + ox) whose tap t reads input element q of image n, or −1 if none; then runs
/// as in tl_im2col_table, for each tap, image and 16 entries of the image's plane.
void tl_col2im_table(const tl_window2d *w, size_t images, int32_t *sources);
/// im2col of `images` images x [images, C, H, W] side by side in one column matrix
/// [C·kH·kW, images·OH·OW] (image n's columns at n·OH·OW of each row), through the table of
/// tl_im2col_table; only rows r0..<r1 (row c·kH·kW + t: channel c, tap t) are written, row r at
/// r·ld (ld ≥ images·OH·OW).
void tl_im2col_gather(const float *x, const tl_window2d *w, const int32_t *taps, size_t images, size_t r0, size_t r1,
                      size_t ld, float *col);
/// The adjoint of tl_im2col_gather for channels c0..<c1 (col's rows at a stride of ld), through
/// the table of tl_col2im_table: overwrites those channels of x [images, C, H, W].
void tl_col2im_gather(const float *col, const tl_window2d *w, const int32_t *sources, size_t images, size_t c0, size_t c1,
                      size_t ld, float *x);
/// The gather instructions in use: 0 scalar, 1 AVX2, 2 AVX-512.
int tl_gather_level(void);
/// Uses at most `level` (clamped to what the CPU has; negative: the best), for tests.
void tl_set_gather_level(int level);
/// dst [b, a, p] = src [a, b, p] (+ bias[i] for src's row i when bias != NULL), for i in a0..<a1:
/// between NCHW [n, C, p] and the GEMM layout [C, n, p]. Row i of src starts at i·src_stride
/// (≥ b·p), row j of dst at j·dst_stride (≥ a·p): the GEMM layout's rows may be padded.
void tl_swap_outer(const float *src, size_t a, size_t b, size_t p, size_t src_stride, size_t dst_stride, const float *bias,
                   size_t a0, size_t a1, float *dst);
/// Max pooling over `planes` planes [H, W] → [OH, OW], through the table tl_im2col_table makes for
/// `w` with one channel and one image; argmax holds the flat input index (iy·W + ix) of each
/// maximum as a float (−1 for a window wholly in padding). Windows are scanned row by row: the
/// first maximum wins ties and the first NaN wins for good (it propagates), as in PyTorch.
void tl_maxpool2d_forward(const float *x, const tl_window2d *w, const int32_t *taps, size_t planes, float *out, float *argmax);
/// dx [planes, H, W] = scatter of g [planes, OH, OW] to the argmax positions (dx is overwritten).
void tl_maxpool2d_backward(const float *g, const float *argmax, const tl_window2d *w, size_t planes, float *dx);
/// Average pooling; include_pad != 0 divides by the window size (padding counted, PyTorch's default).
void tl_avgpool2d_forward(const float *x, const tl_window2d *w, size_t planes, int include_pad, float *out);
void tl_avgpool2d_backward(const float *g, const tl_window2d *w, size_t planes, int include_pad, float *dx);
/// Per-channel mean and biased variance of x [n, c, s] for channels c0..<c1.
void tl_batchnorm_stats(const float *x, size_t n, size_t c, size_t s, size_t c0, size_t c1, float *mean, float *var);
/// y = (x − mean)/√(var + eps)·weight + bias per channel, channels c0..<c1.
void tl_batchnorm_forward(const float *x, size_t n, size_t c, size_t s, size_t c0, size_t c1, const float *mean,
                          const float *var, float eps, const float *weight, const float *bias, float *y);
/// Gradients of tl_batchnorm_forward for channels c0..<c1. batch_stats != 0: mean/var are the
/// batch's own (their dependence on x is differentiated); 0: constants (evaluation mode).
/// dx, dweight, dbias may each be NULL.
void tl_batchnorm_backward(const float *g, const float *x, size_t n, size_t c, size_t s, size_t c0, size_t c1,
                           const float *mean, const float *var, float eps, const float *weight, int batch_stats,
                           float *dx, float *dweight, float *dbias);

#ifdef __cplusplus
}
#endif
#endif
