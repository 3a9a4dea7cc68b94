/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* guestlink info: what the agent says about its guest (PROTOCOL.md 11.4). */
#include <stdio.h>

#include "cli.h"
#include "output.h"

/* "Label:" padded to this width. */
#define LABEL_WIDTH 15

static void field(const char *label, const char *peer_text) {
        g_autofree char *v = output_text(peer_text);

        printf("%-*s%s\n", LABEL_WIDTH, label, v);
}

/* For values built here from already sanitised pieces. */
static void field_take(const char *label, char *text) {
        printf("%-*s%s\n", LABEL_WIDTH, label, text ? text : "-");
        g_free(text);
}

/* Space-separated, sanitised strings of an array. */
static char *join_strings(json_object *array) {
        g_autoptr(GString) s = g_string_new(NULL);
        size_t n = array ? json_object_array_length(array) : 0;

        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(array, i);
                g_autofree char *t = NULL;

                if (!json_object_is_type(v, json_type_string))
                        continue;
                t = output_text(json_object_get_string(v));
                if (s->len)
                        g_string_append_c(s, ' ');
                g_string_append(s, t);
        }
        return s->len ? g_string_free(g_steal_pointer(&s), FALSE) : NULL;
}

static char *os_text(json_object *info) {
        const char *pretty = output_get_string(info, "os.pretty_name");
        const char *name = output_get_string(info, "os.name");
        const char *family = output_get_string(info, "os.family");
        g_autofree char *p = output_text(pretty ? pretty : name);
        g_autofree char *f = output_text(family);

        return g_strdup_printf("%s (%s)", p, f);
}

static char *kernel_text(json_object *info) {
        g_autofree char *n = output_text(output_get_string(info, "kernel.name"));
        g_autofree char *r = output_text(output_get_string(info, "kernel.release"));
        g_autofree char *v = output_text(output_get_string(info, "kernel.version"));

        return g_strdup_printf("%s %s %s", n, r, v);
}

static char *timezone_text(json_object *info) {
        g_autofree char *name = output_text(output_get_string(info, "timezone.name"));
        int64_t off;

        if (!output_get_int(info, "timezone.utc_offset_seconds", &off))
                return g_steal_pointer(&name);
        return g_strdup_printf("%s (UTC%c%02" G_GINT64_FORMAT ":%02" G_GINT64_FORMAT ")", name, off < 0 ? '-' : '+',
                               ABS(off) / 3600, ABS(off) % 3600 / 60);
}

static char *agent_text(json_object *info) {
        g_autofree char *sw = output_text(output_get_string(info, "agent.software"));
        int64_t pv = 0, min = 0, max = 0;

        (void) output_get_int(info, "agent.protocol_version", &pv);
        (void) output_get_int(info, "agent.min_version", &min);
        (void) output_get_int(info, "agent.max_version", &max);
        return g_strdup_printf("%s (protocol %" G_GINT64_FORMAT ", supports %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT
                               ")",
                               sw, pv, min, max);
}

static void print_users(json_object *users) {
        g_autoptr(OutputTable)
                t = output_table_new("NAME", ">UID", "SESSION", "SEAT", "TTY", "TYPE", "STATE", "FROM", "LOGIN", NULL);
        size_t n = users ? json_object_array_length(users) : 0;

        printf("Users:\n");
        if (n == 0) {
                printf("  (none logged in)\n");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *u = json_object_array_get_idx(users, i);
                int64_t v;

                output_table_add(t, output_get_string(u, "name"));
                if (output_get_int(u, "uid", &v))
                        output_table_addf(t, "%" G_GINT64_FORMAT, v);
                else
                        output_table_add(t, NULL);
                output_table_add(t, output_get_string(u, "session"));
                output_table_add(t, output_get_string(u, "seat"));
                output_table_add(t, output_get_string(u, "tty"));
                output_table_add(t, output_get_string(u, "type"));
                output_table_add(t, output_get_string(u, "state"));
                output_table_add(t, output_get_string(u, "remote_host"));
                output_table_take(t, output_get_int(u, "login_unix_us", &v) ? output_time(v) : NULL);
        }
        output_table_print(t, stdout, 2);
}

static void print_interfaces(json_object *ifaces) {
        g_autoptr(OutputTable) t = output_table_new("NAME", "STATE", "MAC", ">MTU", "ADDRESS", NULL);
        size_t n = ifaces ? json_object_array_length(ifaces) : 0;

        printf("Interfaces:\n");
        if (n == 0) {
                printf("  (none)\n");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *f = json_object_array_get_idx(ifaces, i);
                json_object *addrs = output_get_array(f, "addresses");
                size_t na = addrs ? json_object_array_length(addrs) : 0;
                int64_t mtu;

                for (size_t j = 0; j < MAX(na, 1u); j++) {
                        json_object *a = addrs && j < na ? json_object_array_get_idx(addrs, j) : NULL;
                        int64_t prefix;

                        output_table_add(t, j == 0 ? output_get_string(f, "name") : "");
                        output_table_add(t, j == 0 ? output_get_string(f, "state") : "");
                        output_table_add(t, j == 0 ? output_get_string(f, "mac") : "");
                        if (j == 0 && output_get_int(f, "mtu", &mtu))
                                output_table_addf(t, "%" G_GINT64_FORMAT, mtu);
                        else
                                output_table_add(t, j == 0 ? NULL : "");
                        if (!a)
                                output_table_add(t, NULL);
                        else if (output_get_int(a, "prefix_length", &prefix) && output_get_string(a, "address"))
                                output_table_addf(t, "%s/%" G_GINT64_FORMAT, output_get_string(a, "address"), prefix);
                        else
                                output_table_add(t, output_get_string(a, "address"));
                }
        }
        output_table_print(t, stdout, 2);
}

static void print_info(json_object *info) {
        double uptime;

        field("Hostname:", output_get_string(info, "hostname"));
        field_take("OS:", os_text(info));
        field_take("Kernel:", kernel_text(info));
        field("Architecture:", output_get_string(info, "architecture"));
        field("Machine ID:", output_get_string(info, "machine_id"));
        field("Boot ID:", output_get_string(info, "boot_id"));
        field_take("Uptime:", output_get_double(info, "uptime_seconds", &uptime) ? output_duration(uptime) : NULL);
        field_take("Time zone:", timezone_text(info));
        field_take("Agent:", agent_text(info));
        field_take("Capabilities:", join_strings(output_get_array(info, "agent.capabilities")));
        if (output_get_array(info, "agent.denied"))
                field_take("Denied:", join_strings(output_get_array(info, "agent.denied")));
        printf("\n");
        print_users(output_get_array(info, "users"));
        printf("\n");
        print_interfaces(output_get_array(info, "interfaces"));
}

int verb_info(Cli *cli, int argc, char **argv) {
        g_autoptr(Client) c = NULL;
        g_autoptr(json_object) result = NULL;
        g_autoptr(GError) error = NULL;
        const char *guest;
        bool ok;
        int r;

        r = cli_parse_verb_options(cli, argc, argv, NULL, NULL, NULL, "info GUEST");
        if (r < 0)
                return cli_parse_exit(r);
        guest = cli_take_guest(cli, argc, argv, &r, 1, &ok);
        if (!ok)
                return EXIT_USAGE;
        if (r < argc)
                return cli_usage_error(cli, "unexpected argument '%s'", argv[r]);
        r = cli_open(cli, &c);
        if (r != EXIT_OK)
                return r;
        if (client_call(c, guest, "info", NULL, cli->timeout_ms, &result, &error) < 0)
                return cli_fail_error(cli_guest_label(cli, guest), error);
        if (cli->json)
                output_json(result, true);
        else
                print_info(result);
        return EXIT_OK;
}
