/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The OS-neutral dispatcher against a mock platform (no real power action
 * ever runs here): policy, parameters, power scheduling, busy, cancel,
 * refusal with the platform's reason, progress events and heartbeats.
 */
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "dispatch.h"

typedef struct Mock {
        GlSession *agent, *host;
        GlDispatch *d;
        uint64_t timer_ms[_GL_TIMER_MAX];
        int check_result;
        GlPowerAction executed[8];
        unsigned n_executed;
        char last_wall[2048];
        GPtrArray *from_agent; /* GlMessage* */
} Mock;

static int mock_check(void *userdata, GlPowerAction a, char *reason, size_t size) {
        Mock *m = userdata;

        if (m->check_result < 0)
                g_snprintf(reason, size, "logind CanHibernate says \"na\" (%s)", gl_power_action_to_string(a));
        return m->check_result;
}

static void mock_execute(void *userdata, GlPowerAction a, const char *wall) {
        Mock *m = userdata;

        m->executed[m->n_executed++] = a;
        g_strlcpy(m->last_wall, wall ? wall : "", sizeof(m->last_wall));
}

static void mock_set_timer(void *userdata, GlTimer t, uint64_t ms) {
        Mock *m = userdata;
        m->timer_ms[t] = ms;
}

static uint64_t mock_clock(void *userdata) {
        (void) userdata;
        return 1000000;
}

static const char *mock_backend(void *userdata) {
        (void) userdata;
        return "mock";
}

static void message_free(gpointer p) {
        gl_message_free(p);
}

/* Moves bytes both ways until quiet; collects what the host receives. */
static void pump(Mock *m) {
        for (int round = 0; round < 50; round++) {
                bool moved = false;
                GlSession *from[2] = { m->agent, m->host }, *to[2] = { m->host, m->agent };

                for (int k = 0; k < 2; k++) {
                        GlIovec iov[GL_SESSION_IOV_MAX];
                        size_t n;

                        while ((n = gl_session_output(from[k], iov)) > 0) {
                                size_t total = 0;
                                for (size_t i = 0; i < n; i++) {
                                        g_assert_cmpint(gl_session_feed(to[k], iov[i].base, iov[i].len), ==,
                                                        iov[i].len);
                                        total += iov[i].len;
                                }
                                gl_session_output_advance(from[k], total);
                                moved = true;
                        }
                }
                for (int k = 0; k < 2; k++) {
                        GlSessionEvent ev;
                        while (gl_session_receive(to[k], &ev) > 0) {
                                if (ev.type != GL_SESSION_EVENT_MESSAGE)
                                        continue;
                                if (to[k] == m->agent && ev.message->type == GL_MSG_REQUEST) {
                                        gl_dispatch_request(m->d, ev.message, 0);
                                        gl_message_free(ev.message);
                                } else if (to[k] == m->host)
                                        g_ptr_array_add(m->from_agent, ev.message);
                                else
                                        gl_message_free(ev.message);
                        }
                }
                if (!moved)
                        return;
        }
}

static void mock_init(Mock *m, const GlPolicy *policy) {
        GlSessionConfig a = { .role = "agent", .instance = "agent" }, h = { .role = "bridge", .instance = "host" };
        GlPlatform p = {
                .power_check = mock_check,
                .power_execute = mock_execute,
                .power_backend = mock_backend,
                .set_timer = mock_set_timer,
                .wall_clock_us = mock_clock,
        };

        memset(m, 0, sizeof(*m));
        p.userdata = m;
        m->agent = gl_session_new(&a);
        m->host = gl_session_new(&h);
        m->d = gl_dispatch_new(m->agent, policy, NULL, &p);
        m->from_agent = g_ptr_array_new_with_free_func(message_free);
        gl_session_connected(m->agent);
        gl_session_connected(m->host);
        pump(m);
        g_assert_cmpint(gl_session_state(m->host), ==, GL_SESSION_ESTABLISHED);
}

static void mock_clear(Mock *m) {
        gl_dispatch_free(m->d);
        gl_session_free(m->agent);
        gl_session_free(m->host);
        g_ptr_array_unref(m->from_agent);
}

static GlMessage *call(Mock *m, const char *method, const char *params_json) {
        uint64_t id;

        g_assert_cmpint(gl_session_request(m->host, method, params_json ? json_tokener_parse(params_json) : NULL, NULL,
                                           0, 0, 0, 1000, &id),
                        ==, 0);
        pump(m);
        for (guint i = 0; i < m->from_agent->len; i++) {
                GlMessage *msg = m->from_agent->pdata[i];
                if ((msg->type == GL_MSG_RESPONSE || msg->type == GL_MSG_ERROR) && msg->id == id)
                        return g_ptr_array_steal_index(m->from_agent, i);
        }
        g_error("no answer to %s", method);
}

/* The states of power.progress events received so far, joined by ','. */
static char *progress(Mock *m) {
        GString *s = g_string_new(NULL);

        for (guint i = 0; i < m->from_agent->len; i++) {
                GlMessage *msg = m->from_agent->pdata[i];
                if (msg->type == GL_MSG_EVENT && g_str_equal(msg->name, "power.progress"))
                        g_string_append_printf(s, "%s%s", s->len ? "," : "",
                                               json_object_get_string(json_object_object_get(msg->body, "state")));
        }
        return g_string_free(s, FALSE);
}

static void test_power_flow(void) {
        Mock m;
        GlMessage *r;
        g_autofree char *p1 = NULL, *p2 = NULL, *p3 = NULL;

        mock_init(&m, NULL);
        r = call(&m, "power.request", "{\"action\":\"reboot\",\"delay_seconds\":60,\"message\":\"bye\\u001b[2Jnow\"}");
        g_assert_cmpint(r->type, ==, GL_MSG_RESPONSE);
        g_assert_cmpint(json_object_get_int(json_object_object_get(r->body, "operation")), ==, 1);
        g_assert_cmpint(json_object_get_int64(json_object_object_get(r->body, "execute_unix_us")), ==,
                        1000000 + 60000000 + 500000);
        g_assert_cmpstr(json_object_get_string(json_object_object_get(r->body, "backend")), ==, "mock");
        gl_message_free(r);
        g_assert_cmpuint(m.timer_ms[GL_TIMER_POWER], ==, 60500);
        p1 = progress(&m);
        g_assert_cmpstr(p1, ==, "scheduled");

        /* one at a time */
        r = call(&m, "power.request", "{\"action\":\"poweroff\"}");
        g_assert_cmpint(r->code, ==, GL_ERROR_BUSY);
        gl_message_free(r);

        /* cancel it, then a new one runs */
        r = call(&m, "power.cancel", "{\"operation\":7}");
        g_assert_cmpint(r->code, ==, GL_ERROR_NOT_FOUND);
        gl_message_free(r);
        r = call(&m, "power.cancel", NULL);
        g_assert_cmpint(r->type, ==, GL_MSG_RESPONSE);
        gl_message_free(r);
        g_assert_cmpuint(m.timer_ms[GL_TIMER_POWER], ==, 0);
        p2 = progress(&m);
        g_assert_cmpstr(p2, ==, "scheduled,cancelled");
        g_assert_cmpuint(m.n_executed, ==, 0);

        r = call(&m, "power.request", "{\"action\":\"suspend\",\"message\":\"bye\\u001b[2Jnow\"}");
        g_assert_cmpint(r->type, ==, GL_MSG_RESPONSE);
        g_assert_cmpint(json_object_get_int(json_object_object_get(r->body, "operation")), ==, 2);
        gl_message_free(r);
        gl_dispatch_timer(m.d, GL_TIMER_POWER);
        pump(&m);
        g_assert_cmpuint(m.n_executed, ==, 1);
        g_assert_cmpint(m.executed[0], ==, GL_POWER_SUSPEND);
        g_assert_cmpstr(m.last_wall, ==, "bye[2Jnow"); /* the escape character is gone */
        g_assert_cmpint(gl_dispatch_state(m.d), ==, GL_AGENT_SUSPENDING);
        r = call(&m, "power.cancel", NULL);
        g_assert_cmpint(r->code, ==, GL_ERROR_BUSY); /* already running */
        gl_message_free(r);
        gl_dispatch_system_event(m.d, GL_SYSTEM_RESUMED);
        pump(&m);
        g_assert_cmpint(gl_dispatch_state(m.d), ==, GL_AGENT_RESUMED);
        p3 = progress(&m);
        g_assert_cmpstr(p3, ==, "scheduled,cancelled,started,resumed");
        mock_clear(&m);
}

static void test_power_refusals(void) {
        static const struct {
                const char *params;
                GlErrorCode code;
        } cases[] = {
                { NULL, GL_ERROR_INVALID },
                { "{\"action\":\"explode\"}", GL_ERROR_INVALID },
                { "{\"action\":\"reboot\",\"delay_seconds\":-1}", GL_ERROR_INVALID },
                { "{\"action\":\"reboot\",\"delay_seconds\":86401}", GL_ERROR_INVALID },
                { "{\"action\":\"reboot\",\"delay_seconds\":1.5}", GL_ERROR_INVALID },
                { "{\"action\":\"reboot\",\"message\":7}", GL_ERROR_INVALID },
        };
        GlPolicy deny;
        Mock m;
        GlMessage *r;

        mock_init(&m, NULL);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                r = call(&m, "power.request", cases[i].params);
                g_assert_cmpint(r->type, ==, GL_MSG_ERROR);
                g_assert_cmpint(r->code, ==, cases[i].code);
                gl_message_free(r);
        }
        m.check_result = -EOPNOTSUPP;
        r = call(&m, "power.request", "{\"action\":\"hibernate\"}");
        g_assert_cmpint(r->code, ==, GL_ERROR_UNAVAILABLE);
        g_assert_nonnull(strstr(r->error_message, "CanHibernate says \"na\""));
        gl_message_free(r);
        g_assert_cmpuint(m.n_executed, ==, 0);
        mock_clear(&m);

        gl_policy_init(&deny);
        deny.allow[GL_FAMILY_POWER] = false;
        mock_init(&m, &deny);
        r = call(&m, "power.request", "{\"action\":\"poweroff\"}");
        g_assert_cmpint(r->code, ==, GL_ERROR_FORBIDDEN);
        gl_message_free(r);
        r = call(&m, "lock", NULL); /* not implemented by this platform */
        g_assert_cmpint(r->code, ==, GL_ERROR_UNSUPPORTED);
        gl_message_free(r);
        g_assert_cmpuint(m.n_executed, ==, 0);
        mock_clear(&m);
}

static void test_capabilities(void) {
        GlPlatform none = { 0 }, power = { .power_check = mock_check, .power_execute = mock_execute };
        const char *const *c = gl_dispatch_capabilities(&none);

        g_assert_false(g_strv_contains((const char *const *) c, "power"));
        g_assert_false(g_strv_contains((const char *const *) c, "stats"));
        c = gl_dispatch_capabilities(&power);
        g_assert_true(g_strv_contains((const char *const *) c, "power"));
        g_assert_false(g_strv_contains((const char *const *) c, "lock"));
}

/* The policy and the platform are asked again when a scheduled operation
 * fires; a reload that denies power cancels it; someone cancelling the
 * shutdown in the guest ends the operation. */
static void test_power_rechecked(void) {
        GlPolicy deny;
        Mock m;
        GlMessage *r;
        g_autofree char *p1 = NULL, *p2 = NULL, *p3 = NULL;

        mock_init(&m, NULL);
        r = call(&m, "power.request", "{\"action\":\"reboot\",\"delay_seconds\":60}");
        g_assert_cmpint(r->type, ==, GL_MSG_RESPONSE);
        gl_message_free(r);
        gl_policy_init(&deny);
        deny.allow[GL_FAMILY_POWER] = false;
        gl_dispatch_set_policy(m.d, &deny, &GL_DISPATCH_LIMITS_DEFAULT);
        pump(&m);
        g_assert_cmpuint(m.timer_ms[GL_TIMER_POWER], ==, 0);
        p1 = progress(&m);
        g_assert_cmpstr(p1, ==, "scheduled,cancelled");
        gl_dispatch_timer(m.d, GL_TIMER_POWER);
        g_assert_cmpuint(m.n_executed, ==, 0);
        mock_clear(&m);

        mock_init(&m, NULL);
        r = call(&m, "power.request", "{\"action\":\"hibernate\",\"delay_seconds\":5}");
        gl_message_free(r);
        m.check_result = -EOPNOTSUPP; /* swap went away meanwhile */
        gl_dispatch_timer(m.d, GL_TIMER_POWER);
        pump(&m);
        g_assert_cmpuint(m.n_executed, ==, 0);
        p2 = progress(&m);
        g_assert_cmpstr(p2, ==, "scheduled,failed");
        mock_clear(&m);

        mock_init(&m, NULL);
        r = call(&m, "power.request", "{\"action\":\"poweroff\"}");
        gl_message_free(r);
        gl_dispatch_timer(m.d, GL_TIMER_POWER);
        gl_dispatch_system_event(m.d, GL_SYSTEM_SHUTDOWN_CANCELLED);
        pump(&m);
        p3 = progress(&m);
        g_assert_cmpstr(p3, ==, "started,cancelled");
        g_assert_cmpint(gl_dispatch_state(m.d), ==, GL_AGENT_RUNNING);
        r = call(&m, "power.request", "{\"action\":\"reboot\"}"); /* not busy any more */
        g_assert_cmpint(r->type, ==, GL_MSG_RESPONSE);
        gl_message_free(r);
        mock_clear(&m);
}

/* C1 controls (U+009B is CSI on UTF-8 terminals) and bidi overrides are
 * removed from wall messages, as are C0 controls; text stays. */
static void test_wall_message_filter(void) {
        Mock m;
        GlMessage *r;

        mock_init(&m, NULL);
        r = call(&m, "power.request",
                 "{\"action\":\"suspend\",\"message\":\"a\\u009b2Jb\\u202ec\\u00e9d\\u0007e\\tf\\u001b[31m\"}");
        gl_message_free(r);
        gl_dispatch_timer(m.d, GL_TIMER_POWER);
        g_assert_cmpstr(m.last_wall, ==,
                        "a2Jbc\xc3\xa9"
                        "de f[31m");
        mock_clear(&m);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/dispatch/power-flow", test_power_flow);
        g_test_add_func("/dispatch/power-refusals", test_power_refusals);
        g_test_add_func("/dispatch/capabilities", test_capabilities);
        g_test_add_func("/dispatch/power-rechecked", test_power_rechecked);
        g_test_add_func("/dispatch/wall-message-filter", test_wall_message_filter);
        return g_test_run();
}
