/* A pipeline stage for the stress suite (tests/e2e/stress.rs): copies stdin to stdout
 * unchanged, in reads and writes of sizes drawn from a seeded generator, so that the pipes
 * around it see every shape: 1-byte and 1 MiB writes, writes of exactly PIPE_BUF and of a
 * pipe's capacity, writev with several buffers, reads smaller and larger than what is
 * queued, O_NONBLOCK switched on and off (EAGAIN then poll for POLLOUT / POLLIN), and
 * short pauses. The output must equal the input byte for byte.
 *
 * Usage: pipechunk SEED   (the same seed gives the same calls)
 * Exit status 0, or 1 with a line on stderr naming the call that failed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static uint64_t state;

/* SplitMix64, as the test's generator. */
static uint64_t next(void) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t below(size_t n) { return n ? next() % n : 0; }

/* A size with every scale equally likely, and the sizes pipes care about. */
static size_t chunk(void) {
    static const size_t special[] = {1, 4095, 4096, 4097, 65535, 65536, 65537, 1 << 20};
    if (below(4) == 0)
        return special[below(sizeof special / sizeof special[0])];
    size_t bits = below(21); /* up to 1 MiB */
    return 1 + below((size_t)1 << bits);
}

static void die(const char *what) {
    fprintf(stderr, "pipechunk: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void set_nonblock(int fd, int on) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0)
        die("fcntl");
}

static int nonblock[2];

/* Maybe switches fd's O_NONBLOCK. */
static void maybe_switch(int fd) {
    if (below(16) == 0) {
        nonblock[fd] = !nonblock[fd];
        set_nonblock(fd, nonblock[fd]);
    }
}

static void wait_for(int fd, short ev) {
    struct pollfd p = {fd, ev, 0};
    int r = poll(&p, 1, -1);
    if (r < 0 && errno != EINTR)
        die("poll");
}

/* Writes all of buf[0..n), in pieces. */
static void put(const char *buf, size_t n) {
    size_t done = 0;
    while (done < n) {
        maybe_switch(1);
        size_t want = chunk();
        if (want > n - done)
            want = n - done;
        ssize_t w;
        if (want >= 3 && below(4) == 0) {
            /* writev of three buffers that together are the piece. */
            size_t a = 1 + below(want - 2), b = 1 + below(want - a - 1);
            struct iovec v[3] = {{(void *)(buf + done), a},
                                 {(void *)(buf + done + a), b},
                                 {(void *)(buf + done + a + b), want - a - b}};
            w = writev(1, v, 3);
        } else {
            w = write(1, buf + done, want);
        }
        if (w < 0) {
            if (errno == EAGAIN) {
                wait_for(1, POLLOUT);
                continue;
            }
            if (errno == EINTR)
                continue;
            die("write");
        }
        if (w == 0) {
            errno = EIO;
            die("write returned 0");
        }
        if (!nonblock[1] && (size_t)w != want) {
            /* A blocking pipe write returns only when all of it is written. */
            fprintf(stderr, "pipechunk: blocking write of %zu returned %zd\n", want, w);
            exit(1);
        }
        done += (size_t)w;
        if (below(64) == 0) {
            struct timespec t = {0, (long)below(200000)};
            nanosleep(&t, NULL);
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: pipechunk SEED\n");
        return 2;
    }
    state = strtoull(argv[1], NULL, 0);
    static char buf[(1 << 20) + 1];
    for (;;) {
        maybe_switch(0);
        size_t want = chunk();
        ssize_t r = read(0, buf, want);
        if (r < 0) {
            if (errno == EAGAIN) {
                wait_for(0, POLLIN);
                continue;
            }
            if (errno == EINTR)
                continue;
            die("read");
        }
        if (r == 0)
            break;
        put(buf, (size_t)r);
    }
    return 0;
}
