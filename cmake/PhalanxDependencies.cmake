# Finds every dependency; a missing one stops configure with one line naming it and its package.

function(phalanx_require found name debian termux)
  if(NOT ${found})
    message(FATAL_ERROR "phalanx: missing dependency ${name} "
      "(Debian/Ubuntu: apt-get install ${debian}; Termux: ${termux}; or run scripts/bootstrap.sh)")
  endif()
endfunction()

include("${CMAKE_CURRENT_LIST_DIR}/PhalanxBundled.cmake")

# oneDNN: Debian ships 2.x, phones build 3.x; csrc/dnnl/compat.h hides the difference.
if(NOT PHALANX_DEPS STREQUAL "bundled")
  find_package(dnnl CONFIG QUIET)
  set(PHALANX_ONEDNN_ORIGIN "system (${dnnl_DIR})")
endif()
if(NOT dnnl_FOUND AND NOT PHALANX_DEPS STREQUAL "system")
  phalanx_bundled_onednn()
endif()
phalanx_require(dnnl_FOUND "oneDNN" "libdnnl-dev ocl-icd-opencl-dev" "-DPHALANX_DEPS=bundled, see termux/README.md")

find_package(OpenMP QUIET)
phalanx_require(OpenMP_CXX_FOUND "OpenMP" "libgomp1 (part of g++)" "clang (link with -static-openmp)")

if(NOT PHALANX_DEPS STREQUAL "bundled")
  find_package(Gloo CONFIG QUIET)
  set(PHALANX_GLOO_ORIGIN "system (${Gloo_DIR})")
endif()
if(NOT Gloo_FOUND AND NOT PHALANX_DEPS STREQUAL "system")
  phalanx_bundled_gloo()
endif()
phalanx_require(Gloo_FOUND "Gloo" "libgloo-dev" "-DPHALANX_DEPS=bundled, see termux/README.md")
message(STATUS "phalanx: dependencies ${PHALANX_DEPS}: oneDNN ${PHALANX_ONEDNN_ORIGIN}, Gloo ${PHALANX_GLOO_ORIGIN}")

find_package(Protobuf CONFIG QUIET)
if(NOT Protobuf_FOUND)
  find_package(Protobuf MODULE QUIET)
endif()
phalanx_require(Protobuf_FOUND "Protobuf" "libprotobuf-dev protobuf-compiler" "pkg install libprotobuf protobuf")

if(PHALANX_BUILD_PYTHON)
  find_package(Python COMPONENTS Interpreter Development.Module QUIET)
  phalanx_require(Python_FOUND "Python development headers" "python3-dev" "pkg install python")
  find_package(pybind11 CONFIG QUIET)
  if(NOT pybind11_FOUND)
    execute_process(COMMAND "${Python_EXECUTABLE}" -m pybind11 --cmakedir
      OUTPUT_VARIABLE _pybind11_dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_pybind11_dir)
      find_package(pybind11 CONFIG QUIET PATHS "${_pybind11_dir}" NO_DEFAULT_PATH)
    endif()
  endif()
  phalanx_require(pybind11_FOUND "pybind11" "pip install pybind11" "pkg install python-pybind11")
endif()
