#!/bin/sh
# SPDX-License-Identifier: MIT
# Makes sure the Debian packages a make target needs are installed.
#   scripts/deps.sh build   cmake, a C compiler, make
#   scripts/deps.sh test    the above + cmocka and pkg-config
#   scripts/deps.sh ci      the above + clang, clang-format, valgrind and the
#                           optional adapters' -dev packages
# CMake arguments may follow the level (scripts/configure.sh passes the
# build's): with -DMEMPIPE_BUILD_TESTS=OFF (the last one counts), `test`
# needs no more than `build`.
# Missing packages are installed with apt-get (as root, or through sudo);
# where that is impossible it says exactly what to run, and fails.
set -eu

need=""
want() { # want PACKAGE CHECK-COMMAND...
    pkg=$1
    shift
    if ! "$@" >/dev/null 2>&1; then
        need="$need $pkg"
    fi
}
have() { command -v "$1"; }
has_pc() { have pkg-config && pkg-config --exists "$1"; }

level=${1:-build}
[ $# -gt 0 ] && shift
tests=ON
for arg in "$@"; do
    case $arg in
    -DMEMPIPE_BUILD_TESTS=* | -DMEMPIPE_BUILD_TESTS:BOOL=*)
        case $(printf '%s' "${arg#*=}" | tr '[:lower:]' '[:upper:]') in
        OFF | 0 | NO | FALSE | N | IGNORE) tests=OFF ;;
        *) tests=ON ;;
        esac
        ;;
    esac
done
[ "$level" = test ] && [ "$tests" = OFF ] && level=build
want cmake have cmake
want make have make
want gcc have cc
if [ "$level" = test ] || [ "$level" = ci ]; then
    want pkg-config have pkg-config
    want libcmocka-dev has_pc cmocka
fi
if [ "$level" = ci ]; then
    want clang have clang
    want clang-format have clang-format
    want valgrind have valgrind
    want curl have curl
    want libclang-rt-14-dev test -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a
    want libuv1-dev has_pc libuv
    want libevent-dev has_pc libevent
    want libnghttp2-dev has_pc libnghttp2
    want libssl-dev has_pc openssl
    want libgnutls28-dev has_pc gnutls
    want libmbedtls-dev test -e /usr/include/mbedtls/ssl.h
    want libglib2.0-dev has_pc gio-2.0
    want systemtap-sdt-dev sh -c 'echo "#include <sys/sdt.h>" | cc -E - >/dev/null'
    want man-db have man
    want groff-base have groff
fi

[ -z "$need" ] && exit 0

echo "mempipe: missing Debian packages:$need" >&2
if [ "$(id -u)" = 0 ]; then
    sudo=""
elif have sudo && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
else
    echo "mempipe: install them with:  sudo apt-get install -y$need" >&2
    exit 1
fi
echo "mempipe: installing them with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh image has no package lists yet: then the first try fails (quietly)
# and the second runs after apt-get update.
# shellcheck disable=SC2086
if ! $sudo apt-get install -y --no-install-recommends $need >/dev/null 2>&1; then
    $sudo apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    $sudo apt-get install -y --no-install-recommends $need >/dev/null || {
        echo "mempipe: apt-get failed; install them with:  sudo apt-get install -y$need" >&2
        exit 1
    }
fi
