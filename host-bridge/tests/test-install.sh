#!/bin/bash
# `meson install --destdir` puts every host data file where it belongs.
# $1: the build directory.  Paths are checked against the build's prefix.
set -euo pipefail
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"], o["sysconfdir"], o["mandir"], o["libexecdir"])')
read -r pfx sysconf mandir libexec <<<"$prefix"
case $sysconf in /*) ;; *) sysconf=$pfx/$sysconf ;; esac
case $mandir in /*) ;; *) mandir=$pfx/$mandir ;; esac
fail=0
expect() {
        local f
        f=$(find "$dest" -path "$dest*$1" \( -type f -o -type l -o -type d \) | head -n1)
        if [ -z "$f" ]; then
                echo "missing: $1"
                fail=1
        fi
}
expect "/systemd/system/guestlink-bridge.service"
expect "/systemd/system/guestlink-host-shutdown.service"
expect "/sysusers.d/guestlink.conf"
expect "/tmpfiles.d/guestlink.conf"
expect "$sysconf/guestlink/bridge.conf"
expect "$sysconf/guestlink/hooks.d"
expect "$mandir/man8/guestlink-bridge.8"
# units are configured: no @placeholders@ left, absolute ExecStart
for u in guestlink-bridge.service guestlink-host-shutdown.service; do
        f=$(find "$dest" -name "$u" | head -n1)
        [ -n "$f" ] || continue
        if grep -Eq '@[a-z_]+@' "$f"; then echo "unconfigured: $u"; fail=1; fi
done
f=$(find "$dest" -name guestlink-bridge.service | head -n1)
grep -qx "ExecStart=$pfx/sbin/guestlink-bridge" "$f" || { echo "bad ExecStart in $f"; fail=1; }
f=$(find "$dest" -name guestlink-host-shutdown.service | head -n1)
grep -qx "ExecStop=$pfx/bin/guestlink shutdown-all --timeout 300 --fallback=acpi" "$f" || { echo "bad ExecStop"; fail=1; }
exit $fail
