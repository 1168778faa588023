# Compile-fail test driver: builds TARGET in BUILD_DIR and passes when the build fails AND its
# output contains EXPECT (the static_assert's sentence); with EXPECT_SUCCESS=1 the build must succeed.
#   cmake -DBUILD_DIR=... -DTARGET=... -DEXPECT=... [-DEXPECT_SUCCESS=1] -P check_compile_fail.cmake
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")
if(EXPECT_SUCCESS)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${TARGET} should compile but failed:\n${all}")
  endif()
  message(STATUS "${TARGET} compiles, as it should")
  return()
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "${TARGET} compiled, but it must be rejected at compile time")
endif()
string(FIND "${all}" "${EXPECT}" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "${TARGET} failed to compile, but without the expected sentence '${EXPECT}':\n${all}")
endif()
message(STATUS "${TARGET} is rejected with: ${EXPECT}")
