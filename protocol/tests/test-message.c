/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "hello.h"
#include "message.h"
#include "test-util.h"

static const struct {
        const char *text;
        int result;
        GlMessageType type;
} envelopes[] = {
        { "{\"type\":\"request\",\"id\":1,\"method\":\"info\"}", 0, GL_MSG_REQUEST },
        { "{\"type\":\"request\",\"id\":1,\"method\":\"info\",\"params\":{},\"future\":[1]}", 0, GL_MSG_REQUEST },
        { "{\"type\":\"request\",\"method\":\"info\"}", -EINVAL, 0 },
        { "{\"type\":\"request\",\"id\":0,\"method\":\"info\"}", -EINVAL, 0 },
        { "{\"type\":\"request\",\"id\":-3,\"method\":\"info\"}", -EINVAL, 0 },
        { "{\"type\":\"request\",\"id\":9007199254740992,\"method\":\"info\"}", -EINVAL, 0 },
        { "{\"type\":\"request\",\"id\":\"1\",\"method\":\"info\"}", -EINVAL, 0 },
        { "{\"type\":\"request\",\"id\":1.5,\"method\":\"info\"}", -EINVAL, 0 },
        { "{\"type\":\"request\",\"id\":1}", -EINVAL, 0 },
        { "{\"type\":\"request\",\"id\":1,\"method\":\"\"}", -EINVAL, 0 },
        { "{\"type\":\"response\",\"id\":2,\"result\":{\"x\":1}}", 0, GL_MSG_RESPONSE },
        { "{\"type\":\"response\",\"result\":{}}", -EINVAL, 0 },
        { "{\"type\":\"error\",\"id\":2,\"code\":\"forbidden\",\"message\":\"no\"}", 0, GL_MSG_ERROR },
        { "{\"type\":\"error\",\"code\":\"invalid\"}", 0, GL_MSG_ERROR },
        { "{\"type\":\"error\",\"id\":2}", -EINVAL, 0 },
        { "{\"type\":\"event\",\"event\":\"heartbeat\",\"data\":{}}", 0, GL_MSG_EVENT },
        { "{\"type\":\"event\"}", -EINVAL, 0 },
        { "{\"type\":\"ping\",\"id\":3}", 0, GL_MSG_PING },
        { "{\"type\":\"pong\",\"id\":3}", 0, GL_MSG_PONG },
        { "{\"type\":\"ping\"}", -EINVAL, 0 },
        { "{\"type\":\"teleport\",\"id\":3}", -EPROTONOSUPPORT, 0 },
        { "{\"id\":3}", -EPROTONOSUPPORT, 0 },
        { "{\"type\":7}", -EPROTONOSUPPORT, 0 },
        { "{\"type\":\"request\",\"id\":1,\"method\":\"info\",\"params\":[1]}", -EINVAL, 0 },
        { "{\"type\":\"response\",\"id\":1,\"result\":\"ok\"}", -EINVAL, 0 },
        { "{\"type\":\"event\",\"event\":\"x\",\"data\":null}", -EINVAL, 0 },
        { "{\"type\":\"event\",\"event\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
          -EINVAL, 0 }, /* name of 129 bytes */
};

static void test_envelopes(void) {
        for (size_t i = 0; i < G_N_ELEMENTS(envelopes); i++) {
                GlMessage *m = NULL;
                const char *reason = NULL;
                int r = gl_message_parse(json_tokener_parse(envelopes[i].text), &m, &reason);

                if (r != envelopes[i].result)
                        g_error("case %zu <%s>: got %d want %d", i, envelopes[i].text, r, envelopes[i].result);
                if (r == 0) {
                        g_assert_cmpint(m->type, ==, envelopes[i].type);
                        g_assert_null(reason);
                } else
                        g_assert_nonnull(reason);
                if (r == -EPROTONOSUPPORT) {
                        g_assert_nonnull(m);
                        g_assert_cmpint(m->type, ==, GL_MSG_UNKNOWN);
                        if (strstr(envelopes[i].text, "\"id\":3"))
                                g_assert_cmpuint(m->id, ==, 3);
                }
                if (r == -EINVAL)
                        g_assert_null(m);
                gl_message_free(m);
        }
}

static void test_error_codes(void) {
        for (int c = 0; c < _GL_ERROR_CODE_MAX; c++)
                g_assert_cmpint(gl_error_code_from_string(gl_error_code_to_string((GlErrorCode) c)), ==, c);
        g_assert_cmpint(gl_error_code_from_string("from-the-future"), ==, GL_ERROR_UNKNOWN);
        g_assert_cmpstr(gl_error_code_to_string(GL_ERROR_FORBIDDEN), ==, "forbidden");
        g_assert_cmpstr(gl_error_code_to_string(GL_ERROR_NOT_FOUND), ==, "not-found");
}

static void test_roundtrip(void) {
        json_object *params = json_object_new_object();
        GlMessage *m = NULL;
        const char *reason = NULL;

        json_object_object_add(params, "interval_seconds", json_object_new_int(5));
        g_assert_cmpint(gl_message_parse(gl_message_new_request(9, "stats.subscribe", params), &m, &reason), ==, 0);
        g_assert_cmpint(m->type, ==, GL_MSG_REQUEST);
        g_assert_cmpuint(m->id, ==, 9);
        g_assert_cmpstr(m->name, ==, "stats.subscribe");
        g_assert_cmpint(json_object_get_int(json_object_object_get(m->body, "interval_seconds")), ==, 5);
        gl_message_free(m);

        g_assert_cmpint(gl_message_parse(gl_message_new_error(4, GL_ERROR_BUSY, "later"), &m, &reason), ==, 0);
        g_assert_cmpint(m->code, ==, GL_ERROR_BUSY);
        g_assert_cmpstr(m->error_message, ==, "later");
        gl_message_free(m);
}

static void test_hello(void) {
        GlHello h = {
                .role = "agent",
                .software = "t",
                .instance = "abc",
                .min_version = 1,
                .max_version = 3,
                .capabilities = { "info", "stats" },
                .n_capabilities = 2,
                .nonce = 4,
                .echo = 2,
                .tx_first = 10,
        }, back;
        g_autoptr(json_object) o = gl_hello_to_json(&h);
        const char *reason = NULL;

        g_assert_cmpint(gl_hello_from_json(o, &back, &reason), ==, 0);
        g_assert_cmpstr(back.instance, ==, "abc");
        g_assert_cmpuint(back.max_version, ==, 3);
        g_assert_cmpuint(back.n_capabilities, ==, 2);
        g_assert_cmpstr(back.capabilities[1], ==, "stats");
        g_assert_cmpuint(back.echo, ==, 2);
        g_assert_cmpuint(back.tx_first, ==, 10);
        g_assert_null(back.ack_instance);

        /* versions: highest common, or none */
        g_assert_cmpuint(gl_hello_negotiate(1, 1, 1, 3), ==, 1);
        g_assert_cmpuint(gl_hello_negotiate(1, 5, 2, 3), ==, 3);
        g_assert_cmpuint(gl_hello_negotiate(2, 3, 1, 1), ==, 0);

        json_object_object_add(o, "max_version", json_object_new_int(0));
        g_assert_cmpint(gl_hello_from_json(o, &back, &reason), ==, -EINVAL);
        json_object_object_add(o, "max_version", json_object_new_int(2));
        json_object_object_del(o, "instance");
        g_assert_cmpint(gl_hello_from_json(o, &back, &reason), ==, -EINVAL);
        json_object_object_add(o, "instance", json_object_new_string(""));
        g_assert_cmpint(gl_hello_from_json(o, &back, &reason), ==, -EINVAL);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/message/envelopes", test_envelopes);
        g_test_add_func("/message/error-codes", test_error_codes);
        g_test_add_func("/message/roundtrip", test_roundtrip);
        g_test_add_func("/message/hello", test_hello);
        return g_test_run();
}
