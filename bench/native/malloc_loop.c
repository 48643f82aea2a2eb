/* Allocation-heavy C loop for the overhead benchmark: mixed sizes, a ring of live blocks, realloc and calloc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 20000000;
    enum { RING = 4096 };
    static void *ring[RING];
    unsigned long x = 12345, sum = 0;
    for (long i = 0; i < iters; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        int k = (int)(x % RING);
        size_t s = 8 + (x >> 16) % ((x & 0xf) == 0 ? 16384 : 256);
        free(ring[k]);
        void *p = (i & 7) == 0 ? calloc(1, s) : malloc(s);
        if ((i & 15) == 1) p = realloc(p, s * 2);
        ((char *)p)[0] = (char)i;
        ring[k] = p;
        sum += s;
    }
    for (int k = 0; k < RING; k++) free(ring[k]);
    printf("%lu\n", sum);
    return 0;
}
