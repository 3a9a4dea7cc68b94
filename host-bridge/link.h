/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * GlLink: a byte stream to one peer, driven by the thread-default
 * GMainContext.  The session layer does not care what carries its bytes:
 * a unix socket (a QEMU chardev socket, the bridge's control socket) or a
 * libvirt stream (virDomainOpenChannel, also over remote URIs) look the same
 * through this interface.
 *
 * A link reports readiness through its notify callback; the owner then
 * calls gl_link_read()/gl_link_writev() until they return -EAGAIN.  Read
 * notifications are level-triggered while reading is enabled; write
 * notifications are delivered only while gl_link_want_write() is on.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "frame.h" /* GlIovec */

typedef struct GlLink GlLink;

typedef enum GlLinkCondition {
        GL_LINK_READABLE = 1u << 0,
        GL_LINK_WRITABLE = 1u << 1,
        GL_LINK_HANGUP = 1u << 2, /* the peer went away; reads may still drain data */
} GlLinkCondition;

typedef void (*GlLinkNotify)(GlLink *link, unsigned conditions, void *userdata);

typedef struct GlLinkOps {
        const char *kind; /* "socket", "libvirt-stream" */
        /* > 0 bytes read, 0 end of stream, -EAGAIN, or another -errno. */
        ssize_t (*read)(GlLink *link, void *buf, size_t len);
        /* >= 0 bytes written, -EAGAIN, or another -errno. */
        ssize_t (*writev)(GlLink *link, const GlIovec *iov, size_t n);
        void (*set_events)(GlLink *link, bool want_read, bool want_write);
        void (*free)(GlLink *link); /* closes the link; no notification afterwards */
} GlLinkOps;

/* Implementations embed this as their first member. */
struct GlLink {
        const GlLinkOps *ops;
        GlLinkNotify notify;
        void *userdata;
        bool want_read, want_write;
};

/* For implementations: call from their readiness callbacks. */
void gl_link_dispatch(GlLink *link, unsigned conditions);

void gl_link_set_notify(GlLink *link, GlLinkNotify notify, void *userdata);
ssize_t gl_link_read(GlLink *link, void *buf, size_t len);
ssize_t gl_link_writev(GlLink *link, const GlIovec *iov, size_t n);
void gl_link_want_read(GlLink *link, bool on);
void gl_link_want_write(GlLink *link, bool on);
const char *gl_link_kind(const GlLink *link);
GlLink *gl_link_free(GlLink *link);

/* A link over a connected stream socket (or any pollable fd).  Takes
 * ownership of fd and makes it non-blocking and close-on-exec. */
GlLink *gl_link_new_fd(int fd);
/* For fd links: the fd, or -1. */
int gl_link_fd(const GlLink *link);
