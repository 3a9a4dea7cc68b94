#!/bin/bash
# Fails if any C file differs from what .clang-format makes of it.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h')
else
        mapfile -t files < <(find . -path './build*' -prune -o \( -name '*.c' -o -name '*.h' \) -print)
fi
clang-format --dry-run --Werror "${files[@]}"
echo "${#files[@]} files formatted as .clang-format says"
