/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Power and lock on Linux: through systemd-logind when it runs (checking
 * its Can* answers first, following PrepareForShutdown/PrepareForSleep),
 * otherwise through the kernel: reboot(2) after sync(), /sys/power/state
 * for suspend and hibernation.
 */
#include <stddef.h>

#include "dispatch.h"

typedef struct GlPowerEvents {
        void (*system_event)(void *userdata, GlSystemEvent event);
        void (*done)(void *userdata, int error, const char *message); /* failures */
} GlPowerEvents;

typedef struct GlPower GlPower;

GlPower *gl_power_new(const GlPowerEvents *events, void *userdata);
GlPower *gl_power_free(GlPower *p);

const char *gl_power_backend(const GlPower *p);
int gl_power_check(GlPower *p, GlPowerAction action, char *reason, size_t reason_size);
void gl_power_execute(GlPower *p, GlPowerAction action, const char *wall_message);
int gl_power_lock(GlPower *p, unsigned *ret_sessions, char *reason, size_t reason_size);
