// Copies between host and device, synchronisation and event timers, all on the current
// device's one stream (clearner_cuda.h says why one stream).
#include "cuda_internal.h"


int tl_cuda_memcpy_htod(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    return TL_CU(tl_cu.cuMemcpyHtoDAsync((CUdeviceptr)(uintptr_t)dst, src, bytes, d->stream));
}

int tl_cuda_memcpy_dtoh(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    int s = TL_CU(tl_cu.cuMemcpyDtoHAsync(dst, (CUdeviceptr)(uintptr_t)src, bytes, d->stream));
    if (s) return s;
    return TL_CU(tl_cu.cuStreamSynchronize(d->stream));
}

int tl_cuda_memcpy_dtod(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    return TL_CU(tl_cu.cuMemcpyDtoDAsync((CUdeviceptr)(uintptr_t)dst, (CUdeviceptr)(uintptr_t)src, bytes, d->stream));
}

int tl_cuda_synchronize(void) {
    TL_DEVICE(d);
    return TL_CU(tl_cu.cuStreamSynchronize(d->stream));
}

static int ensure_events(tl_cuda_device *d) {
    int s = TL_CUDA_OK;
    pthread_mutex_lock(&d->lock);
    if (!d->ev_start) s = TL_CU(tl_cu.cuEventCreate(&d->ev_start, CU_EVENT_DEFAULT));
    if (!s && !d->ev_stop) s = TL_CU(tl_cu.cuEventCreate(&d->ev_stop, CU_EVENT_DEFAULT));
    pthread_mutex_unlock(&d->lock);
    return s;
}

int tl_cuda_timer_start(void) {
    TL_DEVICE(d);
    int s = ensure_events(d);
    if (s) return s;
    return TL_CU(tl_cu.cuEventRecord(d->ev_start, d->stream));
}

int tl_cuda_timer_stop(float *ms) {
    if (ms) *ms = 0;
    TL_DEVICE(d);
    int s = ensure_events(d);
    if (!s) s = TL_CU(tl_cu.cuEventRecord(d->ev_stop, d->stream));
    if (!s) s = TL_CU(tl_cu.cuEventSynchronize(d->ev_stop));
    float t = 0;
    if (!s) s = TL_CU(tl_cu.cuEventElapsedTime(&t, d->ev_start, d->ev_stop));
    if (ms) *ms = t;
    return s;
}

