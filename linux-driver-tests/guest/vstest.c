/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vstest: helpers and main(); the cases are in vstest-cases-*.c. */
#define _GNU_SOURCE
#include "vstest.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

int port_dev(const char *name, char *ret_dev, size_t size) {
        DIR *d = opendir("/sys/class/virtio-ports");
        struct dirent *de;
        int r = -ENOENT;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                char p[512], buf[256] = "";
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(p, sizeof(p), "/sys/class/virtio-ports/%s/name", de->d_name);
                f = fopen(p, "re");
                if (!f)
                        continue;
                if (fgets(buf, sizeof(buf), f) && (buf[strcspn(buf, "\n")] = 0, strcmp(buf, name) == 0)) {
                        snprintf(ret_dev, size, "%s", de->d_name);
                        r = 0;
                }
                fclose(f);
                if (r == 0)
                        break;
        }
        closedir(d);
        return r;
}

int port_open(const char *name, int flags, int timeout_ms) {
        int64_t end = now_us() + (int64_t) timeout_ms * 1000;
        char dev[64], path[128];
        int fd;

        while (port_dev(name, dev, sizeof(dev)) < 0) {
                CHECK(now_us() < end, "port %s did not appear", name);
                sleep_ms(10);
        }
        snprintf(path, sizeof(path), "/dev/%s", dev);
        for (;;) {
                fd = open(path, flags | O_CLOEXEC);
                if (fd >= 0 || errno != ENOENT || now_us() >= end)
                        break;
                sleep_ms(10); /* devtmpfs node not there yet */
        }
        CHECK(fd >= 0, "open %s (%s)", path, name);
        return fd;
}

void step(const char *name) {
        char line[64];

        printf("@%s\n", name);
        fflush(stdout);
        CHECK(fgets(line, sizeof(line), stdin) != NULL, "no go for step %s", name);
        CHECK(strcmp(line, "go\n") == 0, "step %s: got '%s'", name, line);
}

void value(const char *key, const char *fmt, ...) {
        va_list ap;

        printf("=%s=", key);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

int64_t now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void sleep_ms(int ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

short poll_state(int fd, int ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
        int r = poll(&p, 1, ms);

        CHECK(r >= 0, "poll");
        return r == 0 ? 0 : p.revents;
}

const char *revents_str(short r, char *buf, size_t size) {
        snprintf(buf, size, "%s%s%s%s%s", r & POLLIN ? "IN|" : "", r & POLLOUT ? "OUT|" : "", r & POLLHUP ? "HUP|" : "",
                 r & POLLERR ? "ERR|" : "", r & POLLNVAL ? "NVAL|" : "");
        if (*buf)
                buf[strlen(buf) - 1] = 0;
        else
                snprintf(buf, size, "0");
        return buf;
}

short wait_state(int fd, short want, int ms) {
        int64_t end = now_us() + (int64_t) ms * 1000;
        short s;

        for (;;) {
                s = poll_state(fd, 0);
                if (s == want || now_us() >= end)
                        return s;
                sleep_ms(5);
        }
}

int sigio_setup(int port_fd) {
        sigset_t ss;
        int sfd;

        sigemptyset(&ss);
        sigaddset(&ss, SIGIO);
        CHECK(sigprocmask(SIG_BLOCK, &ss, NULL) == 0, "block SIGIO");
        sfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
        CHECK(sfd >= 0, "signalfd");
        CHECK(fcntl(port_fd, F_SETOWN, getpid()) == 0, "F_SETOWN");
        CHECK(fcntl(port_fd, F_SETFL, fcntl(port_fd, F_GETFL) | O_ASYNC) == 0, "O_ASYNC");
        return sfd;
}

int sigio_wait(int sfd, int ms) {
        struct pollfd p = { .fd = sfd, .events = POLLIN };
        struct signalfd_siginfo si;

        if (poll(&p, 1, ms) <= 0)
                return 0;
        return read(sfd, &si, sizeof(si)) == (ssize_t) sizeof(si) ? 1 : 0;
}

void sigio_drain(int sfd) {
        while (sigio_wait(sfd, 0))
                ;
}

void stream_fill(uint32_t *state, uint8_t *buf, size_t len) {
        uint32_t x = *state;

        for (size_t i = 0; i < len; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                buf[i] = (uint8_t) (x >> 11);
        }
        *state = x;
}

uint64_t fnv1a(uint64_t h, const uint8_t *buf, size_t len) {
        for (size_t i = 0; i < len; i++) {
                h ^= buf[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

int write_all(int fd, const void *buf, size_t len) {
        const uint8_t *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        struct pollfd pf = { .fd = fd, .events = POLLOUT };
                        (void) poll(&pf, 1, 100);
                        continue;
                }
                if (n <= 0)
                        return -1;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int read_exact(int fd, void *buf, size_t len, int timeout_ms) {
        int64_t end = now_us() + (int64_t) timeout_ms * 1000;
        uint8_t *p = buf;

        while (len > 0) {
                struct pollfd pf = { .fd = fd, .events = POLLIN };
                ssize_t n;
                int left = (int) ((end - now_us()) / 1000);

                if (left <= 0)
                        return -ETIMEDOUT;
                if (poll(&pf, 1, left) <= 0 || !(pf.revents & POLLIN))
                        continue;
                n = read(fd, p, len);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n <= 0)
                        return n == 0 ? -EPIPE : -errno;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int main(int argc, char **argv) {
        const VstestCase *tables[] = { vstest_cases_a, vstest_cases_b };

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc < 2) {
                fprintf(stderr, "usage: vstest NN [ARGS...]\n");
                return 2;
        }
        for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
                for (const VstestCase *c = tables[t]; c->id; c++)
                        if (strcmp(c->id, argv[1]) == 0) {
                                int r = c->fn(argc - 2, argv + 2);
                                if (r == 0)
                                        printf("PASS %s\n", argv[1]);
                                return r;
                        }
        fprintf(stderr, "vstest: unknown case %s\n", argv[1]);
        return 2;
}
