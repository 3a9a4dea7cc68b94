/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * glvm-guest: the test bed's in-guest command server.
 *
 * Runs in the guest (as PID 1 of the initramfs flavour, or as a systemd
 * service in the systemd flavour), opens the control virtio-serial port and
 * serves the harness: runs shell commands, streams their output, feeds their
 * stdin, reports their exit status.  Plain C11 + POSIX (no glib) so that the
 * guest needs nothing but libc.
 *
 * Wire format, both directions: "<TYPE> <id> <len>\n" followed by <len>
 * payload bytes.
 *   host -> guest: RUN (payload: /bin/sh -c command), IN (stdin bytes),
 *                  EOF (close stdin), KILL (payload: signal number, decimal)
 *   guest -> host: HELLO (id 0, payload: kernel release), OUT (output bytes),
 *                  EXIT (payload: "exit N" or "signal N"), ERR (payload: text)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CTL_DEFAULT_NAME "org.guestlink.test.control"
#define CTL_MAX_PAYLOAD (4u * 1024u * 1024u)
#define CTL_MAX_HEADER 80
#define MAX_PROCS 64
#define OUT_CHUNK 16384
#define LINGER_MS 2000

typedef struct Proc {
        bool used;
        unsigned long id;
        pid_t pid;
        int in_fd;
        int out_fd;
        bool exited;
        int wstatus;
        int64_t exited_at_ms;
} Proc;

typedef struct Server {
        const char *port_name;
        int fd;
        Proc procs[MAX_PROCS];
        /* receive state */
        char header[CTL_MAX_HEADER + 1];
        size_t header_len;
        char type[8];
        unsigned long cur_id;
        size_t want;
        size_t have;
        char *payload;
        bool in_payload;
} Server;

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int find_port(const char *name, char *ret_path, size_t size) {
        DIR *d;
        struct dirent *de;
        int r = -ENOENT;

        d = opendir("/sys/class/virtio-ports");
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                char p[512], buf[256];
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(p, sizeof(p), "/sys/class/virtio-ports/%s/name", de->d_name);
                f = fopen(p, "re");
                if (!f)
                        continue;
                if (fgets(buf, sizeof(buf), f)) {
                        buf[strcspn(buf, "\n")] = 0;
                        if (strcmp(buf, name) == 0) {
                                snprintf(ret_path, size, "/dev/%s", de->d_name);
                                r = 0;
                        }
                }
                fclose(f);
                if (r == 0)
                        break;
        }
        closedir(d);
        return r;
}

/* Write everything; the port is non-blocking, so wait for POLLOUT. */
static int ctl_write_all(Server *s, const void *data, size_t len) {
        const char *p = data;

        while (len > 0) {
                ssize_t n = write(s->fd, p, len);
                if (n < 0) {
                        struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };

                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return -errno;
                        (void) poll(&pfd, 1, 100);
                        continue;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

static int ctl_send(Server *s, const char *type, unsigned long id, const void *data, size_t len) {
        char hdr[CTL_MAX_HEADER];
        int n, r;

        n = snprintf(hdr, sizeof(hdr), "%s %lu %zu\n", type, id, len);
        r = ctl_write_all(s, hdr, (size_t) n);
        if (r < 0)
                return r;
        return ctl_write_all(s, data, len);
}

static Proc *proc_find(Server *s, unsigned long id) {
        for (size_t i = 0; i < MAX_PROCS; i++)
                if (s->procs[i].used && s->procs[i].id == id)
                        return &s->procs[i];
        return NULL;
}

static void proc_start(Server *s, unsigned long id, const char *cmd) {
        int in[2], out[2];
        Proc *p = NULL;
        pid_t pid;

        for (size_t i = 0; i < MAX_PROCS; i++)
                if (!s->procs[i].used) {
                        p = &s->procs[i];
                        break;
                }
        if (!p || proc_find(s, id)) {
                const char *m = p ? "duplicate id" : "too many processes";
                (void) ctl_send(s, "ERR", id, m, strlen(m));
                return;
        }
        if (pipe2(in, O_CLOEXEC) < 0)
                goto fail;
        if (pipe2(out, O_CLOEXEC) < 0) {
                close(in[0]);
                close(in[1]);
                goto fail;
        }
        pid = fork();
        if (pid < 0) {
                close(in[0]);
                close(in[1]);
                close(out[0]);
                close(out[1]);
                goto fail;
        }
        if (pid == 0) {
                sigset_t ss;

                sigemptyset(&ss);
                sigprocmask(SIG_SETMASK, &ss, NULL);
                signal(SIGPIPE, SIG_DFL);
                setsid();
                dup2(in[0], 0);
                dup2(out[1], 1);
                dup2(out[1], 2);
                execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        (void) fcntl(out[0], F_SETFL, O_NONBLOCK);
        *p = (Proc){ .used = true, .id = id, .pid = pid, .in_fd = in[1], .out_fd = out[0] };
        return;
fail:;
        char m[128];
        snprintf(m, sizeof(m), "spawn failed: %s", strerror(errno));
        (void) ctl_send(s, "ERR", id, m, strlen(m));
}

static void proc_finish(Server *s, Proc *p) {
        char m[32];

        if (p->out_fd >= 0)
                close(p->out_fd);
        if (p->in_fd >= 0)
                close(p->in_fd);
        if (WIFEXITED(p->wstatus))
                snprintf(m, sizeof(m), "exit %d", WEXITSTATUS(p->wstatus));
        else
                snprintf(m, sizeof(m), "signal %d", WTERMSIG(p->wstatus));
        (void) ctl_send(s, "EXIT", p->id, m, strlen(m));
        *p = (Proc){ .used = false, .in_fd = -1, .out_fd = -1 };
}

static void dispatch(Server *s) {
        Proc *p;

        if (strcmp(s->type, "RUN") == 0) {
                proc_start(s, s->cur_id, s->payload);
                return;
        }
        p = proc_find(s, s->cur_id);
        if (!p)
                return;
        if (strcmp(s->type, "IN") == 0 && p->in_fd >= 0) {
                /* a test's stdin traffic is tiny: a blocking write is fine */
                size_t off = 0;
                while (off < s->have) {
                        ssize_t n = write(p->in_fd, s->payload + off, s->have - off);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                break;
                        off += (size_t) n;
                }
        } else if (strcmp(s->type, "EOF") == 0 && p->in_fd >= 0) {
                close(p->in_fd);
                p->in_fd = -1;
        } else if (strcmp(s->type, "KILL") == 0) {
                int sig = atoi(s->payload);
                if (sig > 0 && sig < 65 && !p->exited)
                        (void) kill(-p->pid, sig);
        }
}

/* Feed received control bytes through the frame parser. */
static void ctl_input(Server *s, const char *buf, size_t len) {
        while (len > 0) {
                if (!s->in_payload) {
                        char *nl;
                        size_t take;
                        unsigned long id;
                        size_t plen;
                        char type[8];

                        nl = memchr(buf, '\n', len);
                        take = nl ? (size_t) (nl - buf) + 1 : len;
                        if (s->header_len + take > CTL_MAX_HEADER) {
                                /* garbage: resynchronise on the next newline */
                                s->header_len = 0;
                                buf += take;
                                len -= take;
                                continue;
                        }
                        memcpy(s->header + s->header_len, buf, take);
                        s->header_len += take;
                        buf += take;
                        len -= take;
                        if (!nl)
                                continue;
                        s->header[s->header_len] = 0;
                        s->header_len = 0;
                        if (sscanf(s->header, "%7s %lu %zu", type, &id, &plen) != 3 || plen > CTL_MAX_PAYLOAD)
                                continue;
                        memcpy(s->type, type, sizeof(type));
                        s->cur_id = id;
                        s->want = plen;
                        s->have = 0;
                        free(s->payload);
                        s->payload = malloc(plen + 1);
                        if (!s->payload)
                                abort();
                        s->in_payload = true;
                }
                if (s->in_payload) {
                        size_t take = s->want - s->have < len ? s->want - s->have : len;

                        memcpy(s->payload + s->have, buf, take);
                        s->have += take;
                        buf += take;
                        len -= take;
                        if (s->have == s->want) {
                                s->payload[s->have] = 0;
                                s->in_payload = false;
                                dispatch(s);
                        }
                }
        }
}

static void reap(Server *s) {
        for (;;) {
                int st;
                pid_t pid = waitpid(-1, &st, WNOHANG);

                if (pid <= 0)
                        return;
                for (size_t i = 0; i < MAX_PROCS; i++)
                        if (s->procs[i].used && s->procs[i].pid == pid) {
                                s->procs[i].exited = true;
                                s->procs[i].wstatus = st;
                                s->procs[i].exited_at_ms = now_ms();
                        }
        }
}

static int serve(Server *s) {
        char buf[OUT_CHUNK];
        char path[300];
        int r;

        /* In an appliance image (tests/vm/README.md) the machine may have no
         * control port at all: keep looking, more slowly after a while, and
         * reap the appliance's orphans meanwhile (we are PID 1). */
        for (int64_t start = now_ms();;) {
                r = find_port(s->port_name, path, sizeof(path));
                if (r == 0)
                        break;
                reap(s);
                usleep(now_ms() - start < 10000 ? 50 * 1000 : 1000 * 1000);
        }
        for (;;) {
                s->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
                if (s->fd >= 0)
                        break;
                if (errno != EBUSY && errno != ENOENT && errno != ENXIO) {
                        fprintf(stderr, "glvm-guest: open %s: %m\n", path);
                        return -errno;
                }
                usleep(50 * 1000);
        }

        {
                struct utsname u;
                char hello[300];

                uname(&u);
                snprintf(hello, sizeof(hello), "%s %s", u.release, u.machine);
                (void) ctl_send(s, "HELLO", 0, hello, strlen(hello));
        }

        for (;;) {
                struct pollfd pfd[MAX_PROCS + 1];
                Proc *owner[MAX_PROCS + 1];
                nfds_t n = 0;
                bool host_gone = false;

                pfd[n] = (struct pollfd){ .fd = s->fd, .events = POLLIN };
                owner[n++] = NULL;
                for (size_t i = 0; i < MAX_PROCS; i++)
                        if (s->procs[i].used && s->procs[i].out_fd >= 0) {
                                pfd[n] = (struct pollfd){ .fd = s->procs[i].out_fd, .events = POLLIN };
                                owner[n++] = &s->procs[i];
                        }
                r = poll(pfd, n, 50);
                if (r < 0 && errno != EINTR)
                        return -errno;
                reap(s);
                if (r > 0 && (pfd[0].revents & POLLIN)) {
                        ssize_t k = read(s->fd, buf, sizeof(buf));
                        if (k > 0)
                                ctl_input(s, buf, (size_t) k);
                        else if (k == 0)
                                host_gone = true;
                } else if (r > 0 && (pfd[0].revents & POLLHUP))
                        host_gone = true;
                for (nfds_t i = 1; r > 0 && i < n; i++) {
                        Proc *p = owner[i];
                        if (!(pfd[i].revents & (POLLIN | POLLHUP)))
                                continue;
                        ssize_t k = read(p->out_fd, buf, sizeof(buf));
                        if (k > 0)
                                (void) ctl_send(s, "OUT", p->id, buf, (size_t) k);
                        else if (k == 0 || (k < 0 && errno != EAGAIN)) {
                                close(p->out_fd);
                                p->out_fd = -1;
                        }
                }
                for (size_t i = 0; i < MAX_PROCS; i++) {
                        Proc *p = &s->procs[i];
                        if (!p->used || !p->exited)
                                continue;
                        /* exited: report once its output hit EOF, or after a
                         * grace period if a background child keeps it open */
                        if (p->out_fd < 0 || now_ms() - p->exited_at_ms > LINGER_MS)
                                proc_finish(s, p);
                }
                if (host_gone)
                        usleep(20 * 1000); /* POLLHUP is level-triggered: do not spin */
        }
}

int main(int argc, char **argv) {
        Server s = { .port_name = CTL_DEFAULT_NAME, .fd = -1 };
        int r;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
                        s.port_name = argv[++i];
                else {
                        fprintf(stderr, "usage: glvm-guest [--port NAME]\n");
                        return 2;
                }
        }
        for (size_t i = 0; i < MAX_PROCS; i++)
                s.procs[i] = (Proc){ .in_fd = -1, .out_fd = -1 };
        signal(SIGPIPE, SIG_IGN);
        r = serve(&s);
        fprintf(stderr, "glvm-guest: %s\n", strerror(-r));
        return 1;
}
