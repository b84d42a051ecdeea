/* SPDX-License-Identifier: MIT */
/*
 * mempipe/nghttp2.h — an nghttp2 session's I/O over a mempipe end.
 *
 * Link with -lmempipe_nghttp2 (pkg-config mempipe-nghttp2, CMake target
 * mempipe::mempipe_nghttp2) and nghttp2 (1.52 or later, -lnghttp2).
 *
 * mempipe_nghttp2_pump() moves what it can both ways between an
 * nghttp2_session and one end: it writes what nghttp2_session_mem_send()
 * serializes and feeds nghttp2_session_mem_recv() what the peer wrote, as
 * an nghttp2 loop over a socket does with write(2) and read(2). A client
 * and a server session then talk HTTP/2 over memory, each over one end of
 * a duplex, exactly as over a TCP connection.
 *
 * Two modes, picked by the waker argument:
 *
 *   with a waker (a one-thread loop, an event loop): pump never waits. It
 *   returns -EAGAIN when the pipe is empty (the session wants to read) or
 *   full (output waits), with the waker stored in whichever direction
 *   waits; call pump again when it fires.
 *
 *   with a NULL waker (one thread per session): pump blocks until the
 *   session wants no more I/O or fails, waiting for whichever direction
 *   can move.
 *
 * The session stays the caller's: submit requests and responses with
 * nghttp2_submit_*() as usual, before the pump or from the session's
 * callbacks, which run inside pump on its thread. The pipe's wakers say
 * when the pipe can move bytes, not when the application has something new
 * to send: after a nghttp2_submit_*() or nghttp2_session_resume_data()
 * outside the callbacks, call pump again.
 *
 * End of the session, as a socket loop would see it:
 *   - 0: nghttp2_session_want_read() and nghttp2_session_want_write() are
 *     both 0 and every byte nghttp2 handed over is in the pipe: after a
 *     GOAWAY sent or received once no stream is open, after
 *     nghttp2_session_terminate_session(), or when nghttp2 ended the
 *     session itself because the peer broke the protocol (it then sent a
 *     GOAWAY with the error code, which on_frame_send_callback sees). Then
 *     close the end (or mempipe_shutdown() it), as one closes a socket.
 *   - the peer closed (end of file, or writing refused) while the session
 *     still wanted to read: -EPIPE (an nghttp2 socket loop's
 *     NGHTTP2_ERR_EOF). The bytes the peer wrote before closing are fed
 *     first, so a peer that sent GOAWAY and closed ends the session cleanly
 *     (0) even if output was still waiting: nobody will read it.
 *   - the peer reset (mempipe_abort(), or a close with bytes it never read
 *     after mempipe_set_rst_on_unread()): -ECONNRESET, as from a socket.
 * Over a socket an unread close is a reset too; a plain mempipe close
 * discards the unread bytes silently (SPEC R9), so there the peer sees
 * -EPIPE.
 */
#ifndef MEMPIPE_NGHTTP2_H
#define MEMPIPE_NGHTTP2_H

#include <nghttp2/nghttp2.h>

#include "../mempipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Moves what can move between session s and end, both ways: first the
 * output still waiting from the last call, then what
 * nghttp2_session_mem_send() serializes, into the pipe; and what the pipe
 * holds, into nghttp2_session_mem_recv(), chunk by chunk, alternating with
 * the output (so a callback's nghttp2_submit_*() goes out at once, and a
 * session whose output waits on a full pipe still reads: both peers
 * writing into full pipes cannot deadlock). Input is read only while
 * nghttp2_session_want_read() says so, output made only while
 * nghttp2_session_want_write() does. A callback's NGHTTP2_ERR_PAUSE only
 * splits the input (the rest is fed at once), so the data a callback is
 * given is valid only during the callback.
 *
 * Pending output: nghttp2_session_mem_send() lends a chunk of its own
 * buffer, valid until its next call. When the pipe takes only part of it,
 * the rest is kept (a pointer into that buffer, no copy) and written before
 * anything else on the next call; mempipe_nghttp2_pending() tells how many
 * bytes wait. The pump's signature has no room for that state, and neither
 * the session nor the end has a slot the adapter may use (the session's
 * user data is the application's), so the adapter keeps it in a small
 * table of its own keyed by the session, an entry only while output
 * waits: it is made when a call returns -EAGAIN with output waiting and
 * freed when that output is written or the call ends in 0 or an error.
 * Call mempipe_nghttp2_release(s) before nghttp2_session_del(s) if the
 * last pump returned -EAGAIN (it is harmless otherwise), or the entry
 * stays, and a session made later at the same address with the same end
 * would write stale bytes.
 *
 * w: a waker, or NULL to block.
 *   With a waker, never waits. Returns -EAGAIN when the session wants to
 *   read and the pipe is empty, or its output waits on a full pipe; w is
 *   then stored in each such direction (so it may be called twice) and is
 *   called once that direction can move, on the thread that made the
 *   progress (the peer's, possibly inside a mempipe call). Call pump again
 *   when it fires. A yield of the thread's budget (mempipe_budget_set())
 *   also returns -EAGAIN, with w called at once. w is copied; as for every
 *   poll call, a w stored in the pipe stays there until it is called or
 *   the end is closed, also after pump returned 0, so its ctx must stay
 *   valid until then. A call of w is "call pump again", never an error.
 *   With NULL, blocks until it can return 0 or an error, waiting for
 *   bytes to read, space to write, or either: for one direction in
 *   mempipe_read() or mempipe_write(), for both by storing a waker of the
 *   adapter's own with mempipe_poll_readable() and
 *   mempipe_poll_writable() and sleeping until it is called (its parkers
 *   are pooled, never freed: a stored waker may be called after the pump
 *   returned, and then only wakes the parker's next user spuriously). It
 *   ignores the thread's budget, as the blocking calls do, and restores it
 *   before returning. Everything the application does must then happen in
 *   the session's callbacks.
 *
 * Returns 0 when the session wants no more I/O: want_read and want_write
 * are both 0 (or want_write is 1 with nothing nghttp2 can serialize while
 * want_read is 0, which nothing in the pipe can change) and no output
 * waits. Call it again after submitting something new.
 * Errors: -EAGAIN (only with a waker) as above;
 *         -EINVAL if s or end is NULL, w is non-NULL with a NULL wake, or
 *         output of s is waiting to be written into another end; nothing
 *         is done;
 *         -EBADF if end is a simplex end (it cannot both read and write);
 *         nothing is done;
 *         -EPIPE if the peer closed while the session still wanted to read
 *         (mempipe_nghttp2_error() is then NGHTTP2_ERR_EOF, or 0 if
 *         writing was refused before end of file was seen), or this end
 *         was shut down (mempipe_shutdown()) while the session has output
 *         and still wants to read;
 *         -ECONNRESET if the peer reset the pipe;
 *         -EPROTO if nghttp2_session_mem_recv() or _mem_send() failed
 *         (bad client magic, flooding, a callback that returned
 *         NGHTTP2_ERR_CALLBACK_FAILURE, ...): mempipe_nghttp2_error()
 *         gives nghttp2's code, nghttp2_strerror() its text;
 *         -ENOMEM if memory ran short: nghttp2's own or the adapter's
 *         (mempipe_nghttp2_error() is NGHTTP2_ERR_NOMEM; output may be
 *         lost), or the pipe's (mempipe_nghttp2_error() is 0; nothing is
 *         lost and a later call goes on);
 *         in blocking mode also -ENOMEM, with nothing done, if the first
 *         parker could not be allocated;
 *         any other error of the end's own calls (an injected fault, or
 *         the peer's mempipe_close_with_error() code), passed through.
 *         After any error but -EAGAIN, -EINVAL, -EBADF and the pipe's
 *         -ENOMEM the session is finished (delete it; no entry is kept).
 * Thread: the thread using the session, which is then the end's reader
 * and writer (R26); never from inside the session's own callbacks. A
 * session and its end go with one pump at a time.
 */
MEMPIPE_EXTERN int mempipe_nghttp2_pump(nghttp2_session *s, mempipe *end,
                                        const mempipe_waker *w);

/*
 * Forgets the output of s still waiting to be written (what
 * mempipe_nghttp2_pending() counts) and frees the adapter's entry for s.
 * Call it before nghttp2_session_del(s) when the last pump returned
 * -EAGAIN; the bytes are lost, as the unsent bytes of a closed socket.
 * Returns 0, also when nothing was waiting.
 * Errors: -EINVAL if s is NULL.
 * Thread: the thread using the session, not while a pump of s runs.
 */
MEMPIPE_EXTERN int mempipe_nghttp2_release(nghttp2_session *s);

/*
 * Returns how many bytes of the output of s wait to be written into the
 * pipe (serialized by nghttp2, not yet taken by the pipe): 0 after a
 * pump that returned 0 or an error other than the pipe's -ENOMEM, and for
 * NULL. Thread: the thread using the session.
 */
MEMPIPE_EXTERN size_t mempipe_nghttp2_pending(const nghttp2_session *s);

/*
 * Returns the nghttp2 error code behind the calling thread's last
 * mempipe_nghttp2_pump(): NGHTTP2_ERR_* when it returned -EPROTO or an
 * nghttp2 -ENOMEM, NGHTTP2_ERR_EOF when it returned -EPIPE because the
 * peer closed, and 0 for every other outcome (success and -EAGAIN
 * included). Like errno, a per-thread value. Any thread.
 */
MEMPIPE_EXTERN int mempipe_nghttp2_error(void);

#ifdef __cplusplus
}
#endif

#endif /* MEMPIPE_NGHTTP2_H */
