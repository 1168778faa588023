# Driver for the consumer tests (cmake -P). Registered by tests/consumer/consumer_tests.cmake.
#
#   cmake -DMODE=<install|find_package|add_subdirectory|pkg_config>
#         -DSOURCE_DIR=<sqakd source> -DWORK_DIR=<scratch dir in the build tree>
#         [-DCXX=<compiler>] [-DCXX_STANDARD=17] [-DCXX_FLAGS=...] [-DGENERATOR=...]
#         [-DMAKE_PROGRAM=...] [-DBUILD_TYPE=...] [-DWERROR=ON] [-DPKG_CONFIG=<pkg-config>]
#         -P run_consumer.cmake
#
# install          configures the sqakd source with tests/examples/benchmarks OFF and installs
#                  it into WORK_DIR/prefix (the fixture the other two install-based modes use).
# find_package     builds and runs tests/consumer against that prefix (find_package(sqakd)).
# add_subdirectory builds and runs tests/consumer with add_subdirectory(SOURCE_DIR).
# pkg_config       compiles tests/consumer/main.cpp with `pkg-config --cflags --libs sqakd`.
cmake_minimum_required(VERSION 3.16)

foreach(_v MODE SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${_v} OR "${${_v}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: ${_v} is required")
  endif()
endforeach()
get_filename_component(CONSUMER_DIR "${CMAKE_CURRENT_LIST_DIR}" ABSOLUTE)
set(PREFIX "${WORK_DIR}/prefix")
if(NOT DEFINED CXX_STANDARD OR CXX_STANDARD STREQUAL "")
  set(CXX_STANDARD 17)
endif()

# Runs a command, echoing it; stops the test with `what` when it fails.
function(step what)
  string(REPLACE ";" " " _pretty "${ARGN}")
  message(STATUS "[${MODE}] ${what}: ${_pretty}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] ${what} failed (${_rc})")
  endif()
endfunction()

# Compiler, standard, generator of the enclosing build, so the consumer is built the same way.
set(_common -DCMAKE_CXX_STANDARD=${CXX_STANDARD})
if(CXX)
  list(APPEND _common "-DCMAKE_CXX_COMPILER=${CXX}")
endif()
if(CXX_FLAGS)
  list(APPEND _common "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()
if(BUILD_TYPE)
  list(APPEND _common "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
endif()
if(GENERATOR)
  list(APPEND _common -G "${GENERATOR}")
endif()
if(MAKE_PROGRAM)
  list(APPEND _common "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()

function(build_and_run_consumer bindir)
  step("configure consumer" ${CMAKE_COMMAND} -S "${CONSUMER_DIR}" -B "${bindir}" ${_common}
       -DSQAKD_CONSUMER_WERROR=${WERROR} ${ARGN})
  step("build consumer" ${CMAKE_COMMAND} --build "${bindir}")
  step("run consumer" "${bindir}/sqakd_consumer")
endfunction()

if(MODE STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}" "${WORK_DIR}/install-build")
  step("configure sqakd (tests off)" ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/install-build"
       ${_common} -DSQAKD_BUILD_TESTS=OFF -DSQAKD_BUILD_EXAMPLES=OFF -DSQAKD_BUILD_BENCHMARKS=OFF
       -DSQAKD_INSTALL=ON "-DCMAKE_INSTALL_PREFIX=${PREFIX}")
  step("install sqakd" ${CMAKE_COMMAND} --install "${WORK_DIR}/install-build")
  # What must be there, and no path of this machine's source or build tree in the package
  # files (they must be relocatable; dependencies are found again by sqakdConfig.cmake).
  set(_cmakedir "${PREFIX}/share/cmake/sqakd")
  foreach(_f "${PREFIX}/include/sqakd/nn.hpp" "${_cmakedir}/sqakdConfig.cmake"
             "${_cmakedir}/sqakdConfigVersion.cmake" "${_cmakedir}/sqakdTargets.cmake"
             "${_cmakedir}/sqakdDependencies.cmake" "${PREFIX}/share/pkgconfig/sqakd.pc")
    if(NOT EXISTS "${_f}")
      message(FATAL_ERROR "[install] missing ${_f}")
    endif()
  endforeach()
  file(GLOB _pkgfiles "${_cmakedir}/*.cmake" "${PREFIX}/share/pkgconfig/sqakd.pc")
  foreach(_f IN LISTS _pkgfiles)
    file(READ "${_f}" _text)
    foreach(_path "${SOURCE_DIR}" "${WORK_DIR}")
      string(FIND "${_text}" "${_path}" _at)
      if(NOT _at EQUAL -1)
        message(FATAL_ERROR "[install] ${_f} contains the build-machine path ${_path}")
      endif()
    endforeach()
  endforeach()
  message(STATUS "[install] sqakd installed into ${PREFIX}")

elseif(MODE STREQUAL "find_package")
  if(NOT EXISTS "${PREFIX}/share/cmake/sqakd/sqakdConfig.cmake")
    message(FATAL_ERROR "[find_package] ${PREFIX} has no sqakd install (run consumer_install first)")
  endif()
  set(_bin "${WORK_DIR}/find_package")
  file(REMOVE_RECURSE "${_bin}")
  # Only the fresh prefix may provide sqakd: no package registry, no system install.
  build_and_run_consumer("${_bin}" "-DCMAKE_PREFIX_PATH=${PREFIX}"
                         -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  file(STRINGS "${_bin}/CMakeCache.txt" _dir REGEX "^sqakd_DIR:")
  string(REGEX REPLACE "^sqakd_DIR:[A-Z]+=" "" _dir "${_dir}")
  get_filename_component(_dir "${_dir}" REALPATH)
  get_filename_component(_want "${PREFIX}/share/cmake/sqakd" REALPATH)
  if(NOT _dir STREQUAL _want)
    message(FATAL_ERROR "[find_package] sqakd was found in '${_dir}', not in '${_want}'")
  endif()

elseif(MODE STREQUAL "add_subdirectory")
  set(_bin "${WORK_DIR}/add_subdirectory")
  file(REMOVE_RECURSE "${_bin}")
  build_and_run_consumer("${_bin}" -DSQAKD_CONSUMER_MODE=add_subdirectory
                         "-DSQAKD_SOURCE_DIR=${SOURCE_DIR}")
  # Nothing of sqakd's own (tests, examples, benchmarks) may have been generated or built.
  foreach(_d tests examples benchmarks)
    if(EXISTS "${_bin}/sqakd/${_d}")
      message(FATAL_ERROR "[add_subdirectory] sqakd generated ${_d}/ as a subproject")
    endif()
  endforeach()

elseif(MODE STREQUAL "pkg_config")
  if(NOT PKG_CONFIG)
    message(FATAL_ERROR "[pkg_config] PKG_CONFIG (the pkg-config program) is required")
  endif()
  if(NOT CXX)
    message(FATAL_ERROR "[pkg_config] CXX (the compiler) is required")
  endif()
  set(ENV{PKG_CONFIG_PATH} "${PREFIX}/share/pkgconfig")
  step("validate sqakd.pc" "${PKG_CONFIG}" --print-errors --exists sqakd)
  execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs sqakd
                  OUTPUT_VARIABLE _flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[pkg_config] pkg-config --cflags --libs sqakd failed")
  endif()
  message(STATUS "[pkg_config] pkg-config --cflags --libs sqakd: ${_flags}")
  if(NOT _flags MATCHES "-I[^ ]*/include( |$)")
    message(FATAL_ERROR "[pkg_config] the flags lack sqakd's include directory")
  endif()
  separate_arguments(_flags UNIX_COMMAND "${_flags}")
  separate_arguments(_cxxflags UNIX_COMMAND "${CXX_FLAGS}")
  set(_warn "")
  if(WERROR)
    set(_warn -Wall -Wextra -Wpedantic -Werror)
  endif()
  set(_bin "${WORK_DIR}/pkg_config")
  file(REMOVE_RECURSE "${_bin}")
  file(MAKE_DIRECTORY "${_bin}")
  step("compile consumer" "${CXX}" -std=c++${CXX_STANDARD} ${_cxxflags} -O1 ${_warn}
       "${CONSUMER_DIR}/main.cpp" -o "${_bin}/sqakd_consumer" ${_flags})
  step("run consumer" "${_bin}/sqakd_consumer")

else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()
