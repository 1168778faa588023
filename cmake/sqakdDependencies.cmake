# Finds what the sqakd headers need. Used by the build tree and by the installed
# sqakdConfig.cmake (through find_dependency), so both resolve dependencies the same way.
include(CMakeFindDependencyMacro)
include(GNUInstallDirs)

# Debian's xsimd and xtensor configs need xtl found first.
find_dependency(xtl)
find_dependency(xsimd)
find_dependency(xtensor)
find_dependency(OpenMP)
find_dependency(ZLIB)

if(NOT TARGET sqakd::openblas)
  # OpenBLAS's OpenMP build: BLAS calls made inside OpenMP regions run single-threaded,
  # so the engine's own threads and OpenBLAS's never oversubscribe the cores.
  find_package(OpenBLAS CONFIG QUIET)
  if(OpenBLAS_FOUND)
    add_library(sqakd::openblas INTERFACE IMPORTED)
    set_target_properties(sqakd::openblas PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${OpenBLAS_INCLUDE_DIRS}"
      INTERFACE_LINK_LIBRARIES "${OpenBLAS_LIBRARIES}")
  else()
    find_path(SQAKD_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas-openmp openblas)
    find_library(SQAKD_OPENBLAS_LIB NAMES openblas)
    if(NOT SQAKD_CBLAS_INCLUDE OR NOT SQAKD_OPENBLAS_LIB)
      message(FATAL_ERROR "sqakd needs OpenBLAS (Debian: libopenblas-openmp-dev); run scripts/setup.sh")
    endif()
    add_library(sqakd::openblas INTERFACE IMPORTED)
    set_target_properties(sqakd::openblas PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${SQAKD_CBLAS_INCLUDE}"
      INTERFACE_LINK_LIBRARIES "${SQAKD_OPENBLAS_LIB}")
  endif()
endif()
