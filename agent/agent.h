/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Linux agent object: one GMainLoop, one channel, one session. */
#include <glib.h>

#include "agent-conf.h"

typedef struct GlAgent GlAgent;

/* Takes ownership of config. */
GlAgent *gl_agent_new(GlAgentConfig *config, const char *config_path, GError **error);
GlAgent *gl_agent_free(GlAgent *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlAgent, gl_agent_free)

/* Runs until SIGTERM or SIGINT; returns the exit status. */
int gl_agent_run(GlAgent *a);

/* Logging: the journal with structured fields under systemd (PRIORITY,
 * SYSLOG_IDENTIFIER, CODE_FILE/LINE/FUNC, GUESTLINK_COMPONENT), else stderr. */
#define gl_agent_log(priority, ...) gl_agent_log_full(priority, __FILE__, __LINE__, __func__, __VA_ARGS__)
void gl_agent_log_full(int priority, const char *file, int line, const char *func, const char *format, ...)
        G_GNUC_PRINTF(5, 6);
