// CLearner's MPI layer: the MPI library is loaded at run time with dlopen, so the package builds
// without mpi.h and runs where MPI is absent. Open MPI (libmpi.so.40, handles are pointers to
// its predefined objects) and MPICH (libmpi.so.12, handles are integers) are both understood;
// the functions below hide which one was found.
//
// Conventions
// - Every function returning `int` returns 0 on success or a non-zero status; the message of
//   the last failure is available from tl_mpi_last_error().
// - Requests are opaque `intptr_t` values owned by the caller until tl_mpi_test reports them done.
// - Only MPI_COMM_WORLD is used; one thread (the one that called tl_mpi_init) makes every call.
//
// Environment
//   TEFLA_MPI_LIBRARY   path or soname to dlopen instead of libmpi.so.40, then libmpi.so.12
#ifndef CLEARNER_MPI_H
#define CLEARNER_MPI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum tl_mpi_type { TL_MPI_FLOAT = 0, TL_MPI_DOUBLE = 1, TL_MPI_BYTE = 2 };

/// 1 when this process was started by an MPI launcher (OMPI_COMM_WORLD_SIZE, PMI_SIZE or
/// PMIX_RANK in the environment), else 0. Decides whether a run becomes one rank of a group.
int tl_mpi_launched(void);
/// Loads the library (once; later calls return the first result), and initialises MPI with
/// MPI_THREAD_FUNNELED unless it already is. Fills *rank and *size of MPI_COMM_WORLD.
int tl_mpi_init(int *rank, int *size);
/// The soname or path that was loaded ("" before tl_mpi_init succeeded).
const char *tl_mpi_library(void);
/// Copies the last failure's message into buf (NUL-terminated, truncated to len).
void tl_mpi_last_error(char *buf, size_t len);
/// MPI_Finalize (when this layer initialised MPI).
int tl_mpi_finalize(void);
/// MPI_Abort on MPI_COMM_WORLD: ends every rank of the job with `code`.
void tl_mpi_abort(int code);

/// Nonblocking in-place sum over every rank (MPI_Iallreduce with MPI_IN_PLACE).
int tl_mpi_iallreduce_sum(void *buffer, int count, int type, intptr_t *request);
/// Nonblocking broadcast from `root` (MPI_Ibcast).
int tl_mpi_ibcast(void *buffer, int count, int type, int root, intptr_t *request);
/// Nonblocking barrier (MPI_Ibarrier).
int tl_mpi_ibarrier(intptr_t *request);
/// Nonblocking point-to-point messages on MPI_COMM_WORLD (MPI_Isend / MPI_Irecv).
int tl_mpi_isend(const void *buffer, int count, int type, int dest, int tag, intptr_t *request);
int tl_mpi_irecv(void *buffer, int count, int type, int source, int tag, intptr_t *request);
/// MPI_Test: sets *done to 1 when the request has completed (the request is then released).
int tl_mpi_test(intptr_t *request, int *done);
/// MPI_Cancel then MPI_Request_free: abandons a request that will never complete.
void tl_mpi_abandon(intptr_t *request);

#ifdef __cplusplus
}
#endif

#endif
