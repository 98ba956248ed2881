/* Pipes, eventfd, timerfd, Unix socket pairs and epoll within one process: prints what
 * each call returns, for the e2e test to compare with the qemu oracle (Linux), and checks
 * the Linux semantics it knows (a "FAIL" line and exit status 1 if one does not hold).
 * Usage: ipc [pipe|eventfd|timerfd|socket|epoll|proc]... (all without arguments). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            printf("FAIL line %d: %s (errno %s)\n", __LINE__, #cond, strerrorname_np(errno)); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

/* "N" or "-ENAME". */
static const char *res(long r) {
    static char b[8][32];
    static int i;
    i = (i + 1) % 8;
    if (r < 0)
        snprintf(b[i], sizeof b[i], "-%s", strerrorname_np(errno));
    else
        snprintf(b[i], sizeof b[i], "%ld", r);
    return b[i];
}

static short revents(int fd, short events) {
    struct pollfd p = {fd, events, 0};
    return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

/* Fills a non-blocking pipe with writes of `chunk` bytes; returns the total. */
static long fill(int w, size_t chunk) {
    static char buf[70000];
    long total = 0;
    for (;;) {
        ssize_t n = write(w, buf, chunk);
        if (n < 0) {
            CHECK(errno == EAGAIN);
            return total;
        }
        total += n;
    }
}

static void test_pipe(void) {
    int p[2];
    static char buf[100000];
    CHECK(pipe2(p, O_NONBLOCK) == 0);
    printf("pipe: size %s\n", res(fcntl(p[1], F_GETPIPE_SZ)));
    printf("pipe: empty read %s, revents in=%#x out=%#x\n", res(read(p[0], buf, 10)),
           revents(p[0], POLLIN), revents(p[1], POLLOUT));
    /* Writes of 1000 bytes share pages four at a time. */
    long t = fill(p[1], 1000);
    printf("pipe: full after %ld bytes in 1000-byte writes; POLLOUT %d\n", t,
           !!(revents(p[1], POLLOUT) & POLLOUT));
    CHECK(t == 64000);
    errno = 0;
    printf("pipe: PIPE_BUF write when full %s\n", res(write(p[1], buf, 4096)));
    printf("pipe: FIONREAD-like read of all %s\n", res(read(p[0], buf, sizeof buf)));
    /* A write of at most PIPE_BUF goes in whole or not at all. */
    CHECK(write(p[1], buf, 61440) == 61440);
    CHECK(write(p[1], buf, 100) == 100);
    printf("pipe: 4000 into 3996 free %s\n", res(write(p[1], buf, 4000)));
    printf("pipe: 3996 into 3996 free %s\n", res(write(p[1], buf, 3996)));
    CHECK(read(p[0], buf, 4096) == 4096);
    printf("pipe: 5000 with one page free %s\n", res(write(p[1], buf, 5000)));
    /* Shrinking below what is queued is EBUSY; sizes round up to powers of two. */
    printf("pipe: shrink while full %s\n", res(fcntl(p[1], F_SETPIPE_SZ, 4096)));
    CHECK(read(p[0], buf, sizeof buf) > 0);
    printf("pipe: setsize 5000 -> %s, 1 -> %s, 1<<30 -> %s\n", res(fcntl(p[1], F_SETPIPE_SZ, 5000)),
           res(fcntl(p[1], F_SETPIPE_SZ, 1)), res(fcntl(p[1], F_SETPIPE_SZ, 1 << 30)));
    printf("pipe: one-page pipe takes %ld\n", fill(p[1], 1));
    /* No reader: EPIPE (SIGPIPE ignored). */
    signal(SIGPIPE, SIG_IGN);
    close(p[0]);
    printf("pipe: write with no reader %s, revents %#x\n", res(write(p[1], "x", 1)),
           revents(p[1], POLLOUT));
    close(p[1]);

    /* End of file once the last writer goes, with POLLHUP. */
    CHECK(pipe(p) == 0);
    CHECK(write(p[1], "abc", 3) == 3);
    close(p[1]);
    printf("pipe: after writer closed revents %#x read %s then %s\n", revents(p[0], POLLIN),
           res(read(p[0], buf, 10)), res(read(p[0], buf, 10)));
    close(p[0]);

    /* Packet mode (O_DIRECT): one write is one read; the rest of a packet is dropped. */
    CHECK(pipe2(p, O_DIRECT | O_NONBLOCK) == 0);
    CHECK(write(p[1], "abc", 3) == 3);
    CHECK(write(p[1], "defgh", 5) == 5);
    printf("pipe: packets read %s", res(read(p[0], buf, 100)));
    printf(" %s", res(read(p[0], buf, 2)));
    printf(" %s\n", res(read(p[0], buf, 100)));
    close(p[0]);
    close(p[1]);
}

static void test_eventfd(void) {
    uint64_t v = 0;
    int e = eventfd(3, EFD_NONBLOCK);
    CHECK(e >= 0);
    v = 4;
    CHECK(write(e, &v, 8) == 8);
    printf("eventfd: revents %#x\n", revents(e, POLLIN | POLLOUT));
    CHECK(read(e, &v, 8) == 8);
    printf("eventfd: read %llu, again %s\n", (unsigned long long)v, res(read(e, &v, 8)));
    printf("eventfd: short read %s, short write %s\n", res(read(e, &v, 4)), res(write(e, &v, 4)));
    v = UINT64_MAX;
    printf("eventfd: write max %s\n", res(write(e, &v, 8)));
    v = UINT64_MAX - 1;
    printf("eventfd: write max-1 %s, revents %#x\n", res(write(e, &v, 8)), revents(e, POLLIN | POLLOUT));
    v = 1;
    printf("eventfd: overflow write %s\n", res(write(e, &v, 8)));
    close(e);
    e = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    uint64_t a = 0, b = 0;
    CHECK(read(e, &a, 8) == 8);
    CHECK(read(e, &b, 8) == 8);
    printf("eventfd: semaphore %llu %llu then %s\n", (unsigned long long)a, (unsigned long long)b,
           res(read(e, &v, 8)));
    close(e);
}

static struct itimerspec its(long value_ns, long interval_ns) {
    struct itimerspec t = {{interval_ns / 1000000000, interval_ns % 1000000000},
                           {value_ns / 1000000000, value_ns % 1000000000}};
    return t;
}

static long ns(struct timespec t) { return t.tv_sec * 1000000000L + t.tv_nsec; }

/* timerfd: readiness, counts, blocking reads (also from a forked child, which shares
 * the timer), epoll, absolute real-time deadlines, and the errors. Times are checked as
 * bounds, never printed. */
static void test_timerfd(void) {
    const long MS = 1000000;
    uint64_t v = 0;
    struct itimerspec t, old;
    /* (Not unknown flags: qemu-user drops the bits it does not know.) */
    printf("timerfd: bad clock %s\n", res(timerfd_create(12345, 0)));
    int f = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    CHECK(f >= 0);
    CHECK(timerfd_gettime(f, &t) == 0);
    printf("timerfd: disarmed %ld/%ld, read %s, revents %#x\n", ns(t.it_value), ns(t.it_interval),
           res(read(f, &v, 8)), revents(f, POLLIN | POLLOUT));
    /* One shot. */
    t = its(30 * MS, 0);
    CHECK(timerfd_settime(f, 0, &t, NULL) == 0);
    CHECK(timerfd_gettime(f, &t) == 0);
    CHECK(ns(t.it_value) > 0 && ns(t.it_value) <= 30 * MS);
    struct pollfd pf = {f, POLLIN, 0};
    printf("timerfd: poll %s revents %#x\n", res(poll(&pf, 1, 5000)), pf.revents);
    CHECK(read(f, &v, 8) == 8);
    CHECK(timerfd_gettime(f, &t) == 0);
    printf("timerfd: once %llu, again %s, then %ld left\n", (unsigned long long)v,
           res(read(f, &v, 8)), ns(t.it_value));
    /* Periodic: every period that passed counts. */
    t = its(10 * MS, 10 * MS);
    CHECK(timerfd_settime(f, 0, &t, &old) == 0);
    printf("timerfd: old %ld/%ld\n", ns(old.it_value), ns(old.it_interval));
    struct timespec nap = {0, 75 * MS};
    nanosleep(&nap, NULL);
    CHECK(read(f, &v, 8) == 8);
    CHECK(v >= 6 && v <= 20);
    CHECK(timerfd_gettime(f, &t) == 0);
    CHECK(ns(t.it_value) > 0 && ns(t.it_value) <= 10 * MS && ns(t.it_interval) == 10 * MS);
    /* Setting again drops what was not read; disarming ends it. */
    nanosleep(&nap, NULL);
    t = its(0, 0);
    CHECK(timerfd_settime(f, 0, &t, &old) == 0);
    CHECK(ns(old.it_interval) == 10 * MS);
    printf("timerfd: disarmed again: read %s, revents %#x\n", res(read(f, &v, 8)),
           revents(f, POLLIN));
    /* Blocking reads, in this process and in a child. */
    int b = timerfd_create(CLOCK_BOOTTIME, 0);
    t = its(20 * MS, 0);
    CHECK(timerfd_settime(b, 0, &t, NULL) == 0);
    CHECK(read(b, &v, 8) == 8);
    printf("timerfd: blocking read %llu\n", (unsigned long long)v);
    pid_t c = fork();
    if (c == 0) {
        _exit(read(b, &v, 8) == 8 ? (int)v : 100);
    }
    struct timespec n2 = {0, 10 * MS};
    nanosleep(&n2, NULL);
    t = its(20 * MS, 0);
    CHECK(timerfd_settime(b, 0, &t, NULL) == 0);
    int st = 0;
    CHECK(waitpid(c, &st, 0) == c);
    printf("timerfd: the child read %d\n", WEXITSTATUS(st));
    /* epoll, and an absolute real-time deadline. */
    int r = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    t = its(ns(now) + 20 * MS, 0);
    CHECK(timerfd_settime(r, TFD_TIMER_ABSTIME, &t, NULL) == 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 77}, out;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, r, &ev) == 0);
    int k = epoll_wait(ep, &out, 1, 5000);
    struct timespec after;
    clock_gettime(CLOCK_REALTIME, &after);
    CHECK(ns(after) >= ns(t.it_value));
    printf("timerfd: epoll %d events %#x data %llu, read %s\n", k, out.events,
           (unsigned long long)out.data.u64, res(read(r, &v, 8)));
    /* A deadline in the past expires at once. */
    t = its(1, 0);
    CHECK(timerfd_settime(r, TFD_TIMER_ABSTIME, &t, NULL) == 0);
    printf("timerfd: past deadline poll %d\n", poll(&(struct pollfd){r, POLLIN, 0}, 1, 5000));
    /* Errors. */
    t = its(0, 0);
    t.it_value.tv_nsec = 1000000000;
    int p[2];
    CHECK(pipe(p) == 0);
    struct itimerspec z = its(0, 0);
    printf("timerfd: bad nsec %s, bad flags %s, a pipe %s, a closed fd %s\n",
           res(timerfd_settime(f, 0, &t, NULL)), res(timerfd_settime(f, 8, &z, NULL)),
           res(timerfd_settime(p[0], 0, &z, NULL)), res(timerfd_gettime(999, &z)));
    printf("timerfd: write %s, short read %s\n", res(write(f, &v, 8)), res(read(f, &v, 4)));
    struct stat sb;
    CHECK(fstat(f, &sb) == 0);
    printf("timerfd: file type %#o\n", sb.st_mode & S_IFMT);
    close(p[0]);
    close(p[1]);
    close(ep);
    close(r);
    close(b);
    close(f);
}

static void test_socket(void) {
    int s[2];
    char buf[64];
    static const int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
    static const char *names[] = {"stream", "dgram", "seqpacket"};
    for (int t = 0; t < 3; t++) {
        CHECK(socketpair(AF_UNIX, types[t] | SOCK_NONBLOCK, 0, s) == 0);
        CHECK(send(s[0], "one", 3, 0) == 3);
        CHECK(send(s[0], "two", 3, 0) == 3);
        printf("socket %s: empty send %s;", names[t], res(send(s[0], "", 0, 0)));
        CHECK(send(s[0], "three", 5, 0) == 5);
        printf(" recv %s", res(recv(s[1], buf, sizeof buf, 0)));
        printf(" %s", res(recv(s[1], buf, 2, 0)));
        /* recvmsg reports a cut message with MSG_TRUNC. */
        struct iovec iov = {buf, 2};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        printf(" recvmsg %s flags %#x", res(recvmsg(s[1], &m, 0)), m.msg_flags);
        printf(" trunc %s", res(recv(s[1], buf, 1, MSG_TRUNC)));
        printf(" then %s\n", res(recv(s[1], buf, sizeof buf, 0)));
        close(s[0]);
        printf("socket %s: after peer closed %s, revents %#x\n", names[t],
               res(recv(s[1], buf, sizeof buf, 0)), revents(s[1], POLLIN | POLLOUT));
        close(s[1]);
    }
    /* A full datagram queue: EAGAIN, POLLOUT clear. */
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, s) == 0);
    int n = 0;
    while (send(s[0], buf, 64, 0) == 64)
        n++;
    printf("socket dgram: full (%s) after >100 messages: %d, POLLOUT %d\n", strerrorname_np(errno),
           n > 100, !!(revents(s[0], POLLOUT) & POLLOUT));
    close(s[0]);
    close(s[1]);
}

static int wait_n(int ep) {
    struct epoll_event ev[4];
    return epoll_wait(ep, ev, 4, 0);
}

static void test_epoll(void) {
    int p[2];
    char buf[16];
    CHECK(pipe2(p, O_NONBLOCK) == 0);
    int lt = epoll_create1(EPOLL_CLOEXEC), et = epoll_create1(0), one = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
    CHECK(epoll_ctl(lt, EPOLL_CTL_ADD, p[0], &ev) == 0);
    ev.events = EPOLLIN | EPOLLET;
    CHECK(epoll_ctl(et, EPOLL_CTL_ADD, p[0], &ev) == 0);
    ev.events = EPOLLIN | EPOLLONESHOT;
    CHECK(epoll_ctl(one, EPOLL_CTL_ADD, p[0], &ev) == 0);
    printf("epoll: add twice %s, bad fd %s, self %s\n", res(epoll_ctl(lt, EPOLL_CTL_ADD, p[0], &ev)),
           res(epoll_ctl(lt, EPOLL_CTL_ADD, 999, &ev)), res(epoll_ctl(lt, EPOLL_CTL_ADD, lt, &ev)));
    printf("epoll: empty lt=%d et=%d one=%d\n", wait_n(lt), wait_n(et), wait_n(one));
    CHECK(write(p[1], "ab", 2) == 2);
    printf("epoll: data lt=%d,%d et=%d,%d one=%d,%d\n", wait_n(lt), wait_n(lt), wait_n(et), wait_n(et),
           wait_n(one), wait_n(one));
    CHECK(write(p[1], "c", 1) == 1);
    printf("epoll: more data lt=%d et=%d,%d one=%d\n", wait_n(lt), wait_n(et), wait_n(et), wait_n(one));
    ev.events = EPOLLIN | EPOLLONESHOT;
    CHECK(epoll_ctl(one, EPOLL_CTL_MOD, p[0], &ev) == 0);
    printf("epoll: oneshot re-armed %d,%d\n", wait_n(one), wait_n(one));
    CHECK(read(p[0], buf, sizeof buf) == 3);
    printf("epoll: drained lt=%d et=%d\n", wait_n(lt), wait_n(et));
    /* The epoll fd itself polls readable when it has events; nested epoll. */
    int outer = epoll_create1(0);
    ev.events = EPOLLIN;
    CHECK(epoll_ctl(outer, EPOLL_CTL_ADD, lt, &ev) == 0);
    printf("epoll: nested idle %d revents %#x", wait_n(outer), revents(lt, POLLIN));
    CHECK(write(p[1], "d", 1) == 1);
    printf(", ready %d revents %#x\n", wait_n(outer), revents(lt, POLLIN));
    /* Hang-up: EPOLLHUP is reported without being asked for. */
    close(p[1]);
    struct epoll_event got[2];
    int n = epoll_wait(lt, got, 2, 0);
    printf("epoll: writer closed %d events %#x data %llu\n", n, n > 0 ? got[0].events : 0,
           n > 0 ? (unsigned long long)got[0].data.u64 : 0ULL);
    /* A closed file leaves the interest list. */
    close(p[0]);
    printf("epoll: after close %d\n", wait_n(lt));
    close(lt);
    close(et);
    close(one);
    close(outer);
}

static void link_of(const char *what, int fd) {
    char path[64], l[256];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, l, sizeof l - 1);
    l[n < 0 ? 0 : n] = 0;
    /* Inode numbers differ: show "pipe:[N]". */
    char *br = strchr(l, '[');
    if (br && (strncmp(l, "pipe:", 5) == 0 || strncmp(l, "socket:", 7) == 0))
        strcpy(br, "[N]");
    int r = open(path, O_RDWR);
    printf("proc: %s -> %s, reopen %s\n", what, n < 0 ? strerrorname_np(errno) : l,
           r >= 0 ? "ok" : res(r));
}

static void test_proc(void) {
    int p[2], s[2];
    CHECK(pipe(p) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0);
    link_of("pipe", p[0]);
    link_of("socket", s[0]);
    link_of("eventfd", eventfd(0, 0));
    link_of("epoll", epoll_create1(0));
    link_of("timerfd", timerfd_create(CLOCK_MONOTONIC, 0));
    link_of("memfd", memfd_create("rvbox-test", 0));
    /* A reopened pipe is a new end of the same pipe. */
    char path[64], b[4];
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    int w = open(path, O_WRONLY);
    CHECK(write(w, "xy", 2) == 2);
    printf("proc: through the reopened pipe %s\n", res(read(p[0], b, sizeof b)));
    struct stat st;
    CHECK(fstat(p[0], &st) == 0);
    printf("proc: pipe is S_IFIFO %d, socket is S_IFSOCK %d\n", S_ISFIFO(st.st_mode),
           fstat(s[0], &st) == 0 && S_ISSOCK(st.st_mode));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {{"pipe", test_pipe}, {"eventfd", test_eventfd},
                 {"timerfd", test_timerfd}, {"socket", test_socket},
                 {"epoll", test_epoll}, {"proc", test_proc}};
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int run = argc == 1;
        for (int a = 1; a < argc; a++)
            run |= strcmp(argv[a], tests[i].name) == 0;
        if (run)
            tests[i].fn();
    }
    return failures ? 1 : 0;
}
