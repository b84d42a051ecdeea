#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Formatting: every C file, tracked or new (not ignored), must match
# .clang-format exactly. Fix with `make format`.
# Licence: every source file (C, CMake, shell, make, .in templates; tracked
# or new) names its licence, `SPDX-License-Identifier: MIT`, in its first
# two lines (the second when the first is a #! line).
# Docs: every file name ending in .md that a Markdown file cites (a link or
# plain text) exists, next to that file, at the top or in docs/.
set -euo pipefail
cd "$(dirname "$0")/../.."
make format-check

files=$(git ls-files --cached --others --exclude-standard -- '*.c' '*.h' '*CMakeLists.txt' \
    '*.cmake' '*.sh' '*Makefile' '*.mk' '*.in' .ci/run)
missing=0 count=0
for f in $files; do
    [ -e "$f" ] || continue # deleted in the work tree
    count=$((count + 1))
    if ! head -n 2 "$f" | grep -q 'SPDX-License-Identifier: MIT'; then
        echo "$f: no 'SPDX-License-Identifier: MIT' in its first two lines" >&2
        missing=$((missing + 1))
    fi
done
[ "$count" -gt 0 ] || { echo "SPDX check: no files found" >&2; exit 1; }
[ "$missing" = 0 ] || { echo "SPDX check: $missing of $count files lack the line" >&2; exit 1; }
echo "SPDX-License-Identifier: MIT in all $count source files"

bad=0
for md in $(git ls-files --cached --others --exclude-standard -- '*.md'); do
    [ -e "$md" ] || continue
    dir=$(dirname "$md")
    for ref in $(grep -o -E '[A-Za-z0-9_./-]*[A-Za-z0-9_-]+\.md' "$md" | sort -u); do
        [ -e "$dir/$ref" ] || [ -e "$ref" ] || [ -e "docs/$ref" ] || {
            echo "$md cites $ref, which is not in the tree" >&2
            bad=1
        }
    done
done
[ "$bad" = 0 ] || exit 1
echo "every .md file the docs cite exists"
