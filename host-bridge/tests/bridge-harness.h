/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A test bed for guestlink-bridge without VMs: the real bridge binary, the
 * real agent binary on pseudo-terminals (its tty transport), and the test
 * playing QEMU in between: for each guest a unix socket the bridge connects
 * to (a chardev in server mode), relayed to the agent's pty.  Hostile
 * guests are the same sockets with the test writing raw bytes, or a test
 * session pretending to be an agent.
 */
#include <gio/gio.h>
#include <sys/types.h>

#include "peer.h"

typedef enum HarnessGuestKind {
        HARNESS_AGENT, /* the real guestlink-agent on a pty */
        HARNESS_RAW,   /* the test writes bytes itself (harness_guest_write) */
        HARNESS_FAKE,  /* a test session with role "agent" (fake_peer) */
        HARNESS_NONE,  /* nobody listens on the socket */
} HarnessGuestKind;

typedef struct HarnessGuest {
        char *name;
        char *socket;
        HarnessGuestKind kind;
        int listen_fd;
        int conn_fd; /* the bridge's connection, -1 when none */
        GSource *listen_source, *conn_source, *pty_source;
        int master; /* HARNESS_AGENT */
        GSubprocess *agent;
        char *agent_conf;
        bool relay_paused; /* bytes from the bridge are discarded, like a dead QEMU queue */
        GlPeer *fake;      /* HARNESS_FAKE */
        GPtrArray *fake_messages;
        uint64_t connects;
        bool not_in_config; /* left out of bridge.conf (for reload tests) */
} HarnessGuest;

typedef struct Harness {
        char *dir;
        char *socket, *conf;
        char *extra_conf; /* appended to bridge.conf */
        GSubprocess *bridge;
        GPtrArray *guests; /* HarnessGuest* */
        GlPeer *client;
        GPtrArray *client_messages; /* GlMessage* (events and answers), owned */
} Harness;

Harness *harness_new(const char *extra_conf);
void harness_free(Harness *h);
HarnessGuest *harness_add_guest(Harness *h, const char *name, HarnessGuestKind kind, const char *agent_conf);
void harness_start_bridge(Harness *h);
void harness_stop_bridge(Harness *h, int sig);
/* Writes bridge.conf again from the guests and sends SIGHUP. */
void harness_reload_bridge(Harness *h);
void harness_connect_client(Harness *h);
void harness_run(Harness *h, int ms);
/* Runs until cond(h, data) is true or fails the test after timeout_ms. */
void harness_wait(Harness *h, int timeout_ms, bool (*cond)(Harness *h, void *data), void *data, const char *what);

/* A request on the control socket; returns the answer (owned). */
GlMessage *harness_call(Harness *h, const char *method, const char *params_json, int timeout_ms);
/* bridge.call to a guest. */
GlMessage *harness_guest_call(Harness *h, const char *guest, const char *method, const char *params_json,
                              int timeout_ms);
/* The guest object of bridge.list for name (new reference), or NULL. */
json_object *harness_list_guest(Harness *h, const char *name);
const char *harness_guest_state(Harness *h, const char *name); /* owned by a cache, valid until the next call */
bool harness_wait_state(Harness *h, const char *name, const char *state, int timeout_ms);
/* Takes the first bridge.event of kind for guest (NULL: any) out of client_messages. */
GlMessage *harness_take_event(Harness *h, const char *guest, const char *kind);

void harness_guest_write(HarnessGuest *g, const void *data, size_t len);
void harness_guest_drop_connection(HarnessGuest *g);
/* The bridge's standard error so far. */
char *harness_bridge_log(Harness *h);

/* The bridge's pid (0 when it is not running). */
pid_t harness_bridge_pid(Harness *h);
/* A field of /proc/PID/smaps_rollup of the bridge, in KiB ("Rss", "Anonymous"); -1 if unreadable. */
int64_t harness_bridge_smaps_kib(Harness *h, const char *field);
/* Takes the answer to the client's request id out of client_messages, or NULL. */
GlMessage *harness_take_answer(Harness *h, uint64_t id);
