/* A C user of include/gracefulstop.h: compiled with -Wall -Wextra -Werror against the header and
 * run against libgracefulstop.so by python/tests/test_c_abi.py. It checks that the header's
 * declarations match what the library exports and does, call by call. Usage: abi_smoke STATE_DIR */
#include "gracefulstop.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(condition)                                                              \
    do {                                                                              \
        if (!(condition)) {                                                           \
            const char *error = gracefulstop_last_error();                            \
            fprintf(stderr, "abi_smoke.c:%d: failed: %s (last error: %s)\n", __LINE__, \
                    #condition, error ? error : "none");                              \
            failures++;                                                               \
        }                                                                             \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s STATE_DIR\n", argv[0]);
        return 64;
    }
    CHECK(strcmp(gracefulstop_version(), GRACEFULSTOP_VERSION) == 0);

    static char names[] = "eq1\0eq2\0a/b c\0eq4\0";
    gracefulstop_unit_list units = {names, sizeof names - 1, 4};
    gracefulstop_state *state = NULL;
    CHECK(gracefulstop_create(argv[1], &units, 2, "block", NULL, 0, &state) == GRACEFULSTOP_OK);
    CHECK(state != NULL);

    int64_t node = -9;
    uint32_t nodes = 0;
    uint64_t unit_count = 0;
    CHECK(gracefulstop_info(state, &node, &nodes, &unit_count) == GRACEFULSTOP_OK);
    CHECK(node == 0 && nodes == 2 && unit_count == 4);

    bool was_done = true;
    CHECK(gracefulstop_mark_done(state, "a/b c", GRACEFULSTOP_NUL_TERMINATED, &was_done) == GRACEFULSTOP_OK);
    CHECK(!was_done);
    CHECK(gracefulstop_mark_done(state, "eq1xyz", 3, &was_done) == GRACEFULSTOP_OK); /* length: "eq1" */
    bool done = false;
    CHECK(gracefulstop_is_done(state, "eq1", GRACEFULSTOP_NUL_TERMINATED, &done) == GRACEFULSTOP_OK && done);

    gracefulstop_unit_list remaining = {NULL, 0, 0};
    CHECK(gracefulstop_remaining_units(state, GRACEFULSTOP_NODE_DEFAULT, &remaining) == GRACEFULSTOP_OK);
    CHECK(remaining.count == 1 && strcmp(remaining.names, "eq2") == 0);
    gracefulstop_unit_list_free(&remaining);
    CHECK(remaining.names == NULL && remaining.count == 0);
    CHECK(gracefulstop_remaining_units(state, 1, &remaining) == GRACEFULSTOP_OK);
    CHECK(remaining.count == 1 && strcmp(remaining.names, "eq4") == 0);
    gracefulstop_unit_list_free(&remaining);

    uint64_t done_count = 0, total = 0;
    CHECK(gracefulstop_counts(state, GRACEFULSTOP_ALL_NODES, &done_count, &total) == GRACEFULSTOP_OK);
    CHECK(done_count == 2 && total == 4);

    /* Errors: status codes and a message naming the problem. */
    CHECK(gracefulstop_mark_done(state, "nope", GRACEFULSTOP_NUL_TERMINATED, NULL) == GRACEFULSTOP_EUNKNOWN_UNIT);
    CHECK(strstr(gracefulstop_last_error(), "nope") != NULL);
    CHECK(gracefulstop_mark_done(state, "a\0b", 3, NULL) == GRACEFULSTOP_EINVAL);
    CHECK(gracefulstop_remaining_units(state, 7, &remaining) == GRACEFULSTOP_ENODE);
    gracefulstop_state *other = NULL;
    CHECK(gracefulstop_create(argv[1], &units, 3, "block", NULL, 0, &other) == GRACEFULSTOP_EMISMATCH);
    CHECK(other == NULL);
    CHECK(gracefulstop_open("/nonexistent/gracefulstop", 0, &other) == GRACEFULSTOP_ESYSTEM);
    CHECK(strstr(gracefulstop_last_error(), "/nonexistent/gracefulstop") != NULL);

    /* Stopping: a signal (this program is single-threaded, so raise() delivers before returning). */
    CHECK(!gracefulstop_should_stop(state));
    int signals[] = {SIGUSR1};
    CHECK(gracefulstop_install_signals(signals, 1) == GRACEFULSTOP_OK);
    raise(SIGUSR1);
    CHECK(gracefulstop_should_stop(state));
    CHECK(gracefulstop_signal_flag == SIGUSR1 && gracefulstop_received_signal() == SIGUSR1);
    int reason = 0, signal_number = 0;
    char *detail = NULL;
    CHECK(gracefulstop_stop_reason(state, &reason, &signal_number, &detail) == GRACEFULSTOP_OK);
    CHECK(reason == GRACEFULSTOP_REASON_SIGNAL && signal_number == SIGUSR1 && detail && strstr(detail, "SIGUSR1"));
    gracefulstop_string_free(detail);
    gracefulstop_clear_signal();
    CHECK(gracefulstop_uninstall_signals(signals, 1) == GRACEFULSTOP_OK);

    /* A stop request reaches another handle of the same state. */
    gracefulstop_state *second = NULL;
    CHECK(gracefulstop_open(argv[1], 1, &second) == GRACEFULSTOP_OK);
    CHECK(gracefulstop_set_check_interval(second, 0) == GRACEFULSTOP_OK);
    CHECK(!gracefulstop_should_stop(second));
    CHECK(gracefulstop_request_stop(state, "abi_smoke") == GRACEFULSTOP_OK);
    CHECK(gracefulstop_should_stop(second));
    CHECK(gracefulstop_stop_reason(second, &reason, NULL, NULL) == GRACEFULSTOP_OK && reason == GRACEFULSTOP_REASON_REQUEST);

    /* The loop of a C worker: its own share's unit, then (balancing) node 1's; each begun, then marked. */
    gracefulstop_clear_signal();
    gracefulstop_state *worker = NULL;
    CHECK(gracefulstop_open(argv[1], 0, &worker) == GRACEFULSTOP_OK);
    const char *expected_units[] = {"eq2", "eq4"};
    size_t taken = 0;
    for (bool first = true;; first = false) {
        char *unit = NULL;
        size_t length = 99;
        CHECK(gracefulstop_next_unit(worker, 1, first, &unit, &length) == GRACEFULSTOP_OK);
        if (unit == NULL) {
            CHECK(length == 0);
            break;
        }
        CHECK(taken < 2 && strcmp(unit, expected_units[taken]) == 0 && length == strlen(unit));
        int outcome = -1;
        CHECK(gracefulstop_begin_unit(worker, unit, length, -1, &outcome) == GRACEFULSTOP_OK && outcome == GRACEFULSTOP_BEGUN);
        /* Held now: a second begin of it by another handle of this process would take its place, so
           only the outcome of this handle's loop is checked. */
        CHECK(gracefulstop_mark_done(worker, unit, length, NULL) == GRACEFULSTOP_OK);
        gracefulstop_string_free(unit);
        taken++;
    }
    CHECK(taken == 2);
    char *none = (char *)"unset";
    size_t none_length = 7;
    CHECK(gracefulstop_next_unit(worker, 2, false, &none, &none_length) == GRACEFULSTOP_EINVAL && none == NULL);
    gracefulstop_close(worker);

    /* Finishing the run left run.done. */
    bool run_done = false;
    CHECK(gracefulstop_run_done(state, &run_done) == GRACEFULSTOP_OK && run_done);

    char *marker = NULL;
    CHECK(gracefulstop_marker_name("a/b c", GRACEFULSTOP_NUL_TERMINATED, &marker) == GRACEFULSTOP_OK);
    CHECK(marker && strcmp(marker, "a%2Fb%20c.done") == 0);
    gracefulstop_string_free(marker);

    /* A sweep's state: no unit list; study.done declares the work complete. */
    char sweep_path[4096];
    snprintf(sweep_path, sizeof sweep_path, "%s-sweep", argv[1]);
    gracefulstop_state *sweep = NULL;
    CHECK(gracefulstop_open_sweep(sweep_path, &sweep) == GRACEFULSTOP_OK);
    CHECK(gracefulstop_mark_done(sweep, "eq1", GRACEFULSTOP_NUL_TERMINATED, NULL) == GRACEFULSTOP_EINVAL);
    CHECK(strstr(gracefulstop_last_error(), "no unit list") != NULL);
    bool study_done = true;
    CHECK(gracefulstop_study_done(sweep, &study_done) == GRACEFULSTOP_OK && !study_done);
    CHECK(gracefulstop_mark_study_done(sweep, "3 trials") == GRACEFULSTOP_OK);
    CHECK(gracefulstop_study_done(sweep, &study_done) == GRACEFULSTOP_OK && study_done);
    gracefulstop_close(sweep);
    char *job = (char *)"unset";
    CHECK(gracefulstop_job(&job) == GRACEFULSTOP_OK);
    gracefulstop_string_free(job);
    CHECK(gracefulstop_restart_count() >= 0);

    gracefulstop_close(second);
    gracefulstop_close(state);
    gracefulstop_close(NULL);
    gracefulstop_unit_list_free(NULL);
    gracefulstop_string_free(NULL);
    if (failures == 0) printf("abi_smoke: all checks passed\n");
    return failures == 0 ? 0 : 1;
}
