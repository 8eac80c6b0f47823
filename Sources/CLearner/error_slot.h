// The loaders' failure path: each keeps its last error message, per thread, in a char array and
// returns 1 on failure; TL_FAIL_INTO formats the message into that array and is 1.
#pragma once

#include <stdio.h>

#define TL_FAIL_INTO(slot, ...) (snprintf((slot), sizeof(slot), __VA_ARGS__), 1)
