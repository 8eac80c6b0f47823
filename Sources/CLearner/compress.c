// Streaming GZIP/ZLIB for compressed TFRecord files, over zlib.
//
// zlib's init calls are macros and its z_stream is a C struct with callbacks, neither of which
// Swift imports well, so the streams live here behind opaque handles. Both sides stream through
// fixed buffers: a shard of any size costs TL_Z_CHUNK bytes of compressed data in memory plus
// whatever the caller's buffer holds, never the whole file.
#include "clearner.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define TL_Z_CHUNK (256 * 1024)

/// zlib's windowBits for each mode: 15 + 16 selects the GZIP wrapper, 15 alone the ZLIB one.
static int window_bits(int mode) { return mode == TL_COMPRESSION_GZIP ? 15 + 16 : 15; }

static void set_error(char *err, size_t errlen, const char *message) {
    if (err != NULL && errlen > 0) {
        strncpy(err, message != NULL ? message : "unknown zlib error", errlen - 1);
        err[errlen - 1] = '\0';
    }
}

struct tl_zreader {
    int fd;
    int mode;
    int finished;     // the last member's trailer has been read and the file has no more input
    int input_eof;    // read(2) returned 0
    z_stream z;
    unsigned char in[TL_Z_CHUNK];
};

int tl_zreader_open(int fd, int mode, tl_zreader **out) {
    if (out == NULL || (mode != TL_COMPRESSION_GZIP && mode != TL_COMPRESSION_ZLIB)) return 1;
    *out = NULL;
    tl_zreader *r = calloc(1, sizeof *r);
    if (r == NULL) return 2;
    r->fd = fd;
    r->mode = mode;
    if (inflateInit2(&r->z, window_bits(mode)) != Z_OK) {
        free(r);
        return 3;
    }
    *out = r;
    return 0;
}

void tl_zreader_free(tl_zreader *r) {
    if (r == NULL) return;
    inflateEnd(&r->z);
    free(r);
}

// Reads the next block of compressed input when the buffer is empty; sets input_eof at the
// end of the file. 0 on success, -1 with the error message on a read failure.
static int refill(tl_zreader *r, char *err, size_t errlen) {
    if (r->z.avail_in != 0 || r->input_eof) return 0;
    ssize_t got;
    do {
        got = read(r->fd, r->in, sizeof r->in);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        set_error(err, errlen, strerror(errno));
        return -1;
    }
    if (got == 0) r->input_eof = 1;
    r->z.next_in = r->in;
    r->z.avail_in = (uInt)got;
    return 0;
}

long tl_zreader_read(tl_zreader *r, void *buf, size_t cap, char *err, size_t errlen) {
    if (r == NULL || buf == NULL) return -1;
    if (cap == 0 || r->finished) return 0;
    r->z.next_out = buf;
    r->z.avail_out = (uInt)(cap > 0x40000000u ? 0x40000000u : cap);
    uInt want = r->z.avail_out;
    while (r->z.avail_out == want) {
        if (refill(r, err, errlen) != 0) return -1;
        if (r->z.avail_in == 0 && r->input_eof) {
            // Input ended inside a stream: the file was cut short.
            set_error(err, errlen, "compressed stream ends early (file truncated)");
            return -1;
        }
        int rc = inflate(&r->z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            // GZIP allows concatenated members (`cat a.gz b.gz`); go on when more input follows.
            if (r->mode == TL_COMPRESSION_GZIP) {
                if (refill(r, err, errlen) != 0) return -1;
                if (r->z.avail_in > 0) {
                    inflateReset(&r->z);
                    continue;
                }
            }
            r->finished = 1;
            break;
        }
        if (rc == Z_BUF_ERROR && r->z.avail_in == 0) continue;  // needs more input
        if (rc != Z_OK) {
            set_error(err, errlen, r->z.msg != NULL ? r->z.msg : "invalid compressed data");
            return -1;
        }
    }
    return (long)(want - r->z.avail_out);
}

struct tl_zwriter {
    int fd;
    z_stream z;
    unsigned char out[TL_Z_CHUNK];
};

int tl_zwriter_open(int fd, int mode, int level, tl_zwriter **out) {
    if (out == NULL || (mode != TL_COMPRESSION_GZIP && mode != TL_COMPRESSION_ZLIB)) return 1;
    *out = NULL;
    tl_zwriter *w = calloc(1, sizeof *w);
    if (w == NULL) return 2;
    w->fd = fd;
    if (level < -1 || level > 9) level = Z_DEFAULT_COMPRESSION;
    if (deflateInit2(&w->z, level, Z_DEFLATED, window_bits(mode), 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(w);
        return 3;
    }
    *out = w;
    return 0;
}

void tl_zwriter_free(tl_zwriter *w) {
    if (w == NULL) return;
    deflateEnd(&w->z);
    free(w);
}

/// Runs deflate with `flush` until it has consumed its input (or finished), writing full chunks.
static int pump(tl_zwriter *w, int flush, char *err, size_t errlen) {
    for (;;) {
        w->z.next_out = w->out;
        w->z.avail_out = sizeof w->out;
        int rc = deflate(&w->z, flush);
        if (rc == Z_STREAM_ERROR) {
            set_error(err, errlen, "deflate failed");
            return -1;
        }
        size_t have = sizeof w->out - w->z.avail_out;
        size_t done = 0;
        while (done < have) {
            ssize_t wrote = write(w->fd, w->out + done, have - done);
            if (wrote < 0) {
                if (errno == EINTR) continue;
                set_error(err, errlen, strerror(errno));
                return -1;
            }
            done += (size_t)wrote;
        }
        if (flush == Z_FINISH ? rc == Z_STREAM_END : (w->z.avail_out != 0 && w->z.avail_in == 0)) return 0;
    }
}

int tl_zwriter_write(tl_zwriter *w, const void *data, size_t len, char *err, size_t errlen) {
    if (w == NULL) return -1;
    const unsigned char *p = data;
    while (len > 0) {
        uInt n = (uInt)(len > 0x40000000u ? 0x40000000u : len);
        w->z.next_in = (unsigned char *)p;
        w->z.avail_in = n;
        if (pump(w, Z_NO_FLUSH, err, errlen) != 0) return -1;
        p += n;
        len -= n;
    }
    return 0;
}

int tl_zwriter_finish(tl_zwriter *w, char *err, size_t errlen) {
    if (w == NULL) return -1;
    w->z.next_in = NULL;
    w->z.avail_in = 0;
    return pump(w, Z_FINISH, err, errlen);
}

long tl_zlib_uncompress(const void *src, size_t len, void *dst, size_t cap) {
    uLongf out = cap;
    int rc = uncompress(dst, &out, src, len);
    return rc == Z_OK ? (long)out : -1;
}
