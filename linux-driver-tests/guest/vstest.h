/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vstest: the guest half of the virtio-serial driver tests.  Each case is a
 * function run as `vstest NN [args]`; it talks to the host half
 * (linux-driver-tests/driver-tests.c) through the harness's command channel:
 *   "@name\n"      a sync point: printed, then a line is read from stdin
 *   "=key=value\n" a measured value the host parses
 *   "FAIL: ...\n"  an assertion failed (exit status 1)
 */
#pragma once

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                        \
        do {                                                                    \
                if (!(cond)) {                                                  \
                        int e_ = errno;                                         \
                        printf("FAIL: %s:%d: %s: ", __FILE__, __LINE__, #cond); \
                        printf(__VA_ARGS__);                                    \
                        printf(" (errno %d %s)\n", e_, strerror(e_));           \
                        fflush(stdout);                                         \
                        exit(1);                                                \
                }                                                               \
        } while (0)

#define CHECK_ERRNO(expr, err)                                                                              \
        do {                                                                                                \
                errno = 0;                                                                                  \
                long r_ = (long) (expr);                                                                    \
                CHECK(r_ == -1 && errno == (err), "%s returned %ld, want -1/%s", #expr, r_, strerror(err)); \
        } while (0)

/* the sysfs device name (vportNpM) of the port called @name; -ENOENT */
int port_dev(const char *name, char *ret_dev, size_t size);
/* waits up to @timeout_ms for the port to exist, then opens /dev/vportNpM */
int port_open(const char *name, int flags, int timeout_ms);
void step(const char *name);
void value(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t now_us(void);
void sleep_ms(int ms);
/* poll revents for @fd with events POLLIN|POLLOUT and timeout @ms */
short poll_state(int fd, int ms);
const char *revents_str(short r, char *buf, size_t size);
/* waits until poll_state(fd) == @want, up to @ms; returns the final state */
short wait_state(int fd, short want, int ms);

/* SIGIO through a signalfd (SIGIO is blocked in every thread) */
int sigio_setup(int port_fd);
/* waits for one SIGIO on the signalfd @sfd; returns 1 if one came */
int sigio_wait(int sfd, int ms);
void sigio_drain(int sfd);

/* deterministic byte streams the host can regenerate */
void stream_fill(uint32_t *state, uint8_t *buf, size_t len);
uint64_t fnv1a(uint64_t h, const uint8_t *buf, size_t len);
#define FNV_INIT UINT64_C(0xcbf29ce484222325)

int write_all(int fd, const void *buf, size_t len);
int read_exact(int fd, void *buf, size_t len, int timeout_ms);

typedef int (*vstest_case_fn)(int argc, char **argv);
typedef struct VstestCase {
        const char *id;
        vstest_case_fn fn;
} VstestCase;

extern const VstestCase vstest_cases_a[];
extern const VstestCase vstest_cases_b[];
