/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <stdio.h>

#include "glvm.h"

#define GLVM_CONTROL_PORT "org.guestlink.test.control"
#define GLVM_TEST_BUS "vser0"
#define GLVM_CONTROL_BUS "glvmctl"
#define GLVM_QMP_MAX_LINE (4u * 1024u * 1024u)

struct GlvmPort {
        GlvmVm *vm;
        char *name;
        char *device_id;
        char *chardev_id;
        char *path;
        GlvmPortMode mode;
        bool is_control;
        bool hotplugged;
        GSocket *listener; /* client mode */
        GSocket *sock;
        GSource *source;
        GIOCondition source_cond;
        bool reading;
        bool eof;
        GByteArray *rx;
        GByteArray *tx;
        size_t tx_off;
        guint64 rx_total;
        guint64 tx_total;
};

struct GlvmProc {
        GlvmVm *vm;
        guint64 id;
        GString *output;
        size_t matched; /* offset after the last expect() match */
        bool exited;
        int status;
        char *error; /* ERR from the guest */
        char *cmd;
};

typedef struct GlvmImageFile {
        char *host_path; /* NULL: data */
        char *guest_path;
        unsigned mode;
        GBytes *data;
} GlvmImageFile;

struct GlvmVm {
        char *test_name;
        GlvmFlavour flavour;
        GMainContext *ctx;
        char *run_dir;
        char *log_dir;
        char *cache_dir;
        char *qemu;
        char *kernel;
        char *kver;
        char *image; /* initramfs or ext4 image */
        GString *cmdline_extra;
        GPtrArray *qemu_extra; /* char* */
        GPtrArray *ports;      /* GlvmPort*, test ports */
        GPtrArray *binaries;   /* GlvmImageFile* (binaries with ldd) */
        GPtrArray *files;      /* GlvmImageFile* */
        GPtrArray *modules;    /* char* */
        unsigned max_ports;
        unsigned memory_mib;
        bool no_reboot;
        unsigned next_port_nr;

        GSubprocess *qemu_proc;
        GPid qemu_pid;
        bool qemu_exited;
        int qemu_status;
        gint64 spawn_time;
        gint64 hello_time;

        /* QMP */
        GSocket *qmp;
        GSource *qmp_source;
        GString *qmp_in;
        GQueue qmp_events; /* json_object* */
        json_object *qmp_reply;
        guint64 qmp_next_id;
        guint64 qmp_waiting_id;
        FILE *qmp_log;

        /* control channel */
        GlvmPort *control;
        GString *ctl_in;
        bool hello;
        guint hello_count;
        char *hello_text;
        guint64 next_proc_id;
        GHashTable *procs; /* id -> GlvmProc* (not owned) */
        FILE *control_log;

        char *console_path;
        char *appliance; /* command started at boot, or NULL */
        bool started;
};

/* What an initramfs is built from (a VM's configuration, or an appliance's). */
typedef struct GlvmImageInputs {
        const char *kver;
        const char *cache_dir;
        GPtrArray *binaries;   /* GlvmImageFile* (binaries with ldd) */
        GPtrArray *files;      /* GlvmImageFile* */
        GPtrArray *modules;    /* char* */
        const char *appliance; /* NULL, or a /bin/sh command started at boot */
} GlvmImageInputs;

/* glvm-util.c */
char *glvm_find_qemu(void);
bool glvm_find_kernel(char **ret_kernel, char **ret_kver, GError **error);
char *glvm_cache_dir(void);
char *glvm_logs_root(void);
bool glvm_deadline_passed(gint64 deadline);
gint64 glvm_deadline(int timeout_ms);
/* Runs the context once, waking up no later than @deadline. */
void glvm_vm_iterate_until(GlvmVm *vm, gint64 deadline);
void glvm_log_line(FILE *f, const char *dir, const char *text, size_t len);
char *glvm_run_capture(const char *const *argv, GError **error);

/* glvm-image.c */
/* Appends the shared libraries of @path as ldd lists them (loader included). */
bool glvm_ldd(const char *path, GPtrArray *ret, GError **error);
char *glvm_image_build_initramfs(GlvmVm *vm, GError **error);
char *glvm_image_build_initramfs_from(const GlvmImageInputs *in, GError **error);
char *glvm_image_build_systemd(GlvmVm *vm, GError **error);

/* glvm-vm.c */
void glvm_image_file_free(gpointer data);
void glvm_image_file_add(GPtrArray *a, const char *host, const char *guest, unsigned mode);

/* glvm-qmp.c */
bool glvm_qmp_connect(GlvmVm *vm, int timeout_ms, GError **error);
void glvm_qmp_close(GlvmVm *vm);

/* glvm-port.c */
GlvmPort *glvm_port_new(GlvmVm *vm, const char *name, GlvmPortMode mode, bool control);
void glvm_port_free(GlvmPort *p);
bool glvm_port_prepare(GlvmPort *p, GError **error);
void glvm_port_update_source(GlvmPort *p);

/* glvm-control.c */
void glvm_control_input(GlvmVm *vm);
void glvm_control_abandon(GlvmVm *vm);
