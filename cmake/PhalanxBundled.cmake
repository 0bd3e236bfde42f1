# Bundled dependencies: oneDNN 3.x and Gloo built from source when the system lacks them (phones:
# Termux packages neither) or when asked (PHALANX_DEPS=bundled).
#
# PHALANX_DEPS=auto (default): a system package where found, else bundled, per dependency.
#              system: system packages only (a missing one stops configure, naming its package).
#              bundled: both built from source, static, with the phone configuration.
#
# Sources: a local source directory or tarball (PHALANX_ONEDNN_SOURCE / PHALANX_GLOO_SOURCE, as
# CMake variables or environment variables), else the pinned upstream tarball downloaded and
# checked against its SHA-256. Everything is unpacked and built under PHALANX_DEPS_CACHE (default
# <build dir>/_deps, or ~/.cache/phalanx/deps under pip, so reinstalls reuse it), keyed by
# the source's hash and the build options, so a rebuild never builds oneDNN again.

set(PHALANX_DEPS "$ENV{PHALANX_DEPS}" CACHE STRING "auto, system or bundled dependencies")
if(PHALANX_DEPS STREQUAL "")
  set(PHALANX_DEPS auto CACHE STRING "auto, system or bundled dependencies" FORCE)
endif()
set_property(CACHE PHALANX_DEPS PROPERTY STRINGS auto system bundled)
if(NOT PHALANX_DEPS MATCHES "^(auto|system|bundled)$")
  message(FATAL_ERROR "phalanx: PHALANX_DEPS=${PHALANX_DEPS}: expected auto, system or bundled")
endif()
set(PHALANX_ONEDNN_SOURCE "$ENV{PHALANX_ONEDNN_SOURCE}" CACHE STRING
  "local oneDNN 3.x source directory or tarball for the bundled build")
set(PHALANX_GLOO_SOURCE "$ENV{PHALANX_GLOO_SOURCE}" CACHE STRING
  "local Gloo source directory or tarball for the bundled build")
set(_phalanx_cache_default "$ENV{PHALANX_DEPS_CACHE}")
if(_phalanx_cache_default STREQUAL "" AND DEFINED SKBUILD AND NOT "$ENV{HOME}" STREQUAL "")
  # pip builds in a fresh temporary directory each time: keep the slow part in the user's cache.
  set(_phalanx_cache_default "$ENV{HOME}/.cache/phalanx/deps")
elseif(_phalanx_cache_default STREQUAL "")
  set(_phalanx_cache_default "${CMAKE_BINARY_DIR}/_deps")
endif()
set(PHALANX_DEPS_CACHE "${_phalanx_cache_default}" CACHE PATH
  "where bundled dependencies are unpacked and built, reused by later builds")

# The pinned upstream sources. Hashes: oneDNN's v3.7.3 release tarball and Gloo's archive of
# commit 5354032 (the commit Debian trixie packages), both as pinned by TensorFlow/XLA's
# workspace. Offline, Debian's source packages serve as local sources (README: "Bundled").
set(PHALANX_ONEDNN_URL "https://github.com/oneapi-src/oneDNN/archive/refs/tags/v3.7.3.tar.gz")
set(PHALANX_ONEDNN_SHA256 "071f289dc961b43a3b7c8cbe8a305290a7c5d308ec4b2f586397749abdc88296")
set(PHALANX_GLOO_URL "https://github.com/facebookincubator/gloo/archive/5354032ea08eadd7fc4456477f7f7c6308818509.tar.gz")
set(PHALANX_GLOO_SHA256 "5759a06e6c8863c58e8ceadeb56f7c701fec89b2559ba33a103a447207bf69c7")

# Sets ${out} to an unpacked source tree of `name`: `local` itself when it is a directory, else
# `local` (a tarball) or the downloaded pinned tarball unpacked once under the cache.
function(phalanx_dep_source name local url sha256 out)
  if(local AND IS_DIRECTORY "${local}")
    get_filename_component(dir "${local}" ABSOLUTE)
    set(${out} "${dir}" PARENT_SCOPE)
    return()
  endif()
  if(local)
    if(NOT EXISTS "${local}")
      message(FATAL_ERROR "phalanx: ${name} source ${local} does not exist")
    endif()
    file(SHA256 "${local}" hash)
    set(archive "${local}")
  else()
    set(hash "${sha256}")
    set(archive "${PHALANX_DEPS_CACHE}/${name}-${sha256}.tar.gz")
    if(NOT EXISTS "${archive}")
      message(STATUS "phalanx: downloading ${name} from ${url}")
      file(DOWNLOAD "${url}" "${archive}.part" EXPECTED_HASH SHA256=${sha256} STATUS status
        TLS_VERIFY ON)
      list(GET status 0 code)
      if(NOT code EQUAL 0)
        file(REMOVE "${archive}.part")
        list(GET status 1 why)
        string(TOUPPER "${name}" upper)
        message(FATAL_ERROR "phalanx: cannot download ${name} (${why}) from ${url}. Without a "
          "network, pass its sources: -DPHALANX_${upper}_SOURCE=DIR_OR_TARBALL (README: Bundled)")
      endif()
      file(RENAME "${archive}.part" "${archive}")
    endif()
  endif()
  string(SUBSTRING "${hash}" 0 16 key)
  set(unpacked "${PHALANX_DEPS_CACHE}/${name}-src-${key}")
  if(NOT EXISTS "${unpacked}/.phalanx-unpacked")
    file(REMOVE_RECURSE "${unpacked}")
    file(ARCHIVE_EXTRACT INPUT "${archive}" DESTINATION "${unpacked}")
    file(TOUCH "${unpacked}/.phalanx-unpacked")
  endif()
  # A release tarball holds one top directory (oneDNN-3.7.3/); Debian's gloo orig holds the tree.
  file(GLOB top LIST_DIRECTORIES true "${unpacked}/*")
  list(FILTER top EXCLUDE REGEX "/\\.phalanx-unpacked$")
  list(LENGTH top n)
  if(n EQUAL 1 AND IS_DIRECTORY "${top}")
    set(${out} "${top}" PARENT_SCOPE)
  else()
    set(${out} "${unpacked}" PARENT_SCOPE)
  endif()
endfunction()

include("${CMAKE_CURRENT_LIST_DIR}/bundled/onednn.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/bundled/gloo.cmake")
