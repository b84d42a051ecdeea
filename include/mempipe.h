/* SPDX-License-Identifier: MIT */
/*
 * mempipe — in-memory byte pipes that behave like sockets.
 *
 * A *duplex* is a connected pair of ends, like the two fds of
 * socketpair(AF_UNIX, SOCK_STREAM). A *simplex* is one direction: a reader
 * end and a writer end. A *loopback* is one end that reads what it wrote.
 * Every pipe is bounded (backpressure), has socket-like close and EOF rules,
 * and can be driven three ways, freely mixed on one pipe:
 *
 *   - poll calls (never block; store a waker and return -EAGAIN),
 *   - blocking calls (park the calling thread),
 *   - a pollable file descriptor (see mempipe_readable_fd()).
 *
 * Conventions, for every function below unless it says otherwise:
 *
 *   Return values: >= 0 is success (a byte count where one makes sense; for
 *   reads 0 means end of file), < 0 is a negative errno value (-EAGAIN,
 *   -EPIPE, -EINVAL, -EBADF, -ENOMEM, ...). errno is never set as a channel
 *   and no call raises a signal (no SIGPIPE, ever).
 *
 *   Threads: at any moment each end may have at most one thread reading it
 *   and at most one thread writing it; reader and writer may be different
 *   threads, and different ends are independent. mempipe_shutdown() and the
 *   state queries may be called from any thread at any time while the end is
 *   open. mempipe_close() may be called from any thread once no other call on
 *   that same end is in progress.
 *
 *   Threads and cancellation: no call is a cancellation point. A thread
 *   cancelled (pthread_cancel) while it sleeps in mempipe_read() or
 *   mempipe_write() sleeps on until the call can complete, completes it (no
 *   byte lost, no write half accepted, no lock left held) and acts on the
 *   cancellation at its next cancellation point after the call returns. To
 *   stop a blocked thread, wake it: see mempipe_read() and mempipe_write().
 *   Asynchronous cancellation (PTHREAD_CANCEL_ASYNCHRONOUS) is not
 *   supported inside any call.
 *
 *   Signals: a signal handler may run while a thread is blocked in a call;
 *   the call goes on (it never fails with EINTR, whatever SA_RESTART says)
 *   and loses no byte. No call may be made from a signal handler.
 *
 *   fork(): an end inherited across fork() may only be closed in the child
 *   (SPEC R34). That close frees the child's copy and touches nothing the
 *   parent shares: it wakes no waker, reads, writes or locks nothing of the
 *   parent's (its pollable fds' kernel objects included), and only closes
 *   the child's own copies of the end's fds. Any other call on an inherited
 *   end in the child is undefined. Pipes made in the child work normally,
 *   blocking calls included. The parent is unaffected either way.
 *
 *   Buffers: the library never keeps a pointer to a caller's buffer after the
 *   call returns. Written bytes are copied in; read bytes are copied out.
 *
 *   Wakers: a waker is copied, so the struct passed in need not outlive the
 *   call; its ctx belongs to the caller and is never freed by the library.
 *   A stored waker may run on another thread after the call that stored it
 *   returned, after that call's retry succeeded, and after the thread that
 *   stored it has exited: its ctx must stay valid until the waker has been
 *   called and has returned, or until mempipe_close() of the end that
 *   stored it has returned. (Registering a replacement stops later calls of
 *   the old waker, but one already begun on another thread may still be
 *   running.)
 *   A stored waker is called at most once, on whichever thread made progress
 *   possible (the peer's writer, reader, shutdown or close), outside every
 *   internal lock, and it may call back into the library on either end.
 *   It may close any end of the pipe: the one it was registered through,
 *   the one whose call is running it, or the last one. The pipe's memory is
 *   freed only after the outermost library call that ran the waker has
 *   returned (R32), and that call returns as it would after the close.
 *   Registering a new waker for the same direction replaces the old one,
 *   which is then never called. Once mempipe_close(end) has returned, no
 *   waker registered through that end is running or will ever run.
 *
 * The full behaviour contract is SPEC.md (rules R1..R31); README.md has a
 * table of what each call returns in each state.
 */
#ifndef MEMPIPE_H
#define MEMPIPE_H

#include <stddef.h>
#include <stdint.h>    /* uint64_t */
#include <sys/types.h> /* ssize_t */
#include <sys/uio.h>   /* struct iovec */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MEMPIPE_STATIC)
#define MEMPIPE_EXTERN
#elif defined(_WIN32)
#if defined(MEMPIPE_BUILDING)
#define MEMPIPE_EXTERN __declspec(dllexport)
#else
#define MEMPIPE_EXTERN __declspec(dllimport)
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define MEMPIPE_EXTERN __attribute__((visibility("default")))
#else
#define MEMPIPE_EXTERN
#endif

/* The version: these three lines are its only source (CMake reads them). */
#define MEMPIPE_VERSION_MAJOR 0
#define MEMPIPE_VERSION_MINOR 1
#define MEMPIPE_VERSION_PATCH 0
/* The version as one number, 0xMMmmpp: compare with < and >. */
#define MEMPIPE_VERSION_HEX                                                    \
    ((MEMPIPE_VERSION_MAJOR << 16) | (MEMPIPE_VERSION_MINOR << 8) |            \
     MEMPIPE_VERSION_PATCH)

/*
 * Returns the version of the library linked (which may differ from the
 * header's macros) as "MAJOR.MINOR.PATCH", a static string. Any thread.
 */
MEMPIPE_EXTERN const char *mempipe_version(void);

/*
 * Returns the version of the library linked as MEMPIPE_VERSION_HEX computes
 * it, (MAJOR << 16) | (MINOR << 8) | PATCH. Any thread.
 */
MEMPIPE_EXTERN unsigned mempipe_version_number(void);

/* One end of a pipe. Opaque; made by the creation calls, freed by close. */
typedef struct mempipe mempipe;

/*
 * A waker: wake(ctx) is called once progress may be possible for the call
 * that stored it (bytes to read, space to write, EOF or an error). It is
 * called on the thread that made the progress, possibly while that thread is
 * inside a mempipe call on the other end; it may re-enter the library.
 * Spurious calls are possible (for example after the stored waker's call
 * already succeeded by a later retry): treat a wake as "poll again".
 * wake must not be NULL: every call that takes a waker returns -EINVAL for
 * one whose wake is NULL, and stores nothing. A waker must return normally
 * (not longjmp out of the call that runs it, nor end its thread).
 */
typedef struct mempipe_waker {
    void (*wake)(void *ctx);
    void *ctx;
} mempipe_waker;

/* ----------------------------------------------------------------------- */
/* Creation and close                                                       */
/* ----------------------------------------------------------------------- */

/*
 * Makes a connected pair of ends: what *a writes, *b reads, and the other way
 * round. Each direction holds at most max_buf_size unread bytes. Memory is
 * allocated as bytes are buffered, not up front, so max_buf_size may be as
 * large as SIZE_MAX ("unbounded"), and given back as they are read: once a
 * burst has drained, each direction keeps at most two segments of up to
 * 64 KiB (so up to 128 KiB, plus a few words each) until the pipe is freed.
 *
 * Returns 0 and sets *a and *b; the caller owns both ends and releases each
 * with mempipe_close().
 * Errors: -EINVAL if max_buf_size is 0 or a or b is NULL (or a == b);
 *         -ENOMEM if memory is short.
 * On error nothing is allocated and *a, *b are left untouched.
 * Any thread.
 */
MEMPIPE_EXTERN int mempipe_duplex(size_t max_buf_size, mempipe **a,
                                  mempipe **b);

/*
 * Makes one direction: what *writer writes, *reader reads. The writer end
 * cannot read (-EBADF) and the reader end cannot write (-EBADF).
 * Returns and errors as mempipe_duplex(). Any thread.
 */
MEMPIPE_EXTERN int mempipe_simplex(size_t max_buf_size, mempipe **reader,
                                   mempipe **writer);

/*
 * Makes one end that reads what it wrote (one pipe, both roles): tokio's
 * SimplexStream::new_unsplit. mempipe_shutdown() on it write-closes the pipe
 * so that reads return EOF once drained.
 * Returns and errors as mempipe_duplex() (-EINVAL for a NULL end pointer).
 * Any thread.
 */
MEMPIPE_EXTERN int mempipe_loopback(size_t max_buf_size, mempipe **end);

/*
 * Closes an end and releases the caller's handle; the last close of a pipe
 * frees all its memory.
 *
 * Duplex end: write-closes the pipe it writes (the peer drains the buffered
 * bytes, then reads EOF; a parked peer reader is woken) and read-closes the
 * pipe it reads (the peer's writes fail with -EPIPE at once; a parked peer
 * writer is woken). Simplex writer: as mempipe_shutdown(), then release.
 * Simplex reader: read-closes the pipe (the writer gets -EPIPE). Bytes this
 * end never read are discarded.
 *
 * Wakers this end registered are dropped: once close returns, none of them is
 * running or will run (if one is running on another thread, close waits for
 * it to return; a waker may close the very end it was registered through,
 * or any other end of the pipe: see R32 above, under Wakers).
 * NULL is a no-op. Any thread, once no other call on this end is in progress.
 * The end must not be used again.
 */
MEMPIPE_EXTERN void mempipe_close(mempipe *end);

/*
 * Closes an end as mempipe_close() does, with an error for the peer instead
 * of end of file (.NET Pipelines' Complete(exception)): the peer reads the
 * bytes already buffered for it, then gets err on every read instead of 0;
 * its writes get err instead of -EPIPE (unless it shut down its own writing
 * side first, which stays -EPIPE). Parked peers are woken (wakers, blocking
 * calls, pollable fds), as by a close. A simplex writer's reader gets err
 * after the bytes; a simplex reader's writer gets err on every write.
 * If the pipe was already shut down (EOF sent), the reader keeps EOF: the
 * first close decides (R5).
 *
 * Returns 0; the end is released and must not be used again.
 * Errors: -EINVAL if end is NULL, or err is not a negative errno value
 *         (err >= 0, err < -4095) or is -EAGAIN; then nothing is closed and
 *         the end stays the caller's.
 * Threads, wakers and R32 as mempipe_close().
 */
MEMPIPE_EXTERN int mempipe_close_with_error(mempipe *end, int err);

/*
 * Closes an end as a TCP reset does (SO_LINGER {1, 0}, then close): the
 * bytes buffered in both directions are discarded — mempipe_readable() of
 * the peer is 0 at once — and the peer's next read and write return
 * -ECONNRESET at once, and so does every later read (never a silent EOF),
 * also if this end had shut down or closed with an error before in that
 * direction. The peer's parked calls are woken. The discarded bytes the
 * peer would have read are freed by its next read or its close.
 * NULL is a no-op. Threads, wakers and R32 as mempipe_close().
 */
MEMPIPE_EXTERN void mempipe_abort(mempipe *end);

/*
 * Chooses what closing this end does when bytes it never read are still
 * buffered for it: with on != 0, mempipe_close() (and close_with_error)
 * then acts as mempipe_abort() — the peer gets -ECONNRESET, as the kernel's
 * TCP and AF_UNIX sockets report such a close — instead of the default
 * (on == 0, SPEC R9: the unread bytes are discarded silently and the peer
 * reads EOF). Checked at close time; may be set and cleared at any time.
 * Returns 0. Errors: -EINVAL for a NULL end; -EBADF for a simplex writer
 * end (it never reads). Any thread while the end is open.
 */
MEMPIPE_EXTERN int mempipe_set_rst_on_unread(mempipe *end, int on);

/* ----------------------------------------------------------------------- */
/* Poll API: never blocks                                                   */
/* ----------------------------------------------------------------------- */

/*
 * Reads up to len buffered bytes into buf (the caller's; written only during
 * the call). Never waits to fill len.
 *
 * Returns the count read (> 0); 0 at end of file (the peer shut down or
 * closed and every byte before that has been read; then on every later call)
 * or when len is 0 (R8: nothing stored, nothing woken).
 * Errors: -EAGAIN if nothing is buffered and the writer is still open; if
 *         waker is non-NULL it is stored and called once data, EOF or an
 *         error arrives (by the writer's thread). With a NULL waker nothing
 *         is stored.
 *         -EINVAL if end is NULL, buf is NULL and len > 0, or waker is
 *         non-NULL with a NULL wake (also when nothing would be stored).
 *         -EBADF if end is a simplex writer end.
 * A read that took at least one byte wakes the peer's parked writer.
 * Thread: the one thread currently reading this end.
 */
MEMPIPE_EXTERN ssize_t mempipe_poll_read(mempipe *end, void *buf, size_t len,
                                         const mempipe_waker *waker);

/*
 * Writes up to len bytes from buf (the caller's; only read during the call),
 * as many as fit: min(len, free space). Short writes are normal.
 *
 * Returns the count accepted (> 0), or 0 when len is 0 on an open pipe.
 * A short count because the pipe filled part-way through leaves a non-NULL
 * waker stored, as -EAGAIN would (SPEC R54): it is called once space frees
 * or the pipe closes, so a caller that waits after a short write (as
 * GnuTLS's vectored push does) is woken, as edge-triggered epoll would
 * report a socket's next free space. A write that fits whole stores
 * nothing. (A short count for want of memory, or one cut by an injected
 * fault's cap, stores nothing.)
 * Errors: -EPIPE if this end shut down or closed its writing side, or the
 *         reader is gone, checked first even with free space; never a signal.
 *         -EAGAIN if the pipe is full; a non-NULL waker is stored and called
 *         once space frees or the pipe closes (by the reader's thread).
 *         -ENOMEM if no byte could be placed because memory for a segment
 *         could not be allocated (through the allocator hook); nothing is
 *         stored or woken, and the pipe stays open and unchanged. If some
 *         bytes were placed before an allocation failed, the call returns
 *         that short count instead (the pipe still open), and the next call
 *         returns -ENOMEM while memory stays short.
 *         -EINVAL if end is NULL, buf is NULL and len > 0, or waker is
 *         non-NULL with a NULL wake (also when nothing would be stored).
 *         -EBADF if end is a simplex reader end.
 * A write that accepted at least one byte wakes the peer's parked reader.
 * Thread: the one thread currently writing this end.
 */
MEMPIPE_EXTERN ssize_t mempipe_poll_write(mempipe *end, const void *buf,
                                          size_t len,
                                          const mempipe_waker *waker);

/*
 * Gathers iovcnt slices, exactly as one mempipe_poll_write() of their
 * concatenation cut to the free space. Empty slices anywhere are harmless;
 * iovcnt == 0 or all slices empty behaves as len == 0.
 * Returns and errors as mempipe_poll_write() (-ENOMEM included), plus
 * -EINVAL if iov is NULL
 * with iovcnt > 0, iovcnt is negative or above IOV_MAX, a slice with
 * iov_len > 0 has a NULL base, or the lengths sum past SSIZE_MAX.
 * The slices and their bytes are the caller's; read only during the call.
 * Thread: the one thread currently writing this end.
 */
MEMPIPE_EXTERN ssize_t mempipe_poll_writev(mempipe *end,
                                           const struct iovec *iov, int iovcnt,
                                           const mempipe_waker *waker);

/*
 * Scatters: reads up to the slices' total into them in order, exactly as
 * one mempipe_poll_read() into their concatenation. Empty slices anywhere
 * are harmless; iovcnt == 0 or all slices empty behaves as len == 0 (R8).
 * Returns and errors as mempipe_poll_read(), plus -EINVAL for the slices
 * as mempipe_poll_writev() checks them. The slices are the caller's, their
 * bytes written only during the call. SPEC R52.
 * Thread: the one thread currently reading this end.
 */
MEMPIPE_EXTERN ssize_t mempipe_poll_readv(mempipe *end, const struct iovec *iov,
                                          int iovcnt,
                                          const mempipe_waker *waker);

/*
 * Readiness without moving a byte (SPEC R55): returns 1 if a read on end
 * would not wait now — bytes are buffered, or end of file, or an error is
 * pending, or this end shut its reading side — else stores a non-NULL
 * waker exactly as a pending mempipe_poll_read() would (called once, by
 * the thread whose write, shutdown or close changes that) and returns
 * -EAGAIN. A 1 stores nothing. For GnuTLS's pull_timeout, GSource's
 * prepare/check, and every "wait until readable" loop that must not take
 * the bytes yet.
 * Errors: -EINVAL for a NULL end or a waker with a NULL wake; -EBADF for a
 *         simplex writer end.
 * Thread: the one thread currently reading this end (the waker shares the
 * reading direction's one slot with poll_read: the last stored wins).
 */
MEMPIPE_EXTERN int mempipe_poll_readable(mempipe *end,
                                         const mempipe_waker *waker);

/*
 * The same for writing (SPEC R55): 1 if a write on end would not wait —
 * space is free, or the pipe is closed either way so a write fails at once
 * (-EPIPE or the peer's error) — else stores a non-NULL waker as a pending
 * mempipe_poll_write() would and returns -EAGAIN.
 * Errors: -EINVAL as above; -EBADF for a simplex reader end.
 * Thread: the one thread currently writing this end.
 */
MEMPIPE_EXTERN int mempipe_poll_writable(mempipe *end,
                                         const mempipe_waker *waker);

/*
 * Flushes: there is never anything to flush, so it returns 0 at once and
 * stores no waker. -EINVAL for a NULL end or a waker with a NULL wake.
 * Any thread.
 */
MEMPIPE_EXTERN int mempipe_poll_flush(mempipe *end, const mempipe_waker *waker);

/*
 * Half-closes: write-closes the pipe this end writes. The peer reads the
 * buffered bytes, then EOF; its parked reader is woken, and so is a writer
 * parked on the same pipe (its next call returns -EPIPE). This end's later
 * writes return -EPIPE; its reading direction stays open. Completes at once
 * (returns 0; the waker is never stored) and is idempotent, also after the
 * peer is gone.
 * Errors: -EINVAL for a NULL end or a waker with a NULL wake; -EBADF for a
 * simplex reader end.
 * Any thread (it may interrupt a writer blocked on another thread).
 */
MEMPIPE_EXTERN int mempipe_poll_shutdown(mempipe *end,
                                         const mempipe_waker *waker);

/* ----------------------------------------------------------------------- */
/* Zero-copy windows and low-water marks                                    */
/* ----------------------------------------------------------------------- */

/*
 * Reserves free space to write into in place (.NET Pipelines' GetMemory,
 * Mojo's two-phase write): fills iov[0] (and iov[1] when the space lies at
 * a segment boundary) with spans of free space, together at least 1 and at
 * most want bytes, in stream order. Write bytes into them, then
 * mempipe_write_commit() publishes a prefix of them. The spans are the
 * library's memory, valid for writing only until the commit or the end's
 * close; the reader runs meanwhile, unaffected.
 * Returns 1 or 2, the number of spans.
 * Errors: -EAGAIN if the pipe is full: a non-NULL waker is stored exactly
 *         as by a pending mempipe_poll_write() (called once when space
 *         frees, honouring the write mark, or the pipe closes);
 *         -EPIPE (or the peer's close error) as mempipe_poll_write();
 *         -ENOMEM if a segment could not be allocated;
 *         -EINVAL if end or iov is NULL, want is 0, the waker's wake is
 *         NULL, or a reservation is already open (commit it first);
 *         -EBADF for a simplex reader end. A failed call reserves nothing.
 * While a reservation is open, copy writes (mempipe_poll_write(), ...) on
 * this end return -EBUSY. Budget, faults (a cap limits the span total),
 * statistics and taps apply as to a write. SPEC R62, R66.
 * Thread: the one thread currently writing this end.
 */
MEMPIPE_EXTERN int mempipe_write_reserve(mempipe *end, size_t want,
                                         struct iovec iov[2],
                                         const mempipe_waker *waker);

/*
 * Publishes the first n bytes of the open reservation (0 <= n <= the
 * reserved total; 0 publishes nothing) and ends it; a later reserve starts
 * after them. Wakes the peer's parked reader, as a write does.
 * Returns 0.
 * Errors: -EINVAL for a NULL end, no reservation open, or n above the
 *         reserved total (the reservation stays open, nothing changes);
 *         -EPIPE (or the peer's close error) if the pipe closed since the
 *         reserve: nothing is published and the reservation is over;
 *         -EBADF for a simplex reader end. SPEC R62, R66.
 * Thread: the one thread currently writing this end.
 */
MEMPIPE_EXTERN int mempipe_write_commit(mempipe *end, size_t n);

/*
 * Shows the buffered bytes in place (Pipelines' ReadAsync, Mojo's
 * two-phase read): fills iov[0] (and iov[1] at a segment boundary) with
 * spans of the oldest buffered bytes, in order, without taking them. Read
 * them in place, then mempipe_read_consume() releases a prefix. The spans
 * are the library's memory, valid for reading until the consume or the
 * end's close; the writer runs meanwhile (it appends after them). Peeking
 * again before consuming returns a view that may have grown.
 * Returns 1 or 2, the number of spans; 0 at end of file (or the writer's
 * close error, as mempipe_poll_read(): R37, R38).
 * Errors: -EAGAIN if nothing is buffered — or nothing new since the bytes
 *         mempipe_read_consume_examined() declared examined — and the
 *         writer is open: a non-NULL waker is stored as by a pending read
 *         (called once new bytes arrive, honouring the read mark, or EOF);
 *         -EINVAL if end or iov is NULL or the waker's wake is NULL;
 *         -EBADF for a simplex writer end.
 * While a peek is open, copy reads on this end return -EBUSY. Budget,
 * faults (a cap limits the bytes shown), statistics and taps apply as to
 * a read. SPEC R63, R64, R66.
 * Thread: the one thread currently reading this end.
 */
MEMPIPE_EXTERN int mempipe_read_peek(mempipe *end, struct iovec iov[2],
                                     const mempipe_waker *waker);

/*
 * Releases the first n of the bytes the open peek showed (0 <= n <= shown;
 * 0 releases nothing) and ends the peek; their space goes back to the
 * writer, whose parked call is woken as after a read.
 * Returns 0.
 * Errors: -EINVAL for a NULL end, no peek open, or n above the bytes shown
 *         (the peek stays open, nothing changes); -EBADF for a simplex
 *         writer end. SPEC R63, R66.
 * Thread: the one thread currently reading this end.
 */
MEMPIPE_EXTERN int mempipe_read_consume(mempipe *end, size_t n);

/*
 * mempipe_read_consume() that also says how far the reader looked
 * (Pipelines' AdvanceTo(consumed, examined)): releases consumed bytes and
 * declares the first examined of the bytes shown (consumed <= examined <=
 * shown) looked at. The next mempipe_read_peek() then waits (-EAGAIN, its
 * waker stored) until a byte arrives past the examined ones — the pattern
 * of an incremental parser that needs more input, without busy loops —
 * unless the writer has shut down, when it shows what is left. Leave the
 * writer room: a reader that examined every byte of a pipe too full for the
 * writer's next write (or its write mark) waits for bytes that cannot come,
 * as with Pipelines' pause threshold.
 * Returns 0. Errors: -EINVAL for a NULL end, no peek open, or the counts
 * out of order (nothing changes); -EBADF for a simplex writer end.
 * SPEC R64. Thread: the one thread currently reading this end.
 */
MEMPIPE_EXTERN int mempipe_read_consume_examined(mempipe *end, size_t consumed,
                                                 size_t examined);

/*
 * The read low-water mark (SO_RCVLOWAT): this end's stored read wakers
 * (poll_read, poll_readv, read_peek, poll_readable) are called only once
 * at least min(n, the call's len) bytes are buffered, or at EOF or an
 * error; mempipe_poll_readable(), mempipe_wait_readable(), the blocking
 * reads and the pollable fds report "readable" only from n bytes (or EOF,
 * an error, a shutdown). A direct poll call is not held back: a
 * mempipe_poll_read() below the mark returns the bytes there are, as a
 * non-blocking socket's recv does. Default 1. Takes effect at once, also
 * for a waker already stored.
 * Returns 0. Errors: -EINVAL for a NULL end, n 0, n above the capacity of
 * the pipe this end reads or above UINT32_MAX (nothing changes); -EBADF
 * for a simplex writer end. SPEC R65.
 * Thread: the one thread currently reading this end.
 */
MEMPIPE_EXTERN int mempipe_set_read_lowat(mempipe *end, size_t n);

/*
 * The write low-water mark (backpressure hysteresis: Pipelines'
 * resume threshold, Netty's low water mark): this end's parked writer is
 * woken only once at least n bytes are free (whatever its call has left:
 * that is the hysteresis), or on a close; mempipe_poll_writable(),
 * mempipe_wait_writable() and the pollable fds report "writable" only from
 * n free bytes (or a close). A direct write is not held back. With n =
 * capacity / 2 a bulk writer wakes once per half pipe instead of once per
 * read. Default 1.
 * Returns 0. Errors: -EINVAL for a NULL end, n 0, above the capacity or
 * above UINT32_MAX; -EBADF for a simplex reader end. SPEC R65.
 * Thread: the one thread currently writing this end.
 */
MEMPIPE_EXTERN int mempipe_set_write_lowat(mempipe *end, size_t n);

/* ----------------------------------------------------------------------- */
/* Blocking API: for threads                                                */
/* ----------------------------------------------------------------------- */

/*
 * Blocks until at least one byte is buffered, then reads up to len bytes
 * into buf (the caller's; written only during the call).
 * Returns the count (> 0), 0 at EOF or when len is 0.
 * Errors: -EINVAL, -EBADF as mempipe_poll_read(). Never -EAGAIN; signals
 *         do not interrupt it (no EINTR, SPEC R35).
 * Thread: the one thread currently reading this end; it sleeps (futex or
 * condition variable) and is woken by the peer's write, shutdown or close.
 * Not a cancellation point (SPEC R33): pthread_cancel() of the sleeping
 * thread takes effect only after the call returned, with its bytes. To stop
 * a blocked reader, make the call return: the peer's mempipe_shutdown() or
 * mempipe_close() gives it EOF (0), from any thread.
 */
MEMPIPE_EXTERN ssize_t mempipe_read(mempipe *end, void *buf, size_t len);

/*
 * Blocks until all len bytes from buf (the caller's; only read during the
 * call) are accepted; returns len. A short count (0 < count < len) means
 * the call stopped part-way for one of two reasons, which the next call
 * tells apart: the pipe closed (the next write returns -EPIPE), or memory
 * ran out (the pipe is still open; the next write returns -ENOMEM while
 * memory stays short, and goes on once it is back). SPEC R28, R36.
 * Errors: -EINVAL, -EBADF as mempipe_poll_write(); -EPIPE if the pipe is
 *         closed before any byte was accepted; -ENOMEM if no byte could be
 *         accepted for want of memory (it does not wait for memory). Never
 *         -EAGAIN; signals do not interrupt it (no EINTR, SPEC R35).
 * Thread: the one thread currently writing this end; it sleeps and is woken
 * by the peer's read, shutdown or close, or this end's shutdown.
 * Not a cancellation point (SPEC R33): pthread_cancel() of the sleeping
 * thread takes effect only after the call returned. To stop a blocked
 * writer, make the call return: mempipe_shutdown() of this end, from any
 * thread, or the peer's mempipe_close(), interrupts it (the count accepted,
 * or -EPIPE).
 */
MEMPIPE_EXTERN ssize_t mempipe_write(mempipe *end, const void *buf, size_t len);

/* mempipe_poll_shutdown(end, NULL): it never blocks. Same returns. */
MEMPIPE_EXTERN int mempipe_shutdown(mempipe *end);

/*
 * mempipe_read() with a limit (SO_RCVTIMEO, done better): waits at most
 * timeout_ms milliseconds, measured on CLOCK_MONOTONIC from the call's
 * start (signals neither cut nor stretch it). timeout_ms < 0 waits as
 * long as it takes (mempipe_read() itself); 0 tries once.
 * Returns the count (> 0), 0 at EOF or when len is 0.
 * Errors: -ETIMEDOUT if nothing was buffered and no EOF or error came in
 *         time (also for 0: never -EAGAIN); the waker it parked with is
 *         withdrawn, and bytes that arrive later wait for the next read.
 *         -EINVAL, -EBADF as mempipe_poll_read(). SPEC R51.
 * Thread and wake-ups as mempipe_read(); futex and condvar builds alike.
 */
MEMPIPE_EXTERN ssize_t mempipe_read_timeout(mempipe *end, void *buf, size_t len,
                                            int timeout_ms);

/*
 * mempipe_write() with a limit: waits at most timeout_ms milliseconds
 * (as mempipe_read_timeout()) for all len bytes to be accepted.
 * Returns len, or the count accepted when the time ran out part-way (the
 * rest is not written: the caller still has it) or the pipe closed
 * part-way (R28).
 * Errors: -ETIMEDOUT if no byte was accepted in time (also for 0);
 *         otherwise as mempipe_write(). SPEC R51.
 * Thread and wake-ups as mempipe_write().
 */
MEMPIPE_EXTERN ssize_t mempipe_write_timeout(mempipe *end, const void *buf,
                                             size_t len, int timeout_ms);

/*
 * mempipe_read() into slices (readv(2)): blocks until at least one byte is
 * buffered (or EOF, or an error), then fills the slices in order as
 * mempipe_poll_readv() does. Returns and errors as mempipe_read(), plus
 * -EINVAL for the slices as mempipe_poll_writev() checks them. SPEC R52.
 */
MEMPIPE_EXTERN ssize_t mempipe_readv(mempipe *end, const struct iovec *iov,
                                     int iovcnt);

/*
 * mempipe_write() from slices (writev(2)): blocks until every byte of
 * every slice is accepted, in order. Returns and errors as mempipe_write()
 * (the total, or a short count when the pipe closed or memory ran out
 * part-way), plus -EINVAL for the slices. SPEC R52.
 */
MEMPIPE_EXTERN ssize_t mempipe_writev(mempipe *end, const struct iovec *iov,
                                      int iovcnt);

/*
 * Reads exactly len bytes (MSG_WAITALL): blocks until len bytes have been
 * read into buf, end of file, or an error.
 * Returns the count moved: len, or fewer at EOF or an error part-way (the
 * next call then returns 0, or the error); 0 at EOF before any byte, or
 * when len is 0.
 * Errors: an error before any byte (-ECONNRESET after the peer's abort,
 *         the peer's close_with_error error); -EINVAL, -EBADF as
 *         mempipe_read(). Never -EAGAIN, never EINTR. SPEC R53.
 * Thread and wake-ups as mempipe_read().
 */
MEMPIPE_EXTERN ssize_t mempipe_read_full(mempipe *end, void *buf, size_t len);

/*
 * Read-side shutdown (shutdown(fd, SHUT_RD)): this end reads no more. The
 * bytes buffered for it and every byte its peer tries to write after are
 * discarded: mempipe_readable() is 0 at once, this end's reads (a parked
 * one included, from any thread) return 0 (EOF) from now on, and the
 * peer's writes fail with -EPIPE, its parked writer woken. For a pump or
 * proxy whose consumer left while another thread still writes. Unlike
 * Linux, which still returns the bytes buffered before SHUT_RD, the
 * buffered bytes are dropped too (their memory is freed by this end's next
 * read or its close). This end's writing direction stays open.
 * Returns 0; idempotent. Errors: -EINVAL for a NULL end; -EBADF for a
 * simplex writer end. SPEC R56.
 * Any thread (it may interrupt a reader blocked on another thread).
 */
MEMPIPE_EXTERN int mempipe_shutdown_read(mempipe *end);

/*
 * Waits without moving a byte (poll(2) on one socket for POLLIN): blocks
 * until a read on end would not wait — bytes, end of file, an error, this
 * end's read-side shutdown — at most timeout_ms milliseconds (negative: no
 * limit; 0: look once), as mempipe_read_timeout() measures it.
 * Returns 1 when ready. Errors: -ETIMEDOUT; -EINVAL for a NULL end; -EBADF
 * for a simplex writer end. SPEC R55.
 * Thread: the one thread currently reading this end (it waits where a
 * blocked read would). GnuTLS's pull_timeout is this call.
 */
MEMPIPE_EXTERN int mempipe_wait_readable(mempipe *end, int timeout_ms);

/*
 * The same for writing: until a write would not wait (room, or either
 * close). Returns 1, or -ETIMEDOUT, -EINVAL, -EBADF (a simplex reader end).
 * Thread: the one thread currently writing this end. SPEC R55.
 */
MEMPIPE_EXTERN int mempipe_wait_writable(mempipe *end, int timeout_ms);

/*
 * Lingers (SO_LINGER's wait, done without a close): blocks until the peer
 * has read every byte this end wrote, at most timeout_ms milliseconds
 * (negative: no limit; 0: look once), as mempipe_read_timeout() measures
 * it. Writes nothing; this end may have shut down its writing side.
 * Returns 0 when every byte written has been read — also when the peer read
 * them all and then closed.
 * Errors: -EPIPE if the peer closed or shut its reading side with bytes of
 *         this end's unread (they never will be), or the error the peer
 *         closed with (mempipe_close_with_error, -ECONNRESET after its
 *         abort) instead; -ETIMEDOUT if bytes were still unread when the
 *         time ran out; -EINVAL for a NULL end; -EBADF for a simplex reader
 *         end. SPEC R57.
 * Thread: the one thread currently writing this end (it waits where a
 * blocked write would, and is woken by the peer's reads and close).
 */
MEMPIPE_EXTERN int mempipe_drain(mempipe *end, int timeout_ms);

/* ----------------------------------------------------------------------- */
/* State (any thread; a snapshot that may be stale at once)                 */
/* ----------------------------------------------------------------------- */

/*
 * Bytes buffered for this end to read; 0 for NULL or a simplex writer, and
 * 0 after the peer's abort or this end's mempipe_shutdown_read().
 */
MEMPIPE_EXTERN size_t mempipe_readable(const mempipe *end);

/*
 * Bytes this end could write now without waiting: free space of the pipe it
 * writes, 0 once that pipe is closed either way; 0 for NULL or a simplex
 * reader.
 */
MEMPIPE_EXTERN size_t mempipe_writable(const mempipe *end);

/* mempipe_shut_state() bits. */
#define MEMPIPE_SHUT_READ  1 /* no byte will arrive that is not buffered */
#define MEMPIPE_SHUT_WRITE 2 /* a write fails at once (-EPIPE or an error) */

/*
 * Which sides of this end are shut, as a socket's POLLRDHUP and POLLHUP
 * tell (both bits: hung up), without a call on either direction:
 * MEMPIPE_SHUT_READ once the peer shut down, closed or aborted, or this
 * end called mempipe_shutdown_read() (bytes buffered before may still be
 * there to read: mempipe_readable() says how many);
 * MEMPIPE_SHUT_WRITE once this end shut down, or the peer closed or
 * shut its reading side. A simplex end's missing direction is shut from
 * the start. Final: a bit once set stays. For a GSource's G_IO_HUP, a
 * proxy's "both sides done" (SPEC R67).
 * Returns the bits (0 while open both ways). Errors: -EINVAL for a NULL
 * end. Any thread (a snapshot).
 */
MEMPIPE_EXTERN int mempipe_shut_state(const mempipe *end);

/*
 * Bytes this end wrote that the peer has not read yet (ioctl SIOCOUTQ):
 * 0 once the peer has read them all, and 0 once it is gone or shut its
 * reading side (those bytes will never be read). 0 for NULL or a simplex
 * reader. SPEC R58.
 */
MEMPIPE_EXTERN size_t mempipe_unread(const mempipe *end);

/*
 * The capacity M (max_buf_size) of the pipe this end writes; for a simplex
 * reader, of the pipe it reads. 0 for NULL.
 */
MEMPIPE_EXTERN size_t mempipe_capacity(const mempipe *end);

/*
 * Returns a static message for an error code, negative or positive ("broken
 * pipe: the pipe is shut down or the other end is closed" for -EPIPE): one
 * for 0 and for every code a call of this header or of the adapters'
 * headers can return, and "unknown error" for any other int. Never NULL;
 * the string is the library's, never freed. Any thread.
 */
MEMPIPE_EXTERN const char *mempipe_strerror(int err);

/* ----------------------------------------------------------------------- */
/* Pollable file descriptors                                                */
/* ----------------------------------------------------------------------- */

/*
 * A file descriptor that an event loop (poll, select, epoll, kqueue through
 * its fd filter, libuv, libevent, GLib, io_uring) can watch for this end.
 * Both fds are polled for POLLIN (select: the read set; epoll: EPOLLIN),
 * whichever direction they stand for:
 *
 *   mempipe_readable_fd(end) polls readable exactly while a read on end would
 *   not return -EAGAIN: bytes are buffered, or end of file (the peer shut
 *   down or closed), or an error is pending.
 *
 *   mempipe_writable_fd(end) polls readable exactly while a write on end
 *   would not return -EAGAIN: space is free, or an error is pending (-EPIPE
 *   after this end's shutdown or the reader's close).
 *
 * What to watch: both are POLLIN-ready fds, the writable one too. Watch
 * each for POLLIN only: epoll EPOLLIN, libuv UV_READABLE, GLib G_IO_IN on
 * both (never G_IO_OUT: an eventfd is always writable, so a G_IO_OUT watch
 * fires at once, over and over, and the loop spins; a pipe's read end is
 * never writable, so it never fires). Neither ever reports
 * POLLHUP, POLLRDHUP or POLLERR: end of file, a closed peer and errors show
 * as POLLIN, and the call then returns 0, -EPIPE or the error. For one fd
 * that polls like a socket's (POLLIN, POLLOUT, POLLHUP), see mempipe_fd().
 *
 * Level-triggered: the fd stays ready as long as the condition holds and
 * stops being ready when it ends (poll, select and epoll in level mode all
 * work). The fd follows the pipe after each call that changes it, from the
 * thread that made the change, so a poller may see it ready an instant after
 * the condition ended (the call then returns -EAGAIN: poll again) but never
 * misses a change. Treat readiness as "call the poll API now", with a NULL
 * waker or your own.
 *
 * Edge-triggered epoll (EPOLLET): an event is reported each time the
 * condition turns from false to true, not once per write: bytes arriving
 * while the fd is still readable bring no new event. After an event, read
 * (write) until -EAGAIN before waiting again, as with any edge-triggered fd;
 * the next time the condition turns true, a new event is reported.
 *
 * Returns the fd (>= 0), made on the first call; every later call on the
 * same end returns the same fd. It is non-blocking and close-on-exec, an
 * eventfd on Linux and a pipe's read end elsewhere (or in builds configured
 * with -DMEMPIPE_FD_PIPE=ON).
 * Errors: -EINVAL if end is NULL;
 *         -EBADF for mempipe_readable_fd() on a simplex writer end or
 *         mempipe_writable_fd() on a simplex reader end;
 *         -EMFILE, -ENFILE, -ENODEV or -ENOMEM (from eventfd(2) or
 *         pipe(2), or -ENOMEM for the library's own bookkeeping) if the fd
 *         could not be made; a later call tries again.
 * Ownership: the end owns the fd. mempipe_close(end) closes it; never
 * close, read or write it yourself (that would desynchronise it), only poll
 * it. Remove it from epoll sets and stop polling it before mempipe_close.
 * fork(): a child inherits the fd with the end, sharing its kernel object
 * with the parent; closing the inherited end in the child only closes the
 * child's copy of the fd, and the parent's fd keeps following its pipe
 * (SPEC R34; the child must not use the inherited end otherwise).
 * Cost: an end whose pipes never had an fd asked for makes no syscall for
 * it, ever. Once asked, a call that changes the fd's state makes one small
 * syscall; calls that leave it unchanged (data flowing through a pipe that
 * stays readable and writable) make none. The peer of an end with an fd
 * makes those syscalls too when its calls change that fd's state.
 * Threads: any thread, concurrently with every call except mempipe_close
 * of the same end.
 */
MEMPIPE_EXTERN int mempipe_readable_fd(mempipe *end);

/* See mempipe_readable_fd(): the same, for writing. */
MEMPIPE_EXTERN int mempipe_writable_fd(mempipe *end);

/*
 * One file descriptor for this end that polls like a socket's: for loops
 * that watch an fd for both directions and for hang-ups (GLib's G_IO_IN,
 * G_IO_OUT and G_IO_HUP, epoll's EPOLLOUT and EPOLLRDHUP, libuv's
 * UV_WRITABLE and UV_DISCONNECT). Poll it for any events; it reports, as
 * an AF_UNIX socketpair end does in the same state:
 *
 *   POLLIN     while a read on end would not return -EAGAIN: bytes are
 *              buffered, end of file or an error is pending, or end never
 *              reads (a simplex writer: -EBADF at once).
 *   POLLOUT    while a write on end would not return -EAGAIN: there is
 *              room, or the write fails at once (-EPIPE or the peer's error
 *              after this end's shutdown or the reader's close; -EBADF on a
 *              simplex reader). Not while the pipe is full, so a G_IO_OUT
 *              watch on a full pipe waits instead of spinning.
 *   POLLRDHUP  (Linux; with POLLIN) from the moment end's receiving side
 *              is shut: the peer shut down, closed or aborted (EOF or the
 *              error follows the buffered bytes), or end never reads.
 *   POLLHUP    from the moment both sides are shut: POLLRDHUP's condition
 *              and the sending side's (this end shut down, or the end that
 *              reads what it writes is gone, or end never writes). So a
 *              duplex end sees POLLHUP after its peer's close, as a socket
 *              does, and after the peer's shutdown and its own.
 *
 * POLLERR is never reported: errors are what the calls return. Hang-ups
 * are final; POLLIN and POLLOUT are level-triggered, following the pipe
 * after each call that changes it, from the thread that made the change (a
 * poller may see a bit an instant after its condition ended, then the call
 * returns -EAGAIN: poll again; a change is never missed). Edge-triggered
 * epoll (EPOLLET): one event each time a bit turns on; after an event,
 * read or write until -EAGAIN before waiting again.
 *
 * Returns the fd (>= 0), made on the first call; every later call on the
 * same end returns the same fd. It is one end of a non-blocking,
 * close-on-exec AF_UNIX stream socketpair whose other end the library
 * keeps: two descriptors per end (the process's descriptor limit applies).
 * Errors: -EINVAL if end is NULL;
 *         -EMFILE, -ENFILE or -ENOMEM (from socketpair(2), or -ENOMEM for
 *         the library's own bookkeeping) if it could not be made; nothing
 *         changed, and a later call tries again.
 * Ownership: the end owns the fd. mempipe_close(end) closes it (and the
 * library's end). Only poll it: never read, write, shut down or close it,
 * nor change its flags or socket options; the library moves bytes through
 * its queues to set its state, and anything else desynchronises it. Remove
 * it from epoll sets and stop polling it before mempipe_close.
 * fork(): as for mempipe_readable_fd(): closing the inherited end in the
 * child only closes the child's copies; the parent's fd keeps following its
 * pipes (SPEC R34).
 * Cost: an end that never asked makes no syscall for it. Once asked, a
 * call that turns POLLIN or POLLOUT on or off, or shuts a side, makes one
 * small syscall (a byte in or out of the socket's queue, one send or recv
 * that fills or drains its send buffer, a shutdown); calls that leave them
 * as they are make none and take no lock. The peer's calls pay those
 * syscalls when they change this fd's state (a write into an empty pipe
 * makes the reader's fd readable).
 * Threads: any thread, concurrently with every call except mempipe_close
 * of the same end. (SPEC R59-R61; docs/fd.md has the table of states.)
 */
MEMPIPE_EXTERN int mempipe_fd(mempipe *end);

/* ----------------------------------------------------------------------- */
/* Testing features: fault injection, statistics, taps                      */
/* ----------------------------------------------------------------------- */

/*
 * Faults to inject into one end's own calls (Boost.Beast's test::stream,
 * on a real pipe), so that code under test meets every short read, short
 * write, spurious pending and broken transport it must handle:
 *
 *   max_read, max_write  cap each call's bytes in that direction (0: no
 *                        cap): forced short reads and writes. A blocking
 *                        write still delivers all of len, in capped pieces.
 *   chunk_seed           != 0: each call's cap is drawn in [1, max_*] from
 *                        this seed (a fixed PRNG, xorshift64*): the same
 *                        seed gives the same sequence of caps on every run
 *                        and machine for the same sequence of calls.
 *   fail_read_at,        the Nth read (write) call and every later one in
 *   fail_write_at        that direction fail with fail_err (1-based; 0:
 *                        never). The count starts at mempipe_set_faults()
 *                        and counts only the calls that would not wait:
 *                        len > 0, and a read with bytes, EOF or an error to
 *                        report, or a write with room or a close to report
 *                        (a call that would return -EAGAIN, or a blocking
 *                        call's round that waits, is not counted). A broken
 *                        transport stays broken, as Beast's fail_count. A
 *                        failed call changes nothing, and the peer does not
 *                        see it: to show the peer a broken transport too,
 *                        close or abort the end when its call fails.
 *   fail_err             the negative errno those calls return (-EIO,
 *                        -ECONNRESET, ...).
 *   pending_every        != 0: every Nth poll call with len > 0 on this end
 *                        (reads and writes counted together; blocking calls
 *                        are not counted) returns -EAGAIN without touching
 *                        the pipe, and calls its waker before it returns,
 *                        as a yield of the budget does: a spurious pending.
 *
 * Fields may be appended in later versions, never reordered: zero the
 * struct ({0}) before setting the fields you use.
 */
typedef struct mempipe_faults {
    size_t max_read, max_write;
    unsigned chunk_seed;
    uint64_t fail_read_at, fail_write_at;
    int fail_err;
    unsigned pending_every;
} mempipe_faults;

/*
 * Sets the faults for end's own calls (a copy of *f is kept), or clears them
 * all with f == NULL. A new call restarts every count (fail_*_at,
 * pending_every) and the chunk PRNG.
 * Returns 0. Errors (nothing changes): -EINVAL if end is NULL, or f asks
 * for a failure (fail_read_at or fail_write_at != 0) with a fail_err that
 * is not a negative errno value (fail_err >= 0 or < -4095, or -EAGAIN);
 * -ENOMEM if the end's feature record (allocated on first use, through the
 * allocator hook, freed with the pipe) could not be allocated.
 * Cost: an end with faults (or stats, or a tap) takes the slow path on each
 * call; other ends are unaffected, and an end without any pays nothing.
 * Thread: while no other call on this end is in progress (set it up before
 * handing the end to the code under test, or from the thread that drives
 * it). Faults never affect the peer's calls.
 */
MEMPIPE_EXTERN int mempipe_set_faults(mempipe *end, const mempipe_faults *f);

/*
 * One end's statistics (this end's own calls). Fields may be appended in
 * later versions, never reordered.
 *
 *   bytes_written   bytes this end's writes accepted (exact, always)
 *   bytes_read      bytes this end's reads returned (exact, always)
 *   writes, reads   calls that moved at least one byte
 *   pending_writes, calls that returned -EAGAIN (pipe full or empty, a
 *   pending_reads   yield of the budget, or an injected pending)
 *   wakes           wakers run on this end's calls' threads while those
 *                   calls ran (the peer's parked reader or writer, and any
 *                   waker those wakers' own calls ran)
 *   parks           rounds of this end's blocking calls that had to wait
 *   faults          calls failed, capped or made pending by injected faults
 *   peak_buffered   the most bytes buffered for the peer after a write of
 *                   this end
 *   failed          calls failed by fail_read_at / fail_write_at alone (so
 *                   a loop can tell whether its failure point was reached)
 *
 * The byte counts come from the pipe's positions and are always exact
 * (bytes a reset discarded, R38, are not counted as read).
 * Every other field counts only from the first mempipe_get_stats(),
 * mempipe_set_faults() or mempipe_set_tap() on the end: call
 * mempipe_get_stats() once when you set the end up to count everything.
 * From then on the end's calls take the slow path (the fast path of other
 * ends is unaffected).
 */
typedef struct mempipe_stats {
    uint64_t bytes_written, bytes_read, writes, reads, pending_writes,
        pending_reads, wakes, parks, faults;
    size_t peak_buffered;
    uint64_t failed; /* appended after the fields the API contract names */
} mempipe_stats;

/*
 * Copies end's statistics into *out (the caller's; written only during the
 * call), and starts counting if this is the first call (see mempipe_stats).
 * Returns 0. Errors: -EINVAL if end or out is NULL; -ENOMEM if the end's
 * feature record could not be allocated (*out then has the byte counts and
 * zeros). Any thread, at any time while the end is open; under traffic each
 * field is a recent value, read one after another.
 */
MEMPIPE_EXTERN int mempipe_get_stats(const mempipe *end, mempipe_stats *out);

#define MEMPIPE_TAP_WRITE 0
#define MEMPIPE_TAP_READ  1

/*
 * Sets a tap on end: fn(ctx, dir, data, len) sees every byte this end
 * writes (dir MEMPIPE_TAP_WRITE) or reads (MEMPIPE_TAP_READ), in order,
 * after the bytes were accepted (written) or copied out (read), on the
 * thread that moved them, before that call returns. A write of several
 * slices is shown slice by slice. data is the library's view of the
 * caller's buffer, valid only during fn; fn must not call into this end
 * (it may call other ends). fn NULL removes the tap; ctx is the caller's.
 * Returns 0. Errors: -EINVAL for a NULL end; -ENOMEM as mempipe_set_faults.
 * Thread: as mempipe_set_faults(). Example: examples/tap_hexdump.c.
 */
MEMPIPE_EXTERN int mempipe_set_tap(mempipe *end,
                                   void (*fn)(void *ctx, int dir,
                                              const void *data, size_t len),
                                   void *ctx);

/* ----------------------------------------------------------------------- */
/* Allocator hook                                                           */
/* ----------------------------------------------------------------------- */

/*
 * A realloc-style allocator: new_size 0 frees ptr (old_size is its size) and
 * returns NULL; ptr NULL allocates. Return NULL to fail an allocation; the
 * library then returns -ENOMEM (or completes without allocating).
 *
 * Threads: it is called only from inside these calls, on the thread making
 * the call (so the reading and the writing thread of a pipe may call it at
 * the same time: it must be thread-safe):
 *   - allocates: mempipe_duplex(), mempipe_simplex(), mempipe_loopback() (the
 *     pipe); mempipe_poll_write(), mempipe_poll_writev(), mempipe_write(),
 *     mempipe_writev(), mempipe_write_timeout() (segments for the bytes);
 *     mempipe_readable_fd(), mempipe_writable_fd(), mempipe_fd() (the fd's
 *     bookkeeping, on the first call of a pipe or end);
 *   - frees: mempipe_poll_read(), mempipe_poll_readv(), mempipe_read(),
 *     mempipe_readv(), mempipe_read_full(), mempipe_read_timeout() (a
 *     drained segment, once one is already cached); the writes (a cached
 *     segment too small to
 *     reuse); the fd calls (bookkeeping that lost a race with the peer's
 *     end); mempipe_close() (segments of unread bytes, and on the last close
 *     of a pipe everything it holds);
 *   - and the adapters' calls that make these calls (the watch and BIO
 *     calls of include/mempipe/).
 * No other call, and no thread of the library's own, ever calls it; wakers
 * run on the same threads, inside the same calls. ctx is passed through
 * untouched.
 */
typedef void *(*mempipe_realloc_fn)(void *ctx, void *ptr, size_t old_size,
                                    size_t new_size);

/*
 * Sets the allocator used for all later allocations; NULL restores the
 * default (libc realloc/free). Must be called before the first pipe is
 * made (or after every pipe made with the previous allocator is closed).
 * Returns 0, or -EBUSY while pipes made with the current allocator exist.
 * Any thread, but not concurrently with creation calls.
 */
MEMPIPE_EXTERN int mempipe_set_allocator(mempipe_realloc_fn fn, void *ctx);

/* ----------------------------------------------------------------------- */
/* Cooperative budget (for executors that poll many tasks on one thread)    */
/* ----------------------------------------------------------------------- */

/*
 * Sets the calling thread's budget: how many more mempipe_poll_read(),
 * mempipe_poll_write() and mempipe_poll_writev() calls may complete before
 * the next one yields. 0 means unlimited, the default on every thread.
 * An executor calls it before it polls each task, so that a task looping on
 * an always-ready pipe gives the others their turn (tokio's coop budget).
 *
 * Accounting, for calls made on this thread that pass their argument checks:
 *   - a call that completes (bytes moved, EOF, or an error such as -EPIPE)
 *     spends one unit;
 *   - a call that returns -EAGAIN because the pipe is empty or full (its
 *     waker stored as usual) spends nothing;
 *   - a zero-length call (len 0, or iovcnt 0 or only empty slices) is not
 *     counted at all (SPEC R8, R14: it returns at once in every state and
 *     wakes nothing): it neither spends nor yields, never calls its waker,
 *     and returns what it would without a budget (0, or -EPIPE for a write
 *     on a closed pipe), also when the budget is exhausted;
 *   - once the budget is exhausted, every other call yields: it returns
 *     -EAGAIN without touching the pipe (not even to see EOF or -EPIPE) and
 *     without storing its waker; instead it calls the waker at once, on the
 *     calling thread, before it returns, so the executor re-queues the task
 *     behind the others. With a NULL waker it just returns -EAGAIN. It keeps
 *     yielding until the budget is set again. The waker should re-queue the
 *     task, not poll it inline (that poll would yield again, recursively).
 *   - argument errors are never hidden: -EINVAL and -EBADF are checked
 *     first and returned as usual, budget or not; they spend nothing.
 *   - blocking calls (mempipe_read(), mempipe_write()) ignore the budget:
 *     they neither yield nor spend, and block as usual with any budget.
 *   - mempipe_poll_flush() and mempipe_poll_shutdown() ignore it too.
 * Wakers that a call runs on this thread share the thread's budget.
 * ops == UINT_MAX is taken as UINT_MAX - 1 (UINT_MAX means "unlimited").
 * Thread: affects only the calling thread; any thread, any time.
 */
MEMPIPE_EXTERN void mempipe_budget_set(unsigned ops);

/*
 * Returns how many more poll calls may complete on the calling thread before
 * the next one yields: 0 when exhausted, UINT_MAX when unlimited.
 * Thread: the calling thread's own budget.
 */
MEMPIPE_EXTERN unsigned mempipe_budget_left(void);

/* ----------------------------------------------------------------------- */
/* State description                                                        */
/* ----------------------------------------------------------------------- */

/*
 * Writes a one-line description of the end's state into buf, snprintf-style:
 * at most len bytes including the terminating NUL (truncated if need be; buf
 * is always terminated when len > 0; nothing is written when len is 0).
 * The line is the kind, then one field group per pipe the end uses:
 *
 *   <kind>[ rx=<L>/<M> <state> wakers=<r><w>][ tx=...]
 *   loopback rxtx=<L>/<M> <state> wakers=<r><w>
 *
 *   kind   duplex, simplex-reader, simplex-writer or loopback
 *   rx     the pipe this end reads (duplex, simplex-reader)
 *   tx     the pipe this end writes (duplex, simplex-writer)
 *   rxtx   a loopback's one pipe, which it both reads and writes
 *   L      bytes buffered in that pipe (decimal)
 *   M      that pipe's capacity, max_buf_size (decimal)
 *   state  open, write-closed (its writer shut down or closed: EOF after
 *          the L bytes), read-closed (its reader closed: writes fail with
 *          -EPIPE) or closed (both)
 *   r      'r' if a reader's waker is stored in that pipe, else '-'
 *   w      'w' if a writer's waker is stored in that pipe, else '-'
 *
 * For example, a duplex end with 5 unread bytes whose peer shut down and
 * whose own writer is parked on a full pipe of capacity 8:
 *   "duplex rx=5/8 write-closed wakers=-- tx=8/8 open wakers=-w"
 *
 * Returns the length of the full line (without the NUL) whether or not it
 * fit, like snprintf: a result >= len means it was truncated.
 * Errors: -EINVAL if end is NULL, or buf is NULL and len > 0.
 * Never blocks and changes nothing. Any thread, at any time while the end
 * is open, also while other threads use it or its peer; under traffic the
 * fields are read one after another, each a recent value (L <= M always).
 * buf is the caller's, written only during the call.
 */
MEMPIPE_EXTERN int mempipe_describe(const mempipe *end, char *buf, size_t len);

/* ----------------------------------------------------------------------- */
/* Bridges to real fds                                                     */
/* ----------------------------------------------------------------------- */

struct pollfd;

/* A running pump between one end and one stream fd; opaque. */
typedef struct mempipe_bridge mempipe_bridge;

/*
 * Pumps bytes both ways between end and fd, a connected stream socket
 * (AF_UNIX, TCP, ...) or one end of a pipe or FIFO, on a thread of its own,
 * until both directions are over; then closes fd and end. So code written
 * against the end's peer is reachable through the fd (a TCP connection,
 * say) as it is in memory. A pipe fd runs one way: a pipe's read end pumps
 * into the end, and the end is read-shut (its peer's writes fail with
 * -EPIPE: nobody takes them); a pipe's write end pumps out of the end, and
 * the end is shut down (its peer reads EOF).
 *
 * Nothing is buffered or copied by the bridge: it hands the end's bytes to
 * the kernel in place (mempipe_read_peek) and reads the fd's into the end
 * in place (mempipe_write_reserve), never more than the other side takes
 * now, so both ways keep their backpressure. The stream's ends follow the
 * socket's rules (SPEC R80-R86):
 *   - the end's peer shuts down or closes (the end reads EOF): shutdown(fd,
 *     SHUT_WR) after the last byte (a pipe's write end is closed);
 *   - the fd reads EOF: mempipe_shutdown(end) after the last byte, so the
 *     end's peer reads EOF; if the fd is then shut both ways (POLLHUP: its
 *     peer closed), the end is read-shut first, so that by then its peer's
 *     writes fail with -EPIPE, as on a socket whose peer closed;
 *   - the end's peer aborts (-ECONNRESET): the fd is reset (SO_LINGER
 *     {1, 0}, then closed: a TCP peer gets an RST) and the bridge ends;
 *   - the fd is reset (ECONNRESET): the end is closed with -ECONNRESET for
 *     its peer's reads (mempipe_close_with_error) and the bridge ends;
 *   - the fd's peer stops reading (EPIPE): the end is read-shut, so its
 *     peer's writes fail with -EPIPE (mempipe_shutdown_read);
 *   - the end's peer closes its read side (the end's writes -EPIPE):
 *     shutdown(fd, SHUT_RD).
 * No SIGPIPE is ever raised: sockets are written with MSG_NOSIGNAL, pipes
 * with SIGPIPE blocked on the bridge's thread and any SIGPIPE it raised
 * taken back.
 *
 * Returns 0 and *out, to be given to mempipe_bridge_join() exactly once.
 * Errors (nothing is taken: end and fd stay the caller's, unchanged but
 * for end's mempipe_fd() being made, and fd's O_NONBLOCK restored):
 *   -EINVAL      end or out NULL, fd < 0, fd a listening socket, or a FIFO
 *                opened for both reading and writing;
 *   -EBADF       fd not open;
 *   -ENOTSOCK    fd neither a socket nor a pipe/FIFO (a regular file, ...);
 *   -EPROTOTYPE  a socket that is not SOCK_STREAM (datagrams, ...);
 *   -ENOTCONN    a stream socket not connected;
 *   -ENOMEM, -EMFILE, -ENFILE, -EAGAIN  no memory, no fd for the end's
 *                mempipe_fd(), or no thread.
 * Ownership: on success the bridge owns end and fd: use neither again (the
 * end's peer is the caller's to use, from any thread). The bridge sets fd
 * O_NONBLOCK.
 * Threads: any thread. The bridge's thread runs no waker of the caller's:
 * it drives the end with its own calls; the end's peer's wakers run as
 * always, on the thread that makes the progress (the bridge's, for bytes
 * it brings in).
 */
MEMPIPE_EXTERN int mempipe_bridge_fd(mempipe *end, int fd,
                                     mempipe_bridge **out);

/*
 * Waits until both directions of b are over (its fd and end are closed by
 * then) and frees b. A bridge made by mempipe_bridge_new() has no thread:
 * join runs it on the calling thread until it is over (a blocking pump).
 * Returns 0 after a clean end both ways (EOF each way, or a reset passed
 * on: resets are the streams' business, not the bridge's), else the first
 * error the bridge met on either side (a negative errno: -EIO from the
 * fd, ...). -EINVAL if b is NULL. Call it once per bridge, from one thread.
 */
MEMPIPE_EXTERN int mempipe_bridge_join(mempipe_bridge *b);

/*
 * The same bridge without a thread, for a caller's event loop: nothing
 * moves until mempipe_bridge_step(). Same arguments, errors and ownership
 * as mempipe_bridge_fd() (no -EAGAIN for a thread). Free it with
 * mempipe_bridge_join() (which first runs it to the end) or
 * mempipe_bridge_abort().
 */
MEMPIPE_EXTERN int mempipe_bridge_new(mempipe *end, int fd,
                                      mempipe_bridge **out);

/*
 * Moves what can move now, both ways, without blocking. Returns 0: call it
 * again once one of the fds of mempipe_bridge_pollfds() is ready; 1: both
 * directions are over, fd and end are closed (join or abort b to free it;
 * further steps return 1); -EINVAL: b NULL. Level-triggered: after a step,
 * the pollfds say exactly what it waits for, so poll(2), or epoll in either
 * mode with the fds re-armed after every step, works. Threads: one thread
 * at a time per bridge; not for a bridge of mempipe_bridge_fd().
 */
MEMPIPE_EXTERN int mempipe_bridge_step(mempipe_bridge *b);

/*
 * Fills fds[0] (fds has room for 2: the end's mempipe_fd()) and fds[1] (the
 * bridge's fd) with the events the last step waits for (either may be 0: that
 * fd need not be watched), revents 0, and returns 2; 0 once b is over; -EINVAL
 * if b or fds is NULL. The fds stay the bridge's: only poll them. fds is the
 * caller's, written during the call.
 */
MEMPIPE_EXTERN int mempipe_bridge_pollfds(const mempipe_bridge *b,
                                          struct pollfd *fds);

/*
 * Ends a thread-less bridge at once, if not over: the fd is reset as by an
 * abortive close and the end aborted (its peer reads -ECONNRESET); then
 * frees b. NULL, and a bridge of mempipe_bridge_fd() (which must be
 * joined), are ignored. One thread, once per bridge.
 */
MEMPIPE_EXTERN void mempipe_bridge_abort(mempipe_bridge *b);

/* ----------------------------------------------------------------------- */
/* Shared-memory pipes between processes (docs/shm.md, SPEC R68-R79)        */
/* ----------------------------------------------------------------------- */

/* The largest capacity of one shm ring: 2^40 bytes. */
#define MEMPIPE_SHM_MAX ((size_t)1 << 40)

/*
 * A duplex pipe whose two rings live in shared memory (a sealed memfd), so
 * that its other end can live in another process. Returns 0, this
 * process's end in *local, and in *peer_fd a fresh descriptor of the
 * memfd without FD_CLOEXEC (inherited across fork and exec, or sent with
 * SCM_RIGHTS) for the one process that calls mempipe_shm_attach(); the
 * caller closes its copy once it is handed on. Each direction buffers at
 * most max bytes (exactly max: the mapping is rounded up to pages, the
 * capacity is not). Every call of this header works on the ends, with the
 * rules of SPEC.md (R73); the peer process dying is its close (R75): this
 * end reads the bytes buffered, then EOF, and its writes fail with -EPIPE,
 * seen within 2 * 50 ms by a call that waits (a blocking call, a stored
 * waker, a watched fd).
 *
 * Wakers stay in their process: a waker stored on an shm end runs on the
 * thread that made the progress when that thread is in this process, else
 * on the end's notifier thread (one per end that stores a waker or asks
 * for an fd, started then, stopped by its close).
 *
 * Errors (nothing is made, no fd is left open):
 *   -EINVAL      local or peer_fd NULL, max 0 or above MEMPIPE_SHM_MAX;
 *   -ENOMEM      no memory or address space (mmap, the private state);
 *   -EMFILE, -ENFILE  no descriptor;
 *   -EOPNOTSUPP  not Linux, or a kernel without memfd sealing.
 * Threads: any thread. Memory: one page is touched at creation whatever
 * max is; a ring's pages as the bytes first reach them (R77).
 */
MEMPIPE_EXTERN int mempipe_shm_duplex(size_t max, mempipe **local,
                                      int *peer_fd);

/*
 * The same with one ring: *writer writes here, and the end attached from
 * *reader_fd reads. Same errors.
 */
MEMPIPE_EXTERN int mempipe_shm_simplex(size_t max, mempipe **writer,
                                       int *reader_fd);

/*
 * Attaches the other end of an shm pipe from fd (a descriptor of the memfd
 * that mempipe_shm_duplex() or _simplex() handed out, in this process or
 * another). fd stays the caller's: it may be closed as soon as this
 * returns. Returns 0 and *end. Attaching in the creating process works
 * (both ends then behave as an in-process pair, wakers run synchronously).
 * Errors (nothing changes):
 *   -EINVAL      end NULL; fd not a memfd, not sealed as mempipe seals, of
 *                another size, or without mempipe's magic;
 *   -EBADF       fd not open;
 *   -EPROTO      mempipe's magic with a version or layout this library
 *                does not take (R71);
 *   -EBUSY       the pipe's one other end is attached already;
 *   -ENOMEM, -EMFILE, -ENFILE, -EOPNOTSUPP  as above.
 * Threads: any thread.
 */
MEMPIPE_EXTERN int mempipe_shm_attach(int fd, mempipe **end);

#ifdef __cplusplus
}
#endif

#endif /* MEMPIPE_H */
