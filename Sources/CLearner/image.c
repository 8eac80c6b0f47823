// Image decoding (libjpeg-turbo, libpng) and the per-pixel loops of augmentation.
//
// Decoding goes through the system libraries, never a hand-written codec: both libraries report
// errors by longjmp, so each decoder sets its jump point before the first library call and turns
// the library's message into the `err` text the Swift side wraps in a DataError. Every warp,
// resize, crop, rotation and perspective transform is one projective bilinear sampler, so they
// share one tested loop.
#include "clearner.h"

#include <stdio.h>  // before jpeglib.h, which uses FILE without including it

#include <jpeglib.h>
#include <jerror.h>  // after jpeglib.h: the JWRN_ message codes
#include <math.h>
#include <png.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

static void image_error(char *err, size_t errlen, const char *message) {
    if (err != NULL && errlen > 0) {
        strncpy(err, message, errlen - 1);
        err[errlen - 1] = '\0';
    }
}

int tl_image_format(const uint8_t *data, size_t len) {
    if (data == NULL) return TL_IMAGE_UNKNOWN;
    if (len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return TL_IMAGE_JPEG;
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (len >= 8 && memcmp(data, png_magic, 8) == 0) return TL_IMAGE_PNG;
    return TL_IMAGE_UNKNOWN;
}

void tl_image_free(uint8_t *pixels) { free(pixels); }

/// The calling thread's decode buffers, kept between images so a worker decoding thousands of
/// them allocates (and page-faults) once, not per image; freed when the thread ends.
struct scratch {
    uint8_t *pixels, *converted;
    size_t pixels_cap, converted_cap;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
    struct scratch *s = p;
    free(s->pixels);
    free(s->converted);
    free(s);
}

static void scratch_make_key(void) { pthread_key_create(&scratch_key, scratch_free); }

static struct scratch *thread_scratch(void) {
    pthread_once(&scratch_once, scratch_make_key);
    struct scratch *s = pthread_getspecific(scratch_key);
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s != NULL && pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            s = NULL;
        }
    }
    return s;
}

/// A buffer of at least n bytes in *buf, grown (contents dropped) when smaller; NULL when out of memory.
static uint8_t *reserve(uint8_t **buf, size_t *cap, size_t n) {
    if (*cap < n) {
        free(*buf);
        *buf = malloc(n);
        *cap = *buf == NULL ? 0 : n;
    }
    return *buf;
}

/// Where a decoder writes: a fresh buffer the caller frees, or the thread's scratch buffer.
static uint8_t *output_buffer(int scratch, size_t n) {
    if (!scratch) return malloc(n);
    struct scratch *s = thread_scratch();
    return s == NULL ? NULL : reserve(&s->pixels, &s->pixels_cap, n);
}

/// Converts interleaved 8-bit pixels between 1 and 3 channels into a new buffer, or the thread's
/// second scratch buffer (ITU-R 601 luma,
/// rounded as Pillow's "L" conversion: (r*19595 + g*38470 + b*7471 + 0x8000) >> 16).
static uint8_t *convert_channels(const uint8_t *src, size_t pixels, int from, int to, int scratch) {
    uint8_t *dst;
    if (scratch) {
        struct scratch *s = thread_scratch();
        dst = s == NULL ? NULL : reserve(&s->converted, &s->converted_cap, pixels * (size_t)to);
    } else {
        dst = malloc(pixels * (size_t)to);
    }
    if (dst == NULL) return NULL;
    if (from == 1 && to == 3) {
        for (size_t i = 0; i < pixels; i++) dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = src[i];
    } else {
        for (size_t i = 0; i < pixels; i++) {
            const uint8_t *p = src + 3 * i;
            dst[i] = (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
        }
    }
    return dst;
}

// ---------------------------------------------------------------- JPEG

struct jpeg_fail {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void jpeg_fail_exit(j_common_ptr cinfo) {
    struct jpeg_fail *fail = (struct jpeg_fail *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, fail->message);
    longjmp(fail->jump, 1);
}

static void jpeg_quiet(j_common_ptr cinfo) { (void)cinfo; }  // warnings (corrupt-but-decodable data) stay silent

/// libjpeg only warns when the data ends early and pads the image with grey; a cut-short blob is
/// a broken record here (as for TensorFlow's decode_jpeg without try_recover_truncated).
static void jpeg_warn_truncation(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_fail_exit(cinfo);
}

/// One decode request: where the pixels go and how a JPEG's inverse DCT is computed.
struct decode_opts {
    int scratch;   // write into the thread's scratch buffer instead of a fresh one
    int dct_fast;  // JDCT_IFAST (TensorFlow decode_jpeg's default) instead of JDCT_ISLOW (libjpeg's)
};

static int decode_jpeg(const uint8_t *data, size_t len, struct decode_opts opts, uint8_t **pixels, int *height,
                       int *width, int *channels, char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_fail fail;
    uint8_t *volatile out = NULL;
    cinfo.err = jpeg_std_error(&fail.base);
    fail.base.error_exit = jpeg_fail_exit;
    fail.base.output_message = jpeg_quiet;
    fail.base.emit_message = jpeg_warn_truncation;
    if (setjmp(fail.jump)) {
        image_error(err, errlen, fail.message);
        jpeg_destroy_decompress(&cinfo);
        if (!opts.scratch) free(out);
        return 2;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    int grey = cinfo.jpeg_color_space == JCS_GRAYSCALE;
    if (cinfo.num_components != 1 && cinfo.num_components != 3) {
        image_error(err, errlen, "JPEG with 4 components (CMYK/YCCK) is not supported");
        jpeg_destroy_decompress(&cinfo);
        return 3;
    }
    cinfo.out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
    cinfo.dct_method = opts.dct_fast ? JDCT_IFAST : JDCT_ISLOW;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, c = cinfo.output_components;
    size_t stride = (size_t)w * (size_t)c;
    out = output_buffer(opts.scratch, stride * (size_t)h);
    if (out == NULL) {
        image_error(err, errlen, "out of memory");
        jpeg_destroy_decompress(&cinfo);
        return 4;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        // Several rows per call: libjpeg produces up to rec_outbuf_height at once.
        JSAMPROW rows[16];
        JDIMENSION want = cinfo.output_height - cinfo.output_scanline;
        if (want > 16) want = 16;
        for (JDIMENSION r = 0; r < want; r++) rows[r] = out + stride * (cinfo.output_scanline + r);
        jpeg_read_scanlines(&cinfo, rows, want);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *pixels = out;
    *height = h;
    *width = w;
    *channels = c;
    return 0;
}

// ---------------------------------------------------------------- PNG

struct png_source {
    const uint8_t *data;
    size_t len, at;
};

static void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
    struct png_source *src = png_get_io_ptr(png);
    if (src->len - src->at < n) png_error(png, "PNG data ends early");
    memcpy(out, src->data + src->at, n);
    src->at += n;
}

struct png_fail {
    jmp_buf jump;
    char message[256];
};

static void png_fail_exit(png_structp png, png_const_charp message) {
    struct png_fail *fail = png_get_error_ptr(png);
    snprintf(fail->message, sizeof fail->message, "%s", message);
    longjmp(fail->jump, 1);
}

static void png_quiet(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static int decode_png(const uint8_t *data, size_t len, struct decode_opts opts, uint8_t **pixels, int *height,
                      int *width, int *channels, char *err, size_t errlen) {
    struct png_fail fail;
    struct png_source src = {data, len, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &fail, png_fail_exit, png_quiet);
    if (png == NULL) {
        image_error(err, errlen, "out of memory");
        return 4;
    }
    png_infop info = png_create_info_struct(png);
    uint8_t *volatile out = NULL;
    png_bytep *volatile rows = NULL;
    if (info == NULL || setjmp(fail.jump)) {
        image_error(err, errlen, info == NULL ? "out of memory" : fail.message);
        png_destroy_read_struct(&png, info != NULL ? &info : NULL, NULL);
        if (!opts.scratch) free(out);
        free(rows);
        return 2;
    }
    png_set_read_fn(png, &src, png_read_memory);
    png_read_info(png, info);
    int color = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    // Normalise everything to 8-bit grey or RGB: palettes expanded, low-depth grey widened,
    // 16-bit scaled (v * 255 / 65535, rounded), transparency and alpha dropped.
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_scale_16(png);
    if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    int c = png_get_channels(png, info);
    size_t stride = png_get_rowbytes(png, info);
    if (c != 1 && c != 3) png_error(png, "unexpected channel count after conversion");
    out = output_buffer(opts.scratch, stride * (size_t)h);
    rows = malloc(sizeof(png_bytep) * (size_t)h);
    if (out == NULL || rows == NULL) png_error(png, "out of memory");
    for (int y = 0; y < h; y++) rows[y] = out + stride * (size_t)y;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *pixels = out;
    *height = h;
    *width = w;
    *channels = c;
    return 0;
}

static int decode_any(const uint8_t *data, size_t len, int channels, struct decode_opts opts, uint8_t **pixels,
                      int *height, int *width, int *out_channels, char *err, size_t errlen) {
    if (pixels == NULL || height == NULL || width == NULL || out_channels == NULL) return 1;
    *pixels = NULL;
    if (channels != 0 && channels != 1 && channels != 3) {
        image_error(err, errlen, "channels must be 0, 1 or 3");
        return 1;
    }
    int rc;
    switch (tl_image_format(data, len)) {
    case TL_IMAGE_JPEG: rc = decode_jpeg(data, len, opts, pixels, height, width, out_channels, err, errlen); break;
    case TL_IMAGE_PNG: rc = decode_png(data, len, opts, pixels, height, width, out_channels, err, errlen); break;
    default:
        image_error(err, errlen, "not a JPEG or PNG (unknown magic bytes)");
        return 5;
    }
    if (rc != 0 || channels == 0 || channels == *out_channels) return rc;
    uint8_t *converted =
        convert_channels(*pixels, (size_t)*height * (size_t)*width, *out_channels, channels, opts.scratch);
    if (!opts.scratch) free(*pixels);
    *pixels = converted;
    if (converted == NULL) {
        image_error(err, errlen, "out of memory");
        return 4;
    }
    *out_channels = channels;
    return 0;
}

int tl_image_decode(const uint8_t *data, size_t len, int channels, uint8_t **pixels, int *height, int *width,
                    int *out_channels, char *err, size_t errlen) {
    struct decode_opts opts = {0, 0};
    return decode_any(data, len, channels, opts, pixels, height, width, out_channels, err, errlen);
}

int tl_image_decode_scratch(const uint8_t *data, size_t len, int channels, int dct_fast, const uint8_t **pixels,
                            int *height, int *width, int *out_channels, char *err, size_t errlen) {
    struct decode_opts opts = {1, dct_fast != 0};
    uint8_t *out = NULL;
    int rc = decode_any(data, len, channels, opts, &out, height, width, out_channels, err, errlen);
    if (pixels != NULL) *pixels = rc == 0 ? out : NULL;
    return rc;
}

// ---------------------------------------------------------------- float loops

void tl_u8_to_f32(const uint8_t *in, float *out, size_t n, float divisor) {
    for (size_t i = 0; i < n; i++) out[i] = (float)in[i] / divisor;
}

/// floor() without the libm call the baseline x86-64 target makes of it (no SSE4.1 `roundsd`).
static inline int floor_int(double v) {
    int i = (int)v;
    return i - (v < (double)i);
}

/// One axis of a separable map: the two source taps and the weight of the second for an output
/// coordinate, or inside == 0 where the point falls outside the source (border 0).
struct axis_tap {
    int i0, i1, inside;
    float a;
};

static void axis_taps(struct axis_tap *taps, int n, double scale, double offset, int size) {
    for (int i = 0; i < n; i++) {
        double s = scale * (i + 0.5) + offset;
        taps[i].inside = s >= 0 && s <= size;
        double f = s - 0.5;
        if (f < -1) f = -1;
        if (f > size) f = size;
        int i0 = floor_int(f);
        taps[i].a = (float)(f - i0);
        int i1 = i0 + 1;
        taps[i].i0 = i0 < 0 ? 0 : (i0 >= size ? size - 1 : i0);
        taps[i].i1 = i1 < 0 ? 0 : (i1 >= size ? size - 1 : i1);
    }
}

/// Axis-aligned maps (resizes, crops, padding): taps computed once per row and column.
static int warp_separable(const float *src, int h, int w, int c, float *dst, int oh, int ow, const double *m,
                          int border, float fill) {
    struct axis_tap *xs = malloc(sizeof *xs * (size_t)ow), *ys = malloc(sizeof *ys * (size_t)oh);
    if (xs == NULL || ys == NULL) {
        free(xs);
        free(ys);
        return 1;
    }
    axis_taps(xs, ow, m[0], m[2], w);
    axis_taps(ys, oh, m[4], m[5], h);
    size_t stride = (size_t)w * (size_t)c;
    for (int y = 0; y < oh; y++) {
        const float *r0 = src + (size_t)ys[y].i0 * stride, *r1 = src + (size_t)ys[y].i1 * stride;
        float ay = ys[y].a;
        float *o = dst + (size_t)y * (size_t)ow * (size_t)c;
        for (int x = 0; x < ow; x++, o += c) {
            if (border == 0 && !(xs[x].inside && ys[y].inside)) {
                for (int k = 0; k < c; k++) o[k] = fill;
                continue;
            }
            const float *p00 = r0 + (size_t)xs[x].i0 * c, *p01 = r0 + (size_t)xs[x].i1 * c;
            const float *p10 = r1 + (size_t)xs[x].i0 * c, *p11 = r1 + (size_t)xs[x].i1 * c;
            float ax = xs[x].a;
            for (int k = 0; k < c; k++) {
                float top = p00[k] + (p01[k] - p00[k]) * ax;
                float bottom = p10[k] + (p11[k] - p10[k]) * ax;
                o[k] = top + (bottom - top) * ay;
            }
        }
    }
    free(xs);
    free(ys);
    return 0;
}

void tl_warp_bilinear_f32(const float *src, int h, int w, int c, float *dst, int oh, int ow, const double *m,
                          int border, float fill) {
    // Affine maps (every resize, crop, rotation) skip the per-pixel division; axis-aligned ones
    // (resize, crop, pad) also the per-pixel tap computation.
    int affine = m[6] == 0 && m[7] == 0 && m[8] == 1;
    if (affine && m[1] == 0 && m[3] == 0 && warp_separable(src, h, w, c, dst, oh, ow, m, border, fill) == 0) return;
    for (int y = 0; y < oh; y++) {
        double py = y + 0.5;
        for (int x = 0; x < ow; x++) {
            double px = x + 0.5;
            double sx = m[0] * px + m[1] * py + m[2];
            double sy = m[3] * px + m[4] * py + m[5];
            if (!affine) {
                double z = m[6] * px + m[7] * py + m[8];
                sx /= z;
                sy /= z;
            }
            float *o = dst + ((size_t)y * (size_t)ow + (size_t)x) * (size_t)c;
            if (border == 0 && !(sx >= 0 && sx <= w && sy >= 0 && sy <= h)) {
                for (int k = 0; k < c; k++) o[k] = fill;
                continue;
            }
            // Pixel centres sit at integer + 0.5; taps beyond the edge repeat it.
            double fx = sx - 0.5, fy = sy - 0.5;
            if (fx < -1) fx = -1;  // keeps the int conversion in range; the clamp below does the rest
            if (fy < -1) fy = -1;
            if (fx > w) fx = w;
            if (fy > h) fy = h;
            int x0 = floor_int(fx), y0 = floor_int(fy);
            float ax = (float)(fx - x0), ay = (float)(fy - y0);
            int x1 = x0 + 1, y1 = y0 + 1;
            x0 = x0 < 0 ? 0 : (x0 >= w ? w - 1 : x0);
            x1 = x1 < 0 ? 0 : (x1 >= w ? w - 1 : x1);
            y0 = y0 < 0 ? 0 : (y0 >= h ? h - 1 : y0);
            y1 = y1 < 0 ? 0 : (y1 >= h ? h - 1 : y1);
            const float *r0 = src + (size_t)y0 * (size_t)w * (size_t)c;
            const float *r1 = src + (size_t)y1 * (size_t)w * (size_t)c;
            const float *p00 = r0 + (size_t)x0 * (size_t)c, *p01 = r0 + (size_t)x1 * (size_t)c;
            const float *p10 = r1 + (size_t)x0 * (size_t)c, *p11 = r1 + (size_t)x1 * (size_t)c;
            for (int k = 0; k < c; k++) {
                float top = p00[k] + (p01[k] - p00[k]) * ax;
                float bottom = p10[k] + (p11[k] - p10[k]) * ax;
                o[k] = top + (bottom - top) * ay;
            }
        }
    }
}

void tl_image_flip_f32(float *x, int h, int w, int c, int horizontal) {
    size_t stride = (size_t)w * (size_t)c;
    if (horizontal) {
        for (int y = 0; y < h; y++) {
            float *row = x + stride * (size_t)y;
            for (int a = 0, b = w - 1; a < b; a++, b--) {
                for (int k = 0; k < c; k++) {
                    float t = row[(size_t)a * c + k];
                    row[(size_t)a * c + k] = row[(size_t)b * c + k];
                    row[(size_t)b * c + k] = t;
                }
            }
        }
    } else {
        for (int a = 0, b = h - 1; a < b; a++, b--) {
            float *ra = x + stride * (size_t)a, *rb = x + stride * (size_t)b;
            for (size_t i = 0; i < stride; i++) {
                float t = ra[i];
                ra[i] = rb[i];
                rb[i] = t;
            }
        }
    }
}

static inline float clamp01(float v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }

/// Luma of one pixel (ITU-R 601, as torchvision's rgb_to_grayscale).
static inline float grey_of(const float *p, int c) { return c >= 3 ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0]; }

void tl_image_color_f32(float *x, size_t pixels, int c, float brightness, float contrast, float saturation) {
    size_t n = pixels * (size_t)c;
    if (brightness != 1.0f) {
        for (size_t i = 0; i < n; i++) x[i] = clamp01(x[i] * brightness);
    }
    if (contrast != 1.0f && pixels > 0) {
        double sum = 0;
        for (size_t p = 0; p < pixels; p++) sum += grey_of(x + p * (size_t)c, c);
        float mean = (float)(sum / (double)pixels);
        for (size_t i = 0; i < n; i++) x[i] = clamp01((x[i] - mean) * contrast + mean);
    }
    if (saturation != 1.0f && c >= 3) {
        for (size_t p = 0; p < pixels; p++) {
            float *q = x + p * (size_t)c;
            float g = grey_of(q, c);
            for (int k = 0; k < 3; k++) q[k] = clamp01((q[k] - g) * saturation + g);
        }
    }
}

void tl_image_normalize_f32(float *x, size_t pixels, int c, const float *mean, const float *inv_std) {
    for (size_t p = 0; p < pixels; p++) {
        float *q = x + p * (size_t)c;
        for (int k = 0; k < c; k++) q[k] = (q[k] - mean[k]) * inv_std[k];
    }
}

void tl_hwc_to_chw_f32(const float *src, int h, int w, int c, float *dst) {
    size_t plane = (size_t)h * (size_t)w;
    for (size_t p = 0; p < plane; p++) {
        for (int k = 0; k < c; k++) dst[(size_t)k * plane + p] = src[p * (size_t)c + k];
    }
}

// ---------------------------------------------------------------- fused resample

/// Source taps of one output axis (see tl_resample_axis): `i0`, `i1` and the second's weight.
struct resample_tap {
    int i0, i1;
    float a;
};

static void resample_taps(struct resample_tap *taps, int n, const struct tl_resample_axis *axis) {
    double lo = axis->lower, hi = axis->upper - 1;
    for (int i = 0; i < n; i++) {
        int j = axis->reversed ? n - 1 - i : i;
        double f = axis->scale * (j + 0.5) + axis->offset - 0.5;  // pixel centres at integer + 0.5
        if (f < lo) f = lo;
        if (f > hi) f = hi;
        int i0 = floor_int(f);
        taps[i].i0 = i0;
        taps[i].i1 = i0 + 1 <= axis->upper - 1 ? i0 + 1 : i0;
        taps[i].a = (float)(f - i0);
    }
}

/// Horizontal taps of one output row: `line` gets ow pixels of c values from the blended row.
static inline void resample_line(const float *row, const struct resample_tap *xs, int ow, int c, float *line) {
    for (int x = 0; x < ow; x++, line += c) {
        const float *p = row + (size_t)xs[x].i0 * (size_t)c, *q = row + (size_t)xs[x].i1 * (size_t)c;
        float ax = xs[x].a;
        for (int k = 0; k < c; k++) line[k] = p[k] + (q[k] - p[k]) * ax;
    }
}

/// Scales one interleaved line to [0, 1] (a division, so bytes / 255 come out correctly rounded),
/// normalises it when mean != NULL, and stores it interleaved or as c planes `plane` apart.
static void store_line(const float *line, int ow, int c, float *dst, size_t plane, int chw, const float *mean,
                       const float *inv_std) {
    size_t n = (size_t)ow * (size_t)c;
    if (!chw && mean == NULL) {
        for (size_t j = 0; j < n; j++) dst[j] = line[j] / 255.0f;
        return;
    }
    for (int k = 0; k < c; k++) {
        float m = mean != NULL ? mean[k] : 0, s = mean != NULL ? inv_std[k] : 1;
        float *out = chw ? dst + (size_t)k * plane : dst + k;
        size_t step = chw ? 1 : (size_t)c;
        for (int x = 0; x < ow; x++) out[(size_t)x * step] = (line[(size_t)x * (size_t)c + (size_t)k] / 255.0f - m) * s;
    }
}

int tl_resample_u8_f32(const uint8_t *src, int h, int w, int c, int oh, int ow, const struct tl_resample_axis *y_axis,
                       const struct tl_resample_axis *x_axis, float *dst, int chw, const float *mean,
                       const float *inv_std) {
    if (y_axis->lower < 0 || y_axis->upper > h || y_axis->lower >= y_axis->upper || x_axis->lower < 0 ||
        x_axis->upper > w || x_axis->lower >= x_axis->upper || oh <= 0 || ow <= 0 || c <= 0)
        return 1;
    struct resample_tap *xs = malloc(sizeof *xs * (size_t)ow), *ys = malloc(sizeof *ys * (size_t)oh);
    float *line = malloc(sizeof *line * (size_t)ow * (size_t)c);
    float *row = malloc(sizeof *row * (size_t)(x_axis->upper - x_axis->lower) * (size_t)c);
    if (xs == NULL || ys == NULL || line == NULL || row == NULL) {
        free(xs);
        free(ys);
        free(line);
        free(row);
        return 2;
    }
    resample_taps(xs, ow, x_axis);
    resample_taps(ys, oh, y_axis);
    // Only the columns some tap reads are blended: [first, last] of the source row.
    int first = xs[0].i0, last = xs[0].i1;
    for (int x = 1; x < ow; x++) {
        if (xs[x].i0 < first) first = xs[x].i0;
        if (xs[x].i1 > last) last = xs[x].i1;
    }
    for (int x = 0; x < ow; x++) {  // taps relative to the blended row
        xs[x].i0 -= first;
        xs[x].i1 -= first;
    }
    size_t stride = (size_t)w * (size_t)c, plane = (size_t)oh * (size_t)ow;
    size_t span = (size_t)(last - first + 1) * (size_t)c;
    for (int y = 0; y < oh; y++) {
        // Vertical blend first, over contiguous bytes (vectorises), then the horizontal taps.
        const uint8_t *r0 = src + (size_t)ys[y].i0 * stride + (size_t)first * c;
        const uint8_t *r1 = src + (size_t)ys[y].i1 * stride + (size_t)first * c;
        float ay = ys[y].a;
        if (ay == 0) {
            for (size_t k = 0; k < span; k++) row[k] = (float)r0[k];
        } else {
            for (size_t k = 0; k < span; k++) row[k] = (float)r0[k] + ((float)r1[k] - (float)r0[k]) * ay;
        }
        // Constant channel counts let the compiler unroll the inner loop.
        if (c == 3) resample_line(row, xs, ow, 3, line);
        else if (c == 1) resample_line(row, xs, ow, 1, line);
        else resample_line(row, xs, ow, c, line);
        float *out = chw ? dst + (size_t)y * (size_t)ow : dst + (size_t)y * (size_t)ow * (size_t)c;
        store_line(line, ow, c, out, plane, chw, mean, inv_std);
    }
    free(xs);
    free(ys);
    free(line);
    free(row);
    return 0;
}
