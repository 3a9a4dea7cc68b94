/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Guest halves of cases 16-30: reconnect data fate, close/reopen, threads,
 * splice, hot-plug, many ports, QMP events, virtconsole, stop/cont. */
#define _GNU_SOURCE
#include "vstest.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static void counter_fill(uint32_t *next, uint8_t *buf, size_t len) {
        for (size_t i = 0; i + 4 <= len; i += 4) {
                uint32_t v = (*next)++;
                memcpy(buf + i, &v, 4);
        }
}

/* 16: vstest 16 NAME: the host does not read, then drops and reconnects */
static int case_reconnect_fate(int argc, char **argv) {
        uint8_t chunk[4096], marker[16];
        uint32_t next = 0;
        size_t accepted = 0;
        char s[64];
        short st;
        int fd;

        CHECK(argc == 1, "args");
        fd = port_open(argv[0], O_RDWR | O_NONBLOCK, 5000);
        CHECK(wait_state(fd, POLLOUT, 2000) == POLLOUT, "host not connected");
        for (;;) {
                uint32_t save = next;
                ssize_t n;

                counter_fill(&next, chunk, sizeof(chunk));
                n = write(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EAGAIN) {
                        next = save;
                        break;
                }
                CHECK(n == (ssize_t) sizeof(chunk), "write returned %zd", n);
                accepted += (size_t) n;
                CHECK(accepted < 256u * 1024 * 1024, "queue never filled");
        }
        value("accepted", "%zu", accepted);
        step("full");
        st = wait_state(fd, POLLOUT, 20000);
        value("poll_after_reconnect", "%s", revents_str(st, s, sizeof(s)));
        CHECK(st & POLLOUT, "no POLLOUT after the host reconnected");
        memset(marker, 0xff, sizeof(marker));
        CHECK(write_all(fd, marker, sizeof(marker)) == 0, "marker");
        close(fd);
        return 0;
}

/* 17: vstest 17 NAME: the host writes "early-17" while the port is closed */
static int case_write_before_open(int argc, char **argv) {
        char buf[16];
        int fd;

        CHECK(argc == 1, "args");
        step("closed");
        fd = port_open(argv[0], O_RDWR | O_NONBLOCK, 5000);
        CHECK(read_exact(fd, buf, 8, 5000) == 0, "no data after open");
        CHECK(memcmp(buf, "early-17", 8) == 0, "content");
        close(fd);
        return 0;
}

/* 18: vstest 18 NAME */
static int case_close_discards(int argc, char **argv) {
        char buf[16], s[64];
        short st;
        int fd;

        CHECK(argc == 1, "args");
        fd = port_open(argv[0], O_RDWR | O_NONBLOCK, 5000);
        CHECK(wait_state(fd, POLLOUT, 2000) == POLLOUT, "host not connected");
        step("opened");
        st = wait_state(fd, POLLIN | POLLOUT, 5000);
        CHECK(st == (POLLIN | POLLOUT), "host data did not arrive: %s", revents_str(st, s, sizeof(s)));
        CHECK(close(fd) == 0, "close");
        fd = port_open(argv[0], O_RDWR | O_NONBLOCK, 5000);
        st = wait_state(fd, POLLOUT, 1000);
        value("poll_reopened", "%s", revents_str(st, s, sizeof(s)));
        CHECK(st == POLLOUT, "poll after reopen: %s", s);
        CHECK_ERRNO(read(fd, buf, sizeof(buf)), EAGAIN);
        step("reopened");
        CHECK(read_exact(fd, buf, 8, 5000) == 0, "fresh data");
        CHECK(memcmp(buf, "fresh-18", 8) == 0, "got stale data instead of fresh");
        close(fd);
        return 0;
}

typedef struct Reader {
        int fd;
        ssize_t n;
        int err;
        char buf[64];
        short revents;
        int64_t elapsed_us;
} Reader;

static void *reader_thread(void *data) {
        Reader *r = data;

        r->n = read(r->fd, r->buf, sizeof(r->buf));
        r->err = r->n < 0 ? errno : 0;
        return NULL;
}

static void *poller_thread(void *data) {
        Reader *r = data;
        struct pollfd p = { .fd = r->fd, .events = POLLIN };
        int64_t t0 = now_us();

        r->n = poll(&p, 1, 10000);
        r->revents = p.revents;
        r->elapsed_us = now_us() - t0;
        return NULL;
}

static void join_within(pthread_t t, int ms, const char *what) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        CHECK(pthread_timedjoin_np(t, NULL, &ts) == 0, "%s thread still blocked", what);
}

/* 19: vstest 19 NAME */
static int case_read_write_threads(int argc, char **argv) {
        Reader r = { 0 };
        pthread_t t;

        CHECK(argc == 1, "args");
        r.fd = port_open(argv[0], O_RDWR, 5000);
        CHECK(wait_state(r.fd, POLLOUT, 2000) == POLLOUT, "host not connected");
        CHECK(pthread_create(&t, NULL, reader_thread, &r) == 0, "thread");
        sleep_ms(300);
        CHECK(write(r.fd, "w-19", 4) == 4, "write while a read is blocked");
        step("wrote");
        join_within(t, 5000, "reader");
        CHECK(r.n == 4 && memcmp(r.buf, "r-19", 4) == 0, "reader got %zd (errno %d)", r.n, r.err);
        close(r.fd);
        return 0;
}

/* 20: vstest 20 NAME */
static int case_poll_thread(int argc, char **argv) {
        Reader r = { 0 };
        char s[64];
        pthread_t t;

        CHECK(argc == 1, "args");
        r.fd = port_open(argv[0], O_RDWR | O_NONBLOCK, 5000);
        CHECK(wait_state(r.fd, POLLOUT, 2000) == POLLOUT, "host not connected");
        CHECK(pthread_create(&t, NULL, poller_thread, &r) == 0, "thread");
        sleep_ms(300);
        step("polling");
        join_within(t, 5000, "poller");
        value("woken_after_ms", "%lld", (long long) r.elapsed_us / 1000);
        CHECK(r.n == 1 && (r.revents & POLLIN), "poll returned %zd revents %s", r.n,
              revents_str(r.revents, s, sizeof(s)));
        CHECK(r.elapsed_us >= 250000 && r.elapsed_us < 9000000, "woken after %lld us", (long long) r.elapsed_us);
        CHECK(read_exact(r.fd, r.buf, 4, 1000) == 0 && memcmp(r.buf, "p-20", 4) == 0, "data");
        close(r.fd);
        return 0;
}

typedef struct PipeWriter {
        int fd;
        size_t total;
} PipeWriter;

static void *pipe_writer(void *data) {
        PipeWriter *w = data;
        uint32_t seed = 21;
        uint8_t buf[8192];

        for (size_t off = 0; off < w->total; off += sizeof(buf)) {
                size_t n = w->total - off < sizeof(buf) ? w->total - off : sizeof(buf);
                stream_fill(&seed, buf, n);
                if (write_all(w->fd, buf, n) < 0)
                        break;
        }
        close(w->fd);
        return NULL;
}

/* 21: vstest 21 NAME SIZE */
static int case_splice(int argc, char **argv) {
        PipeWriter w;
        size_t total, moved = 0;
        int p[2], fd, calls = 0;
        pthread_t t;

        CHECK(argc == 2, "args");
        total = strtoul(argv[1], NULL, 10);
        fd = port_open(argv[0], O_RDWR, 5000);
        CHECK(wait_state(fd, POLLOUT, 2000) == POLLOUT, "host not connected");
        CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
        /* virtio_console's splice_write returns 0 at once when the pipe is
         * empty, even with writers and a blocking pipe: it does not wait */
        {
                ssize_t n = splice(p[0], NULL, fd, NULL, 4096, 0);
                value("splice_empty_pipe", "%zd", n);
                CHECK(n == 0, "splice from an empty pipe returned %zd", n);
        }
        w = (PipeWriter){ .fd = p[1], .total = total };
        CHECK(pthread_create(&t, NULL, pipe_writer, &w) == 0, "thread");
        while (moved < total) {
                struct pollfd pf = { .fd = p[0], .events = POLLIN };
                ssize_t n;

                CHECK(poll(&pf, 1, 5000) == 1, "pipe never readable after %zu bytes", moved);
                n = splice(p[0], NULL, fd, NULL, total - moved, SPLICE_F_MOVE);
                CHECK(n > 0, "splice returned %zd after %zu bytes", n, moved);
                moved += (size_t) n;
                calls++;
        }
        join_within(t, 5000, "pipe writer");
        value("splice_calls", "%d", calls);
        close(p[0]);
        close(fd);
        return 0;
}

/* 22: vstest 22 NAME: the host unplugs the port while a read is blocked */
static int case_unplug_blocked(int argc, char **argv) {
        Reader r = { 0 };
        char dev[64], path[128], s[64];
        struct stat st;
        pthread_t t;
        short ps;
        int sfd, i;

        CHECK(argc == 1, "args");
        r.fd = port_open(argv[0], O_RDWR, 5000);
        CHECK(port_dev(argv[0], dev, sizeof(dev)) == 0, "dev");
        snprintf(path, sizeof(path), "/dev/%s", dev);
        sfd = sigio_setup(r.fd);
        CHECK(pthread_create(&t, NULL, reader_thread, &r) == 0, "thread");
        sleep_ms(300);
        sigio_drain(sfd);
        step("blocked");
        join_within(t, 5000, "reader");
        value("blocked_read", "%zd errno=%d", r.n, r.err);
        CHECK(r.n == -1 && r.err == ENODEV, "blocked read returned %zd errno %d", r.n, r.err);
        CHECK(sigio_wait(sfd, 3000) == 1, "no SIGIO on unplug");
        ps = poll_state(r.fd, 0);
        value("poll", "%s", revents_str(ps, s, sizeof(s)));
        CHECK(ps == POLLHUP, "poll gave %s", s);
        CHECK_ERRNO(read(r.fd, s, 1), ENODEV);
        CHECK_ERRNO(write(r.fd, "x", 1), ENODEV);
        for (i = 0; i < 200 && stat(path, &st) == 0; i++)
                sleep_ms(10);
        CHECK(stat(path, &st) < 0 && errno == ENOENT, "%s still exists", path);
        CHECK(port_dev(argv[0], dev, sizeof(dev)) == -ENOENT, "sysfs entry still there");
        CHECK(close(r.fd) == 0, "close");
        return 0;
}

static int wait_link(const char *name, char *ret_real, size_t size, int ms) {
        char link[300];
        int64_t end = now_us() + (int64_t) ms * 1000;

        snprintf(link, sizeof(link), "/dev/virtio-ports/%s", name);
        for (;;) {
                char *real = realpath(link, NULL);
                struct stat st;

                if (real && stat(real, &st) == 0 && S_ISCHR(st.st_mode)) {
                        snprintf(ret_real, size, "%s", real);
                        free(real);
                        return 0;
                }
                free(real);
                if (now_us() >= end)
                        return -ETIMEDOUT;
                sleep_ms(10);
        }
}

static void echo_check(int fd, const char *out, const char *in) {
        char buf[64];
        size_t n = strlen(in);

        CHECK(wait_state(fd, POLLOUT, 5000) & POLLOUT, "host not connected");
        CHECK(write_all(fd, out, strlen(out)) == 0, "write %s", out);
        CHECK(read_exact(fd, buf, n, 5000) == 0, "read %s", in);
        CHECK(memcmp(buf, in, n) == 0, "content");
}

/* 23: vstest 23 NAME: the host hot-plugs NAME after @waiting */
static int case_hotplug(int argc, char **argv) {
        char real[300], dev[64], want[80];
        int64_t t0;
        int fd;

        CHECK(argc == 1, "args");
        CHECK(port_dev(argv[0], dev, sizeof(dev)) == -ENOENT, "port exists before hot-plug");
        step("waiting");
        t0 = now_us();
        fd = port_open(argv[0], O_RDWR | O_NONBLOCK, 20000);
        value("appeared_after_ms", "%lld", (long long) (now_us() - t0) / 1000);
        CHECK(wait_link(argv[0], real, sizeof(real), 5000) == 0, "no symlink");
        CHECK(port_dev(argv[0], dev, sizeof(dev)) == 0, "sysfs");
        snprintf(want, sizeof(want), "/dev/%s", dev);
        CHECK(strcmp(real, want) == 0, "symlink -> %s, want %s", real, want);
        value("node", "%s", real);
        echo_check(fd, "hp-23", "ok-23");
        close(fd);
        return 0;
}

/* 24: vstest 24 NAME: unplug after @first, replug after @removed */
static int case_replug(int argc, char **argv) {
        char n1[300], n2[300], link[300], dev[64];
        struct stat st;
        int fd, i;

        CHECK(argc == 1, "args");
        snprintf(link, sizeof(link), "/dev/virtio-ports/%s", argv[0]);
        CHECK(wait_link(argv[0], n1, sizeof(n1), 5000) == 0, "no symlink at start");
        fd = open(link, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        CHECK(fd >= 0, "open");
        close(fd);
        step("first");
        for (i = 0; i < 500 && (lstat(link, &st) == 0 || stat(n1, &st) == 0); i++)
                sleep_ms(10);
        CHECK(lstat(link, &st) < 0, "symlink still there after unplug");
        CHECK(stat(n1, &st) < 0, "%s still there after unplug", n1);
        step("removed");
        CHECK(wait_link(argv[0], n2, sizeof(n2), 10000) == 0, "no symlink after re-add");
        CHECK(port_dev(argv[0], dev, sizeof(dev)) == 0, "sysfs");
        value("nodes", "%s %s", n1, n2);
        fd = open(link, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        CHECK(fd >= 0, "open after re-add");
        echo_check(fd, "re-24", "ok-24");
        close(fd);
        return 0;
}

static short state_of(char c) {
        return c == 'O' ? POLLOUT : (POLLIN | POLLHUP);
}

/* 25: vstest 25 BEFORE AFTER NAME...: BEFORE/AFTER one letter per port,
 * O = host connected (POLLOUT), H = not connected (POLLIN|POLLHUP) */
static int case_independent(int argc, char **argv) {
        int fd[32], n = argc - 2;
        const char *before, *after;
        char s[64];

        CHECK(argc >= 3 && n <= 32, "args");
        before = argv[0];
        after = argv[1];
        CHECK((int) strlen(before) == n && (int) strlen(after) == n, "state strings");
        for (int i = 0; i < n; i++) {
                fd[i] = port_open(argv[2 + i], O_RDWR | O_NONBLOCK, 5000);
                short st = wait_state(fd[i], state_of(before[i]), 3000);
                CHECK(st == state_of(before[i]), "%s before: %s", argv[2 + i], revents_str(st, s, sizeof(s)));
        }
        step("before");
        for (int i = 0; i < n; i++)
                if (before[i] != after[i]) {
                        short st = wait_state(fd[i], state_of(after[i]), 5000);
                        CHECK(st == state_of(after[i]), "%s after: %s", argv[2 + i], revents_str(st, s, sizeof(s)));
                }
        /* the changed ones settled: every other port is as it was */
        sleep_ms(200);
        for (int i = 0; i < n; i++) {
                short st = poll_state(fd[i], 0);
                CHECK(st == state_of(after[i]), "%s changed to %s", argv[2 + i], revents_str(st, s, sizeof(s)));
                close(fd[i]);
        }
        return 0;
}

/* 26: vstest 26 PREFIX COUNT: reports which ports see their (connected)
 * host; the host reconnects the others until all do (see README: QEMU drops
 * control messages when the guest's control queue is out of buffers) */
static int case_many_ports(int argc, char **argv) {
        int fd[64], count, round;

        CHECK(argc == 2, "args");
        count = atoi(argv[1]);
        CHECK(count > 0 && count <= 64, "count");
        for (int i = 0; i < count; i++) {
                char name[128];
                snprintf(name, sizeof(name), "%s%d", argv[0], i);
                fd[i] = port_open(name, O_RDWR | O_NONBLOCK, 5000);
        }
        for (round = 0;; round++) {
                char states[65];
                int missing = 0;

                sleep_ms(300);
                for (int i = 0; i < count; i++) {
                        short st = poll_state(fd[i], 0);
                        states[i] = st == POLLOUT ? 'O' : st == (POLLIN | POLLHUP) ? 'H' : '?';
                        missing += states[i] != 'O';
                }
                states[count] = 0;
                value("states", "%s", states);
                step("states");
                if (missing == 0)
                        break;
                CHECK(round < 5, "ports still without host after %d rounds: %s", round, states);
        }
        for (int i = 0; i < count; i++) {
                char msg[16];
                snprintf(msg, sizeof(msg), "port-%02d", i);
                CHECK(write_all(fd[i], msg, 7) == 0, "write port %d", i);
        }
        step("written");
        for (int i = 0; i < count; i++) {
                char buf[8], want[16];
                snprintf(want, sizeof(want), "ack-%02d", i);
                CHECK(read_exact(fd[i], buf, 6, 5000) == 0, "read port %d", i);
                CHECK(memcmp(buf, want, 6) == 0, "port %d got %.6s", i, buf);
                close(fd[i]);
        }
        value("ports", "%d", count);
        return 0;
}

/* 27: vstest 27 NAME */
static int case_vserport_change(int argc, char **argv) {
        int fd;

        CHECK(argc == 1, "args");
        step("start");
        fd = port_open(argv[0], O_RDWR | O_NONBLOCK, 5000);
        step("opened");
        CHECK(close(fd) == 0, "close");
        step("closed");
        return 0;
}

/* 28: vstest 28 */
static int case_virtconsole(int argc, char **argv) {
        struct termios t;
        char buf[16];
        struct stat st;
        int fd;

        (void) argv;
        CHECK(argc == 0, "args");
        CHECK(stat("/sys/class/tty/hvc0", &st) == 0, "no hvc0");
        fd = open("/dev/hvc0", O_RDWR | O_NOCTTY | O_CLOEXEC);
        CHECK(fd >= 0, "open /dev/hvc0");
        CHECK(tcgetattr(fd, &t) == 0, "tcgetattr");
        cfmakeraw(&t);
        CHECK(tcsetattr(fd, TCSANOW, &t) == 0, "tcsetattr");
        step("raw");
        CHECK(read_exact(fd, buf, 9, 5000) == 0, "read hvc0");
        CHECK(memcmp(buf, "hvc-in-28", 9) == 0, "hvc0 got %.9s", buf);
        CHECK(write_all(fd, "hvc-out-28", 10) == 0, "write hvc0");
        CHECK(tcdrain(fd) == 0, "tcdrain");
        close(fd);
        return 0;
}

typedef struct Bulk {
        int fd;
        size_t total;
        int pause_us;
        uint64_t fnv;
        int bad;
} Bulk;

static void *bulk_reader(void *data) {
        Bulk *b = data;
        uint32_t seed = 9292;
        uint8_t buf[4096], want[4096];

        for (size_t off = 0; off < b->total;) {
                ssize_t n = read(b->fd, buf, sizeof(buf));
                if (n <= 0) {
                        b->bad = 1;
                        break;
                }
                stream_fill(&seed, want, (size_t) n);
                if (memcmp(buf, want, (size_t) n) != 0) {
                        b->bad = 2;
                        break;
                }
                b->fnv = fnv1a(b->fnv, buf, (size_t) n);
                off += (size_t) n;
                usleep((useconds_t) b->pause_us);
        }
        return NULL;
}

/* 29: vstest 29 NAME SIZE: both directions at once, paced, while the host
 * stops and continues the VM */
static int case_stop_cont(int argc, char **argv) {
        Bulk rd = { .fnv = FNV_INIT, .pause_us = 500 };
        uint8_t buf[65536];
        uint32_t seed = 2929;
        pthread_t t;
        size_t total;
        int fd;

        CHECK(argc == 2, "args");
        total = strtoul(argv[1], NULL, 10);
        fd = port_open(argv[0], O_RDWR, 5000);
        CHECK(wait_state(fd, POLLOUT, 2000) == POLLOUT, "host not connected");
        rd.fd = fd;
        rd.total = total;
        CHECK(pthread_create(&t, NULL, bulk_reader, &rd) == 0, "thread");
        step("go");
        for (size_t off = 0; off < total; off += sizeof(buf)) {
                size_t n = total - off < sizeof(buf) ? total - off : sizeof(buf);
                stream_fill(&seed, buf, n);
                CHECK(write_all(fd, buf, n) == 0, "write at %zu", off);
                sleep_ms(10);
        }
        join_within(t, 60000, "reader");
        CHECK(rd.bad == 0, "host->guest stream broken (%d)", rd.bad);
        value("h2g_fnv", "%016llx", (unsigned long long) rd.fnv);
        close(fd);
        return 0;
}

/* 30: vstest 30 NAME...: the host unplugs the whole virtio-serial device */
static int case_device_unplug(int argc, char **argv) {
        int fd[8];
        char dev[8][64], s[64];

        CHECK(argc >= 1 && argc <= 8, "args");
        for (int i = 0; i < argc; i++) {
                fd[i] = port_open(argv[i], O_RDWR | O_NONBLOCK, 5000);
                CHECK(port_dev(argv[i], dev[i], sizeof(dev[i])) == 0, "dev");
        }
        step("opened");
        for (int i = 0; i < argc; i++) {
                char path[600];
                struct stat st;
                short ps = wait_state(fd[i], POLLHUP, 5000);

                value("poll", "%s %s", argv[i], revents_str(ps, s, sizeof(s)));
                CHECK(ps == POLLHUP, "%s: poll gave %s", argv[i], s);
                CHECK_ERRNO(read(fd[i], s, 1), ENODEV);
                CHECK_ERRNO(write(fd[i], "x", 1), ENODEV);
                CHECK(close(fd[i]) == 0, "close");
                snprintf(path, sizeof(path), "/dev/%s", dev[i]);
                for (int k = 0; k < 200 && stat(path, &st) == 0; k++)
                        sleep_ms(10);
                CHECK(stat(path, &st) < 0, "%s still exists", path);
        }
        return 0;
}

const VstestCase vstest_cases_b[] = {
        { "16", case_reconnect_fate }, { "17", case_write_before_open },
        { "18", case_close_discards }, { "19", case_read_write_threads },
        { "20", case_poll_thread },    { "21", case_splice },
        { "22", case_unplug_blocked }, { "23", case_hotplug },
        { "24", case_replug },         { "25", case_independent },
        { "26", case_many_ports },     { "27", case_vserport_change },
        { "28", case_virtconsole },    { "29", case_stop_cont },
        { "30", case_device_unplug },  { NULL, NULL },
};
