#!/usr/bin/env bash
# The shared library's ABI: `nm -D` lists exactly the functions include/safeinfer.h declares with SI_API,
# nothing else (no internals, no protobuf-c onnx__* symbols), and every declared function is exported.
# usage: abi_exports.sh LIBSAFEINFER.so SAFEINFER.H
set -u
lib=$1 header=$2
command -v nm >/dev/null || { echo "SKIP: nm not installed"; exit 77; }
exported=$(nm -D --defined-only "$lib" | awk 'NF >= 3 {print $3}' | sed 's/@.*//' | sort -u)
# declarations: "SI_API ... si_name(" (one per line in the header)
declared=$(grep -E '^SI_API ' "$header" | sed -E 's/.*[^a-z_0-9](si_[a-z_0-9]+)\(.*/\1/' | sort -u)
n_exp=$(echo "$exported" | grep -c .)
n_dec=$(echo "$declared" | grep -c .)
echo "exported: $n_exp symbols; declared SI_API: $n_dec functions"
rc=0
extra=$(comm -23 <(echo "$exported") <(echo "$declared"))
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
if [ -n "$extra" ]; then echo "FAIL: exported but not declared SI_API in $(basename "$header"):"; echo "$extra" | head -50 | sed 's/^/  /'; rc=1; fi
if [ -n "$missing" ]; then echo "FAIL: declared SI_API but not exported:"; echo "$missing" | sed 's/^/  /'; rc=1; fi
# every public function declaration carries SI_API (a declaration without it would be hidden)
bare=$(grep -nE '^(SI_NODISCARD )?(const )?[a-z_0-9]+ \**si_[a-z_0-9]+\(' "$header")
if [ -n "$bare" ]; then echo "FAIL: declarations without SI_API:"; echo "$bare" | sed 's/^/  /'; rc=1; fi
[ $rc = 0 ] && echo "OK: the export list is the header's"
exit $rc
