#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""An independent encoder of guestlink frames, written from PROTOCOL.md
alone (no C code shared), checked against the golden vectors.  If this
and the C library agree byte for byte, the specification is precise enough
to build a compatible peer from it."""
import json
import os
import struct
import sys

POLY = 0x82F63B78


def crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ POLY if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def encode(kind, flags, seq, ack, js: bytes, att: bytes) -> bytes:
    payload_crc = crc32c(js + att)
    head = struct.pack("<4sBBHQQIII", b"GLNK", 1, kind, flags, seq, ack, len(js), len(att), payload_crc)
    assert len(head) == 36
    return head + struct.pack("<I", crc32c(head)) + js + att


def read_hex(path):
    out = bytearray()
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0]
            out += bytes.fromhex("".join(line.split()))
    return bytes(out)


def main():
    data = sys.argv[1]
    assert crc32c(b"123456789") == 0xE3069283
    with open(os.path.join(data, "golden.json")) as f:
        entries = json.load(f)
    for e in entries:
        want = read_hex(os.path.join(data, e["name"] + ".hex"))
        got = encode(e["kind"], e["flags"], e["seq"], e["ack"], e["json"].encode(), bytes.fromhex(e["attachment_hex"]))
        if got != want:
            print(f"{e['name']}: mismatch\n  spec: {got.hex()}\n  file: {want.hex()}")
            return 1
        # And decode it back by the spec.
        magic, ver, kind, flags, seq, ack, jl, al, pcrc, hcrc = struct.unpack("<4sBBHQQIIII", want[:40])
        assert magic == b"GLNK" and ver == 1 and hcrc == crc32c(want[:36])
        assert pcrc == crc32c(want[40:40 + jl + al]) and len(want) == 40 + jl + al
        if jl:
            obj = json.loads(want[40:40 + jl])
            assert isinstance(obj, dict)
        print(f"ok {e['name']} ({len(want)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
