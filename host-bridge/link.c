/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "link.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib.h>
#include <sys/uio.h>
#include <unistd.h>

void gl_link_dispatch(GlLink *link, unsigned conditions) {
        if (!link->want_read)
                conditions &= ~(unsigned) GL_LINK_READABLE;
        if (!link->want_write)
                conditions &= ~(unsigned) GL_LINK_WRITABLE;
        if (conditions && link->notify)
                link->notify(link, conditions, link->userdata);
}

void gl_link_set_notify(GlLink *link, GlLinkNotify notify, void *userdata) {
        link->notify = notify;
        link->userdata = userdata;
}

ssize_t gl_link_read(GlLink *link, void *buf, size_t len) {
        return link->ops->read(link, buf, len);
}

ssize_t gl_link_writev(GlLink *link, const GlIovec *iov, size_t n) {
        return link->ops->writev(link, iov, n);
}

void gl_link_want_read(GlLink *link, bool on) {
        if (link->want_read == on)
                return;
        link->want_read = on;
        link->ops->set_events(link, link->want_read, link->want_write);
}

void gl_link_want_write(GlLink *link, bool on) {
        if (link->want_write == on)
                return;
        link->want_write = on;
        link->ops->set_events(link, link->want_read, link->want_write);
}

const char *gl_link_kind(const GlLink *link) {
        return link->ops->kind;
}

GlLink *gl_link_free(GlLink *link) {
        if (link)
                link->ops->free(link);
        return NULL;
}

/* ---- fd links ---- */

typedef struct FdLink {
        GlLink link;
        int fd;
        GSource *source;
        gpointer tag;
} FdLink;

static ssize_t fd_read(GlLink *link, void *buf, size_t len) {
        FdLink *l = (FdLink *) link;

        for (;;) {
                ssize_t n = read(l->fd, buf, len);
                if (n >= 0)
                        return n;
                if (errno == EINTR)
                        continue;
                return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
}

static ssize_t fd_writev(GlLink *link, const GlIovec *iov, size_t n) {
        FdLink *l = (FdLink *) link;
        struct iovec v[8];

        if (n > G_N_ELEMENTS(v))
                n = G_N_ELEMENTS(v);
        for (size_t i = 0; i < n; i++)
                v[i] = (struct iovec){ .iov_base = (void *) iov[i].base, .iov_len = iov[i].len };
        for (;;) {
                ssize_t w = writev(l->fd, v, (int) n);
                if (w >= 0)
                        return w;
                if (errno == EINTR)
                        continue;
                return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
}

static gboolean fd_ready(gint fd, GIOCondition cond, gpointer userdata) {
        FdLink *l = userdata;
        unsigned c = 0;

        (void) fd;
        /* the source's own fd entry watches nothing; ours is the tag */
        cond = g_source_query_unix_fd(l->source, l->tag);
        if (cond & G_IO_IN)
                c |= GL_LINK_READABLE;
        if (cond & G_IO_OUT)
                c |= GL_LINK_WRITABLE;
        if (cond & (G_IO_HUP | G_IO_ERR | G_IO_NVAL))
                c |= GL_LINK_HANGUP | GL_LINK_READABLE; /* a read reports EOF or the error */
        gl_link_dispatch(&l->link, c);
        return G_SOURCE_CONTINUE;
}

static void fd_set_events(GlLink *link, bool want_read, bool want_write) {
        FdLink *l = (FdLink *) link;
        GIOCondition cond = (want_read ? G_IO_IN | G_IO_HUP | G_IO_ERR : 0) | (want_write ? G_IO_OUT : 0);

        if (!l->source) {
                l->source = g_unix_fd_source_new(l->fd, 0);
                g_source_set_callback(l->source, G_SOURCE_FUNC(fd_ready), l, NULL);
                g_source_set_static_name(l->source, "gl-link-fd");
                g_source_attach(l->source, g_main_context_get_thread_default());
                l->tag = g_source_add_unix_fd(l->source, l->fd, cond);
                return;
        }
        g_source_modify_unix_fd(l->source, l->tag, cond);
}

static void fd_free(GlLink *link) {
        FdLink *l = (FdLink *) link;

        if (l->source) {
                g_source_destroy(l->source);
                g_source_unref(l->source);
        }
        if (l->fd >= 0)
                close(l->fd);
        g_free(l);
}

static const GlLinkOps fd_ops = {
        .kind = "socket",
        .read = fd_read,
        .writev = fd_writev,
        .set_events = fd_set_events,
        .free = fd_free,
};

GlLink *gl_link_new_fd(int fd) {
        FdLink *l = g_new0(FdLink, 1);
        int flags;

        l->link.ops = &fd_ops;
        l->fd = fd;
        flags = fcntl(fd, F_GETFL);
        if (flags >= 0)
                (void) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        flags = fcntl(fd, F_GETFD);
        if (flags >= 0)
                (void) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        fd_set_events(&l->link, false, false);
        return &l->link;
}

int gl_link_fd(const GlLink *link) {
        return link->ops == &fd_ops ? ((const FdLink *) link)->fd : -1;
}
