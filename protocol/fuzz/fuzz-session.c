/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: a session (established with a real peer session, whose
 * identity the fuzzer then impersonates) fed untrusted input.
 *
 * Input: first byte 'R' = the rest is raw bytes on the wire.  Otherwise a
 * list of records, each becoming a well-formed frame (checksums computed
 * here so the fuzzer reaches the session logic):
 *   u8 kind, u8 flags, u8 seq mode, u8 ack mode, u16le json_len,
 *   u16le attach_len, json bytes, attachment bytes
 * seq/ack mode: 0 next, 1 same as last, 2 skip one, 3 zero, else a value.
 * Between records the target's output is drained, its events consumed,
 * and it answers requests, so replies, acks and resends all run.
 */
#include <stdlib.h>
#include <string.h>

#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void drain_output(GlSession *s) {
        GlIovec iov[GL_SESSION_IOV_MAX];
        size_t n;

        while ((n = gl_session_output(s, iov)) > 0) {
                size_t total = 0;
                for (size_t i = 0; i < n; i++)
                        total += iov[i].len;
                gl_session_output_advance(s, total);
        }
}

static void consume(GlSession *s, uint64_t now) {
        GlSessionEvent ev;

        while (gl_session_receive(s, &ev) > 0) {
                if (ev.message && ev.message->type == GL_MSG_REQUEST) {
                        if (ev.message->id & 1)
                                (void) gl_session_respond(s, ev.message->id, json_object_new_object(), NULL, 0, 0);
                        else
                                (void) gl_session_respond_error(s, ev.message->id, GL_ERROR_FORBIDDEN, "no");
                }
                gl_message_free(ev.message);
        }
        gl_session_expire(s, now);
}

/* Moves everything between two sessions until quiet. */
static void pump(GlSession *a, GlSession *b) {
        for (int i = 0; i < 16; i++) {
                GlSession *from[2] = { a, b }, *to[2] = { b, a };
                for (int k = 0; k < 2; k++) {
                        GlIovec iov[GL_SESSION_IOV_MAX];
                        size_t n;
                        while ((n = gl_session_output(from[k], iov)) > 0) {
                                size_t total = 0;
                                for (size_t j = 0; j < n; j++) {
                                        if (gl_session_feed(to[k], iov[j].base, iov[j].len) != (long) iov[j].len)
                                                abort();
                                        total += iov[j].len;
                                }
                                gl_session_output_advance(from[k], total);
                                consume(to[k], 0);
                        }
                }
        }
}

static uint64_t pick(uint8_t mode, uint64_t *last) {
        switch (mode) {
        case 0:
                return ++*last;
        case 1:
                return *last;
        case 2:
                return *last += 2;
        case 3:
                return 0;
        default:
                return (uint64_t) mode << 20;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const caps[] = { "info", "stats", NULL };
        GlSessionConfig ct = {
                .role = "agent", .instance = "target", .capabilities = caps, .max_bulk_queue_bytes = 1 << 20
        };
        GlSessionConfig cp = { .role = "bridge", .instance = "peer", .capabilities = caps };
        GlSession *t = gl_session_new(&ct), *p = gl_session_new(&cp);
        uint64_t seq = 0, ack = 0, now = 0;

        if (!t || !p)
                abort();
        gl_session_connected(t);
        gl_session_connected(p);
        pump(t, p);
        if (gl_session_state(t) != GL_SESSION_ESTABLISHED)
                abort();
        /* Something of ours for the fuzzer to acknowledge or NACK. */
        (void) gl_session_send_event(t, "e", NULL, calloc(1, 70000), 70000, GL_SEND_BULK);
        (void) gl_session_request(t, "m", NULL, NULL, 0, 0, 0, 5, NULL);
        drain_output(t);

        if (size > 0 && data[0] == 'R') {
                (void) gl_session_feed(t, data + 1, size - 1);
                consume(t, 10);
                drain_output(t);
        } else
                while (size >= 8) {
                        uint8_t kind = data[0], flags = data[1], seq_mode = data[2], ack_mode = data[3];
                        size_t json_len = (size_t) data[4] | (size_t) data[5] << 8;
                        size_t att_len = (size_t) data[6] | (size_t) data[7] << 8;
                        GlFrameHeader h = { .version = 1, .kind = kind, .flags = flags };
                        uint8_t hdr[GL_FRAME_HEADER_SIZE];

                        data += 8;
                        size -= 8;
                        if (json_len > size)
                                json_len = size;
                        if (att_len > size - json_len)
                                att_len = size - json_len;
                        h.seq = pick(seq_mode, &seq);
                        h.ack = pick(ack_mode, &ack);
                        gl_frame_encode(&h, data, json_len, data + json_len, att_len, hdr);
                        (void) gl_session_feed(t, hdr, sizeof(hdr));
                        (void) gl_session_feed(t, data, json_len + att_len);
                        data += json_len + att_len;
                        size -= json_len + att_len;
                        consume(t, now++);
                        drain_output(t);
                        if (kind == 0xff) { /* a reconnect */
                                gl_session_disconnected(t);
                                gl_session_connected(t);
                        }
                }
        gl_session_free(t);
        gl_session_free(p);
        return 0;
}
