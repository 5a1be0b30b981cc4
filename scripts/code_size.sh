#!/usr/bin/env bash
# code_size.sh: the size of medallion's C code, to keep it reading like a
# peer of the best PostgreSQL extensions (issue 16).  Prints every file's
# line count, the longest functions, how many functions pass 80/100/150
# lines, and the cycles in the include graph between src/ files.
# Usage: scripts/code_size.sh [top-N]   (needs Universal Ctags: apt install universal-ctags)
set -euo pipefail
cd "$(dirname "$0")/.."
top=${1:-20}

if ! ctags --version 2>/dev/null | grep -q Universal; then
	echo "code_size.sh needs Universal Ctags (apt-get install universal-ctags)" >&2
	exit 1
fi

echo "== files (lines; * over 1,500)"
wc -l src/*.c | grep -v ' total$' | sort -rn |
	awk '{ printf "%6d %s%s\n", $1, $2, ($1 > 1500 ? "  *" : "") }'

functions=$(mktemp)
trap 'rm -f "$functions"' EXIT
# name, file, length: from the start and end lines Universal Ctags reports
ctags --fields=+ne --c-kinds=f -o - src/*.c |
	awk -F'\t' '{
		line = ""; end = "";
		for (i = 4; i <= NF; i++) {
			if ($i ~ /^line:/) line = substr($i, 6);
			if ($i ~ /^end:/) end = substr($i, 5);
		}
		if (line != "" && end != "") print end - line + 1, $1, $2 ":" line;
	}' | sort -rn >"$functions"

echo
echo "== the $top longest functions (lines)"
head -n "$top" "$functions" | awk '{ printf "%6d %-45s %s\n", $1, $2, $3 }'

echo
awk '{ n++; if ($1 > 80) a++; if ($1 > 100) b++; if ($1 > 150) c++; if ($1 > 200) d++ }
	END { printf "== %d functions: %d over 80 lines, %d over 100, %d over 150, %d over 200\n", n, a, b, c, d }' "$functions"

echo
echo "== SQL-callable entry points (medallion_*) over 80 lines"
awk '$2 ~ /^medallion_/ && $1 > 80 { printf "%6d %-45s %s\n", $1, $2, $3 }' "$functions"

echo
echo "== include cycles between src/ files"
echo "   (x.c calls into y.c, through y.c's header, and y.c, directly or through"
echo "   others, calls back into x.c; a header belongs to the files defining its functions)"
python3 - <<'PY'
import os, re
src = "src"
texts = {n: open(os.path.join(src, n), encoding="utf-8", errors="replace").read()
         for n in os.listdir(src) if n.endswith((".c", ".h"))}
# x.c depends on y.c when it calls a function that y.c defines and that a
# header x.c includes declares (internal headers shared by a family count
# only for the functions actually called)
defined = {}
for name, text in texts.items():
    if name.endswith(".c"):
        for function in re.findall(r'^([A-Za-z_][A-Za-z0-9_]*)\(', text, re.M):
            defined.setdefault(function, set()).add(name[:-2])
declared = {}
for name, text in texts.items():
    if name.endswith(".h"):
        declared[name] = set(re.findall(r'^extern[^;(]*?\b([A-Za-z_][A-Za-z0-9_]*)\s*\(', text, re.M))
graph = {}
for name, text in texts.items():
    if name.endswith(".c"):
        unit = name[:-2]
        deps = set()
        for header in re.findall(r'#include "([^"]+\.h)"', text):
            for function in declared.get(header, ()):
                if re.search(r'\b' + function + r'\s*\(', text):
                    deps |= defined.get(function, set())
        deps.discard(unit)
        graph[unit] = deps
cycles = set()
def visit(node, path):
    for dep in graph.get(node, ()):
        if dep in path:
            cycle = path[path.index(dep):]
            i = cycle.index(min(cycle))
            cycles.add(tuple(cycle[i:] + cycle[:i]))
        elif len(path) < 10:
            visit(dep, path + [dep])
for unit in sorted(graph):
    visit(unit, [unit])
print("none" if not cycles else "\n".join(" -> ".join(c + (c[0],)) for c in sorted(cycles)))
PY
