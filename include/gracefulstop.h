/*
 * gracefulstop.h — the C ABI of libgracefulstop.so.
 *
 * A job on a SLURM cluster calls three things in its loop: should_stop() (a stop signal, a stop
 * request from any node, or a deadline), mark_done(unit) (durably, once the unit is finished) and
 * remaining_units(node) (what this node still has to do). The state they share is a directory on
 * a shared filesystem; its format is docs/state-format.md.
 *
 * Conventions
 *   - Every symbol starts with gracefulstop_ (macros and types with GRACEFULSTOP_ / gracefulstop_).
 *   - Functions that can fail return a status (gracefulstop_status); results come back through
 *     out-parameters, which are written only on success. On failure, gracefulstop_last_error()
 *     describes the problem (naming the path) on the calling thread.
 *   - Every buffer the library returns is freed with the matching *_free function.
 *   - All functions are thread-safe. A state handle may be used from many threads at once, but
 *     must not be closed while another thread uses it.
 *   - No function ever lets an error escape as a crash or an exception.
 */
#ifndef GRACEFULSTOP_H
#define GRACEFULSTOP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nullability annotations are a clang extension; other compilers see nothing. */
#if defined(__clang__) && defined(__has_feature)
#if __has_feature(nullability)
#define GRACEFULSTOP_NONNULL _Nonnull
#define GRACEFULSTOP_NULLABLE _Nullable
#endif
#endif
#ifndef GRACEFULSTOP_NONNULL
#define GRACEFULSTOP_NONNULL
#define GRACEFULSTOP_NULLABLE
#endif

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wnullability-extension"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The version this header describes; compare with gracefulstop_version() at load time. */
#define GRACEFULSTOP_VERSION "0.1.0"

/* Status codes returned by the functions below. */
typedef enum gracefulstop_status {
    GRACEFULSTOP_OK = 0,
    GRACEFULSTOP_EINVAL = 1,         /* bad argument: NULL, empty or NUL-containing unit name, bad value */
    GRACEFULSTOP_EUNKNOWN_UNIT = 2,  /* the unit is not in the state's manifest */
    GRACEFULSTOP_ESYSTEM = 3,        /* a system call failed (missing/unwritable directory, disk full) */
    GRACEFULSTOP_EBAD_STATE = 4,     /* the state is unreadable: truncated/corrupt manifest, unknown version */
    GRACEFULSTOP_EMISMATCH = 5,      /* the state exists for a different unit list, node count or partition */
    GRACEFULSTOP_ENODE = 6,          /* node number out of range */
    GRACEFULSTOP_EINTERNAL = 7,      /* a bug in gracefulstop; the message says where */
    GRACEFULSTOP_EDISK_FULL = 8      /* a write failed: no space or over quota on the state's filesystem */
} gracefulstop_status;

/* Why should_stop() is true. */
typedef enum gracefulstop_reason {
    GRACEFULSTOP_REASON_NONE = 0,     /* no stop */
    GRACEFULSTOP_REASON_SIGNAL = 1,   /* a trapped signal reached this process */
    GRACEFULSTOP_REASON_REQUEST = 2,  /* a stop request in the state directory (or request_stop()) */
    GRACEFULSTOP_REASON_DEADLINE = 3  /* GRACEFULSTOP_DEADLINE has passed */
} gracefulstop_reason;

/* Node arguments: this handle's own node, or (for gracefulstop_counts) the whole run. */
#define GRACEFULSTOP_NODE_DEFAULT ((int64_t)-1)
#define GRACEFULSTOP_ALL_NODES ((int64_t)-2)

/* For unit arguments given as (pointer, length): the name is NUL-terminated. */
#define GRACEFULSTOP_NUL_TERMINATED ((size_t)-1)

/* An opened state directory (opaque). */
typedef struct gracefulstop_state gracefulstop_state;

/*
 * A list of unit names: `count` names, each followed by a NUL byte, back to back in `names`
 * (`size` bytes in all, terminators included). Walk it with p += strlen(p) + 1.
 * Lists returned by the library are freed with gracefulstop_unit_list_free().
 */
typedef struct gracefulstop_unit_list {
    char *GRACEFULSTOP_NULLABLE names;
    size_t size;
    size_t count;
} gracefulstop_unit_list;

/* ---- Library ------------------------------------------------------------------------------ */

/* The library's version, e.g. "0.1.0". Static storage: never freed. Callers (the Python package)
 * refuse to run with a library whose version differs from their own. */
const char *GRACEFULSTOP_NONNULL gracefulstop_version(void);

/* The message of the last failed call on this thread, or NULL if none failed yet. Valid until
 * the next failing call on the same thread; not cleared by successful calls. */
const char *GRACEFULSTOP_NULLABLE gracefulstop_last_error(void);

/* Frees a string returned by the library (NULL is fine). */
void gracefulstop_string_free(char *GRACEFULSTOP_NULLABLE string);

/* ---- Opening a state ---------------------------------------------------------------------- */

/*
 * Creates the state directory `path` (and missing parents) for a run of `units`, or opens it if it
 * already exists for the same run, so every task of an array can call this at start.
 *   units            the ordered unit names (non-empty UTF-8, no NUL, at most 4096 bytes; no repeats)
 *   nodes            how many nodes share the run (1 to 1,000,000)
 *   partition        "round-robin" (unit i -> node i mod nodes) or "block" (contiguous slices);
 *                    NULL means "round-robin"
 *   legacy_done_dir  a directory of the seed scripts' <unit>.done files to honour as done-markers
 *                    (absolute, or relative to `path`), or NULL
 *   node             this process's node, or GRACEFULSTOP_NODE_DEFAULT to take it from the
 *                    environment (GRACEFULSTOP_NODE, SLURM_ARRAY_TASK_ID, in an srun step SLURM_PROCID
 *                    or with GRACEFULSTOP_SHARE=node SLURM_NODEID, else SLURM_NODEID, else 0)
 * Returns GRACEFULSTOP_EMISMATCH when the state exists with another unit list, node count,
 * partition or legacy directory. On success *out_state is a handle for gracefulstop_close().
 */
int gracefulstop_create(const char *GRACEFULSTOP_NONNULL path,
                        const gracefulstop_unit_list *GRACEFULSTOP_NONNULL units,
                        uint32_t nodes,
                        const char *GRACEFULSTOP_NULLABLE partition,
                        const char *GRACEFULSTOP_NULLABLE legacy_done_dir,
                        int64_t node,
                        gracefulstop_state *GRACEFULSTOP_NULLABLE *GRACEFULSTOP_NONNULL out_state);

/*
 * Opens an existing state. `path` NULL means $GRACEFULSTOP_STATE_DIR; if that is unset too, the
 * handle has no state directory: should_stop() checks signals and the deadline, and the unit
 * functions fail with GRACEFULSTOP_EINVAL. `node` as for gracefulstop_create().
 * Reads GRACEFULSTOP_DEADLINE, GRACEFULSTOP_ATTEMPT_START and GRACEFULSTOP_CHECK_INTERVAL.
 */
int gracefulstop_open(const char *GRACEFULSTOP_NULLABLE path,
                      int64_t node,
                      gracefulstop_state *GRACEFULSTOP_NULLABLE *GRACEFULSTOP_NONNULL out_state);

/* Opens `path` (creating it and missing parents) as a sweep's state: one that need not hold a unit
 * list, because its work is a shared study rather than units. should_stop() sees its stop requests;
 * gracefulstop_mark_study_done() declares the work complete. A directory that does hold a manifest
 * opens as with gracefulstop_open(). The node comes from the environment. */
int gracefulstop_open_sweep(const char *GRACEFULSTOP_NONNULL path,
                            gracefulstop_state *GRACEFULSTOP_NULLABLE *GRACEFULSTOP_NONNULL out_state);

/* Releases a handle (NULL is fine). The state on disk is not touched. */
void gracefulstop_close(gracefulstop_state *GRACEFULSTOP_NULLABLE state);

/* This handle's node, the state's node count and unit count (any out-parameter may be NULL).
 * Fails with GRACEFULSTOP_EINVAL for a handle without a state directory. */
int gracefulstop_info(const gracefulstop_state *GRACEFULSTOP_NONNULL state,
                      int64_t *GRACEFULSTOP_NULLABLE out_node,
                      uint32_t *GRACEFULSTOP_NULLABLE out_nodes,
                      uint64_t *GRACEFULSTOP_NULLABLE out_units);

/* ---- Stopping ----------------------------------------------------------------------------- */

/*
 * True once a stop is due: a trapped signal reached this process, a stop request newer than this
 * attempt exists in the state directory, or GRACEFULSTOP_DEADLINE has passed. Once true it stays
 * true. Cheap enough for every iteration of a loop: the request file is looked at once per check
 * interval (default 1 s), all else is memory and the vDSO clock. `state` NULL checks signals only.
 */
bool gracefulstop_should_stop(const gracefulstop_state *GRACEFULSTOP_NULLABLE state);

/* Makes `state` the process's default state (NULL: none), the one gracefulstop_should_stop_default()
 * checks. The library keeps a reference: a state once made the default stays valid until exit. */
void gracefulstop_set_default(gracefulstop_state *GRACEFULSTOP_NULLABLE state);

/* gracefulstop_should_stop() of the default state (signals only while there is none), for callers
 * whose foreign-function interface spends as long converting an argument as making the call
 * (ctypes): the Python package's module-level should_stop() is this function itself. */
bool gracefulstop_should_stop_default(void);

/*
 * Why should_stop() is true: *out_reason a gracefulstop_reason, *out_signal the signal number for
 * GRACEFULSTOP_REASON_SIGNAL (else 0), *out_detail a sentence to free with
 * gracefulstop_string_free(). Any out-parameter may be NULL. `state` NULL: signals only.
 */
int gracefulstop_stop_reason(const gracefulstop_state *GRACEFULSTOP_NULLABLE state,
                             int *GRACEFULSTOP_NULLABLE out_reason,
                             int *GRACEFULSTOP_NULLABLE out_signal,
                             char *GRACEFULSTOP_NULLABLE *GRACEFULSTOP_NULLABLE out_detail);

/* Asks the processes of this job to stop — every node of it (SLURM_JOB_ID), or this array task;
 * every process of the state outside SLURM — by writing its stop request, and stops this one at
 * once. `reason` (may be NULL) is recorded for the others to read. */
int gracefulstop_request_stop(gracefulstop_state *GRACEFULSTOP_NONNULL state,
                              const char *GRACEFULSTOP_NULLABLE reason);

/* Sets how often should_stop() looks at the stop-request file, in seconds (0: every call). */
int gracefulstop_set_check_interval(gracefulstop_state *GRACEFULSTOP_NONNULL state, double seconds);

/*
 * Traps `count` signals with an async-signal-safe handler that records the stop and chains to the
 * handler installed before it (a Python signal.signal handler keeps running). SA_RESTART is set so
 * blocking calls are not interrupted. `signals` NULL: $GRACEFULSTOP_SIGNALS (e.g. "USR1,TERM",
 * "none"), else SIGUSR1 and SIGTERM; SIGINT is not trapped by default so Ctrl+C stays immediate.
 * Installing twice is harmless. A child forked afterwards (a worker pool) gets the handlers that were
 * there before ours back, so TERM ends it as it would without gracefulstop; it keeps the flag as it
 * was at fork, and may call this again to stop gracefully itself. exec resets every handler.
 *
 * Under gstop or SLURM, the first time should_stop() sees a signal it also records which signal
 * stopped which node's process (events.jsonl) and writes this job's stop request, so that gstop
 * decides as if the signal had reached it and the job's other nodes stop too.
 */
int gracefulstop_install_signals(const int *GRACEFULSTOP_NULLABLE signals, size_t count);

/* Restores the handlers that were installed before ours (`signals` NULL: as for install). A handler
 * somebody installed after ours is left in place. */
int gracefulstop_uninstall_signals(const int *GRACEFULSTOP_NULLABLE signals, size_t count);

/* The signals whose handler is gracefulstop's now: writes up to `capacity` of them to `out` (may be
 * NULL) and returns how many there are. */
size_t gracefulstop_trapped_signals(int *GRACEFULSTOP_NULLABLE out, size_t capacity);

/* The last trapped signal that reached this process, 0 if none. */
int gracefulstop_received_signal(void);

/* Forgets a received signal, so should_stop() is false again unless a request or deadline holds
 * (for a process that goes on after a stop: a new attempt in the same process, tests). */
void gracefulstop_clear_signal(void);

/* The same value as a variable, for callers that want no function call at all (read it, never
 * write it; from several threads, read it with __atomic_load_n, as the library does, since the
 * handler may run on any thread). It covers signals only: call should_stop() for stop requests and
 * deadlines. */
extern volatile sig_atomic_t gracefulstop_signal_flag;

/* ---- Units -------------------------------------------------------------------------------- */

/*
 * Marks `unit` done: atomically (readers never see a partial marker) and durably (the file and its
 * directory are fsynced: the mark survives kill -9 and power loss once this returns). Idempotent,
 * and safe from many processes on many hosts at once without file locks. `length` is the name's
 * length in bytes, or GRACEFULSTOP_NUL_TERMINATED. *out_was_done (may be NULL) says whether it was
 * already done. When this finishes the whole run, run.done is created.
 */
int gracefulstop_mark_done(gracefulstop_state *GRACEFULSTOP_NONNULL state,
                           const char *GRACEFULSTOP_NONNULL unit, size_t length,
                           bool *GRACEFULSTOP_NULLABLE out_was_done);

/* Whether `unit` is done (one stat, no directory scan). `length` as for mark_done. */
int gracefulstop_is_done(const gracefulstop_state *GRACEFULSTOP_NONNULL state,
                         const char *GRACEFULSTOP_NONNULL unit, size_t length,
                         bool *GRACEFULSTOP_NONNULL out_done);

/*
 * The units of `node` (GRACEFULSTOP_NODE_DEFAULT: this handle's node) that are neither done nor
 * quarantined, in manifest order, with one read of the marker directory (and of its begin
 * records and quarantine, which are usually empty). Free *out_list with
 * gracefulstop_unit_list_free(). Creates run.done when it finds every unit of the run done.
 */
int gracefulstop_remaining_units(gracefulstop_state *GRACEFULSTOP_NONNULL state, int64_t node,
                                 gracefulstop_unit_list *GRACEFULSTOP_NONNULL out_list);

/* Frees the names of a list returned by the library and zeroes it (NULL is fine). */
void gracefulstop_unit_list_free(gracefulstop_unit_list *GRACEFULSTOP_NULLABLE list);

/* Done and total units of `node`, of this handle's node (GRACEFULSTOP_NODE_DEFAULT) or of the whole
 * run (GRACEFULSTOP_ALL_NODES). One directory read. */
int gracefulstop_counts(gracefulstop_state *GRACEFULSTOP_NONNULL state, int64_t node,
                        uint64_t *GRACEFULSTOP_NULLABLE out_done,
                        uint64_t *GRACEFULSTOP_NULLABLE out_total);

/* Scans the markers and sets *out_done to whether every unit of the run is done; creates run.done
 * if so (call it after a worker's loop ends, so the last finisher always leaves run.done). */
int gracefulstop_run_done(gracefulstop_state *GRACEFULSTOP_NONNULL state, bool *GRACEFULSTOP_NONNULL out_done);

/* ---- Attempts at units -------------------------------------------------------------------- */

/* What gracefulstop_begin_unit() found. */
typedef enum gracefulstop_begin {
    GRACEFULSTOP_BEGUN = 0,        /* begun: work on it, then mark it done */
    GRACEFULSTOP_BEGIN_STOP = 1,   /* a stop is due, or too little time is left for the unit: end the loop */
    GRACEFULSTOP_BEGIN_DONE = 2,   /* done meanwhile by another process: skip it */
    GRACEFULSTOP_BEGIN_QUARANTINED = 3, /* quarantined: skip it */
    GRACEFULSTOP_BEGIN_CLAIMED = 4  /* another live worker holds it (its owner, or one that took it over): skip it */
} gracefulstop_begin;

/*
 * Begins `unit` (for loops that do not use the Python package's work()): records the attempt (a
 * begin record, which survives this process's crash) and remembers when it began, so that
 * mark_done() records the unit's duration. Not begun (*out_outcome says why): a stop is due; the
 * unit is done or quarantined; or, with GRACEFULSTOP_DEADLINE set, the unit's expected time
 * exceeds the time left — then the stop is latched and stop_reason() says "the next unit needs
 * ~3s, 1s left ...". The expected time is `estimate_seconds`, or when that is negative (or NaN)
 * the p90 of this run's durations (the units this process finished, and a sample of its node's
 * markers); with no duration known yet, the unit is begun. A unit begun
 * GRACEFULSTOP_MAX_UNIT_ATTEMPTS times (default 3; 0: never) by attempts that ended without
 * finishing it is quarantined (docs/state-format.md).
 */
int gracefulstop_begin_unit(gracefulstop_state *GRACEFULSTOP_NONNULL state,
                            const char *GRACEFULSTOP_NONNULL unit, size_t length,
                            double estimate_seconds, int *GRACEFULSTOP_NONNULL out_outcome);

/*
 * The next unit for this worker's loop, to pass to gracefulstop_begin_unit(): this process's own
 * share's remaining units in manifest order, then — balancing — units of other shares: shares no
 * worker owns, and the end of the share with the most left, while its owner goes from the front.
 * *out_unit is NULL (and *out_length 0) when nothing is left that this worker could begin; free a
 * name with gracefulstop_string_free(). `balance`: 1 take units from other shares, 0 keep to this
 * share, -1 as GRACEFULSTOP_BALANCE says (default on). `restart_loop`: begin again from a fresh
 * scan (the first call of a loop). A worker whose node is beyond the state's shares (more workers
 * than shares) only takes over. Begin records are exclusive claims, so two workers never begin
 * one unit (docs/state-format.md, "Balancing").
 */
int gracefulstop_next_unit(gracefulstop_state *GRACEFULSTOP_NONNULL state, int balance, bool restart_loop,
                           char *GRACEFULSTOP_NULLABLE *GRACEFULSTOP_NONNULL out_unit,
                           size_t *GRACEFULSTOP_NONNULL out_length);

/* Gives up a unit this process began and will not finish. When a stop is due its begin record is
 * released (a stop is not the unit's fault); otherwise the attempt counts toward quarantine. */
int gracefulstop_abandon_unit(gracefulstop_state *GRACEFULSTOP_NONNULL state,
                              const char *GRACEFULSTOP_NONNULL unit, size_t length);

/* Puts a quarantined unit back: its quarantine, its begin records and run.quarantined are removed.
 * *out_was_quarantined (may be NULL) says whether it was quarantined. gstop release does this. */
int gracefulstop_release_unit(gracefulstop_state *GRACEFULSTOP_NONNULL state,
                              const char *GRACEFULSTOP_NONNULL unit, size_t length,
                              bool *GRACEFULSTOP_NULLABLE out_was_quarantined);

/* What `gstop status --json` prints for this state (counts per node, unit_seconds p50/p90,
 * units_per_hour, eta_seconds, quarantined units), as a JSON text to free with
 * gracefulstop_string_free(). Reads a sample of every node's markers. */
int gracefulstop_status_json(gracefulstop_state *GRACEFULSTOP_NONNULL state,
                             char *GRACEFULSTOP_NULLABLE *GRACEFULSTOP_NONNULL out_json);

/* ---- Sweeps ------------------------------------------------------------------------------- */

/* Declares a sweep's work complete: writes study.done (atomically and durably), which tells gstop
 * not to requeue and tells later tasks there is nothing left to do. `detail` (may be NULL) says what
 * was completed, e.g. "40 trials of study s". */
int gracefulstop_mark_study_done(gracefulstop_state *GRACEFULSTOP_NONNULL state, const char *GRACEFULSTOP_NULLABLE detail);

/* Whether study.done exists in the state (false for a handle without a state directory). */
int gracefulstop_study_done(const gracefulstop_state *GRACEFULSTOP_NONNULL state, bool *GRACEFULSTOP_NONNULL out_done);

/* Tells gstop that this process finished `count` more pieces of a sweep's work (`what`, e.g.
 * "trial"; NULL means "trial"): call it with 0 when the sweep starts and with 1 after each finished
 * trial. gstop counts an attempt that reported and finished nothing as idle for
 * --max-idle-attempts, as it does an attempt of a run that marked no unit. A no-op outside gstop;
 * a negative count is an error. gracefulstop.optuna calls it. */
int gracefulstop_record_finished(gracefulstop_state *GRACEFULSTOP_NONNULL state, int64_t count, const char *GRACEFULSTOP_NULLABLE what);

/* This process's SLURM job as stop requests name it: "ARRAYJOBID_TASKID" for an array task, else
 * SLURM_JOB_ID; *out_job is NULL outside SLURM. Free it with gracefulstop_string_free(). */
int gracefulstop_job(char *GRACEFULSTOP_NULLABLE *GRACEFULSTOP_NONNULL out_job);

/* ---- Helpers ------------------------------------------------------------------------------ */

/* This attempt's restart count: GRACEFULSTOP_RESTART_COUNT (set by gstop), else SLURM_RESTART_COUNT,
 * else 0. Above 0, the job is resuming work an earlier attempt began. */
int64_t gracefulstop_restart_count(void);

/* The file name of `unit`'s done-marker (docs/state-format.md), to free with
 * gracefulstop_string_free(). `length` as for mark_done. */
int gracefulstop_marker_name(const char *GRACEFULSTOP_NONNULL unit, size_t length,
                             char *GRACEFULSTOP_NULLABLE *GRACEFULSTOP_NONNULL out_name);

/* Where `unit`'s done-marker is, relative to the state directory ("done/<node>/<marker>.done"), to
 * free with gracefulstop_string_free(). `length` as for mark_done. */
int gracefulstop_marker_path(const gracefulstop_state *GRACEFULSTOP_NONNULL state,
                             const char *GRACEFULSTOP_NONNULL unit, size_t length,
                             char *GRACEFULSTOP_NULLABLE *GRACEFULSTOP_NONNULL out_path);

#ifdef __cplusplus
}
#endif

#if defined(__clang__)
#pragma clang diagnostic pop
#endif

#endif /* GRACEFULSTOP_H */
