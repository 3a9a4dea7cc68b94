/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control channel to glvm-guest (tests/vm/guest/glvm-guest.c): frames of
 * "<TYPE> <id> <len>\n" + payload in both directions.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "glvm-private.h"

#define CTL_MAX_PAYLOAD (4u * 1024u * 1024u)

static void ctl_frame(GlvmVm *vm, const char *type, guint64 id, const char *payload, size_t len) {
        GlvmProc *p;

        if (strcmp(type, "HELLO") == 0) {
                if (!vm->hello)
                        vm->hello_time = g_get_monotonic_time();
                vm->hello = true;
                vm->hello_count++;
                g_free(vm->hello_text);
                vm->hello_text = g_strndup(payload, len);
                glvm_log_line(vm->control_log, "HELLO", payload, len);
                return;
        }
        p = g_hash_table_lookup(vm->procs, &id);
        if (!p)
                return;
        if (strcmp(type, "OUT") == 0) {
                g_string_append_len(p->output, payload, (gssize) len);
                glvm_log_line(vm->control_log, "OUT", payload, len);
        } else if (strcmp(type, "EXIT") == 0) {
                int v = 0;
                g_autofree char *s = g_strndup(payload, len);

                glvm_log_line(vm->control_log, "EXIT", payload, len);
                if (sscanf(s, "exit %d", &v) == 1)
                        p->status = v;
                else if (sscanf(s, "signal %d", &v) == 1)
                        p->status = 128 + v;
                else
                        p->status = 255;
                p->exited = true;
        } else if (strcmp(type, "ERR") == 0) {
                glvm_log_line(vm->control_log, "ERR", payload, len);
                g_free(p->error);
                p->error = g_strndup(payload, len);
                p->exited = true;
                p->status = -1;
        }
}

void glvm_control_input(GlvmVm *vm) {
        GByteArray *rx = vm->control->rx;

        for (;;) {
                char type[8];
                unsigned long long id;
                size_t len, hlen;
                char hdr[81];
                guint8 *nl = memchr(rx->data, '\n', MIN(rx->len, 80u));

                if (!nl) {
                        if (rx->len >= 80)
                                g_error("glvm: garbage on the control channel");
                        return;
                }
                hlen = (size_t) (nl - rx->data);
                memcpy(hdr, rx->data, hlen);
                hdr[hlen] = 0;
                if (sscanf(hdr, "%7s %llu %zu", type, &id, &len) != 3 || len > CTL_MAX_PAYLOAD)
                        g_error("glvm: bad control frame header '%s'", hdr);
                if (rx->len < hlen + 1 + len)
                        return;
                ctl_frame(vm, type, (guint64) id, (const char *) rx->data + hlen + 1, len);
                g_byte_array_remove_range(rx, 0, (guint) (hlen + 1 + len));
        }
}

static bool ctl_send(GlvmVm *vm, const char *type, guint64 id, const char *payload, size_t len, GError **error) {
        g_autofree char *hdr = g_strdup_printf("%s %" G_GUINT64_FORMAT " %zu\n", type, id, len);

        if (!vm->control->sock || vm->control->eof || vm->qemu_exited) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_EXITED, "control channel is down");
                return false;
        }
        glvm_log_line(vm->control_log, type, payload, len);
        glvm_port_queue(vm->control, hdr, strlen(hdr));
        glvm_port_queue(vm->control, payload, len);
        return true;
}

static void proc_registry_remove(GlvmProc *p) {
        if (p->vm)
                g_hash_table_remove(p->vm->procs, &p->id);
}

void glvm_control_abandon(GlvmVm *vm) {
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, vm->procs);
        while (g_hash_table_iter_next(&it, NULL, &v))
                ((GlvmProc *) v)->vm = NULL;
        g_hash_table_remove_all(vm->procs);
}

GlvmProc *glvm_vm_spawn(GlvmVm *vm, const char *cmd, GError **error) {
        GlvmProc *p = g_new0(GlvmProc, 1);

        p->vm = vm;
        p->id = vm->next_proc_id++;
        p->output = g_string_new(NULL);
        p->cmd = g_strdup(cmd);
        if (!ctl_send(vm, "RUN", p->id, cmd, strlen(cmd), error)) {
                glvm_proc_free(p);
                return NULL;
        }
        g_hash_table_insert(vm->procs, &p->id, p);
        return p;
}

GlvmProc *glvm_vm_spawnf(GlvmVm *vm, GError **error, const char *fmt, ...) {
        g_autofree char *cmd = NULL;
        va_list ap;

        va_start(ap, fmt);
        cmd = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        return glvm_vm_spawn(vm, cmd, error);
}

void glvm_proc_free(GlvmProc *p) {
        if (!p)
                return;
        proc_registry_remove(p);
        g_string_free(p->output, TRUE);
        g_free(p->error);
        g_free(p->cmd);
        g_free(p);
}

static bool proc_check(GlvmProc *p, gint64 deadline, int timeout_ms, const char *what, GError **error) {
        if (!p->vm) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_EXITED, "%s: the VM is gone", what);
                return false;
        }
        if (p->vm->qemu_exited || p->vm->control->eof) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_EXITED, "%s: qemu exited (status %d) while running '%s'",
                            what, p->vm->qemu_status, p->cmd);
                return false;
        }
        if (glvm_deadline_passed(deadline)) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_TIMEOUT,
                            "%s: timed out after %d ms; '%s' printed so far:\n%s", what, timeout_ms, p->cmd,
                            p->output->str);
                return false;
        }
        return true;
}

bool glvm_proc_expect(GlvmProc *p, const char *needle, int timeout_ms, GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);

        for (;;) {
                const char *hit = strstr(p->output->str + p->matched, needle);
                if (hit) {
                        p->matched = (size_t) (hit - p->output->str) + strlen(needle);
                        return true;
                }
                if (p->exited) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_EXITED,
                                    "'%s' exited (%d) without printing '%s'; output:\n%s", p->cmd, p->status, needle,
                                    p->output->str);
                        return false;
                }
                if (!proc_check(p, deadline, timeout_ms, needle, error))
                        return false;
                glvm_vm_iterate_until(p->vm, deadline);
        }
}

char *glvm_proc_expect_line(GlvmProc *p, const char *prefix, int timeout_ms, GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);
        const char *start, *end;

        if (!glvm_proc_expect(p, prefix, timeout_ms, error))
                return NULL;
        for (;;) {
                start = p->output->str + p->matched;
                end = strchr(start, '\n');
                if (end) {
                        p->matched += (size_t) (end - start) + 1;
                        return g_strndup(start, (gsize) (end - start));
                }
                if (p->exited)
                        return g_strdup(start);
                if (!proc_check(p, deadline, timeout_ms, prefix, error))
                        return NULL;
                glvm_vm_iterate_until(p->vm, deadline);
        }
}

bool glvm_proc_send(GlvmProc *p, const char *text, GError **error) {
        if (!p->vm) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_EXITED, "the VM is gone");
                return false;
        }
        return ctl_send(p->vm, "IN", p->id, text, strlen(text), error);
}

bool glvm_proc_close_stdin(GlvmProc *p, GError **error) {
        if (!p->vm) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_EXITED, "the VM is gone");
                return false;
        }
        return ctl_send(p->vm, "EOF", p->id, "", 0, error);
}

bool glvm_proc_kill(GlvmProc *p, int sig, GError **error) {
        g_autofree char *s = g_strdup_printf("%d", sig);

        if (!p->vm) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_EXITED, "the VM is gone");
                return false;
        }
        return ctl_send(p->vm, "KILL", p->id, s, strlen(s), error);
}

int glvm_proc_wait(GlvmProc *p, int timeout_ms, GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);

        while (!p->exited) {
                if (!proc_check(p, deadline, timeout_ms, "wait", error))
                        return -1;
                glvm_vm_iterate_until(p->vm, deadline);
        }
        if (p->error) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "guest could not run '%s': %s", p->cmd, p->error);
                return -1;
        }
        return p->status;
}

const char *glvm_proc_output(GlvmProc *p) {
        return p->output->str;
}

int glvm_vm_run(GlvmVm *vm, const char *cmd, int timeout_ms, char **ret_output, GError **error) {
        g_autoptr(GlvmProc) p = glvm_vm_spawn(vm, cmd, error);
        int r;

        if (!p)
                return -1;
        r = glvm_proc_wait(p, timeout_ms, error);
        if (r >= 0 && ret_output)
                *ret_output = g_strdup(p->output->str);
        return r;
}

char *glvm_vm_check(GlvmVm *vm, int timeout_ms, const char *fmt, ...) {
        g_autoptr(GError) error = NULL;
        g_autofree char *cmd = NULL, *out = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        cmd = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        r = glvm_vm_run(vm, cmd, timeout_ms, &out, &error);
        if (r != 0) {
                g_autofree char *msg = NULL;

                if (error)
                        msg = g_strdup_printf("guest command '%s' failed: %s", cmd, error->message);
                else
                        msg = g_strdup_printf("guest command '%s' exited with %d; output:\n%s", cmd, r, out ? out : "");
                g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, msg);
        }
        return g_steal_pointer(&out);
}
