/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host side of a virtio-serial port: a unix socket to QEMU's chardev. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "glvm-private.h"

#define PORT_READ_CHUNK 65536

GlvmPort *glvm_port_new(GlvmVm *vm, const char *name, GlvmPortMode mode, bool control) {
        GlvmPort *p = g_new0(GlvmPort, 1);

        p->vm = vm;
        p->name = g_strdup(name);
        p->mode = mode;
        p->is_control = control;
        p->reading = true;
        p->rx = g_byte_array_new();
        p->tx = g_byte_array_new();
        if (control) {
                p->chardev_id = g_strdup("glvmctl0");
                p->device_id = g_strdup("glvmctlport");
                p->path = g_build_filename(vm->run_dir, "control.sock", NULL);
        } else {
                unsigned nr = vm->next_port_nr++;
                p->chardev_id = g_strdup_printf("c%u", nr);
                p->device_id = g_strdup_printf("vp%u", nr);
                p->path = g_strdup_printf("%s/p%u.sock", vm->run_dir, nr);
        }
        return p;
}

static void port_drop_source(GlvmPort *p) {
        if (p->source) {
                g_source_destroy(p->source);
                g_source_unref(p->source);
                p->source = NULL;
                p->source_cond = 0;
        }
}

void glvm_port_free(GlvmPort *p) {
        if (!p)
                return;
        glvm_port_disconnect(p);
        if (p->listener) {
                (void) g_socket_close(p->listener, NULL);
                g_object_unref(p->listener);
        }
        g_byte_array_unref(p->rx);
        g_byte_array_unref(p->tx);
        g_free(p->name);
        g_free(p->device_id);
        g_free(p->chardev_id);
        g_free(p->path);
        g_free(p);
}

const char *glvm_port_name(GlvmPort *p) {
        return p->name;
}
const char *glvm_port_device_id(GlvmPort *p) {
        return p->device_id;
}
const char *glvm_port_chardev_id(GlvmPort *p) {
        return p->chardev_id;
}
const char *glvm_port_socket_path(GlvmPort *p) {
        return p->path;
}
bool glvm_port_connected(GlvmPort *p) {
        return p->sock != NULL;
}
bool glvm_port_eof(GlvmPort *p) {
        return p->eof;
}
guint64 glvm_port_rx_total(GlvmPort *p) {
        return p->rx_total;
}

GlvmPort *glvm_vm_port(GlvmVm *vm, const char *name) {
        for (guint i = 0; i < vm->ports->len; i++) {
                GlvmPort *p = vm->ports->pdata[i];
                if (strcmp(p->name, name) == 0)
                        return p;
        }
        return NULL;
}

bool glvm_port_prepare(GlvmPort *p, GError **error) {
        g_autoptr(GSocketAddress) addr = NULL;

        if (p->mode != GLVM_PORT_CLIENT || p->listener)
                return true;
        addr = g_unix_socket_address_new(p->path);
        p->listener = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, error);
        if (!p->listener)
                return false;
        if (!g_socket_bind(p->listener, addr, TRUE, error) || !g_socket_listen(p->listener, error))
                return false;
        g_socket_set_blocking(p->listener, FALSE);
        return true;
}

static void port_mark_eof(GlvmPort *p) {
        p->eof = true;
        if (p->is_control)
                glvm_log_line(p->vm->control_log, "--", "control channel EOF", strlen("control channel EOF"));
}

static gboolean port_ready(GSocket *sock, GIOCondition cond, gpointer data) {
        GlvmPort *p = data;

        if ((cond & (G_IO_IN | G_IO_HUP | G_IO_ERR)) && p->reading && !p->eof) {
                guint8 buf[PORT_READ_CHUNK];
                g_autoptr(GError) e = NULL;
                gssize n = g_socket_receive(sock, (char *) buf, sizeof(buf), NULL, &e);

                if (n > 0) {
                        g_byte_array_append(p->rx, buf, (guint) n);
                        p->rx_total += (guint64) n;
                        if (p->is_control)
                                glvm_control_input(p->vm);
                } else if (n == 0 || !g_error_matches(e, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
                        port_mark_eof(p);
        }
        if ((cond & G_IO_OUT) && p->tx_off < p->tx->len && p->sock) {
                g_autoptr(GError) e = NULL;
                gssize n = g_socket_send(sock, (const char *) p->tx->data + p->tx_off,
                                         MIN(p->tx->len - p->tx_off, 262144u), NULL, &e);
                if (n > 0) {
                        p->tx_off += (size_t) n;
                        p->tx_total += (guint64) n;
                        if (p->tx_off == p->tx->len) {
                                g_byte_array_set_size(p->tx, 0);
                                p->tx_off = 0;
                        }
                } else if (!g_error_matches(e, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
                        port_mark_eof(p);
        }
        /* the wanted condition may have changed: the callers re-evaluate it */
        glvm_port_update_source(p);
        return G_SOURCE_CONTINUE;
}

void glvm_port_update_source(GlvmPort *p) {
        GIOCondition want = 0;

        if (p->sock && !p->eof) {
                if (p->reading)
                        want |= G_IO_IN | G_IO_HUP | G_IO_ERR;
                if (p->tx_off < p->tx->len)
                        want |= G_IO_OUT | G_IO_ERR;
        }
        if (want == p->source_cond && (p->source || !want))
                return;
        port_drop_source(p);
        if (!want)
                return;
        p->source = g_socket_create_source(p->sock, want, NULL);
        p->source_cond = want;
        g_source_set_callback(p->source, (GSourceFunc) (void (*)(void)) port_ready, p, NULL);
        g_source_attach(p->source, p->vm->ctx);
}

static void port_attach(GlvmPort *p, GSocket *sock) {
        p->sock = sock;
        g_socket_set_blocking(sock, FALSE);
        p->eof = false;
        g_byte_array_set_size(p->rx, 0);
        g_byte_array_set_size(p->tx, 0);
        p->tx_off = 0;
        glvm_port_update_source(p);
}

bool glvm_port_connect(GlvmPort *p, int timeout_ms, GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);

        g_return_val_if_fail(!p->sock, false);
        if (p->mode == GLVM_PORT_CLIENT) {
                for (;;) {
                        g_autoptr(GError) e = NULL;
                        GSocket *s = g_socket_accept(p->listener, NULL, &e);

                        if (s) {
                                port_attach(p, s);
                                return true;
                        }
                        if (!g_error_matches(e, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
                                g_propagate_error(error, g_steal_pointer(&e));
                                return false;
                        }
                        if (glvm_deadline_passed(deadline)) {
                                g_set_error(error, GLVM_ERROR, GLVM_ERROR_TIMEOUT,
                                            "QEMU did not connect to %s within %d ms", p->name, timeout_ms);
                                return false;
                        }
                        glvm_vm_iterate_until(p->vm, MIN(deadline, glvm_deadline(10)));
                }
        }
        for (;;) {
                g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(p->path);
                g_autoptr(GError) e = NULL;
                GSocket *s = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, error);

                if (!s)
                        return false;
                if (g_socket_connect(s, addr, NULL, &e)) {
                        port_attach(p, s);
                        return true;
                }
                g_object_unref(s);
                if (glvm_deadline_passed(deadline)) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_TIMEOUT, "connect %s: %s", p->name, e->message);
                        return false;
                }
                glvm_vm_iterate_until(p->vm, MIN(deadline, glvm_deadline(20)));
        }
}

void glvm_port_disconnect(GlvmPort *p) {
        port_drop_source(p);
        if (p->sock) {
                (void) g_socket_close(p->sock, NULL);
                g_clear_object(&p->sock);
        }
        p->eof = false;
}

void glvm_port_set_reading(GlvmPort *p, bool reading) {
        p->reading = reading;
        glvm_port_update_source(p);
}

void glvm_port_queue(GlvmPort *p, const void *data, size_t len) {
        g_byte_array_append(p->tx, data, (guint) len);
        glvm_port_update_source(p);
}

size_t glvm_port_pending_tx(GlvmPort *p) {
        return p->tx->len - p->tx_off;
}

static bool port_check(GlvmPort *p, gint64 deadline, int timeout_ms, const char *what, GError **error) {
        if (!p->sock) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "%s: port %s not connected", what, p->name);
                return false;
        }
        if (p->eof) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_EOF, "%s: port %s: end of file", what, p->name);
                return false;
        }
        if (glvm_deadline_passed(deadline)) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_TIMEOUT, "%s: port %s: timed out after %d ms", what, p->name,
                            timeout_ms);
                return false;
        }
        return true;
}

bool glvm_port_write(GlvmPort *p, const void *data, size_t len, int timeout_ms, GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);

        glvm_port_queue(p, data, len);
        while (glvm_port_pending_tx(p) > 0) {
                if (!port_check(p, deadline, timeout_ms, "write", error))
                        return false;
                glvm_vm_iterate_until(p->vm, deadline);
        }
        return true;
}

static GBytes *port_take(GlvmPort *p, size_t len) {
        GBytes *b = g_bytes_new(p->rx->data, len);

        g_byte_array_remove_range(p->rx, 0, (guint) len);
        return b;
}

GBytes *glvm_port_take(GlvmPort *p) {
        return port_take(p, p->rx->len);
}

size_t glvm_port_available(GlvmPort *p) {
        return p->rx->len;
}

GBytes *glvm_port_read_exact(GlvmPort *p, size_t len, int timeout_ms, GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);

        while (p->rx->len < len) {
                if (!port_check(p, deadline, timeout_ms, "read", error)) {
                        g_prefix_error(error, "got %u of %zu bytes: ", p->rx->len, len);
                        return NULL;
                }
                if (!p->reading) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "read_exact with reading off");
                        return NULL;
                }
                glvm_vm_iterate_until(p->vm, deadline);
        }
        return port_take(p, len);
}

GBytes *glvm_port_read_some(GlvmPort *p, size_t max, int timeout_ms, GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);

        for (;;) {
                if (p->rx->len > 0)
                        return port_take(p, MIN(max, (size_t) p->rx->len));
                if (!port_check(p, deadline, timeout_ms, "read", error))
                        return NULL;
                if (!p->reading) {
                        g_autofree guint8 *buf = g_malloc(max);
                        g_autoptr(GError) e = NULL;
                        gssize n = g_socket_receive(p->sock, (char *) buf, max, NULL, &e);

                        if (n > 0) {
                                p->rx_total += (guint64) n;
                                return g_bytes_new(buf, (gsize) n);
                        }
                        if (n == 0 || !g_error_matches(e, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
                                port_mark_eof(p);
                        glvm_vm_iterate_until(p->vm, MIN(deadline, glvm_deadline(2)));
                        continue;
                }
                glvm_vm_iterate_until(p->vm, deadline);
        }
}

bool glvm_port_wait_eof(GlvmPort *p, int timeout_ms, GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);

        glvm_port_set_reading(p, true);
        while (!p->eof) {
                if (!p->sock || glvm_deadline_passed(deadline)) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_TIMEOUT, "no EOF on port %s within %d ms", p->name,
                                    timeout_ms);
                        return false;
                }
                glvm_vm_iterate_until(p->vm, deadline);
        }
        return true;
}

void glvm_port_drain(GlvmPort *p, int quiet_ms, int timeout_ms) {
        gint64 deadline = glvm_deadline(timeout_ms);
        guint64 last = p->rx_total;
        gint64 quiet_until = glvm_deadline(quiet_ms);

        glvm_port_set_reading(p, true);
        while (!glvm_deadline_passed(deadline) && !glvm_deadline_passed(quiet_until) && p->sock && !p->eof) {
                glvm_vm_iterate_until(p->vm, MIN(deadline, quiet_until));
                if (p->rx_total != last) {
                        last = p->rx_total;
                        quiet_until = glvm_deadline(quiet_ms);
                }
        }
}

GlvmPort *glvm_vm_hotplug_port(GlvmVm *vm, const char *name, int timeout_ms, GError **error) {
        GlvmPort *p = glvm_port_new(vm, name, GLVM_PORT_SERVER, false);
        g_autoptr(json_object) r1 = NULL;

        p->hotplugged = true;
        g_ptr_array_add(vm->ports, p);
        r1 = glvm_vm_qmpf(vm, "chardev-add", timeout_ms, error,
                          "{\"id\":\"%s\",\"backend\":{\"type\":\"socket\",\"data\":{\"addr\":{\"type\":"
                          "\"unix\",\"data\":{\"path\":\"%s\"}},\"server\":true,\"wait\":false}}}",
                          p->chardev_id, p->path);
        if (!r1)
                return NULL;
        if (!glvm_vm_replug_port(p, timeout_ms, error))
                return NULL;
        return p;
}

bool glvm_vm_replug_port(GlvmPort *p, int timeout_ms, GError **error) {
        g_autoptr(json_object) r = NULL;

        r = glvm_vm_qmpf(p->vm, "device_add", timeout_ms, error,
                         "{\"driver\":\"virtserialport\",\"bus\":\"%s.0\",\"chardev\":\"%s\",\"name\":\"%s\","
                         "\"id\":\"%s\"}",
                         GLVM_TEST_BUS, p->chardev_id, p->name, p->device_id);
        return r != NULL;
}

bool glvm_vm_unplug_port(GlvmPort *p, int timeout_ms, GError **error) {
        g_autoptr(json_object) r = NULL, ev = NULL;
        gint64 deadline = glvm_deadline(timeout_ms);

        r = glvm_vm_qmpf(p->vm, "device_del", timeout_ms, error, "{\"id\":\"%s\"}", p->device_id);
        if (!r)
                return false;
        ev = glvm_vm_wait_event(p->vm, "DEVICE_DELETED", "device", p->device_id,
                                (int) MAX(0, (deadline - g_get_monotonic_time()) / 1000), error);
        return ev != NULL;
}
