// Image decoding (libjpeg-turbo, libpng) into 8-bit pixels.
//
// Decoding goes through the system libraries, never a hand-written codec: both libraries report
// errors by longjmp, so each decoder sets its jump point before the first library call and turns
// the library's message into the `err` text the Swift side wraps in a DataError. Every warp,
// resize, crop, rotation and perspective transform is one projective bilinear sampler, so they
// share one tested loop.
#include "clearner.h"
#include "image_internal.h"

#include <stdio.h>  // before jpeglib.h, which uses FILE without including it

#include <jpeglib.h>
#include <jerror.h>  // after jpeglib.h: the JWRN_ message codes
#include <math.h>
#include <png.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static void image_error(char *err, size_t errlen, const char *message) {
    if (err != NULL && errlen > 0) {
        strncpy(err, message, errlen - 1);
        err[errlen - 1] = '\0';
    }
}

// Images over this many pixels are refused before any pixel buffer is allocated: a few KB of
// JPEG or PNG can claim 65,500 x 65,500 pixels (a decompression bomb). Pillow's default
// refusal threshold (2 x Image.MAX_IMAGE_PIXELS).
static _Atomic size_t max_pixels = 178956970;

void tl_image_set_max_pixels(size_t n) { atomic_store_explicit(&max_pixels, n, memory_order_relaxed); }
size_t tl_image_max_pixels(void) { return atomic_load_explicit(&max_pixels, memory_order_relaxed); }

/// 1 (with the message in err) when a w x h image is over the limit.
static int over_pixel_limit(size_t w, size_t h, char *err, size_t errlen) {
    size_t limit = tl_image_max_pixels();
    if (w == 0 || h <= limit / w) return 0;
    char message[160];
    snprintf(message, sizeof message, "%zu x %zu pixels is over the limit of %zu (ImageDecoder.maximumPixels)", w, h,
             limit);
    image_error(err, errlen, message);
    return 1;
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
    int scratch;      // write into the thread's scratch buffer instead of a fresh one
    int dct_fast;     // JDCT_IFAST (TensorFlow decode_jpeg's default) instead of JDCT_ISLOW (libjpeg's)
    int header_only;  // stop after the header: sizes and channels, no pixels (*pixels stays NULL)
    // JPEG only, when region_height > 0: decode just the rows top..top+height and the iMCU
    // columns covering left..left+width (libjpeg-turbo's skip and crop); where the pixels
    // start comes back in *origin_top and *origin_left. Other formats decode whole.
    int region_top, region_left, region_height, region_width;
    int *origin_top, *origin_left;
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
    if (over_pixel_limit(cinfo.image_width, cinfo.image_height, err, errlen)) {
        jpeg_destroy_decompress(&cinfo);
        return 5;
    }
    if (opts.header_only) {
        *height = (int)cinfo.image_height;
        *width = (int)cinfo.image_width;
        *channels = grey ? 1 : 3;
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    cinfo.out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
    cinfo.dct_method = opts.dct_fast ? JDCT_IFAST : JDCT_ISLOW;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, c = cinfo.output_components;
    int top = 0;
    JDIMENSION left = 0;
    if (opts.region_height > 0 && opts.region_top >= 0 && opts.region_left >= 0 && opts.region_width > 0 &&
        opts.region_top + opts.region_height <= h && opts.region_left + opts.region_width <= w &&
        (opts.region_height < h || opts.region_width < w)) {
        // One iMCU of margin on every side: the rows and columns next to where decoding starts or
        // stops lack the neighbours that chroma upsampling blends, so they are decoded but not
        // part of the region, whose pixels then equal a whole decode's.
        int margin_y = cinfo.max_v_samp_factor * DCTSIZE, margin_x = cinfo.max_h_samp_factor * DCTSIZE;
        int y0 = opts.region_top - margin_y < 0 ? 0 : opts.region_top - margin_y;
        int y1 = opts.region_top + opts.region_height + margin_y > h ? h : opts.region_top + opts.region_height + margin_y;
        int x0 = opts.region_left - margin_x < 0 ? 0 : opts.region_left - margin_x;
        int x1 = opts.region_left + opts.region_width + margin_x > w ? w : opts.region_left + opts.region_width + margin_x;
        JDIMENSION width = (JDIMENSION)(x1 - x0);
        left = (JDIMENSION)x0;
        if (width < (JDIMENSION)w) jpeg_crop_scanline(&cinfo, &left, &width);  // widens to iMCU edges
        w = (int)width;
        top = y0;
        h = y1 - y0;
    }
    if (opts.origin_top != NULL) *opts.origin_top = top;
    if (opts.origin_left != NULL) *opts.origin_left = (int)left;
    size_t stride = (size_t)cinfo.output_width * (size_t)c;  // after the crop: the cropped width
    out = output_buffer(opts.scratch, stride * (size_t)h);
    if (out == NULL) {
        image_error(err, errlen, "out of memory");
        jpeg_destroy_decompress(&cinfo);
        return 4;
    }
    if (top > 0) jpeg_skip_scanlines(&cinfo, (JDIMENSION)top);
    JDIMENSION end = (JDIMENSION)(top + h);
    while (cinfo.output_scanline < end) {
        // Several rows per call: libjpeg produces up to rec_outbuf_height at once.
        JSAMPROW rows[16];
        JDIMENSION want = end - cinfo.output_scanline;
        if (want > 16) want = 16;
        for (JDIMENSION r = 0; r < want; r++) rows[r] = out + stride * (cinfo.output_scanline - (JDIMENSION)top + r);
        jpeg_read_scanlines(&cinfo, rows, want);
    }
    // Rows below a region are never decoded: abort rather than finish.
    if (cinfo.output_scanline < cinfo.output_height) {
        jpeg_abort_decompress(&cinfo);
    } else {
        jpeg_finish_decompress(&cinfo);
    }
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

void tl_png_fail_exit(png_structp png, png_const_charp message) {
    struct png_fail *fail = png_get_error_ptr(png);
    snprintf(fail->message, sizeof fail->message, "%s", message);
    longjmp(fail->jump, 1);
}

void tl_png_quiet(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

// Both PNG decoders, under their own setjmp (libpng's errors jump there): the header read, 0 or
// 5 when the image is over the pixel limit.
static int png_read_header(png_structp png, png_infop info, struct png_source *src, char *err, size_t errlen) {
    png_set_read_fn(png, src, png_read_memory);
    png_read_info(png, info);
    return over_pixel_limit(png_get_image_width(png, info), png_get_image_height(png, info), err, errlen) ? 5 : 0;
}

// The conversions both decoders share, so that every PNG reads as grey or RGB: palettes
// expanded, low-depth grey widened, transparency and alpha dropped. `wide`: 16 bits per sample
// in host order (8-bit and lower widened, v * 257); else 8 bits (16-bit scaled, v * 255 / 65535,
// rounded). Returns the channels per pixel.
static int png_read_grey_or_rgb(png_structp png, png_infop info, int wide) {
    int color = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    if (wide) {
        png_set_expand_16(png);
        png_set_swap(png);
    } else if (depth == 16) {
        png_set_scale_16(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int c = png_get_channels(png, info);
    if (c != 1 && c != 3) png_error(png, "unexpected channel count after conversion");
    return c;
}

static int decode_png(const uint8_t *data, size_t len, struct decode_opts opts, uint8_t **pixels, int *height,
                      int *width, int *channels, char *err, size_t errlen) {
    struct png_fail fail;
    struct png_source src = {data, len, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &fail, tl_png_fail_exit, tl_png_quiet);
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
    if (png_read_header(png, info, &src, err, errlen)) {
        png_destroy_read_struct(&png, &info, NULL);
        return 5;
    }
    if (opts.header_only) {
        // As the conversion below: grey (with or without alpha) stays grey, the rest becomes RGB.
        int color = png_get_color_type(png, info);
        *height = (int)png_get_image_height(png, info);
        *width = (int)png_get_image_width(png, info);
        *channels = (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) ? 1 : 3;
        png_destroy_read_struct(&png, &info, NULL);
        return 0;
    }
    int c = png_read_grey_or_rgb(png, info, 0);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    size_t stride = png_get_rowbytes(png, info);
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
    struct decode_opts opts = {0, 0, 0, 0, 0, 0, 0, NULL, NULL};
    return decode_any(data, len, channels, opts, pixels, height, width, out_channels, err, errlen);
}

int tl_png_decode_float(const uint8_t *data, size_t len, float **pixels, int *height, int *width, int *channels,
                        int *bit_depth, char *err, size_t errlen) {
    if (pixels == NULL || height == NULL || width == NULL || channels == NULL || bit_depth == NULL) return 1;
    *pixels = NULL;
    if (tl_image_format(data, len) != TL_IMAGE_PNG) {
        image_error(err, errlen, "not a PNG");
        return 5;
    }
    struct png_fail fail;
    struct png_source src = {data, len, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &fail, tl_png_fail_exit, tl_png_quiet);
    if (png == NULL) {
        image_error(err, errlen, "out of memory");
        return 4;
    }
    png_infop info = png_create_info_struct(png);
    uint16_t *volatile raw = NULL;
    float *volatile out = NULL;
    png_bytep *volatile rows = NULL;
    if (info == NULL || setjmp(fail.jump)) {
        image_error(err, errlen, info == NULL ? "out of memory" : fail.message);
        png_destroy_read_struct(&png, info != NULL ? &info : NULL, NULL);
        free(raw);
        free(out);
        free(rows);
        return 2;
    }
    if (png_read_header(png, info, &src, err, errlen)) {
        png_destroy_read_struct(&png, &info, NULL);
        return 5;
    }
    int depth = png_get_bit_depth(png, info);
    // Everything as 16-bit samples (255 becomes 65535), then scaled by 1/65535.
    int c = png_read_grey_or_rgb(png, info, 1);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    size_t count = (size_t)w * (size_t)h * (size_t)c;
    raw = malloc(count * sizeof(uint16_t));
    out = malloc(count * sizeof(float));
    rows = malloc(sizeof(png_bytep) * (size_t)h);
    if (raw == NULL || out == NULL || rows == NULL) png_error(png, "out of memory");
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(raw + (size_t)y * (size_t)w * (size_t)c);
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    for (size_t i = 0; i < count; i++) out[i] = (float)raw[i] / 65535.0f;
    free(raw);
    free(rows);
    *pixels = out;
    *height = h;
    *width = w;
    *channels = c;
    *bit_depth = depth;
    return 0;
}

int tl_image_decode_scratch(const uint8_t *data, size_t len, int channels, int dct_fast, const uint8_t **pixels,
                            int *height, int *width, int *out_channels, char *err, size_t errlen) {
    struct decode_opts opts = {1, dct_fast != 0, 0, 0, 0, 0, 0, NULL, NULL};
    uint8_t *out = NULL;
    int rc = decode_any(data, len, channels, opts, &out, height, width, out_channels, err, errlen);
    if (pixels != NULL) *pixels = rc == 0 ? out : NULL;
    return rc;
}


int tl_image_info(const uint8_t *data, size_t len, int *height, int *width, int *channels, char *err, size_t errlen) {
    struct decode_opts opts = {0, 0, 1, 0, 0, 0, 0, NULL, NULL};
    uint8_t *none = NULL;
    return decode_any(data, len, 0, opts, &none, height, width, channels, err, errlen);
}

int tl_image_decode_region_scratch(const uint8_t *data, size_t len, int channels, int dct_fast, int top, int left,
                                   int height, int width, const uint8_t **pixels, int *origin_top, int *origin_left,
                                   int *out_height, int *out_width, int *out_channels, char *err, size_t errlen) {
    if (origin_top != NULL) *origin_top = 0;
    if (origin_left != NULL) *origin_left = 0;
    struct decode_opts opts = {1, dct_fast != 0, 0, top, left, height, width, origin_top, origin_left};
    uint8_t *out = NULL;
    int rc = decode_any(data, len, channels, opts, &out, out_height, out_width, out_channels, err, errlen);
    if (pixels != NULL) *pixels = rc == 0 ? out : NULL;
    return rc;
}
