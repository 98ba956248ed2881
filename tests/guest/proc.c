/* Processes as Linux runs them: fork, vfork, clone, execve, wait4/waitid status encoding,
 * process groups and sessions, file descriptors across fork and exec, pipes between
 * processes, SIGPIPE, default signal actions, stop and continue.
 * Each case prints facts that Linux guarantees (never a pid, which differs between runs),
 * for the e2e test to compare with qemu-riscv64 in a chroot; only the parent prints, after
 * waiting, or children print while the parent waits, so the output has one order.
 * Usage: proc CASE (see `cases` at the end; "list" prints them). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The program itself, for re-execution (overridable to try the program natively). */
static const char *self;

static int failures;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            printf("FAIL line %d: %s (errno %s)\n", __LINE__, #cond, strerrorname_np(errno)); \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)

/* "N" or "-ENAME" for a call's result. */
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

/* "SIGTERM", "SIGRTMIN+2". */
static const char *signame(int sig) {
    static char b[8][24];
    static int i;
    i = (i + 1) % 8;
    if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        snprintf(b[i], sizeof b[i], "SIGRTMIN+%d", sig - SIGRTMIN);
    else if (sigabbrev_np(sig))
        snprintf(b[i], sizeof b[i], "SIG%s", sigabbrev_np(sig));
    else
        snprintf(b[i], sizeof b[i], "signal %d", sig);
    return b[i];
}

/* A wait status in words. */
static const char *st(int s) {
    static char b[8][48];
    static int i;
    i = (i + 1) % 8;
    if (WIFEXITED(s))
        snprintf(b[i], sizeof b[i], "exited %d", WEXITSTATUS(s));
    else if (WIFSIGNALED(s))
        snprintf(b[i], sizeof b[i], "killed by %s", signame(WTERMSIG(s)));
    else if (WIFSTOPPED(s))
        snprintf(b[i], sizeof b[i], "stopped by %s", signame(WSTOPSIG(s)));
    else if (WIFCONTINUED(s))
        snprintf(b[i], sizeof b[i], "continued (%#x)", s);
    else
        snprintf(b[i], sizeof b[i], "status %#x?", s);
    return b[i];
}

/* Waits for pid; returns its status in words. */
static const char *reap(pid_t pid) {
    int s = 0;
    pid_t r = waitpid(pid, &s, 0);
    if (r != pid) {
        printf("FAIL: waitpid(%s) -> %s\n", pid > 0 ? "child" : "?", res(r));
        failures++;
        return "?";
    }
    return st(s);
}

static pid_t xfork(void) {
    pid_t p = fork();
    if (p < 0) {
        printf("fork: %s\n", strerrorname_np(errno));
        exit(2);
    }
    return p;
}

/* A gate: the child blocks in `gate_wait` until the parent calls `gate_open`. */
struct gate {
    int r, w;
};
static struct gate gate_new(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    return (struct gate){p[0], p[1]};
}
static void gate_wait(struct gate g) {
    char c;
    close(g.w);
    while (read(g.r, &c, 1) < 0 && errno == EINTR) {
    }
    close(g.r);
}
static void gate_open(struct gate g) {
    close(g.r);
    CHECK(write(g.w, "x", 1) == 1);
    close(g.w);
}

/* A scratch directory of this process under /tmp (removed by `scratch_done`). */
static char scratch_dir[64];
static const char *scratch(const char *name) {
    static char b[4][128];
    static int i;
    if (!scratch_dir[0]) {
        snprintf(scratch_dir, sizeof scratch_dir, "/tmp/proc-test.%d", getpid());
        CHECK(mkdir(scratch_dir, 0755) == 0);
    }
    i = (i + 1) % 4;
    snprintf(b[i], sizeof b[i], "%s/%s", scratch_dir, name);
    return b[i];
}
static void scratch_done(void) {
    if (scratch_dir[0]) {
        static const char *names[] = {"f",      "s.sh",   "s2.sh", "sh.sh",  "noexec",
                                      "garbage", "empty", "noint", "nested", "big"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) unlink(scratch(names[i]));
        CHECK(rmdir(scratch_dir) == 0);
        scratch_dir[0] = 0;
    }
}

static void write_file(const char *path, const char *text, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    CHECK(fchmod(fd, mode) == 0);
    close(fd);
}

/* ------------------------------------------------------------------ helper modes */
/* Modes the cases run in re-executed copies of this program. */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* show-argv ARGS...: prints argv and the environment. */
static int mode_show_argv(int argc, char **argv) {
    printf("argc %d:", argc);
    for (int i = 0; i < argc; i++) printf(" [%s]", argv[i]);
    /* Sorted: qemu-user passes the environment in reverse order. */
    int n = 0;
    while (environ[n]) n++;
    qsort(environ, n, sizeof *environ, cmp_str);
    printf("\nenv (sorted):");
    for (char **e = environ; *e; e++) printf(" [%s]", *e);
    printf("\n");
    return 0;
}

/* fds N...: says for each fd whether it is open and its FD_CLOEXEC flag. */
static int mode_fds(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        int fd = atoi(argv[i]);
        int f = fcntl(fd, F_GETFD);
        if (f < 0)
            printf("  after exec: fd %d %s\n", fd, strerrorname_np(errno));
        else
            printf("  after exec: fd %d open, FD_CLOEXEC %d\n", fd, f & FD_CLOEXEC);
    }
    return 0;
}

/* ids PID PPID: the pid and parent pid survive execve. */
static int mode_ids(int argc, char **argv) {
    if (argc < 4) return 2;
    printf("  after exec: same pid %d, same ppid %d\n", getpid() == atoi(argv[2]),
           getppid() == atoi(argv[3]));
    return 0;
}

/* block: reads stdin until end of file, exits 0. */
static int mode_block(int argc, char **argv) {
    (void)argc;
    (void)argv;
    char c;
    while (read(0, &c, 1) > 0) {
    }
    return 0;
}

/* ------------------------------------------------------------------ cases */

/* Exit codes and termination signals as wait4 encodes them. */
static void case_wait_status(void) {
    static const int codes[] = {0, 1, 42, 255, 256 + 7, -1};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        pid_t p = xfork();
        if (p == 0) exit(codes[i]);
        int s;
        CHECK(waitpid(p, &s, 0) == p);
        printf("exit(%d): %s, raw status %#x\n", codes[i], st(s), s);
    }
    pid_t p = xfork();
    if (p == 0) _exit(3);
    printf("_exit(3): %s\n", reap(p));
    p = xfork();
    if (p == 0) {
        syscall(SYS_exit_group, 4);
        _exit(99);
    }
    printf("exit_group(4): %s\n", reap(p));
    p = xfork();
    if (p == 0) {
        syscall(SYS_exit, 5); /* the only thread: the process ends */
        _exit(99);
    }
    printf("exit(5) of the only thread: %s\n", reap(p));
    p = xfork();
    if (p == 0) {
        raise(SIGKILL);
        _exit(99);
    }
    int s;
    CHECK(waitpid(p, &s, 0) == p);
    printf("raise(SIGKILL): %s, raw status & 0x7f %#x\n", st(s), s & 0x7f);
    p = xfork();
    if (p == 0) abort();
    printf("abort(): %s\n", reap(p));
    p = xfork();
    if (p == 0) {
#ifdef __riscv
        __asm__ volatile("sw %0, 0(%1)" : : "r"(1), "r"(16L) : "memory");
#else
        *(volatile int *)(uintptr_t)16 = 1;
#endif
        _exit(99);
    }
    printf("store to address 16: %s\n", reap(p));
    p = xfork();
    if (p == 0) {
#ifdef __riscv
        __asm__ volatile(".word 0");
#else
        __asm__ volatile("ud2");
#endif
        _exit(99);
    }
    printf("illegal instruction: %s\n", reap(p));
    struct gate g = gate_new();
    p = xfork();
    if (p == 0) {
        gate_wait(g);
        _exit(99);
    }
    close(g.r);
    CHECK(kill(p, SIGTERM) == 0);
    printf("kill(child, SIGTERM) while it reads a pipe: %s\n", reap(p));
    close(g.w);
    /* rusage comes back too. */
    p = xfork();
    if (p == 0) _exit(6);
    struct rusage ru;
    pid_t r = wait4(p, &s, 0, &ru);
    printf("wait4 with rusage: %s %s\n", r == p ? "pid" : res(r), st(s));
}

/* WNOHANG, ECHILD and which child a wait picks. */
static void case_wnohang(void) {
    int s = 0;
    printf("no children: waitpid(-1, WNOHANG) %s, wait() %s, waitpid(self) %s\n",
           res(waitpid(-1, &s, WNOHANG)), res(wait(&s)), res(waitpid(getpid(), &s, 0)));
    struct gate g1 = gate_new();
    pid_t c1 = xfork();
    if (c1 == 0) {
        gate_wait(g1);
        _exit(11);
    }
    close(g1.r);
    struct gate g2 = gate_new();
    pid_t c2 = xfork();
    if (c2 == 0) {
        close(g1.w);
        gate_wait(g2);
        _exit(12);
    }
    close(g2.r);
    printf("two running children: waitpid(-1, WNOHANG) %s, waitpid(c2, WNOHANG) %s\n",
           res(waitpid(-1, &s, WNOHANG)), res(waitpid(c2, &s, WNOHANG)));
    gate_open(g2);
    pid_t r = waitpid(-1, &s, 0);
    printf("second child released: waitpid(-1) picks it %d, %s\n", r == c2, st(s));
    printf("first still running: waitpid(c2) again %s, waitpid(-1, WNOHANG) %s\n",
           res(waitpid(c2, &s, WNOHANG)), res(waitpid(-1, &s, WNOHANG)));
    gate_open(g1);
    r = waitpid(0, &s, 0);
    printf("first child released: waitpid(0) picks it %d, %s\n", r == c1, st(s));
    printf("all reaped: waitpid(-1, WNOHANG) %s\n", res(waitpid(-1, &s, WNOHANG)));
    /* A child in another process group: waitpid(0) does not see it, -pgid does. */
    struct gate g3 = gate_new();
    pid_t c3 = xfork();
    if (c3 == 0) {
        gate_wait(g3);
        _exit(13);
    }
    CHECK(setpgid(c3, c3) == 0);
    printf("child in its own group: waitpid(0, WNOHANG) %s, waitpid(-pgid, WNOHANG) %s\n",
           res(waitpid(0, &s, WNOHANG)), res(waitpid(-c3, &s, WNOHANG)));
    gate_open(g3);
    r = waitpid(-c3, &s, 0);
    printf("waitpid(-pgid): %d %s\n", r == c3, st(s));
    printf("bad options: %s\n", res(waitpid(-1, &s, 0x10000000)));
}

static void show_siginfo(const char *what, int r, siginfo_t *si, pid_t child) {
    printf("%s: %s, si_pid %s, si_signo %s, si_code %d, si_status %d\n", what, res(r),
           si->si_pid == 0 ? "0" : si->si_pid == child ? "child" : "other",
           si->si_signo ? sigabbrev_np(si->si_signo) : "0", si->si_code, si->si_status);
}

/* waitid: siginfo of exited, killed, stopped and continued children; WNOWAIT. */
static void case_waitid(void) {
    siginfo_t si;
    struct gate g = gate_new();
    pid_t c = xfork();
    if (c == 0) {
        gate_wait(g);
        _exit(7);
    }
    close(g.r);
    memset(&si, 0, sizeof si);
    show_siginfo("running, WEXITED|WNOHANG", waitid(P_PID, c, &si, WEXITED | WNOHANG), &si, c);
    gate_open(g);
    memset(&si, 0, sizeof si);
    show_siginfo("exited, WEXITED|WNOWAIT", waitid(P_PID, c, &si, WEXITED | WNOWAIT), &si, c);
    printf("  uid matches %d\n", si.si_uid == getuid());
    memset(&si, 0, sizeof si);
    show_siginfo("again, WEXITED", waitid(P_ALL, 0, &si, WEXITED), &si, c);
    memset(&si, 0, sizeof si);
    show_siginfo("reaped, WEXITED", waitid(P_PID, c, &si, WEXITED), &si, c);

    g = gate_new();
    c = xfork();
    if (c == 0) {
        gate_wait(g);
        _exit(0);
    }
    close(g.r);
    CHECK(kill(c, SIGKILL) == 0);
    memset(&si, 0, sizeof si);
    show_siginfo("SIGKILLed, P_PGID", waitid(P_PGID, getpgid(0), &si, WEXITED), &si, c);
    close(g.w);

    g = gate_new();
    c = xfork();
    if (c == 0) {
        raise(SIGSTOP);
        gate_wait(g); /* an exit would replace the "continued" state */
        _exit(8);
    }
    close(g.r);
    memset(&si, 0, sizeof si);
    show_siginfo("stopped, WSTOPPED", waitid(P_PID, c, &si, WSTOPPED), &si, c);
    memset(&si, 0, sizeof si);
    show_siginfo("stop already reported, WSTOPPED|WNOHANG",
                 waitid(P_PID, c, &si, WSTOPPED | WNOHANG), &si, c);
    CHECK(kill(c, SIGCONT) == 0);
    memset(&si, 0, sizeof si);
    show_siginfo("continued, WCONTINUED", waitid(P_PID, c, &si, WCONTINUED), &si, c);
    gate_open(g);
    memset(&si, 0, sizeof si);
    show_siginfo("then exited", waitid(P_PID, c, &si, WEXITED), &si, c);
    memset(&si, 0, sizeof si);
    show_siginfo("no options", waitid(P_ALL, 0, &si, 0), &si, 0);
    show_siginfo("no children", waitid(P_ALL, 0, &si, WEXITED), &si, 0);
}

/* A dead child stays a zombie (kill(pid, 0) works) until it is waited for. */
static void case_zombie(void) {
    pid_t c = xfork();
    if (c == 0) _exit(1);
    siginfo_t si;
    CHECK(waitid(P_PID, c, &si, WEXITED | WNOWAIT) == 0);
    printf("zombie: kill(pid, 0) %s, getpgid %s\n", res(kill(c, 0)),
           getpgid(c) == getpgid(0) ? "ours" : "other");
    int s;
    CHECK(waitpid(c, &s, 0) == c);
    printf("reaped: kill(pid, 0) %s, getpgid %s\n", res(kill(c, 0)), res(getpgid(c)));
    /* Many children at once, reaped in any order. */
    enum { N = 40 };
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        kids[i] = xfork();
        if (kids[i] == 0) _exit(i);
    }
    int seen[N] = {0}, n = 0, sum = 0;
    pid_t r;
    while ((r = wait(&s)) > 0) {
        n++;
        sum += WEXITSTATUS(s);
        for (int i = 0; i < N; i++)
            if (kids[i] == r) seen[i]++;
    }
    int each_once = 1;
    for (int i = 0; i < N; i++) each_once &= seen[i] == 1;
    printf("%d children: %d reaped, exit codes sum %d, each once %d, then %s\n", N, n, sum,
           each_once, strerrorname_np(errno));
    /* A tree: every process forks two children until depth 4 and exits with the number
     * of processes in its subtree. */
    int depth = 0;
    pid_t a, b;
again:
    if (depth < 4) {
        a = xfork();
        if (a == 0) {
            depth++;
            goto again;
        }
        b = xfork();
        if (b == 0) {
            depth++;
            goto again;
        }
        int sa, sb;
        CHECK(waitpid(a, &sa, 0) == a);
        CHECK(waitpid(b, &sb, 0) == b);
        if (depth > 0) _exit(1 + WEXITSTATUS(sa) + WEXITSTATUS(sb));
        printf("process tree of depth 4: %d processes\n", 1 + WEXITSTATUS(sa) + WEXITSTATUS(sb));
    } else {
        _exit(1);
    }
}

/* getpid/getppid/setsid/setpgid/getpgid/getsid. */
static void case_ids(void) {
    pid_t me = getpid(), pg = getpgid(0), sid = getsid(0);
    printf("parent: getpgid(0) == getpgrp() %d, getpgid(self) == getpgid(0) %d, gettid == pid %d\n",
           pg == getpgrp(), getpgid(me) == pg, (pid_t)syscall(SYS_gettid) == me);
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t c = xfork();
    if (c == 0) {
        close(p[0]);
        char b[512];
        int n = snprintf(b, sizeof b,
                         "child: getppid is parent %d, pid differs %d, inherits pgid %d sid %d\n",
                         getppid() == me, getpid() != me, getpgid(0) == pg, getsid(0) == sid);
        pid_t s = setsid();
        n += snprintf(b + n, sizeof b - n,
                      "child: setsid returns pid %d, then sid %d pgid %d\n", s == getpid(),
                      getsid(0) == getpid(), getpgid(0) == getpid());
        n += snprintf(b + n, sizeof b - n, "child: setsid again %s, setpgid(0, 0) as leader %s\n",
                      res(setsid()), res(setpgid(0, 0)));
        CHECK(write(p[1], b, n) == n);
        _exit(0);
    }
    close(p[1]);
    char b[512];
    ssize_t n;
    while ((n = read(p[0], b, sizeof b)) > 0) fwrite(b, 1, n, stdout);
    close(p[0]);
    printf("child: %s\n", reap(c));

    struct gate g = gate_new();
    c = xfork();
    if (c == 0) {
        gate_wait(g);
        _exit(0);
    }
    close(g.r);
    const char *r1 = res(setpgid(c, c));
    printf("parent: setpgid(child, child) %s, getpgid(child) is child %d, getsid(child) is ours %d\n",
           r1, getpgid(c) == c, getsid(c) == sid);
    r1 = res(setpgid(c, pg));
    printf("parent: setpgid(child, own group) %s, back %d\n", r1, getpgid(c) == pg);
    printf("errors: setpgid(-1, 0) %s, setpgid(0, -1) %s, getpgid(INT_MAX) %s, getsid(INT_MAX) %s, "
           "setpgid(child, INT_MAX) %s\n",
           res(setpgid(-1, 0)), res(setpgid(0, -1)), res(getpgid(INT_MAX)), res(getsid(INT_MAX)),
           res(setpgid(c, INT_MAX)));
    gate_open(g);
    reap(c);

    /* After the child has exec'd, its parent may no longer move it (EACCES). The exec is
     * seen as the end of file of a close-on-exec pipe. */
    int cl[2], in[2];
    CHECK(pipe2(cl, O_CLOEXEC) == 0);
    CHECK(pipe(in) == 0);
    c = xfork();
    if (c == 0) {
        close(cl[0]);
        close(in[1]);
        dup2(in[0], 0);
        close(in[0]);
        execl(self, "proc", "block", (char *)NULL);
        _exit(127);
    }
    close(cl[1]);
    close(in[0]);
    char x;
    printf("exec seen as EOF on a close-on-exec pipe: %s\n", res(read(cl[0], &x, 1)));
    close(cl[0]);
    printf("parent: setpgid(exec'd child, child) %s\n", res(setpgid(c, c)));
    close(in[1]);
    printf("exec'd child: %s\n", reap(c));
    /* Another session's process group cannot be joined. */
    struct gate g2 = gate_new();
    c = xfork();
    if (c == 0) {
        setsid();
        gate_wait(g2);
        _exit(0);
    }
    close(g2.r);
    /* Wait until the child has called setsid(). */
    while (getsid(c) == sid) usleep(1000);
    printf("child with its own session: setpgid(0, its group) %s, setpgid(child, child) %s\n",
           res(setpgid(0, c)), res(setpgid(c, c)));
    close(g2.w);
    reap(c);
}

/* vfork: the parent waits until the child exits or execs. */
static void case_vfork(void) {
    pid_t c = vfork();
    if (c == 0) _exit(3);
    printf("vfork + _exit(3): %s\n", reap(c));
    c = vfork();
    if (c == 0) {
        execle(self, "vfork-child", "show-argv", "from vfork", (char *)NULL, (char *[]){"V=1", NULL});
        _exit(127);
    }
    printf("vfork + exec: %s\n", reap(c));
    /* posix_spawn (glibc: clone with CLONE_VM|CLONE_VFORK) with file actions. */
    int p[2];
    CHECK(pipe(p) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    char *argv[] = {"spawned", "show-argv", "x y", NULL};
    char *envp[] = {"A=1", "PATH=/usr/local/bin:/bin", NULL};
    pid_t sp;
    int r = posix_spawn(&sp, self, &fa, NULL, argv, envp);
    close(p[1]);
    char b[512];
    ssize_t n, got = 0;
    printf("posix_spawn: %s\n", res(r ? (errno = r, -1) : 0));
    while ((n = read(p[0], b + got, sizeof b - got)) > 0) got += n;
    printf("  from the pipe: %.*s", (int)got, b);
    close(p[0]);
    printf("  %s\n", reap(sp));
    posix_spawn_file_actions_destroy(&fa);
    /* posix_spawnp searches the caller's PATH (the image's), not the new environment's. */
    r = posix_spawnp(&sp, "proc", NULL, NULL, argv, envp);
    const char *how = r == 0 ? reap(sp) : "not started"; /* the child prints first */
    printf("posix_spawnp(\"proc\"): %s, %s\n", res(r ? (errno = r, -1) : 0), how);
}

/* What vfork shares with the parent until the child exits or execs: memory (the parent
 * sees the child's stores and the errno of a failed exec, which is how posix_spawn
 * reports it). qemu-user runs vfork as a fork: compared with Linux's output, not qemu's. */
static volatile int shared_var;
static volatile int shared_errno;
static volatile int shared_pid_differs;
static void case_vfork_shared(void) {
    shared_var = 1;
    pid_t me = getpid();
    pid_t c = vfork();
    if (c == 0) {
        shared_var = 42;
        shared_pid_differs = getpid() != me;
        _exit(3);
    }
    printf("vfork + _exit(3): parent sees the child's store %d, pids differ %d, %s\n", shared_var,
           shared_pid_differs, reap(c));
    c = vfork();
    if (c == 0) {
        execl("/nonexistent/prog", "prog", (char *)NULL);
        shared_errno = errno;
        _exit(127);
    }
    printf("vfork + failed exec: errno %s, %s\n", strerrorname_np(shared_errno), reap(c));
    char *argv[] = {"spawned", "show-argv", NULL};
    pid_t sp;
    int r = posix_spawn(&sp, "/nonexistent", NULL, NULL, argv, environ);
    printf("posix_spawn(/nonexistent): %s\n", res(r ? (errno = r, -1) : 0));
    r = posix_spawnp(&sp, "nonexistent-program", NULL, NULL, argv, environ);
    printf("posix_spawnp(nonexistent-program): %s\n", res(r ? (errno = r, -1) : 0));
}

/* execve: argv and envp, the pid kept, shebang scripts, and the errors. */
static void run_exec(const char *what, const char *path, char *const argv[], char *const envp[]) {
    pid_t c = xfork();
    if (c == 0) {
        execve(path, argv, envp);
        printf("%s: execve %s\n", what, strerrorname_np(errno));
        _exit(127);
    }
    printf("%s: %s\n", what, reap(c));
}

static void case_exec(void) {
    char *env[] = {"ONE=1", "TWO=a b", "EMPTY=", NULL};
    char *argv[] = {"argv-zero", "show-argv", "", "two words", NULL};
    run_exec("exec self", self, argv, env);
    char *noargs[] = {NULL};
    char *noenv[] = {NULL};
    run_exec("empty argv and env", self, noargs, noenv);
    pid_t c = xfork();
    if (c == 0) {
        char pid[16], ppid[16];
        snprintf(pid, sizeof pid, "%d", getpid());
        snprintf(ppid, sizeof ppid, "%d", getppid());
        execl(self, "proc", "show-ids", pid, ppid, (char *)NULL);
        _exit(127);
    }
    printf("exec keeps ids: %s\n", reap(c));

    /* Shebang scripts: the interpreter gets its optional argument, then the script path as
     * given to execve, then the arguments after argv[0]. */
    char line[256];
    snprintf(line, sizeof line, "#!%s show-argv\nnot shell\n", self);
    write_file(scratch("s.sh"), line, 0755);
    CHECK(chdir(scratch_dir) == 0);
    char *sargv[] = {"script-argv0", "a", "b c", NULL};
    run_exec("shebang with an argument", "./s.sh", sargv, env);
    snprintf(line, sizeof line, "#! \t%s  show-argv  x  y \t\n", self);
    write_file(scratch("s2.sh"), line, 0755);
    run_exec("shebang with blanks (one argument, inner blanks kept)", "s2.sh", sargv, env);
    /* A script interpreted by a script (a relative interpreter path: from the cwd). */
    snprintf(line, sizeof line, "#!./s.sh\n");
    write_file(scratch("nested"), line, 0755);
    run_exec("script interpreted by a script", "./nested", sargv, env);
    write_file(scratch("sh.sh"), "#!/bin/sh\necho \"sh: $# args: $*\"\nexit 5\n", 0755);
    run_exec("#!/bin/sh script", "./sh.sh", sargv, env);
    write_file(scratch("noexec"), "#!/bin/sh\necho no\n", 0644);
    run_exec("no execute permission", "./noexec", sargv, env);
    write_file(scratch("garbage"), "just text\n", 0755);
    run_exec("not a script or ELF file", "./garbage", sargv, env);
    write_file(scratch("empty"), "", 0755);
    run_exec("empty file", "./empty", sargv, env);
    write_file(scratch("noint"), "#!/nonexistent/interpreter\n", 0755);
    run_exec("missing interpreter", "./noint", sargv, env);
    run_exec("missing file", "./missing", sargv, env);
    run_exec("a directory", "/tmp", sargv, env);
    run_exec("through a file", "/etc/passwd/x", sargv, env);
    run_exec("empty path", "", sargv, env);
    /* An argument longer than MAX_ARG_STRLEN (32 pages). */
    static char big[200000];
    memset(big, 'x', sizeof big - 1);
    char *bigv[] = {"proc", "show-argv", big, NULL};
    run_exec("one 200 KB argument", self, bigv, noenv);
    /* A failed execve leaves the process as it was. */
    errno = 0;
    int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    CHECK(execl("./garbage", "garbage", (char *)NULL) == -1);
    printf("after a failed exec: errno %s, close-on-exec fd still open %d\n",
           strerrorname_np(errno), fcntl(fd, F_GETFD) == FD_CLOEXEC);
    close(fd);
    CHECK(chdir("/") == 0);
}

/* FD_CLOEXEC: set by O_CLOEXEC, F_DUPFD_CLOEXEC, dup3, pipe2; kept by fork; applied by exec. */
static void case_cloexec(void) {
    int a = open("/etc/passwd", O_RDONLY | O_CLOEXEC), b = open("/etc/passwd", O_RDONLY);
    printf("open(O_CLOEXEC): FD_CLOEXEC %d; plain open %d\n", fcntl(a, F_GETFD), fcntl(b, F_GETFD));
    CHECK(dup2(a, 10) == 10);
    CHECK(dup2(b, 11) == 11);
    close(a);
    close(b);
    printf("dup2 of an O_CLOEXEC fd: FD_CLOEXEC %d\n", fcntl(10, F_GETFD));
    CHECK(fcntl(10, F_SETFD, FD_CLOEXEC) == 0);
    printf("F_SETFD: %d\n", fcntl(10, F_GETFD));
    int d = fcntl(11, F_DUPFD_CLOEXEC, 20);
    printf("F_DUPFD_CLOEXEC from 20: fd %d, FD_CLOEXEC %d\n", d, fcntl(d, F_GETFD));
    d = fcntl(10, F_DUPFD, 20);
    printf("F_DUPFD from 20: fd %d, FD_CLOEXEC %d\n", d, fcntl(d, F_GETFD));
    d = dup3(11, 22, O_CLOEXEC);
    printf("dup3(11, 22, O_CLOEXEC): %s, FD_CLOEXEC %d", res(d), fcntl(22, F_GETFD));
    printf("; dup3(11, 11) %s", res(dup3(11, 11, 0)));
    printf("; dup3 with a bad flag %s\n", res(dup3(11, 23, 1)));
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    CHECK(dup3(p[0], 23, O_CLOEXEC) == 23 && dup2(p[1], 24) == 24);
    close(p[0]);
    close(p[1]);
    printf("pipe2(O_CLOEXEC) moved: dup3 %d, dup2 %d\n", fcntl(23, F_GETFD), fcntl(24, F_GETFD));
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(dup3(s, 25, O_CLOEXEC) == 25);
    close(s);
    pid_t c = xfork();
    if (c == 0) {
        printf("  child before exec: 10 %d, 11 %d, 20 %d, 21 %d\n", fcntl(10, F_GETFD),
               fcntl(11, F_GETFD), fcntl(20, F_GETFD), fcntl(21, F_GETFD));
        execl(self, "proc", "fds", "10", "11", "20", "21", "22", "23", "24", "25", (char *)NULL);
        _exit(127);
    }
    printf("child: %s\n", reap(c));
    for (int fd = 10; fd <= 25; fd++) close(fd);
}

/* A fork shares open file descriptions: the offset and status flags, not the fd flags. */
static void case_shared_offset(void) {
    const char *path = scratch("f");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "parent1\n", 8) == 8);
    pid_t c = xfork();
    if (c == 0) {
        CHECK(write(fd, "child\n", 6) == 6);
        CHECK(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0);
        CHECK(fcntl(fd, F_SETFL, O_APPEND) == 0);
        _exit(0);
    }
    reap(c);
    printf("offset after the child's write: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    printf("child's O_APPEND seen %d, child's FD_CLOEXEC seen %d\n",
           !!(fcntl(fd, F_GETFL) & O_APPEND), fcntl(fd, F_GETFD));
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(write(fd, "parent2\n", 8) == 8); /* O_APPEND: at the end */
    c = xfork();
    if (c == 0) {
        CHECK(lseek(fd, 3, SEEK_SET) == 3);
        _exit(0);
    }
    reap(c);
    printf("offset after the child's lseek: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    char b[64] = {0};
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    ssize_t n = read(fd, b, sizeof b - 1);
    printf("file (%zd bytes): %s", n, b);
    close(fd);
    /* An fd opened in the child is not the parent's. */
    int before = open("/etc/passwd", O_RDONLY);
    close(before);
    c = xfork();
    if (c == 0) _exit(open("/etc/passwd", O_RDONLY) == before ? 0 : 1);
    const char *how = reap(c);
    printf("child's open: %s; same fd number free in the parent %d\n", how,
           fcntl(before, F_GETFD) < 0 && errno == EBADF);
}

/* Pipes between processes: blocking, EOF only when every writer is gone, POLLHUP, 1 MB
 * through a pipe. */
static void case_pipe(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    for (int i = 1; i <= 3; i++) {
        pid_t c = xfork();
        if (c == 0) {
            close(p[0]);
            char m[32];
            int n = snprintf(m, sizeof m, "child %d\n", i);
            CHECK(write(p[1], m, n) == n);
            _exit(0);
        }
        reap(c);
    }
    struct gate g = gate_new();
    pid_t holder = xfork();
    if (holder == 0) {
        close(p[0]);
        gate_wait(g); /* keeps p[1] open until released */
        _exit(0);
    }
    close(g.r);
    close(p[1]);
    char b[256];
    ssize_t n = read(p[0], b, sizeof b);
    printf("read: %zd bytes: %.*s", n, (int)(n > 0 ? n : 0), b);
    struct pollfd pf = {p[0], POLLIN, 0};
    int pr = poll(&pf, 1, 0);
    printf("a writer is left: poll %d revents %#x\n", pr, pf.revents);
    gate_open(g);
    reap(holder);
    pr = poll(&pf, 1, 0);
    printf("last writer gone: poll %d revents %#x, read %s\n", pr, pf.revents,
           res(read(p[0], b, sizeof b)));
    close(p[0]);

    /* A blocking read waits for a writer that comes later. */
    CHECK(pipe(p) == 0);
    pid_t c = xfork();
    if (c == 0) {
        close(p[0]);
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL);
        CHECK(write(p[1], "late", 4) == 4);
        _exit(0);
    }
    close(p[1]);
    n = read(p[0], b, sizeof b);
    printf("blocking read: %.*s\n", (int)(n > 0 ? n : 0), b);
    reap(c);
    close(p[0]);

    /* 1 MB through a pipe: the writer blocks while the pipe is full. */
    CHECK(pipe(p) == 0);
    c = xfork();
    if (c == 0) {
        close(p[0]);
        static unsigned char chunk[65536 + 17];
        unsigned x = 1;
        for (int k = 0; k < 15; k++) {
            for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (x = x * 1103515245 + 12345) >> 16;
            CHECK(write(p[1], chunk, sizeof chunk) == (ssize_t)sizeof chunk);
        }
        _exit(0);
    }
    close(p[1]);
    static unsigned char buf[40000];
    unsigned long total = 0, sum = 0, x = 1;
    unsigned check = 1;
    int ok = 1;
    while ((n = read(p[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            unsigned char want = (check = check * 1103515245 + 12345) >> 16;
            ok &= buf[i] == want;
            sum += buf[i] * (x++ % 7 + 1);
        }
        total += n;
    }
    printf("1 MB pipe: %lu bytes, in order %d, checksum %lu, %s\n", total, ok, sum, reap(c));
    close(p[0]);
    /* Reader gone: the write end polls POLLERR. */
    CHECK(pipe(p) == 0);
    close(p[0]);
    pf = (struct pollfd){p[1], POLLOUT, 0};
    pr = poll(&pf, 1, 0);
    printf("no reader: write end poll %d revents %#x\n", pr, pf.revents);
    close(p[1]);
}

/* SIGPIPE: kills by default; EPIPE when ignored, blocked or handled. */
static volatile sig_atomic_t got_signo, got_code, got_pid_is_self;
static void on_sigpipe(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got_signo = sig;
    got_code = si->si_code;
    got_pid_is_self = si->si_pid == getpid();
}
static void case_sigpipe(void) {
    for (int how = 0; how < 4; how++) {
        int p[2];
        CHECK(pipe(p) == 0);
        close(p[0]);
        static const char *names[] = {"default action", "ignored", "blocked", "caught"};
        printf("write to a pipe without readers, SIGPIPE %s:\n", names[how]);
        pid_t c = xfork();
        if (c == 0) {
            if (how == 1) signal(SIGPIPE, SIG_IGN);
            if (how == 2) {
                sigset_t m;
                sigemptyset(&m);
                sigaddset(&m, SIGPIPE);
                sigprocmask(SIG_BLOCK, &m, NULL);
            }
            if (how == 3) {
                struct sigaction sa = {0};
                sa.sa_sigaction = on_sigpipe;
                sa.sa_flags = SA_SIGINFO;
                sigaction(SIGPIPE, &sa, NULL);
            }
            ssize_t r = write(p[1], "x", 1);
            printf("  write %s", res(r));
            if (how == 2) {
                sigset_t pend;
                sigpending(&pend);
                printf(", SIGPIPE pending %d", sigismember(&pend, SIGPIPE));
            }
            if (how == 3)
                printf(", handler got SIG%s si_code %d si_pid is self %d",
                       got_signo ? sigabbrev_np(got_signo) : "none", got_code, got_pid_is_self);
            printf("\n");
            _exit(0);
        }
        close(p[1]);
        printf("  %s\n", reap(c));
    }
    /* MSG_NOSIGNAL on a socket. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    close(sv[1]);
    printf("socket without a peer:\n");
    pid_t c = xfork();
    if (c == 0) {
        printf("  send(MSG_NOSIGNAL) %s\n", res(send(sv[0], "x", 1, MSG_NOSIGNAL)));
        printf("  send() %s\n", res(send(sv[0], "x", 1, 0)));
        _exit(0);
    }
    printf("  %s\n", reap(c));
    close(sv[0]);
}

/* kill() to process groups: kill(-pgid), kill(0), and its errors. */
static volatile sig_atomic_t usr1_count;
static void on_usr1(int sig) {
    (void)sig;
    usr1_count++;
}
static void case_kill(void) {
    struct gate g = gate_new();
    pid_t ga = xfork();
    if (ga == 0) {
        setpgid(0, 0);
        gate_wait(g);
        _exit(0);
    }
    CHECK(setpgid(ga, ga) == 0);
    pid_t gb = xfork();
    if (gb == 0) {
        setpgid(0, ga);
        gate_wait(g);
        _exit(0);
    }
    CHECK(setpgid(gb, ga) == 0);
    close(g.r);
    printf("kill(-pgid, 0) %s, killpg(pgid, 0) %s\n", res(kill(-ga, 0)), res(killpg(ga, 0)));
    CHECK(kill(-ga, SIGTERM) == 0);
    printf("kill(-pgid, SIGTERM): first %s, second %s\n", reap(ga), reap(gb));
    printf("group gone: kill(-pgid, 0) %s\n", res(kill(-ga, 0)));
    close(g.w);
    printf("errors: kill(INT_MAX, 0) %s, kill(self, 99) %s, kill(self, -1) %s\n",
           res(kill(INT_MAX, 0)), res(kill(getpid(), 99)), res(kill(getpid(), -1)));

    /* kill(0, sig) reaches every process of the caller's group, itself included. */
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t leader = xfork();
    if (leader == 0) {
        close(p[0]);
        setpgid(0, 0);
        signal(SIGUSR1, on_usr1);
        sigset_t m, old;
        sigemptyset(&m);
        sigaddset(&m, SIGUSR1);
        sigprocmask(SIG_BLOCK, &m, &old);
        int q[2];
        CHECK(pipe(q) == 0);
        pid_t member = xfork();
        if (member == 0) {
            close(q[0]);
            /* Tell the leader we exist (with the handler), then wait for the signal. */
            CHECK(write(q[1], "r", 1) == 1);
            while (!usr1_count) sigsuspend(&old);
            _exit(20 + usr1_count);
        }
        close(q[1]);
        char x;
        CHECK(read(q[0], &x, 1) == 1);
        CHECK(kill(0, SIGUSR1) == 0);
        while (!usr1_count) sigsuspend(&old);
        char b[128];
        int n = snprintf(b, sizeof b, "kill(0, SIGUSR1): leader's handler ran %d, member %s\n",
                         (int)usr1_count, reap(member));
        CHECK(write(p[1], b, n) == n);
        _exit(0);
    }
    close(p[1]);
    char b[256];
    ssize_t n;
    while ((n = read(p[0], b, sizeof b)) > 0) fwrite(b, 1, n, stdout);
    close(p[0]);
    printf("leader: %s\n", reap(leader));
}

/* Default actions: terminate, core (reported as a termination), ignore. */
static void case_default_actions(void) {
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE, SIGQUIT, SIGABRT,
                  SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGSYS, SIGTRAP, SIGXCPU, SIGRTMIN, SIGRTMIN + 5,
                  SIGCHLD, SIGURG, SIGWINCH, SIGCONT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        pid_t c = xfork();
        if (c == 0) {
            raise(sigs[i]);
            _exit(0);
        }
        int s;
        CHECK(waitpid(c, &s, 0) == c);
        printf("raise(%s): %s\n", signame(sigs[i]), st(s));
    }
    /* SIGKILL and SIGSTOP cannot be caught, ignored or blocked. */
    struct sigaction sa = {0};
    sa.sa_handler = SIG_IGN;
    printf("sigaction(SIGKILL) %s, sigaction(SIGSTOP) %s, sigaction(0) %s, sigaction(65) %s\n",
           res(sigaction(SIGKILL, &sa, NULL)), res(sigaction(SIGSTOP, &sa, NULL)),
           res(sigaction(0, &sa, NULL)), res(sigaction(65, &sa, NULL)));
    printf("query SIGKILL: %s\n", res(sigaction(SIGKILL, NULL, &sa)));
    sigset_t all, now;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    sigprocmask(SIG_SETMASK, NULL, &now);
    printf("block everything: SIGKILL blocked %d, SIGSTOP blocked %d, SIGTERM blocked %d\n",
           sigismember(&now, SIGKILL), sigismember(&now, SIGSTOP), sigismember(&now, SIGTERM));
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    /* Ignored and blocked signals and the mask survive exec; handlers do not. */
    pid_t c = xfork();
    if (c == 0) {
        signal(SIGUSR1, on_usr1);
        signal(SIGUSR2, SIG_IGN);
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGHUP);
        sigaddset(&m, SIGRTMIN);
        sigprocmask(SIG_BLOCK, &m, NULL);
        raise(SIGHUP);
        execl(self, "proc", "sigstate", (char *)NULL);
        _exit(127);
    }
    printf("exec'd child: %s\n", reap(c));
}

/* sigstate: the dispositions, mask and pending set this program started with. */
static int mode_sigstate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    struct sigaction sa;
    sigset_t m, p;
    sigprocmask(SIG_SETMASK, NULL, &m);
    sigpending(&p);
    printf("  after exec:");
    int sigs[] = {SIGUSR1, SIGUSR2, SIGHUP, SIGRTMIN, SIGTERM};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        sigaction(sigs[i], NULL, &sa);
        printf(" %d:%s%s%s", sigs[i],
               sa.sa_handler == SIG_DFL   ? "default"
               : sa.sa_handler == SIG_IGN ? "ignored"
                                          : "handler",
               sigismember(&m, sigs[i]) ? ",blocked" : "", sigismember(&p, sigs[i]) ? ",pending" : "");
    }
    printf("\n");
    return 0;
}

/* SIGSTOP/SIGTSTP stop, SIGCONT continues, as wait reports them. */
static void case_stop_cont(void) {
    /* The child waits at a gate after it is continued: an exit would replace the
     * "continued" state that wait reports. */
    struct gate g = gate_new();
    pid_t c = xfork();
    if (c == 0) {
        raise(SIGSTOP);
        gate_wait(g);
        _exit(5);
    }
    close(g.r);
    int s;
    pid_t r = waitpid(c, &s, WUNTRACED);
    printf("raise(SIGSTOP): WUNTRACED %s %s\n", r == c ? "child" : res(r), st(s));
    printf("stopped, WNOHANG|WUNTRACED again: %s\n", res(waitpid(c, &s, WNOHANG | WUNTRACED)));
    CHECK(kill(c, SIGCONT) == 0);
    r = waitpid(c, &s, WCONTINUED);
    printf("SIGCONT: WCONTINUED %s %s\n", r == c ? "child" : res(r), st(s));
    gate_open(g);
    printf("then: %s\n", reap(c));
    /* A stopped process is killed by SIGKILL. */
    c = xfork();
    if (c == 0) {
        raise(SIGSTOP);
        _exit(5);
    }
    CHECK(waitpid(c, &s, WUNTRACED) == c);
    CHECK(kill(c, SIGKILL) == 0);
    printf("SIGKILL while stopped: %s\n", reap(c));
    /* The parent stops its child from outside. */
    g = gate_new();
    c = xfork();
    if (c == 0) {
        gate_wait(g);
        _exit(6);
    }
    close(g.r);
    CHECK(kill(c, SIGSTOP) == 0);
    r = waitpid(c, &s, WUNTRACED);
    printf("kill(SIGSTOP): %s %s\n", r == c ? "child" : res(r), st(s));
    CHECK(kill(c, SIGCONT) == 0);
    gate_open(g);
    printf("continued and released: %s\n", reap(c));
    /* SA_NOCLDSTOP: no SIGCHLD for stops. */
}

/* Memory after fork is copied (privately) or shared (MAP_SHARED). */
static void case_fork_memory(void) {
    static char data[1 << 20];
    memset(data, 'p', sizeof data);
    size_t big_len = 64 << 20;
    char *big = mmap(NULL, big_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(big != MAP_FAILED);
    for (size_t i = 0; i < big_len; i += 4096) big[i] = (char)(i >> 12);
    int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    *shared = 1;
    char *heap = malloc(100);
    strcpy(heap, "heap before fork");
    pid_t c = xfork();
    if (c == 0) {
        int ok = data[12345] == 'p' && big[5 * 4096] == 5 && strcmp(heap, "heap before fork") == 0;
        data[12345] = 'c';
        big[5 * 4096] = 99;
        strcpy(heap, "child's heap");
        *shared = 2;
        char *more = malloc(1 << 20);
        memset(more, 1, 1 << 20);
        _exit(ok ? 0 : 1);
    }
    printf("child saw the parent's memory: %s\n", reap(c));
    printf("parent after the child wrote: static %c, 64 MB mapping %d, heap \"%s\", MAP_SHARED %d\n",
           data[12345], big[5 * 4096], heap, *shared);
    /* The parent writes after fork; the child still sees the old value. */
    int p[2];
    CHECK(pipe(p) == 0);
    struct gate g = gate_new();
    c = xfork();
    if (c == 0) {
        close(p[0]);
        gate_wait(g);
        char b[2] = {data[0], (char)('0' + *shared)};
        CHECK(write(p[1], b, 2) == 2);
        _exit(0);
    }
    close(p[1]);
    data[0] = 'P';
    *shared = 3;
    gate_open(g);
    char b[2] = {0};
    CHECK(read(p[0], b, 2) == 2);
    printf("child after the parent wrote: static %c, MAP_SHARED %c\n", b[0], b[1]);
    reap(c);
    close(p[0]);
    munmap(big, big_len);
}

/* clone flavours through glibc's clone() and raw clone3. qemu-user runs clone without
 * CLONE_THREAD as a fork and has no clone3: compared with Linux's output, not qemu's. */
static int clone_var;
static int clone_fd = -1;
static int clone_child(void *arg) {
    clone_var = (int)(intptr_t)arg;
    clone_fd = open("/etc/passwd", O_RDONLY);
    return 9;
}
static void case_clone(void) {
    size_t sz = 256 << 10;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    CHECK(stack != MAP_FAILED);
    pid_t ptid = 0;
    pid_t c = clone(clone_child, stack + sz, CLONE_VM | CLONE_PARENT_SETTID | SIGCHLD, (void *)7,
                    &ptid);
    const char *how = reap(c);
    printf("clone(CLONE_VM|CLONE_PARENT_SETTID): %s, ptid set %d\n", how, ptid == c);
    printf("  shared memory: var %d; separate fd table: fd %s\n", clone_var,
           clone_fd >= 0 ? res(fcntl(clone_fd, F_GETFD)) : "none");
    clone_var = 0;
    clone_fd = -1;
    c = clone(clone_child, stack + sz, CLONE_VM | CLONE_FILES | SIGCHLD, (void *)8);
    how = reap(c);
    printf("clone(CLONE_VM|CLONE_FILES): %s, var %d, fd opened by the child open here %d\n",
           how, clone_var, clone_fd >= 0 && fcntl(clone_fd, F_GETFD) == 0);
    if (clone_fd >= 0) close(clone_fd);
    clone_var = 0;
    c = clone(clone_child, stack + sz, SIGCHLD, (void *)9);
    how = reap(c);
    printf("clone(SIGCHLD), no CLONE_VM: %s, var %d\n", how, clone_var);
    c = clone(clone_child, stack + sz, CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)10);
    printf("clone(CLONE_VM|CLONE_VFORK): var already %d, %s\n", clone_var, reap(c));
    /* An exit signal other than SIGCHLD: only __WALL/__WCLONE waits see the child. */
    clone_var = 0;
    signal(SIGUSR2, SIG_IGN);
    c = clone(clone_child, stack + sz, CLONE_VM | SIGUSR2, (void *)11);
    int s;
    pid_t r = waitpid(c, &s, __WCLONE);
    printf("exit signal SIGUSR2: waitpid(__WCLONE) %s %s\n", r == c ? "child" : res(r), st(s));
    printf("errors: CLONE_THREAD without CLONE_SIGHAND %s, CLONE_SIGHAND without CLONE_VM %s\n",
           res(clone(clone_child, stack + sz, CLONE_THREAD, NULL)),
           res(clone(clone_child, stack + sz, CLONE_SIGHAND, NULL)));
    munmap(stack, sz);
}

/* clone3 like fork, and its argument checks. */
struct clone3_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
};
static void case_clone3(void) {
    struct clone3_args a = {0};
    pid_t ptid = 0;
    a.flags = CLONE_PARENT_SETTID;
    a.parent_tid = (uintptr_t)&ptid;
    a.exit_signal = SIGCHLD;
    long r = syscall(SYS_clone3, &a, sizeof a);
    if (r == 0) _exit(clone_var + 12);
    /* (Should the calls below wrongly create a process, it leaves at once.) */
#define clone3_checked(a, size) ({ long r_ = syscall(SYS_clone3, a, size); if (r_ == 0) _exit(0); r_; })
    clone_var = 1;
    printf("clone3 as fork: %s, parent_tid set %d\n", r > 0 ? reap(r) : res(r), ptid == r);
    printf("errors: size 8 %s", res(clone3_checked(&a, 8)));
    a.exit_signal = 99;
    printf(", exit_signal 99 %s", res(clone3_checked(&a, sizeof a)));
    a.exit_signal = SIGCHLD;
    a.flags = CLONE_THREAD;
    printf(", CLONE_THREAD alone %s", res(clone3_checked(&a, sizeof a)));
    a.flags = 1ULL << 40;
    printf(", unknown flag %s\n", res(clone3_checked(&a, sizeof a)));
}

/* The parent-death signal and orphans: a grandchild whose parent exits is reparented. */
static volatile sig_atomic_t pdeath;
static void on_pdeath(int sig) { pdeath = sig; }
static void case_orphan(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t mid = xfork();
    if (mid == 0) {
        close(p[0]);
        int q[2];
        CHECK(pipe(q) == 0);
        pid_t midpid = getpid();
        pid_t g = xfork();
        if (g == 0) {
            close(q[0]);
            signal(SIGUSR1, on_pdeath);
            int r = prctl(PR_SET_PDEATHSIG, SIGUSR1);
            int got = 0;
            prctl(PR_GET_PDEATHSIG, &got);
            char b[256];
            int n = snprintf(b, sizeof b, "grandchild: PR_SET_PDEATHSIG %s, PR_GET_PDEATHSIG %s, ppid is mid %d\n",
                             res(r), sigabbrev_np(got), getppid() == midpid);
            CHECK(write(p[1], b, n) == n);
            close(q[1]); /* tells mid to exit */
            while (!pdeath) pause();
            /* The signal comes when the parent *thread* exits; under qemu-user, whose
             * helper thread outlives it, the reparenting to init comes a little later. */
            for (int i = 0; i < 5000 && getppid() == midpid; i++) usleep(1000);
            n = snprintf(b, sizeof b, "grandchild: got SIG%s when its parent died, reparented %d\n",
                         sigabbrev_np(pdeath), getppid() != midpid);
            CHECK(write(p[1], b, n) == n);
            _exit(0);
        }
        close(q[1]);
        char x;
        CHECK(read(q[0], &x, 1) == 0);
        _exit(0);
    }
    close(p[1]);
    printf("mid: %s\n", reap(mid));
    char b[512];
    ssize_t n;
    while ((n = read(p[0], b, sizeof b)) > 0) fwrite(b, 1, n, stdout);
    close(p[0]);
    /* The pdeath signal is cleared by fork. */
    prctl(PR_SET_PDEATHSIG, SIGUSR2);
    pid_t c = xfork();
    if (c == 0) {
        int got = -1;
        prctl(PR_GET_PDEATHSIG, &got);
        _exit(got);
    }
    printf("PR_GET_PDEATHSIG in a forked child: %s\n", reap(c));
    prctl(PR_SET_PDEATHSIG, 0);
}

/* PR_SET_NAME: per thread, inherited by fork, replaced by exec. */
static int mode_name(int argc, char **argv) {
    (void)argc;
    (void)argv;
    char n[32] = {0};
    prctl(PR_GET_NAME, n);
    printf("  after exec: name \"%s\"\n", n);
    return 0;
}
static void case_name(void) {
    char n[32] = {0};
    printf("PR_SET_NAME %s", res(prctl(PR_SET_NAME, "worker-with-a-long-name")));
    prctl(PR_GET_NAME, n);
    printf(", PR_GET_NAME \"%s\"\n", n);
    pid_t c = xfork();
    if (c == 0) {
        char m[32] = {0};
        prctl(PR_GET_NAME, m);
        printf("  forked child: \"%s\"\n", m);
        execl(self, "some-argv0", "show-name", (char *)NULL);
        _exit(127);
    }
    printf("child: %s\n", reap(c));
}

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"wait-status", case_wait_status},
    {"wnohang", case_wnohang},
    {"waitid", case_waitid},
    {"zombie", case_zombie},
    {"ids", case_ids},
    {"vfork", case_vfork},
    {"vfork-shared", case_vfork_shared},
    {"exec", case_exec},
    {"cloexec", case_cloexec},
    {"shared-offset", case_shared_offset},
    {"pipe", case_pipe},
    {"sigpipe", case_sigpipe},
    {"kill", case_kill},
    {"default-actions", case_default_actions},
    {"stop-cont", case_stop_cont},
    {"fork-memory", case_fork_memory},
    {"clone", case_clone},
    {"clone3", case_clone3},
    {"orphan", case_orphan},
    {"name", case_name},
};

static const struct {
    const char *name;
    int (*fn)(int, char **);
} modes[] = {
    {"show-argv", mode_show_argv}, {"fds", mode_fds},           {"show-ids", mode_ids},
    {"block", mode_block},         {"sigstate", mode_sigstate}, {"show-name", mode_name},
};

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    /* No core files (qemu writes its own in the cwd). */
    struct rlimit no = {0, 0};
    setrlimit(RLIMIT_CORE, &no);
    self = getenv("PROC_SELF") ? getenv("PROC_SELF") : "/usr/local/bin/proc";
    if (argc < 2) {
        /* (exec'd with an empty argv by case exec: Linux passes one empty argument) */
        printf("argc %d, argv[0] \"%s\"\n", argc, argc ? argv[0] : "(none)");
        if (argc == 1 && argv[0][0]) fprintf(stderr, "usage: proc CASE (\"list\" lists them)\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
        if (strncmp(argv[1], modes[i].name, strlen(modes[i].name)) == 0)
            return modes[i].fn(argc, argv);
    if (strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) printf("%s\n", cases[i].name);
        return 0;
    }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (strcmp(argv[1], cases[i].name) == 0) {
            cases[i].fn();
            scratch_done();
            return failures ? 1 : 0;
        }
    }
    fprintf(stderr, "proc: unknown case %s\n", argv[1]);
    return 2;
}
