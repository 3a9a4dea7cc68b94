#!/bin/sh
# Runs one libFuzzer target for a fixed time on a scratch copy of its seed
# corpus; any crash, leak, timeout or sanitizer report fails the test.
# usage: run-fuzzer.sh FUZZER SEED_DIR SECONDS
set -eu
fuzzer=$1 seeds=$2 seconds=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/guestlink-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"
status=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" || status=$?
if [ "$status" -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
        echo "fuzzer failed (exit $status); reproducers:" >&2
        for f in "$work"/artifacts/*; do
                [ -e "$f" ] || continue
                echo "--- $f" >&2
                od -A x -t x1z "$f" | head -40 >&2
        done
        exit 1
fi
echo "fuzzer clean: $(ls "$work/corpus" | wc -l) corpus entries after ${seconds}s"
