#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Valgrind over the test executables of a normal (RelWithDebInfo) build:
#   memcheck  --leak-check=full --error-exitcode=1 on every test executable
#             but the slowest (see SKIP_MEMCHECK);
#   helgrind  on every test executable but the slowest (SKIP_HELGRIND), with
#             races inside the library suppressed, for the reason below.
# Two at a time; each run has a timeout, so a hang under valgrind fails.
#
# Why helgrind's library race reports are suppressed: helgrind (and DRD)
# model happens-before only through pthread calls and client annotations;
# they do not see C11 atomics. The ring publishes bytes with a release store
# of wpos and an acquire load on the reader side (src/ring.c), and the waker
# slot hands its fields over the same way (src/waker.c), so every byte moved
# between threads is reported as a "possible data race" (86 reports on
# rules_waker_test alone, all of them on ring/waker fields; DRD gives the
# same picture). These accesses are proved race-free by ThreadSanitizer,
# which does model C11 atomics (make tsan, make stress-tsan). What helgrind
# still checks here: lock-order inversions, pthread API misuse (the condvar
# parker, mutex misuse) and races in the tests' own code outside any
# mempipe frame. The one exception is zerocopy_test's two threads: with the
# zero-copy windows the test's own code writes into reserved spans and reads
# peeked ones in place, outside any mempipe frame, ordered by the same
# atomics (the commit's publish, the peek's acquire); their races are
# suppressed by those threads' functions, and TSan checks them.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v valgrind >/dev/null || { echo "valgrind missing: sh scripts/deps.sh ci"; exit 1; }
B=${BUILD:-build}-valgrind
JOBS=${JOBS:-2}
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMPIPE_WERROR=ON -DMEMPIPE_BUILD_BENCH=OFF \
    -DMEMPIPE_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$B" -j "$JOBS" >/dev/null

# Too slow under valgrind's serialised threads; each is covered instead by
# the ASan+LSan build (memory errors, leaks: make asan) and TSan (races:
# make tsan, make stress-tsan).
SKIP_MEMCHECK=" stress_test openssl_test "
# gnutls_test and mbedtls_test: 166 s under helgrind, and libp11-kit
# (GnuTLS's) destroys a locked mutex at exit, which is not ours to fix.
# glib_test: GLib's GMutex and its contexts' locks are futexes of its own,
# which helgrind cannot see, so every GSource field GLib hands between
# threads is reported (g_source_is_destroyed(), documented for any thread,
# against GLib's writes under the context lock); TSan covers it (make tsan).
# bridge_test: the bridge's thread and the test's move megabytes through the
# lock-free ring, whose C11 atomics helgrind cannot see (as pingpong_test
# and race_test); TSan covers it (make tsan). memcheck runs it.
# shm_test: its shm ends' notifier threads hand every position and waker
# over through C11 atomics in the shared mapping, from a thread whose stack
# has no mempipe_* frame (the notifier's entry is static), and the test's
# own threads take their results through an eventfd and read the header's
# want word: none of it is a synchronisation helgrind can see; and the
# children it forks run under helgrind too, so each such report also makes
# a child's exit status 1. TSan covers it (make tsan). memcheck runs it
# (its forked children free what they inherit and exit clean).
SKIP_HELGRIND=" stress_test pingpong_test race_test openssl_test fd_test uv_test event_test gnutls_test mbedtls_test glib_test bridge_test shm_test "
# Scaled-down knobs under valgrind (the full runs are in make test).
export MEMPIPE_DIFF_COUNT=300
# glib_test: 64 KiB echoes instead of 16 MiB, 100 rounds of the destroy race.
export MEMPIPE_GLIB_BYTES=65536 MEMPIPE_GLIB_ROUNDS=100
# gnutls_test and mbedtls_test: 1 MiB each way instead of 8 (as under the
# sanitizers; 8 KiB per byte of capacity below 64).
export MEMPIPE_TLS_BYTES=1048576
export MEMPIPE_BRIDGE_BYTES=262144
# rules_create_test's largest shm ring: helgrind shadows every byte of a
# mapping as it is made (a 1 TiB ring took it past 24 GiB and the OOM
# killer); 64 MiB under valgrind, MEMPIPE_SHM_MAX elsewhere.
export MEMPIPE_TEST_SHM_BIG=$((64 << 20))
# closewake_test's random part needs every close kind to happen at least
# once; at valgrind's pace its default 2 s hold a handful of sessions.
export MEMPIPE_CLOSEWAKE_SECONDS=${MEMPIPE_CLOSEWAKE_SECONDS:-30}

log=$(pwd)/$B/valgrind-logs
rm -rf "$log"
mkdir -p "$log"
# mempipe_close() tail-calls its static helpers (end_close, core_free), so
# their frames can stand with no mempipe_* frame above them: listed too.
supp=$log/helgrind.supp
cat >"$supp" <<'EOF'
{
   mempipe-c11-atomics-invisible-to-helgrind
   Helgrind:Race
   ...
   fun:mempipe_*
}
{
   mempipe-c11-atomics-invisible-to-helgrind-static-close-path
   Helgrind:Race
   ...
   fun:end_close
}
{
   mempipe-c11-atomics-invisible-to-helgrind-static-free-path
   Helgrind:Race
   ...
   fun:core_free
}
{
   glibc-reuses-a-cached-thread-stack-helgrind-cannot-order-its-reset
   Helgrind:Race
   ...
   fun:get_cached_stack
}
{
   zero-copy-spans-written-and-read-by-the-test-outside-any-mempipe-frame
   Helgrind:Race
   ...
   fun:zc_reader
}
{
   zero-copy-spans-written-and-read-by-the-test-outside-any-mempipe-frame-w
   Helgrind:Race
   ...
   fun:zc_writer
}
EOF
# Memcheck: a thread still running at exit (the tests' detached watchdog
# threads, which sleep until their deadline) keeps its glibc TLS block; it
# shows as "possibly lost" from pthread_create. Nothing of mempipe's.
msupp=$log/memcheck.supp
cat >"$msupp" <<'EOF'
{
   glibc-tls-of-a-thread-still-running-at-exit
   Memcheck:Leak
   match-leak-kinds: possible
   ...
   fun:_dl_allocate_tls
   ...
   fun:pthread_create*
}
EOF

mapfile -t tests < <(find "$B" -name '*_test' -type f -perm -u+x | sort)
[ "${#tests[@]}" -gt 0 ] || { echo "no test executables in $B"; exit 1; }

jobs_file=$log/jobs
: >"$jobs_file"
for t in "${tests[@]}"; do
    n=$(basename "$t")
    case "$SKIP_MEMCHECK" in *" $n "*) echo "memcheck: skip $n" ;; *)
        echo "memcheck $t" >>"$jobs_file" ;;
    esac
    case "$SKIP_HELGRIND" in *" $n "*) echo "helgrind: skip $n" ;; *)
        echo "helgrind $t" >>"$jobs_file" ;;
    esac
done

run_one() { # run_one TOOL EXECUTABLE
    local tool=$1 t=$2 n out rc start
    n=$(basename "$t")
    out=$log/$tool-$n.log
    start=$(date +%s)
    local args=(--error-exitcode=1 -q)
    if [ "$tool" = memcheck ]; then
        args+=(--leak-check=full --suppressions="$msupp")
    else
        args+=(--tool=helgrind --suppressions="$supp")
    fi
    # The tests' own directory, so tests that open files relative to it work.
    set +e
    (cd "$(dirname "$t")" && timeout 240 valgrind "${args[@]}" "./$n") >"$out" 2>&1
    rc=$?
    set -e
    echo "$tool $n: rc=$rc in $(($(date +%s) - start))s"
    if [ "$rc" != 0 ]; then
        tail -n 60 "$out"
        return 1
    fi
}
export -f run_one
export log supp msupp

start=$(date +%s)
if ! xargs -P "$JOBS" -L 1 bash -c 'run_one "$0" "$1"' <"$jobs_file"; then
    echo "valgrind: FAILED (logs in $log)"
    exit 1
fi
echo "valgrind: $(wc -l <"$jobs_file") runs clean in $(($(date +%s) - start))s"
