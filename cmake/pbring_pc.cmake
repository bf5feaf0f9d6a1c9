# SPDX-License-Identifier: MIT
# Writes and installs pbring.pc at install time, from install(CODE) in the
# top CMakeLists.txt. A .pc file names its prefix, and the prefix is only
# known now: `cmake --install build --prefix P` sets CMAKE_INSTALL_PREFIX
# to P here, whatever it was when the build was configured.
#
# In: PBRING_PC_IN (the template), PBRING_PC_OUT (where to write it),
# PBRING_PC_LIBDIR and PBRING_PC_INCLUDEDIR (GNUInstallDirs, relative to
# the prefix or absolute), PBRING_PC_VERSION.
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${PBRING_PC_${dir}}")
    set(PC_${dir} "${PBRING_PC_${dir}}")
  else()
    set(PC_${dir} "\${prefix}/${PBRING_PC_${dir}}")
  endif()
endforeach()
set(PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(PC_VERSION "${PBRING_PC_VERSION}")
configure_file("${PBRING_PC_IN}" "${PBRING_PC_OUT}" @ONLY)

set(dest "${PBRING_PC_LIBDIR}/pkgconfig")
if(NOT IS_ABSOLUTE "${dest}")
  set(dest "${CMAKE_INSTALL_PREFIX}/${dest}")
endif()
# file(INSTALL) adds DESTDIR, prints the line and lists it in the manifest,
# as install(FILES) would.
file(INSTALL DESTINATION "${dest}" TYPE FILE FILES "${PBRING_PC_OUT}")
