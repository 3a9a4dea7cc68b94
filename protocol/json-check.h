/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stddef.h>

#include "frame.h"

/*
 * Parses one JSON object from untrusted bytes under the limits: UTF-8 is
 * validated, nesting depth and every string length (member names too) are
 * bounded, and nothing may follow the object.  Returns 0 and the object, or
 * a negative GlFrameError (JSON_SYNTAX, JSON_NOT_OBJECT, JSON_TOO_DEEP,
 * STRING_TOO_LONG, JSON_TOO_LARGE) and nothing.
 */
int gl_json_parse(const char *text, size_t len, const GlLimits *limits, json_object **ret);

/* The same with a tokener kept by the caller (gl_json_tokener_new(), with
 * the same limits): saves its allocation on every message. */
json_tokener *gl_json_tokener_new(const GlLimits *limits);
int gl_json_parse_with(json_tokener *tok, const char *text, size_t len, const GlLimits *limits, json_object **ret);

/* The lexical checks of gl_json_parse() alone (no parse, no allocation):
 * for text we are about to send. */
int gl_json_check_text(const char *text, size_t len, const GlLimits *limits);
