/* Single-threaded allocation churn for argv[1] milliseconds, with a slow leak from leak_some(): for the test of
 * dumps answered without a control thread. Prints the number of iterations. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void **leaked;
static size_t nleaked, cap;

__attribute__((noinline)) void leak_some(void) {
    if (nleaked == cap) {
        cap = cap ? cap * 2 : 1024;
        leaked = realloc(leaked, cap * sizeof *leaked);
    }
    leaked[nleaked++] = malloc(4096);
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int main(int argc, char **argv) {
    long duration = argc > 1 ? atol(argv[1]) : 3000, start = now_ms(), i = 0;
    enum { RING = 1024 };
    static void *ring[RING];
    unsigned long x = 42;
    while (now_ms() - start < duration) {
        for (int k = 0; k < 1000; k++, i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            int slot = (int)(x % RING);
            free(ring[slot]);
            ring[slot] = malloc(16 + (x >> 20) % 2000);
        }
        leak_some();
    }
    printf("%ld\n", i);
    return 0;
}
