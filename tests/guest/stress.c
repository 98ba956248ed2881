/* Kernel-side stress for the e2e suite (tests/e2e/stress.rs): many short-lived processes,
 * signals arriving while tasks block in pipe writes and reads, futexes and wait4, and
 * threads hammering futexes. Each mode checks its own invariants and prints one line of
 * results that do not depend on timing, so the output can be compared with the qemu
 * oracle; a broken invariant prints "FAIL ..." and exits 1.
 *
 * Usage: stress MODE N [SEED]
 *   spawn N     fork (and vfork) + execve of this program N times, statuses checked
 *   sigpipe N   a child writes N x 200000 bytes in blocking writes while its parent
 *               reads slowly and sends it SIGUSR1 (half with SA_RESTART); every byte
 *               arrives once and in order, partial counts are honoured
 *   sigwait N   wait4 and a futex wait (pthread_cond_wait) interrupted by a 1 ms
 *               interval timer N times over; statuses and counts checked
 *   futex N     8 threads x N increments under a mutex, and a condvar ping-pong
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAIL(...)                                                                    \
    do {                                                                             \
        printf("FAIL line %d: ", __LINE__);                                          \
        printf(__VA_ARGS__);                                                         \
        printf(" (errno %s)\n", strerrorname_np(errno));                             \
        exit(1);                                                                     \
    } while (0)

static uint64_t rng = 1;
static uint64_t next(void) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void on_signal(int sig, void (*h)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    if (sigaction(sig, &sa, NULL) < 0)
        FAIL("sigaction");
}

/* ---- spawn */

static int spawn(const char *self, long n) {
    for (long i = 0; i < n; i++) {
        char code[16];
        snprintf(code, sizeof code, "%ld", i % 200);
        pid_t pid = (i % 3 == 2) ? vfork() : fork();
        if (pid < 0)
            FAIL("fork %ld", i);
        if (pid == 0) {
            if (i % 2) {
                char *argv[] = {(char *)self, "exit", code, NULL};
                execv("/proc/self/exe", argv);
                _exit(127);
            }
            _exit((int)(i % 200));
        }
        int st;
        if (waitpid(pid, &st, 0) != pid)
            FAIL("waitpid %ld", i);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != i % 200)
            FAIL("child %ld: status 0x%x", i, st);
    }
    printf("spawn %ld ok\n", n);
    return 0;
}

/* ---- sigpipe */

static volatile sig_atomic_t usr1;
static void count_usr1(int sig) {
    (void)sig;
    usr1++;
}

static unsigned char pattern(uint64_t i) { return (unsigned char)(i * 7 + (i >> 11)); }

static int sigpipe(long n) {
    int p[2];
    if (pipe(p) < 0)
        FAIL("pipe");
    enum { CHUNK = 200000 };
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork");
    if (pid == 0) {
        close(p[0]);
        static unsigned char buf[CHUNK];
        uint64_t off = 0;
        long partial = 0;
        for (long k = 0; k < n; k++) {
            on_signal(SIGUSR1, count_usr1, k % 2 ? SA_RESTART : 0);
            for (int j = 0; j < CHUNK; j++)
                buf[j] = pattern(off + j);
            size_t done = 0;
            while (done < CHUNK) {
                ssize_t w = write(p[1], buf + done, CHUNK - done);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    FAIL("write");
                if ((size_t)w < CHUNK - done)
                    partial++;
                done += (size_t)w;
            }
            off += CHUNK;
        }
        /* A signal may interrupt the write only after some bytes went (a partial count)
         * or before any (EINTR): either way none is lost or doubled, which the reader
         * checks. */
        (void)partial;
        _exit(0);
    }
    close(p[1]);
    static unsigned char buf[65536 + 123];
    uint64_t got = 0;
    long kicks = 0;
    for (;;) {
        size_t want = 1 + next() % sizeof buf;
        ssize_t r = read(p[0], buf, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            FAIL("read");
        if (r == 0)
            break;
        for (ssize_t j = 0; j < r; j++)
            if (buf[j] != pattern(got + j))
                FAIL("byte %llu is %d, not %d", (unsigned long long)(got + j), buf[j],
                     pattern(got + j));
        got += r;
        if (next() % 4 == 0) {
            kill(pid, SIGUSR1);
            kicks++;
        }
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAIL("writer status 0x%x", st);
    if (got != (uint64_t)n * CHUNK)
        FAIL("read %llu bytes", (unsigned long long)got);
    printf("sigpipe %ld: %llu bytes in order, %s\n", n, (unsigned long long)got,
           kicks ? "signalled" : "never signalled");
    return 0;
}

/* ---- sigwait */

static volatile sig_atomic_t alarms;
static void count_alarm(int sig) {
    (void)sig;
    alarms++;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int flag;

static void *set_flag_later(void *arg) {
    (void)arg;
    struct timespec t = {0, 20 * 1000 * 1000};
    nanosleep(&t, NULL);
    pthread_mutex_lock(&lock);
    flag = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static int sigwait_mode(long n) {
    on_signal(SIGALRM, count_alarm, SA_RESTART);
    struct itimerval it = {{0, 1000}, {0, 1000}};
    if (setitimer(ITIMER_REAL, &it, NULL) < 0)
        FAIL("setitimer");
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            struct timespec t = {0, 10 * 1000 * 1000};
            while (nanosleep(&t, &t) < 0 && errno == EINTR)
                ;
            _exit((int)(i % 100));
        }
        int st;
        pid_t r;
        while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
            ;
        if (r != pid || !WIFEXITED(st) || WEXITSTATUS(st) != i % 100)
            FAIL("wait %ld: %d status 0x%x", i, r, st);
        pthread_t th;
        flag = 0;
        if (pthread_create(&th, NULL, set_flag_later, NULL))
            FAIL("pthread_create");
        pthread_mutex_lock(&lock);
        while (!flag)
            pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
        pthread_join(th, NULL);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("sigwait %ld ok, %s\n", n, alarms ? "alarms came" : "no alarm");
    return 0;
}

/* ---- futex */

enum { THREADS = 8 };
static long counter, per_thread;
static int turn;

static void *hammer(void *arg) {
    long id = (long)arg;
    for (long i = 0; i < per_thread; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        if (i % 64 == 0)
            sched_yield();
    }
    /* Ping-pong: thread id waits for its turn, passes it on. */
    for (int round = 0; round < 20; round++) {
        pthread_mutex_lock(&lock);
        while (turn % THREADS != id)
            pthread_cond_wait(&cond, &lock);
        turn++;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static int futex_mode(long n) {
    per_thread = n;
    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&th[i], NULL, hammer, (void *)i))
            FAIL("pthread_create");
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    if (counter != THREADS * n || turn != THREADS * 20)
        FAIL("counter %ld turn %d", counter, turn);
    printf("futex %d x %ld: counter %ld, %d turns\n", THREADS, n, counter, turn);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 3 && !strcmp(argv[1], "exit"))
        return atoi(argv[2]);
    if (argc < 3) {
        fprintf(stderr, "usage: stress spawn|sigpipe|sigwait|futex N [SEED]\n");
        return 2;
    }
    long n = atol(argv[2]);
    if (argc > 3)
        rng = strtoull(argv[3], NULL, 0);
    if (!strcmp(argv[1], "spawn"))
        return spawn(argv[0], n);
    if (!strcmp(argv[1], "sigpipe"))
        return sigpipe(n);
    if (!strcmp(argv[1], "sigwait"))
        return sigwait_mode(n);
    if (!strcmp(argv[1], "futex"))
        return futex_mode(n);
    fprintf(stderr, "stress: unknown mode %s\n", argv[1]);
    return 2;
}
