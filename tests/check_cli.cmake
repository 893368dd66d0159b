# `balm check` on the golden cases: the small copies in tests/data/golden
# always (dispatched ISA and backend, then scalar with the plain C linear
# layers), the full-size fcm_iemocap_dims from BALM_GOLDEN_DIR when that
# folder exists at configure time. tests/test_check_cli.c covers the exit
# statuses (failing, missing and malformed cases) and finds the binary
# through BALM_CLI.
if(TARGET balm_cli)
  file(GLOB _balm_golden_entries LIST_DIRECTORIES true ${CMAKE_CURRENT_SOURCE_DIR}/data/golden/*)
  set(_balm_golden_cases "")
  foreach(e ${_balm_golden_entries})
    if(IS_DIRECTORY ${e} AND EXISTS ${e}/case.txt)
      list(APPEND _balm_golden_cases ${e})
    endif()
  endforeach()
  if(_balm_golden_cases)
    add_test(NAME check_cli_golden COMMAND balm_cli check ${_balm_golden_cases})
    add_test(NAME check_cli_golden_scalar_ref
      COMMAND balm_cli check --isa scalar --linear ref ${_balm_golden_cases})
  endif()
  if(EXISTS ${BALM_GOLDEN_DIR}/fcm_iemocap_dims/case.txt)
    add_test(NAME check_cli_iemocap COMMAND balm_cli check ${BALM_GOLDEN_DIR}/fcm_iemocap_dims)
  endif()
  if(TARGET test_check_cli)
    add_dependencies(test_check_cli balm_cli)
    # The test starts the CLI with system(), outside any emulator ctest
    # wraps it in, so a cross build passes the emulator along.
    set(_balm_cli_env "BALM_CLI=$<TARGET_FILE:balm_cli>")
    if(CMAKE_CROSSCOMPILING AND CMAKE_CROSSCOMPILING_EMULATOR)
      list(JOIN CMAKE_CROSSCOMPILING_EMULATOR " " _balm_emu)
      list(APPEND _balm_cli_env "BALM_CLI_EMULATOR=${_balm_emu}")
    endif()
    set_tests_properties(test_check_cli PROPERTIES ENVIRONMENT "${_balm_cli_env}")
  endif()
endif()
