# Tests of bench/compare, the benchmark regression gate, on small fixture
# files (tests/data/bench/*.json, Google Benchmark 1.7 format):
#   base.json        three benchmarks, 5 repetitions, cv 1.5-3 %, one skipped
#   slow30.json      gate/fwd/avx2/iemocap_l 30 % slower, the rest unchanged
#   raw_slow30.json  the same as raw repetitions without aggregates
#   mild5.json       everything 5 % slower: inside the 10 % threshold
#
# Included by tests/CMakeLists.txt to register the tests; the same file runs
# each case in script mode (cmake -P), where it checks the exit status and
# which benchmarks the output names.
if(CMAKE_SCRIPT_MODE_FILE)
  execute_process(COMMAND ${PY} ${COMPARE} ${DATA}/base.json ${DATA}/${NEW}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL EXPECT_RC)
    message(FATAL_ERROR "bench/compare base.json ${NEW}: exit ${rc}, expected ${EXPECT_RC}")
  endif()
  if(EXPECT_NAME AND NOT err MATCHES "REGRESSION ${EXPECT_NAME}")
    message(FATAL_ERROR "bench/compare did not name ${EXPECT_NAME} as a regression")
  endif()
  # Only the slowed benchmark may be named.
  string(REGEX MATCHALL "REGRESSION [^ :]+" named "${err}")
  list(LENGTH named n)
  if(EXPECT_NAME AND NOT n EQUAL 1)
    message(FATAL_ERROR "bench/compare named ${n} regressions, expected 1: ${named}")
  endif()
  return()
endif()

find_package(Python3 COMPONENTS Interpreter QUIET)
if(NOT Python3_Interpreter_FOUND)
  message(STATUS "bench_compare tests skipped: no Python 3 interpreter")
  return()
endif()

set(_bc_args -DPY=${Python3_EXECUTABLE} -DCOMPARE=${PROJECT_SOURCE_DIR}/bench/compare
  -DDATA=${CMAKE_CURRENT_SOURCE_DIR}/data/bench)
set(_bc_script ${CMAKE_CURRENT_LIST_FILE})
add_test(NAME bench_compare_same COMMAND ${CMAKE_COMMAND} ${_bc_args}
  -DNEW=base.json -DEXPECT_RC=0 -P ${_bc_script})
add_test(NAME bench_compare_slow30 COMMAND ${CMAKE_COMMAND} ${_bc_args}
  -DNEW=slow30.json -DEXPECT_RC=1 -DEXPECT_NAME=gate/fwd/avx2/iemocap_l -P ${_bc_script})
add_test(NAME bench_compare_raw_slow30 COMMAND ${CMAKE_COMMAND} ${_bc_args}
  -DNEW=raw_slow30.json -DEXPECT_RC=1 -DEXPECT_NAME=gate/fwd/avx2/iemocap_l -P ${_bc_script})
add_test(NAME bench_compare_mild5 COMMAND ${CMAKE_COMMAND} ${_bc_args}
  -DNEW=mild5.json -DEXPECT_RC=0 -P ${_bc_script})
add_test(NAME bench_compare_missing_file COMMAND ${CMAKE_COMMAND} ${_bc_args}
  -DNEW=no_such_file.json -DEXPECT_RC=2 -P ${_bc_script})
