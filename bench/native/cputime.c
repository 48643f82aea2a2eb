/* cputime CMD ARGS...: runs CMD and writes "USER_US SYS_US" (the child's CPU time from wait4, in microseconds)
 * to file descriptor 3 (else stderr). Used by bench/native_overhead.sh: GNU time only prints 10 ms steps. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    pid_t p = fork();
    if (p == 0) { execvp(argv[1], argv + 1); _exit(127); }
    int st; struct rusage ru; wait4(p, &st, 0, &ru);
    FILE *o = fdopen(3, "w"); if (!o) o = stderr;
    fprintf(o, "%ld %ld\n", ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec, ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
