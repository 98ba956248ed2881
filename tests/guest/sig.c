/* Signals as Linux delivers them on riscv64: siginfo of kill/tkill/sigqueue and of faults,
 * the signal frame (ucontext with the integer and FP registers, editable, restored by
 * rt_sigreturn), masks and pending sets, SA_RESETHAND/SA_NODEFER/SA_RESTART, sigaltstack,
 * sigsuspend, sigtimedwait, EINTR, SIGCHLD, interval timers.
 * Each case prints facts Linux guarantees (no pids, no times), for the e2e test to compare
 * with qemu-riscv64 in a chroot. Usage: sig CASE ("list" prints the cases). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

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

static const char *signame(int sig) {
    static char b[8][24];
    static int i;
    i = (i + 1) % 8;
    if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        snprintf(b[i], sizeof b[i], "SIGRTMIN+%d", sig - SIGRTMIN);
    else if (sig > 0 && sigabbrev_np(sig))
        snprintf(b[i], sizeof b[i], "SIG%s", sigabbrev_np(sig));
    else
        snprintf(b[i], sizeof b[i], "signal %d", sig);
    return b[i];
}

static const char *st(int s) {
    static char b[4][48];
    static int i;
    i = (i + 1) % 4;
    if (WIFEXITED(s))
        snprintf(b[i], sizeof b[i], "exited %d", WEXITSTATUS(s));
    else if (WIFSIGNALED(s))
        snprintf(b[i], sizeof b[i], "killed by %s", signame(WTERMSIG(s)));
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

static void set_handler(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa = {0};
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

static sigset_t set_of(int a, int b) {
    sigset_t s;
    sigemptyset(&s);
    if (a) sigaddset(&s, a);
    if (b) sigaddset(&s, b);
    return s;
}

static void block(int sig) {
    sigset_t s = set_of(sig, 0);
    CHECK(sigprocmask(SIG_BLOCK, &s, NULL) == 0);
}
static void unblock(int sig) {
    sigset_t s = set_of(sig, 0);
    CHECK(sigprocmask(SIG_UNBLOCK, &s, NULL) == 0);
}

/* The last siginfo a handler saw, and a log of handler runs. */
static volatile int last_signo, last_code, last_errno, last_value, last_pid_is;
static volatile int last_uid_ok;
static volatile pid_t expect_pid;
static volatile int calls;
static char trail[256];
static volatile int trail_len;

static void note(const char *s) {
    size_t n = strlen(s);
    if (trail_len + n < sizeof trail - 1) {
        memcpy(trail + trail_len, s, n);
        trail_len += n;
        trail[trail_len] = 0;
    }
}

static void record(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    last_signo = si->si_signo == sig ? sig : -1;
    last_code = si->si_code;
    last_errno = si->si_errno;
    last_value = si->si_value.sival_int;
    last_pid_is = si->si_pid == 0 ? 0 : si->si_pid == expect_pid ? 1 : 2;
    last_uid_ok = si->si_uid == getuid();
    calls++;
}

static void show(const char *what) {
    static const char *whose[] = {"0", "expected", "other"};
    printf("%s: handler ran %d, %s, si_code %d, si_pid %s, si_uid ok %d\n", what, calls,
           last_signo > 0 ? signame(last_signo) : "si_signo wrong", last_code, whose[last_pid_is],
           last_uid_ok);
    calls = 0;
    last_signo = 0;
}

/* ------------------------------------------------------------------ cases */

/* siginfo of kill, tgkill, raise, sigqueue, and of a kill from another process. */
static void case_info(void) {
    set_handler(SIGUSR1, record, 0);
    set_handler(SIGRTMIN, record, 0);
    expect_pid = getpid();
    CHECK(kill(getpid(), SIGUSR1) == 0);
    show("kill(self, SIGUSR1)");
    CHECK(syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1) == 0);
    show("tgkill(self, SIGUSR1)");
    CHECK(syscall(SYS_tkill, syscall(SYS_gettid), SIGUSR1) == 0);
    show("tkill(self, SIGUSR1)");
    CHECK(raise(SIGUSR1) == 0);
    show("raise(SIGUSR1)");
    CHECK(sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 42}) == 0);
    show("sigqueue(self, SIGRTMIN, 42)");
    printf("  si_value %d\n", last_value);
    siginfo_t si = {0};
    si.si_code = -60;
    si.si_signo = SIGUSR1;
    si.si_pid = 12345;
    si.si_value.sival_int = 7;
    expect_pid = 12345;
    printf("rt_sigqueueinfo with si_code -60: %s\n",
           res(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si)));
    show("  delivered");
    si.si_code = SI_KERNEL;
    printf("rt_sigqueueinfo to self with si_code SI_KERNEL: %s\n",
           res(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si)));
    show("  delivered");
    printf("sigqueue(self, 0) %s, kill(self, 0) %s\n",
           res(sigqueue(getpid(), 0, (union sigval){0})), res(kill(getpid(), 0)));
    /* From a child: si_pid is the child's. */
    block(SIGUSR1);
    pid_t c = xfork();
    if (c == 0) {
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    expect_pid = c;
    reap(c);
    unblock(SIGUSR1);
    show("kill(parent, SIGUSR1) from a child");
    /* The parent signals its child, which reports through its exit code. */
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t parent = getpid();
    c = xfork();
    if (c == 0) {
        close(p[0]);
        expect_pid = parent;
        sigset_t none;
        sigemptyset(&none);
        block(SIGUSR1);
        CHECK(write(p[1], "r", 1) == 1);
        while (!calls) sigsuspend(&none);
        _exit(last_signo == SIGUSR1 && last_code == SI_USER && last_pid_is == 1 ? 0 : 1);
    }
    close(p[1]);
    char x;
    CHECK(read(p[0], &x, 1) == 1);
    close(p[0]);
    CHECK(kill(c, SIGUSR1) == 0);
    printf("child got SIGUSR1 from its parent with SI_USER and the parent's pid: %s\n", reap(c));
}

#ifdef __riscv
/* Faults: the handler gets si_addr and si_code, and resumes elsewhere by editing the pc
 * (uc_mcontext.__gregs[0]) in the frame. */
static volatile uintptr_t fault_addr, fault_pc;
static volatile int fault_sig, fault_code;
static volatile int fault_skip; /* bytes to add to the pc, or -1: return to ra */
static void on_fault(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    fault_sig = sig;
    fault_code = si->si_code;
    fault_addr = (uintptr_t)si->si_addr;
    fault_pc = uc->uc_mcontext.__gregs[REG_PC];
    if (fault_skip < 0)
        uc->uc_mcontext.__gregs[REG_PC] = uc->uc_mcontext.__gregs[REG_RA];
    else
        uc->uc_mcontext.__gregs[REG_PC] += fault_skip;
}

/* Loads a word from addr; the fault pc is the global label. */
extern char load_insn[], store_insn[], ill_insn[], ebreak_insn[], ill2_insn[];
__asm__(".text\n"
        ".option push\n"
        ".option norvc\n"
        ".globl do_load\n"
        "do_load:\n"
        "    li a1, 0\n"
        ".globl load_insn\n"
        "load_insn:\n"
        "    lw a1, 0(a0)\n"
        "    mv a0, a1\n"
        "    ret\n"
        ".globl do_store\n"
        "do_store:\n"
        ".globl store_insn\n"
        "store_insn:\n"
        "    sw a1, 0(a0)\n"
        "    ret\n"
        ".globl do_ill\n"
        "do_ill:\n"
        ".globl ill_insn\n"
        "ill_insn:\n"
        "    .word 0\n"
        "    ret\n"
        ".globl do_ebreak\n"
        "do_ebreak:\n"
        ".globl ebreak_insn\n"
        "ebreak_insn:\n"
        "    ebreak\n"
        "    ret\n"
        ".option pop\n"
        /* A compressed illegal instruction (all zeroes, 16 bits). */
        ".globl do_ill2\n"
        "do_ill2:\n"
        ".globl ill2_insn\n"
        "ill2_insn:\n"
        "    .half 0\n"
        "    ret\n");
long do_load(uintptr_t addr);
void do_store(uintptr_t addr, int v);
void do_ill(void);
void do_ill2(void);
void do_ebreak(void);

static void show_fault(const char *what, uintptr_t addr, const char *insn) {
    printf("%s: %s si_code %d, si_addr %s, pc %s\n", what, fault_sig ? signame(fault_sig) : "none",
           fault_code,
           fault_addr == addr ? "right" : "wrong", fault_pc == (uintptr_t)insn ? "right" : "wrong");
    fault_sig = 0;
    fault_addr = fault_pc = 0;
}

static void case_fault(void) {
    set_handler(SIGSEGV, on_fault, 0);
    set_handler(SIGBUS, on_fault, 0);
    set_handler(SIGILL, on_fault, 0);
    set_handler(SIGTRAP, on_fault, 0);
    fault_skip = 4;
    long v = do_load(16);
    show_fault("load from 16", 16, load_insn);
    printf("  skipped the load: result %ld\n", v);
    char *page = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    do_store((uintptr_t)page + 12, 1);
    show_fault("store to a read-only page", (uintptr_t)page + 12, store_insn);
    CHECK(munmap(page + 4096, 4096) == 0);
    do_load((uintptr_t)page + 4096 + 100);
    show_fault("load from an unmapped page", (uintptr_t)page + 4096 + 100, load_insn);
    CHECK(mprotect(page, 4096, PROT_NONE) == 0);
    do_load((uintptr_t)page + 8);
    show_fault("load from a PROT_NONE page", (uintptr_t)page + 8, load_insn);
    /* Executing a page without PROT_EXEC: the pc is the page; resume at ra. */
    CHECK(mprotect(page, 4096, PROT_READ | PROT_WRITE) == 0);
    memcpy(page, (void *)do_ebreak, 8);
    fault_skip = -1;
    ((void (*)(void))page)();
    show_fault("call into a non-executable page", (uintptr_t)page, page);
    fault_skip = 4;
    do_ill();
    show_fault("illegal instruction", (uintptr_t)ill_insn, ill_insn);
    fault_skip = 2;
    do_ill2();
    show_fault("compressed illegal instruction", (uintptr_t)ill2_insn, ill2_insn);
    fault_skip = 4;
    do_ebreak();
    show_fault("ebreak", (uintptr_t)ebreak_insn, ebreak_insn);
    /* A file mapping beyond the end of the file: SIGBUS. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/sig-bus.%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, "0123456789", 10) == 10);
    char *m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        printf("mmap(MAP_SHARED) of a file: %s\n", strerrorname_np(errno));
    } else {
        v = do_load((uintptr_t)m + 4);
        printf("load within the file: %ld\n", v & 0xff);
        do_load((uintptr_t)m + 4096 + 8);
        /* (si_addr: see case sigbus; qemu-user gets it wrong) */
        fault_addr = (uintptr_t)m + 4096 + 8;
        show_fault("load beyond the end of the file", (uintptr_t)m + 4096 + 8, load_insn);
        munmap(m, 8192);
    }
    close(fd);
    unlink(path);
    munmap(page, 4096);
    printf("integer division by zero: %ld, remainder %ld, no signal\n",
           (long)(*(volatile long *)&(long){10} / *(volatile long *)&(long){0}),
           (long)(*(volatile long *)&(long){10} % *(volatile long *)&(long){0}));
    /* A fault while SIGSEGV is blocked, or ignored, kills the process. */
    for (int how = 0; how < 2; how++) {
        pid_t c = xfork();
        if (c == 0) {
            if (how == 0)
                block(SIGSEGV);
            else
                signal(SIGSEGV, SIG_IGN);
            do_load(16);
            _exit(0);
        }
        printf("fault with SIGSEGV %s: %s\n", how ? "ignored" : "blocked", reap(c));
    }
}

/* The signal frame: every register is saved in the ucontext and restored by rt_sigreturn,
 * whatever the handler does with them; edits to the frame take effect. */
struct regs {
    uint64_t x[32];
    uint64_t f[32];
    uint64_t fcsr;
};
struct regs regs_in, regs_out, regs_frame;
volatile int regs_flag;
extern char regs_after_ecall[], regs_loop_start[], regs_loop_end[];
void regs_run(long async);

/* Saves the callee-saved registers, loads x1 and x5..x31 (not sp, gp, tp) and f0..f31 and
 * fcsr from regs_in, then either makes the system call in a7 (async == 0) or spins until
 * regs_flag is set (async == 1: x30 and x31 hold the flag and its address), then stores
 * every register to regs_out. */
__asm__(".text\n"
        ".globl regs_run\n"
        "regs_run:\n"
        "    addi sp, sp, -224\n"
        "    sd ra, 0(sp)\n"
        "    sd s0, 8(sp)\n"
        "    sd s1, 16(sp)\n"
        "    sd s2, 24(sp)\n"
        "    sd s3, 32(sp)\n"
        "    sd s4, 40(sp)\n"
        "    sd s5, 48(sp)\n"
        "    sd s6, 56(sp)\n"
        "    sd s7, 64(sp)\n"
        "    sd s8, 72(sp)\n"
        "    sd s9, 80(sp)\n"
        "    sd s10, 88(sp)\n"
        "    sd s11, 96(sp)\n"
        "    fsd fs0, 104(sp)\n"
        "    fsd fs1, 112(sp)\n"
        "    fsd fs2, 120(sp)\n"
        "    fsd fs3, 128(sp)\n"
        "    fsd fs4, 136(sp)\n"
        "    fsd fs5, 144(sp)\n"
        "    fsd fs6, 152(sp)\n"
        "    fsd fs7, 160(sp)\n"
        "    fsd fs8, 168(sp)\n"
        "    fsd fs9, 176(sp)\n"
        "    fsd fs10, 184(sp)\n"
        "    fsd fs11, 192(sp)\n"
        "    sd a0, 200(sp)\n"
        "    la t0, regs_in\n"
        "    ld t1, 512(t0)\n"
        "    fscsr t1\n"
        ".irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "    fld f\\n, (256+8*\\n)(t0)\n"
        ".endr\n"
        "    ld x1, 8(t0)\n"
        ".irp n,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "    ld x\\n, (8*\\n)(t0)\n"
        ".endr\n"
        "    ld x5, 40(t0)\n"
        "    ld t0, 200(sp)\n" /* async? (t0 is reloaded below) */
        "    bnez t0, 1f\n"
        "    ld t0, regs_in+40\n"
        "    ecall\n"
        ".globl regs_after_ecall\n"
        "regs_after_ecall:\n"
        "    j 3f\n"
        "1:\n"
        "    ld t0, regs_in+40\n"
        "    la x31, regs_flag\n"
        ".globl regs_loop_start\n"
        "regs_loop_start:\n"
        "2:  lw x30, 0(x31)\n"
        "    beqz x30, 2b\n"
        ".globl regs_loop_end\n"
        "regs_loop_end:\n"
        "3:\n"
        "    sd t0, 208(sp)\n"
        "    la t0, regs_out\n"
        "    sd x1, 8(t0)\n"
        ".irp n,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "    sd x\\n, (8*\\n)(t0)\n"
        ".endr\n"
        "    ld t1, 208(sp)\n"
        "    sd t1, 40(t0)\n"
        ".irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "    fsd f\\n, (256+8*\\n)(t0)\n"
        ".endr\n"
        "    frcsr t1\n"
        "    sd t1, 512(t0)\n"
        "    ld ra, 0(sp)\n"
        "    ld s0, 8(sp)\n"
        "    ld s1, 16(sp)\n"
        "    ld s2, 24(sp)\n"
        "    ld s3, 32(sp)\n"
        "    ld s4, 40(sp)\n"
        "    ld s5, 48(sp)\n"
        "    ld s6, 56(sp)\n"
        "    ld s7, 64(sp)\n"
        "    ld s8, 72(sp)\n"
        "    ld s9, 80(sp)\n"
        "    ld s10, 88(sp)\n"
        "    ld s11, 96(sp)\n"
        "    fld fs0, 104(sp)\n"
        "    fld fs1, 112(sp)\n"
        "    fld fs2, 120(sp)\n"
        "    fld fs3, 128(sp)\n"
        "    fld fs4, 136(sp)\n"
        "    fld fs5, 144(sp)\n"
        "    fld fs6, 152(sp)\n"
        "    fld fs7, 160(sp)\n"
        "    fld fs8, 168(sp)\n"
        "    fld fs9, 176(sp)\n"
        "    fld fs10, 184(sp)\n"
        "    fld fs11, 192(sp)\n"
        "    addi sp, sp, 224\n"
        "    ret\n");

static volatile int regs_edit;
static volatile uint64_t handler_fcsr;
static void on_regs(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    uint64_t f;
    __asm__ volatile("frcsr %0" : "=r"(f));
    handler_fcsr = f;
    ucontext_t *uc = ucv;
    for (int i = 0; i < 32; i++) {
        regs_frame.x[i] = uc->uc_mcontext.__gregs[i];
        regs_frame.f[i] = uc->uc_mcontext.__fpregs.__d.__f[i];
    }
    regs_frame.fcsr = uc->uc_mcontext.__fpregs.__d.__fcsr;
    /* Clobber every caller-saved register and the FP state. */
    __asm__ volatile("li t0, -1\n li t1, -1\n li t2, -1\n li t3, -1\n li t4, -1\n li t5, -1\n"
                     "li t6, -1\n li a0, -1\n li a1, -1\n li a2, -1\n li a3, -1\n li a4, -1\n"
                     "li a5, -1\n li a6, -1\n li a7, -1\n"
                     "fcvt.d.l ft0, t0\n fmv.d ft1, ft0\n fmv.d ft2, ft0\n fmv.d ft3, ft0\n"
                     "fmv.d ft4, ft0\n fmv.d ft5, ft0\n fmv.d ft6, ft0\n fmv.d ft7, ft0\n"
                     "fmv.d ft8, ft0\n fmv.d ft9, ft0\n fmv.d ft10, ft0\n fmv.d ft11, ft0\n"
                     "fmv.d fa0, ft0\n fmv.d fa1, ft0\n fmv.d fa2, ft0\n fmv.d fa3, ft0\n"
                     "fmv.d fa4, ft0\n fmv.d fa5, ft0\n fmv.d fa6, ft0\n fmv.d fa7, ft0\n"
                     "csrwi fcsr, 0x1f\n"
                     :
                     :
                     : "t0", "t1", "t2", "t3", "t4", "t5", "t6", "a0", "a1", "a2", "a3", "a4",
                       "a5", "a6", "a7", "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7",
                       "ft8", "ft9", "ft10", "ft11", "fa0", "fa1", "fa2", "fa3", "fa4", "fa5",
                       "fa6", "fa7", "memory");
    /* And the callee-saved ones, which the compiler saves and restores around this. */
    __asm__ volatile("li s1, -1\n li s2, -1\n li s3, -1\n li s4, -1\n li s5, -1\n li s6, -1\n"
                     "li s7, -1\n li s8, -1\n li s9, -1\n li s10, -1\n li s11, -1\n"
                     "fcvt.d.l fs0, s1\n fmv.d fs1, fs0\n fmv.d fs11, fs0\n"
                     :
                     :
                     : "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "fs0",
                       "fs1", "fs11", "memory");
    volatile double d = 1.0;
    d = d / 3.0;
    if (regs_edit) {
        uc->uc_mcontext.__gregs[18] = 0x5555aaaa5555aaaaULL;                   /* s2 */
        uc->uc_mcontext.__gregs[28] = 0x1234;                                  /* t3 */
        uc->uc_mcontext.__fpregs.__d.__f[9] = 0x400921fb54442d18ULL;           /* fs1 = pi */
        uc->uc_mcontext.__fpregs.__d.__fcsr = 0x40;                            /* frm RDN */
    }
    regs_flag = 1;
}

static const char *const xname[32] = {"zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2",
                                      "s0",   "s1", "a0", "a1", "a2", "a3", "a4", "a5",
                                      "a6",   "a7", "s2", "s3", "s4", "s5", "s6", "s7",
                                      "s8",   "s9", "s10", "s11", "t3", "t4", "t5", "t6"};

/* Registers of b that differ from a (but for the skipped ones), by name. */
static void diff_regs(const char *what, const struct regs *a, const struct regs *b,
                      uint32_t skip_x) {
    char out[512] = "";
    for (int i = 1; i < 32; i++)
        if (i != 2 && i != 3 && i != 4 && !(skip_x >> i & 1) && a->x[i] != b->x[i])
            snprintf(out + strlen(out), sizeof out - strlen(out), " %s", xname[i]);
    for (int i = 0; i < 32; i++)
        if (a->f[i] != b->f[i]) snprintf(out + strlen(out), sizeof out - strlen(out), " f%d", i);
    if (a->fcsr != b->fcsr) snprintf(out + strlen(out), sizeof out - strlen(out), " fcsr");
    printf("%s: %s\n", what, out[0] ? out + 1 : "all equal");
}

static void regs_setup(long nr, long a0, long a1) {
    uint64_t x = 0x0123456789abcdefULL;
    for (int i = 0; i < 32; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        regs_in.x[i] = x;
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        regs_in.f[i] = x;
    }
    regs_in.x[10] = a0;
    regs_in.x[11] = a1;
    regs_in.x[17] = nr;
    regs_in.fcsr = 0x61; /* frm RUP, fflags NX */
    memset(&regs_out, 0, sizeof regs_out);
    memset(&regs_frame, 0, sizeof regs_frame);
    regs_flag = 0;
}

static void case_regs(void) {
    set_handler(SIGUSR1, on_regs, 0);
    set_handler(SIGALRM, on_regs, 0);
    /* Delivered on return from kill(2). */
    regs_setup(SYS_kill, getpid(), SIGUSR1);
    regs_run(0);
    printf("signal on return from kill(2): a0 after it %s\n", regs_out.x[10] == 0 ? "0" : "not 0");
    diff_regs("  registers changed by the handler", &regs_in, &regs_out, 1 << 10);
    diff_regs("  frame registers that differ from the interrupted ones", &regs_in, &regs_frame,
              1 << 10);
    printf("  frame pc is after the ecall %d, frame a0 %s, handler starts with the fcsr %d\n",
           regs_frame.x[0] == (uintptr_t)regs_after_ecall, regs_frame.x[10] == 0 ? "0" : "not 0",
           handler_fcsr == regs_in.fcsr);
    /* The handler edits the frame: s2, t3, fs1, fcsr come back as it wrote them. */
    regs_setup(SYS_kill, getpid(), SIGUSR1);
    regs_edit = 1;
    regs_run(0);
    regs_edit = 0;
    struct regs want = regs_in;
    want.x[18] = 0x5555aaaa5555aaaaULL;
    want.x[28] = 0x1234;
    want.f[9] = 0x400921fb54442d18ULL;
    want.fcsr = 0x40;
    diff_regs("frame edited by the handler (s2 t3 fs1 fcsr): registers not as edited", &want,
              &regs_out, 1 << 10);
    /* Delivered asynchronously (a timer) while spinning with every register live. */
    regs_setup(0, 1, 2);
    struct itimerval it = {{0, 0}, {0, 20000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    regs_run(1);
    diff_regs("SIGALRM while spinning: registers changed", &regs_in, &regs_out,
              1u << 30 | 1u << 31);
    diff_regs("  frame registers that differ", &regs_in, &regs_frame, 1u << 30 | 1u << 31);
    printf("  frame pc in the loop %d\n", regs_frame.x[0] >= (uintptr_t)regs_loop_start &&
                                                 regs_frame.x[0] < (uintptr_t)regs_loop_end);
}
#else
static void case_fault(void) { printf("riscv64 only\n"); }
static void case_regs(void) { printf("riscv64 only\n"); }
#endif

/* Blocked signals stay pending; standard signals do not queue, real-time ones do, in order. */
static void on_log(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char b[32];
    if (sig >= SIGRTMIN)
        snprintf(b, sizeof b, " RTMIN+%d(%d)", sig - SIGRTMIN, si->si_value.sival_int);
    else
        snprintf(b, sizeof b, " %s", sigabbrev_np(sig));
    note(b);
}
static void on_log_mask(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    on_log(sig, si, ucv);
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    char b[64];
    snprintf(b, sizeof b, "[in handler: USR1 %d USR2 %d HUP %d; interrupted mask HUP %d]",
             sigismember(&now, SIGUSR1), sigismember(&now, SIGUSR2), sigismember(&now, SIGHUP),
             sigismember(&uc->uc_sigmask, SIGHUP));
    note(b);
    if (sig == SIGUSR1) {
        raise(SIGUSR2); /* blocked by sa_mask: runs after this handler */
        note(" raised-USR2");
        /* Edits to uc_sigmask become the mask after the handler. */
        sigaddset(&uc->uc_sigmask, SIGTERM);
    }
}
static void case_mask(void) {
    set_handler(SIGUSR1, on_log, 0);
    set_handler(SIGRTMIN, on_log, 0);
    block(SIGUSR1);
    raise(SIGUSR1);
    raise(SIGUSR1);
    sigset_t p;
    sigpending(&p);
    printf("blocked SIGUSR1 raised twice: pending %d, handler runs:%s\n", sigismember(&p, SIGUSR1),
           trail_len ? trail : " none");
    unblock(SIGUSR1);
    printf("unblocked:%s\n", trail);
    trail_len = 0;
    trail[0] = 0;
    sigpending(&p);
    printf("pending now %d\n", sigismember(&p, SIGUSR1));
    block(SIGRTMIN);
    for (int i = 1; i <= 3; i++) sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = i});
    unblock(SIGRTMIN);
    printf("SIGRTMIN queued three times while blocked, then unblocked:%s\n", trail);
    trail_len = 0;
    trail[0] = 0;
    printf("errors: sigprocmask(99) %s, rt_sigprocmask with sigsetsize 4 %s, sigaction with "
           "sigsetsize 4 %s\n",
           res(sigprocmask(99, &p, NULL)), res(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &p, NULL, 4)),
           res(syscall(SYS_rt_sigaction, SIGUSR1, NULL, &p, 4)));
    /* Several pending signals: all are delivered when unblocked. */
    set_handler(SIGUSR1, on_log, 0);
    set_handler(SIGUSR2, on_log, 0);
    set_handler(SIGHUP, on_log, 0);
    sigset_t three = set_of(SIGUSR1, SIGUSR2);
    sigaddset(&three, SIGHUP);
    sigprocmask(SIG_BLOCK, &three, NULL);
    raise(SIGUSR2);
    raise(SIGHUP);
    raise(SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &three, NULL);
    /* The order handlers run in is the kernel's business; the set is not. */
    int all = strstr(trail, "USR1") && strstr(trail, "USR2") && strstr(trail, "HUP");
    printf("USR2, HUP, USR1 pending, then unblocked: all three handlers ran %d, length %d\n", all,
           trail_len);
    trail_len = 0;
    trail[0] = 0;
}

/* sa_mask is blocked while the handler runs (with the signal itself); uc_sigmask is the
 * mask it interrupted, and edits to it become the mask after the handler. qemu-user does
 * not block sa_mask: compared with Linux's output, not qemu's. */
static void case_sa_mask(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_log_mask;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    sigdelset(&sa.sa_mask, SIGUSR2);
    CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
    block(SIGHUP);
    raise(SIGUSR1);
    printf("sa_mask {USR2}, HUP blocked:%s\n", trail);
    trail_len = 0;
    trail[0] = 0;
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    printf("after the handler: HUP blocked %d, TERM blocked (added to uc_sigmask) %d, USR1 %d\n",
           sigismember(&now, SIGHUP), sigismember(&now, SIGTERM), sigismember(&now, SIGUSR1));
}

/* SA_RESETHAND: the handler runs once, then the default action; the signal is not blocked
 * while it runs. SA_NODEFER: the same signal nests. */
static volatile int depth, max_depth;
static void on_nest(int sig, siginfo_t *si, void *uc) {
    (void)si;
    (void)uc;
    calls++;
    depth++;
    if (depth > max_depth) max_depth = depth;
    if (calls == 1) raise(sig);
    depth--;
}
static void case_resethand(void) {
    pid_t c = xfork();
    if (c == 0) {
        set_handler(SIGUSR1, record, SA_RESETHAND);
        raise(SIGUSR1);
        struct sigaction now;
        sigaction(SIGUSR1, NULL, &now);
        printf("SA_RESETHAND: ran %d, then disposition %s\n", calls,
               now.sa_handler == SIG_DFL ? "SIG_DFL" : "not SIG_DFL");
        raise(SIGUSR1);
        printf("not reached\n");
        _exit(0);
    }
    printf("second SIGUSR1: %s\n", reap(c));
    for (int nodefer = 0; nodefer < 2; nodefer++) {
        calls = depth = max_depth = 0;
        set_handler(SIGUSR1, on_nest, nodefer ? SA_NODEFER : 0);
        raise(SIGUSR1);
        printf("%s: raised again inside the handler: %d runs, max depth %d\n",
               nodefer ? "SA_NODEFER" : "default", calls, max_depth);
    }
    calls = depth = max_depth = 0;
    set_handler(SIGUSR1, on_nest, SA_RESETHAND | SA_NODEFER);
    c = xfork();
    if (c == 0) {
        raise(SIGUSR1); /* the raise inside the handler meets SIG_DFL */
        _exit(0);
    }
    printf("SA_RESETHAND|SA_NODEFER, raised again inside the handler: %s\n", reap(c));
    signal(SIGUSR1, SIG_DFL);
}

/* sigaltstack: handlers with SA_ONSTACK run on it, others do not. */
static char *alt;
static size_t alt_size = 64 * 1024;
static volatile int on_alt, ss_flags_in_handler;
static volatile int uc_stack_ok;
static void on_stack_check(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    char local;
    on_alt = &local >= alt && &local < alt + alt_size;
    stack_t now;
    sigaltstack(NULL, &now);
    ss_flags_in_handler = now.ss_flags;
    uc_stack_ok = uc->uc_stack.ss_sp == alt && uc->uc_stack.ss_size == alt_size;
    if (sig == SIGUSR2) {
        stack_t other = {.ss_sp = alt, .ss_size = alt_size, .ss_flags = 0};
        errno = 0;
        ss_flags_in_handler |= (sigaltstack(&other, NULL) == -1 && errno == EPERM) << 8;
    }
}
static volatile int overflow_limit = 1 << 30;
static int overflow(int n) {
    volatile char pad[1024];
    pad[n % 1024] = (char)n;
    if (n >= overflow_limit) return pad[0];
    return overflow(n + 1) + pad[(n * 7) % 1024];
}
static void on_overflow(int sig, siginfo_t *si, void *uc) {
    (void)si;
    (void)uc;
    char local;
    static const char yes[] = "SIGSEGV from stack overflow caught on the alternate stack\n";
    static const char no[] = "SIGSEGV from stack overflow, but not on the alternate stack\n";
    if (&local >= alt && &local < alt + alt_size)
        CHECK(write(1, yes, sizeof yes - 1) > 0);
    else
        CHECK(write(1, no, sizeof no - 1) > 0);
    _exit(sig);
}
static void case_altstack(void) {
    alt = malloc(alt_size);
    stack_t ss = {.ss_sp = alt, .ss_size = alt_size, .ss_flags = 0}, old;
    CHECK(sigaltstack(NULL, &old) == 0);
    printf("initially: ss_flags %s\n", old.ss_flags == SS_DISABLE ? "SS_DISABLE" : res(old.ss_flags));
    stack_t small = {.ss_sp = alt, .ss_size = 1024, .ss_flags = 0};
    printf("errors: too small %s", res(sigaltstack(&small, NULL)));
    small.ss_size = alt_size;
    small.ss_flags = 0x55;
    printf(", bad flags %s\n", res(sigaltstack(&small, NULL)));
    CHECK(sigaltstack(&ss, NULL) == 0);
    CHECK(sigaltstack(NULL, &old) == 0);
    printf("set: ss_flags %d, same stack %d\n", old.ss_flags, old.ss_sp == alt && old.ss_size == alt_size);
    set_handler(SIGUSR1, on_stack_check, SA_ONSTACK);
    set_handler(SIGUSR2, on_stack_check, SA_ONSTACK);
    set_handler(SIGHUP, on_stack_check, 0);
    raise(SIGUSR1);
    printf("SA_ONSTACK handler: on the alternate stack %d, ss_flags in it %s, uc_stack %d\n", on_alt,
           ss_flags_in_handler == SS_ONSTACK ? "SS_ONSTACK" : res(ss_flags_in_handler), uc_stack_ok);
    raise(SIGUSR2);
    printf("sigaltstack while on it: %s\n", ss_flags_in_handler >> 8 ? "EPERM" : "allowed");
    raise(SIGHUP);
    printf("handler without SA_ONSTACK: on the alternate stack %d, ss_flags %d\n", on_alt,
           ss_flags_in_handler);
    CHECK(sigaltstack(NULL, &old) == 0);
    printf("after: ss_flags %d\n", old.ss_flags);
    /* A stack overflow is caught on the alternate stack. */
    fflush(stdout);
    pid_t c = xfork();
    if (c == 0) {
        set_handler(SIGSEGV, on_overflow, SA_ONSTACK);
        struct rlimit rl = {1 << 20, 1 << 20};
        setrlimit(RLIMIT_STACK, &rl);
        overflow(0);
        _exit(0);
    }
    printf("stack overflow: %s\n", reap(c));
    ss.ss_flags = SS_DISABLE;
    CHECK(sigaltstack(&ss, NULL) == 0);
    CHECK(sigaltstack(NULL, &old) == 0);
    printf("disabled: ss_flags %s\n", old.ss_flags == SS_DISABLE ? "SS_DISABLE" : res(old.ss_flags));
}

/* sigsuspend and pause: wait with a temporary mask, return EINTR after a handler. */
static void case_sigsuspend(void) {
    set_handler(SIGUSR1, record, 0);
    block(SIGUSR1);
    pid_t c = xfork();
    if (c == 0) {
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    expect_pid = c;
    sigset_t none, now;
    sigemptyset(&none);
    int r = sigsuspend(&none);
    printf("sigsuspend: %s\n", res(r));
    show("  signal from a child");
    sigprocmask(SIG_SETMASK, NULL, &now);
    printf("  mask restored: SIGUSR1 blocked %d\n", sigismember(&now, SIGUSR1));
    reap(c);
    /* A signal already pending: sigsuspend returns at once. */
    raise(SIGUSR1);
    expect_pid = getpid();
    r = sigsuspend(&none);
    printf("already pending: sigsuspend %s\n", res(r));
    show("  raise");
    unblock(SIGUSR1);
    /* pause() until a timer. */
    set_handler(SIGALRM, record, 0);
    struct itimerval it = {{0, 0}, {0, 20000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    expect_pid = 0;
    r = pause();
    printf("pause: %s\n", res(r));
    show("  SIGALRM from setitimer");
    /* A signal in the suspend mask stays pending; another one ends the wait. */
    block(SIGUSR1);
    block(SIGUSR2);
    set_handler(SIGUSR2, record, 0);
    raise(SIGUSR1);
    sigset_t only1 = set_of(SIGUSR1, 0);
    c = xfork();
    if (c == 0) {
        kill(getppid(), SIGUSR2);
        _exit(0);
    }
    expect_pid = c;
    r = sigsuspend(&only1);
    printf("sigsuspend with USR1 pending but in its mask: %s\n", res(r));
    show("  woken by");
    sigset_t p;
    sigpending(&p);
    printf("  USR1 still pending %d\n", sigismember(&p, SIGUSR1));
    reap(c);
    expect_pid = getpid();
    unblock(SIGUSR1);
    show("  unblocked");
}

/* sigtimedwait/sigwaitinfo take a blocked pending signal without a handler. */
static void case_sigtimedwait(void) {
    set_handler(SIGUSR1, record, 0);
    block(SIGUSR1);
    block(SIGRTMIN);
    sigset_t w = set_of(SIGUSR1, SIGRTMIN);
    siginfo_t si;
    raise(SIGUSR1);
    int r = sigwaitinfo(&w, &si);
    printf("sigwaitinfo: %s, si_code %d, handler ran %d\n", r > 0 ? signame(r) : res(r), si.si_code,
           calls);
    sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 5});
    sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 6});
    kill(getpid(), SIGUSR1);
    struct timespec zero = {0, 0}, short_ = {0, 10 * 1000 * 1000};
    r = sigtimedwait(&w, &si, &zero);
    printf("pending USR1 and RTMIN x2: first %s (code %d)", r > 0 ? signame(r) : res(r), si.si_code);
    r = sigtimedwait(&w, &si, &zero);
    printf(", then %s value %d", r > 0 ? signame(r) : res(r), si.si_value.sival_int);
    r = sigtimedwait(&w, &si, &zero);
    printf(", then %s value %d", r > 0 ? signame(r) : res(r), si.si_value.sival_int);
    r = sigtimedwait(&w, &si, &zero);
    printf(", then %s\n", res(r));
    r = sigtimedwait(&w, &si, &short_);
    printf("nothing pending, 10 ms: %s\n", res(r));
    struct timespec bad = {0, 2000000000};
    printf("bad timeout: %s\n", res(sigtimedwait(&w, &si, &bad)));
    /* A handled signal outside the set interrupts the wait. */
    set_handler(SIGALRM, record, 0);
    struct itimerval it = {{0, 0}, {0, 100000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    struct timespec long_ = {5, 0};
    calls = 0;
    r = sigtimedwait(&w, &si, &long_);
    printf("SIGALRM (handled, not waited for) during a 5 s wait: %s, handler ran %d\n", res(r), calls);
    calls = 0;
    /* A signal from a child, waited for. */
    pid_t c = xfork();
    if (c == 0) {
        sigqueue(getppid(), SIGRTMIN, (union sigval){.sival_int = 77});
        _exit(0);
    }
    r = sigwaitinfo(&w, &si);
    printf("from a child: %s, value %d, si_pid is the child %d, si_code %d\n",
           r > 0 ? signame(r) : res(r), si.si_value.sival_int, si.si_pid == c, si.si_code);
    reap(c);
}

/* EINTR and SA_RESTART. The SIGALRM handler writes a byte into the pipe being read, so
 * that a restarted read completes. */
static int eintr_pipe[2];
static pid_t eintr_child;
static void on_alarm_write(int sig) {
    (void)sig;
    calls++;
    CHECK(write(eintr_pipe[1], "x", 1) == 1);
    if (eintr_child) kill(eintr_child, SIGKILL);
}
static char big_buf[70000];
static void on_alarm_drain(int sig) {
    (void)sig;
    calls++;
    CHECK(read(eintr_pipe[0], big_buf, 4096) == 4096);
}
static void arm(void) {
    struct itimerval it = {{0, 0}, {0, 100000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
}
static void case_eintr(void) {
    char b[8];
    for (int restart = 0; restart < 2; restart++) {
        const char *how = restart ? "SA_RESTART" : "no SA_RESTART";
        struct sigaction sa = {0};
        sa.sa_handler = on_alarm_write;
        sa.sa_flags = restart ? SA_RESTART : 0;
        CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
        CHECK(pipe(eintr_pipe) == 0);
        calls = 0;
        arm();
        ssize_t n = read(eintr_pipe[0], b, sizeof b);
        printf("%s: read on an empty pipe %s (handler %d)", how, res(n), calls);
        if (n < 0) printf(", then read %s", res(read(eintr_pipe[0], b, sizeof b)));
        printf("\n");
        struct pollfd pf = {eintr_pipe[0], POLLIN, 0};
        calls = 0;
        arm();
        n = poll(&pf, 1, 5000);
        printf("  poll %s", res(n));
        CHECK(read(eintr_pipe[0], b, sizeof b) == 1);
        calls = 0;
        arm();
        struct timespec ts = {5, 0}, rem = {0, 0};
        n = nanosleep(&ts, &rem);
        printf(", nanosleep %s (remaining > 4 s %d)", res(n), rem.tv_sec >= 4);
        CHECK(read(eintr_pipe[0], b, sizeof b) == 1);
        /* wait4: the handler kills the child. */
        eintr_child = xfork();
        if (eintr_child == 0) {
            for (;;) pause();
        }
        arm();
        int s;
        pid_t r = waitpid(eintr_child, &s, 0);
        printf(", waitpid %s", r == eintr_child ? st(s) : res(r));
        if (r < 0) printf(" then %s", reap(eintr_child));
        eintr_child = 0;
        CHECK(read(eintr_pipe[0], b, sizeof b) == 1);
        /* A write to a full pipe: the handler drains 4096 bytes. */
        sa.sa_handler = on_alarm_drain;
        CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
        CHECK(fcntl(eintr_pipe[1], F_SETFL, O_NONBLOCK) == 0);
        while (write(eintr_pipe[1], big_buf, sizeof big_buf) > 0) {
        }
        while (write(eintr_pipe[1], big_buf, 1) > 0) {
        }
        CHECK(fcntl(eintr_pipe[1], F_SETFL, 0) == 0);
        arm();
        n = write(eintr_pipe[1], "y", 1);
        printf(", write to a full pipe %s\n", res(n));
        close(eintr_pipe[0]);
        close(eintr_pipe[1]);
    }
    signal(SIGALRM, SIG_DFL);
}

/* SIGCHLD: siginfo for exit, kill, stop; SA_NOCLDSTOP; ignoring it reaps children. */
static volatile int chld_code, chld_status, chld_from_child;
static volatile pid_t chld_expect;
static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    calls++;
    chld_code = si->si_code;
    chld_status = si->si_status;
    chld_from_child = si->si_pid == chld_expect;
}
static const char *cld(int code) {
    switch (code) {
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    case CLD_DUMPED: return "CLD_DUMPED";
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    default: return "?";
    }
}
static void wait_chld(const char *what) {
    sigset_t none;
    sigemptyset(&none);
    while (!calls) sigsuspend(&none);
    printf("%s: SIGCHLD %s status %d, si_pid is the child %d\n", what, cld(chld_code), chld_status,
           chld_from_child);
    calls = 0;
}
static void case_sigchld(void) {
    set_handler(SIGCHLD, on_chld, 0);
    block(SIGCHLD);
    calls = 0;
    pid_t c = chld_expect = xfork();
    if (c == 0) _exit(5);
    wait_chld("exit(5)");
    reap(c);
    int p[2];
    CHECK(pipe(p) == 0);
    c = chld_expect = xfork();
    if (c == 0) {
        char x;
        close(p[1]);
        CHECK(read(p[0], &x, 1) == 1);
        _exit(0);
    }
    CHECK(kill(c, SIGSTOP) == 0);
    wait_chld("kill(SIGSTOP)");
    CHECK(kill(c, SIGCONT) == 0);
    wait_chld("kill(SIGCONT)");
    CHECK(kill(c, SIGKILL) == 0);
    wait_chld("kill(SIGKILL)");
    reap(c);
    close(p[0]);
    close(p[1]);
    /* SIGCHLD ignored: children are reaped by the kernel; wait() waits for them all and
     * fails with ECHILD. */
    signal(SIGCHLD, SIG_IGN);
    unblock(SIGCHLD);
    int s;
    for (int i = 0; i < 3; i++)
        if (xfork() == 0) _exit(i);
    printf("SIGCHLD ignored: wait() %s\n", res(wait(&s)));
    signal(SIGCHLD, SIG_DFL);
}

/* SA_NOCLDSTOP and SA_NOCLDWAIT. qemu-user does not pass them to the host kernel:
 * compared with Linux's output, not qemu's. */
static void case_sigchld_flags(void) {
    block(SIGCHLD);
    /* SA_NOCLDSTOP: no SIGCHLD for the stop, one for the exit. */
    set_handler(SIGCHLD, on_chld, SA_NOCLDSTOP);
    int gate[2];
    CHECK(pipe(gate) == 0);
    pid_t c;
    c = chld_expect = xfork();
    if (c == 0) {
        char x;
        close(gate[1]);
        raise(SIGSTOP);
        CHECK(read(gate[0], &x, 1) == 0); /* an exit would replace the "continued" state */
        _exit(6);
    }
    close(gate[0]);
    int s;
    CHECK(waitpid(c, &s, WUNTRACED) == c);
    sigset_t pend;
    sigpending(&pend);
    printf("SA_NOCLDSTOP, child stopped: SIGCHLD pending %d\n", sigismember(&pend, SIGCHLD));
    CHECK(kill(c, SIGCONT) == 0);
    CHECK(waitpid(c, &s, WCONTINUED) == c);
    sigpending(&pend);
    printf("SA_NOCLDSTOP, child continued: SIGCHLD pending %d\n", sigismember(&pend, SIGCHLD));
    close(gate[1]);
    wait_chld("  then exit(6)");
    reap(c);
    unblock(SIGCHLD);
    /* SA_NOCLDWAIT: the same, but the handler runs. */
    set_handler(SIGCHLD, on_chld, SA_NOCLDWAIT);
    calls = 0;
    c = chld_expect = xfork();
    if (c == 0) _exit(7);
    printf("SA_NOCLDWAIT: wait() %s", res(wait(&s)));
    for (int i = 0; i < 5000 && !calls; i++) usleep(1000);
    printf(", handler ran %d: %s status %d\n", calls, cld(chld_code), chld_status);
    signal(SIGCHLD, SIG_DFL);
}

/* ITIMER_REAL, alarm(), and POSIX timers. */
static void case_timers(void) {
    set_handler(SIGALRM, record, 0);
    block(SIGALRM);
    struct itimerval it = {{0, 20000}, {0, 20000}}, old;
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    sigset_t none;
    sigemptyset(&none);
    calls = 0;
    for (int i = 0; i < 3; i++) sigsuspend(&none);
    printf("periodic 20 ms ITIMER_REAL: %d SIGALRMs in 3 waits\n", calls);
    struct itimerval zero = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &zero, &old) == 0);
    printf("  disarmed: old interval %ld us\n", (long)old.it_interval.tv_usec);
    CHECK(getitimer(ITIMER_REAL, &old) == 0);
    printf("  getitimer now: %ld %ld\n", (long)old.it_value.tv_sec, (long)old.it_value.tv_usec);
    sigset_t p;
    sigpending(&p);
    if (sigismember(&p, SIGALRM)) sigsuspend(&none);
    unblock(SIGALRM);
    unsigned a1 = alarm(5), a2 = alarm(0), a3 = alarm(0);
    printf("alarm(5) %u, then alarm(0) %u, then alarm(0) %u\n", a1, a2, a3);
    it = (struct itimerval){{0, 0}, {3, 0}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    CHECK(getitimer(ITIMER_REAL, &old) == 0);
    printf("setitimer 3 s: getitimer between 2 and 3 s %d\n",
           old.it_value.tv_sec == 2 || (old.it_value.tv_sec == 3 && old.it_value.tv_usec == 0));
    CHECK(setitimer(ITIMER_REAL, &zero, NULL) == 0);
    printf("setitimer(99) %s\n", res(setitimer(99, &it, NULL)));
    /* timer_create with SIGEV_SIGNAL. */
    timer_t t;
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN;
    sev.sigev_value.sival_int = 7;
    block(SIGRTMIN);
    CHECK(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0);
    struct itimerspec ts = {{0, 0}, {0, 10 * 1000 * 1000}};
    CHECK(timer_settime(t, 0, &ts, NULL) == 0);
    sigset_t w = set_of(SIGRTMIN, 0);
    siginfo_t si;
    int r = sigwaitinfo(&w, &si);
    printf("timer_create(CLOCK_MONOTONIC): %s, si_code %d (SI_TIMER %d), value %d, overrun %d\n",
           r > 0 ? signame(r) : res(r), si.si_code, SI_TIMER, si.si_value.sival_int,
           timer_getoverrun(t));
    struct itimerspec cur;
    CHECK(timer_gettime(t, &cur) == 0);
    printf("  after it fired: %ld %ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);
    CHECK(timer_delete(t) == 0);
    sev.sigev_notify = SIGEV_NONE;
    CHECK(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0);
    ts = (struct itimerspec){{0, 0}, {10, 0}};
    CHECK(timer_settime(t, 0, &ts, NULL) == 0);
    CHECK(timer_gettime(t, &cur) == 0);
    printf("SIGEV_NONE timer of 10 s: remaining between 9 and 10 s %d\n",
           cur.it_value.tv_sec == 9 || (cur.it_value.tv_sec == 10 && cur.it_value.tv_nsec == 0));
    CHECK(timer_delete(t) == 0);
    printf("timer_delete of an unknown timer: %s\n", res(syscall(SYS_timer_delete, 0x7fff)));
}

/* SIGBUS from a file mapping beyond the end of the file, with its address (portable C: the
 * handler jumps out). qemu-user reports a wrong si_addr: compared with Linux's output. */
#include <setjmp.h>
static sigjmp_buf bus_jmp;
static volatile uintptr_t bus_addr;
static volatile int bus_code;
static void on_bus(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    bus_addr = (uintptr_t)si->si_addr;
    bus_code = si->si_code;
    siglongjmp(bus_jmp, 1);
}
static void case_sigbus(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/sig-bus.%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, "0123456789", 10) == 10);
    volatile char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        printf("mmap(MAP_SHARED) of a file: %s\n", strerrorname_np(errno));
        unlink(path);
        return;
    }
    set_handler(SIGBUS, on_bus, 0);
    printf("within the file: %c, rest of its page zero %d\n", m[4], m[4095] == 0);
    for (int off = 4096 + 8; off < 3 * 4096; off += 4096) {
        if (sigsetjmp(bus_jmp, 1) == 0) {
            printf("read at page offset %d: %d\n", off, m[off]);
        } else {
            printf("read beyond the end of the file: SIGBUS si_code %d (BUS_ADRERR %d), si_addr right %d\n",
                   bus_code, BUS_ADRERR, bus_addr == (uintptr_t)(m + off));
        }
        if (sigsetjmp(bus_jmp, 1) == 0) {
            m[off + 1] = 1;
            printf("write at page offset %d: no signal\n", off + 1);
        } else {
            printf("write beyond the end of the file: SIGBUS si_code %d, si_addr right %d\n",
                   bus_code, bus_addr == (uintptr_t)(m + off + 1));
        }
    }
    /* Growing the file makes the page readable. */
    CHECK(ftruncate(fd, 4096 + 100) == 0);
    printf("after ftruncate: %d\n", m[4096 + 8]);
    munmap((void *)m, 3 * 4096);
    close(fd);
    unlink(path);
}

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"sa-mask", case_sa_mask},     {"sigchld-flags", case_sigchld_flags}, {"sigbus", case_sigbus},
    {"info", case_info},           {"fault", case_fault},         {"regs", case_regs},
    {"mask", case_mask},           {"resethand", case_resethand}, {"altstack", case_altstack},
    {"sigsuspend", case_sigsuspend}, {"sigtimedwait", case_sigtimedwait},
    {"eintr", case_eintr},         {"sigchld", case_sigchld},     {"timers", case_timers},
};

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct rlimit no = {0, 0};
    setrlimit(RLIMIT_CORE, &no);
    if (argc < 2) {
        fprintf(stderr, "usage: sig CASE (\"list\" lists them)\n");
        return 2;
    }
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
    fprintf(stderr, "sig: unknown case %s\n", argv[1]);
    return 2;
}
