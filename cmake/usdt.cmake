# SPDX-License-Identifier: MIT
# USDT static probes (src/trace.h), provider "mempipe": built in where
# <sys/sdt.h> is found (Debian: systemtap-sdt-dev), unless MEMPIPE_USDT=OFF.
# A probe is one NOP until a tracer attaches. MEMPIPE_USDT=1 is defined for
# every target of this tree, so the tests know whether to expect the probes.
include(CheckIncludeFile)
check_include_file(sys/sdt.h MEMPIPE_HAVE_SYS_SDT_H)
if(MEMPIPE_HAVE_SYS_SDT_H)
  set(_mempipe_usdt_default ON)
else()
  set(_mempipe_usdt_default OFF)
endif()
option(MEMPIPE_USDT "Build in USDT static probes (needs <sys/sdt.h>)"
       ${_mempipe_usdt_default})
if(MEMPIPE_USDT)
  if(NOT MEMPIPE_HAVE_SYS_SDT_H)
    message(FATAL_ERROR
      "MEMPIPE_USDT is ON but <sys/sdt.h> was not found.\n"
      "Install it with:  sudo apt-get install -y systemtap-sdt-dev\n"
      "or configure with -DMEMPIPE_USDT=OFF.")
  endif()
  add_compile_definitions(MEMPIPE_USDT=1)
endif()
