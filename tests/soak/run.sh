#!/usr/bin/env bash
# The soak (tests/soak/soak.c) on a real-sized model: ResNet-18 at half width (bench/make_models.py --small,
# generated here with a Python that has onnx and numpy), else the bundled example model.
#   run.sh BUILD SECONDS [WORK] [soak options...]
# OCL,CPU and OCL,CPU,REF with OCL isolated where an OpenCL device is present; CPU,REF with CPU isolated
# otherwise. A long run (300 s or more) runs at the lowest priority (nice 19): it is a long job on a shared machine.
# MALLOC_ARENA_MAX=2 unless set: the resident-memory numbers then follow the memory in use. With glibc's
# default (up to 8 arenas per core, one per thread that allocates at the same time), memory freed in the
# arenas of the many short-lived threads (requests, watchdogs, background compiles) stays resident for a
# long while and the growth measures the arenas' spread, not leaks (set MALLOC_ARENA_MAX= to see it). The
# same for glibc's cache of thread stacks (GLIBC_TUNABLES=glibc.pthread.stack_cache_size=0 unless set).
set -u
build=$1 seconds=$2 work=${3:-$1/tests/soak}
shift $(( $# >= 3 ? 3 : $# ))
here=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work"
if py=$("$here/scripts/find-python.sh" onnx numpy 2>/dev/null) &&
   "$py" "$here/bench/make_models.py" "$work" --small --models resnet18_small >/dev/null; then
  model=$work/resnet18_small.onnx
  dims=()
else
  echo "run.sh: no Python with onnx and numpy: the soak runs on the bundled example model"
  model=$here/examples/tiny_cnn.onnx
  dims=(--dim batch=2)
fi
if "$build/bin/safeinfer" inspect "$model" --devices OCL,CPU 2>/dev/null | grep -q "submodel 0 on OCL"; then
  lists="OCL,CPU;OCL,CPU,REF" isolate=OCL
else
  echo "run.sh: no OpenCL device here: CPU is the isolated device"
  lists="CPU,REF" isolate=CPU
fi
round=20
[ "${seconds%.*}" -lt 300 ] && round=10
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX-2}
# No cache of the stacks of ended threads (glibc keeps up to 40 MiB of them, their touched pages resident, as
# many as the most threads that ended close together): the requests', watchdogs' and background compiles'.
export GLIBC_TUNABLES=${GLIBC_TUNABLES-glibc.pthread.stack_cache_size=0}
# Blocks of 128 KiB and more always mapped on their own (a fixed threshold: glibc's default raises it to the
# largest block freed so far, up to 32 MiB, after which tensors come from the heap and the small blocks that
# outlive them keep its pages resident: 25-30 MiB after the same round, with the heap in use flat).
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_-131072}
echo "run.sh: MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-(glibc default)} GLIBC_TUNABLES=${GLIBC_TUNABLES:-(none)}" \
  "MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-(glibc default)}"
# The long soak yields to other work on a shared machine; the short one (ctest runs it alone) does not, so
# that a starved process cannot make the watchdog give up on a healthy device.
nice=()
[ "${seconds%.*}" -ge 300 ] && nice=(nice -n 19)
exec "${nice[@]}" "$build/bin/soak" "$model" "${dims[@]}" --seconds "$seconds" --round-seconds "$round" --threads 4 \
  --lists "$lists" --isolate "$isolate" "$@"
