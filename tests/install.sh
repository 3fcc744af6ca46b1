#!/usr/bin/env bash
# Installing and using the installed library the two usual ways:
#   1. `make install-files PREFIX=$work/prefix` (what `make install` runs after building): the libraries,
#      safeinfer.h, the CLI, safeinfer.pc and the CMake package land under the prefix;
#   2. a C program built with `pkg-config --cflags --libs safeinfer` runs the bundled model, in this process
#      and with isolate=REF, where the installed library starts the installed helper program
#      (libexec/safeinfer-worker), as does the installed CLI;
#   3. a CMake project with find_package(safeinfer) builds against safeinfer::safeinfer (shared) and
#      safeinfer::safeinfer_static and runs the model;
#   4. DESTDIR staging: files under DESTDIR/PREFIX, safeinfer.pc naming PREFIX;
#   5. `make uninstall` removes every installed file.
#   6. the Python package: installed into the prefix's site folder with a _config.py naming the installed library;
#      `PYTHONPATH=SITE python3 -c 'import safeinfer; ...'` (the Python of scripts/find-python.sh) runs the model
#      with the installed library; `make uninstall` removes it, __pycache__ included.
# The build folder's own install manifest is not touched (INSTALL_MANIFEST points into WORKDIR).
# usage: install.sh SOURCE_DIR BUILD_DIR WORKDIR [SANITIZERS]
# (SANITIZERS: the build's SI_SANITIZE; the consumers are built with the same -fsanitize, since a
# sanitized library loads only into a sanitized program)
set -u
src=$1 build=$2 work=$3 san=${4:-}
san_flags=""
[ -n "$san" ] && san_flags="-fsanitize=$san"
rm -rf "$work" && mkdir -p "$work"
for t in pkg-config cc cmake make; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
prefix=$work/prefix
fail() { echo "FAIL: $*"; exit 1; }
mk() { make --no-print-directory -C "$src" BUILD="$build" INSTALL_MANIFEST="$work/installed-files.txt" "$@"; }

# --- 1. install --------------------------------------------------------------------------------------------
mk install-files PREFIX="$prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "make install-files"; }
libdir=$(dirname "$(find "$prefix" -name libsafeinfer.so -print -quit)")
[ -n "$libdir" ] && [ -d "$libdir" ] || fail "no libsafeinfer.so under $prefix"
for f in "$prefix/include/safeinfer.h" "$prefix/bin/safeinfer" "$prefix/libexec/safeinfer-worker" "$libdir/libsafeinfer.a" "$libdir/pkgconfig/safeinfer.pc" \
         "$libdir/cmake/safeinfer/safeinferConfig.cmake" "$libdir/cmake/safeinfer/safeinferConfigVersion.cmake"; do
  [ -e "$f" ] || fail "not installed: $f"
done
echo "installed: $(grep -c . "$work/installed-files.txt") files under $prefix"
"$prefix/bin/safeinfer" --version || fail "installed CLI"

# the consumer: loads the bundled model, fixes the batch, compiles for REF (in a helper process with a second
# argument "isolate": it prints the helper's program), runs zeros, checks the softmax
cp "$src/tests/children.h" "$work/"
cat > "$work/consumer.c" <<'EOF'
#define _GNU_SOURCE
#include <safeinfer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "children.h"
/* The program of a child of this process (the helper), into buf. */
typedef struct exe_buf {
    char *buf;
    size_t n;
} exe_buf;
static void child_exe(int pid, const char *comm, char state, void *arg) {
    exe_buf *b = arg;
    char path[64];
    (void)comm, (void)state;
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    ssize_t l = readlink(path, b->buf, b->n - 1);
    b->buf[l > 0 ? l : 0] = 0;
}
/* The program of this process's helper child, into buf ("" when there is none). */
static void helper_exe(char *buf, size_t n) {
    exe_buf b = {buf, n};
    buf[0] = 0;
    for_each_child(child_exe, &b);
}
int main(int argc, char **argv) {
    si_model *m; si_config *cfg; si_compiled *cm; si_request *rq; si_tensor *x, *y;
    int64_t dims[4] = {1, 3, 32, 32};
    int iso = argc > 2 && !strcmp(argv[2], "isolate");
    if (argc < 2 || si_model_load(argv[1], &m) || si_model_set_dim(m, "batch", 1) || si_config_create(&cfg) ||
        si_config_set(cfg, "devices", "REF") || (iso && si_config_set(cfg, "isolate", "REF")) ||
        si_compile(m, cfg, &cm) || si_request_create(cm, &rq) ||
        si_tensor_create(SI_F32, 4, dims, &x) || si_request_set_input(rq, 0, x) || si_request_infer(rq) ||
        si_request_get_output(rq, 0, &y)) {
        fprintf(stderr, "consumer: %s\n", si_last_error());
        return 1;
    }
    char exe[4096];
    helper_exe(exe, sizeof exe);
    if (iso) printf("consumer: helper %s\n", exe);
    double sum = 0;
    for (int i = 0; i < 10; i++) sum += ((const float *)si_tensor_data(y))[i];
    printf("consumer: safeinfer %s, %s: %lld values, sum %.4f\n", si_version(NULL, NULL, NULL),
           si_compiled_output_name(cm, 0), (long long)si_tensor_count(y), sum);
    si_request_free(rq); si_tensor_free(x); si_compiled_free(cm); si_config_free(cfg); si_model_free(m);
    return sum > 0.999 && sum < 1.001 && (!iso || exe[0]) ? 0 : 1;
}
EOF

# --- 2. pkg-config -----------------------------------------------------------------------------------------
export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=$(pkg-config --cflags --libs safeinfer) || fail "pkg-config safeinfer"
echo "pkg-config --cflags --libs safeinfer: $flags"
[ "$(pkg-config --modversion safeinfer)" = "$("$prefix/bin/safeinfer" --version | awk '{print $2}')" ] || fail "pkg-config version"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Werror $san_flags "$work/consumer.c" -o "$work/consumer_pc" $flags -Wl,-rpath,"$libdir" || fail "build with pkg-config"
"$work/consumer_pc" "$src/examples/tiny_cnn.onnx" || fail "consumer built with pkg-config"
ldd "$work/consumer_pc" | grep -q "$libdir/libsafeinfer.so" || fail "the pkg-config consumer does not use the installed library"
# the README's C quick start, exactly as it says to build it: it fails over once (CPU.infer=2 on CPU,REF)
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $san_flags "$src/examples/quickstart.c" $flags -Wl,-rpath,"$libdir" -o "$work/quickstart" ||
  fail "build examples/quickstart.c with pkg-config"
(cd "$src" && "$work/quickstart" examples/tiny_cnn.onnx) > "$work/quickstart.log" 2>&1 || { cat "$work/quickstart.log"; fail "examples/quickstart.c"; }
grep -q "inferences 3, failovers 1" "$work/quickstart.log" || { cat "$work/quickstart.log"; fail "examples/quickstart.c: no failover"; }
echo "examples/quickstart.c: $(grep -c '^run' "$work/quickstart.log") runs, $(grep failovers "$work/quickstart.log")"
out=$(env -u SAFEINFER_WORKER "$work/consumer_pc" "$src/examples/tiny_cnn.onnx" isolate) || fail "consumer with isolate=REF: $out"
echo "$out"
echo "$out" | grep -qx "consumer: helper $prefix/libexec/safeinfer-worker" || fail "the installed library did not start the installed helper"
out=$(env -u SAFEINFER_WORKER "$prefix/bin/safeinfer" run "$src/examples/tiny_cnn.onnx" --shape batch=1 --devices CPU,REF \
      --isolate CPU --faults CPU.infer=1:crash --output-dir "$work/cli-isolate" 2>&1) || fail "installed CLI with --isolate: $out"
echo "$out" | grep -q "failover.*CPU (isolated): the helper process (pid [0-9]*) died: killed by signal 6" ||
  fail "installed CLI with --isolate: no failover after the helper's crash: $out"

# --- 3. CMake find_package ---------------------------------------------------------------------------------
mkdir -p "$work/cmake-project"
cp "$work/consumer.c" "$work/children.h" "$work/cmake-project/"
cat > "$work/cmake-project/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(safeinfer 0.1 REQUIRED)
add_executable(consumer_shared consumer.c)
target_link_libraries(consumer_shared PRIVATE safeinfer::safeinfer)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static PRIVATE safeinfer::safeinfer_static)
EOF
cmake -S "$work/cmake-project" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="$san_flags" \
      -DCMAKE_EXE_LINKER_FLAGS="$san_flags" >"$work/cmake.log" 2>&1 &&
  cmake --build "$work/cmake-build" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "CMake project with find_package(safeinfer)"; }
"$work/cmake-build/consumer_shared" "$src/examples/tiny_cnn.onnx" || fail "consumer_shared"
"$work/cmake-build/consumer_static" "$src/examples/tiny_cnn.onnx" || fail "consumer_static"
ldd "$work/cmake-build/consumer_shared" | grep -q "$libdir/libsafeinfer.so" || fail "consumer_shared does not use the installed library"
if ldd "$work/cmake-build/consumer_static" | grep -q libsafeinfer; then fail "consumer_static links the shared library"; fi

# --- 6. Python ---------------------------------------------------------------------------------------------
pyinit=$(grep -m1 '/safeinfer/__init__.py$' "$work/installed-files.txt")
[ -n "$pyinit" ] || fail "the Python package is not in the install manifest"
site=${pyinit%/safeinfer/__init__.py}
case $site in "$prefix"/lib/*) ;; *) fail "the Python package is outside PREFIX/lib: $site" ;; esac
grep -qx "LIBRARY = \"$libdir/libsafeinfer.so.0\"" "$site/safeinfer/_config.py" || fail "_config.py: $(cat "$site/safeinfer/_config.py")"
grep -q "PYTHONPATH=$site" "$work/install.log" || fail "make install does not print the Python package's folder"
if py=$("$src/scripts/find-python.sh" numpy 2>/dev/null); then
  pre=""
  if [ -n "$san" ]; then  # a sanitized library loads into python3 only with its runtime preloaded
    for rt in libasan.so libubsan.so; do
      p=$(cc -print-file-name=$rt 2>/dev/null); [ -e "$p" ] && pre="$pre${pre:+:}$(readlink -f "$p")"
    done
  fi
  # from another folder, without $SAFEINFER_LIBRARY, writing byte code (for uninstall to remove)
  (cd "$work" && env -u SAFEINFER_LIBRARY -u PYTHONDONTWRITEBYTECODE PYTHONPATH="$site" LD_PRELOAD="$pre" \
     ASAN_OPTIONS=detect_leaks=0 "$py" -c '
import sys, numpy as np, safeinfer
assert safeinfer.library_path == sys.argv[2], (safeinfer.library_path, sys.argv[2])
assert safeinfer.__file__.startswith(sys.argv[3]), safeinfer.__file__
s = safeinfer.InferenceSession(sys.argv[1], devices="REF")
probs, logits = s.run(None, {"image": np.zeros((1, 3, 32, 32), np.float32)})
assert probs.shape == (1, 10) and abs(float(probs.sum()) - 1) < 1e-3, probs
print("python: safeinfer %s from %s, library %s: probs sum %.4f" % (safeinfer.version, safeinfer.__file__,
      safeinfer.library_path, probs.sum()))
' "$src/examples/tiny_cnn.onnx" "$libdir/libsafeinfer.so.0" "$site/safeinfer/") || fail "the installed Python package"
  # the README's Python quick start with the installed package
  (cd "$src" && env -u SAFEINFER_LIBRARY PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$site" LD_PRELOAD="$pre" ASAN_OPTIONS=detect_leaks=0 \
     "$py" examples/quickstart.py examples/tiny_cnn.onnx) > "$work/quickstart-py.log" 2>&1 ||
    { cat "$work/quickstart-py.log"; fail "examples/quickstart.py with the installed package"; }
  echo "examples/quickstart.py: $(tail -1 "$work/quickstart-py.log")"
  [ -d "$site/safeinfer/__pycache__" ] || echo "note: python3 wrote no __pycache__"
else
  echo "python: no Python with numpy (python3-numpy); the installed package was not imported"
fi

# --- 5. uninstall ------------------------------------------------------------------------------------------
mk uninstall || fail "make uninstall"
left=$(find "$prefix" -type f -o -type l)
[ -z "$left" ] || fail "left after make uninstall: $left"

# --- 4. DESTDIR staging ------------------------------------------------------------------------------------
mk install-files PREFIX=/opt/safeinfer DESTDIR="$work/stage" >"$work/install-stage.log" 2>&1 || { cat "$work/install-stage.log"; fail "make install-files DESTDIR"; }
pc=$(find "$work/stage/opt/safeinfer" -name safeinfer.pc -print -quit)
[ -n "$pc" ] || fail "DESTDIR: no safeinfer.pc under $work/stage/opt/safeinfer"
grep -qx "prefix=/opt/safeinfer" "$pc" || fail "DESTDIR: safeinfer.pc does not name the prefix: $(head -1 "$pc")"
[ -e "$work/stage/opt/safeinfer/include/safeinfer.h" ] || fail "DESTDIR: no header"
grep -qx 'LIBRARY = "/opt/safeinfer/lib/libsafeinfer.so.0"' "$work/stage/opt/safeinfer/lib/python3/dist-packages/safeinfer/_config.py" ||
  fail "DESTDIR: the Python package's _config.py does not name the library under PREFIX"
mk uninstall || fail "make uninstall (DESTDIR)"
left=$(find "$work/stage" -type f -o -type l)
[ -z "$left" ] || fail "left after make uninstall (DESTDIR): $left"

echo "OK: installed, used through pkg-config, find_package and Python, staged with DESTDIR, uninstalled"
