/* Threads as Linux runs them: pthreads over clone(CLONE_THREAD), futex (WAIT, WAKE, REQUEUE,
 * CMP_REQUEUE, WAIT_BITSET, WAKE_OP), thread-local storage, signals to threads, a thread
 * that spins (the scheduler must preempt it), exit and exec from threads.
 * Each case prints facts Linux guarantees (no tids, no times, no interleavings), for the
 * e2e test to compare with qemu-riscv64 in a chroot. Usage: thread CASE ("list": cases). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *self;
static int failures;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            printf("FAIL line %d: %s (errno %s)\n", __LINE__, #cond, strerrorname_np(errno)); \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)

/* fork, or exit at once (a missing fork must not hang the case). */
static pid_t xfork(void) {
    pid_t p = fork();
    if (p < 0) {
        printf("fork: %s\n", strerrorname_np(errno));
        exit(2);
    }
    return p;
}

/* pthread_create, or exit at once. */
static int xpthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
    int r = pthread_create(t, a, fn, arg);
    if (r) {
        printf("pthread_create: %s\n", strerrorname_np(r));
        exit(2);
    }
    return 0;
}

static const char *res(long r) {
    static char b[8][48];
    static int i;
    i = (i + 1) % 8;
    if (r < 0)
        snprintf(b[i], sizeof b[i], "-%s", strerrorname_np(errno));
    else
        snprintf(b[i], sizeof b[i], "%ld", r);
    return b[i];
}

static const char *st(int s) {
    static char b[4][48];
    static int i;
    i = (i + 1) % 4;
    if (WIFEXITED(s))
        snprintf(b[i], sizeof b[i], "exited %d", WEXITSTATUS(s));
    else if (WIFSIGNALED(s))
        snprintf(b[i], sizeof b[i], "killed by SIG%s", sigabbrev_np(WTERMSIG(s)));
    else
        snprintf(b[i], sizeof b[i], "status %#x", s);
    return b[i];
}

static const char *reap(pid_t pid) {
    int s = 0;
    pid_t r = waitpid(pid, &s, 0);
    if (r != pid) {
        printf("FAIL: waitpid -> %s\n", res(r));
        failures++;
        return "?";
    }
    return st(s);
}

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static long futex(atomic_int *uaddr, int op, int val, const struct timespec *t, atomic_int *uaddr2,
                  int val3) {
    return syscall(SYS_futex, uaddr, op, val, t, uaddr2, val3);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ cases */

enum { NT = 4 };
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static pid_t tids[NT];
static pid_t pids[NT];

static void *adder(void *arg) {
    long id = (long)arg;
    tids[id] = gettid_();
    pids[id] = getpid();
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
    }
    return (void *)(id * 10);
}

static atomic_int bumped;
static void *bump(void *arg) {
    volatile char use_stack[16 * 1024];
    use_stack[0] = 1;
    use_stack[sizeof use_stack - 1] = use_stack[0];
    atomic_fetch_add(&bumped, 1);
    return arg;
}

/* pthread_create/join, a mutex-protected counter, ids. */
static void case_create_join(void) {
    pthread_t t[NT];
    for (long i = 0; i < NT; i++) CHECK(xpthread_create(&t[i], NULL, adder, (void *)i) == 0);
    long sum = 0;
    for (int i = 0; i < NT; i++) {
        void *r;
        CHECK(pthread_join(t[i], &r) == 0);
        sum += (long)r;
    }
    int distinct = 1, same_pid = 1, not_main = 1;
    for (int i = 0; i < NT; i++) {
        same_pid &= pids[i] == getpid();
        not_main &= tids[i] != getpid();
        for (int j = 0; j < i; j++) distinct &= tids[i] != tids[j];
    }
    printf("%d threads: counter %ld, join values sum %ld\n", NT, counter, sum);
    printf("tids distinct %d, none is the pid %d, getpid the same in all %d, main's tid is the pid %d\n",
           distinct, not_main, same_pid, gettid_() == getpid());
    /* Many short threads with small stacks, half of them detached. */
    pthread_t many[64];
    for (int i = 0; i < 64; i++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 64 * 1024);
        if (i % 2) pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        CHECK(xpthread_create(&many[i], &a, bump, NULL) == 0);
        pthread_attr_destroy(&a);
    }
    for (int i = 0; i < 64; i += 2) pthread_join(many[i], NULL);
    double start = now_s();
    while (atomic_load(&bumped) < 64 && now_s() - start < 10) sleep_ms(1);
    printf("64 threads with 64 KiB stacks, 32 detached: %d ran\n", atomic_load(&bumped));
}

/* A bounded queue with a mutex and two condition variables; a broadcast. */
enum { QN = 4, ITEMS = 400 };
static int q[QN], qhead, qlen;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static long consumed_sum, consumed_n;
static unsigned char seen[2 * ITEMS];
static void *producer(void *arg) {
    int base = (int)(long)arg * ITEMS;
    for (int i = 0; i < ITEMS; i++) {
        pthread_mutex_lock(&mu);
        while (qlen == QN) pthread_cond_wait(&not_full, &mu);
        q[(qhead + qlen++) % QN] = base + i;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}
static void *consumer(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (qlen == 0) pthread_cond_wait(&not_empty, &mu);
        int v = q[qhead];
        qhead = (qhead + 1) % QN;
        qlen--;
        pthread_cond_signal(&not_full);
        if (v >= 0) {
            consumed_sum += v;
            consumed_n++;
            seen[v]++;
        }
        pthread_mutex_unlock(&mu);
        if (v < 0) return NULL;
    }
}
static int go, woken;
static pthread_cond_t go_cv = PTHREAD_COND_INITIALIZER;
static void *waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!go) pthread_cond_wait(&go_cv, &mu);
    woken++;
    pthread_mutex_unlock(&mu);
    return NULL;
}
static void case_condvar(void) {
    pthread_t p[2], c[2];
    for (long i = 0; i < 2; i++) CHECK(xpthread_create(&p[i], NULL, producer, (void *)i) == 0);
    for (long i = 0; i < 2; i++) CHECK(xpthread_create(&c[i], NULL, consumer, NULL) == 0);
    for (int i = 0; i < 2; i++) pthread_join(p[i], NULL);
    /* One end marker per consumer. */
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&mu);
        while (qlen == QN) pthread_cond_wait(&not_full, &mu);
        q[(qhead + qlen++) % QN] = -1;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&mu);
    }
    for (int i = 0; i < 2; i++) pthread_join(c[i], NULL);
    int once = 1;
    for (int i = 0; i < 2 * ITEMS; i++) once &= seen[i] == 1;
    printf("2 producers, 2 consumers, queue of %d: %ld items, sum %ld, each once %d\n", QN,
           consumed_n, consumed_sum, once);
    pthread_t w[5];
    for (int i = 0; i < 5; i++) CHECK(xpthread_create(&w[i], NULL, waiter, NULL) == 0);
    sleep_ms(20);
    pthread_mutex_lock(&mu);
    go = 1;
    pthread_cond_broadcast(&go_cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < 5; i++) pthread_join(w[i], NULL);
    printf("broadcast: %d of 5 waiters woke\n", woken);
    /* A timed wait that times out. */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += 20 * 1000 * 1000;
    if (dl.tv_nsec >= 1000000000) dl.tv_sec++, dl.tv_nsec -= 1000000000;
    pthread_mutex_lock(&mu);
    int r = pthread_cond_timedwait(&go_cv, &mu, &dl);
    pthread_mutex_unlock(&mu);
    printf("pthread_cond_timedwait 20 ms: %s\n", r == ETIMEDOUT ? "ETIMEDOUT" : "other");
    printf("pthread_mutex_trylock on a locked mutex: %s\n",
           (pthread_mutex_lock(&mu), r = pthread_mutex_trylock(&mu), pthread_mutex_unlock(&mu),
            r == EBUSY ? "EBUSY" : "other"));
}

/* A barrier made of a futex, N threads and M rounds; and pthread_barrier. */
static atomic_int bar_count, bar_gen;
static void fbarrier(int n) {
    int gen = atomic_load(&bar_gen);
    if (atomic_fetch_add(&bar_count, 1) + 1 == n) {
        atomic_store(&bar_count, 0);
        atomic_fetch_add(&bar_gen, 1);
        futex(&bar_gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    } else {
        while (atomic_load(&bar_gen) == gen) futex(&bar_gen, FUTEX_WAIT_PRIVATE, gen, NULL, NULL, 0);
    }
}
enum { ROUNDS = 50 };
static int slots[NT][ROUNDS];
static int bad_rounds;
static pthread_barrier_t pbar;
static void *bar_worker(void *arg) {
    int id = (int)(long)arg;
    for (int r = 0; r < ROUNDS; r++) {
        slots[id][r] = r * 100 + id;
        fbarrier(NT);
        /* Every thread has written round r. */
        for (int j = 0; j < NT; j++)
            if (slots[j][r] != r * 100 + j) __atomic_fetch_add(&bad_rounds, 1, __ATOMIC_SEQ_CST);
        fbarrier(NT);
    }
    int serial = pthread_barrier_wait(&pbar) == PTHREAD_BARRIER_SERIAL_THREAD;
    return (void *)(long)serial;
}
static void case_barrier(void) {
    pthread_t t[NT];
    pthread_barrier_init(&pbar, NULL, NT);
    for (long i = 0; i < NT; i++) CHECK(xpthread_create(&t[i], NULL, bar_worker, (void *)i) == 0);
    long serials = 0;
    for (int i = 0; i < NT; i++) {
        void *r;
        pthread_join(t[i], &r);
        serials += (long)r;
    }
    printf("futex barrier, %d threads, %d rounds: generations %d, rounds seen incomplete %d\n", NT,
           ROUNDS, atomic_load(&bar_gen), bad_rounds);
    printf("pthread_barrier_wait: %ld serial thread\n", serials);
}

/* futex operations, with and without waiters. */
static atomic_int f1, f2, ready;
static void *f1_waiter(void *arg) {
    (void)arg;
    atomic_fetch_add(&ready, 1);
    futex(&f1, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0); /* requeued to f2, woken there */
    while (atomic_load(&f2) == 0) futex(&f2, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}
static void *bitset_waiter(void *arg) {
    (void)arg;
    atomic_fetch_add(&ready, 1);
    while (atomic_load(&f1) == 0)
        futex(&f1, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 0x2);
    return NULL;
}
static void case_futex(void) {
    atomic_int v = 1;
    struct timespec t10 = {0, 10 * 1000 * 1000};
    printf("WAIT with a different value: %s\n", res(futex(&v, FUTEX_WAIT, 2, NULL, NULL, 0)));
    printf("WAIT 10 ms: %s\n", res(futex(&v, FUTEX_WAIT_PRIVATE, 1, &t10, NULL, 0)));
    printf("WAKE without waiters: %s\n", res(futex(&v, FUTEX_WAKE, 1, NULL, NULL, 0)));
    struct timespec past;
    clock_gettime(CLOCK_MONOTONIC, &past);
    past.tv_sec -= 1;
    printf("WAIT_BITSET, absolute deadline in the past: %s\n",
           res(futex(&v, FUTEX_WAIT_BITSET_PRIVATE, 1, &past, NULL, FUTEX_BITSET_MATCH_ANY)));
    clock_gettime(CLOCK_REALTIME, &past);
    past.tv_sec -= 1;
    printf("WAIT_BITSET|CLOCK_REALTIME, deadline in the past: %s\n",
           res(futex(&v, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 1, &past, NULL, -1)));
    printf("WAIT_BITSET with bitset 0: %s, WAKE_BITSET with bitset 0: %s\n",
           res(futex(&v, FUTEX_WAIT_BITSET, 1, NULL, NULL, 0)),
           res(futex(&v, FUTEX_WAKE_BITSET, 1, NULL, NULL, 0)));
    printf("unaligned address: %s, unknown op: %s, bad timeout: %s\n",
           res(futex((atomic_int *)((char *)&v + 1), FUTEX_WAKE, 1, NULL, NULL, 0)),
           res(futex(&v, 99, 1, NULL, NULL, 0)),
           res(futex(&v, FUTEX_WAIT, 1, &(struct timespec){0, 2000000000}, NULL, 0)));
    printf("CMP_REQUEUE with a different value: %s\n",
           res(futex(&v, FUTEX_CMP_REQUEUE, 1, (void *)1L, &f2, 5)));
    /* WAKE_OP: *uaddr2 = *uaddr2 OP oparg, then wake on uaddr, and on uaddr2 if the old
     * value of *uaddr2 CMP cmparg. */
    atomic_int a = 0, b = 10;
    static const struct {
        const char *name;
        int op;
    } ops[] = {
        {"SET 5, CMP_EQ 10", FUTEX_OP(FUTEX_OP_SET, 5, FUTEX_OP_CMP_EQ, 10)},
        {"ADD 3, CMP_GT 0", FUTEX_OP(FUTEX_OP_ADD, 3, FUTEX_OP_CMP_GT, 0)},
        {"OR 0x30, CMP_LT 0", FUTEX_OP(FUTEX_OP_OR, 0x30, FUTEX_OP_CMP_LT, 0)},
        {"ANDN 1, CMP_NE 0", FUTEX_OP(FUTEX_OP_ANDN, 1, FUTEX_OP_CMP_NE, 0)},
        {"XOR 0xff, CMP_GE 0", FUTEX_OP(FUTEX_OP_XOR, 0xff, FUTEX_OP_CMP_GE, 0)},
        {"SET 1<<4 (OPARG_SHIFT), CMP_LE 0",
         FUTEX_OP((FUTEX_OP_SET | FUTEX_OP_OPARG_SHIFT), 4, FUTEX_OP_CMP_LE, 0)},
    };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        long r = futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1L, &b, ops[i].op);
        printf("WAKE_OP %s: %s, now %d\n", ops[i].name, res(r), atomic_load(&b));
    }
    printf("WAKE_OP with a bad op: %s\n",
           res(futex(&a, FUTEX_WAKE_OP, 1, (void *)1L, &b, FUTEX_OP(7, 0, 0, 0))));

    /* Three waiters on f1, all requeued to f2 (however many calls it takes until they are
     * all asleep), then woken there. */
    pthread_t t[3];
    for (int i = 0; i < 3; i++) CHECK(xpthread_create(&t[i], NULL, f1_waiter, NULL) == 0);
    while (atomic_load(&ready) < 3) sched_yield();
    long requeued = 0, woken = 0, r;
    double start = now_s();
    while (requeued < 3 && now_s() - start < 10) {
        r = futex(&f1, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)(long)INT_MAX, &f2, 0);
        if (r > 0) requeued += r;
        if (requeued < 3) sleep_ms(1);
    }
    printf("CMP_REQUEUE of 3 waiters (wake 0): %ld requeued; WAKE on the first futex now %s\n",
           requeued, res(futex(&f1, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0)));
    atomic_store(&f2, 1);
    while (woken < 3 && now_s() - start < 10) {
        r = futex(&f2, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        if (r > 0) woken += r;
        if (woken < 3) sleep_ms(1);
    }
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    printf("WAKE on the second futex: %ld woken, all joined\n", woken);
    /* WAIT_BITSET 0x2: a WAKE_BITSET 0x1 does not wake it, 0x2 does. */
    atomic_store(&f1, 0);
    atomic_store(&ready, 0);
    pthread_t bt;
    CHECK(xpthread_create(&bt, NULL, bitset_waiter, NULL) == 0);
    while (atomic_load(&ready) < 1) sched_yield();
    sleep_ms(20);
    long w1 = futex(&f1, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x1);
    atomic_store(&f1, 1);
    long w2 = 0;
    start = now_s();
    while (w2 < 1 && now_s() - start < 10) {
        r = futex(&f1, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x2);
        if (r > 0) w2 += r;
        if (w2 < 1) sleep_ms(1);
    }
    pthread_join(bt, NULL);
    printf("waiter with bitset 0x2: WAKE_BITSET 0x1 woke %ld, 0x2 woke %ld\n", w1, w2);
    /* A shared (not private) futex between processes in a MAP_SHARED page. */
    atomic_int *shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shm != MAP_FAILED);
    shm[0] = 0;
    pid_t c = xfork();
    if (c == 0) {
        while (atomic_load(&shm[0]) == 0) futex(&shm[0], FUTEX_WAIT, 0, NULL, NULL, 0);
        _exit(atomic_load(&shm[0]));
    }
    sleep_ms(20);
    atomic_store(&shm[0], 9);
    futex(&shm[0], FUTEX_WAKE, 1, NULL, NULL, 0);
    printf("shared futex across fork: child %s\n", reap(c));
}

/* Thread-local storage: each thread starts from the TLS image and has its own copy;
 * errno is per thread; pthread keys and their destructors. */
static __thread int tls_int = 5;
static __thread char tls_str[16] = "init";
static __thread long tls_zero;
static pthread_key_t key;
static atomic_int destructed;
static void key_dtor(void *p) { atomic_fetch_add(&destructed, (int)(long)p); }
static void *tls_worker(void *arg) {
    long id = (long)arg;
    int ok = tls_int == 5 && strcmp(tls_str, "init") == 0 && tls_zero == 0;
    tls_int = 100 + id;
    snprintf(tls_str, sizeof tls_str, "thread %ld", id);
    tls_zero = id;
    pthread_setspecific(key, (void *)(id + 1));
    errno = 1000 + id;
    fbarrier(NT); /* everyone has written its copy */
    sched_yield();
    char want[16];
    snprintf(want, sizeof want, "thread %ld", id);
    ok &= tls_int == 100 + id && strcmp(tls_str, want) == 0 && tls_zero == id &&
          errno == 1000 + id && pthread_getspecific(key) == (void *)(id + 1);
    return (void *)(long)ok;
}
static void case_tls(void) {
    tls_int = 1;
    strcpy(tls_str, "main");
    pthread_key_create(&key, key_dtor);
    pthread_t t[NT - 1];
    atomic_store(&bar_count, 0);
    for (long i = 0; i < NT - 1; i++) CHECK(xpthread_create(&t[i], NULL, tls_worker, (void *)(i + 1)) == 0);
    fbarrier(NT);
    int ok = 1;
    for (int i = 0; i < NT - 1; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok &= (long)r == 1;
    }
    printf("threads saw the initial TLS values and kept their own: %d\n", ok);
    printf("main's copy untouched: %d \"%s\" %ld\n", tls_int, tls_str, tls_zero);
    printf("key destructors ran with the values 2+3+4: %d\n", atomic_load(&destructed));
    unsigned long tp;
#ifdef __riscv
    __asm__("mv %0, tp" : "=r"(tp));
#else
    tp = (unsigned long)pthread_self();
#endif
    printf("tp points at the thread's TCB: %d\n", tp != 0);
}

/* Signals and threads: pthread_kill, process-directed signals to the one thread that does
 * not block them, sigwait in a dedicated thread, per-thread masks. */
static volatile pid_t handler_tid;
static volatile int handler_code;
static void on_sig(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    handler_tid = gettid_();
    handler_code = si->si_code;
}
static atomic_int t_ready;
static volatile pid_t t_tid;
static void *sig_target(void *arg) {
    (void)arg;
    t_tid = gettid_();
    sigset_t m, empty;
    sigemptyset(&empty);
    pthread_sigmask(SIG_SETMASK, NULL, &m);
    atomic_store(&t_ready, 1);
    while (!handler_tid) sigsuspend(&empty);
    return NULL;
}
static void *sig_waiter(void *arg) {
    (void)arg;
    sigset_t w;
    sigemptyset(&w);
    sigaddset(&w, SIGUSR2);
    int sig = 0;
    atomic_store(&t_ready, 1);
    sigwait(&w, &sig);
    return (void *)(long)sig;
}
static void *mask_thread(void *arg) {
    (void)arg;
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &m, NULL);
    pthread_sigmask(SIG_SETMASK, NULL, &m);
    return (void *)(long)sigismember(&m, SIGHUP);
}
static void case_signals(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    /* Every thread blocks SIGUSR1 outside sigsuspend; the target unblocks it there. */
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &m, NULL);
    pthread_t t;
    CHECK(xpthread_create(&t, NULL, sig_target, NULL) == 0);
    while (!atomic_load(&t_ready)) sched_yield();
    CHECK(pthread_kill(t, SIGUSR1) == 0);
    pthread_join(t, NULL);
    printf("pthread_kill(thread, SIGUSR1): handler ran in that thread %d, si_code %d (SI_TKILL)\n",
           handler_tid == t_tid, handler_code);
    handler_tid = 0;
    atomic_store(&t_ready, 0);
    CHECK(xpthread_create(&t, NULL, sig_target, NULL) == 0);
    while (!atomic_load(&t_ready)) sched_yield();
    CHECK(kill(getpid(), SIGUSR1) == 0);
    pthread_join(t, NULL);
    printf("kill(process, SIGUSR1), main blocks it: handled by the other thread %d, si_code %d\n",
           handler_tid == t_tid, handler_code);
    atomic_store(&t_ready, 0);
    CHECK(xpthread_create(&t, NULL, sig_waiter, NULL) == 0);
    while (!atomic_load(&t_ready)) sched_yield();
    CHECK(kill(getpid(), SIGUSR2) == 0);
    void *r;
    pthread_join(t, &r);
    printf("sigwait in a thread: got SIG%s\n", sigabbrev_np((int)(long)r));
    CHECK(xpthread_create(&t, NULL, mask_thread, NULL) == 0);
    pthread_join(t, &r);
    pthread_sigmask(SIG_SETMASK, NULL, &m);
    printf("per-thread masks: the thread blocked SIGHUP %ld, main has SIGHUP blocked %d\n", (long)r,
           sigismember(&m, SIGHUP));
    /* tgkill with a tid of another process's thread group fails. */
    printf("tgkill(pid, tid of an exited thread): %s\n",
           res(syscall(SYS_tgkill, getpid(), t_tid, 0)));
    printf("pthread_sigmask(99): %s\n", pthread_sigmask(99, &m, NULL) == EINVAL ? "EINVAL" : "other");
}

/* A thread that spins on a flag must not starve the thread that sets it. */
static volatile int spin_flag, spin_ack;
static void *spinner(void *arg) {
    (void)arg;
    unsigned long n = 0;
    while (!spin_flag) n++;
    spin_ack = 1;
    return (void *)n;
}
static void *setter(void *arg) {
    (void)arg;
    sleep_ms(10);
    spin_flag = 1;
    return NULL;
}
static volatile int ping, pong;
static void *ponger(void *arg) {
    long n = (long)arg;
    for (long i = 1; i <= n; i++) {
        while (ping != i) {
        }
        pong = i;
    }
    return NULL;
}
static void case_preempt(void) {
    pthread_t a, b;
    CHECK(xpthread_create(&a, NULL, spinner, NULL) == 0);
    CHECK(xpthread_create(&b, NULL, setter, NULL) == 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("spinning thread released by a sleeping one: %d\n", spin_ack);
    /* Ping-pong between two spinning threads. */
    enum { N = 20 };
    CHECK(xpthread_create(&a, NULL, ponger, (void *)(long)N) == 0);
    for (int i = 1; i <= N; i++) {
        ping = i;
        while (pong != i) {
        }
    }
    pthread_join(a, NULL);
    printf("ping-pong between two spinning threads: %d rounds\n", pong);
    /* A spinning child process does not starve its parent. */
    pid_t c = xfork();
    if (c == 0) {
        for (;;) {
        }
    }
    sleep_ms(10);
    CHECK(kill(c, SIGTERM) == 0);
    printf("spinning child killed by its parent: %s\n", reap(c));
}

/* How a process ends when threads exit. */
static void *sleepy(void *arg) {
    long how = (long)arg;
    sleep_ms(20);
    if (how == 1) {
        printf("  thread still runs after main's pthread_exit\n");
        exit(3);
    }
    if (how == 2) exit(4);
    if (how == 3) {
        syscall(SYS_exit, 0); /* only this thread ends */
    }
    if (how == 4) syscall(SYS_exit_group, 6);
    return NULL;
}
static void *forever(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}
static void case_exit(void) {
    static const char *what[] = {
        "main pthread_exit, the thread then exit(3)",
        "a thread calls exit(4) while main waits in pthread_join",
        "a thread ends with SYS_exit, main then returns 5",
        "a thread calls exit_group(6)",
        "main returns 7 while another thread blocks",
        "main pthread_exit, the last thread returns",
    };
    for (long how = 1; how <= 6; how++) {
        printf("%s:\n", what[how - 1]);
        pid_t c = xfork();
        if (c == 0) {
            pthread_t t;
            if (how == 5) {
                xpthread_create(&t, NULL, forever, NULL);
                sleep_ms(10);
                exit(7);
            }
            xpthread_create(&t, NULL, sleepy, (void *)(how == 6 ? 0L : how));
            if (how == 1 || how == 6) pthread_exit(NULL);
            if (how == 3) {
                sleep_ms(100);
                exit(5);
            }
            pthread_join(t, NULL);
            exit(99);
        }
        printf("  %s\n", reap(c));
    }
}

/* execve from a thread that is not the main one: the other threads are gone, the pid
 * stays. */
static void *exec_thread(void *arg) {
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)(long)arg);
    execl(self, "thread", "show-pid", pid, (char *)NULL);
    return NULL;
}
static int mode_show_pid(int argc, char **argv) {
    (void)argc;
    printf("  after exec: same pid %d, tid is the pid %d\n", getpid() == atoi(argv[2]),
           gettid_() == getpid());
    return 0;
}
static void *forker(void *arg) {
    (void)arg;
    pid_t c = xfork();
    if (c == 0) {
        /* Only the forking thread exists in the child. */
        pthread_t t;
        int ok = xpthread_create(&t, NULL, forever, NULL) == 0;
        _exit(ok && gettid_() == getpid() ? 8 : 9);
    }
    return (void *)(long)c;
}
static void case_exec(void) {
    pid_t c = xfork();
    if (c == 0) {
        pthread_t t, t2;
        xpthread_create(&t2, NULL, forever, NULL);
        xpthread_create(&t, NULL, exec_thread, (void *)(long)getpid());
        pthread_join(t, NULL);
        _exit(99);
    }
    printf("execve from a second thread: %s\n", reap(c));
    pthread_t t;
    xpthread_create(&t, NULL, forker, NULL);
    void *r;
    pthread_join(t, &r);
    printf("fork from a thread: in the child tid == pid and it can start threads: %s\n", reap((pid_t)(long)r));
}

/* Raw clone with the thread flags, through glibc's clone(): CLONE_PARENT_SETTID and
 * CLONE_CHILD_CLEARTID (the kernel clears the tid and wakes a futex on exit). */
static atomic_int ctid;
static volatile long child_pid_seen, child_tid_seen;
static int raw_thread(void *arg) {
    (void)arg;
    child_pid_seen = syscall(SYS_getpid);
    child_tid_seen = syscall(SYS_gettid);
    return 0;
}
static void case_clone_thread(void) {
    size_t sz = 64 << 10;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pid_t ptid = 0;
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
    atomic_store(&ctid, -1);
    int tid = clone(raw_thread, stack + sz, flags, NULL, &ptid, NULL, &ctid);
    CHECK(tid > 0);
    int v;
    double start = now_s();
    while ((v = atomic_load(&ctid)) != 0 && now_s() - start < 10)
        futex(&ctid, FUTEX_WAIT, v, NULL, NULL, 0);
    printf("clone(CLONE_THREAD...): parent_tid set %d, child tid cleared %d, getpid in it is ours %d, "
           "gettid is the returned tid %d\n",
           ptid == tid, atomic_load(&ctid) == 0, child_pid_seen == getpid(), child_tid_seen == tid);
    int s;
    printf("waitpid(thread): %s\n", res(waitpid(tid, &s, __WALL | WNOHANG)));
    munmap(stack, sz);
}

/* pthread_cancel of a thread blocked in read(2) (a cancellation point). */
static void *reader(void *arg) {
    int fd = (int)(long)arg;
    char b;
    atomic_store(&t_ready, 1);
    for (;;) read(fd, &b, 1);
    return NULL;
}
static void case_cancel(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    atomic_store(&t_ready, 0);
    pthread_t t;
    CHECK(xpthread_create(&t, NULL, reader, (void *)(long)p[0]) == 0);
    while (!atomic_load(&t_ready)) sched_yield();
    sleep_ms(10);
    CHECK(pthread_cancel(t) == 0);
    void *r;
    pthread_join(t, &r);
    printf("pthread_cancel of a thread in read(): joined, PTHREAD_CANCELED %d\n", r == PTHREAD_CANCELED);
}

/* Robust mutexes: the kernel marks a mutex whose owner thread died (set_robust_list). qemu-user
 * has no robust lists: compared with Linux's output, not qemu's. */
static pthread_mutex_t rmu;
static void *die_holding(void *arg) {
    (void)arg;
    pthread_mutex_lock(&rmu);
    return NULL; /* exits holding it */
}
static void case_robust(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&rmu, &a);
    pthread_t t;
    xpthread_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    int r = pthread_mutex_lock(&rmu);
    printf("lock after the owner died: %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : strerrorname_np(r));
    printf("pthread_mutex_consistent: %d\n", pthread_mutex_consistent(&rmu));
    pthread_mutex_unlock(&rmu);
    printf("lock again: %d\n", pthread_mutex_lock(&rmu));
    pthread_mutex_unlock(&rmu);
    /* Across processes: a child dies holding a process-shared robust mutex. */
    pthread_mutex_t *pm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(pm, &a);
    pid_t c = xfork();
    if (c == 0) {
        pthread_mutex_lock(pm);
        _exit(0);
    }
    reap(c);
    r = pthread_mutex_lock(pm);
    printf("process-shared, after the owner process exited: %s\n",
           r == EOWNERDEAD ? "EOWNERDEAD" : strerrorname_np(r));
}

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"create-join", case_create_join}, {"condvar", case_condvar}, {"barrier", case_barrier},
    {"futex", case_futex},             {"tls", case_tls},         {"signals", case_signals},
    {"preempt", case_preempt},         {"exit", case_exit},       {"exec", case_exec},
    {"clone-thread", case_clone_thread}, {"cancel", case_cancel}, {"robust", case_robust},
};

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct rlimit no = {0, 0};
    setrlimit(RLIMIT_CORE, &no);
    self = getenv("THREAD_SELF") ? getenv("THREAD_SELF") : "/usr/local/bin/thread";
    if (argc < 2) {
        fprintf(stderr, "usage: thread CASE (\"list\" lists them)\n");
        return 2;
    }
    if (strcmp(argv[1], "show-pid") == 0) return mode_show_pid(argc, argv);
    if (strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) printf("%s\n", cases[i].name);
        return 0;
    }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (strcmp(argv[1], cases[i].name) == 0) {
            cases[i].fn();
            return failures ? 1 : 0;
        }
    }
    fprintf(stderr, "thread: unknown case %s\n", argv[1]);
    return 2;
}
