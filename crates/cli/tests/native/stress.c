/* 16 threads doing a malloc/free/realloc storm with every allocation function, plus fork+exec of a child.
 * Writes a deterministic result (per-thread checksums and the child's output) to argv[1]. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 16
#define ITERS 200000
#define SLOTS 256

static uint64_t sums[THREADS];

static void *worker(void *arg) {
    long id = (long)arg;
    uint64_t x = 88172645463325252ULL ^ (uint64_t)id, sum = 0;
    void *slot[SLOTS] = {0};
    size_t sz[SLOTS] = {0};
    for (long i = 0; i < ITERS; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        int k = (int)(x % SLOTS);
        size_t s = 1 + (size_t)((x >> 20) % 20000);
        if (slot[k]) {
            if (((unsigned char *)slot[k])[0] != (unsigned char)(sz[k] & 0xff)) sum += 1000000; /* corruption */
            if (malloc_usable_size(slot[k]) < sz[k]) sum += 1000000;
        }
        void *p = NULL;
        switch ((x >> 40) % 9) {
        case 0: free(slot[k]); p = malloc(s); break;
        case 1: free(slot[k]); p = calloc(1, s); break;
        case 2: p = realloc(slot[k], s); break;
        case 3: p = reallocarray(slot[k], s, 1); break;
        case 4: free(slot[k]); if (posix_memalign(&p, 64, s) != 0) p = NULL; break;
        case 5: free(slot[k]); p = aligned_alloc(32, (s + 31) & ~(size_t)31); break;
        case 6: free(slot[k]); p = memalign(128, s); break;
        case 7: free(slot[k]); p = valloc(s); break;
        default: free(slot[k]); p = pvalloc(s); break;
        }
        if (!p) { sum += 7777777; slot[k] = NULL; continue; }
        ((unsigned char *)p)[0] = (unsigned char)(s & 0xff);
        slot[k] = p;
        sz[k] = s;
        sum += s;
    }
    for (int k = 0; k < SLOTS; k++) free(slot[k]);
    sums[id] = sum;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    /* fork+exec while the storm runs */
    int pipefd[2];
    if (pipe(pipefd) != 0) return 3;
    pid_t pid = fork();
    if (pid == 0) {
        char *m = malloc(100); /* allocate in the child before exec */
        free(m);
        dup2(pipefd[1], 1);
        execl("/bin/sh", "sh", "-c", "printf 'child-ok LD_PRELOAD=%s\\n' \"${LD_PRELOAD:-none}\"", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char buf[256] = {0};
    ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
    int status = 0;
    waitpid(pid, &status, 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    FILE *f = fopen(argv[1], "w");
    if (!f) return 4;
    for (int i = 0; i < THREADS; i++) fprintf(f, "thread %d sum %llu\n", i, (unsigned long long)sums[i]);
    fprintf(f, "child status %d output %s", WEXITSTATUS(status), n > 0 ? buf : "(none)\n");
    fclose(f);
    return 0;
}
