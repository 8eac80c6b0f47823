// Per-thread state of the autodiff tape (see clearner_tape.h).
#include "clearner_tape.h"

static _Thread_local int disabled_depth;

int tl_tape_disabled_depth(void) { return disabled_depth; }

void tl_tape_adjust_disabled(int delta) { disabled_depth += delta; }

static _Thread_local int compute_precision;

int tl_compute_precision(void) { return compute_precision; }

void tl_set_compute_precision(int precision) { compute_precision = precision; }
