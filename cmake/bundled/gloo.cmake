# Gloo compiled as phalanx's own static target `gloo` (the name Debian's package exports), from
# its sources: core collectives, rendezvous stores, the TCP transport and the Linux helpers.
# Gloo's own CMake builds the TCP transport only where CMAKE_SYSTEM_NAME is Linux, and Termux
# reports Android; its epoll code runs fine on Android, so we list the sources ourselves.
# No CUDA, MPI, Redis, ibverbs, libuv or TLS: phalanx uses none of them.

function(phalanx_bundled_gloo)
  phalanx_dep_source(gloo "${PHALANX_GLOO_SOURCE}" "${PHALANX_GLOO_URL}" "${PHALANX_GLOO_SHA256}" src)
  if(NOT EXISTS "${src}/gloo/transport/tcp/device.cc")
    message(FATAL_ERROR "phalanx: ${src} is not a Gloo source tree (no gloo/transport/tcp/device.cc)")
  endif()
  set(core algorithm allgather allgatherv allreduce allreduce_local alltoall alltoallv barrier
    broadcast context gather gatherv reduce scatter types)
  set(common logging utils linux)
  set(rendezvous context file_store hash_store prefix_store store)
  set(transport address buffer context device pair unbound_buffer)
  set(tcp address buffer context device error listener loop pair socket unbound_buffer)
  set(sources)
  foreach(group core common rendezvous transport tcp)
    set(dir "${src}/gloo")
    if(NOT group STREQUAL "core")
      set(dir "${src}/gloo/${group}")
    endif()
    if(group STREQUAL "tcp")
      set(dir "${src}/gloo/transport/tcp")
    endif()
    foreach(name ${${group}})
      list(APPEND sources "${dir}/${name}.cc")
    endforeach()
  endforeach()

  set(gen "${CMAKE_BINARY_DIR}/_gloo_config")
  set(GLOO_VERSION_MAJOR 0)
  set(GLOO_VERSION_MINOR 5)
  set(GLOO_VERSION_PATCH 0)
  foreach(off GLOO_USE_CUDA GLOO_USE_NCCL GLOO_USE_ROCM GLOO_USE_RCCL GLOO_USE_REDIS
      GLOO_USE_IBVERBS GLOO_USE_MPI GLOO_USE_AVX GLOO_USE_LIBUV GLOO_HAVE_TRANSPORT_TCP_TLS
      GLOO_HAVE_TRANSPORT_IBVERBS GLOO_HAVE_TRANSPORT_UV)
    set(${off} 0)
  endforeach()
  set(GLOO_HAVE_TRANSPORT_TCP 1)
  configure_file("${src}/gloo/config.h.in" "${gen}/gloo/config.h")

  add_library(gloo STATIC ${sources})
  set_target_properties(gloo PROPERTIES POSITION_INDEPENDENT_CODE ON CXX_STANDARD 17)
  # SYSTEM: third-party headers never trip phalanx's -Werror.
  target_include_directories(gloo SYSTEM PUBLIC "${src}" "${gen}")
  target_compile_options(gloo PRIVATE -w)
  if(ANDROID OR CMAKE_SYSTEM_NAME STREQUAL "Android")
    target_compile_options(gloo PRIVATE -include "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/gloo_bionic.h")
  endif()
  find_package(Threads REQUIRED)
  target_link_libraries(gloo PUBLIC Threads::Threads)
  set(Gloo_FOUND TRUE PARENT_SCOPE)
  set(PHALANX_GLOO_ORIGIN "bundled (${src})" PARENT_SCOPE)
endfunction()
