#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Regenerates the seed corpora in corpus/decoder and corpus/session from
the golden vectors and a few hand-written session conversations.
usage: make-seeds.py  (run from protocol/fuzz/)"""
import glob
import os
import struct


def read_hex(path):
    out = bytearray()
    with open(path) as f:
        for line in f:
            out += bytes.fromhex("".join(line.split("#", 1)[0].split()))
    return bytes(out)


def record(kind, flags, seq_mode, ack_mode, js=b"", att=b""):
    return struct.pack("<BBBBHH", kind, flags, seq_mode, ack_mode, len(js), len(att)) + js + att


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


golden = sorted(glob.glob("../tests/data/*.hex"))
stream = b"".join(read_hex(p) for p in golden)
for p in golden:
    write("corpus/decoder", os.path.basename(p)[:-4], bytes([7]) + read_hex(p))
write("corpus/decoder", "all-golden", bytes([0]) + stream)
write("corpus/decoder", "garbage-then-golden", bytes([3]) + b"{\"execute\":\"guest-sync\"}\nGLNKGL" + stream)

R, B, M, C = 1, 2, 4, 8
req = b'{"type":"request","id":1,"method":"info","params":{"x":[1,2,{"y":"z"}]}}'
sessions = {
    "request": record(2, R, 0, 3, req),
    "responses": record(2, R, 0, 0, b'{"type":"response","id":1,"result":{}}')
    + record(2, R, 0, 0, b'{"type":"error","id":2,"code":"busy","message":"m"}'),
    "event-unreliable": record(2, 0, 3, 3, b'{"type":"event","event":"heartbeat","data":{"seq":1}}'),
    "ping": record(2, 0, 3, 3, b'{"type":"ping","id":9}'),
    "unknown-type": record(2, R, 0, 3, b'{"type":"teleport","id":4}'),
    "bulk": record(2, R | B | M, 0, 3, b'{"type":"event","event":"logs.batch"}', b"a" * 300)
    + record(2, R | B | M | C, 0, 3, b"", b"b" * 300)
    + record(2, R | B | C, 0, 3, b"", b"c" * 10),
    "ack-nack": record(3, 0, 3, 0) + record(3, 16, 3, 1),
    "duplicate-gap": record(2, R, 0, 3, req) + record(2, R, 1, 3, req) + record(2, R, 2, 3, req),
    "hello-restart": record(1, 0, 3, 3, b'{"type":"hello","instance":"other","min_version":1,"max_version":2,'
                            b'"nonce":5,"tx_first":1,"capabilities":["info"]}') + record(2, R, 0, 3, req),
    "reconnect": record(255, 0, 3, 3) + record(1, 0, 3, 3, b'{"type":"hello","instance":"peer","min_version":1,'
                                                 b'"max_version":1,"nonce":7,"echo":2,"tx_first":1}'),
}
for name, data in sessions.items():
    write("corpus/session", name, data)
write("corpus/session", "raw-golden", b"R" + stream)
