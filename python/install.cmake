# Installs the Python package (python/safeinfer, pure Python) at `cmake --install` time, included from an
# install(CODE) rule of the top-level CMakeLists.txt with SI_PY_SOURCE (the package folder), SI_PY_ROOT (the source
# tree), SI_PY_BUILD (the build folder), SI_PY_LIBDIR (CMAKE_INSTALL_LIBDIR) and SI_PY_SONAME set.
#
# Where: the folder of the prefix that Debian's python3 already searches, when it has one (PREFIX=/usr/local:
# /usr/local/lib/python3.X/dist-packages; PREFIX=/usr: /usr/lib/python3/dist-packages), so that `import safeinfer`
# needs nothing more; for any other prefix PREFIX/lib/python3/dist-packages (Debian's layout, independent of the
# Python version: the package is pure Python), to be put on PYTHONPATH. $SI_PYTHON_SITEDIR overrides it (absolute,
# or relative to the prefix). The Python asked is scripts/find-python.sh's (Debian's /usr/bin/python3 first).
# _config.py beside the package names the installed library (PREFIX/LIBDIR/libsafeinfer.so.0, without DESTDIR).
# The files go through file(INSTALL), so DESTDIR is honoured and they are listed in the install manifest.
set(prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" prefix "${prefix}")
set(site "")
if(DEFINED ENV{SI_PYTHON_SITEDIR} AND NOT "$ENV{SI_PYTHON_SITEDIR}" STREQUAL "")
  set(site "$ENV{SI_PYTHON_SITEDIR}")
  if(NOT IS_ABSOLUTE "${site}")
    set(site "${prefix}/${site}")
  endif()
else()
  execute_process(COMMAND bash "${SI_PY_ROOT}/scripts/find-python.sh" numpy OUTPUT_VARIABLE py
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    find_program(py NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
    if(NOT py)
      find_program(py NAMES python3)
    endif()
  endif()
  if(py)
    execute_process(COMMAND "${py}" -c "
import os, sys
prefix = os.path.realpath(sys.argv[1])
for p in sys.path:
    q = os.path.realpath(p) if p else ''
    if os.path.basename(q) in ('dist-packages', 'site-packages') and os.path.dirname(os.path.dirname(q)) == os.path.join(prefix, 'lib'):
        print(p)
        break
" "${prefix}" OUTPUT_VARIABLE site OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  endif()
  if(site STREQUAL "")
    set(site "${prefix}/lib/python3/dist-packages")
  endif()
endif()

if(IS_ABSOLUTE "${SI_PY_LIBDIR}")
  set(lib "${SI_PY_LIBDIR}/${SI_PY_SONAME}")
else()
  set(lib "${prefix}/${SI_PY_LIBDIR}/${SI_PY_SONAME}")
endif()
set(gen "${SI_PY_BUILD}/python/safeinfer")
file(MAKE_DIRECTORY "${gen}")
file(WRITE "${gen}/_config.py" "# Written by `make install`: the library this installed package loads (see _lib.py).\nLIBRARY = \"${lib}\"\n")
file(GLOB py_files "${SI_PY_SOURCE}/*.py")
list(FILTER py_files EXCLUDE REGEX "/_config\\.py$")
file(INSTALL DESTINATION "${site}/safeinfer" TYPE FILE FILES ${py_files} "${gen}/_config.py")
message(STATUS "python: the safeinfer package is in ${site}/safeinfer (library ${lib}); "
               "PYTHONPATH=${site} where python3 does not search that folder")
