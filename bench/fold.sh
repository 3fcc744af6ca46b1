#!/usr/bin/env bash
# Function folding (fold=on|off) on decoders of 4 and 24 layers of the same width: compile time, the first prefill
# (which packs or uploads the weights of a folded body), the decode step and peak RSS, with the functions the report
# shows. A benchmark: it prints a table, it asserts nothing.
#
#   bench/fold.sh [--devices LIST] [--prompt P] [--steps N] [--forms "genai plain"] [--layers "4 24"] [--runs R]
#
# Models: models/llm.py (default width: hidden 512, 8 heads), written to $TMPDIR/si-fold-bench (about 0.5 GB for the
# plain 24-layer one). Needs /usr/bin/python3 with onnx and numpy, and build/bin/safeinfer.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SAFEINFER:-$here/build/bin/safeinfer}
py=/usr/bin/python3
devices=CPU prompt=64 steps=16 forms="genai plain" layers="4 24" runs=1
. "$here/bench/opts.sh"
parse_opts "devices prompt steps forms layers runs" "$@"
work=${TMPDIR:-/tmp}/si-fold-bench
mkdir -p "$work"
echo "| model | layers | fold | run | compile ms | first prefill ms (pp$prompt) | decode step median ms | peak RSS MiB | functions (calls) | tokens |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for form in $forms; do
  for l in $layers; do
    m="$work/$form$l.onnx"
    [ -f "$m" ] || "$py" "$here/models/llm.py" "$m" --form "$form" --layers "$l" >/dev/null
    for r in $(seq 1 "$runs"); do
      for fold in on off; do
        j="$work/$form$l-$fold.json"
        "$bin" bench "$m" --devices "$devices" --generate "$prompt,$steps" --set fold=$fold --json "$j" >/dev/null
        "$py" - "$j" "$form" "$l" "$fold" "$r" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
f = d["report"].get("functions", [])
fn = ", ".join("%d (%d)" % (x["ops"], x["calls"]) for x in f) or "-"
tok = hash(tuple(d["tokens"])) & 0xffff
print("| %s | %s | %s | %s | %.0f | %.1f | %.2f | %.0f | %s | %04x |" % (sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5],
      d["compile_ms"], d["prefill_ms"], d["decode_step_median_ms"], d["peak_rss_mib"], fn, tok))
EOF
      done
    done
  done
done
echo
echo "functions: body nodes (calls); tokens: a hash of the generated tokens (fold=on and off must agree)"
