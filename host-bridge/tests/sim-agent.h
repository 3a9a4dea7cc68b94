/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * SimAgent: a simulated guestlink agent living in the test's (or the
 * benchmark's) own process, on the thread-default GMainContext.  It plays
 * QEMU and the agent at once: it listens on a unix socket (a chardev in
 * server mode), accepts the bridge's connection and runs a GlSession with
 * role "agent" and the capabilities info, stats and heartbeat.  It answers
 * ping and info, honours stats.subscribe and heartbeat.subscribe by pushing
 * a realistic stats object (PROTOCOL.md 11.5) and heartbeats at the
 * requested intervals, and can misbehave on request: flood events, pad its
 * stats, say control characters in its HELLO, or have raw bytes written
 * into its connection.
 */
#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer.h"

typedef struct SimAgent SimAgent;

typedef struct SimAgentSetup {
        const char *socket_path; /* listens here (created, unlinked on free) */
        const char *software;    /* HELLO software; NULL: "sim-agent" */
        /* When set, HELLO frames are rewritten on the wire to announce this
         * software string instead: a GlSession refuses control characters
         * in its own configuration, a hostile guest does not care. */
        const char *hello_software;
        const char *hostname;   /* in the info result; NULL: "sim" */
        size_t stats_pad_bytes; /* a "pad" string of this many bytes in every stats object */
        bool no_info;           /* leave info requests unanswered (and so uncached) */
        bool flood_stats;       /* sim_agent_flood() sends stats events (padded) instead of "flood" events */
} SimAgentSetup;

SimAgent *sim_agent_new(const SimAgentSetup *setup, GError **error);
SimAgent *sim_agent_free(SimAgent *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SimAgent, sim_agent_free)

GlPeer *sim_agent_peer(SimAgent *a);
bool sim_agent_established(SimAgent *a);
/* The connection's fd, -1 when none. */
int sim_agent_fd(SimAgent *a);
/* Connections accepted so far. */
uint64_t sim_agent_connects(const SimAgent *a);
uint64_t sim_agent_stats_sent(const SimAgent *a);
uint64_t sim_agent_heartbeats_sent(const SimAgent *a);
uint64_t sim_agent_flood_sent(const SimAgent *a);
/* Drops the current connection, as QEMU does when the guest closes its port. */
void sim_agent_drop_connection(SimAgent *a);
/* Writes bytes into the connection as they are (blocking until written;
 * for small amounts).  Returns 0 or -errno. */
int sim_agent_write_raw(SimAgent *a, const void *data, size_t len);
/* While held, the session writes nothing (its frames wait in its queue), so
 * that raw bytes written meanwhile are not cut by its frames. */
void sim_agent_hold_output(SimAgent *a, bool hold);
/* Sends unreliable "flood" events as fast as the socket takes them
 * (topped up every millisecond) while on. */
void sim_agent_flood(SimAgent *a, bool on);

/* A realistic stats object (PROTOCOL.md 11.5): 2 CPUs, memory, load,
 * processes, 3 file systems, 1 disk, 2 network interfaces, top processes
 * 5 + 5.  seq varies the numbers; pad_bytes adds a "pad" member. */
json_object *sim_stats_object(uint64_t seq, size_t pad_bytes);
