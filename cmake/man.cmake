# SPDX-License-Identifier: MIT
# Man pages. tools/mangen.c, a small host program, reads the block comment
# above every public function of the installed headers and writes, into
# <build>/man at build time (part of `all`, redone when a header changes):
#   <function>.3       one page per public function (MEMPIPE_EXTERN);
#   mempipe_<a>.7      one page per built adapter, from its header's comment;
#   mempipe.7          the concepts, from docs/man/mempipe.7.in.
# A public function without a comment fails the build. `cmake --install`
# puts them under ${CMAKE_INSTALL_MANDIR}/man3 and man7.

if(CMAKE_SOURCE_DIR STREQUAL PROJECT_SOURCE_DIR AND NOT CMAKE_CROSSCOMPILING)
  set(_mempipe_man_default ON)
else()
  set(_mempipe_man_default OFF) # embedded, or no way to run a host tool
endif()
option(MEMPIPE_BUILD_MAN "Generate (and install) the man pages" ${_mempipe_man_default})
if(NOT MEMPIPE_BUILD_MAN)
  return()
endif()

set(MEMPIPE_MAN_DIR ${PROJECT_BINARY_DIR}/man)
set(_mempipe_man_template ${PROJECT_SOURCE_DIR}/docs/man/mempipe.7.in)
# The headers that get installed: the core's (mempipe.h and the scripted
# peer's mempipe/script.h, part of libmempipe, so no page of its own in
# man7) and each built adapter's.
set(_mempipe_man_headers ${PROJECT_SOURCE_DIR}/include/mempipe.h
  ${PROJECT_SOURCE_DIR}/include/mempipe/script.h)
set(_mempipe_man_args -o ${MEMPIPE_MAN_DIR} -t ${_mempipe_man_template}
  ${_mempipe_man_headers})
foreach(_a ${MEMPIPE_ADAPTERS})
  set(_h ${PROJECT_SOURCE_DIR}/include/mempipe/${_a}.h)
  list(APPEND _mempipe_man_headers ${_h})
  list(APPEND _mempipe_man_args -L mempipe_${_a} -P mempipe-${_a} -7 ${_h})
endforeach()

add_executable(mempipe_mangen ${PROJECT_SOURCE_DIR}/tools/mangen.c)
set(_mempipe_man_stamp ${PROJECT_BINARY_DIR}/man.stamp)
# The directory is made anew, so a removed function leaves no stale page.
add_custom_command(OUTPUT ${_mempipe_man_stamp}
  COMMAND ${CMAKE_COMMAND} -E remove_directory ${MEMPIPE_MAN_DIR}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${MEMPIPE_MAN_DIR}
  COMMAND mempipe_mangen ${_mempipe_man_args}
  COMMAND ${CMAKE_COMMAND} -E touch ${_mempipe_man_stamp}
  DEPENDS mempipe_mangen ${_mempipe_man_headers} ${_mempipe_man_template}
  COMMENT "Generating man pages in ${MEMPIPE_MAN_DIR}"
  VERBATIM)
add_custom_target(mempipe_man ALL DEPENDS ${_mempipe_man_stamp})

if(NOT DEFINED MEMPIPE_INSTALL OR MEMPIPE_INSTALL)
  include(GNUInstallDirs)
  install(DIRECTORY ${MEMPIPE_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man3
    FILES_MATCHING PATTERN "*.3")
  install(DIRECTORY ${MEMPIPE_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man7
    FILES_MATCHING PATTERN "*.7")
endif()
