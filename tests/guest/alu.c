/* The integer instructions over edge-case operands, for the differential tests of
 * translated code (tests/e2e/aot.rs): each line is one operation's results folded into a
 * hash, so a difference between the interpreter, translated code and qemu names the op.
 * `alu sig` runs a hot loop that only a timer signal ends (translated loops must give
 * way to signals); `alu jit` writes code, runs it, rewrites it and runs it again. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

static const uint64_t V[] = {
    0, 1, 2, 3, 7, (uint64_t)-1, (uint64_t)-2, (uint64_t)-7, 0x7fffffffffffffffULL,
    0x8000000000000000ULL, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL,
    0xffffffff80000000ULL, 0x123456789abcdef0ULL, 0xfedcba9876543210ULL, 12345678901ULL,
    0x5555555555555555ULL, 0xaaaaaaaaaaaaaaaaULL, 63, 64, 31, 32};
#define N (sizeof V / sizeof V[0])

static uint64_t h;
static void mix(uint64_t v) {
    for (int i = 0; i < 8; i++) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 0x100000001b3ULL;
    }
}

#define RR(name)                                                                   \
    static uint64_t op_##name(uint64_t a, uint64_t b) {                           \
        uint64_t r;                                                                \
        __asm__ volatile(#name " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));          \
        return r;                                                                  \
    }
RR(add) RR(sub) RR(sll) RR(slt) RR(sltu) RR(xor) RR(srl) RR(sra) RR(or) RR(and)
RR(addw) RR(subw) RR(sllw) RR(srlw) RR(sraw) RR(mul) RR(mulh) RR(mulhsu) RR(mulhu)
RR(div) RR(divu) RR(rem) RR(remu) RR(mulw) RR(divw) RR(divuw) RR(remw) RR(remuw)

#define RI(tag, name, imm)                                                         \
    static uint64_t op_##tag(uint64_t a, uint64_t b) {                            \
        uint64_t r;                                                                \
        (void)b;                                                                   \
        __asm__ volatile(#name " %0, %1, " #imm : "=r"(r) : "r"(a));               \
        return r;                                                                  \
    }
RI(addi_m2048, addi, -2048) RI(addi_2047, addi, 2047) RI(slti_m1, slti, -1)
RI(sltiu_m1, sltiu, -1) RI(xori_m1, xori, -1) RI(ori_555, ori, 0x555)
RI(andi_m16, andi, -16) RI(slli_63, slli, 63) RI(srli_63, srli, 63) RI(srai_63, srai, 63)
RI(slli_1, slli, 1) RI(srai_7, srai, 7) RI(addiw_m1, addiw, -1) RI(addiw_2047, addiw, 2047)
RI(slliw_31, slliw, 31) RI(srliw_31, srliw, 31) RI(sraiw_31, sraiw, 31) RI(sraiw_0, sraiw, 0)

struct op {
    const char *name;
    uint64_t (*f)(uint64_t, uint64_t);
};
#define O(n) {#n, op_##n}
static const struct op OPS[] = {
    O(add), O(sub), O(sll), O(slt), O(sltu), O(xor), O(srl), O(sra), O(or), O(and),
    O(addw), O(subw), O(sllw), O(srlw), O(sraw), O(mul), O(mulh), O(mulhsu), O(mulhu),
    O(div), O(divu), O(rem), O(remu), O(mulw), O(divw), O(divuw), O(remw), O(remuw),
    O(addi_m2048), O(addi_2047), O(slti_m1), O(sltiu_m1), O(xori_m1), O(ori_555),
    O(andi_m16), O(slli_63), O(srli_63), O(srai_63), O(slli_1), O(srai_7), O(addiw_m1),
    O(addiw_2047), O(slliw_31), O(srliw_31), O(sraiw_31), O(sraiw_0)};

/* Loads and stores of every width, signed and unsigned, aligned and not, across a page
 * boundary too. */
static void memory(void) {
    static unsigned char buf[3 * 4096] __attribute__((aligned(4096)));
    for (unsigned i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 37 + 11);
    h = 0xcbf29ce484222325ULL;
    for (unsigned off = 4096 - 16; off < 4096 + 16; off++) {
        volatile unsigned char *p = buf + off;
        int64_t lb, lh, lw, ld;
        uint64_t lbu, lhu, lwu;
        __asm__ volatile("lb %0, 0(%1)" : "=r"(lb) : "r"(p));
        __asm__ volatile("lh %0, 0(%1)" : "=r"(lh) : "r"(p));
        __asm__ volatile("lw %0, 0(%1)" : "=r"(lw) : "r"(p));
        __asm__ volatile("ld %0, 0(%1)" : "=r"(ld) : "r"(p));
        __asm__ volatile("lbu %0, 0(%1)" : "=r"(lbu) : "r"(p));
        __asm__ volatile("lhu %0, 0(%1)" : "=r"(lhu) : "r"(p));
        __asm__ volatile("lwu %0, 0(%1)" : "=r"(lwu) : "r"(p));
        mix(lb), mix(lh), mix(lw), mix(ld), mix(lbu), mix(lhu), mix(lwu);
        __asm__ volatile("sd %0, 0(%1)" : : "r"(V[off % N] ^ off), "r"(p + 8192 - 4096) : "memory");
        __asm__ volatile("sw %0, 3(%1)" : : "r"(V[(off + 1) % N]), "r"(p - 4096) : "memory");
        __asm__ volatile("sh %0, 1(%1)" : : "r"(V[(off + 2) % N]), "r"(p) : "memory");
        __asm__ volatile("sb %0, 0(%1)" : : "r"(V[(off + 3) % N]), "r"(p + 1) : "memory");
    }
    for (unsigned i = 0; i < sizeof buf; i++)
        mix(buf[i]);
    /* FP loads and stores: flw NaN-boxes, fsw stores the low half. */
    float f;
    double d;
    uint64_t bits;
    memcpy(&f, buf + 100, 4);
    __asm__ volatile("flw fa0, 0(%1)\n fmv.x.d %0, fa0" : "=r"(bits) : "r"(buf + 100) : "fa0");
    mix(bits);
    __asm__ volatile("fld fa1, 0(%0)\n fsw fa1, 0(%1)\n fsd fa1, 8(%1)"
                     : : "r"(buf + 200), "r"(buf + 300) : "fa1", "memory");
    memcpy(&d, buf + 300, 8);
    mix(bits ^ (uint64_t)d);
    for (int i = 296; i < 320; i++)
        mix(buf[i]);
    printf("memory %016llx\n", (unsigned long long)h);
}

/* Control flow: a loop with early exits, a switch (a jump table), recursion, calls
 * through pointers. */
static int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
static uint64_t twice(uint64_t x) { return 2 * x; }
static uint64_t inc(uint64_t x) { return x + 1; }
static void control(void) {
    uint64_t (*volatile fs[2])(uint64_t) = {twice, inc};
    uint64_t acc = 0;
    for (volatile int i = 0; i < 100000; i++) {
        switch (i % 7) {
        case 0: acc += i; break;
        case 1: acc ^= acc << 3; break;
        case 2: acc = fs[i & 1](acc); break;
        case 3: acc -= i * 3; break;
        case 4: acc = (acc >> 5) | (acc << 59); break;
        case 5: if (acc & 1) continue; acc += 77; break;
        default: acc *= 3;
        }
        if (acc == 12345) break;
    }
    printf("control %016llx fib %d\n", (unsigned long long)acc, fib(24));
}

static volatile sig_atomic_t ticks;
static void on_alarm(int s) {
    (void)s;
    ticks++;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "sig") == 0) {
        /* Only the handler changes `ticks`: the loop ends only if signals reach it. */
        signal(SIGALRM, on_alarm);
        struct itimerval t = {{0, 20000}, {0, 20000}};
        setitimer(ITIMER_REAL, &t, 0);
        uint64_t spins = 0;
        while (ticks < 5)
            spins++;
        printf("ticks %d after %s spins\n", (int)ticks, spins > 1000 ? "many" : "few");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "jit") == 0) {
        uint32_t *code = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (code == MAP_FAILED)
            return 1;
        for (int round = 0; round < 3; round++) {
            /* li a0, 40 + round; addi a0, a0, 1 (x round); ret */
            int n = 0;
            code[n++] = 0x00000513 | (uint32_t)(40 + round) << 20;
            for (int k = 0; k < round; k++)
                code[n++] = 0x00150513;
            code[n++] = 0x00008067;
            __builtin___clear_cache((char *)code, (char *)(code + n));
            int (*f)(void) = (int (*)(void))code;
            int r = 0;
            for (int k = 0; k < 1000; k++)
                r = f();
            printf("jit round %d: %d\n", round, r);
        }
        return 0;
    }
    for (unsigned k = 0; k < sizeof OPS / sizeof OPS[0]; k++) {
        h = 0xcbf29ce484222325ULL;
        for (int rep = 0; rep < 20; rep++)
            for (unsigned i = 0; i < N; i++)
                for (unsigned j = 0; j < N; j++)
                    mix(OPS[k].f(V[i], V[j] + (uint64_t)rep * (rep & 1)));
        printf("%-12s %016llx\n", OPS[k].name, (unsigned long long)h);
    }
    memory();
    control();
    return 0;
}
