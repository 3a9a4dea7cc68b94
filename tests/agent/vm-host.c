/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vm-host.h"

static void message_free(gpointer m) {
        gl_message_free(m);
}

uint64_t vm_host_now_ms(void) {
        return (uint64_t) g_get_monotonic_time() / 1000;
}

void vm_host_session_new(VmHost *h, const char *instance) {
        GlSessionConfig c = { .role = "bridge", .software = "guestlink-test-host", .instance = instance };

        h->s = gl_session_new(&c);
        g_assert_nonnull(h->s);
        h->messages = g_ptr_array_new_with_free_func(message_free);
}

void vm_host_session_free(VmHost *h) {
        h->s = gl_session_free(h->s);
        g_clear_pointer(&h->messages, g_ptr_array_unref);
}

static void collect(VmHost *h) {
        GlSessionEvent ev;

        while (gl_session_receive(h->s, &ev) > 0)
                if (ev.type == GL_SESSION_EVENT_MESSAGE)
                        g_ptr_array_add(h->messages, ev.message);
}

void vm_host_pump(VmHost *h, int ms) {
        GlIovec iov[GL_SESSION_IOV_MAX];
        g_autoptr(GBytes) in = NULL;
        const void *data;
        size_t n, len;

        while (glvm_port_connected(h->port) && (n = gl_session_output(h->s, iov)) > 0) {
                size_t total = 0;
                for (size_t i = 0; i < n; i++) {
                        glvm_port_queue(h->port, iov[i].base, iov[i].len);
                        total += iov[i].len;
                }
                gl_session_output_advance(h->s, total);
        }
        glvm_vm_iterate(h->vm, ms);
        in = glvm_port_take(h->port);
        data = g_bytes_get_data(in, &len);
        for (size_t off = 0; off < len;) {
                long k = gl_session_feed(h->s, (const uint8_t *) data + off, len - off);
                g_assert_cmpint(k, >=, 0);
                off += (size_t) k;
                collect(h); /* drains frames, making room for the rest */
        }
        collect(h);
        gl_session_expire(h->s, vm_host_now_ms());
}

void vm_host_connect(VmHost *h) {
        g_autoptr(GError) error = NULL;
        gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

        g_assert_true(glvm_port_connect(h->port, 10000, &error));
        g_assert_no_error(error);
        gl_session_connected(h->s);
        while (gl_session_state(h->s) != GL_SESSION_ESTABLISHED) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                vm_host_pump(h, 50);
        }
}

void vm_host_disconnect(VmHost *h) {
        glvm_port_disconnect(h->port);
        gl_session_disconnected(h->s);
}

GlMessage *vm_host_take_answer(VmHost *h, uint64_t id) {
        for (guint i = 0; i < h->messages->len; i++) {
                GlMessage *m = h->messages->pdata[i];
                if ((m->type == GL_MSG_RESPONSE || m->type == GL_MSG_ERROR) && m->id == id)
                        return g_ptr_array_steal_index(h->messages, i);
        }
        return NULL;
}

GlMessage *vm_host_call(VmHost *h, const char *method, const char *params) {
        gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
        GlMessage *m;
        uint64_t id;

        g_assert_cmpint(gl_session_request(h->s, method, params ? json_tokener_parse(params) : NULL, NULL, 0, 0,
                                           vm_host_now_ms(), 60000, &id),
                        ==, 0);
        while (!(m = vm_host_take_answer(h, id))) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                vm_host_pump(h, 50);
        }
        return m;
}
