/* Leaks exactly N blocks of SIZE bytes from leaky_function() while allocating and freeing much more elsewhere.
 * usage: leak [N] [SIZE] [STEPS] [STEP_MS]
 * The leak is spread over STEPS steps with STEP_MS of sleep between them (for dump series). Pages of the leaked
 * blocks are never touched, so a 400 MiB leak costs little real memory. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void **keep;

__attribute__((noinline)) void leaky_function(long from, long to, size_t size) {
    for (long i = from; i < to; i++) keep[i] = malloc(size);
}

__attribute__((noinline)) void churn(long total) {
    long done = 0;
    void *ring[64] = {0};
    int k = 0;
    while (done < total) {
        size_t s = 16 + (size_t)(done % 8000);
        void *p = malloc(s);
        void *q = calloc(4, 16);
        p = realloc(p, s * 2);
        free(q);
        free(ring[k]);
        ring[k] = p;
        k = (k + 1) % 64;
        done += (long)s * 3;
    }
    for (k = 0; k < 64; k++) free(ring[k]);
}

__attribute__((noinline)) void *stable_cache(void) {
    /* 4 MiB held for the whole run: live but not growing. */
    return malloc(4 << 20);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 102400;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 4096;
    long steps = argc > 3 ? atol(argv[3]) : 1;
    long step_ms = argc > 4 ? atol(argv[4]) : 0;
    keep = calloc((size_t)n, sizeof(void *));
    void *cache = stable_cache();
    churn(1L << 30);
    for (long s = 0; s < steps; s++) {
        leaky_function(n * s / steps, n * (s + 1) / steps, size);
        churn(64L << 20);
        if (step_ms > 0) {
            struct timespec ts = {step_ms / 1000, (step_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    churn(1L << 30);
    printf("leaked %ld blocks of %zu bytes (cache %p)\n", n, size, cache != NULL ? (void *)1 : NULL);
    return 0;
}
