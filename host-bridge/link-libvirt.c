/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A GlLink over a libvirt stream (virDomainOpenChannel), kind
 * "libvirt-stream".  The stream is non-blocking; its readiness comes from
 * libvirt's stream event callback, which libvirt-glib runs from the
 * thread-default GMainContext.  For remote streams libvirt reports READABLE
 * for as long as received data is buffered (level-triggered, as link.h
 * wants) and WRITABLE whenever asked for, so WRITABLE is only registered
 * while the owner wants to write.
 */
#include "config.h"

#include <errno.h>

#include "libvirt-private.h"
#include "log.h"

/* One virStreamRecv()/virStreamSend() moves at most this much: libvirt's
 * RPC messages are limited in size and our frames are far smaller. */
#define STREAM_IO_MAX (256u * 1024u)

typedef struct StreamLink {
        GlLink link;
        virStreamPtr stream;
        bool callback_added;
        int events;       /* registered VIR_STREAM_EVENT_* mask */
        bool dispatching; /* inside our stream callback */
        bool freed;       /* gl_link_free() ran during the callback */
} StreamLink;

static ssize_t stream_errno(const char *what) {
        gl_log(LOG_DEBUG, "%s: %s", what, virGetLastErrorMessage());
        virResetLastError();
        return -EIO;
}

static ssize_t stream_read(GlLink *link, void *buf, size_t len) {
        StreamLink *l = (StreamLink *) link;
        int r;

        r = virStreamRecv(l->stream, buf, MIN(len, (size_t) STREAM_IO_MAX));
        if (r == -2)
                return -EAGAIN;
        if (r < 0)
                return stream_errno("virStreamRecv");
        return r;
}

static ssize_t stream_writev(GlLink *link, const GlIovec *iov, size_t n) {
        StreamLink *l = (StreamLink *) link;
        size_t total = 0;

        for (size_t i = 0; i < n; i++) {
                size_t want = MIN(iov[i].len, (size_t) STREAM_IO_MAX);
                int r;

                if (want == 0)
                        continue;
                r = virStreamSend(l->stream, iov[i].base, want);
                if (r == -2)
                        return total > 0 ? (ssize_t) total : -EAGAIN;
                if (r < 0) {
                        if (total > 0)
                                return (ssize_t) total; /* the error comes back on the next call */
                        return stream_errno("virStreamSend");
                }
                total += (size_t) r;
                if ((size_t) r < iov[i].len)
                        break;
        }
        return (ssize_t) total;
}

static gboolean stream_free_idle(gpointer data) {
        virStreamFree(data);
        return G_SOURCE_REMOVE;
}

/* Everything but the final virStreamFree() and the struct itself. */
static void stream_close(StreamLink *l) {
        if (l->callback_added && virStreamEventRemoveCallback(l->stream) < 0)
                (void) stream_errno("virStreamEventRemoveCallback");
        l->callback_added = false;
        /* an aborted stream tells libvirtd to drop the channel at once; a
         * stream that already failed refuses, which is fine */
        if (virStreamAbort(l->stream) < 0)
                virResetLastError();
}

static void stream_event(virStreamPtr stream, int events, void *opaque) {
        StreamLink *l = opaque;
        unsigned c = 0;

        (void) stream;
        if (events & VIR_STREAM_EVENT_READABLE)
                c |= GL_LINK_READABLE;
        if (events & VIR_STREAM_EVENT_WRITABLE)
                c |= GL_LINK_WRITABLE;
        if (events & (VIR_STREAM_EVENT_HANGUP | VIR_STREAM_EVENT_ERROR))
                c |= GL_LINK_HANGUP | GL_LINK_READABLE; /* a read reports EOF or the error */

        l->dispatching = true;
        gl_link_dispatch(&l->link, c);
        l->dispatching = false;
        if (l->freed) {
                /* libvirt still uses the stream after we return: free it from
                 * the main loop, after this dispatch is over */
                GSource *idle = g_idle_source_new();

                g_source_set_callback(idle, stream_free_idle, l->stream, NULL);
                g_source_set_static_name(idle, "gl-link-libvirt-free");
                g_source_attach(idle, g_main_context_get_thread_default());
                g_source_unref(idle);
                g_free(l);
        }
}

static void stream_set_events(GlLink *link, bool want_read, bool want_write) {
        StreamLink *l = (StreamLink *) link;
        int events = (want_read ? VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_HANGUP | VIR_STREAM_EVENT_ERROR : 0) |
                     (want_write ? VIR_STREAM_EVENT_WRITABLE : 0);

        if (l->callback_added && events == l->events)
                return;
        if (!l->callback_added) {
                if (virStreamEventAddCallback(l->stream, events, stream_event, l, NULL) < 0) {
                        gl_log(LOG_WARNING, "Failed to watch libvirt stream: %s, ignoring", virGetLastErrorMessage());
                        virResetLastError();
                        return;
                }
                l->callback_added = true;
        } else if (virStreamEventUpdateCallback(l->stream, events) < 0) {
                gl_log(LOG_WARNING, "Failed to update libvirt stream events: %s, ignoring", virGetLastErrorMessage());
                virResetLastError();
                return;
        }
        l->events = events;
}

static void stream_free(GlLink *link) {
        StreamLink *l = (StreamLink *) link;

        stream_close(l);
        if (l->dispatching) {
                l->freed = true; /* stream_event() finishes the job */
                return;
        }
        virStreamFree(l->stream);
        g_free(l);
}

static const GlLinkOps stream_ops = {
        .kind = "libvirt-stream",
        .read = stream_read,
        .writev = stream_writev,
        .set_events = stream_set_events,
        .free = stream_free,
};

GlLink *link_libvirt_new(virStreamPtr stream, GError **error) {
        StreamLink *l = g_new0(StreamLink, 1);

        l->link.ops = &stream_ops;
        l->stream = stream;
        /* registered now (with no events) so that a failure shows here */
        if (virStreamEventAddCallback(stream, 0, stream_event, l, NULL) < 0) {
                (void) libvirt_set_error(error, "Failed to watch the channel stream");
                if (virStreamAbort(stream) < 0)
                        virResetLastError();
                virStreamFree(stream);
                g_free(l);
                return NULL;
        }
        l->callback_added = true;
        return &l->link;
}
