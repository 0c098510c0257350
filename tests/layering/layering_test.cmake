# Tests cmake/check_layering.cmake on two small trees: good/ keeps its
# declared layering; bad/ breaks each rule once and every break is reported.
#   cmake -DCHECKER=<check_layering.cmake> -DDIR=<tests/layering> -P layering_test.cmake
execute_process(COMMAND ${CMAKE_COMMAND} -DLAYERS=${DIR}/good/layers.cmake -DSOURCE_DIR=${DIR}/good -P ${CHECKER}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "FAIL: the good tree was rejected:\n${out}${err}")
endif()

execute_process(COMMAND ${CMAKE_COMMAND} -DLAYERS=${DIR}/bad/layers.cmake -DSOURCE_DIR=${DIR}/bad -P ${CHECKER}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "FAIL: the bad tree was accepted")
endif()
string(REGEX REPLACE "[ \t\r\n]+" " " err "${err}")  # message() wraps long lines
foreach(expected
    "layer high USES mid, which is not a layer below it"
    "src/low/low.cc: includes codey/high.h of layer high, but layer low does not declare USES high"
    "src/high/high.cc: includes codey/low.h of layer low, but layer high does not declare USES low"
    "src/high/high.cc: includes low/private.h, a private header of low"
    "src/high/high.cc: includes codey/nobody.h, which no layer declares"
    "layer high declares USES mid, but no file of it includes a header of mid")
  string(FIND "${err}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "FAIL: not reported: '${expected}'\nthe checker said: ${err}")
  endif()
endforeach()
message(STATUS "layering checker: good tree accepted, all 6 breaks of the bad tree reported")
