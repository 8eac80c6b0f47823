// CUDA loader: dlopen of libcuda / libnvrtc / libcublas, symbol resolution, cuInit, device
// queries and per-device setup (primary context, stream). See clearner_cuda.h for the API.
#define _GNU_SOURCE
#include "cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ------------------------------------------------------------------ error state
static __thread int tls_status;
static __thread char tls_message[2048];

void tl_cuda_copy_message(char *dst, size_t len, const char *src) {
    if (!dst || len == 0) return;
    size_t n = strlen(src);
    if (n >= len) n = len - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int tl_cuda_fail(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_message, sizeof tls_message, fmt, ap);
    va_end(ap);
    tls_status = status;
    return status;
}

int tl_cuda_last_error(char *buf, size_t len) {
    tl_cuda_copy_message(buf, len, tls_status ? tls_message : "");
    return tls_status;
}

#include <dlfcn.h>

tl_cu_api tl_cu;
tl_nvrtc_api tl_nvrtc;
tl_cublas_api tl_cublas;

// Library handles and what was loaded, for reports.
static void *lib_cuda, *lib_nvrtc, *lib_cublas;
static char lib_names[3][512];
static int driver_version;          // cuDriverGetVersion, 0 before init
int tl_nvrtc_major = -1, tl_nvrtc_minor = -1; // nvrtcVersion once loaded
static int init_status = -1;        // -1: not tried; else the status of the first tl_cuda_init
static char init_message[2048];
static int device_count;
static pthread_mutex_t loader_lock = PTHREAD_MUTEX_INITIALIZER;

static tl_cuda_device devices[TL_CUDA_MAX_DEVICES];
static pthread_mutex_t device_setup_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int tls_device;          // the calling thread's current device
static __thread CUcontext tls_bound_ctx; // the context this thread last made current

// ------------------------------------------------------------------ error checks
int tl_cuda_check_cu(CUresult r, const char *what, const char *file, int line) {
    if (r == CUDA_SUCCESS) return TL_CUDA_OK;
    const char *name = NULL, *desc = NULL;
    if (tl_cu.cuGetErrorName) tl_cu.cuGetErrorName(r, &name);
    if (tl_cu.cuGetErrorString) tl_cu.cuGetErrorString(r, &desc);
    int status = r == CUDA_ERROR_OUT_OF_MEMORY ? TL_CUDA_ERR_OUT_OF_MEMORY
                 : (r == CUDA_ERROR_NO_DEVICE || r == CUDA_ERROR_INVALID_DEVICE) ? TL_CUDA_ERR_NO_DEVICE
                                                                                 : TL_CUDA_ERR_DRIVER;
    if (!strncmp(what, "tl_cu.", 6)) what += 6; // "cuMemAlloc(...)" reads better than "tl_cu.cuMemAlloc(...)"
    return tl_cuda_fail(status, "%s failed: %s (%d): %s [%s:%d]", what, name ? name : "CUDA error", (int)r,
                        desc ? desc : "unknown", file, line);
}

int tl_cuda_check_nvrtc(nvrtcResult r, const char *what, const char *file, int line) {
    if (r == NVRTC_SUCCESS) return TL_CUDA_OK;
    const char *desc = tl_nvrtc.nvrtcGetErrorString ? tl_nvrtc.nvrtcGetErrorString(r) : "unknown";
    if (!strncmp(what, "tl_nvrtc.", 9)) what += 9;
    return tl_cuda_fail(TL_CUDA_ERR_NVRTC, "%s failed: %s (%d) [%s:%d]", what, desc, (int)r, file, line);
}

int tl_cuda_check_cublas(cublasStatus_t r, const char *what, const char *file, int line) {
    if (r == CUBLAS_STATUS_SUCCESS) return TL_CUDA_OK;
    const char *desc = tl_cublas.cublasGetStatusString ? tl_cublas.cublasGetStatusString(r) : "cuBLAS error";
    if (!strncmp(what, "tl_cublas.", 10)) what += 10;
    return tl_cuda_fail(r == CUBLAS_STATUS_ALLOC_FAILED ? TL_CUDA_ERR_OUT_OF_MEMORY : TL_CUDA_ERR_CUBLAS,
                        "%s failed: %s (%d) [%s:%d]", what, desc, (int)r, file, line);
}

// ------------------------------------------------------------------ dlopen helpers
#define TL_STR2(x) #x
#define TL_STR(x) TL_STR2(x) // stringifies after macro expansion: cuMemAlloc -> "cuMemAlloc_v2"

// Major CUDA version of a library file name such as libnvrtc.so.12 or libnvrtc.so.11.2; 0 if none.
static int soname_major(const char *name) {
    const char *p = strstr(name, ".so.");
    return p ? atoi(p + 4) : 0;
}

// Opens the override path from `env` if set, else the first candidate that loads and whose CUDA
// major version is at most `max_major` (0: any), copying what it opened into `name`. Appends
// every failure to `why`. Shared with the cuDNN loader (cuda_cudnn.c).
void *tl_cuda_open_library(const char *env, const char *const *candidates, int max_major, char *name, size_t namelen,
                           char *why, size_t whylen) {
    const char *override = getenv(env);
    size_t used = strlen(why);
    if (override && *override) {
        void *h = dlopen(override, RTLD_NOW | RTLD_LOCAL);
        if (h) {
            tl_cuda_copy_message(name, namelen, override);
            return h;
        }
        snprintf(why + used, whylen - used, "%s=%s: %s", env, override, dlerror());
        return NULL;
    }
    for (int i = 0; candidates[i]; i++) {
        int major = soname_major(candidates[i]);
        if (max_major > 0 && major > max_major) {
            used = strlen(why);
            snprintf(why + used, whylen - used, "%s%s: skipped (driver supports CUDA %d)", used ? "; " : "",
                     candidates[i], max_major);
            continue;
        }
        void *h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (h) {
            tl_cuda_copy_message(name, namelen, candidates[i]);
            return h;
        }
        used = strlen(why);
        snprintf(why + used, whylen - used, "%s%s", used ? "; " : "", dlerror());
    }
    return NULL;
}

static void *open_library(const char *env, const char *const *candidates, int max_major, int which, char *why,
                          size_t whylen) {
    return tl_cuda_open_library(env, candidates, max_major, lib_names[which], sizeof lib_names[which], why, whylen);
}

static const char *const cuda_names[] = {"libcuda.so.1", "libcuda.so", NULL};
static const char *const nvrtc_names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2",
                                          "libnvrtc.so.11.1", "libnvrtc.so.11.0", "libnvrtc.so", NULL};
static const char *const cublas_names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11",
                                           "libcublas.so", NULL};

// cuGetProcAddress as 11.x declares it (four arguments); NULL on drivers before 11.3.
static __typeof__(cuGetProcAddress) *get_proc_address;

// Driver symbol: cuGetProcAddress asked for the ABI of TL_CUDA_ABI_VERSION (so the returned
// function matches cuda_api.h's prototype), else dlsym of the versioned export name.
static void *driver_symbol(const char *plain, const char *versioned) {
    void *fn = NULL;
    if (get_proc_address) {
        CUresult r = get_proc_address(plain, &fn, TL_CUDA_ABI_VERSION, CU_GET_PROC_ADDRESS_DEFAULT);
        if (r != CUDA_SUCCESS) fn = NULL;
    }
    if (!fn) fn = dlsym(lib_cuda, versioned);
    return fn;
}

// Loads libcuda and every driver entry point, then cuInit(0). Called once, under loader_lock.
static int load_driver(void) {
    char why[1536] = "";
    lib_cuda = open_library("TEFLA_LIBCUDA", cuda_names, 0, 0, why, sizeof why);
    if (!lib_cuda)
        return tl_cuda_fail(TL_CUDA_ERR_LIBRARY,
                            "CUDA driver library not found (no NVIDIA driver on this machine?): %s", why);
    get_proc_address = (__typeof__(cuGetProcAddress) *)dlsym(lib_cuda, TL_STR(cuGetProcAddress));
    char missing[1024] = "";
#define TL_CU_LOAD(name)                                                                          \
    tl_cu.name = (__typeof__(name) *)driver_symbol(#name, TL_STR(name));                          \
    if (!tl_cu.name) {                                                                            \
        size_t u = strlen(missing);                                                               \
        snprintf(missing + u, sizeof missing - u, "%s%s", u ? ", " : "", TL_STR(name));           \
    }
    TL_CU_FUNCS(TL_CU_LOAD)
#undef TL_CU_LOAD
    if (missing[0])
        return tl_cuda_fail(TL_CUDA_ERR_LIBRARY, "%s lacks driver functions: %s (driver too old?)",
                            lib_names[0], missing);
    int s = TL_CU(tl_cu.cuInit(0));
    if (s) {
        // Keep the driver's own words but say what it means here.
        char inner[1600];
        tl_cuda_last_error(inner, sizeof inner);
        return tl_cuda_fail(TL_CUDA_ERR_NO_DEVICE, "CUDA unavailable (%s loaded, but cuInit failed): %s",
                            lib_names[0], inner);
    }
    if ((s = TL_CU(tl_cu.cuDriverGetVersion(&driver_version)))) return s;
    int count = 0;
    if ((s = TL_CU(tl_cu.cuDeviceGetCount(&count)))) return s;
    device_count = count > TL_CUDA_MAX_DEVICES ? TL_CUDA_MAX_DEVICES : count;
    if (device_count == 0) return tl_cuda_fail(TL_CUDA_ERR_NO_DEVICE, "CUDA driver loaded but it reports no device");
    return TL_CUDA_OK;
}

int tl_cuda_built_in(void) { return 1; }

int tl_cuda_init(char *err, size_t errlen) {
    pthread_mutex_lock(&loader_lock);
    if (init_status < 0) {
        int r = load_driver();
        if (r) tl_cuda_last_error(init_message, sizeof init_message);
        __atomic_store_n(&init_status, r, __ATOMIC_RELEASE); // after driver_version, device_count
    }
    int s = init_status;
    pthread_mutex_unlock(&loader_lock);
    if (s) {
        tl_cuda_fail(s, "%s", init_message);
        tl_cuda_copy_message(err, errlen, init_message);
    } else {
        tl_cuda_copy_message(err, errlen, "");
    }
    return s;
}

int tl_cuda_ensure_init(void) {
    int s = __atomic_load_n(&init_status, __ATOMIC_ACQUIRE);
    if (s == 0) return TL_CUDA_OK;
    return tl_cuda_init(NULL, 0);
}

// NVRTC: loaded on first need. When the driver is up, only versions it supports are tried
// (a newer NVRTC would emit code the driver cannot load).
static int nvrtc_status = -1;
static char nvrtc_message[2048];

int tl_cuda_ensure_nvrtc(void) {
    // Try the driver first (its failure is fine: NVRTC works without a GPU), so that a driver
    // that is present limits which NVRTC versions are tried.
    if (__atomic_load_n(&nvrtc_status, __ATOMIC_ACQUIRE) < 0 && __atomic_load_n(&init_status, __ATOMIC_ACQUIRE) < 0)
        (void)tl_cuda_init(NULL, 0);
    pthread_mutex_lock(&loader_lock);
    if (nvrtc_status < 0) {
        char why[1536] = "";
        int max_major = init_status == 0 ? driver_version / 1000 : 0;
        lib_nvrtc = open_library("TEFLA_LIBNVRTC", nvrtc_names, max_major, 1, why, sizeof why);
        if (!lib_nvrtc) {
            nvrtc_status = tl_cuda_fail(TL_CUDA_ERR_LIBRARY, "NVRTC library not found: %s", why);
        } else {
            char missing[512] = "";
#define TL_NV_REQ(name)                                                                       \
    tl_nvrtc.name = (__typeof__(name) *)dlsym(lib_nvrtc, TL_STR(name));                       \
    if (!tl_nvrtc.name) {                                                                     \
        size_t u = strlen(missing);                                                           \
        snprintf(missing + u, sizeof missing - u, "%s%s", u ? ", " : "", TL_STR(name));       \
    }
#define TL_NV_OPT(name) tl_nvrtc.name = (__typeof__(name) *)dlsym(lib_nvrtc, TL_STR(name));
            TL_NVRTC_FUNCS(TL_NV_REQ, TL_NV_OPT)
#undef TL_NV_REQ
#undef TL_NV_OPT
            if (missing[0]) {
                nvrtc_status = tl_cuda_fail(TL_CUDA_ERR_LIBRARY, "%s lacks %s", lib_names[1], missing);
            } else {
                tl_nvrtc.nvrtcVersion(&tl_nvrtc_major, &tl_nvrtc_minor);
                nvrtc_status = TL_CUDA_OK;
            }
        }
        if (nvrtc_status) tl_cuda_last_error(nvrtc_message, sizeof nvrtc_message);
    }
    int s = nvrtc_status;
    pthread_mutex_unlock(&loader_lock);
    if (s) tl_cuda_fail(s, "%s", nvrtc_message);
    return s;
}

int tl_cuda_nvrtc_available(char *err, size_t errlen) {
    int s = tl_cuda_ensure_nvrtc();
    if (s) tl_cuda_last_error(err, errlen);
    else tl_cuda_copy_message(err, errlen, "");
    return s;
}

// cuBLAS: loaded on the first sgemm (it pulls in the large libcublasLt).
static int cublas_status = -1;
static char cublas_message[2048];

int tl_cuda_ensure_cublas(void) {
    int s = tl_cuda_ensure_init();
    if (s) return s;
    pthread_mutex_lock(&loader_lock);
    if (cublas_status < 0) {
        char why[1536] = "";
        lib_cublas = open_library("TEFLA_LIBCUBLAS", cublas_names, driver_version / 1000, 2, why, sizeof why);
        if (!lib_cublas) {
            cublas_status = tl_cuda_fail(TL_CUDA_ERR_LIBRARY, "cuBLAS library not found: %s", why);
        } else {
            char missing[512] = "";
#define TL_CB_REQ(name)                                                                       \
    tl_cublas.name = (__typeof__(name) *)dlsym(lib_cublas, TL_STR(name));                     \
    if (!tl_cublas.name) {                                                                    \
        size_t u = strlen(missing);                                                           \
        snprintf(missing + u, sizeof missing - u, "%s%s", u ? ", " : "", TL_STR(name));       \
    }
#define TL_CB_OPT(name) tl_cublas.name = (__typeof__(name) *)dlsym(lib_cublas, TL_STR(name));
            TL_CUBLAS_FUNCS(TL_CB_REQ, TL_CB_OPT)
#undef TL_CB_REQ
#undef TL_CB_OPT
            cublas_status = missing[0] ? tl_cuda_fail(TL_CUDA_ERR_LIBRARY, "%s lacks %s", lib_names[2], missing)
                                       : TL_CUDA_OK;
        }
        if (cublas_status) tl_cuda_last_error(cublas_message, sizeof cublas_message);
    }
    s = cublas_status;
    pthread_mutex_unlock(&loader_lock);
    if (s) tl_cuda_fail(s, "%s", cublas_message);
    return s;
}

// ------------------------------------------------------------------ devices
int tl_cuda_device_count(void) { return tl_cuda_ensure_init() ? 0 : device_count; }

static int check_device(int device) {
    int s = tl_cuda_ensure_init();
    if (s) return s;
    if (device < 0 || device >= device_count)
        return tl_cuda_fail(TL_CUDA_ERR_NO_DEVICE, "no CUDA device %d (this machine has %d)", device, device_count);
    return TL_CUDA_OK;
}

int tl_cuda_device_name(int device, char *name, size_t len) {
    tl_cuda_copy_message(name, len, "");
    int s = check_device(device);
    if (s) return s;
    CUdevice dev;
    char buf[256];
    if ((s = TL_CU(tl_cu.cuDeviceGet(&dev, device)))) return s;
    if ((s = TL_CU(tl_cu.cuDeviceGetName(buf, (int)sizeof buf, dev)))) return s;
    tl_cuda_copy_message(name, len, buf);
    return TL_CUDA_OK;
}

static int device_attribute(int device, CUdevice_attribute attr, int *value) {
    int s = check_device(device);
    if (s) return s;
    CUdevice dev;
    if ((s = TL_CU(tl_cu.cuDeviceGet(&dev, device)))) return s;
    return TL_CU(tl_cu.cuDeviceGetAttribute(value, attr, dev));
}

int tl_cuda_device_capability(int device, int *major, int *minor) {
    int a = 0, b = 0;
    int s = device_attribute(device, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, &a);
    if (!s) s = device_attribute(device, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, &b);
    if (major) *major = a;
    if (minor) *minor = b;
    return s;
}

int tl_cuda_device_multiprocessors(int device, int *count) {
    int c = 0;
    int s = device_attribute(device, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, &c);
    if (count) *count = c;
    return s;
}

int tl_cuda_device_total_memory(int device, size_t *bytes) {
    if (bytes) *bytes = 0;
    int s = check_device(device);
    if (s) return s;
    CUdevice dev;
    size_t total = 0;
    if ((s = TL_CU(tl_cu.cuDeviceGet(&dev, device)))) return s;
    if ((s = TL_CU(tl_cu.cuDeviceTotalMem(&total, dev)))) return s;
    if (bytes) *bytes = total;
    return TL_CUDA_OK;
}

// First use of a device: primary context, stream, pool. Under device_setup_lock.
static int setup_device(int i) {
    tl_cuda_device *d = &devices[i];
    int s;
    d->index = i;
    if ((s = TL_CU(tl_cu.cuDeviceGet(&d->dev, i)))) return s;
    if ((s = TL_CU(tl_cu.cuDeviceGetName(d->name, (int)sizeof d->name, d->dev)))) return s;
    if ((s = TL_CU(tl_cu.cuDeviceGetAttribute(&d->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d->dev))))
        return s;
    if ((s = TL_CU(tl_cu.cuDeviceGetAttribute(&d->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d->dev))))
        return s;
    if ((s = TL_CU(tl_cu.cuDeviceGetAttribute(&d->sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, d->dev))))
        return s;
    if ((s = TL_CU(tl_cu.cuDeviceTotalMem(&d->total_mem, d->dev)))) return s;
    if ((s = TL_CU(tl_cu.cuDevicePrimaryCtxRetain(&d->ctx, d->dev)))) return s;
    if ((s = TL_CU(tl_cu.cuCtxSetCurrent(d->ctx)))) return s;
    tls_bound_ctx = d->ctx;
    // Non-blocking: no implicit sync with the legacy default stream (cuBLAS gets this stream too).
    if ((s = TL_CU(tl_cu.cuStreamCreate(&d->stream, CU_STREAM_NON_BLOCKING)))) return s;
    pthread_mutex_init(&d->lock, NULL);
    if ((s = tl_pool_setup(d))) return s;
    // Mapped host memory for the loss kernels' label reports; training works without it.
    void *fault = NULL;
    if (tl_cu.cuMemHostAlloc(&fault, 2 * sizeof(unsigned long long), CU_MEMHOSTALLOC_DEVICEMAP) == CUDA_SUCCESS) {
        if (tl_cu.cuMemHostGetDevicePointer(&d->label_fault_dev, fault, 0) == CUDA_SUCCESS) {
            d->label_fault = fault;
            d->label_fault[0] = ~0ull;
            d->label_fault[1] = 0;
        } else {
            tl_cu.cuMemFreeHost(fault);
        }
    }
    __atomic_store_n(&d->ready, 1, __ATOMIC_RELEASE);
    return TL_CUDA_OK;
}

int tl_cuda_current(tl_cuda_device **out) {
    int s = tl_cuda_ensure_init();
    if (s) return s;
    int i = tls_device;
    if (i < 0 || i >= device_count)
        return tl_cuda_fail(TL_CUDA_ERR_NO_DEVICE, "no CUDA device %d (this machine has %d)", i, device_count);
    tl_cuda_device *d = &devices[i];
    if (!__atomic_load_n(&d->ready, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&device_setup_lock);
        s = d->ready ? TL_CUDA_OK : setup_device(i);
        pthread_mutex_unlock(&device_setup_lock);
        if (s) return s;
    }
    // The context is current per thread; bind it on this thread's first call for the device.
    if (tls_bound_ctx != d->ctx) {
        if ((s = TL_CU(tl_cu.cuCtxSetCurrent(d->ctx)))) return s;
        tls_bound_ctx = d->ctx;
    }
    *out = d;
    return TL_CUDA_OK;
}

int tl_cuda_set_device(int device) {
    int s = check_device(device);
    if (s) return s;
    tls_device = device;
    tl_cuda_device *d;
    return tl_cuda_current(&d);
}

int tl_cuda_get_device(void) { return tls_device; }

tl_cuda_device *tl_cuda_device_at(int i) {
    if (i < 0 || i >= TL_CUDA_MAX_DEVICES) return NULL;
    return __atomic_load_n(&devices[i].ready, __ATOMIC_ACQUIRE) ? &devices[i] : NULL;
}

int tl_cuda_versions(int *driver, int *nvrtc_maj, int *nvrtc_min, int *cublas) {
    int s = tl_cuda_ensure_init();
    (void)tl_cuda_ensure_nvrtc(); // cheap, and the version is worth reporting
    if (driver) *driver = s ? -1 : driver_version;
    if (nvrtc_maj) *nvrtc_maj = tl_nvrtc_major;
    if (nvrtc_min) *nvrtc_min = tl_nvrtc_minor;
    if (cublas) {
        *cublas = -1;
        if (lib_cublas && tl_cublas.cublasGetProperty) {
            int a = 0, b = 0, c = 0;
            if (tl_cublas.cublasGetProperty(MAJOR_VERSION, &a) == CUBLAS_STATUS_SUCCESS &&
                tl_cublas.cublasGetProperty(MINOR_VERSION, &b) == CUBLAS_STATUS_SUCCESS &&
                tl_cublas.cublasGetProperty(PATCH_LEVEL, &c) == CUBLAS_STATUS_SUCCESS)
                *cublas = a * 10000 + b * 100 + c;
        }
    }
    return s;
}

const char *tl_cuda_library(int which) {
    if (which < 0 || which > 2) return "";
    return lib_names[which];
}

