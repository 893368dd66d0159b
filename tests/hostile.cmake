# Hostile-input tests driven by shell scripts (issue 8): `balm train`'s
# refusal of nonsensical flags, and checkpoint atomicity under injected
# faults (LD_PRELOAD shim: failing fsync/rename, a kill mid-save) and, as
# root, a full tmpfs; named pipes where files are expected.
if(TARGET balm_cli AND TARGET balm_trainer AND CMAKE_SYSTEM_NAME STREQUAL "Linux"
   AND NOT CMAKE_CROSSCOMPILING)
  add_library(balm_faultshim MODULE ${CMAKE_CURRENT_SOURCE_DIR}/hostile/faultshim.c)
  target_link_libraries(balm_faultshim PRIVATE ${CMAKE_DL_LIBS})
  target_compile_options(balm_faultshim PRIVATE ${BALM_WARN})
  # The shim must not carry the sanitizers of a BALM_SANITIZE build.
  set_target_properties(balm_faultshim PROPERTIES COMPILE_OPTIONS "${BALM_WARN}" LINK_OPTIONS "")
  find_program(BALM_PYTHON3 NAMES python3)
  add_test(NAME hostile_train_flags
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/hostile/train_flags.sh $<TARGET_FILE:balm_cli>)
  if(BALM_PYTHON3)
    add_test(NAME hostile_fifo_inputs
      COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/hostile/fifo_inputs.sh $<TARGET_FILE:balm_cli>
        ${BALM_PYTHON3})
    set_tests_properties(hostile_fifo_inputs PROPERTIES TIMEOUT 120)
    add_test(NAME hostile_ckpt_atomic
      COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/hostile/ckpt_atomic.sh $<TARGET_FILE:balm_cli>
        $<TARGET_FILE:balm_faultshim> ${BALM_PYTHON3})
  endif()
endif()
