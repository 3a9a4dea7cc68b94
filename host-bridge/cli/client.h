/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The CLI's connection: one GlPeer (role "client") to the bridge's control
 * socket, or straight to an agent (a QEMU chardev socket with --direct, a
 * libvirt channel stream with --connect).  Synchronous helpers run a
 * private GMainContext until the answer arrives or the deadline passes;
 * the asynchronous API lets shutdown-all keep many requests in flight.
 *
 * The verbs do not care which mode they run in: client_call() wraps an
 * agent method in `bridge.call` when talking to the bridge and sends it
 * as is to an agent, and client_list_guests() returns guest objects shaped
 * like the bridge's (PROTOCOL.md 11.11) in every mode.
 */
#include <glib.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "link.h"
#include "message.h"
#include "peer.h" /* also: the json_object autoptr cleanup */

typedef enum ClientMode {
        CLIENT_MODE_BRIDGE,  /* the bridge's control socket */
        CLIENT_MODE_DIRECT,  /* an agent on a unix socket */
        CLIENT_MODE_LIBVIRT, /* an agent through virDomainOpenChannel */
} ClientMode;

typedef struct ClientOptions {
        ClientMode mode;
        const char *socket_path; /* bridge, direct */
        const char *uri;         /* libvirt */
        const char *domain;      /* libvirt */
        uint64_t timeout_ms;     /* handshake and default call timeout */
} ClientOptions;

/* Errors of the client itself; remote errors use CLIENT_REMOTE_ERROR with
 * a GlErrorCode as the code (GL_ERROR_UNKNOWN for codes we do not know, the
 * code string is then the start of the message). */
#define CLIENT_ERROR (client_error_quark())
#define CLIENT_REMOTE_ERROR (client_remote_error_quark())
GQuark client_error_quark(void);
GQuark client_remote_error_quark(void);

typedef enum ClientErrorCode {
        CLIENT_ERROR_CONNECT,     /* cannot reach the socket, libvirt, or the bridge (also: no bridge handshake) */
        CLIENT_ERROR_NO_AGENT,    /* direct, libvirt: no agent handshake in time, or not an agent */
        CLIENT_ERROR_CLOSED,      /* the connection ended */
        CLIENT_ERROR_INTERRUPTED, /* SIGINT / SIGTERM */
        CLIENT_ERROR_UNEXPECTED,  /* an answer we cannot use */
        CLIENT_ERROR_USAGE,       /* not possible in this mode */
} ClientErrorCode;

typedef struct Client Client;

/* Pseudo event: the peer restarted (a new instance said HELLO). */
#define CLIENT_EVENT_PEER_RESTARTED "client.peer-restarted"

/* Opens the agent channel of a libvirt domain (client-libvirt.c). */
int client_libvirt_open_link(const char *uri, const char *domain, GlLink **ret_link,
                             GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* An event from the peer: `bridge.event` from the bridge, `stats`,
 * `heartbeat`, `power.progress` ... from an agent.  data may be NULL. */
typedef void (*ClientEventFunc)(Client *c, const char *name, json_object *data, void *userdata);
/* The answer to an asynchronous call: exactly one of result (borrowed,
 * may be an empty object) and error is set. */
typedef void (*ClientCallFunc)(Client *c, json_object *result, const GError *error, void *userdata);

/* Connects and waits for the handshake (up to options->timeout_ms). */
int client_open(const ClientOptions *options, Client **ret_client, GError **error) G_GNUC_WARN_UNUSED_RESULT;
Client *client_free(Client *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Client, client_free)

ClientMode client_mode(const Client *c);
/* What to call the guest in messages in direct/libvirt mode. */
const char *client_target(const Client *c);
/* The peer's HELLO data (software, instance, protocol_version, capabilities)
 * as a new JSON object. */
json_object *client_peer_agent(Client *c);
bool client_peer_has_capability(Client *c, const char *capability);

/* Whether GUEST names the guest of a direct/libvirt connection: NULL or "-". */
bool client_guest_is_default(const char *guest);

void client_set_event_handler(Client *c, ClientEventFunc fn, void *userdata);

/*
 * Bridge restarts.  In bridge mode a call survives the loss of the control
 * connection: the bridge forgets a client's requests with its connection,
 * so the client reconnects (every 200 ms until the call's deadline) and
 * sends every outstanding request again once a new session is established,
 * also when that session is with a new bridge instance (a local "aborted"
 * from the old one is never reported).  A resent call that the new bridge
 * answers "no-agent" or "not-found" (it has not reached its guests yet) is
 * tried again every 200 ms until its deadline, and then reports that
 * answer.  A call whose deadline passes while no bridge can be reached
 * fails with CLIENT_ERROR_CLOSED.  Agent methods are safe to ask twice
 * (power.request: see client_call_full()).
 */

/* Inside a ClientCallFunc: how often the answered request was sent (0
 * elsewhere). */
unsigned client_answer_sends(const Client *c);

/* Asynchronous: calls an agent method (through `bridge.call` in bridge
 * mode).  timeout_ms 0: the default.  Takes ownership of params (may be
 * NULL), also on failure.  The callback runs from client_wait*(). */
int client_call_async(Client *c, const char *guest, const char *method, json_object *params, uint64_t timeout_ms,
                      ClientCallFunc fn, void *userdata) G_GNUC_WARN_UNUSED_RESULT;
/* Asynchronous: a method of the peer itself (`bridge.*`, or an agent
 * method in direct mode). */
int client_request_async(Client *c, const char *method, json_object *params, uint64_t timeout_ms, ClientCallFunc fn,
                         void *userdata) G_GNUC_WARN_UNUSED_RESULT;

/* Synchronous forms: 0 and a new reference in *ret_result, or -errno and
 * *error set. */
int client_call(Client *c, const char *guest, const char *method, json_object *params, uint64_t timeout_ms,
                json_object **ret_result, GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* As client_call(); *ret_sends (may be NULL; set on success and on a remote
 * error) tells how often the request was sent: more than once when the
 * bridge's connection was lost while it was outstanding, so its first copy
 * may have reached the agent. */
int client_call_full(Client *c, const char *guest, const char *method, json_object *params, uint64_t timeout_ms,
                     json_object **ret_result, unsigned *ret_sends, GError **error) G_GNUC_WARN_UNUSED_RESULT;
int client_bridge_call(Client *c, const char *method, json_object *params, uint64_t timeout_ms,
                       json_object **ret_result, GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* Guest objects as in `bridge.list` (PROTOCOL.md 11.11): from the bridge, or
 * synthesised from the HELLO (and `info`, if offered) of a direct agent. */
int client_list_guests(Client *c, json_object **ret_guests, GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* Runs the loop until *done, the deadline (gl_peer_now_ms() clock;
 * UINT64_MAX: none), an interrupt or the end of the connection.  Returns 0
 * when done, -ETIMEDOUT, or -errno with *error set (interrupted, closed). */
int client_wait(Client *c, const bool *done, uint64_t deadline_ms, GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* Runs the loop for ms milliseconds (events are delivered meanwhile). */
int client_sleep(Client *c, uint64_t ms, GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* The exit code for an error (see guestlink(1)). */
int client_error_exit_code(const GError *error);
/* A one-line description of an error for "guestlink: GUEST: ..." (sanitised). */
char *client_error_describe(const GError *error);
