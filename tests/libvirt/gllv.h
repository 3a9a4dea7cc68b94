/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * gllv: a real libvirtd for tests (see README.md here).
 *
 * gllv_new() makes sure a system libvirtd answers qemu:///system: it reuses
 * a running one (and then never stops it), or starts `virtlogd -d` and
 * `libvirtd -d --listen -f CONF` itself (CONF also serves
 * qemu+tcp://127.0.0.1/system without authentication).  Tests that run at
 * the same time share a daemon that gllv started: each holds a lease in
 * /run/gllv/, and the last one to leave stops exactly the processes gllv
 * started, by PID.
 *
 * Domains are TCG guests (q35, 256 MiB, direct kernel boot of an appliance
 * image that runs the guestlink agent, serial console to a file) named
 * gltest-PID-N; gllv_free() destroys and undefines them.  A janitor process
 * does the same if the test dies without cleaning up.
 */
#include <glib.h>
#include <stdbool.h>

#define GLLV_CHANNEL "org.guestlink.agent.0"

typedef struct Gllv Gllv;
typedef struct GllvDomain GllvDomain;

/* Exits with 77 when libvirtd is not installed and $CI is unset (a failure
 * with $CI set); fails the test when libvirtd cannot be started. */
Gllv *gllv_new(const char *test_name);
void gllv_free(Gllv *lv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Gllv, gllv_free)

/* True when gllv started the libvirtd in use (so a test may restart it). */
bool gllv_owns_daemon(Gllv *lv);
/* "qemu+tcp://127.0.0.1/system" when that URI answers, else NULL. */
const char *gllv_tcp_uri(Gllv *lv);
/* Kills the libvirtd gllv started (SIGTERM, by PID), waits for it to exit,
 * sleeps down_ms, starts it again and waits until it answers.  Running
 * domains survive (libvirtd reconnects to their qemu). */
bool gllv_restart_daemon(Gllv *lv, int down_ms, GError **error);

/* Defines and starts a domain whose appliance runs the agent on
 * GLLV_CHANNEL; with_channel false leaves the channel out of the XML. */
GllvDomain *gllv_domain_start(Gllv *lv, bool with_channel, GError **error);
const char *gllv_domain_name(const GllvDomain *d);
const char *gllv_domain_uuid(const GllvDomain *d);
/* The channel's socket path (bind mode), or NULL without a channel. */
const char *gllv_domain_channel_path(const GllvDomain *d);
const char *gllv_domain_console_path(const GllvDomain *d);
/* Waits for @needle in the serial console log. */
bool gllv_domain_wait_console(GllvDomain *d, const char *needle, int timeout_ms);
/* virDomainDestroy; the domain stays defined (gllv_free undefines it). */
bool gllv_domain_destroy(GllvDomain *d, GError **error);
