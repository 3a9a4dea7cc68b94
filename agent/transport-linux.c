/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <linux/netlink.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <termios.h>
#include <unistd.h>

#include "transport.h"

#define BUSY_BACKOFF_MAX_S 30
#define ENOENT_RETRY_MS 200
#define NO_NETLINK_RESCAN_S 5
#define UEVENT_BUFFER 8192

struct GlTransport {
        GlTransportType type;
        char *port, *device, *sysfs_root, *dev_root;
        unsigned vsock_port, vsock_peer_cid;
        GlTransportOps ops;
        void *userdata;

        int fd;
        char *path;
        bool up;
        bool want_write;
        guint fd_watch;

        int sigio_fd; /* signalfd for SIGIO (virtio-serial) */
        guint sigio_watch;
        int uevent_fd; /* netlink kobject uevents (virtio-serial) */
        guint uevent_watch;
        guint retry_timer;
        unsigned busy_backoff_s;
        unsigned busy_logged;
        unsigned enoent_retries;
        int listen_fd; /* vsock */
        guint listen_watch;
};

static void logf_(GlTransport *t, int priority, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void logf_(GlTransport *t, int priority, const char *fmt, ...) {
        g_autofree char *text = NULL;
        va_list ap;

        if (!t->ops.log)
                return;
        va_start(ap, fmt);
        text = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        t->ops.log(t->userdata, priority, text);
}

static void remove_source(guint *id) {
        if (*id) {
                g_source_remove(*id);
                *id = 0;
        }
}

static void close_fd(int *fd) {
        if (*fd >= 0) {
                close(*fd);
                *fd = -1;
        }
}

GlTransport *gl_transport_new(const GlTransportConfig *config, const GlTransportOps *ops, void *userdata) {
        GlTransport *t = g_new0(GlTransport, 1);

        t->type = config->type;
        t->port = g_strdup(config->port ? config->port : "org.guestlink.agent.0");
        t->device = g_strdup(config->device);
        t->sysfs_root = g_strdup(config->sysfs_root ? config->sysfs_root : "/sys");
        t->dev_root = g_strdup(config->dev_root ? config->dev_root : "/dev");
        t->vsock_port = config->vsock_port;
        t->vsock_peer_cid = config->vsock_peer_cid ? config->vsock_peer_cid : VMADDR_CID_HOST;
        t->ops = *ops;
        t->userdata = userdata;
        t->fd = t->sigio_fd = t->uevent_fd = t->listen_fd = -1;
        return t;
}

GlTransport *gl_transport_free(GlTransport *t) {
        if (!t)
                return NULL;
        remove_source(&t->fd_watch);
        remove_source(&t->sigio_watch);
        remove_source(&t->uevent_watch);
        remove_source(&t->retry_timer);
        remove_source(&t->listen_watch);
        close_fd(&t->fd);
        close_fd(&t->sigio_fd);
        close_fd(&t->uevent_fd);
        close_fd(&t->listen_fd);
        g_free(t->path);
        g_free(t->port);
        g_free(t->device);
        g_free(t->sysfs_root);
        g_free(t->dev_root);
        g_free(t);
        return NULL;
}

bool gl_transport_is_up(const GlTransport *t) {
        return t->up;
}

const char *gl_transport_path(const GlTransport *t) {
        return t->fd >= 0 ? t->path : NULL;
}

/* ---- the fd watch ---- */

static gboolean on_fd(int fd, GIOCondition cond, gpointer userdata);

static void update_fd_watch(GlTransport *t) {
        remove_source(&t->fd_watch);
        if (t->fd >= 0 && t->up)
                t->fd_watch = g_unix_fd_add(t->fd, G_IO_IN | (t->want_write ? G_IO_OUT : 0), on_fd, t);
}

void gl_transport_want_write(GlTransport *t, bool want) {
        if (want == t->want_write)
                return;
        t->want_write = want;
        update_fd_watch(t);
}

static gboolean on_fd(int fd, GIOCondition cond, gpointer userdata) {
        GlTransport *t = userdata;

        (void) fd;
        /* Callbacks may take the transport down and remove this watch. */
        if (cond & (G_IO_IN | G_IO_HUP | G_IO_ERR))
                t->ops.readable(t->userdata);
        if (t->up && t->want_write && (cond & G_IO_OUT))
                t->ops.writable(t->userdata);
        return G_SOURCE_CONTINUE;
}

/* SIGIO is how a sleeping agent learns that a host connected.  While one
 * is connected the fd watch sees data, hang-up and unplug by itself, and a
 * signal per message would only cost wake-ups: O_ASYNC is on while down. */
static void set_async(GlTransport *t, bool on) {
        int flags;

        if (t->type != GL_TRANSPORT_VIRTIO_SERIAL || t->fd < 0 || (flags = fcntl(t->fd, F_GETFL)) < 0)
                return;
        (void) fcntl(t->fd, F_SETFL, on ? flags | O_ASYNC : flags & ~O_ASYNC);
}

static void set_up(GlTransport *t) {
        if (t->up)
                return;
        t->up = true;
        set_async(t, false);
        update_fd_watch(t);
        t->ops.up(t->userdata);
}

static void set_down(GlTransport *t) {
        if (!t->up)
                return;
        t->up = false;
        set_async(t, true);
        remove_source(&t->fd_watch);
        t->ops.down(t->userdata);
}

/* ---- virtio-serial: finding the port ---- */

static char *find_port(GlTransport *t) {
        g_autofree char *link = NULL, *class_dir = NULL;
        g_autoptr(GDir) dir = NULL;
        const char *entry;

        if (t->port[0] == '/')
                return g_strdup(t->port);
        link = g_build_filename(t->dev_root, "virtio-ports", t->port, NULL);
        if (access(link, F_OK) == 0)
                return g_steal_pointer(&link);
        /* No udev: match the name attribute in sysfs. */
        class_dir = g_build_filename(t->sysfs_root, "class", "virtio-ports", NULL);
        dir = g_dir_open(class_dir, 0, NULL);
        while (dir && (entry = g_dir_read_name(dir))) {
                g_autofree char *name_file = g_build_filename(class_dir, entry, "name", NULL);
                g_autofree char *name = NULL;

                if (!g_file_get_contents(name_file, &name, NULL, NULL))
                        continue;
                g_strchomp(name);
                if (strcmp(name, t->port) == 0)
                        return g_build_filename(t->dev_root, entry, NULL);
        }
        return NULL;
}

static void wait_for_port(GlTransport *t);
static void check_state(GlTransport *t);

static gboolean on_retry(gpointer userdata) {
        GlTransport *t = userdata;

        t->retry_timer = 0;
        wait_for_port(t);
        return G_SOURCE_REMOVE;
}

static void retry_in(GlTransport *t, unsigned ms) {
        remove_source(&t->retry_timer);
        t->retry_timer = g_timeout_add(ms, on_retry, t);
}

static int open_port(const char *path) {
        int fd, flags;

        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        /* SIGIO on host connect and disconnect, data and unplug. */
        flags = fcntl(fd, F_GETFL);
        if (fcntl(fd, F_SETOWN, getpid()) < 0 || flags < 0 || fcntl(fd, F_SETFL, flags | O_ASYNC) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* Finds and opens the port, or arranges to be called again. */
static void wait_for_port(GlTransport *t) {
        g_autofree char *path = find_port(t);
        int fd;

        if (t->fd >= 0)
                return;
        if (!path) {
                if (t->uevent_fd < 0)
                        retry_in(t, NO_NETLINK_RESCAN_S * 1000);
                return; /* a uevent will tell us */
        }
        fd = open_port(path);
        if (fd == -EBUSY) {
                t->busy_backoff_s = t->busy_backoff_s ? MIN(t->busy_backoff_s * 2, BUSY_BACKOFF_MAX_S) : 1;
                if (t->busy_backoff_s < BUSY_BACKOFF_MAX_S || t->busy_logged++ % 20 == 0)
                        logf_(t, LOG_WARNING,
                              "%s is held by another process (another guestlink-agent, or qemu-ga?); retrying in %u s",
                              path, t->busy_backoff_s);
                retry_in(t, t->busy_backoff_s * 1000);
                return;
        }
        if (fd == -ENOENT || fd == -ENODEV || fd == -ENXIO) {
                /* Named in sysfs but the node is not there (yet), or just
                 * unplugged: look again shortly, a few times. */
                if (t->enoent_retries++ < 25)
                        retry_in(t, ENOENT_RETRY_MS);
                else if (t->uevent_fd < 0)
                        retry_in(t, NO_NETLINK_RESCAN_S * 1000); /* no uevent will tell us */
                return;
        }
        if (fd < 0) {
                logf_(t, LOG_ERR, "cannot open %s: %s; retrying in %u s", path, g_strerror(-fd), BUSY_BACKOFF_MAX_S);
                retry_in(t, BUSY_BACKOFF_MAX_S * 1000);
                return;
        }
        t->busy_backoff_s = 0;
        t->enoent_retries = 0;
        g_free(t->path);
        t->path = g_steal_pointer(&path);
        t->fd = fd;
        logf_(t, LOG_INFO, "opened %s", t->path);
        check_state(t);
}

static void port_gone(GlTransport *t, int error) {
        logf_(t, LOG_INFO, "%s went away (%s); waiting for it to come back", t->path ? t->path : "port",
              g_strerror(error));
        set_down(t);
        close_fd(&t->fd);
        wait_for_port(t);
}

/*
 * Reads the port's state without consuming data (FACTS.md):
 *   POLLIN|POLLHUP   no host: read() would return 0
 *   POLLHUP alone    hot-unplugged: read() fails with ENODEV
 *   otherwise        a host is connected
 */
static void check_state(GlTransport *t) {
        struct pollfd p = { .fd = t->fd, .events = POLLIN | POLLOUT };

        if (t->fd < 0)
                return;
        if (poll(&p, 1, 0) < 0)
                return;
        if (p.revents & POLLNVAL) {
                port_gone(t, EBADF);
                return;
        }
        if ((p.revents & POLLHUP) && !(p.revents & POLLIN)) {
                char c;
                if (read(t->fd, &c, 1) < 0 && errno == ENODEV) {
                        port_gone(t, ENODEV);
                        return;
                }
        }
        if (p.revents & POLLHUP) {
                if (t->up)
                        t->ops.readable(t->userdata); /* drains, then read() == 0 takes us down */
                return;
        }
        set_up(t);
}

static gboolean on_sigio(int fd, GIOCondition cond, gpointer userdata) {
        GlTransport *t = userdata;
        struct signalfd_siginfo si;

        (void) cond;
        while (read(fd, &si, sizeof(si)) == sizeof(si))
                ;
        check_state(t);
        return G_SOURCE_CONTINUE;
}

static gboolean on_uevent(int fd, GIOCondition cond, gpointer userdata) {
        GlTransport *t = userdata;
        char buf[UEVENT_BUFFER];
        bool relevant = false;
        ssize_t n;

        (void) cond;
        while ((n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
                buf[n] = '\0';
                /* "add@/devices/.../virtio-ports/vport0p1", then KEY=value
                 * strings; only virtio-ports events matter. */
                if (memmem(buf, (size_t) n, "virtio-ports", strlen("virtio-ports")))
                        relevant = true;
        }
        if (relevant && t->fd < 0) {
                t->enoent_retries = 0;
                wait_for_port(t);
        }
        return G_SOURCE_CONTINUE;
}

static int start_virtio(GlTransport *t) {
        struct sockaddr_nl nl = { .nl_family = AF_NETLINK, .nl_groups = 1 };
        sigset_t mask;

        /* SIGIO is blocked in every thread (see main.c) and read here. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGIO);
        if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
                return -EINVAL;
        t->sigio_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (t->sigio_fd < 0)
                return -errno;
        t->sigio_watch = g_unix_fd_add(t->sigio_fd, G_IO_IN, on_sigio, t);

        t->uevent_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
        if (t->uevent_fd >= 0 && bind(t->uevent_fd, (struct sockaddr *) &nl, sizeof(nl)) < 0)
                close_fd(&t->uevent_fd);
        if (t->uevent_fd >= 0)
                t->uevent_watch = g_unix_fd_add(t->uevent_fd, G_IO_IN, on_uevent, t);
        else
                logf_(t, LOG_WARNING, "no kernel uevents (%s): looking for the port every %u s instead",
                      g_strerror(errno), NO_NETLINK_RESCAN_S);
        wait_for_port(t);
        if (t->fd < 0)
                logf_(t, LOG_INFO, "waiting for virtio-serial port %s", t->port);
        return 0;
}

/* ---- tty ---- */

static gboolean on_tty_retry(gpointer userdata);

static void open_tty(GlTransport *t) {
        struct termios tio;
        int fd = open(t->device, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

        if (fd < 0 || tcgetattr(fd, &tio) < 0) {
                logf_(t, LOG_ERR, "cannot open tty %s: %s; retrying in %u s", t->device, g_strerror(errno),
                      BUSY_BACKOFF_MAX_S);
                if (fd >= 0)
                        close(fd);
                t->retry_timer = g_timeout_add_seconds(BUSY_BACKOFF_MAX_S, on_tty_retry, t);
                return;
        }
        cfmakeraw(&tio);
        tio.c_cflag |= CLOCAL | CREAD; /* no modem control lines on a virtual serial port */
        tio.c_cc[VMIN] = 1;
        tio.c_cc[VTIME] = 0;
        (void) tcsetattr(fd, TCSANOW, &tio);
        t->fd = fd;
        g_free(t->path);
        t->path = g_strdup(t->device);
        logf_(t, LOG_INFO, "opened %s", t->path);
        set_up(t); /* a tty cannot tell whether the host listens */
}

static gboolean on_tty_retry(gpointer userdata) {
        GlTransport *t = userdata;

        t->retry_timer = 0;
        open_tty(t);
        return G_SOURCE_REMOVE;
}

/* ---- vsock ---- */

static gboolean on_listen(int fd, GIOCondition cond, gpointer userdata) {
        GlTransport *t = userdata;
        int c;

        struct sockaddr_vm peer = { 0 };
        socklen_t len = sizeof(peer);

        (void) cond;
        c = accept4(fd, (struct sockaddr *) &peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
                return G_SOURCE_CONTINUE;
        if (peer.svm_family != AF_VSOCK || peer.svm_cid != t->vsock_peer_cid) {
                /* a process in the guest (vsock_loopback) or another VM is
                 * not the host: it must not issue the host's requests */
                logf_(t, LOG_WARNING, "refused a vsock connection from CID %u (only CID %u is the host)", peer.svm_cid,
                      t->vsock_peer_cid);
                close(c);
                return G_SOURCE_CONTINUE;
        }
        t->fd = c;
        g_free(t->path);
        t->path = g_strdup_printf("vsock:%u", t->vsock_port);
        /* One host at a time: others wait in the backlog. */
        t->listen_watch = 0;
        set_up(t);
        return G_SOURCE_REMOVE;
}

static int start_vsock(GlTransport *t) {
        struct sockaddr_vm addr = {
                .svm_family = AF_VSOCK,
                .svm_cid = VMADDR_CID_ANY,
                .svm_port = t->vsock_port,
        };

        t->listen_fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (t->listen_fd < 0)
                return -errno;
        if (bind(t->listen_fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(t->listen_fd, 1) < 0) {
                int r = -errno;
                close_fd(&t->listen_fd);
                return r;
        }
        t->listen_watch = g_unix_fd_add(t->listen_fd, G_IO_IN, on_listen, t);
        logf_(t, LOG_INFO, "listening on vsock port %u", t->vsock_port);
        return 0;
}

int gl_transport_start(GlTransport *t) {
        switch (t->type) {
        case GL_TRANSPORT_VIRTIO_SERIAL:
                return start_virtio(t);
        case GL_TRANSPORT_TTY:
                if (!t->device)
                        return -EINVAL;
                open_tty(t);
                return 0;
        case GL_TRANSPORT_VSOCK:
                return start_vsock(t);
        }
        return -EINVAL;
}

/* ---- I/O ---- */

/* The peer side closed (virtio: host disconnected; vsock: client left). */
static void peer_left(GlTransport *t) {
        switch (t->type) {
        case GL_TRANSPORT_VIRTIO_SERIAL:
                /* EOF is not sticky: keep the fd, sleep until SIGIO. */
                set_down(t);
                check_state(t); /* it may already be back */
                break;
        case GL_TRANSPORT_VSOCK:
                set_down(t);
                close_fd(&t->fd);
                if (!t->listen_watch && t->listen_fd >= 0)
                        t->listen_watch = g_unix_fd_add(t->listen_fd, G_IO_IN, on_listen, t);
                break;
        case GL_TRANSPORT_TTY:
                set_down(t);
                close_fd(&t->fd);
                t->retry_timer = g_timeout_add_seconds(1, on_tty_retry, t);
                break;
        }
}

static ssize_t io_error(GlTransport *t, int error) {
        if (error == EAGAIN || error == EINTR)
                return -EAGAIN;
        if (error == ENODEV && t->type == GL_TRANSPORT_VIRTIO_SERIAL) {
                port_gone(t, ENODEV);
                return -ENODEV;
        }
        logf_(t, LOG_WARNING, "I/O error on %s: %s", t->path ? t->path : "channel", g_strerror(error));
        peer_left(t);
        return -error;
}

ssize_t gl_transport_read(GlTransport *t, void *buf, size_t len) {
        ssize_t n;

        if (t->fd < 0 || !t->up)
                return -ENOTCONN;
        n = read(t->fd, buf, len);
        if (n > 0)
                return n;
        if (n == 0) {
                peer_left(t);
                return -ENOTCONN;
        }
        return io_error(t, errno);
}

ssize_t gl_transport_writev(GlTransport *t, const GlIovec *iov, size_t n) {
        struct iovec v[8];
        ssize_t r;

        if (t->fd < 0 || !t->up)
                return -ENOTCONN;
        if (n > G_N_ELEMENTS(v))
                n = G_N_ELEMENTS(v);
        for (size_t i = 0; i < n; i++)
                v[i] = (struct iovec){ (void *) iov[i].base, iov[i].len };
        r = writev(t->fd, v, (int) n);
        if (r >= 0)
                return r;
        return io_error(t, errno);
}
