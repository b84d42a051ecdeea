/* SPDX-License-Identifier: MIT */
/*
 * mempipe/script.h — a scripted peer: the other end of a duplex plays a
 * script against the code under test (tokio-test's io::Builder, on a real
 * pipe).
 *
 * Make a duplex, give one end to the code under test unchanged, and the
 * other to mempipe_script_new(). List the steps: what the code under test
 * must write (expect), what it then reads (send), and how the script's end
 * finishes (shutdown, close, fail with an error, or expect the peer's EOF).
 * Then mempipe_script_run() plays them, blocking, or mempipe_script_poll()
 * steps them from an event loop. Part of libmempipe (link -lmempipe); it
 * uses only the public API of <mempipe.h>.
 *
 *   mempipe *client, *server;
 *   mempipe_duplex(4096, &client, &server);
 *   mempipe_script *s = mempipe_script_new(server);
 *   mempipe_script_expect(s, "GET / HTTP/1.0\r\n\r\n", 18);
 *   mempipe_script_send(s, "HTTP/1.0 200 OK\r\n\r\nhi", 21);
 *   mempipe_script_close(s);
 *   ... start the client on client (another thread, or poll it) ...
 *   if (mempipe_script_run(s) != 0)
 *       fprintf(stderr, "%s\n", mempipe_script_error(s));
 *   mempipe_script_free(s);
 *
 * How the steps are played (SPEC.md R41-R46):
 *
 *   - Steps run strictly in the order they were added, numbered from 1 in
 *     messages.
 *   - expect is matched as a stream, byte by byte as bytes arrive: the code
 *     under test may write an expected chunk in any number of pieces, and one
 *     write may cover several expects.
 *   - send writes its bytes, in as many pieces as the pipe's free space
 *     allows. While a send is blocked on a full pipe the script keeps reading
 *     whatever the code under test writes into an internal read-ahead buffer
 *     (unbounded; -ENOMEM if it cannot grow), so a send bigger than the
 *     pipe's capacity never deadlocks against a code under test that is
 *     itself blocked writing. Later expects match the read-ahead bytes first.
 *   - shutdown half-closes (the code under test reads EOF after the sent
 *     bytes); close closes the script's end; fail closes it with an error
 *     (mempipe_close_with_error()). Bytes the script never read are then
 *     discarded, as by a socket's close.
 *   - expect_eof reads until EOF: any byte before it is a mismatch.
 *   - After the last step, unless it was close or fail, the script waits for
 *     the peer's EOF; any byte before it is an error ("unexpected bytes after
 *     the script").
 *
 * Errors of a run: every deviation of the code under test is -EPROTO with a
 * message (mempipe_script_error()): a mismatching byte, EOF or a closed
 * reading side while steps are left, bytes where EOF was expected, or an
 * error its close sent. A run fails otherwise only with -ENOMEM (memory
 * ran out) or -EBADF (a simplex end of the wrong direction). The result is
 * sticky.
 *
 * Threads: a script is used by one thread at a time (the builder calls,
 * then run or poll; a script may be built on one thread and run on another
 * if the hand-over is synchronised). The code under test uses the other end
 * from any thread(s), under <mempipe.h>'s rules.
 *
 * A script that never matches (the code under test waits for bytes the
 * script sends only after an expect that never comes) blocks run() just as
 * a real peer would; bound such tests with a timeout of your own.
 */
#ifndef MEMPIPE_SCRIPT_H
#define MEMPIPE_SCRIPT_H

#include <mempipe.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A script and the end it plays on. Opaque; made by new, freed by free. */
typedef struct mempipe_script mempipe_script;

/*
 * Makes an empty script that will play on end (normally one end of a duplex
 * whose other end the code under test holds).
 * Returns the script, or NULL if end is NULL or memory is short.
 * Ownership: on success the script owns end: it closes it at its close or
 * fail step, or in mempipe_script_free(); the caller must no longer use or
 * close end. On failure (NULL) end is still the caller's and untouched.
 * Any thread.
 */
MEMPIPE_EXTERN mempipe_script *mempipe_script_new(mempipe *end);

/*
 * Adds a step: the code under test must write these len bytes next. They
 * may arrive in any number of pieces, and together with the bytes of the
 * neighbouring expects. len 0 is a step that matches at once.
 * Returns 0.
 * Errors: -EINVAL if s is NULL, data is NULL with len > 0, or the script
 *         already has a close, fail or expect_eof step (nothing can be read
 *         after those); -EBUSY once mempipe_script_run() or
 *         mempipe_script_poll() was called; -ENOMEM if memory is short.
 *         On error the script is unchanged.
 * data is the caller's: copied before the call returns.
 * Thread: the one thread using s.
 */
MEMPIPE_EXTERN int mempipe_script_expect(mempipe_script *s, const void *data,
                                         size_t len);

/*
 * Adds a step: the script writes these len bytes, which the code under test
 * then reads. The step is done once the pipe has taken every byte (not when
 * the code under test has read them). len 0 is a step that is done at once.
 * Returns 0.
 * Errors: -EINVAL if s is NULL, data is NULL with len > 0, or the script
 *         already has a shutdown, close or fail step; -EBUSY once run or
 *         poll was called; -ENOMEM if memory is short. On error the script
 *         is unchanged.
 * data is the caller's: copied before the call returns.
 * Thread: the one thread using s.
 */
MEMPIPE_EXTERN int mempipe_script_send(mempipe_script *s, const void *data,
                                       size_t len);

/*
 * Adds a step: the script's end fails with err (mempipe_close_with_error()).
 * The code under test reads the bytes sent before, then err on every read
 * (EOF instead, if a shutdown step came first: the first close decides);
 * its writes return err (-EPIPE if it had shut down its own writing side).
 * The script's end is closed by this step: no step may follow, and the
 * script does not wait for the peer's EOF; bytes the script never read are
 * discarded.
 * Returns 0.
 * Errors: -EINVAL if s is NULL, err is not a negative errno value (err >= 0,
 *         err < -4095) or is -EAGAIN, or the script already has a close or
 *         fail step; -EBUSY once run or poll was called;
 *         -ENOMEM if memory is short. On error the script is unchanged.
 * Thread: the one thread using s.
 */
MEMPIPE_EXTERN int mempipe_script_fail(mempipe_script *s, int err);

/*
 * Adds a step: the script half-closes (mempipe_shutdown()); the code under
 * test reads EOF after the bytes sent before. The script may still expect
 * bytes afterwards, but not send.
 * Returns 0.
 * Errors: -EINVAL if s is NULL or the script already has a shutdown, close
 *         or fail step; -EBUSY once run or poll was called; -ENOMEM if
 *         memory is short. On error the script is unchanged.
 * Thread: the one thread using s.
 */
MEMPIPE_EXTERN int mempipe_script_shutdown(mempipe_script *s);

/*
 * Adds a step: the script closes its end (mempipe_close()). The code under
 * test reads the bytes sent before, then EOF; its writes return -EPIPE.
 * Bytes it wrote that no step read are discarded. No step may follow, and
 * the script does not wait for the peer's EOF.
 * Returns 0.
 * Errors: -EINVAL if s is NULL or the script already has a close or fail
 *         step; -EBUSY once run or poll was called; -ENOMEM if memory is
 *         short. On error the script is unchanged.
 * Thread: the one thread using s.
 */
MEMPIPE_EXTERN int mempipe_script_close(mempipe_script *s);

/*
 * Adds a step: the code under test must shut down or close its writing side
 * here. The script reads until EOF; any byte before it is a mismatch.
 * Only send, shutdown, close or fail may follow.
 * Returns 0.
 * Errors: -EINVAL if s is NULL or the script already has a close, fail or
 *         expect_eof step; -EBUSY once run or poll was called; -ENOMEM if
 *         memory is short. On error the script is unchanged.
 * Thread: the one thread using s.
 */
MEMPIPE_EXTERN int mempipe_script_expect_eof(mempipe_script *s);

/*
 * Plays the script to its end, blocking the calling thread while the code
 * under test has not written, read or closed what the next step needs
 * (the thread parks on a condition variable of the script's and is woken
 * by the code under test's thread through the end's wakers).
 * May be called after some mempipe_script_poll() calls: it continues.
 * Returns 0 once every step matched and, unless the last step was close or
 * fail, the code under test's EOF was read with no byte before it.
 * Errors: -EINVAL if s is NULL;
 *         -EPROTO if the code under test deviated from the script (see
 *         the file comment); mempipe_script_error() says how;
 *         -ENOMEM if the read-ahead buffer could not grow, or a send's
 *         bytes could not be buffered (SPEC R36);
 *         -EBADF if end cannot read or write what a step needs (a simplex
 *         end given to mempipe_script_new()).
 *         Errors are sticky: later calls return the same.
 * Thread: the one thread using s; the code under test must run on another
 * thread (or be driven by wakers run on another thread).
 */
MEMPIPE_EXTERN int mempipe_script_run(mempipe_script *s);

/*
 * Plays as many steps as can go on without waiting, then returns; for
 * driving the script from a loop, possibly on the same thread as the code
 * under test.
 * Returns 0 when the script is done, as mempipe_script_run().
 * Errors: -EAGAIN if it has to wait: w (if non-NULL) is stored on the end
 *         for each direction the script waits on (reading, writing, or both
 *         while a send is blocked) and called once the code under test
 *         moves, by the thread that moved it. Call poll again then. With a
 *         NULL w nothing is stored (busy polling).
 *         -EINVAL if s is NULL or w has a NULL wake (nothing happens);
 *         -EPROTO, -ENOMEM, -EBADF as mempipe_script_run(), sticky.
 * w is copied; its ctx is the caller's. A stored waker may be called after
 * the script is done (a spurious wake), until mempipe_script_free() has
 * closed the end; keep ctx alive until then.
 * Thread: the one thread using s; the waker runs on the code under test's
 * thread (or on this one, during a poll call that makes the code under
 * test's end ready).
 */
MEMPIPE_EXTERN int mempipe_script_poll(mempipe_script *s,
                                       const mempipe_waker *w);

/*
 * Describes the first error of a run: for a mismatch, the step (numbered
 * from 1 and described), the byte offset within that step and within the
 * whole stream the code under test wrote, and a window of up to 16 bytes
 * expected and got, each in hex and as text (non-printable bytes as '.'),
 * for example
 *   step 2 of 3 (expect 18 bytes): mismatch at byte 5 of the step, byte 5 of
 *   the stream: expected 2f 20 48 54 54 50 "/ HTTP", got 2f 69 6e "/in"
 * and for a leftover script, what is left and the next step.
 * Returns the message, or NULL if s is NULL or there was no error (yet).
 * The string belongs to the script and lives until mempipe_script_free().
 * Thread: the one thread using s.
 */
MEMPIPE_EXTERN const char *mempipe_script_error(const mempipe_script *s);

/*
 * Frees the script and its copies of the steps' bytes, and closes its end
 * (unless a close or fail step already did). Once it returns no waker
 * stored by mempipe_script_poll() is running or will run. NULL is a no-op.
 * Thread: the one thread using s, with no call on s in progress.
 */
MEMPIPE_EXTERN void mempipe_script_free(mempipe_script *s);

#ifdef __cplusplus
}
#endif

#endif /* MEMPIPE_SCRIPT_H */
