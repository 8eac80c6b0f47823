// The CUDA caching allocator: one pool per device.
//
// Blocks come from cuMemAlloc in size classes: multiples of 512 bytes up to 4 KiB, then 8
// classes per power of two (4.5 KiB, 5 KiB, ..., 8 KiB, 9 KiB, ...), so a block is at most 1/8
// larger than asked. tl_cuda_free pushes a block onto its class's free list and the next
// tl_cuda_malloc of that class pops it: no driver call, no synchronisation. This is safe
// because every use of device memory is queued on the device's one stream, so work queued
// after the reuse runs after the work queued before the free ("stream-ordered").
// Memory goes back to the driver only in tl_cuda_empty_cache, or when an allocation would
// otherwise fail or pass the cap (memory fraction * total device memory): then the stream is
// synchronised, every cached block is freed and the allocation is tried once more.
#include "cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Human-readable byte count ("1.50 GiB").
void tl_format_bytes(char *buf, size_t len, double bytes) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        u++;
    }
    if (u == 0) snprintf(buf, len, "%.0f B", bytes);
    else snprintf(buf, len, "%.2f %s", bytes, units[u]);
}

float tl_cuda_memory_fraction_value = 1.0f;


// ------------------------------------------------------------------ size classes
// Class index and rounded size of a request of n > 0 bytes; -1 when too large for any class.
static int size_class(size_t n, size_t *rounded) {
    if (n <= 4096) {
        size_t s = (n + 511) & ~(size_t)511;
        *rounded = s;
        return (int)(s / 512) - 1; // 0..7
    }
    int k = 63 - __builtin_clzll((unsigned long long)(n - 1)); // 2^k < n <= 2^(k+1), k >= 12
    size_t step = (size_t)1 << (k - 3);
    size_t s = (n + step - 1) & ~(step - 1);
    int idx = 8 + (k - 12) * 8 + (int)((s - ((size_t)1 << k)) / step) - 1;
    if (idx >= TL_POOL_CLASSES) return -1;
    *rounded = s;
    return idx;
}

// Size of class c (inverse of size_class).
static size_t class_bytes(int c) {
    if (c < 8) return (size_t)(c + 1) * 512;
    int k = 12 + (c - 8) / 8, j = (c - 8) % 8 + 1;
    return ((size_t)1 << k) + (size_t)j * ((size_t)1 << (k - 3));
}

// ------------------------------------------------------------------ block table
static size_t hash_ptr(CUdeviceptr p, size_t cap) {
    return (size_t)(((uint64_t)p >> 9) * 0x9E3779B97F4A7C15ull >> 17) & (cap - 1);
}

static tl_pool_entry *table_find(tl_pool *pool, CUdeviceptr p) {
    if (!pool->table_cap) return NULL;
    for (size_t i = hash_ptr(p, pool->table_cap);; i = (i + 1) & (pool->table_cap - 1)) {
        if (pool->table[i].ptr == p) return &pool->table[i];
        if (pool->table[i].ptr == 0) return NULL;
    }
}

static void table_put(tl_pool_entry *table, size_t cap, tl_pool_entry e) {
    size_t i = hash_ptr(e.ptr, cap);
    while (table[i].ptr != 0) i = (i + 1) & (cap - 1);
    table[i] = e;
}

// Rebuilds the table at `cap` slots keeping entries where keep(entry) holds.
static int table_rebuild(tl_pool *pool, size_t cap, int only_in_use) {
    tl_pool_entry *t = calloc(cap, sizeof *t);
    if (!t) return tl_cuda_fail(TL_CUDA_ERR_OUT_OF_MEMORY, "host out of memory growing the CUDA block table");
    size_t count = 0;
    for (size_t i = 0; i < pool->table_cap; i++) {
        tl_pool_entry e = pool->table[i];
        if (e.ptr == 0 || (only_in_use && !e.in_use)) continue;
        table_put(t, cap, e);
        count++;
    }
    free(pool->table);
    pool->table = t;
    pool->table_cap = cap;
    pool->table_count = count;
    return TL_CUDA_OK;
}

static int table_insert(tl_pool *pool, tl_pool_entry e) {
    if ((pool->table_count + 1) * 2 > pool->table_cap) {
        int s = table_rebuild(pool, pool->table_cap ? pool->table_cap * 2 : 1024, 0);
        if (s) return s;
    }
    table_put(pool->table, pool->table_cap, e);
    pool->table_count++;
    return TL_CUDA_OK;
}

// ------------------------------------------------------------------ pool
int tl_pool_setup(tl_cuda_device *d) {
    tl_pool *pool = &d->pool;
    pthread_mutex_init(&pool->lock, NULL);
    pool->stats.limit = (uint64_t)((double)tl_cuda_memory_fraction_value * (double)d->total_mem);
    return TL_CUDA_OK;
}

// Frees every cached block; caller holds pool->lock. Waits for the stream first: a cached
// block may still be read by work queued before it was freed.
static int release_cached(tl_cuda_device *d) {
    tl_pool *pool = &d->pool;
    if (pool->stats.cached == 0) return TL_CUDA_OK;
    int s = TL_CU(tl_cu.cuStreamSynchronize(d->stream));
    if (s) return s;
    for (int c = 0; c < TL_POOL_CLASSES; c++) {
        for (size_t i = 0; i < pool->free_count[c]; i++) {
            int r = TL_CU(tl_cu.cuMemFree(pool->free_list[c][i]));
            if (r && !s) s = r;
            pool->stats.driver_frees++;
        }
        pool->stats.cached -= (uint64_t)pool->free_count[c] * class_bytes(c);
        pool->free_count[c] = 0;
    }
    pool->stats.reserved = pool->stats.in_use + pool->stats.cached;
    int r = table_rebuild(pool, pool->table_cap ? pool->table_cap : 1024, 1);
    return s ? s : r;
}

static int out_of_memory(tl_cuda_device *d, size_t asked, size_t rounded, uint64_t cached_before, const char *why) {
    tl_pool *pool = &d->pool;
    size_t free_b = 0, total_b = 0;
    tl_cu.cuMemGetInfo(&free_b, &total_b);
    char a[32], r[32], u[32], c[32], l[32], t[32], f[32];
    tl_format_bytes(a, sizeof a, (double)asked);
    tl_format_bytes(r, sizeof r, (double)rounded);
    tl_format_bytes(u, sizeof u, (double)pool->stats.in_use);
    tl_format_bytes(c, sizeof c, (double)cached_before);
    tl_format_bytes(l, sizeof l, (double)pool->stats.limit);
    tl_format_bytes(t, sizeof t, (double)d->total_mem);
    tl_format_bytes(f, sizeof f, (double)free_b);
    pool->stats.oom_count++;
    return tl_cuda_fail(TL_CUDA_ERR_OUT_OF_MEMORY,
                        "CUDA out of memory on device %d (%s): tried to allocate %s (size class %s); %s held by "
                        "live tensors, %s cached in the allocator%s; pool cap %s (memory fraction %.3g of %s); "
                        "the driver reports %s free (%s)",
                        d->index, d->name, a, r, u, c, cached_before ? " (released, then retried)" : "", l,
                        (double)tl_cuda_memory_fraction_value, t, f, why);
}

int tl_cuda_malloc(size_t size, void **ptr) {
    if (!ptr) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_malloc: ptr is NULL");
    *ptr = NULL;
    if (size == 0) return TL_CUDA_OK;
    tl_cuda_device *d;
    int s = tl_cuda_current(&d);
    if (s) return s;
    tl_pool *pool = &d->pool;
    size_t rounded = 0;
    int c = size_class(size, &rounded);
    pthread_mutex_lock(&pool->lock);
    if (c < 0) {
        s = out_of_memory(d, size, size, pool->stats.cached, "larger than any size class");
        pthread_mutex_unlock(&pool->lock);
        return s;
    }
    CUdeviceptr p = 0;
    if (pool->free_count[c] > 0) {
        // Cache hit.
        p = pool->free_list[c][--pool->free_count[c]];
        tl_pool_entry *e = table_find(pool, p);
        if (e) e->in_use = 1;
        pool->stats.cached -= rounded;
        pool->stats.cache_hits++;
    } else {
        uint64_t cached_before = pool->stats.cached;
        const char *why = NULL;
        if (pool->stats.reserved + rounded > pool->stats.limit) {
            s = release_cached(d);
            if (s) goto done;
            if (pool->stats.reserved + rounded > pool->stats.limit) why = "the pool cap would be passed";
        }
        if (!why) {
            CUresult r = tl_cu.cuMemAlloc(&p, rounded);
            if (r == CUDA_ERROR_OUT_OF_MEMORY) {
                s = release_cached(d);
                if (s) goto done;
                r = tl_cu.cuMemAlloc(&p, rounded);
            }
            if (r == CUDA_ERROR_OUT_OF_MEMORY) {
                why = "cuMemAlloc failed";
            } else if (r != CUDA_SUCCESS) {
                s = TL_CU(r);
                goto done;
            }
        }
        if (why) {
            s = out_of_memory(d, size, rounded, cached_before, why);
            goto done;
        }
        pool->stats.driver_allocs++;
        tl_pool_entry e = {p, (uint32_t)c, 1};
        if ((s = table_insert(pool, e))) {
            tl_cu.cuMemFree(p);
            goto done;
        }
    }
    pool->stats.in_use += rounded;
    pool->stats.reserved = pool->stats.in_use + pool->stats.cached;
    if (pool->stats.in_use > pool->stats.peak_in_use) pool->stats.peak_in_use = pool->stats.in_use;
    if (pool->stats.reserved > pool->stats.peak_reserved) pool->stats.peak_reserved = pool->stats.reserved;
    pool->stats.alloc_count++;
    *ptr = (void *)(uintptr_t)p;
done:
    pthread_mutex_unlock(&pool->lock);
    return s;
}

// Returns the block to its pool's free list; the caller holds pool->lock.
static int pool_release(tl_pool *pool, tl_pool_entry *e) {
    int c = (int)e->cls;
    if (pool->free_count[c] == pool->free_cap[c]) {
        size_t cap = pool->free_cap[c] ? pool->free_cap[c] * 2 : 16;
        CUdeviceptr *list = realloc(pool->free_list[c], cap * sizeof *list);
        if (!list) return tl_cuda_fail(TL_CUDA_ERR_OUT_OF_MEMORY, "host out of memory growing a CUDA free list");
        pool->free_list[c] = list;
        pool->free_cap[c] = cap;
    }
    pool->free_list[c][pool->free_count[c]++] = e->ptr;
    e->in_use = 0;
    size_t bytes = class_bytes(c);
    pool->stats.in_use -= bytes;
    pool->stats.cached += bytes;
    return TL_CUDA_OK;
}

int tl_cuda_free(void *ptr) {
    if (!ptr) return TL_CUDA_OK;
    CUdeviceptr p = (CUdeviceptr)(uintptr_t)ptr;
    // The block's pool: usually the current device's, else any other device in use.
    int cur = tl_cuda_get_device();
    for (int k = -1; k < TL_CUDA_MAX_DEVICES; k++) {
        if (k == cur) continue;
        tl_cuda_device *d = tl_cuda_device_at(k < 0 ? cur : k);
        if (!d) continue;
        tl_pool *pool = &d->pool;
        pthread_mutex_lock(&pool->lock);
        tl_pool_entry *e = table_find(pool, p);
        int s = TL_CUDA_OK;
        if (e) {
            s = e->in_use ? pool_release(pool, e)
                          : tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_free: double free of device pointer %p", ptr);
        }
        pthread_mutex_unlock(&pool->lock);
        if (e) return s;
    }
    return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_free: %p was not allocated by tl_cuda_malloc", ptr);
}

int tl_cuda_set_memory_fraction(float fraction) {
    if (!(fraction > 0.0f && fraction <= 1.0f))
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "memory fraction must be in (0, 1], got %g", (double)fraction);
    tl_cuda_memory_fraction_value = fraction;
    for (int i = 0; i < TL_CUDA_MAX_DEVICES; i++) {
        tl_cuda_device *d = tl_cuda_device_at(i);
        if (!d) continue;
        pthread_mutex_lock(&d->pool.lock);
        d->pool.stats.limit = (uint64_t)((double)fraction * (double)d->total_mem);
        pthread_mutex_unlock(&d->pool.lock);
    }
    return TL_CUDA_OK;
}

int tl_cuda_empty_cache(void) {
    tl_cuda_device *d;
    int s = tl_cuda_current(&d);
    if (s) return s;
    pthread_mutex_lock(&d->pool.lock);
    s = release_cached(d);
    pthread_mutex_unlock(&d->pool.lock);
    return s;
}

int tl_cuda_memory_stats(tl_cuda_mem_stats *out) {
    if (!out) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_memory_stats: out is NULL");
    memset(out, 0, sizeof *out);
    tl_cuda_device *d;
    int s = tl_cuda_current(&d);
    if (s) return s;
    pthread_mutex_lock(&d->pool.lock);
    *out = d->pool.stats;
    pthread_mutex_unlock(&d->pool.lock);
    return TL_CUDA_OK;
}

int tl_cuda_reset_peak_memory(void) {
    tl_cuda_device *d;
    int s = tl_cuda_current(&d);
    if (s) return s;
    pthread_mutex_lock(&d->pool.lock);
    d->pool.stats.peak_in_use = d->pool.stats.in_use;
    d->pool.stats.peak_reserved = d->pool.stats.reserved;
    pthread_mutex_unlock(&d->pool.lock);
    return TL_CUDA_OK;
}

