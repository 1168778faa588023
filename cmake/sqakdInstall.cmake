# Install rules and package files for sqakd (included from the top-level CMakeLists.txt when
# SQAKD_INSTALL is ON).
#
# What a user gets after `cmake --install <build> --prefix <p>`:
#   <p>/include/sqakd/...                          the headers
#   <p>/share/cmake/sqakd/sqakdConfig.cmake        find_package(sqakd CONFIG)
#   <p>/share/cmake/sqakd/sqakdConfigVersion.cmake SameMajorVersion, arch independent
#   <p>/share/cmake/sqakd/sqakdTargets.cmake       the exported sqakd::sqakd
#   <p>/share/cmake/sqakd/sqakdDependencies.cmake  the same dependency lookup as the build tree
#   <p>/share/pkgconfig/sqakd.pc                   pkg-config --cflags --libs sqakd
#
# The library is header-only, so everything goes under share/ (arch independent), like
# xtensor's own package files. Dependencies are not frozen into sqakdTargets.cmake: the export
# only names the imported targets (xtensor, xsimd, OpenMP::OpenMP_CXX, ZLIB::ZLIB,
# sqakd::openblas), and sqakdConfig.cmake recreates them on the user's machine through
# sqakdDependencies.cmake, so no absolute path of the build machine reaches a CMake user.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SQAKD_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/sqakd"
    CACHE STRING "Where to install sqakd's CMake package files (relative to the prefix)")
set(SQAKD_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_DATADIR}/pkgconfig"
    CACHE STRING "Where to install sqakd.pc (relative to the prefix)")
mark_as_advanced(SQAKD_INSTALL_CMAKEDIR SQAKD_INSTALL_PKGCONFIGDIR)

# Headers: the whole include/ tree (only headers live there).
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h" PATTERN "*.inl")

# The INTERFACE target, exported as sqakd::sqakd (its include directory in the install tree
# comes from the $<INSTALL_INTERFACE:...> entry in CMakeLists.txt).
install(TARGETS sqakd EXPORT sqakdTargets)
install(EXPORT sqakdTargets
        NAMESPACE sqakd::
        FILE sqakdTargets.cmake
        DESTINATION "${SQAKD_INSTALL_CMAKEDIR}")

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/sqakdConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/sqakdConfig.cmake"
  INSTALL_DESTINATION "${SQAKD_INSTALL_CMAKEDIR}"
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR)

# Header-only: the version file must not compare the user's pointer size with ours.
if(CMAKE_VERSION VERSION_LESS 3.14)
  write_basic_package_version_file("${PROJECT_BINARY_DIR}/sqakdConfigVersion.cmake"
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
else()
  write_basic_package_version_file("${PROJECT_BINARY_DIR}/sqakdConfigVersion.cmake"
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
endif()

install(FILES
          "${PROJECT_BINARY_DIR}/sqakdConfig.cmake"
          "${PROJECT_BINARY_DIR}/sqakdConfigVersion.cmake"
          "${PROJECT_SOURCE_DIR}/cmake/sqakdDependencies.cmake"
        DESTINATION "${SQAKD_INSTALL_CMAKEDIR}")

# ---- pkg-config -----------------------------------------------------------------------------
# pkg-config has no find step, so here the OpenBLAS location found at configure time is
# written down (as -I/-L/-l, from the sqakd::openblas target). The prefix itself is computed
# from the .pc file's own location, so the install tree stays relocatable.
set(_sqakd_pc_cflags "")
set(_sqakd_pc_libs "")
get_target_property(_sqakd_blas_inc sqakd::openblas INTERFACE_INCLUDE_DIRECTORIES)
get_target_property(_sqakd_blas_lib sqakd::openblas INTERFACE_LINK_LIBRARIES)
foreach(_dir IN LISTS _sqakd_blas_inc)
  if(_dir)
    string(REGEX REPLACE "/+$" "" _dir "${_dir}")
    string(REGEX REPLACE "//+" "/" _dir "${_dir}")
    # -isystem, as CMake does for imported targets: OpenBLAS's openblas_config.h uses C99
    # _Complex, which clang -Wpedantic -Werror would otherwise reject in users' builds.
    string(APPEND _sqakd_pc_cflags " -isystem ${_dir}")
  endif()
endforeach()
foreach(_lib IN LISTS _sqakd_blas_lib)
  if(NOT _lib)
    continue()
  elseif(_lib MATCHES "^-")
    string(APPEND _sqakd_pc_libs " ${_lib}")
  elseif(IS_ABSOLUTE "${_lib}" AND _lib MATCHES "/lib([^/]+)\\.(so|a|dylib)(\\.[0-9.]+)?$")
    set(_name "${CMAKE_MATCH_1}")
    get_filename_component(_ldir "${_lib}" DIRECTORY)
    string(REGEX REPLACE "/+$" "" _ldir "${_ldir}")
    string(REGEX REPLACE "//+" "/" _ldir "${_ldir}")
    string(APPEND _sqakd_pc_libs " -L${_ldir} -l${_name}")
  elseif(IS_ABSOLUTE "${_lib}")
    string(APPEND _sqakd_pc_libs " ${_lib}")
  else()
    string(APPEND _sqakd_pc_libs " -l${_lib}")
  endif()
endforeach()

# xtensor, xsimd and xtl ship .pc files on Debian; require them when they are there so that a
# non-system install of them is found too (system include dirs are dropped by pkg-config).
set(SQAKD_PC_REQUIRES "")
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(_sqakd_pc_xtensor QUIET xtensor xsimd xtl)
  if(_sqakd_pc_xtensor_FOUND)
    set(SQAKD_PC_REQUIRES "xtensor xsimd xtl")
  endif()
endif()

if(IS_ABSOLUTE "${SQAKD_INSTALL_PKGCONFIGDIR}")
  # An absolute .pc location cannot follow `cmake --install --prefix`: name the prefix.
  set(SQAKD_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _sqakd_up
       "${CMAKE_INSTALL_PREFIX}/${SQAKD_INSTALL_PKGCONFIGDIR}" "${CMAKE_INSTALL_PREFIX}")
  string(REGEX REPLACE "/$" "" _sqakd_up "${_sqakd_up}")
  set(SQAKD_PC_PREFIX "\${pcfiledir}/${_sqakd_up}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(SQAKD_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(SQAKD_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
string(STRIP "${_sqakd_pc_cflags}" SQAKD_PC_EXTRA_CFLAGS)
string(STRIP "${_sqakd_pc_libs}" SQAKD_PC_EXTRA_LIBS)
configure_file("${PROJECT_SOURCE_DIR}/cmake/sqakd.pc.in" "${PROJECT_BINARY_DIR}/sqakd.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/sqakd.pc" DESTINATION "${SQAKD_INSTALL_PKGCONFIGDIR}")
