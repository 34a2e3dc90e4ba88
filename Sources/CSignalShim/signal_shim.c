// See CSignalShim.h for why this file exists. The rule here: the handler touches only the flag,
// errno and the saved previous action; no allocation, no locks, no Swift.
#include "CSignalShim.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>

// The stop flag: the number of the last trapped signal, 0 while none. Exported (with the library's
// prefix) so that a caller who wants no function call at all can read it; see gracefulstop.h.
// `volatile sig_atomic_t` makes it safe between a handler and the thread it interrupted; the kernel
// may run the handler on any thread, though, and another thread reads it, so every access below is
// also an atomic builtin (lock-free for an int, hence async-signal-safe; found by ThreadSanitizer).
volatile sig_atomic_t gracefulstop_signal_flag = 0;
_Static_assert(__atomic_always_lock_free(sizeof(sig_atomic_t), 0), "the stop flag must be lock-free to be set in a handler");

// The action each signal had before ours, to chain to from the handler and to restore.
static struct sigaction previous_action[NSIG];

static int is_trappable(int signo) {
    return signo > 0 && signo < NSIG && signo != SIGKILL && signo != SIGSTOP;
}

// Records the signal, then hands it on to the previous handler (a Python `signal.signal` handler,
// say) so that installing gracefulstop never silences somebody else's. SIG_DFL is not chained to:
// for SIGTERM and SIGUSR1 it would kill the process, which is exactly what a graceful stop avoids.
static void stop_handler(int signo, siginfo_t *info, void *context) {
    int saved_errno = errno;
    __atomic_store_n(&gracefulstop_signal_flag, signo, __ATOMIC_SEQ_CST);
    const struct sigaction *prev = &previous_action[signo];
    if (prev->sa_flags & SA_SIGINFO) {
        if (prev->sa_sigaction != NULL) prev->sa_sigaction(signo, info, context);
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN && prev->sa_handler != NULL) {
        prev->sa_handler(signo);
    }
    errno = saved_errno;
}

static int handler_is_ours(const struct sigaction *action) {
    return (action->sa_flags & SA_SIGINFO) && action->sa_sigaction == stop_handler;
}

// In a forked child (a multiprocessing.Pool or DataLoader worker), puts back the action each
// trapped signal had before ours, so the child behaves as it would without gracefulstop: TERM
// kills it unless somebody else's handler says otherwise. Only sigaction, which is
// async-signal-safe and so allowed between fork and exec. The flag is kept: a child forked after
// a stop still sees it. A child that wants the handlers again calls install.
static void restore_in_forked_child(void) {
    for (int signo = 1; signo < NSIG; signo++) {
        struct sigaction current;
        if (is_trappable(signo) && sigaction(signo, NULL, &current) == 0 && handler_is_ours(&current)) {
            sigaction(signo, &previous_action[signo], NULL);
        }
    }
}

static pthread_once_t fork_hook_once = PTHREAD_ONCE_INIT;

static void register_fork_hook(void) { pthread_atfork(NULL, NULL, restore_in_forked_child); }

int gracefulstop_shim_install(int signo) {
    if (!is_trappable(signo)) return EINVAL;
    pthread_once(&fork_hook_once, register_fork_hook);
    struct sigaction current;
    if (sigaction(signo, NULL, &current) != 0) return errno;
    if (handler_is_ours(&current)) return 0;
    // Saved before ours goes in, so the handler never chains to a half-written action.
    previous_action[signo] = current;
    struct sigaction ours;
    ours.sa_sigaction = stop_handler;
    sigemptyset(&ours.sa_mask);
    // SA_RESTART: the user's blocking reads and waits resume instead of failing with EINTR.
    // SA_ONSTACK: run on an alternate stack when the thread has one (as Go and Python do).
    ours.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    if (sigaction(signo, &ours, NULL) != 0) return errno;
    return 0;
}

int gracefulstop_shim_uninstall(int signo) {
    if (!is_trappable(signo)) return EINVAL;
    struct sigaction current;
    if (sigaction(signo, NULL, &current) != 0) return errno;
    if (!handler_is_ours(&current)) return EBUSY;
    if (sigaction(signo, &previous_action[signo], NULL) != 0) return errno;
    return 0;
}

int gracefulstop_shim_is_installed(int signo) {
    if (signo <= 0 || signo >= NSIG) return 0;
    struct sigaction current;
    if (sigaction(signo, NULL, &current) != 0) return 0;
    return handler_is_ours(&current);
}

int gracefulstop_shim_last_signal(void) {
    return __atomic_load_n(&gracefulstop_signal_flag, __ATOMIC_SEQ_CST);
}

void gracefulstop_shim_clear(void) {
    __atomic_store_n(&gracefulstop_signal_flag, 0, __ATOMIC_SEQ_CST);
}

int gracefulstop_shim_set_parent_death_signal(int signo) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signo, 0UL, 0UL, 0UL) == 0 ? 0 : errno;
}
