/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Guest halves of cases 01-15: nodes, open rules, no-host and host-connect
 * semantics, read/write sizes, flow control. */
#define _GNU_SOURCE
#include "vstest.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PAT_LEN 100000

/* 01: vstest 01 NAME... */
static int case_node(int argc, char **argv) {
        for (int i = 0; i < argc; i++) {
                char dev[64], path[300], buf[64] = "";
                unsigned maj, min;
                struct stat st;
                FILE *f;

                CHECK(port_dev(argv[i], dev, sizeof(dev)) == 0, "no sysfs entry named %s", argv[i]);
                CHECK(strncmp(dev, "vport", 5) == 0 && strchr(dev, 'p') != NULL, "odd name %s", dev);
                snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/dev", dev);
                f = fopen(path, "re");
                CHECK(f != NULL, "open %s", path);
                CHECK(fgets(buf, sizeof(buf), f) != NULL, "read %s", path);
                fclose(f);
                CHECK(sscanf(buf, "%u:%u", &maj, &min) == 2, "parse %s: %s", path, buf);
                snprintf(path, sizeof(path), "/dev/%s", dev);
                CHECK(stat(path, &st) == 0, "stat %s", path);
                CHECK(S_ISCHR(st.st_mode), "%s is not a character device", path);
                CHECK(major(st.st_rdev) == maj && minor(st.st_rdev) == min, "%s is %u:%u, sysfs says %u:%u", path,
                      major(st.st_rdev), minor(st.st_rdev), maj, min);
                value("node", "%s %s %u:%u", argv[i], dev, maj, min);
        }
        return 0;
}

/* 02: vstest 02 NAME... */
static int case_symlink(int argc, char **argv) {
        for (int i = 0; i < argc; i++) {
                char dev[64], link[300], want[80], *real;

                CHECK(port_dev(argv[i], dev, sizeof(dev)) == 0, "no port %s", argv[i]);
                snprintf(link, sizeof(link), "/dev/virtio-ports/%s", argv[i]);
                real = realpath(link, NULL);
                CHECK(real != NULL, "realpath %s", link);
                snprintf(want, sizeof(want), "/dev/%s", dev);
                CHECK(strcmp(real, want) == 0, "%s -> %s, want %s", link, real, want);
                value("link", "%s %s", link, real);
                free(real);
        }
        return 0;
}

/* open(2) of the port's node, no checks: for expected failures */
static int open_raw(const char *name, int flags) {
        char dev[64], path[128];

        CHECK(port_dev(name, dev, sizeof(dev)) == 0, "no port %s", name);
        snprintf(path, sizeof(path), "/dev/%s", dev);
        return open(path, flags | O_CLOEXEC);
}

/* 03: vstest 03 NAME (host not connected) */
static int case_open_once(int argc, char **argv) {
        int fd, fd2;

        CHECK(argc == 1, "args");
        fd = port_open(argv[0], O_RDWR, 5000);
        CHECK_ERRNO(open_raw(argv[0], O_RDWR), EBUSY);
        CHECK(close(fd) == 0, "close");
        fd2 = port_open(argv[0], O_RDWR, 5000);
        CHECK(fd2 >= 0, "reopen");
        close(fd2);
        return 0;
}

/* 04: vstest 04 CONSOLE_NAME PORT_NAME */
static int case_console_enxio(int argc, char **argv) {
        char dev[64], path[128];
        int fd;

        CHECK(argc == 2, "args");
        CHECK(port_dev(argv[0], dev, sizeof(dev)) == 0, "no sysfs entry for the console port %s", argv[0]);
        CHECK(strstr(dev, "p0") != NULL, "virtconsole is %s, expected port 0", dev);
        snprintf(path, sizeof(path), "/dev/%s", dev);
        CHECK_ERRNO(open(path, O_RDWR | O_CLOEXEC), ENXIO);
        fd = port_open(argv[1], O_RDWR, 5000);
        CHECK_ERRNO(lseek(fd, 0, SEEK_SET), ESPIPE);
        CHECK_ERRNO(lseek(fd, 10, SEEK_CUR), ESPIPE);
        CHECK_ERRNO(pread(fd, dev, 1, 0), ESPIPE);
        close(fd);
        return 0;
}

/* 05: vstest 05 NAME (host not connected) */
static int case_no_host(int argc, char **argv) {
        char buf[64], s[64];
        short st;
        int fd;

        CHECK(argc == 1, "args");
        fd = port_open(argv[0], O_RDWR, 5000);
        st = poll_state(fd, 1000);
        value("poll", "%s", revents_str(st, s, sizeof(s)));
        CHECK(st == (POLLIN | POLLHUP), "poll gave %s", s);
        CHECK(read(fd, buf, sizeof(buf)) == 0, "blocking read did not return 0");
        CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
        CHECK(read(fd, buf, sizeof(buf)) == 0, "non-blocking read did not return 0");
        CHECK_ERRNO(write(fd, "x", 1), EAGAIN);
        close(fd);
        return 0;
}

static void on_alarm(int sig) {
        (void) sig;
}

/* 06: vstest 06 NAME (host not connected; the host connects after @blocked) */
static int case_blocking_write(int argc, char **argv) {
        struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
        int64_t t0, t1;
        int fd;
        ssize_t n;

        CHECK(argc == 1, "args");
        CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");
        fd = port_open(argv[0], O_RDWR, 5000);
        t0 = now_us();
        alarm(1);
        CHECK_ERRNO(write(fd, "early", 5), EINTR);
        t1 = now_us();
        value("eintr_after_ms", "%lld", (long long) (t1 - t0) / 1000);
        CHECK(t1 - t0 >= 900000, "write returned after %lld us, before the alarm", (long long) (t1 - t0));
        printf("@blocked\n");
        fflush(stdout);
        t0 = now_us();
        n = write(fd, "hello-06", 8);
        t1 = now_us();
        CHECK(n == 8, "write returned %zd", n);
        value("blocked_ms", "%lld", (long long) (t1 - t0) / 1000);
        /* the host waits 1 s before connecting */
        CHECK(t1 - t0 >= 700000, "write did not block (%lld us)", (long long) (t1 - t0));
        close(fd);
        return 0;
}

/* 07: vstest 07 NAME (twice: host not connected, then connected) */
static int case_zero_write(int argc, char **argv) {
        int fd;

        CHECK(argc == 1, "args");
        fd = port_open(argv[0], O_RDWR | O_NONBLOCK, 5000);
        CHECK(write(fd, "", 0) == 0, "write of 0 bytes");
        value("connected", "%d", (poll_state(fd, 0) & POLLOUT) ? 1 : 0);
        close(fd);
        return 0;
}

/* 08: vstest 08 NAME (host connects after @opened) */
static int case_host_connect(int argc, char **argv) {
        char buf[16], s[64];
        int fd, sfd;
        short st;

        CHECK(argc == 1, "args");
        fd = port_open(argv[0], O_RDWR | O_NONBLOCK, 5000);
        sfd = sigio_setup(fd);
        CHECK(poll_state(fd, 0) == (POLLIN | POLLHUP), "not disconnected at start");
        sigio_drain(sfd);
        step("opened");
        CHECK(sigio_wait(sfd, 5000) == 1, "no SIGIO on host connect");
        st = wait_state(fd, POLLOUT, 2000);
        value("poll", "%s", revents_str(st, s, sizeof(s)));
        CHECK(st == POLLOUT, "poll gave %s", s);
        CHECK_ERRNO(read(fd, buf, sizeof(buf)), EAGAIN);
        close(fd);
        return 0;
}

/* 09: vstest 09 NAME (host connected; sends 5 bytes after @ready) */
static int case_five_bytes(int argc, char **argv) {
        char buf[64], s[64];
        int fd, sfd;
        short st;
        ssize_t n;

        CHECK(argc == 1, "args");
        fd = port_open(argv[0], O_RDWR | O_NONBLOCK, 5000);
        sfd = sigio_setup(fd);
        CHECK(wait_state(fd, POLLOUT, 2000) == POLLOUT, "host not connected");
        sigio_drain(sfd);
        step("ready");
        CHECK(sigio_wait(sfd, 5000) == 1, "no SIGIO on data");
        st = wait_state(fd, POLLIN | POLLOUT, 2000);
        value("poll", "%s", revents_str(st, s, sizeof(s)));
        CHECK(st == (POLLIN | POLLOUT), "poll gave %s", s);
        n = read(fd, buf, sizeof(buf));
        CHECK(n == 5 && memcmp(buf, "12345", 5) == 0, "read %zd bytes", n);
        close(fd);
        return 0;
}

/* 10: vstest 10 NAME SIZE: the host sends SIZE bytes of stream seed 10 */
static int case_read_sizes(int argc, char **argv) {
        size_t total, got = 0;
        uint32_t seed = 10;
        uint8_t *want, *buf;
        int fd, reads = 0, max = 0;
        char sizes[512] = "";

        CHECK(argc == 2, "args");
        total = strtoul(argv[1], NULL, 10);
        want = malloc(total);
        buf = malloc(65536);
        CHECK(want && buf, "malloc");
        stream_fill(&seed, want, total);
        fd = port_open(argv[0], O_RDWR, 5000);
        step("ready");
        while (got < total) {
                ssize_t n = read(fd, buf, 65536);
                CHECK(n > 0, "read returned %zd after %zu bytes", n, got);
                CHECK(n <= 4096, "a read returned %zd > 4096 bytes", n);
                CHECK(got + (size_t) n <= total, "too many bytes");
                CHECK(memcmp(buf, want + got, (size_t) n) == 0, "content differs at %zu", got);
                got += (size_t) n;
                reads++;
                if (n > max)
                        max = (int) n;
                if (strlen(sizes) < sizeof(sizes) - 16)
                        snprintf(sizes + strlen(sizes), sizeof(sizes) - strlen(sizes), "%s%zd", reads > 1 ? "+" : "",
                                 n);
        }
        value("reads", "%d", reads);
        value("max_read", "%d", max);
        value("sizes", "%s", sizes);
        close(fd);
        free(want);
        free(buf);
        return 0;
}

/* 11: vstest 11 NAME: writes PAT_LEN bytes of stream seed 11 */
static int case_write_size(int argc, char **argv) {
        uint8_t *buf = malloc(PAT_LEN);
        uint32_t seed = 11;
        ssize_t n;
        int fd;

        CHECK(argc == 1 && buf, "args");
        stream_fill(&seed, buf, PAT_LEN);
        fd = port_open(argv[0], O_RDWR, 5000);
        CHECK(wait_state(fd, POLLOUT, 2000) == POLLOUT, "host not connected");
        n = write(fd, buf, PAT_LEN);
        value("first_write", "%zd", n);
        CHECK(n == 32768, "write(%d) returned %zd", PAT_LEN, n);
        CHECK(write_all(fd, buf + n, PAT_LEN - (size_t) n) == 0, "write loop");
        close(fd);
        free(buf);
        return 0;
}

/* 12: vstest 12 NAME: the host is not reading at first */
static int case_queue_full(int argc, char **argv) {
        uint8_t chunk[4096];
        uint32_t seed = 12;
        size_t accepted = 0;
        char s[64];
        short st;
        int fd;

        CHECK(argc == 1, "args");
        fd = port_open(argv[0], O_RDWR | O_NONBLOCK, 5000);
        CHECK(wait_state(fd, POLLOUT, 2000) == POLLOUT, "host not connected");
        for (;;) {
                ssize_t n;
                stream_fill(&seed, chunk, sizeof(chunk));
                n = write(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EAGAIN) {
                        /* QEMU may still be moving the queue into its
                         * socket: full means refused twice, 100 ms apart */
                        usleep(100000);
                        n = write(fd, chunk, sizeof(chunk));
                        if (n < 0 && errno == EAGAIN)
                                break;
                }
                CHECK(n == (ssize_t) sizeof(chunk), "write returned %zd", n);
                accepted += (size_t) n;
                CHECK(accepted < 256u * 1024 * 1024, "queue never filled");
        }
        /* @seed now holds the stream state after the refused chunk: redo it */
        st = poll_state(fd, 200);
        value("accepted", "%zu", accepted);
        value("poll_full", "%s", revents_str(st, s, sizeof(s)));
        CHECK(!(st & POLLOUT), "POLLOUT still set with a full queue: %s", s);
        step("full");
        st = wait_state(fd, POLLOUT, 20000);
        CHECK(st & POLLOUT, "POLLOUT did not come back: %s", revents_str(st, s, sizeof(s)));
        CHECK(write_all(fd, chunk, sizeof(chunk)) == 0, "write after drain");
        value("resumed", "%zu", sizeof(chunk));
        close(fd);
        return 0;
}

/* 13: vstest 13 NAME SIZE: SIZE bytes each way, one after the other; the
 * guest reads host->guest slowly (4 KiB, then 200 us pause) */
static int case_bulk(int argc, char **argv) {
        size_t total, off;
        uint32_t wseed = 1313, rseed = 3131;
        uint64_t h_w = FNV_INIT, h_r = FNV_INIT, h_want = FNV_INIT;
        uint8_t buf[32768], want[4096];
        int fd;

        CHECK(argc == 2, "args");
        total = strtoul(argv[1], NULL, 10);
        fd = port_open(argv[0], O_RDWR, 5000);
        CHECK(wait_state(fd, POLLOUT, 2000) == POLLOUT, "host not connected");
        for (off = 0; off < total; off += sizeof(buf)) {
                size_t n = total - off < sizeof(buf) ? total - off : sizeof(buf);
                stream_fill(&wseed, buf, n);
                h_w = fnv1a(h_w, buf, n);
                CHECK(write_all(fd, buf, n) == 0, "write at %zu", off);
        }
        value("g2h_fnv", "%016llx", (unsigned long long) h_w);
        step("sent");
        for (off = 0; off < total;) {
                ssize_t n = read(fd, buf, 4096);
                CHECK(n > 0, "read returned %zd at %zu", n, off);
                h_r = fnv1a(h_r, buf, (size_t) n);
                stream_fill(&rseed, want, (size_t) n);
                h_want = fnv1a(h_want, want, (size_t) n);
                CHECK(memcmp(buf, want, (size_t) n) == 0, "host->guest data differs at %zu", off);
                off += (size_t) n;
                usleep(200);
        }
        value("h2g_fnv", "%016llx", (unsigned long long) h_r);
        CHECK(h_r == h_want, "checksum");
        close(fd);
        return 0;
}

/* 14: vstest 14 NAME: host connected; disconnects after @connected,
 * reconnects after @disconnected */
static int case_host_cycle(int argc, char **argv) {
        char buf[64], s[64];
        int fd, sfd;
        short st;
        ssize_t n;

        CHECK(argc == 1, "args");
        fd = port_open(argv[0], O_RDWR | O_NONBLOCK, 5000);
        sfd = sigio_setup(fd);
        CHECK(wait_state(fd, POLLOUT, 2000) == POLLOUT, "host not connected");
        sigio_drain(sfd);
        step("connected");
        CHECK(sigio_wait(sfd, 5000) == 1, "no SIGIO on host disconnect");
        st = wait_state(fd, POLLIN | POLLHUP, 2000);
        value("poll_disconnected", "%s", revents_str(st, s, sizeof(s)));
        CHECK(st == (POLLIN | POLLHUP), "poll gave %s", s);
        CHECK(read(fd, buf, sizeof(buf)) == 0, "read did not return 0");
        sigio_drain(sfd);
        step("disconnected");
        CHECK(sigio_wait(sfd, 5000) == 1, "no SIGIO on host reconnect");
        st = wait_state(fd, POLLOUT, 2000);
        value("poll_reconnected", "%s", revents_str(st, s, sizeof(s)));
        CHECK(st == POLLOUT, "poll gave %s", s);
        /* the same fd works again: EOF was not sticky */
        CHECK(write_all(fd, "again-14", 8) == 0, "write after reconnect");
        CHECK(read_exact(fd, buf, 8, 5000) == 0, "read after reconnect");
        CHECK(memcmp(buf, "reply-14", 8) == 0, "content");
        n = read(fd, buf, sizeof(buf));
        CHECK(n < 0 && errno == EAGAIN, "extra data");
        close(fd);
        return 0;
}

/* 15: vstest 15 NAME: the host sends "bye-15" and closes before @go */
static int case_send_close(int argc, char **argv) {
        char buf[64], s[64];
        ssize_t n;
        short st;
        int fd;

        CHECK(argc == 1, "args");
        fd = port_open(argv[0], O_RDWR, 5000);
        CHECK(wait_state(fd, POLLOUT, 2000) == POLLOUT, "host not connected");
        step("ready");
        st = poll_state(fd, 0);
        value("poll", "%s", revents_str(st, s, sizeof(s)));
        CHECK(st == (POLLIN | POLLHUP), "poll gave %s", s);
        n = read(fd, buf, sizeof(buf));
        CHECK(n == 6 && memcmp(buf, "bye-15", 6) == 0, "first read returned %zd", n);
        CHECK(read(fd, buf, sizeof(buf)) == 0, "second read not EOF");
        close(fd);
        return 0;
}

const VstestCase vstest_cases_a[] = {
        { "01", case_node },       { "02", case_symlink },
        { "03", case_open_once },  { "04", case_console_enxio },
        { "05", case_no_host },    { "06", case_blocking_write },
        { "07", case_zero_write }, { "08", case_host_connect },
        { "09", case_five_bytes }, { "10", case_read_sizes },
        { "11", case_write_size }, { "12", case_queue_full },
        { "13", case_bulk },       { "14", case_host_cycle },
        { "15", case_send_close }, { NULL, NULL },
};
