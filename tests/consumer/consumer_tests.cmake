# Registers the consumer tests (included at the end of tests/CMakeLists.txt). They check that
# sqakd works as users consume it: installed + find_package, add_subdirectory, pkg-config.
# The enclosing build's compiler, C++ standard, flags, build type and generator are passed on.
set(_sqakd_consumer_work "${CMAKE_CURRENT_BINARY_DIR}/consumer")
set(_sqakd_consumer_args
  -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
  -DWORK_DIR=${_sqakd_consumer_work}
  -DCXX=${CMAKE_CXX_COMPILER}
  -DCXX_STANDARD=${CMAKE_CXX_STANDARD}
  "-DCXX_FLAGS=${CMAKE_CXX_FLAGS}"
  -DBUILD_TYPE=${CMAKE_BUILD_TYPE}
  "-DGENERATOR=${CMAKE_GENERATOR}"
  -DMAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}
  -DWERROR=${SQAKD_WERROR})
set(_sqakd_consumer_driver "${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake")

# The install step is a fixture shared by the find_package and pkg-config tests, so that
# `ctest -R consumer_find_package` still installs first and `ctest -j` never races on it.
add_test(NAME consumer_install
         COMMAND ${CMAKE_COMMAND} -DMODE=install ${_sqakd_consumer_args} -P ${_sqakd_consumer_driver})
set_tests_properties(consumer_install PROPERTIES FIXTURES_SETUP sqakd_install_prefix)

add_test(NAME consumer_find_package
         COMMAND ${CMAKE_COMMAND} -DMODE=find_package ${_sqakd_consumer_args} -P ${_sqakd_consumer_driver})
set_tests_properties(consumer_find_package PROPERTIES FIXTURES_REQUIRED sqakd_install_prefix)

add_test(NAME consumer_add_subdirectory
         COMMAND ${CMAKE_COMMAND} -DMODE=add_subdirectory ${_sqakd_consumer_args} -P ${_sqakd_consumer_driver})

find_program(SQAKD_PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf)
if(SQAKD_PKG_CONFIG_EXECUTABLE)
  add_test(NAME consumer_pkg_config
           COMMAND ${CMAKE_COMMAND} -DMODE=pkg_config ${_sqakd_consumer_args}
                   -DPKG_CONFIG=${SQAKD_PKG_CONFIG_EXECUTABLE} -P ${_sqakd_consumer_driver})
  set_tests_properties(consumer_pkg_config PROPERTIES FIXTURES_REQUIRED sqakd_install_prefix)
else()
  message(STATUS "pkg-config not found: test consumer_pkg_config is not registered")
endif()

set(_sqakd_consumer_tests consumer_install consumer_find_package consumer_add_subdirectory)
if(SQAKD_PKG_CONFIG_EXECUTABLE)
  list(APPEND _sqakd_consumer_tests consumer_pkg_config)
endif()
set_tests_properties(${_sqakd_consumer_tests} PROPERTIES
  LABELS consumer TIMEOUT 900 ENVIRONMENT "OMP_NUM_THREADS=2")
