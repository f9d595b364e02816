#!/usr/bin/env bash
# The folders of src/ are layers: a folder may include a lower one, never one that includes it
# back, directly or through a longer loop (README "Layout"). This reads every
# `#include "folder/…"` of src/*/*.[ch], builds the graph of folder -> folder, and fails when
# it has a loop, printing each loop with the file:line of every edge in it. `make test` runs it.
#
# Usage: scripts/layers.sh [SRC_DIR]     (default: src next to this script)
set -euo pipefail

src=${1:-$(cd "$(dirname "$0")/.." && pwd)/src}

# Edges known to close a loop and being removed, one "FROM TO" per line with who removes it and
# how: skipped when looking for loops. Each must exist; the script fails once one is gone, so
# that its line is deleted with it. None today.
pending=()

declare -A where=()   # "from to" -> first "file:line" that makes the edge
declare -A next=()    # from -> "to1 to2 …"
while IFS=: read -r file line text; do
    from=${file#"$src"/}
    from=${from%%/*}
    to=${text#*\"}
    to=${to%%/*}
    [ "$from" = "$to" ] && continue
    [ -d "$src/$to" ] || continue
    if [ -z "${where["$from $to"]:-}" ]; then
        where["$from $to"]="${file#"$src"/}:$line"
        next[$from]="${next[$from]:-} $to"
    fi
done < <(grep -Hn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z0-9_]*/' "$src"/*/*.[ch] | sort)

status=0
declare -A skip=()
for p in "${pending[@]}"; do
    if [ -z "${where[$p]:-}" ]; then
        echo "layers: ${p/ / -> } is gone: delete its line from pending in $0" >&2
        status=1
    fi
    skip[$p]=1
done

# Depth-first search; an edge back to a folder on the current path closes a loop.
declare -A state=()   # unset: not seen; 1: on the path; 2: done
path=()
visit() {
    local at=$1 to
    state[$at]=1
    path+=("$at")
    for to in ${next[$at]:-}; do
        [ -n "${skip["$at $to"]:-}" ] && continue
        if [ "${state[$to]:-}" = 1 ]; then
            local i=0 loop="" edges=""
            while [ "${path[$i]}" != "$to" ]; do i=$((i + 1)); done
            local n=${#path[@]} a b
            for ((; i < n; i++)); do
                a=${path[$i]}
                b=$( ((i + 1 < n)) && echo "${path[$((i + 1))]}" || echo "$to")
                loop+="$a -> "
                edges+="    $a -> $b: ${where["$a $b"]}"$'\n'
            done
            echo "layers: a loop between folders of src/: $loop$to" >&2
            printf '%s' "$edges" >&2
            status=1
        elif [ -z "${state[$to]:-}" ]; then
            visit "$to"
        fi
    done
    unset 'path[${#path[@]}-1]'
    state[$at]=2
}
for d in "$src"/*/; do
    d=$(basename "$d")
    [ -z "${state[$d]:-}" ] && visit "$d"
done

if [ $status = 0 ]; then
    if [ ${#pending[@]} = 0 ]; then
        echo "layers: no loop between the folders of src/"
    else
        echo "layers: no loop between the folders of src/ (${#pending[@]} edges pending, listed in $0)"
    fi
fi
exit $status
