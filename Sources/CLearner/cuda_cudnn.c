// cuDNN convolutions, loaded at run time like the other CUDA libraries (libcudnn.so.9, then
// .so.8; TEFLA_LIBCUDNN overrides). For each geometry and pass the fastest algorithm that fits
// the workspace limit is searched once (cudnnFind*AlgorithmEx, as PyTorch's cudnn.benchmark)
// and kept with its descriptors for the life of the process, per device.
//
// As for the rest of the toolkit (cuda_api.h), no cuDNN header is needed to build: the few
// types used are declared here from cuDNN's documented API: opaque handles, int enums and the
// algorithm-performance record. The loader itself needs no GPU, so a machine without cuDNN
// reports why it is absent even in CI.
#define _GNU_SOURCE
#include "cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlfcn.h>

// ------------------------------------------------------------------ the API used
typedef int cudnn_status;
typedef struct cudnn_context *cudnn_handle;
typedef struct cudnn_tensor *cudnn_tensor;
typedef struct cudnn_filter *cudnn_filter;
typedef struct cudnn_conv *cudnn_conv_desc;
enum { CUDNN_OK = 0, CUDNN_NCHW = 0, CUDNN_FLOAT = 0, CUDNN_CROSS_CORRELATION = 1 };
enum { CUDNN_DEFAULT_MATH = 0, CUDNN_FMA_MATH = 3 };
// cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t share this layout.
typedef struct cudnn_algo_perf {
    int algo;
    cudnn_status status;
    float time;
    size_t memory;
    int determinism;
    int math_type;
    int reserved[3];
} cudnn_algo_perf;

#define TL_CUDNN_FUNCS(X)                                                                                       \
    X(size_t, cudnnGetVersion, (void))                                                                          \
    X(const char *, cudnnGetErrorString, (cudnn_status))                                                        \
    X(cudnn_status, cudnnCreate, (cudnn_handle *))                                                              \
    X(cudnn_status, cudnnSetStream, (cudnn_handle, CUstream))                                                   \
    X(cudnn_status, cudnnCreateTensorDescriptor, (cudnn_tensor *))                                              \
    X(cudnn_status, cudnnSetTensor4dDescriptor, (cudnn_tensor, int, int, int, int, int, int))                   \
    X(cudnn_status, cudnnDestroyTensorDescriptor, (cudnn_tensor))                                               \
    X(cudnn_status, cudnnCreateFilterDescriptor, (cudnn_filter *))                                              \
    X(cudnn_status, cudnnSetFilter4dDescriptor, (cudnn_filter, int, int, int, int, int, int))                   \
    X(cudnn_status, cudnnDestroyFilterDescriptor, (cudnn_filter))                                               \
    X(cudnn_status, cudnnCreateConvolutionDescriptor, (cudnn_conv_desc *))                                      \
    X(cudnn_status, cudnnSetConvolution2dDescriptor, (cudnn_conv_desc, int, int, int, int, int, int, int, int)) \
    X(cudnn_status, cudnnSetConvolutionGroupCount, (cudnn_conv_desc, int))                                      \
    X(cudnn_status, cudnnSetConvolutionMathType, (cudnn_conv_desc, int))                                        \
    X(cudnn_status, cudnnDestroyConvolutionDescriptor, (cudnn_conv_desc))                                       \
    X(cudnn_status, cudnnGetConvolution2dForwardOutputDim,                                                      \
      (cudnn_conv_desc, cudnn_tensor, cudnn_filter, int *, int *, int *, int *))                                \
    X(cudnn_status, cudnnGetConvolutionForwardWorkspaceSize,                                                    \
      (cudnn_handle, cudnn_tensor, cudnn_filter, cudnn_conv_desc, cudnn_tensor, int, size_t *))                 \
    X(cudnn_status, cudnnGetConvolutionBackwardDataWorkspaceSize,                                               \
      (cudnn_handle, cudnn_filter, cudnn_tensor, cudnn_conv_desc, cudnn_tensor, int, size_t *))                 \
    X(cudnn_status, cudnnGetConvolutionBackwardFilterWorkspaceSize,                                             \
      (cudnn_handle, cudnn_tensor, cudnn_tensor, cudnn_conv_desc, cudnn_filter, int, size_t *))                 \
    X(cudnn_status, cudnnFindConvolutionForwardAlgorithmEx,                                                     \
      (cudnn_handle, cudnn_tensor, const void *, cudnn_filter, const void *, cudnn_conv_desc, cudnn_tensor,     \
       void *, int, int *, cudnn_algo_perf *, void *, size_t))                                                  \
    X(cudnn_status, cudnnFindConvolutionBackwardDataAlgorithmEx,                                                \
      (cudnn_handle, cudnn_filter, const void *, cudnn_tensor, const void *, cudnn_conv_desc, cudnn_tensor,     \
       void *, int, int *, cudnn_algo_perf *, void *, size_t))                                                  \
    X(cudnn_status, cudnnFindConvolutionBackwardFilterAlgorithmEx,                                              \
      (cudnn_handle, cudnn_tensor, const void *, cudnn_tensor, const void *, cudnn_conv_desc, cudnn_filter,     \
       void *, int, int *, cudnn_algo_perf *, void *, size_t))                                                  \
    X(cudnn_status, cudnnConvolutionForward,                                                                    \
      (cudnn_handle, const void *, cudnn_tensor, const void *, cudnn_filter, const void *, cudnn_conv_desc, int, \
       void *, size_t, const void *, cudnn_tensor, void *))                                                     \
    X(cudnn_status, cudnnConvolutionBackwardData,                                                               \
      (cudnn_handle, const void *, cudnn_filter, const void *, cudnn_tensor, const void *, cudnn_conv_desc, int, \
       void *, size_t, const void *, cudnn_tensor, void *))                                                     \
    X(cudnn_status, cudnnConvolutionBackwardFilter,                                                             \
      (cudnn_handle, const void *, cudnn_tensor, const void *, cudnn_tensor, const void *, cudnn_conv_desc, int, \
       void *, size_t, const void *, cudnn_filter, void *))

static struct {
#define TL_DNN_MEMBER(ret, name, args) ret(*name) args;
    TL_CUDNN_FUNCS(TL_DNN_MEMBER)
#undef TL_DNN_MEMBER
} dnn;

static const char *const cudnn_names[] = {"libcudnn.so.9", "libcudnn.so.8", "libcudnn.so", NULL};
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static int load_status = -1; // -1: not tried
static char load_message[1536], library_name[512];
static int loaded_version;

static int load_locked(void) {
    char why[1024] = "";
    void *lib = tl_cuda_open_library("TEFLA_LIBCUDNN", cudnn_names, 0, library_name, sizeof library_name, why, sizeof why);
    if (!lib)
        return tl_cuda_fail(TL_CUDA_ERR_LIBRARY,
                            "cuDNN not found: %s", why);
    char missing[512] = "";
#define TL_DNN_LOAD(ret, name, args)                                                        \
    dnn.name = (ret(*) args)dlsym(lib, #name);                                              \
    if (!dnn.name) {                                                                        \
        size_t u = strlen(missing);                                                         \
        snprintf(missing + u, sizeof missing - u, "%s%s", u ? ", " : "", #name);            \
    }
    TL_CUDNN_FUNCS(TL_DNN_LOAD)
#undef TL_DNN_LOAD
    if (missing[0]) return tl_cuda_fail(TL_CUDA_ERR_LIBRARY, "%s lacks %s", library_name, missing);
    loaded_version = (int)dnn.cudnnGetVersion();
    if (loaded_version < 8000)
        return tl_cuda_fail(TL_CUDA_ERR_LIBRARY, "%s is cuDNN %d; 8.0 or later is needed", library_name,
                            loaded_version);
    return TL_CUDA_OK;
}

int tl_cudnn_load(int *version, char *err, size_t errlen) {
    pthread_mutex_lock(&load_lock);
    if (load_status < 0) {
        load_status = load_locked();
        if (load_status) tl_cuda_last_error(load_message, sizeof load_message);
    }
    int s = load_status;
    pthread_mutex_unlock(&load_lock);
    if (version) *version = s ? 0 : loaded_version;
    if (s) {
        tl_cuda_fail(s, "%s", load_message);
        tl_cuda_copy_message(err, errlen, load_message);
    } else {
        tl_cuda_copy_message(err, errlen, "");
    }
    return s;
}

const char *tl_cudnn_library(void) { return load_status == 0 ? library_name : ""; }

static int check_dnn(cudnn_status r, const char *what, int line) {
    if (r == CUDNN_OK) return TL_CUDA_OK;
    const char *text = dnn.cudnnGetErrorString ? dnn.cudnnGetErrorString(r) : "cuDNN error";
    return tl_cuda_fail(TL_CUDA_ERR_CUDNN, "%s failed: %s (%d) [cuda_cudnn.c:%d]", what, text, (int)r, line);
}
#define TL_DNN(call, what) check_dnn((call), (what), __LINE__)

// ------------------------------------------------------------------ plans
// A plan: the descriptors of one geometry, pass and math mode, and the algorithm found for them.
typedef struct plan {
    int pass;
    tl_cudnn_conv geometry;
    int usable; // 0: cuDNN cannot take it (the caller falls back), kept so the search runs once
    cudnn_tensor x, y;
    cudnn_filter w;
    cudnn_conv_desc conv;
    int algo;
    size_t workspace;
} plan;

// Per-device cuDNN state: the handle on the device's stream, the plans, one shared workspace.
typedef struct dnn_device {
    pthread_mutex_t lock;
    cudnn_handle handle;
    plan *plans;
    int count, capacity;
    void *workspace;
    size_t workspace_size;
} dnn_device;

static dnn_device dnn_devices[TL_CUDA_MAX_DEVICES];
static pthread_once_t dnn_devices_once = PTHREAD_ONCE_INIT;
static void init_dnn_devices(void) {
    for (int i = 0; i < TL_CUDA_MAX_DEVICES; i++) pthread_mutex_init(&dnn_devices[i].lock, NULL);
}

int tl_cudnn_plan_count(void) {
    pthread_once(&dnn_devices_once, init_dnn_devices);
    dnn_device *dd = &dnn_devices[tl_cuda_get_device()];
    pthread_mutex_lock(&dd->lock);
    int n = dd->count;
    pthread_mutex_unlock(&dd->lock);
    return n;
}

// The workspace grown to at least `bytes` (stream order makes reuse across calls safe).
static int ensure_workspace(dnn_device *dd, size_t bytes) {
    if (bytes <= dd->workspace_size) return TL_CUDA_OK;
    if (dd->workspace) tl_cuda_free(dd->workspace);
    dd->workspace = NULL;
    dd->workspace_size = 0;
    int s = tl_cuda_malloc(bytes, &dd->workspace);
    if (s) return s;
    dd->workspace_size = bytes;
    return TL_CUDA_OK;
}

static int set_descriptors(plan *p) {
    const tl_cudnn_conv *g = &p->geometry;
    int s;
    if ((s = TL_DNN(dnn.cudnnCreateTensorDescriptor(&p->x), "cudnnCreateTensorDescriptor")) ||
        (s = TL_DNN(dnn.cudnnCreateTensorDescriptor(&p->y), "cudnnCreateTensorDescriptor")) ||
        (s = TL_DNN(dnn.cudnnCreateFilterDescriptor(&p->w), "cudnnCreateFilterDescriptor")) ||
        (s = TL_DNN(dnn.cudnnCreateConvolutionDescriptor(&p->conv), "cudnnCreateConvolutionDescriptor")))
        return s;
    if ((s = TL_DNN(dnn.cudnnSetTensor4dDescriptor(p->x, CUDNN_NCHW, CUDNN_FLOAT, g->batch, g->channels, g->height,
                                                   g->width),
                    "cudnnSetTensor4dDescriptor(x)")) ||
        (s = TL_DNN(dnn.cudnnSetTensor4dDescriptor(p->y, CUDNN_NCHW, CUDNN_FLOAT, g->batch, g->out_channels, g->out_h,
                                                   g->out_w),
                    "cudnnSetTensor4dDescriptor(y)")) ||
        (s = TL_DNN(dnn.cudnnSetFilter4dDescriptor(p->w, CUDNN_FLOAT, CUDNN_NCHW, g->out_channels,
                                                   g->channels / g->groups, g->kernel_h, g->kernel_w),
                    "cudnnSetFilter4dDescriptor")) ||
        (s = TL_DNN(dnn.cudnnSetConvolution2dDescriptor(p->conv, g->pad_h, g->pad_w, g->stride_h, g->stride_w,
                                                        g->dilation_h, g->dilation_w, CUDNN_CROSS_CORRELATION,
                                                        CUDNN_FLOAT),
                    "cudnnSetConvolution2dDescriptor")) ||
        (s = TL_DNN(dnn.cudnnSetConvolutionGroupCount(p->conv, g->groups), "cudnnSetConvolutionGroupCount")) ||
        (s = TL_DNN(dnn.cudnnSetConvolutionMathType(p->conv, g->fma_only ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH),
                    "cudnnSetConvolutionMathType")))
        return s;
    // cuDNN's own output size must be the caller's (a transposed convolution's output padding
    // can make them differ: then the built-in kernels take it).
    int n, c, h, w;
    if ((s = TL_DNN(dnn.cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &h, &w),
                    "cudnnGetConvolution2dForwardOutputDim")))
        return s;
    if (n != g->batch || c != g->out_channels || h != g->out_h || w != g->out_w)
        return tl_cuda_fail(TL_CUDA_ERR_UNSUPPORTED, "cuDNN's output %dx%dx%dx%d is not the layer's %dx%dx%dx%d", n, c,
                            h, w, g->batch, g->out_channels, g->out_h, g->out_w);
    return TL_CUDA_OK;
}

// Searches the fastest algorithm for p with up to `limit` bytes of workspace, running each
// candidate on the call's own buffers (the outputs are written anyway).
// The most workspace any of the pass's algorithms asks for (as cudnnFind would try them).
static size_t largest_workspace(dnn_device *dd, const plan *p) {
    // cuDNN's algorithm counts: 8 forward, 6 backward-data, 7 backward-filter algorithms.
    static const int counts[3] = {8, 6, 7};
    size_t most = 0;
    for (int algo = 0; algo < counts[p->pass]; algo++) {
        size_t need = 0;
        cudnn_status r;
        if (p->pass == TL_CUDNN_FORWARD)
            r = dnn.cudnnGetConvolutionForwardWorkspaceSize(dd->handle, p->x, p->w, p->conv, p->y, algo, &need);
        else if (p->pass == TL_CUDNN_BACKWARD_DATA)
            r = dnn.cudnnGetConvolutionBackwardDataWorkspaceSize(dd->handle, p->w, p->y, p->conv, p->x, algo, &need);
        else
            r = dnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(dd->handle, p->x, p->y, p->conv, p->w, algo, &need);
        if (r == CUDNN_OK && need > most) most = need; // an algorithm that cannot run here says so
    }
    return most;
}

static int find_algorithm(dnn_device *dd, plan *p, const float *a, const float *b, float *out, size_t limit) {
    // The workspace the algorithms ask for, up to the limit and to what the memory cap allows
    // (none at all is fine too): small convolutions search with little memory held.
    size_t most = largest_workspace(dd, p);
    size_t ws = most < limit ? most : limit;
    while (ws > 0 && ensure_workspace(dd, ws)) ws /= 2;
    ws = ws < dd->workspace_size ? ws : dd->workspace_size;
    cudnn_algo_perf perf[16];
    int found = 0, s;
    memset(perf, 0, sizeof perf);
    switch (p->pass) {
    case TL_CUDNN_FORWARD:
        s = TL_DNN(dnn.cudnnFindConvolutionForwardAlgorithmEx(dd->handle, p->x, a, p->w, b, p->conv, p->y, out, 16,
                                                              &found, perf, dd->workspace, ws),
                   "cudnnFindConvolutionForwardAlgorithmEx");
        break;
    case TL_CUDNN_BACKWARD_DATA:
        s = TL_DNN(dnn.cudnnFindConvolutionBackwardDataAlgorithmEx(dd->handle, p->w, b, p->y, a, p->conv, p->x, out,
                                                                   16, &found, perf, dd->workspace, ws),
                   "cudnnFindConvolutionBackwardDataAlgorithmEx");
        break;
    default:
        s = TL_DNN(dnn.cudnnFindConvolutionBackwardFilterAlgorithmEx(dd->handle, p->x, a, p->y, b, p->conv, p->w,
                                                                     out, 16, &found, perf, dd->workspace, ws),
                   "cudnnFindConvolutionBackwardFilterAlgorithmEx");
        break;
    }
    if (s) return s;
    // Results come fastest first; take the first that ran and fits.
    for (int i = 0; i < found; i++) {
        if (perf[i].status == CUDNN_OK && perf[i].memory <= ws) {
            p->algo = perf[i].algo;
            p->workspace = perf[i].memory;
            return TL_CUDA_OK;
        }
    }
    return tl_cuda_fail(TL_CUDA_ERR_UNSUPPORTED, "cuDNN found no algorithm for this convolution");
}

static void destroy_descriptors(plan *p) {
    if (p->x) dnn.cudnnDestroyTensorDescriptor(p->x);
    if (p->y) dnn.cudnnDestroyTensorDescriptor(p->y);
    if (p->w) dnn.cudnnDestroyFilterDescriptor(p->w);
    if (p->conv) dnn.cudnnDestroyConvolutionDescriptor(p->conv);
    p->x = p->y = NULL;
    p->w = NULL;
    p->conv = NULL;
}

// The plan for (pass, g) on device dd, searched now when new. Called with dd->lock held.
static int get_plan(dnn_device *dd, int pass, const tl_cudnn_conv *g, const float *a, const float *b, float *out,
                    size_t limit, plan **result) {
    for (int i = 0; i < dd->count; i++) {
        plan *p = &dd->plans[i];
        if (p->pass == pass && !memcmp(&p->geometry, g, sizeof *g)) {
            *result = p;
            return TL_CUDA_OK;
        }
    }
    if (dd->count == dd->capacity) {
        int cap = dd->capacity ? 2 * dd->capacity : 32;
        plan *grown = realloc(dd->plans, (size_t)cap * sizeof *grown);
        if (!grown) return tl_cuda_fail(TL_CUDA_ERR_OUT_OF_MEMORY, "no host memory for cuDNN plans");
        dd->plans = grown;
        dd->capacity = cap;
    }
    plan *p = &dd->plans[dd->count];
    memset(p, 0, sizeof *p);
    p->pass = pass;
    p->geometry = *g;
    int s = set_descriptors(p);
    if (!s) s = find_algorithm(dd, p, a, b, out, limit);
    if (s == TL_CUDA_ERR_OUT_OF_MEMORY || s == TL_CUDA_ERR_DRIVER) {
        destroy_descriptors(p);
        return s; // a device failure, not a property of the geometry: nothing is kept
    }
    p->usable = s == TL_CUDA_OK;
    if (!p->usable) destroy_descriptors(p);
    dd->count++;
    // The search may have grown the workspace to the limit: keep only what the plans use.
    size_t need = 0;
    for (int i = 0; i < dd->count; i++)
        if (dd->plans[i].usable && dd->plans[i].workspace > need) need = dd->plans[i].workspace;
    if (dd->workspace_size > need) {
        tl_cuda_free(dd->workspace);
        dd->workspace = NULL;
        dd->workspace_size = 0;
    }
    *result = p;
    return s ? TL_CUDA_ERR_UNSUPPORTED : TL_CUDA_OK;
}

int tl_cudnn_convolution(int pass, const tl_cudnn_conv *g, const float *a, const float *b, float *out,
                         size_t workspace_limit) {
    if (!g || !a || !b || !out || pass < TL_CUDNN_FORWARD || pass > TL_CUDNN_BACKWARD_FILTER)
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cudnn_convolution: bad arguments");
    if (g->batch <= 0 || g->channels <= 0 || g->out_channels <= 0 || g->groups <= 0 ||
        g->channels % g->groups || g->out_channels % g->groups)
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cudnn_convolution: bad geometry");
    int s = tl_cudnn_load(NULL, NULL, 0);
    if (s) return s;
    TL_DEVICE(d);
    pthread_once(&dnn_devices_once, init_dnn_devices);
    dnn_device *dd = &dnn_devices[d->index];
    pthread_mutex_lock(&dd->lock);
    if (!dd->handle) {
        cudnn_handle h = NULL;
        s = TL_DNN(dnn.cudnnCreate(&h), "cudnnCreate");
        if (!s) s = TL_DNN(dnn.cudnnSetStream(h, d->stream), "cudnnSetStream");
        if (s) goto done;
        dd->handle = h;
    }
    plan *p = NULL;
    if ((s = get_plan(dd, pass, g, a, b, out, workspace_limit, &p))) goto done;
    if (!p->usable) {
        s = tl_cuda_fail(TL_CUDA_ERR_UNSUPPORTED, "cuDNN cannot take this convolution");
        goto done;
    }
    if ((s = ensure_workspace(dd, p->workspace))) goto done;
    const float one = 1.0f, zero = 0.0f;
    int timed = tl_profile_begin(d);
    switch (pass) {
    case TL_CUDNN_FORWARD:
        s = TL_DNN(dnn.cudnnConvolutionForward(dd->handle, &one, p->x, a, p->w, b, p->conv, p->algo, dd->workspace,
                                               p->workspace, &zero, p->y, out),
                   "cudnnConvolutionForward");
        break;
    case TL_CUDNN_BACKWARD_DATA:
        s = TL_DNN(dnn.cudnnConvolutionBackwardData(dd->handle, &one, p->w, b, p->y, a, p->conv, p->algo,
                                                    dd->workspace, p->workspace, &zero, p->x, out),
                   "cudnnConvolutionBackwardData");
        break;
    default:
        s = TL_DNN(dnn.cudnnConvolutionBackwardFilter(dd->handle, &one, p->x, a, p->y, b, p->conv, p->algo,
                                                      dd->workspace, p->workspace, &zero, p->w, out),
                   "cudnnConvolutionBackwardFilter");
        break;
    }
    if (timed) tl_profile_end(d, TLP_CUDNN_FORWARD + pass);
done:
    pthread_mutex_unlock(&dd->lock);
    return s;
}

