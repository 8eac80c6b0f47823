// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord framing needs.
//
// Two implementations behind one entry point:
//  - the SSE4.2 `crc32` instruction (8 bytes per instruction, three streams at once on long
//    buffers), compiled with a per-function
//    target attribute so the package needs no -msse4.2 flag and still runs on any x86-64;
//  - a portable slicing-by-8 table implementation for other CPUs and as a test reference.
// The choice is made once, at first use, with __builtin_cpu_supports.
#include "clearner.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

// ---------------------------------------------------------------- table (slicing-by-8)

static uint32_t crc_table[8][256];

/// Builds the eight 256-entry tables; run once through pthread_once.
static void crc32c_init_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = crc_table[0][n];
        for (int t = 1; t < 8; t++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[t][n] = c;
        }
    }
}

static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc32c_table_once(void) { pthread_once(&crc_table_once, crc32c_init_table); }

static inline uint64_t load_le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

uint32_t tl_crc32c_extend_table(uint32_t crc, const void *data, size_t len) {
    crc32c_table_once();
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = ~crc;
    // Align to 8 bytes so the wide loads below are cheap.
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t w = load_le64(p) ^ c;
        c = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
            crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
            crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
            crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len-- > 0) c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

// ---------------------------------------------------------------- SSE4.2

#if defined(__x86_64__) || defined(__i386__)
#define TL_HAVE_X86 1

// The crc32 instruction has a latency of 3 cycles and a throughput of one per cycle, so one
// dependent chain runs at a third of its speed. Long buffers are cut into three equal blocks
// whose CRCs run interleaved, then joined: crc(A B) = shift(crc(A), |B|) ^ crc(B from 0), where
// shift multiplies by x^(8|B|) modulo the polynomial, done with four table look-ups for a block
// size fixed in advance (the scheme of Intel's crc_pcl and Mark Adler's crc32c.c).
#define CRC_LONG 1024
#define CRC_SHORT 128

static uint32_t crc_shift_long[4][256];
static uint32_t crc_shift_short[4][256];

static uint32_t gf2_matrix_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1) sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_matrix_square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2_matrix_times(mat, mat[n]);
}

/// The operator appending `len` zero bytes (a power of two) to a CRC register, in `even`.
static void crc32c_zeros_op(uint32_t *even, size_t len) {
    uint32_t odd[32];
    odd[0] = CRC32C_POLY; // one zero bit
    uint32_t row = 1;
    for (int n = 1; n < 32; n++) {
        odd[n] = row;
        row <<= 1;
    }
    gf2_matrix_square(even, odd); // two zero bits
    gf2_matrix_square(odd, even); // four
    do {
        gf2_matrix_square(even, odd); // first pass: one zero byte
        len >>= 1;
        if (len == 0) return;
        gf2_matrix_square(odd, even);
        len >>= 1;
    } while (len);
    memcpy(even, odd, sizeof odd);
}

static void crc32c_zeros(uint32_t zeros[4][256], size_t len) {
    uint32_t op[32];
    crc32c_zeros_op(op, len);
    for (uint32_t n = 0; n < 256; n++) {
        for (int b = 0; b < 4; b++) zeros[b][n] = gf2_matrix_times(op, n << (8 * b));
    }
}

static void crc32c_init_shifts(void) {
    crc32c_zeros(crc_shift_long, CRC_LONG);
    crc32c_zeros(crc_shift_short, CRC_SHORT);
}

static pthread_once_t crc_shift_once = PTHREAD_ONCE_INIT;

static inline uint32_t crc32c_shift(uint32_t zeros[4][256], uint32_t crc) {
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

#if defined(__x86_64__)
/// Runs blocks of `block` bytes three at a time while they last; returns the register.
__attribute__((target("sse4.2")))
static inline uint64_t crc32c_three_way(uint64_t c0, const uint8_t **next, size_t *len, size_t block,
                                        uint32_t zeros[4][256]) {
    const uint8_t *p = *next;
    while (*len >= 3 * block) {
        uint64_t c1 = 0, c2 = 0;
        const uint8_t *end = p + block;
        do {
            uint64_t a, b, d;
            memcpy(&a, p, 8);
            memcpy(&b, p + block, 8);
            memcpy(&d, p + 2 * block, 8);
            c0 = __builtin_ia32_crc32di(c0, a);
            c1 = __builtin_ia32_crc32di(c1, b);
            c2 = __builtin_ia32_crc32di(c2, d);
            p += 8;
        } while (p < end);
        c0 = crc32c_shift(zeros, (uint32_t)c0) ^ c1;
        c0 = crc32c_shift(zeros, (uint32_t)c0) ^ c2;
        p += 2 * block;
        *len -= 3 * block;
    }
    *next = p;
    return c0;
}
#endif

__attribute__((target("sse4.2")))
static uint32_t crc32c_extend_sse42(uint32_t crc, const void *data, size_t len) {
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = ~crc;
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = __builtin_ia32_crc32qi(c, *p++);
        len--;
    }
#if defined(__x86_64__)
    uint64_t c64 = c;
    if (len >= 3 * CRC_SHORT) {
        pthread_once(&crc_shift_once, crc32c_init_shifts);
        c64 = crc32c_three_way(c64, &p, &len, CRC_LONG, crc_shift_long);
        c64 = crc32c_three_way(c64, &p, &len, CRC_SHORT, crc_shift_short);
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = __builtin_ia32_crc32di(c64, w);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
#endif
    while (len >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        c = __builtin_ia32_crc32si(c, w);
        p += 4;
        len -= 4;
    }
    while (len-- > 0) c = __builtin_ia32_crc32qi(c, *p++);
    return ~c;
}
#endif

// ---------------------------------------------------------------- dispatch

/// -1 = not yet probed, 0 = table, 1 = SSE4.2.
static int crc_impl = -1;

static int crc32c_probe(void) {
    int impl = __atomic_load_n(&crc_impl, __ATOMIC_RELAXED);
    if (impl >= 0) return impl;
#ifdef TL_HAVE_X86
    __builtin_cpu_init();
    impl = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
    impl = 0;
#endif
    __atomic_store_n(&crc_impl, impl, __ATOMIC_RELAXED);
    return impl;
}

int tl_crc32c_uses_hardware(void) { return crc32c_probe(); }

uint32_t tl_crc32c_extend(uint32_t crc, const void *data, size_t len) {
#ifdef TL_HAVE_X86
    if (crc32c_probe() == 1) return crc32c_extend_sse42(crc, data, len);
#endif
    return tl_crc32c_extend_table(crc, data, len);
}

uint32_t tl_masked_crc32c(const void *data, size_t len) {
    uint32_t crc = tl_crc32c_extend(0, data, len);
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
