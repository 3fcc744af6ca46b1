# Remove the files an install wrote, as listed in a manifest (one path per line, DESTDIR included: `make
# install` writes build/installed-files.txt; the `uninstall` target of the CMake build uses CMake's
# install_manifest.txt, which has no DESTDIR).
# usage: cmake -DMANIFEST=build/installed-files.txt -P cmake/uninstall.cmake
if(NOT MANIFEST OR NOT EXISTS "${MANIFEST}")
  message(FATAL_ERROR "uninstall: no install manifest at '${MANIFEST}' (run make install first)")
endif()
file(STRINGS "${MANIFEST}" files)
set(removed 0)
foreach(f IN LISTS files)
  if(IS_SYMLINK "${f}" OR EXISTS "${f}")
    file(REMOVE "${f}")
    math(EXPR removed "${removed} + 1")
  endif()
endforeach()
# The folder of the manifest's files matching REGEX, removed when it is empty (after dropping SUBDIR in it, when
# given).
function(remove_empty_folder regex subdir)
  foreach(f IN LISTS files)
    if(f MATCHES "${regex}")
      get_filename_component(dir "${f}" DIRECTORY)
      if(subdir)
        file(REMOVE_RECURSE "${dir}/${subdir}")
      endif()
      file(GLOB left "${dir}/*")
      if(NOT left AND IS_DIRECTORY "${dir}")
        file(REMOVE_RECURSE "${dir}")
      endif()
    endif()
  endforeach()
endfunction()
# the package's own folders, when they are empty now
remove_empty_folder("/cmake/safeinfer/[^/]+$" "")
# the Python package's folder: the byte code python3 wrote beside the modules (__pycache__, never in the manifest),
# then the folder when it is empty
remove_empty_folder("/safeinfer/_config\\.py$" "__pycache__")
message(STATUS "uninstall: removed ${removed} files listed in ${MANIFEST}")
