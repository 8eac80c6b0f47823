// Per-thread state of the autodiff tape. In C because Swift has no thread-local stored
// variables: data-parallel replicas run as threads of one process, and one replica turning
// recording off (evaluation, optimizer updates) must not turn it off for the others.
#ifndef CLEARNER_TAPE_H
#define CLEARNER_TAPE_H

#ifdef __cplusplus
extern "C" {
#endif

/// How many `withoutGradients` scopes the calling thread is inside (0: the tape records).
int tl_tape_disabled_depth(void);
/// Adds `delta` (+1 on entering a scope, -1 on leaving it) to the calling thread's depth.
void tl_tape_adjust_disabled(int delta);
/// The calling thread's compute precision for matrix products and convolutions (the raw value
/// of Swift's `Precision`: 0 fp32, 1 bf16, 2 fp16); 0 on a new thread.
int tl_compute_precision(void);
void tl_set_compute_precision(int precision);

#ifdef __cplusplus
}
#endif

#endif
