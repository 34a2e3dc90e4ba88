// CSignalShim: the only C in gracefulstop. It exists because a signal handler must be
// async-signal-safe, and no Swift may run inside one: the handler below only stores the signal
// number in a `volatile sig_atomic_t` and chains to the handler that was installed before it.
// Everything else (deciding what the flag means) happens in Swift, outside the handler.
#ifndef GRACEFULSTOP_CSIGNALSHIM_H
#define GRACEFULSTOP_CSIGNALSHIM_H

/// Installs the stop handler for `signo`, remembering the handler it replaces so that it can be
/// chained to and restored. Installing over our own handler is a no-op. A process forked after
/// this (not exec'd) gets the replaced handlers back, so that a worker is not made deaf to TERM.
/// Returns 0, or an errno value (EINVAL for SIGKILL, SIGSTOP or a number out of range).
int gracefulstop_shim_install(int signo);

/// Restores the handler that `gracefulstop_shim_install` replaced, but only while ours is still
/// the installed one: a handler somebody installed after ours is left alone.
/// Returns 0, EINVAL for a number out of range, or EBUSY when another handler has replaced ours.
int gracefulstop_shim_uninstall(int signo);

/// 1 while our handler is the one installed for `signo`, 0 otherwise.
int gracefulstop_shim_is_installed(int signo);

/// The number of the last trapped signal that reached this process, or 0 when none has.
/// A function rather than a variable so that Swift never caches the volatile read.
int gracefulstop_shim_last_signal(void);

/// Forgets a recorded signal (tests, and a fresh attempt inside one process).
void gracefulstop_shim_clear(void);

/// Asks the kernel to send `signo` to this process when its parent dies (prctl PR_SET_PDEATHSIG).
/// C because prctl is variadic, which Swift cannot call. gstop's child calls it between fork and
/// exec, so that the job's command never outlives a killed supervisor. Returns 0 or an errno value.
int gracefulstop_shim_set_parent_death_signal(int signo);

#endif
