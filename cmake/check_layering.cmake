# Checks that the sources keep the layering the build declares (cmake -P).
#   cmake -DLAYERS=<file> [-DSOURCE_DIR=<dir>] -P check_layering.cmake
# LAYERS is the table codey_layer() writes (CodeyLayers.cmake): for each layer,
# bottom up, the layers it USES and its public headers. Each layer's code is
# src/NAME/** plus its public headers include/codey/*.h. The rules:
#  1. a private header (src/X/...) is included only by layer X itself;
#  2. a public header "codey/H.h" is included only by its own layer or by a
#     layer that declares USES of H's layer (so every edge is declared ...);
#  3. every declared USES edge is used by some #include (... and only those);
#  4. a layer USES only layers declared before it (layers point down).
# Prints every violation, then fails; prints nothing and succeeds otherwise.
cmake_minimum_required(VERSION 3.25)

if(NOT LAYERS)
  message(FATAL_ERROR "check_layering: pass -DLAYERS=<layer table>")
endif()
include(${LAYERS})  # sets CODEY_LAYERS, CODEY_LAYER_<name>_USES / _HEADERS, CODEY_SOURCE_DIR
if(SOURCE_DIR)
  set(CODEY_SOURCE_DIR ${SOURCE_DIR})
endif()

set(errors "")
macro(violation text)
  string(APPEND errors "  ${text}\n")
endmacro()

# Which layer owns each public header, and which layers exist as folders.
set(seen "")
foreach(layer IN LISTS CODEY_LAYERS)
  foreach(h IN LISTS CODEY_LAYER_${layer}_HEADERS ITEMS ${layer})
    set(owner_${h} ${layer})
  endforeach()
  foreach(dep IN LISTS CODEY_LAYER_${layer}_USES)
    if(NOT dep IN_LIST seen)
      violation("layer ${layer} USES ${dep}, which is not a layer below it (layers only point down)")
    endif()
  endforeach()
  list(APPEND seen ${layer})
endforeach()
file(GLOB src_dirs LIST_DIRECTORIES true RELATIVE ${CODEY_SOURCE_DIR}/src ${CODEY_SOURCE_DIR}/src/*)

foreach(layer IN LISTS CODEY_LAYERS)
  file(GLOB_RECURSE files ${CODEY_SOURCE_DIR}/src/${layer}/*.h ${CODEY_SOURCE_DIR}/src/${layer}/*.cc)
  foreach(h IN LISTS CODEY_LAYER_${layer}_HEADERS ITEMS ${layer})
    if(EXISTS ${CODEY_SOURCE_DIR}/include/codey/${h}.h)
      list(APPEND files ${CODEY_SOURCE_DIR}/include/codey/${h}.h)
    endif()
  endforeach()
  set(used "")
  foreach(f IN LISTS files)
    file(RELATIVE_PATH rel ${CODEY_SOURCE_DIR} ${f})
    file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
    foreach(line IN LISTS lines)
      if(NOT line MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
        continue()
      endif()
      set(inc ${CMAKE_MATCH_1})
      if(inc MATCHES "^codey/([a-z0-9_]+)\\.h$")
        set(h ${CMAKE_MATCH_1})
        if(NOT DEFINED owner_${h})
          violation("${rel}: includes ${inc}, which no layer declares as its public header")
          continue()
        endif()
        set(owner ${owner_${h}})
        if(owner STREQUAL layer)
          continue()
        endif()
        if(owner IN_LIST CODEY_LAYER_${layer}_USES)
          list(APPEND used ${owner})
        else()
          violation("${rel}: includes ${inc} of layer ${owner}, but layer ${layer} does not declare USES ${owner}")
        endif()
      elseif(inc MATCHES "^([a-z0-9_]+)/")
        set(dir ${CMAKE_MATCH_1})
        if(dir IN_LIST src_dirs AND NOT dir STREQUAL layer)
          violation("${rel}: includes ${inc}, a private header of ${dir} (only src/${dir}/ may include it; move what others need to a public header of ${dir} in include/codey/)")
        endif()
      endif()
    endforeach()
  endforeach()
  foreach(dep IN LISTS CODEY_LAYER_${layer}_USES)
    if(NOT dep IN_LIST used)
      violation("layer ${layer} declares USES ${dep}, but no file of it includes a header of ${dep}: drop the edge")
    endif()
  endforeach()
endforeach()

if(errors)
  message(FATAL_ERROR "the sources break the declared layering (CMakeLists.txt, codey_layer):\n${errors}")
endif()
