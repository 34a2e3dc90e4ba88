/* The durable syscalls of marking a unit done, with nothing around them, for comparison with
 * mark_done: create the marker with O_EXCL, write the unit's name, fsync it, close it, fsync the
 * directory. Prints the mean microseconds per mark.   raw_mark DIR COUNT FIRST */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) return 64;
    int directory = open(argv[1], O_RDONLY | O_DIRECTORY);
    long count = atol(argv[2]), first = atol(argv[3]);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = first; i < first + count; i++) {
        char name[64], path[64];
        snprintf(name, sizeof name, "u%07ld", i);
        snprintf(path, sizeof path, "%s.done", name);
        int fd = openat(directory, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, name, strlen(name)) < 0 || fsync(fd) != 0 || close(fd) != 0 || fsync(directory) != 0) {
            perror(path);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    printf("%.3f\n", seconds * 1e6 / (double)count);
    return 0;
}
