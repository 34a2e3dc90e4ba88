/* A worker for the reliability tests (python/tests/test_reliability.py), written against
 * include/gracefulstop.h so that it starts in a millisecond: a thousand kill -9 trials then take
 * seconds, not minutes.
 *
 *   mark_worker STATE NODE FIRST COUNT THREADS
 *
 * Opens STATE as NODE, writes "ready\n", and marks units "u%06d" FIRST .. FIRST+COUNT-1, spread over
 * THREADS threads (unit i goes to thread i mod THREADS). After each mark_done returns it writes "i\n" to standard
 * output with one write(2), so that a test that kills it knows exactly which marks returned. At the
 * end it prints "run_done 0|1" and exits 0; any failed call prints the library's message and exits 1.
 * With START_AT=<unix time in ns> in the environment it waits until then before marking, so that
 * several workers can finish at the same instant. */
#include "gracefulstop.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static gracefulstop_state *state;
static long first, count, threads;

static void *mark_share(void *argument) {
    long thread = (long)argument;
    for (long i = first + thread; i < first + count; i += threads) {
        char unit[32], line[32];
        snprintf(unit, sizeof unit, "u%06ld", i);
        if (gracefulstop_mark_done(state, unit, GRACEFULSTOP_NUL_TERMINATED, NULL) != GRACEFULSTOP_OK) {
            fprintf(stderr, "mark_worker: %s\n", gracefulstop_last_error());
            exit(1);
        }
        int length = snprintf(line, sizeof line, "%ld\n", i);
        if (write(1, line, (size_t)length) != length) exit(1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: mark_worker STATE NODE FIRST COUNT THREADS\n");
        return 64;
    }
    first = atol(argv[3]);
    count = atol(argv[4]);
    threads = atol(argv[5]);
    if (gracefulstop_open(argv[1], atol(argv[2]), &state) != GRACEFULSTOP_OK) {
        fprintf(stderr, "mark_worker: %s\n", gracefulstop_last_error());
        return 1;
    }
    if (write(1, "ready\n", 6) != 6) return 1;
    const char *start_at = getenv("START_AT");
    if (start_at != NULL) {
        long long target = atoll(start_at), now = 0;
        do {
            struct timespec clock;
            clock_gettime(CLOCK_REALTIME, &clock);
            now = (long long)clock.tv_sec * 1000000000LL + clock.tv_nsec;
        } while (now < target);
    }
    pthread_t workers[64];
    for (long t = 0; t < threads && t < 64; t++) pthread_create(&workers[t], NULL, mark_share, (void *)t);
    for (long t = 0; t < threads && t < 64; t++) pthread_join(workers[t], NULL);
    bool done = false;
    if (gracefulstop_run_done(state, &done) != GRACEFULSTOP_OK) {
        fprintf(stderr, "mark_worker: %s\n", gracefulstop_last_error());
        return 1;
    }
    printf("run_done %d\n", done ? 1 : 0);
    gracefulstop_close(state);
    return 0;
}
