#!/usr/bin/env bash
# Runs one of the Python package's tests with the Python that has numpy (scripts/find-python.sh: $SI_PYTHON, then
# Debian's /usr/bin/python3, then the python3s on PATH; not simply the first python3), against the build's library
# and CLI. Exit 77 (skipped) with a message when there is no such Python.
# usage: python/tests/run.sh api|ort_script|compare_ort LIBRARY CLI WORKDIR [SANITIZERS]
#   api          python/tests/test_api.py: models vs the CLI, errors, threads, events, report, library search
#   ort_script   python/tests/test_ort_script.py: a script written for onnxruntime, import swapped
#   compare_ort  python/tests/compare_ort.py: models from models/*.py vs onnxruntime-node (needs python3-onnx)
# SANITIZERS: the build's SI_SANITIZE. An AddressSanitizer library loads into python3 only with the runtime
# preloaded (LD_PRELOAD; leak checking off: the interpreter keeps its memory at exit); ThreadSanitizer: skipped.
set -u
what=$1 lib=$2 cli=$3 work=$4 san=${5:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
case $what in
  api) mods=(numpy); script=$here/test_api.py ;;
  ort_script) mods=(numpy); script=$here/test_ort_script.py ;;
  compare_ort) mods=(onnx numpy); script=$here/compare_ort.py ;;
  *) echo "usage: $0 api|ort_script|compare_ort LIBRARY CLI WORKDIR [SANITIZERS]"; exit 2 ;;
esac
py=$("$root/scripts/find-python.sh" "${mods[@]}") || { echo "SKIP: no Python 3 with ${mods[*]} (apt-get install python3-numpy python3-onnx)"; exit 77; }
echo "using $py ($("$py" -c 'import sys, numpy; print("Python", sys.version.split()[0], "numpy", numpy.__version__)'))"
if [ -n "$san" ]; then
  case $san in
    *thread*) echo "SKIP: a ThreadSanitizer library does not load into python3"; exit 77 ;;
  esac
  pre=""
  for rt in libasan.so libubsan.so; do
    case $rt in libasan.so) [[ $san == *address* ]] || continue ;; libubsan.so) [[ $san == *undefined* ]] || continue ;; esac
    p=$(cc -print-file-name=$rt 2>/dev/null)
    [ -e "$p" ] && pre="$pre${pre:+:}$(readlink -f "$p")"
  done
  export LD_PRELOAD=$pre${LD_PRELOAD:+:$LD_PRELOAD}
  export ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
  echo "sanitizers $san: LD_PRELOAD=$LD_PRELOAD ASAN_OPTIONS=$ASAN_OPTIONS"
fi
rm -rf "$work" && mkdir -p "$work"
export SAFEINFER_LIBRARY=$lib SAFEINFER_CLI=$cli SI_TEST_WORKDIR=$work
export PYTHONPATH=$root/python${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1
if [ "$what" = compare_ort ]; then
  exec "$py" "$script" "$work"
fi
exec "$py" "$script"
