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

#ifdef __cplusplus
}
#endif

#endif
