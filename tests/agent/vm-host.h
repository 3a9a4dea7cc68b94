/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The host side of a guestlink session over a test-bed port: what the VM
 * tests and the agent benchmark share.  Messages from the agent collect in
 * `messages`; the caller picks answers and events out of it.
 */
#include "glvm.h"
#include "session.h"

typedef struct VmHost {
        GlvmVm *vm;
        GlvmPort *port;
        GlSession *s;
        GPtrArray *messages; /* GlMessage*, owned */
        GlvmProc *agent;     /* the agent's process, when the test started one */
} VmHost;

uint64_t vm_host_now_ms(void);
/* A bridge-role session; the VM and port are set by the caller. */
void vm_host_session_new(VmHost *h, const char *instance);
void vm_host_session_free(VmHost *h);
/* Writes what the session wants to send, runs the VM's context up to ms,
 * feeds what arrived, runs the session's timers. */
void vm_host_pump(VmHost *h, int ms);
/* Connects the port and waits (30 s) for the handshake. */
void vm_host_connect(VmHost *h);
void vm_host_disconnect(VmHost *h);
/* The answer to request id, taken out of messages, or NULL. */
GlMessage *vm_host_take_answer(VmHost *h, uint64_t id);
/* Sends a request (params: JSON text or NULL) and waits (60 s) for its answer. */
GlMessage *vm_host_call(VmHost *h, const char *method, const char *params);
