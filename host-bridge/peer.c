/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "peer.h"

#include <errno.h>

/* Bytes read per readiness notification before yielding to other sources,
 * so that one busy guest cannot starve the others. */
#define PEER_READ_BUDGET (256 * 1024)
#define PEER_READ_CHUNK (64 * 1024)

struct GlPeer {
        GlSession *session;
        GlLink *link;
        GlPeerCallbacks cb;
        void *userdata;
        GSource *timer;  /* session deadlines */
        GSource *resume; /* end of a throttled second */
        GlPeerThrottle throttle;
        uint64_t window_start_ms, window_bytes, window_frames_base;
        uint64_t throttled;
        unsigned busy; /* nesting depth of callbacks into the owner */
        bool free_pending;
        bool read_paused;
};

uint64_t gl_peer_now_ms(void) {
        return (uint64_t) g_get_monotonic_time() / 1000;
}

char *gl_peer_new_instance(void) {
        GString *s = g_string_sized_new(32);

        for (int i = 0; i < 4; i++)
                g_string_append_printf(s, "%08x", g_random_int());
        return g_string_free(s, FALSE);
}

static gboolean timer_dispatch(GSource *source, GSourceFunc callback, gpointer userdata) {
        (void) source;
        return callback(userdata);
}

static const GSourceFuncs timer_funcs = { .dispatch = timer_dispatch };

static GSource *timer_new(GSourceFunc fn, void *userdata, const char *name) {
        GSource *s = g_source_new((GSourceFuncs *) &timer_funcs, sizeof(GSource));

        g_source_set_callback(s, fn, userdata, NULL);
        g_source_set_static_name(s, name);
        g_source_set_ready_time(s, -1);
        g_source_attach(s, g_main_context_get_thread_default());
        return s;
}

static void peer_really_free(GlPeer *p) {
        if (p->timer) {
                g_source_destroy(p->timer);
                g_source_unref(p->timer);
        }
        if (p->resume) {
                g_source_destroy(p->resume);
                g_source_unref(p->resume);
        }
        p->link = gl_link_free(p->link);
        p->session = gl_session_free(p->session);
        g_free(p);
}

/* Returns false when the owner freed the peer meanwhile. */
static bool leave(GlPeer *p) {
        p->busy--;
        if (p->busy == 0 && p->free_pending) {
                peer_really_free(p);
                return false;
        }
        return !p->free_pending;
}

/* Hands every pending session event to the owner.  Returns false if the
 * peer was freed. */
static bool deliver(GlPeer *p) {
        GlSessionEvent ev;

        p->busy++;
        while (!p->free_pending && gl_session_receive(p->session, &ev) > 0) {
                if (p->cb.event)
                        p->cb.event(p, &ev, p->userdata);
                else
                        gl_message_free(ev.message);
        }
        return leave(p);
}

static void arm_timer(GlPeer *p) {
        uint64_t d = gl_session_next_deadline(p->session);

        if (d == UINT64_MAX)
                g_source_set_ready_time(p->timer, -1);
        else
                g_source_set_ready_time(p->timer, (gint64) d * 1000);
}

static void closed(GlPeer *p, int error) {
        gl_peer_detach(p);
        p->busy++;
        if (p->cb.closed)
                p->cb.closed(p, error, p->userdata);
        leave(p);
}

/* Writes what the session has; false if the link failed (and was closed). */
static bool flush(GlPeer *p) {
        while (p->link) {
                GlIovec iov[GL_SESSION_IOV_MAX];
                size_t n = gl_session_output(p->session, iov);
                ssize_t w;

                if (n == 0) {
                        gl_link_want_write(p->link, false);
                        return true;
                }
                w = gl_link_writev(p->link, iov, n);
                if (w == -EAGAIN) {
                        gl_link_want_write(p->link, true);
                        return true;
                }
                if (w < 0) {
                        closed(p, (int) w);
                        return false;
                }
                gl_session_output_advance(p->session, (size_t) w);
        }
        return true;
}

void gl_peer_kick(GlPeer *p) {
        /* flush() may end the link, and the owner may free us from closed() */
        p->busy++;
        if (p->link)
                flush(p);
        if (leave(p))
                arm_timer(p);
}

static gboolean timer_fired(gpointer userdata) {
        GlPeer *p = userdata;

        p->busy++;
        gl_session_expire(p->session, gl_peer_now_ms());
        if (!leave(p) || !deliver(p))
                return G_SOURCE_CONTINUE;
        gl_peer_kick(p);
        return G_SOURCE_CONTINUE;
}

static gboolean resume_fired(gpointer userdata) {
        GlPeer *p = userdata;

        g_source_set_ready_time(p->resume, -1);
        p->read_paused = false;
        p->window_start_ms = gl_peer_now_ms();
        p->window_bytes = 0;
        p->window_frames_base = gl_session_stats(p->session)->frames_in;
        if (p->link)
                gl_link_want_read(p->link, true);
        return G_SOURCE_CONTINUE;
}

/* True when the throttle stopped reading for the rest of this second. */
static bool throttle_check(GlPeer *p) {
        uint64_t now = gl_peer_now_ms();
        uint64_t frames;

        if (!p->throttle.max_bytes_per_second && !p->throttle.max_frames_per_second)
                return false;
        if (now - p->window_start_ms >= 1000) {
                p->window_start_ms = now;
                p->window_bytes = 0;
                p->window_frames_base = gl_session_stats(p->session)->frames_in;
                return false;
        }
        frames = gl_session_stats(p->session)->frames_in - p->window_frames_base;
        if ((p->throttle.max_bytes_per_second && p->window_bytes >= p->throttle.max_bytes_per_second) ||
            (p->throttle.max_frames_per_second && frames >= p->throttle.max_frames_per_second)) {
                p->throttled++;
                p->read_paused = true;
                gl_link_want_read(p->link, false);
                g_source_set_ready_time(p->resume, (gint64) (p->window_start_ms + 1000) * 1000);
                return true;
        }
        return false;
}

static void link_notify(GlLink *link, unsigned conditions, void *userdata) {
        GlPeer *p = userdata;
        size_t budget = PEER_READ_BUDGET;

        (void) link;
        if (conditions & GL_LINK_WRITABLE) {
                if (!flush(p))
                        return;
        }
        if (!(conditions & GL_LINK_READABLE))
                return;
        while (p->link && budget > 0 && !p->read_paused) {
                size_t space;
                void *buf = gl_session_input_space(p->session, PEER_READ_CHUNK, &space);
                ssize_t n;

                if (!buf || space == 0) {
                        /* the decoder is full of a frame's worth; handing out events frees it */
                        if (!deliver(p))
                                return;
                        buf = gl_session_input_space(p->session, PEER_READ_CHUNK, &space);
                        if (!buf || space == 0)
                                break;
                }
                if (space > budget)
                        space = budget;
                n = gl_link_read(p->link, buf, space);
                if (n == -EAGAIN)
                        break;
                if (n <= 0) {
                        if (!deliver(p))
                                return;
                        closed(p, (int) n);
                        return;
                }
                gl_session_input_commit(p->session, (size_t) n);
                budget -= (size_t) n;
                p->window_bytes += (uint64_t) n;
                if (!deliver(p))
                        return;
                if (throttle_check(p))
                        break;
        }
        gl_peer_kick(p);
}

GlPeer *gl_peer_new(const GlSessionConfig *config, const GlPeerCallbacks *callbacks, void *userdata) {
        GlPeer *p = g_new0(GlPeer, 1);

        p->session = gl_session_new(config);
        if (!p->session) {
                g_free(p);
                return NULL;
        }
        if (callbacks)
                p->cb = *callbacks;
        p->userdata = userdata;
        p->timer = timer_new(timer_fired, p, "gl-peer-timer");
        p->resume = timer_new(resume_fired, p, "gl-peer-throttle");
        return p;
}

GlPeer *gl_peer_free(GlPeer *p) {
        if (!p)
                return NULL;
        if (p->busy > 0) {
                /* freed from one of its own callbacks: finish when they return */
                p->free_pending = true;
                p->link = gl_link_free(p->link);
                return NULL;
        }
        peer_really_free(p);
        return NULL;
}

GlSession *gl_peer_session(GlPeer *p) {
        return p->session;
}

void gl_peer_attach(GlPeer *p, GlLink *link) {
        gl_peer_detach(p);
        p->link = link;
        gl_link_set_notify(link, link_notify, p);
        p->read_paused = false;
        p->window_start_ms = gl_peer_now_ms();
        p->window_bytes = 0;
        p->window_frames_base = gl_session_stats(p->session)->frames_in;
        g_source_set_ready_time(p->resume, -1);
        gl_link_want_read(link, true);
        gl_session_connected(p->session);
        if (!deliver(p))
                return;
        gl_peer_kick(p);
}

void gl_peer_detach(GlPeer *p) {
        if (!p->link)
                return;
        p->link = gl_link_free(p->link);
        gl_session_disconnected(p->session);
        arm_timer(p);
}

bool gl_peer_attached(const GlPeer *p) {
        return p->link != NULL;
}

GlLink *gl_peer_link(GlPeer *p) {
        return p->link;
}

void gl_peer_set_throttle(GlPeer *p, const GlPeerThrottle *throttle) {
        p->throttle = *throttle;
}

uint64_t gl_peer_throttled(const GlPeer *p) {
        return p->throttled;
}

int gl_peer_request(GlPeer *p, const char *method, json_object *params, uint64_t timeout_ms, uint64_t *ret_id) {
        int r = gl_session_request(p->session, method, params, NULL, 0, 0, gl_peer_now_ms(), timeout_ms, ret_id);

        gl_peer_kick(p);
        return r;
}

int gl_peer_respond(GlPeer *p, uint64_t id, json_object *result) {
        int r = gl_session_respond(p->session, id, result, NULL, 0, 0);

        gl_peer_kick(p);
        return r;
}

int gl_peer_respond_error(GlPeer *p, uint64_t id, GlErrorCode code, const char *message) {
        int r = gl_session_respond_error(p->session, id, code, message);

        gl_peer_kick(p);
        return r;
}

int gl_peer_send_event(GlPeer *p, const char *name, json_object *data, unsigned flags) {
        int r = gl_session_send_event(p->session, name, data, NULL, 0, flags);

        gl_peer_kick(p);
        return r;
}
