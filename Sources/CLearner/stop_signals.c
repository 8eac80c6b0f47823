// Graceful stop on SIGINT, SIGTERM and SIGUSR1: the first signal is only recorded (the training
// loop polls it between steps, finishes the step and writes a checkpoint); a second one ends the
// process at once with status 128 + signal. Checkpoints are written atomically, so ending in the
// middle of one leaves the previous checkpoint as the newest, never a half-written one.
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "clearner.h"

static volatile sig_atomic_t pending_signal = 0;

static void on_stop_signal(int sig) {
    if (pending_signal != 0) _exit(128 + sig);
    pending_signal = sig;
}

int tl_stop_signals_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    // Reads and waits interrupted by the signal resume: the loop stops at its next step boundary.
    action.sa_flags = SA_RESTART;
    const int signals[] = {SIGINT, SIGTERM, SIGUSR1};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        if (sigaction(signals[i], &action, NULL) != 0) return -1;
    }
    return 0;
}

int tl_stop_signal_pending(void) { return pending_signal; }

void tl_stop_signal_clear(void) { pending_signal = 0; }
