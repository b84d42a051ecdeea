/* SPDX-License-Identifier: MIT */
/*
 * trace: static probes (USDT, <sys/sdt.h>) under the provider `mempipe`.
 *
 * Built in when CMake finds <sys/sdt.h> (option MEMPIPE_USDT, see
 * cmake/usdt.cmake); otherwise every macro here expands to nothing and the
 * arguments are not evaluated. A built-in probe is one NOP in the code plus a
 * note in the ELF file (.note.stapsdt) that tells a tracer (bpftrace, perf,
 * SystemTap) where the NOP is and where each argument lives; nothing runs
 * unless a tracer attaches, which turns the NOP into a breakpoint and
 * increments the probes' semaphore. The read, write and park probes sit only
 * in the slow path of the poll calls (coop.c), which the calls enter when a
 * budget is set or the semaphore is non-zero: untraced, they cost nothing
 * beyond the one branch the budget already needs.
 *
 * The probes and their arguments (arg0, arg1, arg2[, arg3]):
 *
 *   read      end, bytes asked, result   every mempipe_poll_read that passed
 *                                         its argument checks, including the
 *                                         attempts inside mempipe_read
 *   write     end, bytes asked, result   the same for mempipe_poll_write and
 *                                         mempipe_poll_writev (bytes asked is
 *                                         the sum of the slices)
 *   park      end, bytes asked, result, slot
 *                                         a read or write returned -EAGAIN and
 *                                         stored its waker in `slot` (fires
 *                                         after that call's read/write probe)
 *   wake      slot, waker function, waker ctx
 *                                         a stored waker is taken out of
 *                                         `slot` and about to be called; the
 *                                         slot knows no end, so match it
 *                                         with the slot of an earlier park
 *   shutdown  end, 0, result (0)         mempipe_shutdown took effect
 *   close     end, 0, 0                  mempipe_close(end) begins
 *
 * A result is what the call returns: a byte count, 0, or a negative errno.
 * A read or write that yields to the cooperative budget (coop.h) fires its
 * read/write probe with -EAGAIN and no park (its waker was not stored).
 */
#ifndef MEMPIPE_TRACE_H
#define MEMPIPE_TRACE_H

#include "fence.h" /* MEMPIPE__UNLIKELY */

#include <errno.h>

#if defined(MEMPIPE_USDT)
/*
 * With semaphores: a tracer increments a probe's counter while attached.
 * All six probes share one counter (trace.c), which the hot poll calls test
 * together with the budget in their one predicted branch (MEMPIPE__SLOW in
 * coop.h).
 */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

/* Defined in trace.c; the names sdt.h wants are aliases of the first. */
extern volatile unsigned short mempipe__semaphore;
extern volatile unsigned short mempipe_read_semaphore;
extern volatile unsigned short mempipe_write_semaphore;
extern volatile unsigned short mempipe_park_semaphore;
extern volatile unsigned short mempipe_wake_semaphore;
extern volatile unsigned short mempipe_shutdown_semaphore;
extern volatile unsigned short mempipe_close_semaphore;

/* Non-zero while a tracer is attached to any mempipe probe. */
#define MEMPIPE__TRACED() ((unsigned)mempipe__semaphore)

/*
 * sdt.h passes an empty variadic argument inside its own macros, which
 * clang -Wpedantic flags in our code (where the macro expands). The pragmas
 * must sit in the same expansion as STAP_PROBEn, not around an argument
 * (arguments expand before a pragma could take effect).
 */
#if defined(__clang__)
#define MEMPIPE__SDT_PUSH                                                      \
    _Pragma("clang diagnostic push") _Pragma(                                  \
        "clang diagnostic ignored \"-Wgnu-zero-variadic-macro-arguments\"")
#define MEMPIPE__SDT_POP _Pragma("clang diagnostic pop")
#else
#define MEMPIPE__SDT_PUSH
#define MEMPIPE__SDT_POP
#endif
#define MEMPIPE__PROBE3(name, a0, a1, a2)                                      \
    do {                                                                       \
        MEMPIPE__SDT_PUSH STAP_PROBE3(mempipe, name, a0, a1, a2);              \
        MEMPIPE__SDT_POP                                                       \
    } while (0)
#define MEMPIPE__PROBE4(name, a0, a1, a2, a3)                                  \
    do {                                                                       \
        MEMPIPE__SDT_PUSH STAP_PROBE4(mempipe, name, a0, a1, a2, a3);          \
        MEMPIPE__SDT_POP                                                       \
    } while (0)
#else
#define MEMPIPE__TRACED()                     0u
#define MEMPIPE__PROBE3(name, a0, a1, a2)     ((void)0)
#define MEMPIPE__PROBE4(name, a0, a1, a2, a3) ((void)0)
#endif

/*
 * A poll read or write on `end` asked for `len` bytes and got `n`; it used
 * waker `w` and, if it parked, stored it in `slot`. -EAGAIN with a waker
 * means the waker was stored (the pipe returns -EAGAIN with a waker only
 * after storing it). Only used in coop.c's slow path.
 */
#define MEMPIPE__TRACE_IO(op, end, len, n, w, slot)                            \
    do {                                                                       \
        MEMPIPE__PROBE3(op, (end), (len), (n));                                \
        if ((n) == -EAGAIN && (w) != NULL)                                     \
            MEMPIPE__PROBE4(park, (end), (len), (n), (slot));                  \
    } while (0)

#endif
