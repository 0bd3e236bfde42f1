# Finds every dependency; a missing one stops configure with one line naming it and its package.

function(phalanx_require found name debian termux)
  if(NOT ${found})
    message(FATAL_ERROR "phalanx: missing dependency ${name} "
      "(Debian/Ubuntu: apt-get install ${debian}; Termux: ${termux}; or run scripts/bootstrap.sh)")
  endif()
endfunction()

# oneDNN: Debian ships 2.x, phones build 3.x; csrc/dnnl/compat.h hides the difference.
find_package(dnnl CONFIG QUIET)
phalanx_require(dnnl_FOUND "oneDNN" "libdnnl-dev ocl-icd-opencl-dev" "build oneDNN 3.x, see termux/README.md")

find_package(OpenMP QUIET)
phalanx_require(OpenMP_CXX_FOUND "OpenMP" "libgomp1 (part of g++)" "clang (link with -static-openmp)")

find_package(Gloo CONFIG QUIET)
phalanx_require(Gloo_FOUND "Gloo" "libgloo-dev" "build Gloo from source, see termux/README.md")

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
