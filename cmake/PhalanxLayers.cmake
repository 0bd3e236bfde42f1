# One static library per layer of csrc/, so the build itself enforces "dependencies point down":
# a layer's sources see only the headers of the layer itself and of the layers it DEPENDS on, and
# link only against those. An upward `#include "autograd/..."` in csrc/ops/ is then a compile
# error ("No such file"), not something a reviewer has to spot.
#
# How a layer sees headers: every source includes "layer/file.h". Instead of putting csrc/ on the
# include path (which would show every layer to everyone), each layer gets its own include root
# ${PHALANX_LAYER_INCLUDE_ROOT}/<layer>/ holding one symlink per visible folder,
# <root>/<layer>/<dir> -> csrc/<dir>. A quoted include first searches the including file's own
# folder, csrc/<layer>/, where "other/x.h" never exists, so the symlink root decides.
#
# Sources are picked up by folder glob (CONFIGURE_DEPENDS), so a new file in a folder needs no
# CMake edit. A folder without sources (a layer not landed yet) creates no target, and other
# layers simply do not see it.

set(PHALANX_LAYER_INCLUDE_ROOT ${CMAKE_BINARY_DIR}/layer_include)
set(PHALANX_LAYERS "" CACHE INTERNAL "the layers created so far, bottom first")

# The include root of LAYER showing its own folder and the folders of DEPENDS.
function(_phalanx_layer_include_root layer)
  set(root ${PHALANX_LAYER_INCLUDE_ROOT}/${layer})
  file(REMOVE_RECURSE ${root})
  file(MAKE_DIRECTORY ${root})
  foreach(dir ${layer} ${ARGN})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/csrc/${dir} ${root}/${dir} SYMBOLIC)
  endforeach()
endfunction()

# Gives TARGET the header view of LAYER (its own folder plus its DEPENDS), e.g. for the
# layering probes in tests/layering/ that must fail or succeed exactly as a layer's source would.
function(phalanx_layer_view target layer)
  target_include_directories(${target} PRIVATE ${PHALANX_LAYER_INCLUDE_ROOT}/${layer})
endfunction()

# phalanx_layer(NAME [DEPENDS lower layers...] [LIBS third-party targets...]
#               [PUBLIC_LIBS third-party targets its headers expose...] [MODULE])
# DEPENDS lists every lower layer NAME may use (the closure, not only the next one down): a
# layer that is not there yet is skipped. MODULE makes NAME the Python extension _C instead of
# a static library (the bindings are the top layer and are the module).
function(phalanx_layer name)
  cmake_parse_arguments(PARSE_ARGV 1 L "MODULE" "" "DEPENDS;LIBS;PUBLIC_LIBS")
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/csrc/${name}/*.cc)
  if(NOT sources)
    message(STATUS "phalanx: layer ${name} has no sources yet; not built")
    return()
  endif()
  set(present "")
  foreach(dep ${L_DEPENDS})
    if(dep IN_LIST PHALANX_LAYERS)
      list(APPEND present ${dep})
    endif()
  endforeach()
  _phalanx_layer_include_root(${name} ${present})

  if(L_MODULE)
    set(target _C)
    pybind11_add_module(${target} ${sources})
  else()
    set(target phalanx_${name})
    add_library(${target} STATIC ${sources})
  endif()
  phalanx_layer_view(${target} ${name})
  target_compile_options(${target} PRIVATE ${PHALANX_WARNINGS})
  foreach(dep ${present})
    target_link_libraries(${target} PRIVATE phalanx_${dep})
  endforeach()
  target_link_libraries(${target} PRIVATE ${L_LIBS} PUBLIC ${L_PUBLIC_LIBS})
  set_property(GLOBAL PROPERTY PHALANX_LAYER_DEPENDS_${name} ${present})
  if(NOT L_MODULE)
    set(PHALANX_LAYERS ${PHALANX_LAYERS} ${name} CACHE INTERNAL "")
  endif()
endfunction()
