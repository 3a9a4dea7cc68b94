/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "glvm.h"

#define DT_P0 "org.guestlink.test.0"
#define DT_P1 "org.guestlink.test.1"
#define DT_CON "org.guestlink.test.con"
#define DT_STEP_TIMEOUT 30000

typedef struct DtCase {
        const char *id;
        const char *name;
        void (*fn)(void);
} DtCase;

extern const DtCase dt_cases_a[];
extern const DtCase dt_cases_b[];

GlvmVm *dt_vm_new(const char *case_id);
void dt_vm_boot(GlvmVm *vm, bool connect_ports);
GlvmProc *dt_guest(GlvmVm *vm, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void dt_at(GlvmProc *p, const char *step);
void dt_go(GlvmProc *p);
char *dt_value(GlvmProc *p, const char *key);
guint64 dt_value_u64(GlvmProc *p, const char *key);
void dt_done(GlvmProc *p, int timeout_ms);
void dt_no_oops(GlvmVm *vm);
void dt_connect(GlvmPort *p);
void dt_write(GlvmPort *p, const void *data, size_t len);
void dt_expect(GlvmPort *p, const char *text);
void dt_stream_fill(guint32 *state, guint8 *buf, size_t len);
guint64 dt_fnv1a(guint64 h, const guint8 *buf, size_t len);
void dt_stream_check(guint32 *state, GBytes *b, size_t offset);
#define DT_FNV_INIT G_GUINT64_CONSTANT(0xcbf29ce484222325)
