// Image encoding (libjpeg-turbo, libpng) for the data tools: a resized image is written back
// in its own format. Both libraries report errors by longjmp; each encoder sets its jump point
// before the first library call and turns the message into `err`.
#include "clearner.h"
#include "image_internal.h"

#include <stdio.h>  // before jpeglib.h, which uses FILE without including it

#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

static void encode_error(char *err, size_t errlen, const char *message) {
    if (err != NULL && errlen > 0) {
        strncpy(err, message, errlen - 1);
        err[errlen - 1] = '\0';
    }
}

struct jpeg_encode_fail {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    // libjpeg's output buffer (malloc'ed by jpeg_mem_dest), here so an error path can free it.
    unsigned char *target;
    unsigned long size;
};

static void jpeg_encode_exit(j_common_ptr cinfo) {
    struct jpeg_encode_fail *fail = (struct jpeg_encode_fail *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, fail->message);
    longjmp(fail->jump, 1);
}

int tl_image_encode_jpeg(const uint8_t *pixels, int height, int width, int channels, int quality, uint8_t **out,
                         size_t *out_len, char *err, size_t errlen) {
    if (pixels == NULL || out == NULL || out_len == NULL || height <= 0 || width <= 0 ||
        (channels != 1 && channels != 3)) {
        encode_error(err, errlen, "bad arguments");
        return 1;
    }
    struct jpeg_compress_struct cinfo;
    struct jpeg_encode_fail fail;
    fail.target = NULL;
    fail.size = 0;
    cinfo.err = jpeg_std_error(&fail.base);
    fail.base.error_exit = jpeg_encode_exit;
    if (setjmp(fail.jump)) {
        encode_error(err, errlen, fail.message);
        jpeg_destroy_compress(&cinfo);
        free(fail.target);
        return 2;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &fail.target, &fail.size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality < 1 ? 1 : quality > 100 ? 100 : quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)width * (size_t)channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + stride * cinfo.next_scanline);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = fail.target;
    *out_len = fail.size;
    return 0;
}

struct png_sink {
    uint8_t *data;
    size_t len, cap;
};

static void png_write_memory(png_structp png, png_bytep in, png_size_t n) {
    struct png_sink *sink = png_get_io_ptr(png);
    if (sink->cap - sink->len < n) {
        size_t cap = sink->cap ? sink->cap : 4096;
        while (cap - sink->len < n) cap *= 2;
        uint8_t *grown = realloc(sink->data, cap);
        if (grown == NULL) png_error(png, "out of memory");
        sink->data = grown;
        sink->cap = cap;
    }
    memcpy(sink->data + sink->len, in, n);
    sink->len += n;
}

static void png_flush_nothing(png_structp png) { (void)png; }

int tl_image_encode_png(const uint8_t *pixels, int height, int width, int channels, uint8_t **out, size_t *out_len,
                        char *err, size_t errlen) {
    if (pixels == NULL || out == NULL || out_len == NULL || height <= 0 || width <= 0 ||
        (channels != 1 && channels != 3)) {
        encode_error(err, errlen, "bad arguments");
        return 1;
    }
    struct png_fail fail;
    struct png_sink sink = {NULL, 0, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &fail, tl_png_fail_exit, tl_png_quiet);
    if (png == NULL) {
        encode_error(err, errlen, "out of memory");
        return 4;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL || setjmp(fail.jump)) {
        encode_error(err, errlen, info == NULL ? "out of memory" : fail.message);
        png_destroy_write_struct(&png, info != NULL ? &info : NULL);
        free(sink.data);
        return 2;
    }
    png_set_write_fn(png, &sink, png_write_memory, png_flush_nothing);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)width * (size_t)channels;
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + stride * (size_t)y));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *out = sink.data;
    *out_len = sink.len;
    return 0;
}
