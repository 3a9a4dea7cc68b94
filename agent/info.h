/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The system part of an info result (PROTOCOL.md 11.4): os, kernel,
 * architecture, hostname, ids, uptime, time zone, users, interfaces.
 * Files are read under root ("/" in production, a fixture tree in tests). */
#include <json-c/json.h>

int gl_info_collect(const char *root, json_object *result);
