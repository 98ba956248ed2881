/* The riscv64 signal frame as a handler sees it (linux/sigframe.rs builds it).
 *
 * Prints facts only, no addresses, so the output is the same wherever it runs:
 * offsets inside the frame, the registers saved in uc_mcontext (set to known values in
 * inline assembly just before the signal), what sigreturn restores after the handler
 * changed the saved context, the trampoline ra points to, the alternate stack (SA_ONSTACK,
 * SS_ONSTACK, SS_AUTODISARM), the masks, and siginfo for tgkill, SIGSEGV, SIGILL and
 * SIGTRAP.
 *
 * One line differs between a Linux kernel and qemu-user (7.2): "frame size", the distance
 * between the interrupted sp and the frame. Linux 6.x reserves sizeof(struct rt_sigframe)
 * = 128 + 960 = 1088 bytes; qemu's own sigcontext is smaller (no Q-sized FP area). */
#define _GNU_SOURCE
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define REG_S2 18
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31) /* linux/signal.h; glibc does not define it */
#endif

static struct {
    long frame, frame_to_uc, frame_align, frame_size, sp_ok, pc_ok, s2, f8, fcsr_saved, fcsr_live;
    unsigned tramp0, tramp1;
    unsigned long uc_flags;
    void *uc_link;
    void *ss_sp;
    int ss_flags;
    size_t ss_size;
    unsigned long saved_mask, live_mask;
    unsigned reserved[3];
    int signo, errno_, code, pid_ok, uid_ok;
} h;

static uintptr_t resume_pc, fault_pc;

static void on_usr1(int sig, siginfo_t *info, void *ctx) {
    ucontext_t *uc = ctx;
    uint32_t *ra = __builtin_return_address(0);
    sigset_t cur;
    unsigned fcsr;
    h.frame = (long)info;
    h.frame_to_uc = (char *)uc - (char *)info;
    h.frame_align = (uintptr_t)info % 16;
    h.s2 = uc->uc_mcontext.__gregs[REG_S2];
    memcpy(&h.f8, &uc->uc_mcontext.__fpregs.__d.__f[8], 8);
    h.fcsr_saved = uc->uc_mcontext.__fpregs.__d.__fcsr;
    __asm__ volatile("frcsr %0" : "=r"(fcsr));
    h.fcsr_live = fcsr;
    h.tramp0 = ra[0];
    h.tramp1 = ra[1];
    h.uc_flags = uc->__uc_flags;
    h.uc_link = uc->uc_link;
    h.ss_sp = uc->uc_stack.ss_sp;
    h.ss_flags = uc->uc_stack.ss_flags;
    h.ss_size = uc->uc_stack.ss_size;
    h.saved_mask = uc->uc_sigmask.__val[0];
    sigprocmask(SIG_BLOCK, NULL, &cur);
    h.live_mask = cur.__val[0];
    memcpy(h.reserved, uc->uc_mcontext.__fpregs.__q.__glibc_reserved, sizeof h.reserved);
    h.signo = info->si_signo;
    h.errno_ = info->si_errno;
    h.code = info->si_code;
    h.pid_ok = info->si_pid == getpid();
    h.uid_ok = info->si_uid == getuid();
    /* Record, then change what sigreturn restores. */
    h.sp_ok = uc->uc_mcontext.__gregs[REG_SP];
    h.pc_ok = uc->uc_mcontext.__gregs[REG_PC];
    uc->uc_mcontext.__gregs[REG_S2] = 0x5152535455565758;
    uc->uc_mcontext.__fpregs.__d.__f[8] = 0x4045000000000000; /* 42.0 */
    uc->uc_mcontext.__fpregs.__d.__fcsr = 0x42;               /* frm 2 (RDN), fflags DZ */
    (void)sig;
}

/* Sets s2, fs0 and fcsr, sends SIGUSR1 to itself with tgkill, and reads them back. */
static void frame_and_sigreturn(void) {
    struct sigaction sa = {0};
    sigset_t block;
    long s2_out, sp_at, pc_after;
    unsigned long f8_out, fcsr_out;
    long pid = getpid(), tid = gettid();

    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &sa, NULL);
    sigemptyset(&block);
    sigaddset(&block, SIGURG);
    sigprocmask(SIG_SETMASK, &block, NULL);

    /* No calls between these and the asm: they would clobber the argument registers. */
    register long a0 __asm__("a0") = pid;
    register long a1 __asm__("a1") = tid;
    register long a2 __asm__("a2") = SIGUSR1;
    register long a7 __asm__("a7") = SYS_tgkill;
    __asm__ volatile("li s2, 0x1122334455667788\n\t"
                     "li t0, 0x400921fb54442d18\n\t" /* pi */
                     "fmv.d.x fs0, t0\n\t"
                     "li t0, 0x21\n\t" /* frm 1 (RTZ), fflags NX */
                     "fscsr t0\n\t"
                     "mv %[sp], sp\n\t"
                     "la %[pc], 1f\n\t"
                     "ecall\n"
                     "1:\n\t"
                     "mv %[s2], s2\n\t"
                     "fmv.x.d %[f8], fs0\n\t"
                     "frcsr %[fcsr]\n\t"
                     "fscsr zero"
                     : [sp] "=&r"(sp_at), [pc] "=&r"(pc_after), [s2] "=r"(s2_out),
                       [f8] "=r"(f8_out), [fcsr] "=r"(fcsr_out), "+r"(a0)
                     : "r"(a1), "r"(a2), "r"(a7)
                     : "t0", "s2", "fs0", "memory");

    printf("tgkill returned %ld\n", a0);
    printf("uc - info = %ld\n", h.frame_to_uc);
    printf("frame %% 16 = %ld\n", h.frame_align);
    printf("saved sp == interrupted sp: %d\n", h.sp_ok == sp_at);
    printf("saved pc == after ecall: %d\n", h.pc_ok == pc_after);
    printf("saved s2 = %#lx\n", h.s2);
    printf("saved fs0 = %#lx\n", h.f8);
    printf("saved fcsr = %#lx, live in handler = %#lx\n", h.fcsr_saved, h.fcsr_live);
    printf("trampoline = %#010x %#010x\n", h.tramp0, h.tramp1);
    printf("uc_flags = %lu, uc_link = %p\n", h.uc_flags, h.uc_link);
    printf("uc_stack = {%p, %#x, %zu}\n", h.ss_sp, h.ss_flags, h.ss_size);
    printf("uc_sigmask = %#lx, mask in handler = %#lx\n", h.saved_mask, h.live_mask);
    printf("fp reserved = %u %u %u\n", h.reserved[0], h.reserved[1], h.reserved[2]);
    printf("siginfo = {signo %d, errno %d, code %d, pid ok %d, uid ok %d}\n", h.signo,
           h.errno_, h.code, h.pid_ok, h.uid_ok);
    printf("after sigreturn: s2 = %#lx, fs0 = %#lx, fcsr = %#lx\n", s2_out, f8_out, fcsr_out);
    sigprocmask(SIG_BLOCK, NULL, &block);
    printf("mask after sigreturn = %#lx\n", block.__val[0]);
    printf("frame size (kernel 1088, qemu 7.2 differs) = %ld\n", sp_at - h.frame);
    sigemptyset(&block);
    sigprocmask(SIG_SETMASK, &block, NULL);
}

static char altstack[65536] __attribute__((aligned(16)));
static struct {
    long in_alt, from_top;
    int query_flags, uc_flags;
    void *uc_sp;
    size_t uc_size;
} a;

static void on_usr2(int sig, siginfo_t *info, void *ctx) {
    ucontext_t *uc = ctx;
    stack_t o;
    char *top = altstack + sizeof altstack;
    a.in_alt = (char *)info >= altstack && (char *)info < top;
    a.from_top = top - (char *)info;
    sigaltstack(NULL, &o);
    a.query_flags = o.ss_flags;
    a.uc_flags = uc->uc_stack.ss_flags;
    a.uc_sp = uc->uc_stack.ss_sp;
    a.uc_size = uc->uc_stack.ss_size;
    (void)sig;
}

static void alternate_stack(int flags) {
    struct sigaction sa = {0};
    stack_t ss = {.ss_sp = altstack, .ss_flags = flags, .ss_size = sizeof altstack}, o;
    sa.sa_sigaction = on_usr2;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGUSR2, &sa, NULL);
    if (sigaltstack(&ss, NULL) != 0) {
        printf("altstack %#x: sigaltstack failed: %m\n", flags);
        return;
    }
    memset(&a, 0, sizeof a);
    raise(SIGUSR2);
    printf("altstack %#x: on it %ld, top - frame = %ld, query %#x, uc_stack {%s, %#x, %zu}\n",
           flags, a.in_alt, a.from_top, a.query_flags, a.uc_sp == altstack ? "alt" : "?",
           a.uc_flags, a.uc_size);
    sigaltstack(NULL, &o);
    printf("altstack %#x after: flags %#x, size %zu\n", flags, o.ss_flags, o.ss_size);
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
}

static struct {
    int signo, code;
    long addr_rel;
    long pc_ok;
} f;

static void on_fault(int sig, siginfo_t *info, void *ctx) {
    ucontext_t *uc = ctx;
    f.signo = sig;
    f.code = info->si_code;
    f.addr_rel = (long)((uintptr_t)info->si_addr - fault_pc);
    f.pc_ok = uc->uc_mcontext.__gregs[REG_PC] == (long)fault_pc;
    uc->uc_mcontext.__gregs[REG_PC] = resume_pc;
}

static void faults(void) {
    struct sigaction sa = {0};
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGTRAP, &sa, NULL);

    /* si_addr is printed relative to the faulting instruction for SIGILL/SIGTRAP (0) and
     * as the data address for SIGSEGV (addr_rel + fault_pc). */
    __asm__ volatile("la t0, 1f\n\tsd t0, %0\n\tla t0, 2f\n\tsd t0, %1\n"
                     "1: sw zero, 16(zero)\n2:"
                     : "=m"(fault_pc), "=m"(resume_pc) : : "t0", "memory");
    printf("SIGSEGV store 16: sig %d code %d addr %#lx pc ok %ld\n", f.signo, f.code,
           f.addr_rel + (long)fault_pc, f.pc_ok);
    __asm__ volatile("la t0, 1f\n\tsd t0, %0\n\tla t0, 2f\n\tsd t0, %1\n"
                     "1: sw zero, 20(%2)\n2:"
                     : "=m"(fault_pc), "=m"(resume_pc) : "r"(ro) : "t0", "memory");
    printf("SIGSEGV store read-only: sig %d code %d addr = page + %ld, pc ok %ld\n", f.signo,
           f.code, f.addr_rel + (long)fault_pc - (long)ro, f.pc_ok);
    __asm__ volatile("la t0, 1f\n\tsd t0, %0\n\tla t0, 2f\n\tsd t0, %1\n"
                     "1: .4byte 0xffffffff\n2:"
                     : "=m"(fault_pc), "=m"(resume_pc) : : "t0", "memory");
    printf("SIGILL: sig %d code %d addr - pc = %ld, pc ok %ld\n", f.signo, f.code, f.addr_rel,
           f.pc_ok);
    __asm__ volatile(".option push\n\t.option norvc\n\t"
                     "la t0, 1f\n\tsd t0, %0\n\tla t0, 2f\n\tsd t0, %1\n"
                     "1: ebreak\n2:\n\t.option pop"
                     : "=m"(fault_pc), "=m"(resume_pc) : : "t0", "memory");
    printf("SIGTRAP: sig %d code %d addr - pc = %ld, pc ok %ld\n", f.signo, f.code, f.addr_rel,
           f.pc_ok);
}

static volatile sig_atomic_t blocked_in_handler, calls;
static void on_flags(int sig) {
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    blocked_in_handler = sigismember(&cur, sig);
    calls++;
}

static void flags(void) {
    struct sigaction sa = {0}, o;
    sa.sa_handler = on_flags;
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("no flags: signal blocked in its handler %d\n", blocked_in_handler);
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("SA_NODEFER: signal blocked in its handler %d\n", blocked_in_handler);
    calls = 0;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    sigaction(SIGUSR1, NULL, &o);
    printf("SA_RESETHAND: calls %d, handler after is SIG_DFL %d, flags after %#x\n", calls,
           o.sa_handler == SIG_DFL, o.sa_flags);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("sizeof(siginfo_t) = %zu, sizeof(ucontext_t) = %zu\n", sizeof(siginfo_t),
           sizeof(ucontext_t));
    printf("offsetof(ucontext_t, uc_stack/uc_sigmask/uc_mcontext) = %zu %zu %zu\n",
           offsetof(ucontext_t, uc_stack), offsetof(ucontext_t, uc_sigmask),
           offsetof(ucontext_t, uc_mcontext));
    printf("offsetof(mcontext_t, __fpregs) = %zu, fcsr at %zu\n",
           offsetof(mcontext_t, __fpregs), offsetof(mcontext_t, __fpregs.__d.__fcsr));
    frame_and_sigreturn();
    alternate_stack(0);
    alternate_stack(SS_AUTODISARM);
    faults();
    flags();
    return 0;
}
