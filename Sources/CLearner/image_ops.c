// The per-pixel float loops of augmentation and the fused resample of the image pipeline.
//
// Every warp, resize, crop, rotation and perspective transform is one projective bilinear
// sampler, so they share one tested loop.

#include "clearner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
