/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink-libvirt-hook: libvirt's qemu hook, installed as
 * /etc/libvirt/hooks/qemu.d/guestlink.  libvirt runs it as
 * "NAME OPERATION SUBOP EXTRA" with the domain XML on standard input.  It
 * tells the bridge (bridge.domain, PROTOCOL.md 11.11) that a domain with a
 * guestlink channel started or stopped, and where that channel's socket is.
 *
 * Rules a libvirt hook must keep: never call libvirt (libvirt holds the
 * domain's job while hooks run: a call back would deadlock), never make the
 * domain operation fail (always exit 0), and never keep libvirt waiting
 * (everything is over within HOOK_DEADLINE_MS).  Whatever goes wrong is said
 * in one line on standard error; success prints nothing.
 */
#include <errno.h>
#include <glib-unix.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "peer.h"

#define HOOK_PRGNAME "guestlink-libvirt-hook"
#define HOOK_DEFAULT_SOCKET "/run/guestlink/bridge.sock"
#define HOOK_DEFAULT_CHANNEL "org.guestlink.agent.0"
/* Everything, reading the XML included, is over after this long. */
#define HOOK_DEADLINE_MS 2000
/* A domain XML larger than this is refused unparsed. */
#define HOOK_MAX_XML_BYTES (4u * 1024 * 1024)
/* A full listen backlog: try again after this long. */
#define HOOK_CONNECT_RETRY_MS 20
/* Longest piece of a name or message from the XML or the bridge in a log line. */
#define HOOK_LOG_TEXT_MAX 256

/* What libvirt's operations mean to the bridge; every other operation
 * (prepare, start, migrate, restore, ...) is none of its business. */
static const struct {
        const char *operation;
        const char *announce;
} hook_operations[] = {
        { "started", "started" }, { "reconnect", "started" }, { "attach", "started" },
        { "stopped", "stopped" }, { "release", "stopped" },
};

static void hook_log(const char *format, ...) G_GNUC_PRINTF(1, 2);
static void hook_log(const char *format, ...) {
        g_autofree char *text = NULL;
        va_list ap;

        va_start(ap, format);
        text = g_strdup_vprintf(format, ap);
        va_end(ap);
        fprintf(stderr, HOOK_PRGNAME ": %s\n", text);
}

static const char *hook_announce(const char *operation) {
        for (size_t i = 0; i < G_N_ELEMENTS(hook_operations); i++)
                if (strcmp(operation, hook_operations[i].operation) == 0)
                        return hook_operations[i].announce;
        return NULL;
}

static int64_t ms_left(int64_t deadline_us) {
        int64_t left = (deadline_us - g_get_monotonic_time()) / 1000;

        return left > 0 ? left : 0;
}

/* ---- standard input ---- */

/* Reads all of fd, at most max bytes, until deadline_us.  Returns 0,
 * -EFBIG beyond max, -ETIMEDOUT, or another -errno. */
static int read_input(int fd, size_t max, int64_t deadline_us, GByteArray **ret_data) {
        g_autoptr(GByteArray) data = g_byte_array_new();
        uint8_t buf[65536];

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int64_t left = ms_left(deadline_us);
                ssize_t n;
                int r;

                r = poll(&p, 1, (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                n = read(fd, buf, sizeof(buf));
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                if (data->len + (size_t) n > max)
                        return -EFBIG;
                g_byte_array_append(data, buf, (guint) n);
        }
        *ret_data = g_steal_pointer(&data);
        return 0;
}

/* ---- the domain XML ---- */

typedef struct DomainInfo {
        char *name;
        char *uuid;
        char *channel_path; /* NULL: the domain has no such unix channel */
} DomainInfo;

static void domain_info_clear(DomainInfo *d) {
        g_clear_pointer(&d->name, g_free);
        g_clear_pointer(&d->uuid, g_free);
        g_clear_pointer(&d->channel_path, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(DomainInfo, domain_info_clear)

typedef struct XmlState {
        const char *channel; /* the target name we look for */
        DomainInfo *info;
        unsigned depth; /* of the element being read; 1 = the root */
        bool root_seen;
        GString *text; /* of <domain><name> or <domain><uuid>, while in one */
        char **text_target;
        /* the <domain><devices><channel> being read */
        bool in_channel, channel_unix, target_matches;
        char *source_path;
} XmlState;

static const char *attribute(const char **names, const char **values, const char *name) {
        for (size_t i = 0; names[i]; i++)
                if (strcmp(names[i], name) == 0)
                        return values[i];
        return NULL;
}

static void xml_start(GMarkupParseContext *ctx, const char *element, const char **names, const char **values,
                      gpointer userdata, GError **error) {
        XmlState *x = userdata;
        const GSList *stack = g_markup_parse_context_get_element_stack(ctx);
        const char *parent = stack->next ? stack->next->data : NULL;

        x->depth++;
        if (x->depth == 1) {
                if (x->root_seen || strcmp(element, "domain") != 0) {
                        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                                    "not a domain XML: top-level element <%.64s>", element);
                        return;
                }
                x->root_seen = true;
                return;
        }
        if (x->depth == 2 && (strcmp(element, "name") == 0 || strcmp(element, "uuid") == 0)) {
                char **target = strcmp(element, "name") == 0 ? &x->info->name : &x->info->uuid;
                if (!*target) { /* the first one counts */
                        x->text = g_string_new("");
                        x->text_target = target;
                }
                return;
        }
        if (x->depth == 3 && strcmp(parent, "devices") == 0 && strcmp(element, "channel") == 0) {
                const char *type = attribute(names, values, "type");
                x->in_channel = true;
                x->channel_unix = type && strcmp(type, "unix") == 0;
                x->target_matches = false;
                g_clear_pointer(&x->source_path, g_free);
                return;
        }
        if (x->depth == 4 && x->in_channel && strcmp(element, "source") == 0) {
                const char *path = attribute(names, values, "path");
                if (path && !x->source_path)
                        x->source_path = g_strdup(path);
                return;
        }
        if (x->depth == 4 && x->in_channel && strcmp(element, "target") == 0) {
                const char *type = attribute(names, values, "type"), *name = attribute(names, values, "name");
                x->target_matches = type && name && strcmp(type, "virtio") == 0 && strcmp(name, x->channel) == 0;
                return;
        }
}

static void xml_end(GMarkupParseContext *ctx, const char *element, gpointer userdata, GError **error) {
        XmlState *x = userdata;

        (void) ctx;
        (void) element;
        (void) error;
        if (x->depth == 2 && x->text) {
                *x->text_target = g_strstrip(g_string_free(g_steal_pointer(&x->text), FALSE));
                x->text_target = NULL;
        }
        if (x->depth == 3 && x->in_channel) {
                if (x->channel_unix && x->target_matches && x->source_path && !x->info->channel_path)
                        x->info->channel_path = g_steal_pointer(&x->source_path);
                g_clear_pointer(&x->source_path, g_free);
                x->in_channel = false;
        }
        x->depth--;
}

static void xml_text(GMarkupParseContext *ctx, const char *text, gsize len, gpointer userdata, GError **error) {
        XmlState *x = userdata;

        (void) ctx;
        (void) error;
        if (x->text && x->depth == 2)
                g_string_append_len(x->text, text, (gssize) len);
}

/* GMarkup knows only the five predefined entities and fails on any other
 * reference (entities of a DOCTYPE, a stray "&").  None of them matter
 * here, so such an "&" is escaped and the reference is read as text. */
static char *escape_unknown_entities(const char *xml, size_t len) {
        static const char *const known[] = { "lt;", "gt;", "amp;", "quot;", "apos;" };
        GString *out = g_string_sized_new(len + 16);

        for (size_t i = 0; i < len; i++) {
                const char *p = xml + i + 1;
                size_t rest = len - i - 1;
                bool ok = false;

                if (xml[i] != '&') {
                        g_string_append_c(out, xml[i]);
                        continue;
                }
                for (size_t k = 0; k < G_N_ELEMENTS(known) && !ok; k++)
                        ok = rest >= strlen(known[k]) && memcmp(p, known[k], strlen(known[k])) == 0;
                if (!ok && rest > 1 && p[0] == '#') {
                        bool hex = p[1] == 'x';
                        size_t j = hex ? 2 : 1, digits = 0;
                        while (j < rest && (hex ? g_ascii_isxdigit(p[j]) : g_ascii_isdigit(p[j])))
                                j++, digits++;
                        ok = digits > 0 && j < rest && p[j] == ';';
                }
                g_string_append(out, ok ? "&" : "&amp;");
        }
        return g_string_free(out, FALSE);
}

/* Fills ret with the domain's name and UUID and the socket path of its
 * channel type='unix' with target type='virtio' name=CHANNEL. */
static bool parse_domain(const char *xml, size_t len, const char *channel, DomainInfo *ret, GError **error) {
        static const GMarkupParser parser = { .start_element = xml_start, .end_element = xml_end, .text = xml_text };
        g_auto(DomainInfo) info = { 0 };
        XmlState x = { .channel = channel, .info = &info };
        g_autofree char *text = NULL;
        g_autoptr(GMarkupParseContext) ctx = NULL;
        bool ok;

        if (len == 0) {
                g_set_error_literal(error, G_MARKUP_ERROR, G_MARKUP_ERROR_EMPTY, "no domain XML on standard input");
                return false;
        }
        if (memchr(xml, '\0', len)) {
                g_set_error_literal(error, G_MARKUP_ERROR, G_MARKUP_ERROR_BAD_UTF8, "NUL byte in the domain XML");
                return false;
        }
        text = escape_unknown_entities(xml, len);
        ctx = g_markup_parse_context_new(&parser, G_MARKUP_PREFIX_ERROR_POSITION, &x, NULL);
        ok = g_markup_parse_context_parse(ctx, text, (gssize) strlen(text), error) &&
             g_markup_parse_context_end_parse(ctx, error);
        if (x.text)
                g_string_free(x.text, TRUE);
        g_free(x.source_path);
        if (!ok)
                return false;
        if (!info.name || !*info.name || !info.uuid || !*info.uuid) {
                g_set_error_literal(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                                    "no <name> or <uuid> in <domain>");
                return false;
        }
        *ret = info;
        info = (DomainInfo){ 0 };
        return true;
}

/* ---- talking to the bridge ---- */

typedef struct Hook {
        const char *socket;
        const char *operation; /* "started", "stopped" */
        const DomainInfo *domain;
        char *name_log; /* the domain name, sanitised for log lines */
        int64_t deadline_us;
        GMainContext *ctx;
        GlPeer *peer;
        uint64_t request_id;
        bool requested;
        bool done;
} Hook;

/* Ends the run; failure says why in one line. */
static void hook_finish(Hook *h, const char *failure) {
        if (h->done)
                return;
        h->done = true;
        if (failure)
                hook_log("%s; domain %s not announced", failure, h->name_log);
}

static void hook_finish_unreachable(Hook *h, int error) {
        g_autofree char *why = g_strdup_printf("bridge not reachable at %s: %s", h->socket, g_strerror(error));

        hook_finish(h, why);
}

static void send_request(Hook *h) {
        const GlSession *s = gl_peer_session(h->peer);
        json_object *params = json_object_new_object();
        int r;

        if (!gl_session_peer_has_capability(s, "bridge")) {
                g_autofree char *why = g_strdup_printf("%s leads to a peer without the bridge capability", h->socket);
                hook_finish(h, why);
                return;
        }
        json_object_object_add(params, "name", json_object_new_string(h->domain->name));
        json_object_object_add(params, "uuid", json_object_new_string(h->domain->uuid));
        json_object_object_add(params, "operation", json_object_new_string(h->operation));
        if (h->domain->channel_path)
                json_object_object_add(params, "channel_path", json_object_new_string(h->domain->channel_path));
        r = gl_peer_request(h->peer, "bridge.domain", params, (uint64_t) MAX(ms_left(h->deadline_us), 1),
                            &h->request_id);
        if (r < 0) {
                g_autofree char *why = g_strdup_printf("cannot send bridge.domain: %s", g_strerror(-r));
                hook_finish(h, why);
                return;
        }
        h->requested = true;
}

static void peer_event(GlPeer *peer, GlSessionEvent *ev, void *userdata) {
        Hook *h = userdata;
        GlMessage *m = ev->message;

        (void) peer;
        if (ev->type == GL_SESSION_EVENT_ESTABLISHED && !h->requested)
                send_request(h);
        else if (ev->type == GL_SESSION_EVENT_INCOMPATIBLE) {
                g_autofree char *why = g_strdup_printf("no common protocol version with the bridge at %s", h->socket);
                hook_finish(h, why);
        } else if (ev->type == GL_SESSION_EVENT_MESSAGE && h->requested && m->id == h->request_id &&
                   (m->type == GL_MSG_RESPONSE || m->type == GL_MSG_ERROR)) {
                if (m->type == GL_MSG_RESPONSE)
                        hook_finish(h, NULL);
                else if (m->local && m->code == GL_ERROR_TIMEOUT) {
                        g_autofree char *why = g_strdup_printf("bridge at %s did not answer within %d ms", h->socket,
                                                               HOOK_DEADLINE_MS);
                        hook_finish(h, why);
                } else {
                        g_autofree char *text = gl_sanitize(m->error_message ? m->error_message : "",
                                                            HOOK_LOG_TEXT_MAX);
                        g_autofree char *why = g_strdup_printf("bridge at %s refused bridge.domain: %s: %s", h->socket,
                                                               gl_error_code_to_string(m->code), text);
                        hook_finish(h, why);
                }
        }
        gl_message_free(m);
}

static void peer_closed(GlPeer *peer, int error, void *userdata) {
        Hook *h = userdata;
        g_autofree char *why = g_strdup_printf("bridge at %s closed the connection%s%s", h->socket,
                                               error < 0 ? ": " : "", error < 0 ? g_strerror(-error) : "");

        (void) peer;
        hook_finish(h, why);
}

/* Returns 0 with a connected (or connecting) socket, -EAGAIN when the
 * bridge's backlog is full, or another -errno. */
static int connect_bridge(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
                int e = errno;
                close(fd);
                return e == EWOULDBLOCK ? -EAGAIN : -e;
        }
        *ret_fd = fd;
        return 0;
}

static gboolean try_connect(gpointer userdata) {
        Hook *h = userdata;
        int fd = -1, r;

        r = connect_bridge(h->socket, &fd);
        if (r == -EAGAIN)
                return G_SOURCE_CONTINUE; /* the deadline ends the retries */
        if (r < 0)
                hook_finish_unreachable(h, -r);
        else
                gl_peer_attach(h->peer, gl_link_new_fd(fd));
        return G_SOURCE_REMOVE;
}

static gboolean deadline_reached(gpointer userdata) {
        Hook *h = userdata;
        g_autofree char *why = NULL;

        if (!h->peer || !gl_peer_attached(h->peer))
                why = g_strdup_printf("bridge not reachable at %s: its listen queue stayed full", h->socket);
        else
                why = g_strdup_printf("bridge at %s did not answer within %d ms", h->socket, HOOK_DEADLINE_MS);
        hook_finish(h, why);
        return G_SOURCE_REMOVE;
}

static void announce(const char *socket, const char *operation, const DomainInfo *domain, int64_t deadline_us) {
        static const char *const caps[] = { NULL };
        g_autofree char *instance = gl_peer_new_instance();
        GlSessionConfig sc = {
                .role = "client",
                .software = HOOK_PRGNAME " " GL_VERSION,
                .instance = instance,
                .capabilities = caps,
        };
        GlPeerCallbacks cb = { .event = peer_event, .closed = peer_closed };
        Hook h = {
                .socket = socket,
                .operation = operation,
                .domain = domain,
                .name_log = gl_sanitize(domain->name, HOOK_LOG_TEXT_MAX),
                .deadline_us = deadline_us,
                .ctx = g_main_context_new(),
        };
        GSource *deadline, *retry;

        g_main_context_push_thread_default(h.ctx);
        h.peer = gl_peer_new(&sc, &cb, &h);
        deadline = g_timeout_source_new((guint) ms_left(deadline_us));
        g_source_set_callback(deadline, deadline_reached, &h, NULL);
        g_source_attach(deadline, h.ctx);
        retry = g_timeout_source_new(HOOK_CONNECT_RETRY_MS);
        g_source_set_callback(retry, try_connect, &h, NULL);
        g_source_attach(retry, h.ctx);
        if (!h.peer)
                hook_finish(&h, "out of memory");
        else if (try_connect(&h) == G_SOURCE_REMOVE)
                g_source_destroy(retry);
        while (!h.done)
                g_main_context_iteration(h.ctx, TRUE);
        g_source_destroy(retry);
        g_source_unref(retry);
        g_source_destroy(deadline);
        g_source_unref(deadline);
        h.peer = gl_peer_free(h.peer);
        g_main_context_pop_thread_default(h.ctx);
        g_main_context_unref(h.ctx);
        g_free(h.name_log);
}

/* ---- main ---- */

static void run(int argc, char **argv) {
        int64_t deadline_us = g_get_monotonic_time() + (int64_t) HOOK_DEADLINE_MS * 1000;
        const char *socket = g_getenv("GUESTLINK_BRIDGE_SOCKET");
        const char *channel = g_getenv("GUESTLINK_CHANNEL");
        g_autoptr(GByteArray) xml = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(DomainInfo) domain = { 0 };
        g_autofree char *name_log = NULL;
        const char *operation;
        int r;

        /* a bridge that goes away while we write must not kill us */
        (void) signal(SIGPIPE, SIG_IGN);
        g_set_prgname(HOOK_PRGNAME);
        if (argc < 3) {
                hook_log("usage: %s NAME OPERATION SUBOP EXTRA (run by libvirt, domain XML on standard input)",
                         HOOK_PRGNAME);
                return;
        }
        operation = hook_announce(argv[2]);
        if (!operation)
                return;
        name_log = gl_sanitize(argv[1], HOOK_LOG_TEXT_MAX);
        r = read_input(STDIN_FILENO, HOOK_MAX_XML_BYTES, deadline_us, &xml);
        if (r == -EFBIG) {
                hook_log("domain XML of %s is larger than %u bytes, refused; domain not announced", name_log,
                         HOOK_MAX_XML_BYTES);
                return;
        }
        if (r < 0) {
                hook_log("cannot read the domain XML of %s from standard input: %s; domain not announced", name_log,
                         r == -ETIMEDOUT ? "no end of input in time" : g_strerror(-r));
                return;
        }
        if (!parse_domain((const char *) xml->data, xml->len, channel && *channel ? channel : HOOK_DEFAULT_CHANNEL,
                          &domain, &error)) {
                g_autofree char *why = gl_sanitize(error->message, HOOK_LOG_TEXT_MAX);
                hook_log("cannot parse the domain XML of %s: %s; domain not announced", name_log, why);
                return;
        }
        /* no guestlink channel: not a guest of ours */
        if (!domain.channel_path)
                return;
        announce(socket && *socket ? socket : HOOK_DEFAULT_SOCKET, operation, &domain, deadline_us);
}

int main(int argc, char **argv) {
        run(argc, argv);
        /* never fail the domain operation, whatever happened */
        return EXIT_SUCCESS;
}
