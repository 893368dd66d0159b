# The upstream pickle converter (tools/upstream_to_npy.py) and `balm train
# --data` on its output. Needs numpy for /usr/bin/python3: exit 77 = skipped.
find_program(BALM_SYSTEM_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(BALM_SYSTEM_PYTHON AND TARGET balm_cli)
  add_test(NAME train_upstream_to_npy
    COMMAND ${BALM_SYSTEM_PYTHON} ${PROJECT_SOURCE_DIR}/tools/test_upstream_to_npy.py
            --balm $<TARGET_FILE:balm_cli>)
  set_tests_properties(train_upstream_to_npy PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
