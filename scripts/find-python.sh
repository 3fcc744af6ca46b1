#!/usr/bin/env bash
# Print the path of a Python 3 that can import the given modules (default: onnx numpy), trying $SI_PYTHON,
# then Debian's /usr/bin/python3 (where python3-onnx and python3-numpy install), then every python3 on PATH
# (a pyenv or virtualenv python3 that comes first on PATH often lacks them).
# Exit status 1, with the interpreters tried on stderr, when none has them.
# usage: scripts/find-python.sh [MODULE...]
set -u
mods=("$@")
[ ${#mods[@]} -gt 0 ] || mods=(onnx numpy)
imports=$(IFS=,; echo "${mods[*]}")
cands=()
[ -n "${SI_PYTHON:-}" ] && cands+=("$SI_PYTHON")
cands+=(/usr/bin/python3)
while read -r p; do [ -n "$p" ] && cands+=("$p"); done < <(type -ap python3 2>/dev/null)
tried=()
for p in "${cands[@]}"; do
  [ -x "$p" ] || continue
  if "$p" -c "import $imports" >/dev/null 2>&1; then echo "$p"; exit 0; fi
  tried+=("$p")
done
echo "find-python: no Python 3 with ${mods[*]} (tried: ${tried[*]:-none}); on Debian: apt-get install python3-onnx python3-numpy, or set SI_PYTHON" >&2
exit 1
