/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* guestlink ping: the `ping` method, end to end (PROTOCOL.md 9.6): the agent's
 * dispatcher answers, not its session. */
#include "cli.h"
#include "output.h"
#include "peer.h"

int verb_ping(Cli *cli, int argc, char **argv) {
        g_autoptr(Client) c = NULL;
        g_autoptr(json_object) result = NULL;
        g_autoptr(GError) error = NULL;
        const char *guest;
        int64_t start_us;
        double rtt_ms;
        bool ok;
        int r;

        r = cli_parse_verb_options(cli, argc, argv, NULL, NULL, NULL, "ping GUEST");
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
        start_us = g_get_monotonic_time();
        if (client_call(c, guest, "ping", NULL, cli->timeout_ms, &result, &error) < 0)
                return cli_fail_error(cli_guest_label(cli, guest), error);
        rtt_ms = (double) (g_get_monotonic_time() - start_us) / 1000.0;
        if (cli->json) {
                g_autoptr(json_object) o = json_object_new_object();

                json_object_object_add(o, "guest", json_object_new_string(cli_guest_label(cli, guest)));
                json_object_object_add(o, "rtt_ms", json_object_new_double(rtt_ms));
                output_json(o, true);
        } else {
                g_autofree char *label = output_text(cli_guest_label(cli, guest));
                printf("reply from %s: time=%.3f ms\n", label, rtt_ms);
        }
        return EXIT_OK;
}
