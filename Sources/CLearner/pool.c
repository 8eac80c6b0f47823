// The engine's worker pool: the kernels' parallel loops and the split sgemms all run on it.
//
// One pool for everything because two pools on few cores fight: OpenBLAS's pthread workers
// spin for about 2^28 cycles (~0.1 s) after every sgemm, so on a two-core machine each of the
// element-wise, im2col and batch-norm passes that followed a convolution shared its two cores
// with a spinning BLAS thread. Here OpenBLAS runs single-threaded inside the pool's tasks, and
// the pool's own workers spin only briefly (200 µs, tl_pool_set_spin_ns) before they sleep.
//
// A job is `tasks` calls of fn(ctx, t); the caller takes tasks too and returns when all are
// done. One job at a time: a caller that finds the pool busy (another thread's job, or a
// nested call from inside a task) runs its tasks itself, in order.
#include "clearner.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

enum { MAX_WORKERS = 255 };

static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;  // held by the thread whose job runs
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int started;  // workers created (under job_lock)
// The job's generation (high 32 bits) and its next unclaimed task (low 32). A task is claimed by
// a compare-and-swap that also checks the generation, so a worker late from an earlier job can
// never claim a task of the next one with the earlier job's function.
static _Atomic uint64_t ticket;
static _Atomic int sleepers, pending, job_tasks, job_workers;
static tl_pool_task job_fn;  // written before the ticket that publishes the job, stable while it runs
static void *job_ctx;
static _Atomic long spin_ns = 200000;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint32_t generation_of(uint64_t t) { return (uint32_t)(t >> 32); }

static void take_tasks(uint32_t generation) {
    uint64_t t = atomic_load_explicit(&ticket, memory_order_acquire);
    for (;;) {
        if (generation_of(t) != generation || (int)(uint32_t)t >= atomic_load_explicit(&job_tasks, memory_order_relaxed)) return;
        if (!atomic_compare_exchange_weak_explicit(&ticket, &t, t + 1, memory_order_acq_rel, memory_order_acquire)) continue;
        job_fn(job_ctx, (int)(uint32_t)t);
        atomic_fetch_sub_explicit(&pending, 1, memory_order_release);
        t++;
    }
}

static void *worker(void *arg) {
    const int index = (int)(intptr_t)arg;
    uint32_t seen = generation_of(atomic_load(&ticket));
    for (;;) {
        // Spin a little for the next job: the kernels of a training step come microseconds apart.
        const uint64_t until = now_ns() + (uint64_t)atomic_load(&spin_ns);
        uint32_t g;
        int spins = 0;
        while ((g = generation_of(atomic_load_explicit(&ticket, memory_order_acquire))) == seen) {
            CPU_RELAX();
            if (++spins % 64 == 0 && now_ns() > until) break;
        }
        if (g == seen) {
            pthread_mutex_lock(&sleep_lock);
            atomic_fetch_add(&sleepers, 1);
            while ((g = generation_of(atomic_load(&ticket))) == seen) pthread_cond_wait(&wake, &sleep_lock);
            atomic_fetch_sub(&sleepers, 1);
            pthread_mutex_unlock(&sleep_lock);
        }
        seen = g;
        if (index < atomic_load_explicit(&job_workers, memory_order_relaxed)) take_tasks(g);
    }
    return NULL;
}

int tl_pool_run(int workers, int tasks, tl_pool_task fn, void *ctx) {
    if (workers > MAX_WORKERS + 1) workers = MAX_WORKERS + 1;
    if (workers <= 1 || tasks <= 1 || pthread_mutex_trylock(&job_lock) != 0) {
        for (int t = 0; t < tasks; t++) fn(ctx, t);
        return 0;
    }
    while (started < workers - 1) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int ok = pthread_create(&thread, &attr, worker, (void *)(intptr_t)started) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break;
        started++;
    }
    job_fn = fn;
    job_ctx = ctx;
    atomic_store_explicit(&job_tasks, tasks, memory_order_relaxed);
    atomic_store_explicit(&job_workers, workers - 1 < started ? workers - 1 : started, memory_order_relaxed);
    atomic_store_explicit(&pending, tasks, memory_order_relaxed);
    const uint32_t generation = generation_of(atomic_load(&ticket)) + 1;
    atomic_store_explicit(&ticket, (uint64_t)generation << 32, memory_order_seq_cst);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    take_tasks(generation);
    // The workers' last tasks take microseconds; a worker descheduled (more threads than cores)
    // gets the core back through sched_yield rather than waiting out a spin.
    for (long spins = 0; atomic_load_explicit(&pending, memory_order_acquire) > 0; spins++) {
        if (spins < (1 << 14)) CPU_RELAX(); else sched_yield();
    }
    pthread_mutex_unlock(&job_lock);
    return 1;
}

void tl_pool_set_spin_ns(long ns) { atomic_store(&spin_ns, ns < 0 ? 0 : ns); }
