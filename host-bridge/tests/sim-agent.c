/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sim-agent.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SIM_VERSION "0.1.0"
#define SIM_FLOOD_BATCH 512

struct SimAgent {
        char *socket_path;
        char *software, *hello_software, *hostname;
        char *instance;
        size_t stats_pad_bytes;
        bool no_info, flood_stats, hold;

        int listen_fd;
        GSource *listen_source;
        GlPeer *peer;
        GSource *stats_timer, *heartbeat_timer, *flood_timer;
        unsigned stats_interval, heartbeat_interval;
        uint64_t connects, stats_sent, heartbeats_sent, flood_sent;
        int64_t start_us;
};

/* ---- a link that rewrites the software string of outgoing HELLO frames ---- */

typedef struct HelloLink {
        GlLink link;
        GlLink *inner;
        char *software; /* NULL: no rewriting */
        bool hold;      /* writes fail with EAGAIN, and writability is not watched */
} HelloLink;

static int write_fd_all(int fd, const uint8_t *p, size_t len) {
        while (len > 0) {
                ssize_t w = write(fd, p, len);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN) {
                        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                        (void) poll(&pfd, 1, 1000);
                        continue;
                }
                if (w < 0)
                        return -errno;
                p += w;
                len -= (size_t) w;
        }
        return 0;
}

static ssize_t hello_read(GlLink *link, void *buf, size_t len) {
        return gl_link_read(((HelloLink *) link)->inner, buf, len);
}

/* Each call carries the rest of one frame (gl_session_output()), and since
 * every call writes all of it, a call always starts at a frame boundary. */
static ssize_t hello_writev(GlLink *link, const GlIovec *iov, size_t n) {
        HelloLink *l = (HelloLink *) link;
        g_autoptr(GByteArray) b = g_byte_array_new();
        GlFrameHeader h;
        int r;

        if (l->hold)
                return -EAGAIN;
        if (!l->software)
                return gl_link_writev(l->inner, iov, n);
        for (size_t i = 0; i < n; i++)
                g_byte_array_append(b, iov[i].base, (guint) iov[i].len);
        if (b->len >= GL_FRAME_HEADER_SIZE && gl_frame_header_unpack(b->data, &h) && h.kind == GL_FRAME_HELLO &&
            b->len == GL_FRAME_HEADER_SIZE + (size_t) h.json_len + h.attach_len) {
                g_autofree char *json = g_strndup((const char *) b->data + GL_FRAME_HEADER_SIZE, h.json_len);
                g_autoptr(json_object) o = json_tokener_parse(json);
                if (o) {
                        size_t jlen, grow;
                        const char *text;
                        uint32_t attach;
                        uint8_t hdr[GL_FRAME_HEADER_SIZE];
                        g_autoptr(GByteArray) out = g_byte_array_new();

                        json_object_object_add(o, "software", json_object_new_string(l->software));
                        text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &jlen);
                        /* a padded retry must stay within 16 KiB: give up padding */
                        grow = jlen > h.json_len ? jlen - h.json_len : 0;
                        attach = h.attach_len > grow ? h.attach_len - (uint32_t) grow : 0;
                        h.json_len = (uint32_t) jlen;
                        h.attach_len = attach;
                        {
                                g_autofree uint8_t *zeros = g_malloc0(attach + 1);
                                gl_frame_encode(&h, text, jlen, zeros, attach, hdr);
                                g_byte_array_append(out, hdr, sizeof(hdr));
                                g_byte_array_append(out, (const guint8 *) text, (guint) jlen);
                                g_byte_array_append(out, zeros, attach);
                        }
                        r = write_fd_all(gl_link_fd(l->inner), out->data, out->len);
                        return r < 0 ? r : (ssize_t) b->len;
                }
        }
        r = write_fd_all(gl_link_fd(l->inner), b->data, b->len);
        return r < 0 ? r : (ssize_t) b->len;
}

static void hello_set_events(GlLink *link, bool want_read, bool want_write) {
        HelloLink *l = (HelloLink *) link;

        gl_link_want_read(l->inner, want_read);
        gl_link_want_write(l->inner, want_write && !l->hold);
}

static void hello_free(GlLink *link) {
        HelloLink *l = (HelloLink *) link;

        gl_link_free(l->inner);
        g_free(l->software);
        g_free(l);
}

static const GlLinkOps hello_ops = {
        .kind = "socket",
        .read = hello_read,
        .writev = hello_writev,
        .set_events = hello_set_events,
        .free = hello_free,
};

static void hello_inner_notify(GlLink *inner, unsigned conditions, void *userdata) {
        (void) inner;
        gl_link_dispatch(userdata, conditions);
}

static GlLink *hello_link_new(int fd, const char *software, bool hold) {
        HelloLink *l = g_new0(HelloLink, 1);

        l->hold = hold;
        l->link.ops = &hello_ops;
        l->inner = gl_link_new_fd(fd);
        l->software = g_strdup(software);
        gl_link_set_notify(l->inner, hello_inner_notify, &l->link);
        return &l->link;
}

/* ---- stats and info ---- */

static void add_int(json_object *o, const char *k, int64_t v) {
        json_object_object_add(o, k, json_object_new_int64(v));
}

static void add_num(json_object *o, const char *k, double v) {
        json_object_object_add(o, k, json_object_new_double(v));
}

static void add_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v));
}

json_object *sim_stats_object(uint64_t seq, size_t pad_bytes) {
        static const char *const mounts[][3] = { { "/", "ext4", "/dev/vda1" },
                                                 { "/boot", "ext4", "/dev/vda2" },
                                                 { "/home", "xfs", "/dev/vdb1" } };
        static const char *const procs[] = { "systemd", "sshd", "postgres", "nginx", "journald" };
        static const char *const nets[] = { "lo", "enp1s0" };
        json_object *o = json_object_new_object(), *cpu = json_object_new_object(), *per = json_object_new_array();
        json_object *load = json_object_new_object(), *mem = json_object_new_object();
        json_object *pr = json_object_new_object(), *fss = json_object_new_array(), *disks = json_object_new_array();
        json_object *net = json_object_new_array(), *top = json_object_new_object();
        json_object *by_cpu = json_object_new_array(), *by_mem = json_object_new_array(), *d;
        double f = (double) (seq % 97) / 97.0;

        add_int(o, "time_unix_us", g_get_real_time());
        add_num(o, "uptime_seconds", 86400.25 + (double) seq);
        add_num(o, "period_seconds", 1.0);
        add_int(cpu, "count", 2);
        add_num(cpu, "usage_percent", 12.5 + 10 * f);
        add_num(cpu, "user_percent", 8.25 + 5 * f);
        add_num(cpu, "system_percent", 3.5 + f);
        add_num(cpu, "iowait_percent", 0.75);
        add_num(cpu, "steal_percent", 0.125);
        for (int i = 0; i < 2; i++) {
                json_object *c = json_object_new_object();
                add_int(c, "id", i);
                add_num(c, "usage_percent", 10.5 + 7 * f + i);
                json_object_array_add(per, c);
        }
        json_object_object_add(cpu, "per_cpu", per);
        json_object_object_add(o, "cpu", cpu);
        add_num(load, "avg1", 0.42 + f);
        add_num(load, "avg5", 0.37);
        add_num(load, "avg15", 0.31);
        json_object_object_add(o, "load", load);
        add_int(mem, "total_bytes", 4294967296);
        add_int(mem, "free_bytes", 1073741824 + (int64_t) (seq % 4096) * 4096);
        add_int(mem, "available_bytes", 2684354560);
        add_int(mem, "cached_bytes", 1342177280);
        add_int(mem, "buffers_bytes", 134217728);
        add_int(mem, "swap_total_bytes", 1073741824);
        add_int(mem, "swap_free_bytes", 1073741824);
        json_object_object_add(o, "memory", mem);
        add_int(pr, "total", 187 + (int64_t) (seq % 5));
        add_int(pr, "running", 2);
        add_int(pr, "blocked", 0);
        json_object_object_add(o, "processes", pr);
        for (size_t i = 0; i < G_N_ELEMENTS(mounts); i++) {
                d = json_object_new_object();
                add_str(d, "mount_point", mounts[i][0]);
                add_str(d, "type", mounts[i][1]);
                add_str(d, "device", mounts[i][2]);
                add_int(d, "total_bytes", 42949672960);
                add_int(d, "free_bytes", 21474836480 - (int64_t) seq * 4096);
                add_int(d, "available_bytes", 19327352832 - (int64_t) seq * 4096);
                add_int(d, "total_inodes", 2621440);
                add_int(d, "free_inodes", 2400000);
                add_int(d, "available_inodes", 2400000);
                json_object_array_add(fss, d);
        }
        json_object_object_add(o, "filesystems", fss);
        d = json_object_new_object();
        add_str(d, "name", "vda");
        add_int(d, "read_bytes", 1234567890 + (int64_t) seq * 8192);
        add_int(d, "write_bytes", 987654321 + (int64_t) seq * 16384);
        add_int(d, "reads", 123456 + (int64_t) seq);
        add_int(d, "writes", 654321 + (int64_t) seq * 2);
        add_num(d, "read_bytes_per_second", 8192.0);
        add_num(d, "write_bytes_per_second", 16384.0);
        add_num(d, "reads_per_second", 1.0);
        add_num(d, "writes_per_second", 2.0);
        json_object_array_add(disks, d);
        json_object_object_add(o, "disks", disks);
        for (size_t i = 0; i < G_N_ELEMENTS(nets); i++) {
                d = json_object_new_object();
                add_str(d, "name", nets[i]);
                add_int(d, "rx_bytes", 98765432 + (int64_t) seq * 1500);
                add_int(d, "tx_bytes", 12345678 + (int64_t) seq * 700);
                add_int(d, "rx_packets", 765432 + (int64_t) seq);
                add_int(d, "tx_packets", 123456 + (int64_t) seq);
                add_int(d, "rx_errors", 0);
                add_int(d, "tx_errors", 0);
                add_int(d, "rx_dropped", 3);
                add_int(d, "tx_dropped", 0);
                add_num(d, "rx_bytes_per_second", 1500.0);
                add_num(d, "tx_bytes_per_second", 700.0);
                add_num(d, "rx_packets_per_second", 1.0);
                add_num(d, "tx_packets_per_second", 1.0);
                json_object_array_add(net, d);
        }
        json_object_object_add(o, "network", net);
        for (size_t i = 0; i < G_N_ELEMENTS(procs); i++) {
                json_object *a = json_object_new_object(), *b = json_object_new_object();
                add_int(a, "pid", 100 + (int64_t) i);
                add_str(a, "name", procs[i]);
                add_num(a, "cpu_percent", 5.5 - (double) i);
                add_int(a, "rss_bytes", 52428800 - (int64_t) i * 1048576);
                json_object_array_add(by_cpu, a);
                add_int(b, "pid", 200 + (int64_t) i);
                add_str(b, "name", procs[G_N_ELEMENTS(procs) - 1 - i]);
                add_num(b, "cpu_percent", 1.25);
                add_int(b, "rss_bytes", 104857600 - (int64_t) i * 2097152);
                json_object_array_add(by_mem, b);
        }
        json_object_object_add(top, "by_cpu", by_cpu);
        json_object_object_add(top, "by_memory", by_mem);
        json_object_object_add(o, "top_processes", top);
        if (pad_bytes > 0) {
                g_autofree char *pad = g_malloc(pad_bytes + 1);
                memset(pad, 'p', pad_bytes);
                pad[pad_bytes] = '\0';
                add_str(o, "pad", pad);
        }
        return o;
}

static json_object *info_object(SimAgent *a) {
        json_object *o = json_object_new_object(), *agent = json_object_new_object(), *caps = json_object_new_array();
        json_object *os = json_object_new_object(), *kernel = json_object_new_object(), *tz = json_object_new_object();

        add_str(agent, "software", a->hello_software ? a->hello_software : a->software);
        add_str(agent, "version", SIM_VERSION);
        add_str(agent, "instance", a->instance);
        add_int(agent, "protocol_version", 1);
        add_int(agent, "min_version", 1);
        add_int(agent, "max_version", 1);
        json_object_array_add(caps, json_object_new_string("info"));
        json_object_array_add(caps, json_object_new_string("stats"));
        json_object_array_add(caps, json_object_new_string("heartbeat"));
        json_object_object_add(agent, "capabilities", caps);
        json_object_object_add(o, "agent", agent);
        add_str(os, "family", "linux");
        add_str(os, "id", "debian");
        add_str(os, "pretty_name", "Debian GNU/Linux 12 (bookworm)");
        add_str(os, "version_id", "12");
        json_object_object_add(o, "os", os);
        add_str(kernel, "name", "Linux");
        add_str(kernel, "release", "6.1.0-18-amd64");
        add_str(kernel, "version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1");
        json_object_object_add(o, "kernel", kernel);
        add_str(o, "architecture", "x86_64");
        add_str(o, "hostname", a->hostname);
        add_num(o, "uptime_seconds", (double) (g_get_monotonic_time() - a->start_us) / 1e6);
        add_int(o, "time_unix_us", g_get_real_time());
        add_int(tz, "utc_offset_seconds", 0);
        json_object_object_add(o, "timezone", tz);
        json_object_object_add(o, "users", json_object_new_array());
        json_object_object_add(o, "interfaces", json_object_new_array());
        return o;
}

/* ---- subscriptions ---- */

static void timer_clear(GSource **s) {
        if (*s) {
                g_source_destroy(*s);
                g_clear_pointer(s, g_source_unref);
        }
}

static void timer_set(GSource **s, unsigned seconds, GSourceFunc fn, void *userdata) {
        timer_clear(s);
        if (seconds == 0)
                return;
        *s = g_timeout_source_new(seconds * 1000);
        g_source_set_callback(*s, fn, userdata, NULL);
        g_source_attach(*s, g_main_context_get_thread_default());
}

static gboolean stats_tick(gpointer userdata) {
        SimAgent *a = userdata;

        if (sim_agent_established(a) &&
            gl_peer_send_event(a->peer, "stats", sim_stats_object(a->stats_sent + 1, a->stats_pad_bytes),
                               GL_SEND_UNRELIABLE) == 0)
                a->stats_sent++;
        return G_SOURCE_CONTINUE;
}

static gboolean heartbeat_tick(gpointer userdata) {
        SimAgent *a = userdata;
        json_object *d;

        if (!sim_agent_established(a))
                return G_SOURCE_CONTINUE;
        d = json_object_new_object();
        add_int(d, "seq", (int64_t) a->heartbeats_sent + 1);
        add_str(d, "state", "running");
        add_num(d, "interval_seconds", a->heartbeat_interval);
        add_num(d, "uptime_seconds", (double) (g_get_monotonic_time() - a->start_us) / 1e6);
        add_int(d, "time_unix_us", g_get_real_time());
        if (gl_peer_send_event(a->peer, "heartbeat", d, GL_SEND_UNRELIABLE) == 0)
                a->heartbeats_sent++;
        return G_SOURCE_CONTINUE;
}

static gboolean flood_tick(gpointer userdata) {
        SimAgent *a = userdata;
        GlSession *s = gl_peer_session(a->peer);

        size_t cost = a->flood_stats ? a->stats_pad_bytes + 4096 : 256;

        for (int i = 0; i < SIM_FLOOD_BATCH && sim_agent_established(a) && gl_session_can_send(s, 0, cost); i++) {
                json_object *d;
                if (a->flood_stats)
                        d = sim_stats_object(a->flood_sent + 1, a->stats_pad_bytes);
                else {
                        d = json_object_new_object();
                        add_int(d, "n", (int64_t) a->flood_sent);
                }
                if (gl_peer_send_event(a->peer, a->flood_stats ? "stats" : "flood", d, GL_SEND_UNRELIABLE) < 0)
                        break;
                a->flood_sent++;
        }
        return G_SOURCE_CONTINUE;
}

/* interval_seconds of a subscribe request, clamped to 1..3600 (0 stops); -1 if invalid */
static int64_t subscribe_interval(json_object *params) {
        json_object *v;
        double d;

        if (!params || !json_object_object_get_ex(params, "interval_seconds", &v) ||
            !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
                return -1;
        d = json_object_get_double(v);
        if (d < 0)
                return -1;
        if (d == 0)
                return 0;
        return d < 1 ? 1 : d > 3600 ? 3600 : (int64_t) d;
}

static void handle_request(SimAgent *a, GlMessage *m) {
        json_object *r;
        int64_t iv;

        if (strcmp(m->name, "ping") == 0)
                (void) gl_peer_respond(a->peer, m->id, NULL);
        else if (strcmp(m->name, "info") == 0) {
                if (!a->no_info)
                        (void) gl_peer_respond(a->peer, m->id, info_object(a));
        } else if (strcmp(m->name, "stats.get") == 0)
                (void) gl_peer_respond(a->peer, m->id, sim_stats_object(a->stats_sent, a->stats_pad_bytes));
        else if (strcmp(m->name, "stats.subscribe") == 0 || strcmp(m->name, "heartbeat.subscribe") == 0) {
                bool stats = m->name[0] == 's';
                iv = subscribe_interval(m->body);
                if (iv < 0) {
                        (void) gl_peer_respond_error(a->peer, m->id, GL_ERROR_INVALID, "interval_seconds expected");
                        return;
                }
                if (stats) {
                        a->stats_interval = (unsigned) iv;
                        timer_set(&a->stats_timer, a->stats_interval, stats_tick, a);
                } else {
                        a->heartbeat_interval = (unsigned) iv;
                        timer_set(&a->heartbeat_timer, a->heartbeat_interval, heartbeat_tick, a);
                }
                r = json_object_new_object();
                add_int(r, "interval_seconds", iv);
                (void) gl_peer_respond(a->peer, m->id, r);
        } else
                (void) gl_peer_respond_error(a->peer, m->id, GL_ERROR_UNSUPPORTED, "not simulated");
}

static void on_event(GlPeer *peer, GlSessionEvent *ev, void *userdata) {
        SimAgent *a = userdata;

        (void) peer;
        switch (ev->type) {
        case GL_SESSION_EVENT_MESSAGE:
                if (ev->message->type == GL_MSG_REQUEST)
                        handle_request(a, ev->message);
                gl_message_free(ev->message);
                break;
        case GL_SESSION_EVENT_PEER_RESTARTED:
                /* subscriptions belong to the peer instance (11.1) */
                timer_clear(&a->stats_timer);
                timer_clear(&a->heartbeat_timer);
                break;
        default:
                break;
        }
}

static gboolean on_accept(gint fd, GIOCondition cond, gpointer userdata) {
        SimAgent *a = userdata;
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        (void) cond;
        if (c < 0)
                return G_SOURCE_CONTINUE;
        a->connects++;
        /* QEMU serves one client: the new one replaces the old */
        gl_peer_attach(a->peer, hello_link_new(c, a->hello_software, a->hold));
        return G_SOURCE_CONTINUE;
}

SimAgent *sim_agent_new(const SimAgentSetup *setup, GError **error) {
        static const char *const caps[] = { "info", "stats", "heartbeat", NULL };
        g_autoptr(SimAgent) a = g_new0(SimAgent, 1);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        GlPeerCallbacks cb = { .event = on_event };
        GlSessionConfig sc;

        a->listen_fd = -1;
        a->socket_path = g_strdup(setup->socket_path);
        a->software = g_strdup(setup->software ? setup->software : "sim-agent " SIM_VERSION);
        a->hello_software = g_strdup(setup->hello_software);
        a->hostname = g_strdup(setup->hostname ? setup->hostname : "sim");
        a->stats_pad_bytes = setup->stats_pad_bytes;
        a->no_info = setup->no_info;
        a->flood_stats = setup->flood_stats;
        a->instance = gl_peer_new_instance();
        a->start_us = g_get_monotonic_time();
        sc = (GlSessionConfig){
                .role = "agent",
                .software = a->software,
                .instance = a->instance,
                .capabilities = caps,
                /* an agent's session is small; the defaults are sized for bulk logs */
                .max_control_queue_bytes = 256 * 1024,
                .max_bulk_queue_bytes = 64 * 1024,
                .max_window_bytes = 64 * 1024,
        };
        a->peer = gl_peer_new(&sc, &cb, a);
        if (!a->peer) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "invalid session configuration");
                return NULL;
        }
        if (strlen(setup->socket_path) >= sizeof(sa.sun_path)) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s: path too long", setup->socket_path);
                return NULL;
        }
        strcpy(sa.sun_path, setup->socket_path);
        a->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (a->listen_fd < 0 || bind(a->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            listen(a->listen_fd, 4) < 0) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "%s: %s", setup->socket_path,
                            g_strerror(errno));
                return NULL;
        }
        a->listen_source = g_unix_fd_source_new(a->listen_fd, G_IO_IN);
        g_source_set_callback(a->listen_source, G_SOURCE_FUNC(on_accept), a, NULL);
        g_source_attach(a->listen_source, g_main_context_get_thread_default());
        return g_steal_pointer(&a);
}

SimAgent *sim_agent_free(SimAgent *a) {
        if (!a)
                return NULL;
        timer_clear(&a->stats_timer);
        timer_clear(&a->heartbeat_timer);
        timer_clear(&a->flood_timer);
        timer_clear(&a->listen_source);
        a->peer = gl_peer_free(a->peer);
        if (a->listen_fd >= 0) {
                close(a->listen_fd);
                (void) g_unlink(a->socket_path);
        }
        g_free(a->socket_path);
        g_free(a->software);
        g_free(a->hello_software);
        g_free(a->hostname);
        g_free(a->instance);
        g_free(a);
        return NULL;
}

GlPeer *sim_agent_peer(SimAgent *a) {
        return a->peer;
}

bool sim_agent_established(SimAgent *a) {
        return gl_peer_attached(a->peer) && gl_session_state(gl_peer_session(a->peer)) == GL_SESSION_ESTABLISHED;
}

int sim_agent_fd(SimAgent *a) {
        GlLink *l = gl_peer_link(a->peer);

        if (!l)
                return -1;
        return gl_link_fd(((HelloLink *) l)->inner);
}

void sim_agent_hold_output(SimAgent *a, bool hold) {
        GlLink *l = gl_peer_link(a->peer);

        a->hold = hold;
        if (!l)
                return;
        ((HelloLink *) l)->hold = hold;
        gl_link_want_write(((HelloLink *) l)->inner, hold ? false : l->want_write);
        if (!hold)
                gl_peer_kick(a->peer);
}

uint64_t sim_agent_connects(const SimAgent *a) {
        return a->connects;
}

uint64_t sim_agent_stats_sent(const SimAgent *a) {
        return a->stats_sent;
}

uint64_t sim_agent_heartbeats_sent(const SimAgent *a) {
        return a->heartbeats_sent;
}

uint64_t sim_agent_flood_sent(const SimAgent *a) {
        return a->flood_sent;
}

void sim_agent_drop_connection(SimAgent *a) {
        gl_peer_detach(a->peer);
}

int sim_agent_write_raw(SimAgent *a, const void *data, size_t len) {
        int fd = sim_agent_fd(a);

        if (fd < 0)
                return -ENOTCONN;
        return write_fd_all(fd, data, len);
}

void sim_agent_flood(SimAgent *a, bool on) {
        timer_clear(&a->flood_timer);
        if (!on)
                return;
        a->flood_timer = g_timeout_source_new(1);
        g_source_set_callback(a->flood_timer, flood_tick, a, NULL);
        g_source_attach(a->flood_timer, g_main_context_get_thread_default());
}
