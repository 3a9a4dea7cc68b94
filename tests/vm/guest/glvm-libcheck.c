/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Proves that a project binary linked against glib and json-c runs in the
 * initramfs guest with the libraries the harness copied (ldd). */
#include <glib.h>
#include <json.h>
#include <stdio.h>

int main(void) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "glib", json_object_new_string(glib_check_version(2, 74, 0) ? "old" : "ok"));
        json_object_object_add(o, "json-c", json_object_new_string(json_c_version()));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return 0;
}
