/* The heap's peak, for bench/bench.py's memory figures (LD_PRELOAD'ed into a fresh process).
 * Peak RSS cannot tell a share of 12 KB from the pages that code and the interpreter touch, so
 * the benchmark counts what is asked of malloc instead: every allocation's usable size, the
 * running total, and its highest value since the last reset (heap_peak_reset, heap_peak, read
 * through ctypes). It wraps glibc's own entry points (__libc_malloc and friends), so it needs no
 * dlsym, which itself allocates. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static _Atomic long heap_now, heap_top;

static void count(long change) {
    long now = atomic_fetch_add(&heap_now, change) + change;
    long top = atomic_load(&heap_top);
    while (now > top && !atomic_compare_exchange_weak(&heap_top, &top, now)) {}
}

void heap_peak_reset(void) { atomic_store(&heap_top, atomic_load(&heap_now)); }
long heap_peak(void) { return atomic_load(&heap_top); }
long heap_now_bytes(void) { return atomic_load(&heap_now); }

void *malloc(size_t size) {
    void *p = __libc_malloc(size);
    if (p) count((long)malloc_usable_size(p));
    return p;
}

void *calloc(size_t n, size_t size) {
    void *p = __libc_calloc(n, size);
    if (p) count((long)malloc_usable_size(p));
    return p;
}

void *realloc(void *old, size_t size) {
    long before = old ? (long)malloc_usable_size(old) : 0;
    void *p = __libc_realloc(old, size);
    if (p) count((long)malloc_usable_size(p) - before);
    else if (size == 0 && old) count(-before);
    return p;
}

void free(void *p) {
    if (p) count(-(long)malloc_usable_size(p));
    __libc_free(p);
}

void *memalign(size_t alignment, size_t size) {
    void *p = __libc_memalign(alignment, size);
    if (p) count((long)malloc_usable_size(p));
    return p;
}

void *aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    void *p = memalign(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

/* With HEAP_PEAK_REPORT set, the whole process's heap peak is written there at exit: for
 * processes the benchmark cannot reach through ctypes (gstop). */
__attribute__((destructor)) static void report_at_exit(void) {
    const char *path = getenv("HEAP_PEAK_REPORT");
    if (!path) return;
    char text[32];
    long value = heap_peak();
    int length = 0;
    char digits[24];
    do { digits[length++] = (char)('0' + value % 10); value /= 10; } while (value > 0);
    for (int i = 0; i < length; i++) text[i] = digits[length - 1 - i];
    text[length++] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write(fd, text, (size_t)length) < 0) {}
        close(fd);
    }
}
