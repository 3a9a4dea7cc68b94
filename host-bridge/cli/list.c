/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* guestlink list: the guests of the bridge, or the one guest of --direct/--connect. */
#include "cli.h"
#include "output.h"

static char *state_cell(json_object *g) {
        const char *state = output_get_string(g, "state");
        bool running = true;

        (void) output_get_bool(g, "running", &running);
        if (!running)
                return g_strdup_printf("%s (stopped)", state ? state : "-");
        return g_strdup(state ? state : "-");
}

static char *since_cell(json_object *g) {
        int64_t since;

        if (!output_get_int(g, "state_since_unix_us", &since))
                return NULL;
        return output_duration((double) (output_now_us() - since) / 1e6);
}

static void print_guests(json_object *guests) {
        g_autoptr(OutputTable)
                t = output_table_new("NAME", "SOURCE", "STATE", "SINCE", "AGENT", "HOSTNAME", "OS", NULL);
        size_t n = json_object_array_length(guests);

        for (size_t i = 0; i < n; i++) {
                json_object *g = json_object_array_get_idx(guests, i);

                output_table_add(t, output_get_string(g, "name"));
                output_table_add(t, output_get_string(g, "source"));
                output_table_take(t, state_cell(g));
                output_table_take(t, since_cell(g));
                output_table_add(t, output_get_string(g, "agent.software"));
                output_table_add(t, output_get_string(g, "hostname"));
                output_table_add(t, output_get_string(g, "os_pretty_name"));
        }
        if (n == 0)
                printf("No guests.\n");
        else
                output_table_print(t, stdout, 0);
}

int verb_list(Cli *cli, int argc, char **argv) {
        g_autoptr(Client) c = NULL;
        g_autoptr(json_object) guests = NULL;
        g_autoptr(GError) error = NULL;
        int r;

        r = cli_parse_verb_options(cli, argc, argv, NULL, NULL, NULL, "list");
        if (r < 0)
                return cli_parse_exit(r);
        if (r < argc)
                return cli_usage_error(cli, "unexpected argument '%s'", argv[r]);
        r = cli_open(cli, &c);
        if (r != EXIT_OK)
                return r;
        if (client_list_guests(c, &guests, &error) < 0)
                return cli_fail_error(NULL, error);
        if (cli->json) {
                g_autoptr(json_object) o = json_object_new_object();

                json_object_object_add(o, "guests", json_object_get(guests));
                output_json(o, true);
        } else
                print_guests(guests);
        return EXIT_OK;
}
