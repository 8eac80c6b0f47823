// CLearner's NCCL layer: libnccl.so.2 loaded at run time with dlopen (like the CUDA libraries),
// so the package builds without nccl.h and runs where NCCL is absent. Collectives run on a
// stream of this layer's own in the device's primary context, and are polled against a
// deadline: a peer that never joins makes the caller abort the communicator, not hang.
//
// Every function returning `int` returns 0 on success or a non-zero status; the message of the
// last failure is available from tl_nccl_last_error().
//
// Environment
//   TEFLA_NCCL_LIBRARY   path or soname to dlopen instead of libnccl.so.2
#ifndef CLEARNER_NCCL_H
#define CLEARNER_NCCL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Bytes of an ncclUniqueId (NCCL_UNIQUE_ID_BYTES).
#define TL_NCCL_UNIQUE_ID_BYTES 128

/// Loads libnccl.so.2 and libcuda.so.1 (once); fills *version with NCCL's (e.g. 22806).
int tl_nccl_load(int *version);
/// Copies the last failure's message into buf (NUL-terminated, truncated to len).
void tl_nccl_last_error(char *buf, size_t len);
/// ncclGetUniqueId: rank 0 makes the id, which every rank then receives (through MPI).
int tl_nccl_unique_id(uint8_t id[TL_NCCL_UNIQUE_ID_BYTES]);
/// ncclCommInitRank on the calling thread's current CUDA device; also creates the stream.
int tl_nccl_init_rank(void **comm, int nranks, const uint8_t id[TL_NCCL_UNIQUE_ID_BYTES], int rank);
/// Starts an in-place float sum of `count` elements at device address `buffer` (ncclAllReduce).
int tl_nccl_all_reduce_sum(void *comm, float *buffer, size_t count);
/// Starts a broadcast of `count` floats at `buffer` from `root` (ncclBroadcast).
int tl_nccl_broadcast(void *comm, float *buffer, size_t count, int root);
/// Sets *done to 1 when everything started on the communicator's stream has finished; fails
/// with the communicator's asynchronous error when NCCL reports one.
int tl_nccl_poll(void *comm, int *done);
/// ncclCommAbort: frees the communicator without waiting for the peers.
void tl_nccl_abort(void *comm);
/// ncclCommDestroy after the last collective.
int tl_nccl_destroy(void *comm);

#ifdef __cplusplus
}
#endif

#endif
