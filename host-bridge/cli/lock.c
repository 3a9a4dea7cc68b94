/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* guestlink lock: lock every graphical session of the guest. */
#include "cli.h"
#include "output.h"

int verb_lock(Cli *cli, int argc, char **argv) {
        g_autoptr(Client) c = NULL;
        g_autoptr(json_object) result = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *label = NULL;
        const char *guest;
        int64_t sessions;
        bool ok;
        int r;

        r = cli_parse_verb_options(cli, argc, argv, NULL, NULL, NULL, "lock GUEST");
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
        if (client_call(c, guest, "lock", NULL, cli->timeout_ms, &result, &error) < 0)
                return cli_fail_error(cli_guest_label(cli, guest), error);
        if (cli->json) {
                output_json(result, true);
                return EXIT_OK;
        }
        label = output_text(cli_guest_label(cli, guest));
        if (output_get_int(result, "sessions", &sessions))
                printf("%s: %" G_GINT64_FORMAT " session%s asked to lock\n", label, sessions, sessions == 1 ? "" : "s");
        else
                printf("%s: sessions asked to lock\n", label);
        return EXIT_OK;
}
