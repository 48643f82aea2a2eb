/* Exercises the preload's tagged (sampled) blocks: run with a 1-byte interval every allocation is sampled.
 * 4 threads allocate with every function, fill each block up to malloc_usable_size with a pattern, check it
 * before realloc/free and after realloc (the preserved prefix), check alignments; glibc functions that allocate
 * for the program or realloc its buffers (strdup, getline, open_memstream, asprintf); frees in a fork child.
 * Writes a deterministic summary to argv[1]; any corruption is counted in it. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define ITERS 20000
#define SLOTS 64

struct block { unsigned char *p; size_t size; unsigned char seed; };

static uint64_t sums[THREADS], errors[THREADS];

static void fill(struct block *b) {
    size_t n = malloc_usable_size(b->p);
    if (n < b->size) n = b->size; /* counted as an error by the caller */
    for (size_t i = 0; i < n; i++) b->p[i] = (unsigned char)(b->seed + i * 7);
}

static int check(const struct block *b, size_t upto) {
    for (size_t i = 0; i < upto; i++)
        if (b->p[i] != (unsigned char)(b->seed + i * 7)) return 1;
    return 0;
}

static void *worker(void *arg) {
    long id = (long)arg;
    uint64_t x = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(id + 1), sum = 0, err = 0;
    struct block slot[SLOTS] = {{0}};
    for (long i = 0; i < ITERS; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        struct block *b = &slot[x % SLOTS];
        size_t s = (x >> 12) % 5 == 0 ? 1 + (x >> 20) % 70000 : 1 + (x >> 20) % 300;
        if (b->p && check(b, b->size)) err++;
        unsigned char *p = NULL;
        size_t align = 16;
        switch ((x >> 40) % 8) {
        case 0: free(b->p); p = malloc(s); break;
        case 1: free(b->p); p = calloc(s, 1);
            for (size_t k = 0; p && k < s; k++) if (p[k]) { err++; break; }
            break;
        case 2: case 3: /* realloc keeps the prefix */
            p = realloc(b->p, s);
            if (p && b->p) {
                struct block t = {p, s < b->size ? s : b->size, b->seed};
                if (check(&t, t.size)) err++;
            }
            break;
        case 4: p = reallocarray(b->p, s, 1);
            if (p && b->p) {
                struct block t = {p, s < b->size ? s : b->size, b->seed};
                if (check(&t, t.size)) err++;
            }
            break;
        case 5: free(b->p); align = 64; if (posix_memalign((void **)&p, align, s)) p = NULL; break;
        case 6: free(b->p); align = (size_t)1 << (4 + (x >> 50) % 9); p = memalign(align, s); break; /* 16..4096 */
        default: free(b->p); align = 4096; p = valloc(s); break;
        }
        if (!p) { err++; b->p = NULL; continue; }
        if ((uintptr_t)p % align) err++;
        if (malloc_usable_size(p) < s) err++;
        b->p = p; b->size = s; b->seed = (unsigned char)(x >> 56);
        fill(b);
        sum += s;
    }
    /* glibc allocating for us / reallocating our buffers */
    for (int i = 0; i < 200; i++) {
        char *d = strdup("a string duplicated by glibc");
        if (strcmp(d, "a string duplicated by glibc")) err++;
        free(d);
        char *a = NULL;
        if (asprintf(&a, "%d-%ld", i, id) < 0) err++;
        free(a);
        size_t cap = 1;
        char *line = malloc(cap); /* getline reallocs our block */
        FILE *f = fmemopen("first line that is long enough to need a bigger buffer\nsecond\n", 63, "r");
        if (getline(&line, &cap, f) != 55 || strncmp(line, "first line", 10)) err++;
        fclose(f);
        free(line);
        char *buf = NULL; size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        for (int k = 0; k < 100; k++) fprintf(m, "%d,", k);
        fclose(m);
        if (len < 100 || strncmp(buf, "0,1,2,", 6)) err++;
        free(buf);
    }
    for (int k = 0; k < SLOTS; k++) {
        if (slot[k].p && check(&slot[k], slot[k].size)) err++;
        if (k % 2 == 0) free(slot[k].p);
    }
    /* Odd slots are left for the fork child and the parent to free. */
    sums[id] = sum;
    errors[id] = err;
    static struct block keep[THREADS][SLOTS];
    memcpy(keep[id], slot, sizeof slot);
    return keep[id];
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    pthread_t t[THREADS];
    struct block *kept[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], (void **)&kept[i]);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        for (int i = 0; i < THREADS; i++)
            for (int k = 1; k < SLOTS; k += 2) {
                if (kept[i][k].p && check(&kept[i][k], kept[i][k].size)) bad++;
                free(kept[i][k].p);
            }
        void *p = malloc(1000); /* allocations in the child still work */
        free(p);
        _exit(bad ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    for (int i = 0; i < THREADS; i++)
        for (int k = 1; k < SLOTS; k += 2) free(kept[i][k].p);
    FILE *f = fopen(argv[1], "w");
    if (!f) return 4;
    for (int i = 0; i < THREADS; i++)
        fprintf(f, "thread %d sum %llu errors %llu\n", i, (unsigned long long)sums[i], (unsigned long long)errors[i]);
    fprintf(f, "child status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    fclose(f);
    return 0;
}
