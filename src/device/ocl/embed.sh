#!/bin/sh
# embed.sh — write kernels.cl as the C file ocl_kernels.c (one string literal per line, so that no literal
# exceeds what ISO C compilers must support); the build runs it (CMakeLists.txt). usage: sh embed.sh kernels.cl [OUT.c]
# (without OUT.c, to stdout)
set -e
src=${1:-kernels.cl}
if [ -n "${2:-}" ]; then exec >"$2.tmp"; fi
printf '/*\n * ocl_kernels.c — GENERATED from kernels.cl by embed.sh; do not edit by hand.\n */\n'
printf '#include "device/ocl/ocl.h"\n\nconst char *const si_ocl_kernel_lines[] = {\n'
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n",/' "$src"
printf '};\n\nconst int si_ocl_kernel_n_lines = (int)(sizeof si_ocl_kernel_lines / sizeof si_ocl_kernel_lines[0]);\n'
if [ -n "${2:-}" ]; then mv "$2.tmp" "$2"; fi
