/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The agent's end of the channel: finds and opens it, watches it from the
 * GMainLoop, and tells the agent when a host is there and when it left.
 *
 *   virtio-serial  /dev/virtio-ports/<name>, or the /dev/vportNpM whose
 *                  /sys/class/virtio-ports/.../name matches.  Waits for the
 *                  port without polling (netlink uevents), sleeps while no
 *                  host is connected until SIGIO says one is, survives
 *                  hot-unplug and replug, backs off on EBUSY.
 *   tty            a serial line (isa-serial /dev/ttyS1, Xen hvc) in raw
 *                  mode; a host is assumed present.
 *   vsock          listens on an AF_VSOCK port; one host at a time.
 *
 * The transport owns no protocol state: the agent resynchronises its
 * session on every up().
 */
#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "frame.h"

typedef enum GlTransportType {
        GL_TRANSPORT_VIRTIO_SERIAL,
        GL_TRANSPORT_TTY,
        GL_TRANSPORT_VSOCK,
} GlTransportType;

typedef struct GlTransportConfig {
        GlTransportType type;
        const char *port;        /* virtio-serial: port name, or a device path */
        const char *device;      /* tty: device path */
        unsigned vsock_port;     /* vsock */
        unsigned vsock_peer_cid; /* vsock: the only CID accepted; 0 means VMADDR_CID_HOST (2) */
        const char *sysfs_root;  /* "/sys" (tests may point elsewhere) */
        const char *dev_root;    /* "/dev" */
} GlTransportConfig;

typedef struct GlTransportOps {
        void (*up)(void *userdata);       /* a host is connected: start a session */
        void (*down)(void *userdata);     /* it left, or the port went away */
        void (*readable)(void *userdata); /* call gl_transport_read() until -EAGAIN */
        void (*writable)(void *userdata); /* room to write; only while want_write */
        void (*log)(void *userdata, int priority, const char *text);
} GlTransportOps;

typedef struct GlTransport GlTransport;

GlTransport *gl_transport_new(const GlTransportConfig *config, const GlTransportOps *ops, void *userdata);
GlTransport *gl_transport_free(GlTransport *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlTransport, gl_transport_free)

/* Starts looking for the channel; events follow from the main loop. */
int gl_transport_start(GlTransport *t);

/* > 0 bytes read; -EAGAIN nothing now; 0 never (the transport turns EOF
 * into down()); other negative errno: the transport went down. */
ssize_t gl_transport_read(GlTransport *t, void *buf, size_t len);
/* Bytes written (may be partial), -EAGAIN, or negative errno. */
ssize_t gl_transport_writev(GlTransport *t, const GlIovec *iov, size_t n);
void gl_transport_want_write(GlTransport *t, bool want);

bool gl_transport_is_up(const GlTransport *t);
const char *gl_transport_path(const GlTransport *t); /* the device in use, or NULL */
