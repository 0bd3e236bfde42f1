# oneDNN 3.x built from source at configure time into the dependency cache, then found like an
# installed package (find_package(dnnl CONFIG)), so the rest of the build cannot tell the
# difference. Built once per source and configuration: the install directory's name carries both.
# The phone configuration: static, OpenMP CPU runtime, OpenBLAS as the BLAS vendor where found
# (oneDNN's own reference GEMM is an order of magnitude slower on aarch64 without SVE), graph API
# off, training workload, no examples or tests.

# Escaped semicolons: one -D argument holding oneDNN's own ';'-separated list.
set(PHALANX_ONEDNN_PRIMITIVES "BATCH_NORMALIZATION\\;BINARY\\;CONCAT\\;CONVOLUTION\\;DECONVOLUTION\\;\
ELTWISE\\;INNER_PRODUCT\\;LAYER_NORMALIZATION\\;MATMUL\\;POOLING\\;REDUCTION\\;REORDER\\;\
RESAMPLING\\;SOFTMAX\\;SUM")

function(phalanx_bundled_onednn)
  phalanx_dep_source(onednn "${PHALANX_ONEDNN_SOURCE}" "${PHALANX_ONEDNN_URL}"
    "${PHALANX_ONEDNN_SHA256}" src)
  if(NOT EXISTS "${src}/include/oneapi/dnnl/dnnl.hpp" OR NOT EXISTS "${src}/CMakeLists.txt")
    message(FATAL_ERROR "phalanx: ${src} is not a oneDNN source tree (no include/oneapi/dnnl/dnnl.hpp)")
  endif()
  file(STRINGS "${src}/CMakeLists.txt" version_line REGEX "^set\\(PROJECT_VERSION ")
  if(NOT version_line MATCHES "\"3\\.")
    message(FATAL_ERROR "phalanx: ${src} is not oneDNN 3.x (${version_line})")
  endif()

  find_library(PHALANX_OPENBLAS_LIBRARY NAMES openblas)
  set(options
    -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON
    -DDNNL_LIBRARY_TYPE=STATIC
    -DDNNL_CPU_RUNTIME=OMP
    -DONEDNN_BUILD_GRAPH=OFF
    -DONEDNN_ENABLE_WORKLOAD=TRAINING
    -DONEDNN_BUILD_EXAMPLES=OFF
    -DONEDNN_BUILD_TESTS=OFF
    -DONEDNN_BUILD_DOC=OFF
    # Only the primitives phalanx calls (no RNN, LRN, PReLU, shuffle, SDPA): a smaller library
    # on the phone and a shorter build on its two to eight cores.
    "-DONEDNN_ENABLE_PRIMITIVE=${PHALANX_ONEDNN_PRIMITIVES}")
  if(PHALANX_OPENBLAS_LIBRARY)
    list(APPEND options -DONEDNN_BLAS_VENDOR=OPENBLAS)
  endif()
  # The same compilers, target and launcher (ccache) as phalanx itself, so a cross build (the
  # aarch64 toolchain file) builds oneDNN for the same CPU.
  foreach(var CMAKE_C_COMPILER CMAKE_CXX_COMPILER CMAKE_TOOLCHAIN_FILE CMAKE_SYSROOT
      CMAKE_C_COMPILER_LAUNCHER CMAKE_CXX_COMPILER_LAUNCHER CMAKE_SYSTEM_NAME
      CMAKE_SYSTEM_PROCESSOR CMAKE_FIND_ROOT_PATH)
    if(DEFINED ${var} AND NOT "${${var}}" STREQUAL "")
      list(APPEND options "-D${var}=${${var}}")
    endif()
  endforeach()

  # The cache key: the source and every option that changes the library, not the compiler
  # launcher (ccache or none builds the same objects), and each compiler by the file it
  # resolves to: `cc` (a plain configure) and `gcc` (pip's build) are one compiler.
  set(key_options "${options}")
  list(FILTER key_options EXCLUDE REGEX "^-DCMAKE_(C|CXX)_COMPILER(_LAUNCHER)?=")
  foreach(lang C CXX)
    if(CMAKE_${lang}_COMPILER)
      get_filename_component(real "${CMAKE_${lang}_COMPILER}" REALPATH)
      list(APPEND key_options "${lang}=${real}")
    endif()
  endforeach()
  string(SHA256 key "${src};${key_options}")
  string(SUBSTRING "${key}" 0 16 key)
  set(prefix "${PHALANX_DEPS_CACHE}/onednn-${key}")
  set(config "${prefix}/install/lib/cmake/dnnl/dnnl-config.cmake")
  if(NOT EXISTS "${config}")
    include(ProcessorCount)
    ProcessorCount(jobs)
    if(jobs EQUAL 0)
      set(jobs 2)
    endif()
    message(STATUS "phalanx: building oneDNN from ${src} into ${prefix} (once; takes a while)")
    execute_process(
      COMMAND "${CMAKE_COMMAND}" -S "${src}" -B "${prefix}/build" -G "${CMAKE_GENERATOR}"
        "-DCMAKE_INSTALL_PREFIX=${prefix}/install" -DCMAKE_INSTALL_LIBDIR=lib ${options}
      RESULT_VARIABLE rc OUTPUT_VARIABLE log ERROR_VARIABLE log)
    file(WRITE "${prefix}/configure.log" "${log}")
    if(rc EQUAL 0)
      execute_process(
        COMMAND "${CMAKE_COMMAND}" --build "${prefix}/build" --target install --parallel ${jobs}
        RESULT_VARIABLE rc OUTPUT_FILE "${prefix}/build.log" ERROR_FILE "${prefix}/build.log")
    endif()
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "phalanx: building the bundled oneDNN failed; see ${prefix}/configure.log "
        "and ${prefix}/build.log")
    endif()
  endif()
  # A static oneDNN built with OpenBLAS lists BLAS::BLAS among its link libraries, but its
  # installed dnnl-config.cmake defines that target only for Apple's Accelerate.
  if(PHALANX_OPENBLAS_LIBRARY AND NOT TARGET BLAS::BLAS)
    add_library(BLAS::BLAS UNKNOWN IMPORTED GLOBAL)
    set_target_properties(BLAS::BLAS PROPERTIES IMPORTED_LOCATION "${PHALANX_OPENBLAS_LIBRARY}")
  endif()
  find_package(dnnl CONFIG REQUIRED PATHS "${prefix}/install" NO_DEFAULT_PATH)
  set(dnnl_FOUND TRUE PARENT_SCOPE)
  set(PHALANX_ONEDNN_ORIGIN "bundled (${src})" PARENT_SCOPE)
endfunction()
