/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QMP client: one JSON object per line; replies matched by id, events queued. */
#include "config.h"

#include <string.h>

#include "glvm-private.h"

static void qmp_handle_line(GlvmVm *vm, const char *line, size_t len) {
        json_object *obj, *id;

        glvm_log_line(vm->qmp_log, "<", line, len);
        obj = json_tokener_parse(line);
        if (!obj || !json_object_is_type(obj, json_type_object)) {
                if (obj)
                        json_object_put(obj);
                return;
        }
        if (json_object_object_get_ex(obj, "event", NULL)) {
                g_queue_push_tail(&vm->qmp_events, obj);
                return;
        }
        if (json_object_object_get_ex(obj, "id", &id) && (guint64) json_object_get_int64(id) == vm->qmp_waiting_id) {
                if (vm->qmp_reply)
                        json_object_put(vm->qmp_reply);
                vm->qmp_reply = obj;
                return;
        }
        json_object_put(obj); /* greeting, or a reply nobody waits for */
}

static gboolean qmp_readable(GSocket *sock, GIOCondition cond, gpointer data) {
        GlvmVm *vm = data;
        char buf[16384];
        gssize n;
        char *nl;

        (void) cond;
        n = g_socket_receive(sock, buf, sizeof(buf), NULL, NULL);
        if (n <= 0) {
                if (n == 0 || !g_socket_is_connected(sock)) {
                        glvm_log_line(vm->qmp_log, "--", "QMP closed", strlen("QMP closed"));
                        /* the context keeps its own reference while dispatching */
                        g_clear_pointer(&vm->qmp_source, g_source_unref);
                        return G_SOURCE_REMOVE;
                }
                return G_SOURCE_CONTINUE;
        }
        g_string_append_len(vm->qmp_in, buf, n);
        while ((nl = memchr(vm->qmp_in->str, '\n', vm->qmp_in->len))) {
                size_t len = (size_t) (nl - vm->qmp_in->str);
                *nl = 0;
                if (len > 0 && vm->qmp_in->str[len - 1] == '\r')
                        vm->qmp_in->str[len - 1] = 0;
                qmp_handle_line(vm, vm->qmp_in->str, strlen(vm->qmp_in->str));
                g_string_erase(vm->qmp_in, 0, (gssize) len + 1);
        }
        if (vm->qmp_in->len > GLVM_QMP_MAX_LINE)
                g_error("glvm: QMP line longer than %u bytes", GLVM_QMP_MAX_LINE);
        return G_SOURCE_CONTINUE;
}

void glvm_qmp_close(GlvmVm *vm) {
        if (vm->qmp_source) {
                g_source_destroy(vm->qmp_source);
                g_source_unref(vm->qmp_source);
                vm->qmp_source = NULL;
        }
        if (vm->qmp) {
                (void) g_socket_close(vm->qmp, NULL);
                g_clear_object(&vm->qmp);
        }
}

static bool qmp_send(GlvmVm *vm, const char *text, GError **error) {
        size_t len = strlen(text), off = 0;

        glvm_log_line(vm->qmp_log, ">", text, len);
        while (off < len) {
                gssize n = g_socket_send(vm->qmp, text + off, len - off, NULL, error);
                if (n < 0)
                        return false;
                off += (size_t) n;
        }
        return g_socket_send(vm->qmp, "\n", 1, NULL, error) == 1;
}

bool glvm_qmp_connect(GlvmVm *vm, int timeout_ms, GError **error) {
        g_autofree char *path = g_build_filename(vm->run_dir, "qmp.sock", NULL);
        g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
        gint64 deadline = glvm_deadline(timeout_ms);
        g_autoptr(json_object) r = NULL;

        for (;;) {
                g_autoptr(GError) e = NULL;

                vm->qmp = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, error);
                if (!vm->qmp)
                        return false;
                if (g_socket_connect(vm->qmp, addr, NULL, &e))
                        break;
                g_clear_object(&vm->qmp);
                if (vm->qemu_exited) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_EXITED,
                                    "qemu exited with status %d at start; see %s/qemu.log", vm->qemu_status,
                                    vm->log_dir);
                        return false;
                }
                if (glvm_deadline_passed(deadline)) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_TIMEOUT, "QMP connect: %s", e->message);
                        return false;
                }
                glvm_vm_iterate_until(vm, MIN(deadline, glvm_deadline(20)));
        }
        g_socket_set_blocking(vm->qmp, FALSE);
        vm->qmp_source = g_socket_create_source(vm->qmp, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
        g_source_set_callback(vm->qmp_source, (GSourceFunc) (void (*)(void)) qmp_readable, vm, NULL);
        g_source_attach(vm->qmp_source, vm->ctx);
        r = glvm_vm_qmp(vm, "qmp_capabilities", NULL, MAX(1000, (int) ((deadline - g_get_monotonic_time()) / 1000)),
                        error);
        return r != NULL;
}

json_object *glvm_vm_qmp(GlvmVm *vm, const char *command, const char *args_json, int timeout_ms, GError **error) {
        g_autoptr(json_object) req = json_object_new_object();
        gint64 deadline = glvm_deadline(timeout_ms);
        json_object *ret, *err;

        if (!vm->qmp_source) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_EXITED, "QMP is not connected");
                return NULL;
        }
        json_object_object_add(req, "execute", json_object_new_string(command));
        if (args_json) {
                json_object *args = json_tokener_parse(args_json);
                if (!args) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "bad QMP arguments: %s", args_json);
                        return NULL;
                }
                json_object_object_add(req, "arguments", args);
        }
        vm->qmp_waiting_id = vm->qmp_next_id++;
        json_object_object_add(req, "id", json_object_new_int64((int64_t) vm->qmp_waiting_id));
        if (!qmp_send(vm, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), error))
                return NULL;
        while (!vm->qmp_reply) {
                if (!vm->qmp_source || glvm_deadline_passed(deadline)) {
                        g_set_error(error, GLVM_ERROR, vm->qmp_source ? GLVM_ERROR_TIMEOUT : GLVM_ERROR_EXITED,
                                    "no QMP reply to %s within %d ms", command, timeout_ms);
                        vm->qmp_waiting_id = 0;
                        return NULL;
                }
                glvm_vm_iterate_until(vm, deadline);
        }
        vm->qmp_waiting_id = 0;
        if (json_object_object_get_ex(vm->qmp_reply, "error", &err)) {
                json_object *desc = NULL;
                json_object_object_get_ex(err, "desc", &desc);
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_QMP, "QMP %s: %s", command,
                            desc ? json_object_get_string(desc) : "error");
                g_clear_pointer(&vm->qmp_reply, json_object_put);
                return NULL;
        }
        if (!json_object_object_get_ex(vm->qmp_reply, "return", &ret))
                ret = NULL;
        ret = ret ? json_object_get(ret) : json_object_new_object();
        g_clear_pointer(&vm->qmp_reply, json_object_put);
        return ret;
}

json_object *glvm_vm_qmpf(GlvmVm *vm, const char *command, int timeout_ms, GError **error, const char *args_fmt, ...) {
        g_autofree char *args = NULL;
        va_list ap;

        va_start(ap, args_fmt);
        args = g_strdup_vprintf(args_fmt, ap);
        va_end(ap);
        return glvm_vm_qmp(vm, command, args, timeout_ms, error);
}

static bool event_matches(json_object *ev, const char *event, const char *key, const char *value) {
        json_object *name, *data, *v;

        if (!json_object_object_get_ex(ev, "event", &name) || strcmp(json_object_get_string(name), event) != 0)
                return false;
        if (!key)
                return true;
        if (!json_object_object_get_ex(ev, "data", &data) || !json_object_object_get_ex(data, key, &v))
                return false;
        return !value || strcmp(json_object_get_string(v), value) == 0;
}

json_object *glvm_vm_wait_event(GlvmVm *vm, const char *event, const char *key, const char *value, int timeout_ms,
                                GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);

        for (;;) {
                for (GList *l = vm->qmp_events.head; l; l = l->next)
                        if (event_matches(l->data, event, key, value)) {
                                json_object *ev = l->data;
                                g_queue_delete_link(&vm->qmp_events, l);
                                return ev;
                        }
                if (glvm_deadline_passed(deadline) || !vm->qmp_source) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_TIMEOUT, "no QMP event %s%s%s%s%s within %d ms",
                                    event, key ? " " : "", key ? key : "", value ? "=" : "", value ? value : "",
                                    timeout_ms);
                        return NULL;
                }
                glvm_vm_iterate_until(vm, deadline);
        }
}

void glvm_vm_drop_events(GlvmVm *vm) {
        while (!g_queue_is_empty(&vm->qmp_events))
                json_object_put(g_queue_pop_head(&vm->qmp_events));
}

char *glvm_vm_status(GlvmVm *vm, GError **error) {
        g_autoptr(json_object) r = glvm_vm_qmp(vm, "query-status", NULL, 5000, error);
        json_object *s;

        if (!r)
                return NULL;
        if (!json_object_object_get_ex(r, "status", &s)) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_QMP, "query-status without status");
                return NULL;
        }
        return g_strdup(json_object_get_string(s));
}
