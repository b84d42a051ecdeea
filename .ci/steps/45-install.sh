#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs mempipe into a temporary prefix with `cmake --install`, copies
# examples/consumer out of the tree and builds it against that install, as
# a user's project would: through pkg-config (its Makefile) and through
# find_package (its CMakeLists.txt: shared and static targets). For each
# adapter installed, one program that calls the third-party library itself
# and links only the adapter (mempipe::mempipe_<a>, or mempipe-<a>.pc) must
# build and run both ways. Under CI every adapter must have been built.
set -euo pipefail
cd "$(dirname "$0")/../.."
sh scripts/deps.sh test

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake -S . -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release -DMEMPIPE_WERROR=ON -DMEMPIPE_BUILD_TESTS=OFF \
    -DMEMPIPE_BUILD_EXAMPLES=OFF -DMEMPIPE_BUILD_BENCH=OFF >/dev/null
cmake --build "$tmp/build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
# --prefix at install time: the .pc files and the CMake package must work
# wherever the tree lands, not only at the configured prefix.
cmake --install "$tmp/build" --prefix "$prefix" >/dev/null

echo "installed:"
(cd "$prefix" && find . -type f -o -type l | sort | sed 's/^/  /')
pcfile=$(find "$prefix" -name mempipe.pc | head -n 1)
test -n "$pcfile" || { echo "mempipe.pc not installed" >&2; exit 1; }
pc=$(dirname "$pcfile")
libdir=$(dirname "$pc")
test -e "$prefix/include/mempipe.h" || { echo "mempipe.h not installed" >&2; exit 1; }
# The scripted peer's header is the core's, installed with or without adapters.
test -e "$prefix/include/mempipe/script.h" || { echo "mempipe/script.h not installed" >&2; exit 1; }
cmp LICENSE "$prefix/share/doc/mempipe/LICENSE" || { echo "LICENSE not installed in share/doc/mempipe" >&2; exit 1; }
test -e "$libdir/libmempipe.a" || { echo "libmempipe.a not installed" >&2; exit 1; }
# The version comes from the header's macros alone; the SONAME follows the
# 0.x policy (README, install): libmempipe.so.0.MINOR, .MAJOR from 1.0 on.
ver() { awk -v m="MEMPIPE_VERSION_$1" '$1 == "#define" && $2 == m {print $3}' include/mempipe.h; }
major=$(ver MAJOR) minor=$(ver MINOR) patch=$(ver PATCH)
version=$major.$minor.$patch
if [ "$major" = 0 ]; then want_soname=libmempipe.so.0.$minor; else want_soname=libmempipe.so.$major; fi
soname=$(objdump -p "$libdir/libmempipe.so" | awk '/SONAME/ {print $2}')
echo "version $version (include/mempipe.h), SONAME: $soname"
test "$soname" = "$want_soname" || { echo "unexpected SONAME, want $want_soname" >&2; exit 1; }
test -e "$libdir/libmempipe.so.$version" || { echo "libmempipe.so.$version not installed" >&2; exit 1; }
pcver=$(PKG_CONFIG_PATH=$pc pkg-config --modversion mempipe)
test "$pcver" = "$version" || { echo "mempipe.pc says $pcver, the header $version" >&2; exit 1; }

# The consumer as a user has it: a copy, outside this tree.
consumer=$tmp/consumer-src
cp -R examples/consumer "$consumer"
# The adapters, as listed in examples/consumer's CMakeLists.txt and
# Makefile. One without a program there yet is skipped; one with a program
# must have been installed under CI.
all_adapters="openssl gnutls mbedtls uv event nghttp2 glib"
for f in examples/consumer/*.c; do
    a=$(basename "$f" .c)
    case " main hello $all_adapters " in *" $a "*) ;; *)
        echo "examples/consumer/$a.c: $a is not in the adapter lists (here, CMakeLists.txt, Makefile)" >&2
        exit 1
        ;;
    esac
done
adapters=""
for a in $all_adapters; do
    if [ ! -e "examples/consumer/$a.c" ]; then
        echo "adapter $a: no examples/consumer/$a.c yet, skipped"
    elif [ -e "$pc/mempipe-$a.pc" ]; then
        adapters="$adapters $a"
    elif [ -n "${CI:-}" ]; then
        echo "adapter $a was not built (scripts/deps.sh ci installs its library)" >&2
        exit 1
    fi
done
echo "adapters installed:${adapters:- none}"
# An adapter's .pc names its library and its dependency's, which must
# resolve (mbedTLS has no .pc of its own: mempipe-mbedtls.pc lists its
# three libraries itself).
for a in $adapters; do
    libs=$(PKG_CONFIG_PATH=$pc pkg-config --libs "mempipe-$a")
    grep -q -- "-lmempipe_$a" <<<"$libs" || { echo "mempipe-$a.pc: no -lmempipe_$a in: $libs" >&2; exit 1; }
done
if [[ " $adapters " == *" mbedtls "* ]]; then
    libs=$(PKG_CONFIG_PATH=$pc pkg-config --libs mempipe-mbedtls)
    for l in mbedtls mbedx509 mbedcrypto; do
        grep -q -- "-l$l\b" <<<"$libs" || { echo "mempipe-mbedtls.pc: no -l$l in: $libs" >&2; exit 1; }
    done
fi

echo "== consumer through pkg-config"
PKG_CONFIG_PATH=$pc make -s -C "$consumer" OUT="$tmp"
LD_LIBRARY_PATH=$libdir "$tmp/consumer-pc"
# It must really use the installed shared library.
# (ldd's output is kept first: grep -q exiting early under pipefail would
# fail the pipe with SIGPIPE.)
deps=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/consumer-pc")
grep -q "$libdir/$want_soname" <<<"$deps"
for a in $adapters; do
    echo "mempipe-$a.pc: $(PKG_CONFIG_PATH=$pc pkg-config --libs "mempipe-$a")"
    LD_LIBRARY_PATH=$libdir "$tmp/consumer-pc-$a"
done

echo "== consumer through find_package(mempipe)"
# REQUIRED COMPONENTS: every adapter installed (and OPTIONAL_COMPONENTS all).
required=$(echo $adapters | tr ' ' ';')
cmake -S "$consumer" -B "$tmp/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DMEMPIPE_REQUIRE_COMPONENTS="$required" >/dev/null
cmake --build "$tmp/consumer-build" >/dev/null
"$tmp/consumer-build/consumer"        # the installed .so, found by RPATH
"$tmp/consumer-build/consumer_static" # libmempipe.a linked in
deps=$(ldd "$tmp/consumer-build/consumer_static")
if grep -q libmempipe <<<"$deps"; then
    echo "consumer_static links libmempipe dynamically" >&2
    exit 1
fi
for a in $adapters; do
    "$tmp/consumer-build/consumer_$a" # find_package(mempipe COMPONENTS $a)
done
# A component that was not installed fails a REQUIRED find_package.
if cmake -S "$consumer" -B "$tmp/consumer-nosuch" -DCMAKE_PREFIX_PATH="$prefix" \
    -DMEMPIPE_REQUIRE_COMPONENTS=nosuch >"$tmp/nosuch.log" 2>&1; then
    echo "find_package(mempipe REQUIRED COMPONENTS nosuch) succeeded" >&2
    exit 1
fi
grep -q "nosuch" "$tmp/nosuch.log" || { cat "$tmp/nosuch.log"; exit 1; }
# A component whose library is missing on the consumer's machine is not
# found: here mbedTLS's header, its folder (as the consumer above found it)
# hidden from find_path.
if [[ " $adapters " == *" mbedtls "* ]]; then
    inc=$(sed -n 's/^mempipe_mbedtls_INCLUDE_DIR:[A-Z]*=//p' "$tmp/consumer-build/CMakeCache.txt")
    test -e "$inc/mbedtls/ssl.h" || { echo "the consumer found mbedtls/ssl.h in '$inc'?" >&2; exit 1; }
    if cmake -S "$consumer" -B "$tmp/consumer-nombed" -DCMAKE_PREFIX_PATH="$prefix" \
        -DMEMPIPE_REQUIRE_COMPONENTS=mbedtls -DCMAKE_IGNORE_PATH="$inc" >"$tmp/nombed.log" 2>&1; then
        echo "find_package(mempipe REQUIRED COMPONENTS mbedtls) succeeded without mbedtls/ssl.h" >&2
        exit 1
    fi
    grep -q "component mbedtls needs mbedtls/ssl.h" "$tmp/nombed.log" || { cat "$tmp/nombed.log"; exit 1; }
fi

echo "== a static-only install (-DMEMPIPE_BUILD_SHARED=OFF)"
# mempipe::mempipe is then the static library, and the adapters are static
# too, their third-party libraries still carried by their targets.
cmake -S . -B "$tmp/build-static" -DMEMPIPE_BUILD_SHARED=OFF -DMEMPIPE_WERROR=ON \
    -DMEMPIPE_BUILD_TESTS=OFF -DMEMPIPE_BUILD_EXAMPLES=OFF -DMEMPIPE_BUILD_BENCH=OFF >/dev/null
cmake --build "$tmp/build-static" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
cmake --install "$tmp/build-static" --prefix "$tmp/prefix-static" >/dev/null
if find "$tmp/prefix-static" -name 'libmempipe*.so*' | grep -q .; then
    echo "a shared library was installed" >&2
    exit 1
fi
cmake -S "$consumer" -B "$tmp/consumer-static" -DCMAKE_PREFIX_PATH="$tmp/prefix-static" \
    -DMEMPIPE_REQUIRE_COMPONENTS="$required" >/dev/null
cmake --build "$tmp/consumer-static" >/dev/null
for x in consumer consumer_static ${adapters:+$(printf ' consumer_%s' $adapters)}; do
    "$tmp/consumer-static/$x"
done
echo "install OK"
