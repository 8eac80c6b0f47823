// MPI loaded at run time (see clearner_mpi.h). The two ABIs in use differ in their handle
// types: Open MPI's MPI_Comm, MPI_Datatype, MPI_Op and MPI_Request are pointers (the
// predefined ones are addresses of exported globals such as ompi_mpi_comm_world), MPICH's are
// integers with fixed values. Each wrapper calls the entry point through the right signature.
#include "clearner_mpi.h"

#include "error_slot.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum abi { ABI_NONE, ABI_OMPI, ABI_MPICH };

typedef void *ohandle; // Open MPI handle
typedef int ihandle;   // MPICH handle

static struct {
    enum abi abi;
    void *lib;
    char name[256];
    int initialised_here;
    int status; // result of the first tl_mpi_init
    int rank, size;
    ohandle ocomm, otypes[3], osum;
    int (*Initialized)(int *);
    int (*Init_thread)(int *, char ***, int, int *);
    int (*Finalize)(void);
    int (*Error_string)(int, char *, int *);
    union {
        struct {
            int (*Comm_rank)(ohandle, int *);
            int (*Comm_size)(ohandle, int *);
            int (*Abort)(ohandle, int);
            int (*Iallreduce)(const void *, void *, int, ohandle, ohandle, ohandle, ohandle *);
            int (*Ibcast)(void *, int, ohandle, int, ohandle, ohandle *);
            int (*Ibarrier)(ohandle, ohandle *);
            int (*Isend)(const void *, int, ohandle, int, int, ohandle, ohandle *);
            int (*Irecv)(void *, int, ohandle, int, int, ohandle, ohandle *);
            int (*Test)(ohandle *, int *, void *);
            int (*Cancel)(ohandle *);
            int (*Request_free)(ohandle *);
        } o;
        struct {
            int (*Comm_rank)(ihandle, int *);
            int (*Comm_size)(ihandle, int *);
            int (*Abort)(ihandle, int);
            int (*Iallreduce)(const void *, void *, int, ihandle, ihandle, ihandle, ihandle *);
            int (*Ibcast)(void *, int, ihandle, int, ihandle, ihandle *);
            int (*Ibarrier)(ihandle, ihandle *);
            int (*Isend)(const void *, int, ihandle, int, int, ihandle, ihandle *);
            int (*Irecv)(void *, int, ihandle, int, int, ihandle, ihandle *);
            int (*Test)(ihandle *, int *, void *);
            int (*Cancel)(ihandle *);
            int (*Request_free)(ihandle *);
        } i;
    } f;
} M;

// MPICH's predefined handles (mpi.h of MPICH 3 and 4).
static const ihandle MPICH_COMM_WORLD = 0x44000000;
static const ihandle MPICH_TYPES[3] = {0x4c00040a /* FLOAT */, 0x4c00080b /* DOUBLE */, 0x4c00010d /* BYTE */};
static const ihandle MPICH_SUM = 0x58000003;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Thread_local char last_error[512];

#define fail(...) TL_FAIL_INTO(last_error, __VA_ARGS__)

void tl_mpi_last_error(char *buf, size_t len) {
    if (len == 0) return;
    snprintf(buf, len, "%s", last_error);
}

/// A failed MPI call's status as a message naming the call.
static int check(int rc, const char *what) {
    if (rc == 0) return 0;
    char text[256] = "";
    int n = 0;
    if (M.Error_string) M.Error_string(rc, text, &n);
    return fail("%s failed (MPI error %d: %s)", what, rc, text);
}

int tl_mpi_launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMI_SIZE") != NULL || getenv("PMIX_RANK") != NULL;
}

const char *tl_mpi_library(void) { return M.name; }

static void *sym(const char *name, int *missing) {
    void *p = dlsym(M.lib, name);
    if (!p && !*missing) {
        *missing = 1;
        fail("%s has no symbol %s", M.name, name);
    }
    return p;
}

static int load(void) {
    const char *override = getenv("TEFLA_MPI_LIBRARY");
    const char *candidates[] = {"libmpi.so.40", "libmpi.so.12", "libmpi.so"};
    // RTLD_GLOBAL: Open MPI's components, themselves dlopened, resolve libmpi's symbols globally.
    if (override && *override) {
        M.lib = dlopen(override, RTLD_NOW | RTLD_GLOBAL);
        if (!M.lib) return fail("TEFLA_MPI_LIBRARY=%s could not be loaded: %s", override, dlerror());
        snprintf(M.name, sizeof M.name, "%s", override);
    } else {
        for (size_t i = 0; i < sizeof candidates / sizeof *candidates && !M.lib; i++) {
            M.lib = dlopen(candidates[i], RTLD_NOW | RTLD_GLOBAL);
            if (M.lib) snprintf(M.name, sizeof M.name, "%s", candidates[i]);
        }
        if (!M.lib)
            return fail("no MPI library found (tried libmpi.so.40 for Open MPI, libmpi.so.12 for MPICH; set "
                        "TEFLA_MPI_LIBRARY to a path)");
    }
    int missing = 0;
    M.Initialized = sym("MPI_Initialized", &missing);
    M.Init_thread = sym("MPI_Init_thread", &missing);
    M.Finalize = sym("MPI_Finalize", &missing);
    M.Error_string = sym("MPI_Error_string", &missing);
    // The union's two members have the same layout of function pointers; fill through `o`.
    *(void **)&M.f.o.Comm_rank = sym("MPI_Comm_rank", &missing);
    *(void **)&M.f.o.Comm_size = sym("MPI_Comm_size", &missing);
    *(void **)&M.f.o.Abort = sym("MPI_Abort", &missing);
    *(void **)&M.f.o.Iallreduce = sym("MPI_Iallreduce", &missing);
    *(void **)&M.f.o.Ibcast = sym("MPI_Ibcast", &missing);
    *(void **)&M.f.o.Ibarrier = sym("MPI_Ibarrier", &missing);
    *(void **)&M.f.o.Isend = sym("MPI_Isend", &missing);
    *(void **)&M.f.o.Irecv = sym("MPI_Irecv", &missing);
    *(void **)&M.f.o.Test = sym("MPI_Test", &missing);
    *(void **)&M.f.o.Cancel = sym("MPI_Cancel", &missing);
    *(void **)&M.f.o.Request_free = sym("MPI_Request_free", &missing);
    if (missing) return 1;
    void *world = dlsym(M.lib, "ompi_mpi_comm_world");
    if (world) {
        M.abi = ABI_OMPI;
        M.ocomm = world;
        const char *types[3] = {"ompi_mpi_float", "ompi_mpi_double", "ompi_mpi_byte"};
        for (int t = 0; t < 3; t++) M.otypes[t] = sym(types[t], &missing);
        M.osum = sym("ompi_mpi_op_sum", &missing);
        if (missing) return 1;
    } else {
        M.abi = ABI_MPICH;
    }
    return 0;
}

static void init_once(void) {
    if (load() != 0) {
        M.status = 1;
        return;
    }
    int flag = 0;
    if ((M.status = check(M.Initialized(&flag), "MPI_Initialized"))) return;
    if (!flag) {
        int provided = 0;
        if ((M.status = check(M.Init_thread(NULL, NULL, 1 /* MPI_THREAD_FUNNELED */, &provided), "MPI_Init_thread")))
            return;
        M.initialised_here = 1;
    }
    M.status = M.abi == ABI_OMPI
        ? check(M.f.o.Comm_rank(M.ocomm, &M.rank), "MPI_Comm_rank") || check(M.f.o.Comm_size(M.ocomm, &M.size), "MPI_Comm_size")
        : check(M.f.i.Comm_rank(MPICH_COMM_WORLD, &M.rank), "MPI_Comm_rank") ||
              check(M.f.i.Comm_size(MPICH_COMM_WORLD, &M.size), "MPI_Comm_size");
}

static char first_error[512];

int tl_mpi_init(int *rank, int *size) {
    pthread_once(&once, init_once);
    if (M.status) {
        // The message was written on the thread that ran init_once; keep it for every caller.
        if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", last_error);
        snprintf(last_error, sizeof last_error, "%s", first_error);
        return M.status;
    }
    *rank = M.rank;
    *size = M.size;
    return 0;
}

static int ready(void) { return M.abi != ABI_NONE && M.status == 0 ? 0 : fail("MPI is not initialised (call tl_mpi_init)"); }
static int bad_type(int type) { return type < 0 || type > 2 ? fail("unknown MPI element type %d", type) : 0; }

int tl_mpi_finalize(void) {
    if (ready() || !M.initialised_here) return 0;
    M.initialised_here = 0;
    return check(M.Finalize(), "MPI_Finalize");
}

void tl_mpi_abort(int code) {
    if (ready()) exit(code);
    if (M.abi == ABI_OMPI) M.f.o.Abort(M.ocomm, code);
    else M.f.i.Abort(MPICH_COMM_WORLD, code);
    exit(code); // MPI_Abort does not return; this is for a library that does
}

// Requests travel as intptr_t; MPICH's are ints, Open MPI's pointers.
#define CALL_REQ(what, ocall, icall)                                                                                   \
    do {                                                                                                               \
        if (ready()) return 1;                                                                                         \
        if (M.abi == ABI_OMPI) {                                                                                       \
            ohandle r = NULL;                                                                                          \
            int rc = ocall;                                                                                            \
            *request = (intptr_t)r;                                                                                    \
            return check(rc, what);                                                                                    \
        } else {                                                                                                       \
            ihandle r = 0;                                                                                             \
            int rc = icall;                                                                                            \
            *request = (intptr_t)r;                                                                                    \
            return check(rc, what);                                                                                    \
        }                                                                                                              \
    } while (0)

int tl_mpi_iallreduce_sum(void *buffer, int count, int type, intptr_t *request) {
    if (bad_type(type)) return 1;
    CALL_REQ("MPI_Iallreduce", M.f.o.Iallreduce((void *)1 /* MPI_IN_PLACE */, buffer, count, M.otypes[type], M.osum, M.ocomm, &r),
             M.f.i.Iallreduce((void *)-1 /* MPI_IN_PLACE */, buffer, count, MPICH_TYPES[type], MPICH_SUM, MPICH_COMM_WORLD, &r));
}

int tl_mpi_ibcast(void *buffer, int count, int type, int root, intptr_t *request) {
    if (bad_type(type)) return 1;
    CALL_REQ("MPI_Ibcast", M.f.o.Ibcast(buffer, count, M.otypes[type], root, M.ocomm, &r),
             M.f.i.Ibcast(buffer, count, MPICH_TYPES[type], root, MPICH_COMM_WORLD, &r));
}

int tl_mpi_ibarrier(intptr_t *request) {
    CALL_REQ("MPI_Ibarrier", M.f.o.Ibarrier(M.ocomm, &r), M.f.i.Ibarrier(MPICH_COMM_WORLD, &r));
}

int tl_mpi_isend(const void *buffer, int count, int type, int dest, int tag, intptr_t *request) {
    if (bad_type(type)) return 1;
    CALL_REQ("MPI_Isend", M.f.o.Isend(buffer, count, M.otypes[type], dest, tag, M.ocomm, &r),
             M.f.i.Isend(buffer, count, MPICH_TYPES[type], dest, tag, MPICH_COMM_WORLD, &r));
}

int tl_mpi_irecv(void *buffer, int count, int type, int source, int tag, intptr_t *request) {
    if (bad_type(type)) return 1;
    CALL_REQ("MPI_Irecv", M.f.o.Irecv(buffer, count, M.otypes[type], source, tag, M.ocomm, &r),
             M.f.i.Irecv(buffer, count, MPICH_TYPES[type], source, tag, MPICH_COMM_WORLD, &r));
}

int tl_mpi_test(intptr_t *request, int *done) {
    if (ready()) return 1;
    *done = 0;
    if (M.abi == ABI_OMPI) {
        ohandle r = (ohandle)*request;
        int rc = M.f.o.Test(&r, done, NULL /* MPI_STATUS_IGNORE */);
        *request = (intptr_t)r;
        return check(rc, "MPI_Test");
    }
    ihandle r = (ihandle)*request;
    int rc = M.f.i.Test(&r, done, (void *)1 /* MPI_STATUS_IGNORE */);
    *request = (intptr_t)r;
    return check(rc, "MPI_Test");
}

void tl_mpi_abandon(intptr_t *request) {
    if (ready()) return;
    if (M.abi == ABI_OMPI) {
        ohandle r = (ohandle)*request;
        M.f.o.Cancel(&r);
        M.f.o.Request_free(&r);
    } else {
        ihandle r = (ihandle)*request;
        M.f.i.Cancel(&r);
        M.f.i.Request_free(&r);
    }
    *request = 0;
}
