/* Memory-management semantics, one case per argument; output compared with qemu-riscv64.
 *   mm ro-write   a store to a PROT_READ page: SIGSEGV
 *   mm nx-exec    a jump into a PROT_READ|PROT_WRITE page: SIGSEGV
 *   mm unmapped   a load after munmap: SIGSEGV
 *   mm jit        code written, flushed (riscv_flush_icache), run, rewritten, run again
 *   mm fixed      MAP_FIXED replaces; mremap shrinks in place and grows by moving
 *   mm noreplace  MAP_FIXED_NOREPLACE refuses to replace (EEXIST), fills holes
 *   mm sparse     a 64 GiB PROT_NONE reservation, a few pages made writable and touched
 *   mm shared     MAP_SHARED|MAP_ANONYMOUS, mremap growth keeps contents, madvise(DONTNEED)
 *   mm file       a private file mapping: bytes of the file, copy-on-write, past-EOF zeros
 *   mm enomem     mappings that cannot fit give ENOMEM; bad arguments give EINVAL
 *   mm brk        brk grows and shrinks; memory above the break is gone
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PAGE 4096UL

static void *map(void *addr, size_t len, int prot, int flags) {
    return mmap(addr, len, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static const char *err(void *p) {
    return p == MAP_FAILED ? strerror(errno) : "ok";
}

static void done(const char *what) {
    printf("%s: survived\n", what);
}

/* li a0, N; ret  (addi a0, zero, N = N<<20 | 0x513; jalr zero, 0(ra) = 0x8067) */
static void emit_return(uint32_t *code, int n) {
    code[0] = ((uint32_t)n << 20) | 0x513;
    code[1] = 0x8067;
}

static int ro_write(void) {
    volatile char *p = map(NULL, PAGE, PROT_READ, 0);
    printf("read %d\n", p[0]);
    fflush(stdout);
    p[0] = 1;
    done("ro-write");
    return 0;
}

static int nx_exec(void) {
    uint32_t *code = map(NULL, PAGE, PROT_READ | PROT_WRITE, 0);
    emit_return(code, 1);
    printf("written\n");
    fflush(stdout);
    int (*f)(void) = (int (*)(void))code;
    printf("returned %d\n", f());
    done("nx-exec");
    return 0;
}

static int unmapped(void) {
    volatile char *p = map(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, 0);
    p[PAGE] = 5;
    munmap((void *)p, PAGE);
    printf("second page %d\n", p[PAGE]);
    fflush(stdout);
    printf("first page %d\n", p[0]);
    done("unmapped");
    return 0;
}

static int jit(void) {
    uint32_t *code = map(NULL, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, 0);
    int (*f)(void) = (int (*)(void))code;
    for (int n = 1; n <= 3; n++) {
        emit_return(code, 40 + n);
        __builtin___clear_cache((char *)code, (char *)(code + 2));
        printf("call %d -> %d\n", n, f());
    }
    /* W^X style: write while RW, then flip to RX. */
    mprotect(code, PAGE, PROT_READ | PROT_WRITE);
    emit_return(code, 7);
    mprotect(code, PAGE, PROT_READ | PROT_EXEC);
    __builtin___clear_cache((char *)code, (char *)(code + 2));
    printf("after mprotect -> %d\n", f());
    /* The same code at a second page, reached through a fresh mapping. */
    uint32_t *two = map(NULL, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, 0);
    memcpy(two, code, 8);
    __builtin___clear_cache((char *)two, (char *)(two + 2));
    printf("copy -> %d\n", ((int (*)(void))two)());
    return 0;
}

static int fixed(void) {
    char *a = map(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, 0);
    memset(a, 'a', 4 * PAGE);
    char *b = map(a + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_FIXED);
    printf("MAP_FIXED at the address: %d, zero-filled: %d, neighbours kept: %c%c\n",
           b == a + PAGE, b[0] == 0, a[0], a[2 * PAGE]);
    void *c = map(a + 10, PAGE, PROT_READ, MAP_FIXED);
    printf("MAP_FIXED unaligned: %s\n", err(c));
    /* mremap in place (shrink), then grow with MREMAP_MAYMOVE. */
    char *s = mremap(a, 4 * PAGE, 2 * PAGE, 0);
    printf("mremap shrink: %s, same address: %d, tail unmapped: %d\n", err(s), s == a,
           msync(a + 3 * PAGE, PAGE, 0) == -1 && errno == ENOMEM);
    char *g = mremap(a, 2 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
    printf("mremap grow: %s, contents: %c %d\n", err(g), g[0], g[PAGE]);
    g[63 * PAGE] = 'z';
    printf("grown tail writable: %c\n", g[63 * PAGE]);
    return 0;
}

/* Not compared with qemu-riscv64 7.2, which ignores MAP_FIXED_NOREPLACE (it maps over). */
static int noreplace(void) {
    char *a = map(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, 0);
    memset(a, 'a', 4 * PAGE);
    void *c = map(a + 2 * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
    printf("over a mapping: %s, contents kept: %c\n", err(c), a[2 * PAGE]);
    c = map(a + 3 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
    printf("overlapping the end of a mapping: %s\n", err(c));
    munmap(a + 3 * PAGE, PAGE);
    c = map(a + 3 * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
    printf("into a hole: %s, at the address: %d, zero: %d\n", err(c), c == a + 3 * PAGE,
           a[3 * PAGE] == 0);
    return 0;
}

static int sparse(void) {
    size_t len = 64UL << 30;
    char *r = map(NULL, len, PROT_NONE, MAP_NORESERVE);
    printf("reserve 64 GiB: %s\n", err(r));
    if (r == MAP_FAILED)
        return 1;
    for (size_t off = 0; off < len; off += 8UL << 30) {
        if (mprotect(r + off, PAGE, PROT_READ | PROT_WRITE) != 0) {
            printf("mprotect: %s\n", strerror(errno));
            return 1;
        }
        r[off] = 'x';
    }
    size_t n = 0;
    for (size_t off = 0; off < len; off += 8UL << 30)
        n += r[off] == 'x';
    printf("touched %zu pages 8 GiB apart\n", n);
    printf("munmap: %d\n", munmap(r, len));
    return 0;
}

static int shared(void) {
    char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    printf("shared anonymous: %s, zero: %d\n", err(p), p[0] == 0 && p[2 * PAGE - 1] == 0);
    strcpy(p, "hello");
    strcpy(p + PAGE, "world");
    char *q = mremap(p, 2 * PAGE, 16 * PAGE, MREMAP_MAYMOVE);
    /* (Touching the grown tail is SIGBUS on Linux: the shmem object keeps its size.) */
    printf("after mremap: %s %s\n", q, q + PAGE);
    char *a = map(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, 0);
    memset(a, 7, 4 * PAGE);
    printf("madvise DONTNEED: %d, private anonymous reads zero again: %d %d\n",
           madvise(a + PAGE, 2 * PAGE, MADV_DONTNEED), a[PAGE], a[3 * PAGE - 1]);
    printf("kept outside the range: %d %d\n", a[0], a[3 * PAGE]);
    return 0;
}

static int file(void) {
    const char *path = "/usr/bin/busybox";
    int fd = open(path, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    char *m = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    printf("map %s: %s, ELF magic: %d\n", path, err(m), memcmp(m, "\177ELF", 4) == 0);
    unsigned sum = 0;
    for (off_t i = 0; i < st.st_size; i++)
        sum = sum * 31 + (unsigned char)m[i];
    printf("checksum through the mapping: %08x\n", sum);
    size_t tail = (size_t)st.st_size % PAGE;
    size_t zeros = 1;
    if (tail)
        for (size_t i = st.st_size; i < (st.st_size + PAGE - 1) / PAGE * PAGE; i++)
            zeros &= m[i] == 0;
    printf("past EOF in the last page reads zero: %zu\n", zeros);
    m[0] = 'X';
    char first;
    pread(fd, &first, 1, 0);
    printf("copy-on-write: mapping %c, file %d\n", m[0], first);
    /* A mapping at a page offset into the file. */
    char *o = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 2 * PAGE);
    char buf[16];
    pread(fd, buf, sizeof buf, 2 * PAGE);
    printf("offset mapping matches pread: %d\n", memcmp(o, buf, sizeof buf) == 0);
    void *bad = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 100);
    printf("unaligned offset: %s\n", err(bad));
    bad = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("shared writable mapping of a read-only fd: %s\n", err(bad));
    /* Beyond the end of the file, whole pages: SIGBUS on Linux; not touched here. */
    return 0;
}

static int enomem(void) {
    void *p = map(NULL, 1UL << 40, PROT_READ | PROT_WRITE, 0);
    printf("1 TiB: %s\n", err(p));
    p = map(NULL, 0, PROT_READ, 0);
    printf("zero length: %s\n", err(p));
    p = mmap(NULL, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0);
    printf("neither shared nor private: %s\n", err(p));
    p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 12345, 0);
    printf("bad fd: %s\n", err(p));
    printf("mprotect of unmapped memory: %d %s\n", mprotect((void *)PAGE, PAGE, PROT_READ),
           strerror(errno));
    printf("munmap unaligned: %d %s\n", munmap((void *)(PAGE + 1), PAGE), strerror(errno));
    return 0;
}

static int brk_case(void) {
    char *b0 = sbrk(0);
    char *b1 = sbrk(1 << 20);
    printf("sbrk grows: %d\n", b1 == b0);
    memset(b1, 3, 1 << 20);
    printf("new memory writable: %d\n", b1[(1 << 20) - 1]);
    sbrk(-(1 << 19));
    printf("shrunk: %d\n", (char *)sbrk(0) == b0 + (1 << 19));
    sbrk(1 << 19);
    printf("regrown memory is zero again: %d\n", b1[(1 << 20) - 1]);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: mm CASE\n");
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "ro-write")) return ro_write();
    if (!strcmp(c, "nx-exec")) return nx_exec();
    if (!strcmp(c, "unmapped")) return unmapped();
    if (!strcmp(c, "jit")) return jit();
    if (!strcmp(c, "fixed")) return fixed();
    if (!strcmp(c, "noreplace")) return noreplace();
    if (!strcmp(c, "sparse")) return sparse();
    if (!strcmp(c, "shared")) return shared();
    if (!strcmp(c, "file")) return file();
    if (!strcmp(c, "enomem")) return enomem();
    if (!strcmp(c, "brk")) return brk_case();
    fprintf(stderr, "mm: unknown case %s\n", c);
    return 2;
}
