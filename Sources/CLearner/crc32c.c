// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord framing needs.
//
// Two implementations behind one entry point:
//  - the SSE4.2 `crc32` instruction (8 bytes per instruction), compiled with a per-function
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
