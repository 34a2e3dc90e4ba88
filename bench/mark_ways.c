/* Three ways to create a durable marker, for comparing them side by side (bench/notes.md, figure 5):
 *   0  the raw syscalls: O_EXCL create of the final name, write, fsync, close, directory fsync
 *      (fast, but a reader can see a partial file); bench.py's "raw C" of figure 5
 *   1  a named temporary: existence check, create, write, fsync, close, rename, directory fsync
 *   2  a file without a name: existence check, O_TMPFILE, write, fsync, linkat, directory fsync
 * Prints the mean microseconds per mark.   mark_ways DIR WAY COUNT FIRST
 * Several at once into one directory:
 *   for k in 0 1 2 3 4 5 6 7; do ./mark_ways d 2 100 $((k*100)) & done; wait */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int mark(int dir, int way, const char *name, const char *path) {
    struct stat info;
    if (way == 0) {
        int fd = openat(dir, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        return fd < 0 || write(fd, name, strlen(name)) < 0 || fsync(fd) || close(fd) || fsync(dir);
    }
    if (fstatat(dir, path, &info, 0) == 0) return 0;
    if (way == 1) {
        char temporary[96];
        snprintf(temporary, sizeof temporary, ".tmp.%d.%s", getpid(), name);
        int fd = openat(dir, temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        return fd < 0 || write(fd, name, strlen(name)) < 0 || fsync(fd) || close(fd) || renameat(dir, temporary, dir, path) ||
               fsync(dir);
    }
    int fd = openat(dir, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, 0644);
    char source[64];
    snprintf(source, sizeof source, "/proc/self/fd/%d", fd);
    return fd < 0 || write(fd, name, strlen(name)) < 0 || fsync(fd) ||
           linkat(AT_FDCWD, source, dir, path, AT_SYMLINK_FOLLOW) || close(fd) || fsync(dir);
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: mark_ways DIR WAY(0|1|2) COUNT FIRST\n"); return 64; }
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (dir < 0) { perror(argv[1]); return 66; }
    int way = atoi(argv[2]);
    long count = atol(argv[3]), first = atol(argv[4]);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = first; i < first + count; i++) {
        char name[32], path[48];
        snprintf(name, sizeof name, "u%07ld", i);
        snprintf(path, sizeof path, "%s.done", name);
        if (mark(dir, way, name, path)) { perror(path); return 1; }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    printf("%.1f\n", ((double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec)) / 1e3 / (double)count);
    return 0;
}
