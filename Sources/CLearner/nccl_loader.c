// NCCL loaded at run time (see clearner_nccl.h). The few declarations of nccl.h and cuda.h used
// here are restated with their fixed ABI values, so neither header is needed to build.
#include "clearner_nccl.h"

#include "error_slot.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char internal[TL_NCCL_UNIQUE_ID_BYTES]; } nccl_unique_id;
typedef void *nccl_comm;
typedef void *cu_stream;
enum { NCCL_SUCCESS = 0, NCCL_IN_PROGRESS = 7, NCCL_FLOAT32 = 7, NCCL_SUM = 0, CUDA_ERROR_NOT_READY = 600 };

static struct {
    void *nccl, *cuda;
    int status, version;
    int (*GetVersion)(int *);
    int (*GetUniqueId)(nccl_unique_id *);
    int (*CommInitRank)(nccl_comm *, int, nccl_unique_id, int);
    int (*AllReduce)(const void *, void *, size_t, int, int, nccl_comm, cu_stream);
    int (*Broadcast)(const void *, void *, size_t, int, int, nccl_comm, cu_stream);
    int (*CommGetAsyncError)(nccl_comm, int *);
    int (*CommAbort)(nccl_comm);
    int (*CommDestroy)(nccl_comm);
    const char *(*GetErrorString)(int);
    int (*StreamCreate)(cu_stream *, unsigned);
    int (*StreamQuery)(cu_stream);
} N;

// One stream per communicator, kept beside it.
typedef struct { nccl_comm comm; cu_stream stream; } handle;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];
static _Thread_local char last_error[512];

#define fail(...) TL_FAIL_INTO(last_error, __VA_ARGS__)

void tl_nccl_last_error(char *buf, size_t len) {
    if (len) snprintf(buf, len, "%s", last_error);
}

static int check(int rc, const char *what) {
    if (rc == NCCL_SUCCESS) return 0;
    return fail("%s failed: %s (NCCL error %d)", what, N.GetErrorString ? N.GetErrorString(rc) : "?", rc);
}

static void *sym(void *lib, const char *name, int *missing) {
    void *p = dlsym(lib, name);
    if (!p && !*missing) {
        *missing = 1;
        fail("symbol %s not found", name);
    }
    return p;
}

static void load_once(void) {
    const char *override = getenv("TEFLA_NCCL_LIBRARY");
    const char *name = override && *override ? override : "libnccl.so.2";
    N.nccl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    N.cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    int missing = 0;
    if (!N.nccl) {
        fail("%s could not be loaded: %s", name, dlerror());
        missing = 1;
    } else if (!N.cuda) {
        fail("libcuda.so.1 could not be loaded: %s", dlerror());
        missing = 1;
    } else {
        *(void **)&N.GetVersion = sym(N.nccl, "ncclGetVersion", &missing);
        *(void **)&N.GetUniqueId = sym(N.nccl, "ncclGetUniqueId", &missing);
        *(void **)&N.CommInitRank = sym(N.nccl, "ncclCommInitRank", &missing);
        *(void **)&N.AllReduce = sym(N.nccl, "ncclAllReduce", &missing);
        *(void **)&N.Broadcast = sym(N.nccl, "ncclBroadcast", &missing);
        *(void **)&N.CommGetAsyncError = sym(N.nccl, "ncclCommGetAsyncError", &missing);
        *(void **)&N.CommAbort = sym(N.nccl, "ncclCommAbort", &missing);
        *(void **)&N.CommDestroy = sym(N.nccl, "ncclCommDestroy", &missing);
        *(void **)&N.GetErrorString = sym(N.nccl, "ncclGetErrorString", &missing);
        *(void **)&N.StreamCreate = sym(N.cuda, "cuStreamCreate", &missing);
        *(void **)&N.StreamQuery = sym(N.cuda, "cuStreamQuery", &missing);
    }
    N.status = missing || check(N.GetVersion(&N.version), "ncclGetVersion");
    if (N.status) snprintf(load_error, sizeof load_error, "%s", last_error);
}

int tl_nccl_load(int *version) {
    pthread_once(&once, load_once);
    if (N.status) {
        snprintf(last_error, sizeof last_error, "%s", load_error);
        return N.status;
    }
    if (version) *version = N.version;
    return 0;
}

int tl_nccl_unique_id(uint8_t id[TL_NCCL_UNIQUE_ID_BYTES]) {
    if (tl_nccl_load(NULL)) return 1;
    nccl_unique_id u;
    if (check(N.GetUniqueId(&u), "ncclGetUniqueId")) return 1;
    memcpy(id, u.internal, sizeof u.internal);
    return 0;
}

int tl_nccl_init_rank(void **comm, int nranks, const uint8_t id[TL_NCCL_UNIQUE_ID_BYTES], int rank) {
    if (tl_nccl_load(NULL)) return 1;
    handle *h = calloc(1, sizeof *h);
    if (!h) return fail("out of memory");
    // A non-blocking stream (CU_STREAM_NON_BLOCKING = 1) in the current (primary) context.
    int rc = N.StreamCreate(&h->stream, 1);
    if (rc) {
        free(h);
        return fail("cuStreamCreate failed (CUDA error %d); is a CUDA device current?", rc);
    }
    nccl_unique_id u;
    memcpy(u.internal, id, sizeof u.internal);
    if (check(N.CommInitRank(&h->comm, nranks, u, rank), "ncclCommInitRank")) {
        free(h);
        return 1;
    }
    *comm = h;
    return 0;
}

int tl_nccl_all_reduce_sum(void *comm, float *buffer, size_t count) {
    handle *h = comm;
    return check(N.AllReduce(buffer, buffer, count, NCCL_FLOAT32, NCCL_SUM, h->comm, h->stream), "ncclAllReduce");
}

int tl_nccl_broadcast(void *comm, float *buffer, size_t count, int root) {
    handle *h = comm;
    return check(N.Broadcast(buffer, buffer, count, NCCL_FLOAT32, root, h->comm, h->stream), "ncclBroadcast");
}

int tl_nccl_poll(void *comm, int *done) {
    handle *h = comm;
    int async = NCCL_SUCCESS;
    if (check(N.CommGetAsyncError(h->comm, &async), "ncclCommGetAsyncError")) return 1;
    if (async != NCCL_SUCCESS && async != NCCL_IN_PROGRESS) return check(async, "an NCCL collective");
    int rc = N.StreamQuery(h->stream);
    if (rc != 0 && rc != CUDA_ERROR_NOT_READY) return fail("cuStreamQuery failed (CUDA error %d)", rc);
    *done = rc == 0;
    return 0;
}

void tl_nccl_abort(void *comm) {
    handle *h = comm;
    if (!h) return;
    N.CommAbort(h->comm);
    free(h);
}

int tl_nccl_destroy(void *comm) {
    handle *h = comm;
    int rc = check(N.CommDestroy(h->comm), "ncclCommDestroy");
    free(h);
    return rc;
}
