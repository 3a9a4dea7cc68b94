/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The metrics tests' sample guests (tests/data/metrics-guests.json). */
#include <glib.h>

#include "metrics.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

typedef struct MetricsTestData {
        json_object *root;
        GArray *guests; /* of GlMetricsGuest, borrowing from root */
        GlMetricsBridge bridge;
} MetricsTestData;

/* Aborts the test on failure. */
MetricsTestData *metrics_test_data_new(void);
MetricsTestData *metrics_test_data_free(MetricsTestData *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MetricsTestData, metrics_test_data_free)

/* $GL_TEST_DATA/name, or the source tree's tests/data/name. */
char *metrics_test_data_path(const char *name);
