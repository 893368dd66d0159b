# The upstream pickle converter (tools/upstream_to_npy.py) and `balm train
# --data` on its output. Needs numpy for /usr/bin/python3: exit 77 = skipped.
# Cross builds check the converter alone (the script cannot run balm there).
find_program(BALM_SYSTEM_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(BALM_SYSTEM_PYTHON AND TARGET balm_cli)
  set(BALM_CONVERT_ARGS --balm $<TARGET_FILE:balm_cli>)
  if(CMAKE_CROSSCOMPILING)
    set(BALM_CONVERT_ARGS "")
  endif()
  add_test(NAME train_upstream_to_npy
    COMMAND ${BALM_SYSTEM_PYTHON} ${PROJECT_SOURCE_DIR}/tools/test_upstream_to_npy.py ${BALM_CONVERT_ARGS})
  set_tests_properties(train_upstream_to_npy PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
