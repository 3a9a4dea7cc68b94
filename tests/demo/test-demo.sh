#!/bin/bash
# Runs ./run-demo (path in $1) with no stdin and no tty and checks what it
# printed and what it left behind.  TAP output.
# shellcheck disable=SC2317 # has and gone are called through ok
set -uo pipefail

demo=$1
out=$(mktemp "${TMPDIR:-/tmp}/gl-test-demo.XXXXXX")
trap 'rm -f "$out"' EXIT
n=0
failed=0

ok() { # ok DESCRIPTION COMMAND...
        local what=$1
        shift
        n=$((n + 1))
        if "$@"; then
                echo "ok $n - $what"
        else
                echo "not ok $n - $what"
                failed=1
        fi
}

has() { grep -Eq -- "$1" "$out"; }

start=$SECONDS
"$demo" </dev/null >"$out" 2>&1
status=$?
echo "# run-demo exited with status $status after $((SECONDS - start)) s; its output:"
sed 's/^/# /' "$out"

ok "run-demo exits with status 0" test "$status" -eq 0
ok "the list shows demo connected" has '^demo +static +connected +[^ ]+ +guestlink-agent '
ok "info shows the guest's hostname" has '^Hostname: +demo$'
# the guest runs the host's newest /boot/vmlinuz-*, not necessarily $(uname -r)
kernels=
for k in /boot/vmlinuz-*; do
        [ -e "$k" ] && kernels=${kernels:+$kernels|}${k#/boot/vmlinuz-}
done
ok "info shows the kernel release (one of: $kernels)" has "^Kernel: +Linux (${kernels:-none}) "
samples=$(grep -c '^Sample: ' "$out")
ok "stats --watch printed at least 2 samples (got $samples)" test "$samples" -ge 2
ok "stats samples carry CPU rates" has '^CPU: +1 CPU, [0-9.]+% \(user'
ok "the poweroff was accepted" has '^demo: poweroff accepted \(operation [0-9]+\)'
ok "power --wait saw the guest stop" has '^demo: stopped after [0-9.]+ s$'
ok "QEMU exited with status 0" has '^QEMU exited with status 0$'
ok "the guest powered off (console)" has 'reboot: Power down'
ok "the demo reports its duration" has '^==> Demo done in [0-9.]+ s'

# nothing it started is left: the PIDs it printed are gone (or reused by
# something else), and so is its temporary directory
pids=$(sed -nE 's/^(qemu-system-x86_64|guestlink-bridge) pid ([0-9]+).*/\2/p' "$out")
ok "run-demo printed the PIDs of QEMU and the bridge" test "$(wc -w <<<"$pids")" -eq 2
gone() {
        local cmd
        for p in $pids; do
                cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
                case $cmd in
                *qemu-system-x86_64* | *guestlink-bridge*)
                        echo "# pid $p still running: $cmd"
                        return 1
                        ;;
                esac
        done
}
ok "no QEMU or bridge it started is still running" gone
tmp=$(sed -nE 's/^==> Booting it under QEMU\/TCG in ([^ ]+) .*/\1/p' "$out")
ok "its temporary directory ($tmp) is removed" test -n "$tmp" -a ! -e "${tmp:-/nonexistent}"

echo "1..$n"
exit $failed
