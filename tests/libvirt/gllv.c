/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gllv: a real libvirtd and TCG domains for tests (gllv.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gllv.h"
#include "glvm.h"

#define GLLV_STATE_DIR "/run/gllv"
#define GLLV_SYSTEM_URI "qemu:///system"
#define GLLV_TCP_URI "qemu+tcp://127.0.0.1/system"
#define GLLV_LIBVIRTD_PIDFILE "/run/libvirtd.pid"
#define GLLV_VIRTLOGD_PIDFILE "/run/virtlogd.pid"
#define GLLV_START_TIMEOUT_MS 30000
#define GLLV_AGENT_GUEST_PATH "/usr/sbin/guestlink-agent"

static const char libvirtd_conf[] = "# written by the guestlink tests (tests/libvirt/gllv.c)\n"
                                    "listen_tls = 0\n"
                                    "listen_tcp = 1\n"
                                    "listen_addr = \"127.0.0.1\"\n"
                                    "auth_tcp = \"none\"\n";

struct Gllv {
        char *test_name;
        char *dir; /* /tmp/gllv-PID-XXXXXX, 0755: libvirt-qemu reads the images here */
        bool owned;
        bool tcp;
        GSubprocess *janitor;
        GPtrArray *domains; /* GllvDomain* */
        unsigned next;
};

struct GllvDomain {
        Gllv *lv;
        char *name;
        char *uuid;
        char *dir;
        char *channel_path;
        char *console_path;
        bool defined;
};

static void quiet(void *userdata, virErrorPtr err) {
        (void) userdata;
        (void) err;
}

static const char *last_error(void) {
        const char *m = virGetLastErrorMessage();
        return m ? m : "unknown error";
}

/* --- processes ------------------------------------------------------------ */

/* Alive and named @comm (a zombie counts as dead: our PID 1 may not reap). */
static bool process_is(pid_t pid, const char *comm) {
        g_autofree char *p = g_strdup_printf("/proc/%d/stat", (int) pid), *stat = NULL;
        const char *close_paren;
        g_autofree char *name = NULL;

        if (pid <= 0 || !g_file_get_contents(p, &stat, NULL, NULL))
                return false;
        close_paren = strrchr(stat, ')');
        if (!close_paren || !strchr(stat, '(') || close_paren[1] != ' ' || close_paren[2] == 'Z')
                return false;
        name = g_strndup(strchr(stat, '(') + 1, (gsize) (close_paren - strchr(stat, '(') - 1));
        return !comm || g_str_equal(name, comm);
}

static pid_t read_pidfile(const char *path) {
        g_autofree char *text = NULL;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return 0;
        return (pid_t) strtol(text, NULL, 10);
}

static pid_t running(const char *pidfile, const char *comm) {
        pid_t pid = read_pidfile(pidfile);

        return process_is(pid, comm) ? pid : 0;
}

/* SIGTERM, then SIGKILL after 10 s; waits until the process is gone. */
static void stop_process(pid_t pid, const char *comm) {
        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

        if (!process_is(pid, comm))
                return;
        (void) kill(pid, SIGTERM);
        while (process_is(pid, comm)) {
                if (g_get_monotonic_time() > deadline) {
                        (void) kill(pid, SIGKILL);
                        deadline = G_MAXINT64;
                }
                g_usleep(20000);
        }
}

static bool conn_answers(const char *uri) {
        virConnectPtr c = virConnectOpen(uri);

        if (!c) {
                virResetLastError();
                return false;
        }
        virConnectClose(c);
        return true;
}

/* Runs a daemon's "-d" launcher to completion, output to a log file. */
static bool spawn_daemon(const char *const *argv, GError **error) {
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_INHERIT);
        g_autoptr(GSubprocess) p = NULL;
        g_autofree char *base = g_path_get_basename(argv[0]);
        g_autofree char *log = g_strdup_printf(GLLV_STATE_DIR "/%s.log", base);

        g_subprocess_launcher_set_stdout_file_path(l, log);
        g_subprocess_launcher_set_stderr_file_path(l, log);
        p = g_subprocess_launcher_spawnv(l, argv, error);
        if (!p || !g_subprocess_wait_check(p, NULL, error))
                return false;
        return true;
}

static bool start_libvirtd(GError **error) {
        const char *argv[] = { "libvirtd", "-d", "--listen", "-f", GLLV_STATE_DIR "/libvirtd.conf", NULL };
        gint64 deadline = g_get_monotonic_time() + (gint64) GLLV_START_TIMEOUT_MS * 1000;

        if (!g_file_set_contents(GLLV_STATE_DIR "/libvirtd.conf", libvirtd_conf, -1, error))
                return false;
        if (!spawn_daemon(argv, error))
                return false;
        while (!conn_answers(GLLV_SYSTEM_URI)) {
                if (g_get_monotonic_time() > deadline) {
                        g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "libvirtd did not answer in %d ms",
                                    GLLV_START_TIMEOUT_MS);
                        return false;
                }
                g_usleep(50000);
        }
        return running(GLLV_LIBVIRTD_PIDFILE, "libvirtd") > 0;
}

/* --- leases ---------------------------------------------------------------
 * GLLV_STATE_DIR/daemon holds "LIBVIRTD_PID VIRTLOGD_PID" (0: not ours) while
 * gllv runs a libvirtd; lease-PID files name the tests using it. */

static int lock_state(void) {
        int fd;

        g_assert_cmpint(g_mkdir_with_parents(GLLV_STATE_DIR, 0755), ==, 0);
        fd = open(GLLV_STATE_DIR "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(flock(fd, LOCK_EX), ==, 0);
        return fd;
}

/* Removes leases of dead processes; returns how many live ones remain. */
static unsigned count_leases(void) {
        g_autoptr(GDir) d = g_dir_open(GLLV_STATE_DIR, 0, NULL);
        const char *n;
        unsigned live = 0;

        while (d && (n = g_dir_read_name(d))) {
                g_autofree char *p = NULL;
                long pid;

                if (!g_str_has_prefix(n, "lease-"))
                        continue;
                pid = strtol(n + 6, NULL, 10);
                if (process_is((pid_t) pid, NULL)) {
                        live++;
                        continue;
                }
                p = g_build_filename(GLLV_STATE_DIR, n, NULL);
                (void) unlink(p);
        }
        return live;
}

static bool read_daemon(pid_t *ret_libvirtd, pid_t *ret_virtlogd) {
        g_autofree char *text = NULL;
        long a = 0, b = 0;

        if (!g_file_get_contents(GLLV_STATE_DIR "/daemon", &text, NULL, NULL) || sscanf(text, "%ld %ld", &a, &b) != 2)
                return false;
        *ret_libvirtd = (pid_t) a;
        *ret_virtlogd = (pid_t) b;
        return true;
}

static void write_daemon(pid_t libvirtd, pid_t virtlogd) {
        g_autofree char *text = g_strdup_printf("%d %d\n", (int) libvirtd, (int) virtlogd);

        g_assert_true(g_file_set_contents(GLLV_STATE_DIR "/daemon", text, -1, NULL));
}

static char *lease_path(void) {
        return g_strdup_printf(GLLV_STATE_DIR "/lease-%d", (int) getpid());
}

static bool acquire(Gllv *lv, GError **error) {
        int lock = lock_state();
        pid_t lpid = running(GLLV_LIBVIRTD_PIDFILE, "libvirtd"), ours_l = 0, ours_v = 0;
        bool have_daemon_file = read_daemon(&ours_l, &ours_v);
        g_autofree char *lease = lease_path();
        bool ok = true;

        (void) count_leases();
        if (lpid > 0) {
                lv->owned = have_daemon_file && ours_l == lpid;
                if (!lv->owned)
                        g_test_message("gllv: reusing the running libvirtd (pid %d); it stays running", (int) lpid);
        } else {
                pid_t vpid = running(GLLV_VIRTLOGD_PIDFILE, "virtlogd");
                pid_t started_v = 0;

                (void) unlink(GLLV_STATE_DIR "/daemon");
                if (vpid == 0) {
                        const char *argv[] = { "virtlogd", "-d", NULL };
                        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

                        ok = spawn_daemon(argv, error);
                        while (ok && (started_v = running(GLLV_VIRTLOGD_PIDFILE, "virtlogd")) == 0 &&
                               g_get_monotonic_time() < deadline)
                                g_usleep(20000);
                        if (ok && started_v == 0) {
                                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "virtlogd did not start");
                                ok = false;
                        }
                }
                if (ok)
                        ok = start_libvirtd(error);
                if (ok) {
                        lpid = running(GLLV_LIBVIRTD_PIDFILE, "libvirtd");
                        write_daemon(lpid, started_v);
                        lv->owned = true;
                        g_test_message("gllv: started libvirtd (pid %d), virtlogd (pid %d)", (int) lpid,
                                       (int) started_v);
                } else if (started_v > 0)
                        stop_process(started_v, "virtlogd");
        }
        if (ok && lv->owned)
                g_assert_true(g_file_set_contents(lease, "", 0, NULL));
        close(lock);
        return ok;
}

static void release(Gllv *lv) {
        int lock;
        g_autofree char *lease = lease_path();
        pid_t l, v;

        if (!lv->owned)
                return;
        lock = lock_state();
        (void) unlink(lease);
        if (count_leases() == 0 && read_daemon(&l, &v)) {
                stop_process(l, "libvirtd");
                if (v > 0)
                        stop_process(v, "virtlogd");
                (void) unlink(GLLV_STATE_DIR "/daemon");
                g_test_message("gllv: stopped libvirtd (pid %d) and virtlogd (pid %d)", (int) l, (int) v);
        }
        close(lock);
}

bool gllv_restart_daemon(Gllv *lv, int down_ms, GError **error) {
        int lock;
        pid_t l, v;
        bool ok;

        if (!lv->owned) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "libvirtd is not ours to restart");
                return false;
        }
        lock = lock_state();
        g_assert_true(read_daemon(&l, &v));
        stop_process(l, "libvirtd");
        g_usleep((gulong) down_ms * 1000);
        ok = start_libvirtd(error);
        if (ok)
                write_daemon(running(GLLV_LIBVIRTD_PIDFILE, "libvirtd"), v);
        close(lock);
        return ok;
}

/* --- the janitor ----------------------------------------------------------
 * Waits for its stdin to close (our exit, also a crash or SIGKILL) and then
 * destroys and undefines any domain of ours that is left, retrying while
 * libvirtd is away (a restart).  It holds a lease of its own meanwhile, so
 * that the libvirtd is not stopped under a qemu nobody would clean up. */
static GSubprocess *janitor_start(void) {
        g_autofree char *script = g_strdup_printf("cat >/dev/null\n"
                                                  "for i in $(seq 30); do\n"
                                                  "  out=$(virsh -q -c " GLLV_SYSTEM_URI
                                                  " list --all --name) || { sleep 1; continue; }\n"
                                                  "  left=$(echo \"$out\" | grep '^gltest-%d-')\n"
                                                  "  [ -z \"$left\" ] && break\n"
                                                  "  for d in $left; do\n"
                                                  "    virsh -q -c " GLLV_SYSTEM_URI " destroy \"$d\"\n"
                                                  "    virsh -q -c " GLLV_SYSTEM_URI " undefine \"$d\"\n"
                                                  "  done\n"
                                                  "done\n"
                                                  "rm -f " GLLV_STATE_DIR "/lease-$$\n",
                                                  (int) getpid());
        const char *argv[] = { "/bin/sh", "-c", script, NULL };
        GSubprocess *p = g_subprocess_newv(argv,
                                           G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                   G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                                           NULL);
        g_autofree char *lease = NULL;

        g_assert_nonnull(p);
        lease = g_strdup_printf(GLLV_STATE_DIR "/lease-%s", g_subprocess_get_identifier(p));
        g_assert_true(g_file_set_contents(lease, "", 0, NULL));
        return p;
}

/* --- the object ----------------------------------------------------------- */

static char *agent_appliance_command(void) {
        return g_strdup("exec " GLLV_AGENT_GUEST_PATH " --port " GLLV_CHANNEL);
}

static void remove_tree(const char *path) {
        g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
        const char *n;

        while (d && (n = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(path, n, NULL);
                if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
                        remove_tree(p);
                else
                        (void) unlink(p);
        }
        (void) rmdir(path);
}

/* The boot images (22 MB a domain) of @dir/N/; logs and XML stay. */
static void remove_images(const char *dir) {
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *n;

        while (d && (n = g_dir_read_name(d))) {
                static const char *const files[] = { "vmlinuz", "initrd.img", "agent.sock" };

                for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
                        g_autofree char *p = g_build_filename(dir, n, files[i], NULL);
                        (void) unlink(p);
                }
        }
}

/* Directories of tests that died without cleaning up keep their logs, not
 * their images. */
static void trim_stale_dirs(void) {
        g_autoptr(GDir) d = g_dir_open(g_get_tmp_dir(), 0, NULL);
        const char *n;

        while (d && (n = g_dir_read_name(d))) {
                g_autofree char *p = NULL;
                char *end;
                long pid;

                if (!g_str_has_prefix(n, "gllv-"))
                        continue;
                pid = strtol(n + 5, &end, 10);
                if (pid <= 0 || *end != '-' || process_is((pid_t) pid, NULL))
                        continue;
                p = g_build_filename(g_get_tmp_dir(), n, NULL);
                remove_images(p);
        }
}

Gllv *gllv_new(const char *test_name) {
        g_autofree char *libvirtd = g_find_program_in_path("libvirtd");
        g_autofree char *virtlogd = g_find_program_in_path("virtlogd");
        g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
        g_autoptr(GError) error = NULL;
        g_autofree char *tmpl = NULL;
        Gllv *lv;

        if (!libvirtd || !virtlogd || !qemu) {
                if (glvm_ci()) {
                        g_printerr("libvirtd, virtlogd or qemu-system-x86_64 not found and CI is set: failing\n");
                        exit(1);
                }
                g_print("1..0 # SKIP libvirtd, virtlogd or qemu-system-x86_64 not found\n");
                exit(77);
        }
        if (geteuid() != 0) {
                if (glvm_ci()) {
                        g_printerr("the libvirt tests need root (a system libvirtd) and CI is set: failing\n");
                        exit(1);
                }
                g_print("1..0 # SKIP not root: the libvirt tests need a system libvirtd\n");
                exit(77);
        }
        virSetErrorFunc(NULL, quiet);
        trim_stale_dirs();

        lv = g_new0(Gllv, 1);
        lv->test_name = g_strdup(test_name);
        lv->domains = g_ptr_array_new();
        tmpl = g_strdup_printf("gllv-%d-XXXXXX", (int) getpid());
        lv->dir = g_dir_make_tmp(tmpl, &error);
        g_assert_no_error(error);
        g_assert_cmpint(chmod(lv->dir, 0755), ==, 0);
        if (!acquire(lv, &error))
                g_error("gllv: cannot start libvirtd: %s", error->message);
        lv->janitor = janitor_start();
        lv->tcp = conn_answers(GLLV_TCP_URI);
        if (!lv->tcp)
                virResetLastError();
        return lv;
}

static void domain_free(GllvDomain *d) {
        g_free(d->name);
        g_free(d->uuid);
        g_free(d->dir);
        g_free(d->channel_path);
        g_free(d->console_path);
        g_free(d);
}

void gllv_free(Gllv *lv) {
        virConnectPtr c;

        if (!lv)
                return;
        c = virConnectOpen(GLLV_SYSTEM_URI);
        for (guint i = 0; i < lv->domains->len; i++) {
                GllvDomain *d = lv->domains->pdata[i];
                virDomainPtr dom = c ? virDomainLookupByName(c, d->name) : NULL;

                if (dom) {
                        if (virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0)
                                g_test_message("gllv: destroy %s: %s", d->name, last_error());
                        if (virDomainUndefine(dom) < 0)
                                g_test_message("gllv: undefine %s: %s", d->name, last_error());
                        virDomainFree(dom);
                }
                domain_free(d);
        }
        if (c)
                virConnectClose(c);
        virResetLastError();
        g_ptr_array_unref(lv->domains);
        if (lv->janitor) {
                GOutputStream *in = g_subprocess_get_stdin_pipe(lv->janitor);

                (void) g_output_stream_close(in, NULL, NULL);
                (void) g_subprocess_wait(lv->janitor, NULL, NULL);
                g_object_unref(lv->janitor);
        }
        release(lv);
        if (g_test_failed() || g_getenv("GLVM_KEEP_LOGS")) {
                remove_images(lv->dir);
                g_test_message("gllv: console logs and XML of %s kept in %s", lv->test_name, lv->dir);
        } else
                remove_tree(lv->dir);
        g_free(lv->dir);
        g_free(lv->test_name);
        g_free(lv);
}

bool gllv_owns_daemon(Gllv *lv) {
        return lv->owned;
}

const char *gllv_tcp_uri(Gllv *lv) {
        return lv->tcp ? GLLV_TCP_URI : NULL;
}

/* --- domains -------------------------------------------------------------- */

static char *domain_xml(const GllvDomain *d, const char *kernel, const char *initrd, const char *emulator) {
        GString *x = g_string_new(NULL);
        g_autofree char *e_kernel = g_markup_escape_text(kernel, -1);
        g_autofree char *e_initrd = g_markup_escape_text(initrd, -1);
        g_autofree char *e_console = g_markup_escape_text(d->console_path, -1);

        g_string_append_printf(x,
                               "<domain type='qemu'>\n"
                               "  <name>%s</name>\n"
                               "  <uuid>%s</uuid>\n"
                               "  <memory unit='MiB'>256</memory>\n"
                               "  <vcpu>1</vcpu>\n"
                               "  <os>\n"
                               "    <type arch='x86_64' machine='q35'>hvm</type>\n"
                               "    <kernel>%s</kernel>\n"
                               "    <initrd>%s</initrd>\n"
                               "    <cmdline>console=ttyS0 panic=-1 quiet</cmdline>\n"
                               "  </os>\n"
                               "  <features><acpi/></features>\n"
                               "  <on_poweroff>destroy</on_poweroff>\n"
                               "  <on_reboot>destroy</on_reboot>\n"
                               "  <on_crash>destroy</on_crash>\n"
                               "  <devices>\n"
                               "    <emulator>%s</emulator>\n"
                               "    <controller type='virtio-serial' index='0'/>\n",
                               d->name, d->uuid, e_kernel, e_initrd, emulator);
        if (d->channel_path) {
                g_autofree char *e_path = g_markup_escape_text(d->channel_path, -1);
                g_string_append_printf(x,
                                       "    <channel type='unix'>\n"
                                       "      <source mode='bind' path='%s'/>\n"
                                       "      <target type='virtio' name='" GLLV_CHANNEL "'/>\n"
                                       "    </channel>\n",
                                       e_path);
        }
        g_string_append_printf(x,
                               "    <serial type='file'><source path='%s'/><target port='0'/></serial>\n"
                               "    <memballoon model='none'/>\n"
                               "  </devices>\n"
                               "</domain>\n",
                               e_console);
        return g_string_free(x, FALSE);
}

GllvDomain *gllv_domain_start(Gllv *lv, bool with_channel, GError **error) {
        g_autoptr(GlvmAppliance) a = NULL;
        g_autofree char *kernel = NULL, *initrd = NULL, *xml = NULL, *cmd = agent_appliance_command();
        g_autofree char *emulator = g_find_program_in_path("qemu-system-x86_64");
        const char *agent = g_getenv("GL_AGENT_BINARY");
        GllvDomain *d = g_new0(GllvDomain, 1);
        virConnectPtr c = NULL;
        virDomainPtr dom = NULL;
        bool ok = false;

        g_assert_nonnull(agent);
        d->lv = lv;
        d->name = g_strdup_printf("gltest-%d-%u", (int) getpid(), ++lv->next);
        d->uuid = g_uuid_string_random();
        d->dir = g_strdup_printf("%s/%u", lv->dir, lv->next);
        d->console_path = g_build_filename(d->dir, "console.log", NULL);
        if (with_channel)
                d->channel_path = g_build_filename(d->dir, "agent.sock", NULL);
        g_ptr_array_add(lv->domains, d);

        a = glvm_appliance_new(cmd);
        glvm_appliance_add_binary(a, agent, GLLV_AGENT_GUEST_PATH);
        if (!glvm_appliance_build(a, d->dir, &kernel, &initrd, error))
                return NULL;
        xml = domain_xml(d, kernel, initrd, emulator);
        {
                g_autofree char *p = g_build_filename(d->dir, "domain.xml", NULL);
                (void) g_file_set_contents(p, xml, -1, NULL);
        }
        c = virConnectOpen(GLLV_SYSTEM_URI);
        if (!c)
                goto fail;
        dom = virDomainDefineXML(c, xml);
        if (!dom)
                goto fail;
        d->defined = true;
        if (virDomainCreate(dom) < 0)
                goto fail;
        ok = true;
fail:
        if (!ok)
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "starting %s: %s", d->name, last_error());
        virResetLastError();
        if (dom)
                virDomainFree(dom);
        if (c)
                virConnectClose(c);
        return ok ? d : NULL;
}

const char *gllv_domain_name(const GllvDomain *d) {
        return d->name;
}

const char *gllv_domain_uuid(const GllvDomain *d) {
        return d->uuid;
}

const char *gllv_domain_channel_path(const GllvDomain *d) {
        return d->channel_path;
}

const char *gllv_domain_console_path(const GllvDomain *d) {
        return d->console_path;
}

bool gllv_domain_wait_console(GllvDomain *d, const char *needle, int timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;
        GMainContext *ctx = g_main_context_get_thread_default();

        for (;;) {
                g_autofree char *text = NULL;

                if (g_file_get_contents(d->console_path, &text, NULL, NULL) && strstr(text, needle))
                        return true;
                if (g_get_monotonic_time() > deadline)
                        return false;
                /* keep the test's loop running meanwhile */
                while (g_main_context_iteration(ctx, FALSE))
                        ;
                g_usleep(20000);
        }
}

bool gllv_domain_destroy(GllvDomain *d, GError **error) {
        virConnectPtr c = virConnectOpen(GLLV_SYSTEM_URI);
        virDomainPtr dom = c ? virDomainLookupByName(c, d->name) : NULL;
        bool ok = dom && virDomainDestroy(dom) == 0;

        if (!ok)
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "destroying %s: %s", d->name, last_error());
        virResetLastError();
        if (dom)
                virDomainFree(dom);
        if (c)
                virConnectClose(c);
        return ok;
}
