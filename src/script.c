/* SPDX-License-Identifier: MIT */
/*
 * The scripted peer (include/mempipe/script.h): a list of steps played on
 * one end of a duplex through the public poll API only.
 *
 * State of a run: steps[cur] is the step being played and pos its bytes done
 * (matched or sent). rx counts the bytes of the incoming stream matched so
 * far, for the messages. The read-ahead buffer ra[ra_off .. ra_off+ra_len)
 * holds bytes read while a send was blocked, not yet matched; expects take
 * from it before they read the pipe again. rd records how the incoming
 * direction ended once it did (EOF or a read error), so that a later step
 * reports it.
 */
#include "mempipe/script.h"

#include "alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum kind { EXPECT, SEND, FAIL, SHUTDOWN, CLOSE, EXPECT_EOF };

/* What the builder has seen, to refuse steps that could never play. */
#define SAW_SHUTDOWN 1u
#define SAW_CLOSE    2u /* close or fail: the end is gone */
#define SAW_EOF      4u /* expect_eof: nothing more can arrive */

#define RUNNING 1 /* rc while the run is not finished */
#define RD_OPEN 1 /* rd while the incoming direction has not ended */
#define WINDOW  16
#define CHUNK   512 /* the most an expect reads at once (stack buffer) */
#define RA_MIN  1024

struct step {
    enum kind kind;
    int err;
    size_t len;
    unsigned char *data;
};

struct mempipe_script {
    mempipe *end; /* NULL once a close or fail step closed it */
    struct step *steps;
    size_t nsteps, cap;
    unsigned saw;
    int started;
    int rc;
    size_t cur, pos;
    unsigned long long rx;
    int rd; /* RD_OPEN, 0 after EOF, or the negative error a read gave */
    unsigned char *ra;
    size_t ra_off, ra_len, ra_cap;
    /* run()'s parker: seq counts wakes, under mu. It lives as long as the
     * end, because a waker stored by an earlier poll may fire until the
     * end is closed. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned seq;
    char msg[512];
};

/* ---- building ---------------------------------------------------------- */

mempipe_script *mempipe_script_new(mempipe *end)
{
    mempipe_script *s;
    if (end == NULL)
        return NULL;
    s = mempipe__alloc(sizeof *s);
    if (s == NULL)
        return NULL;
    memset(s, 0, sizeof *s);
    if (pthread_mutex_init(&s->mu, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&s->cv, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        goto fail;
    }
    s->end = end;
    s->rc = RUNNING;
    s->rd = RD_OPEN;
    return s;
fail:
    mempipe__free(s, sizeof *s);
    return NULL;
}

/* Appends a step with a copy of data; on error the script is unchanged. */
static int add(mempipe_script *s, enum kind kind, const void *data, size_t len,
               int err)
{
    struct step *st;
    if (s->nsteps == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        struct step *v;
        if (cap > ((size_t)-1) / sizeof *v)
            return -ENOMEM;
        v = mempipe__alloc(cap * sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        if (s->nsteps)
            memcpy(v, s->steps, s->nsteps * sizeof *v);
        mempipe__free(s->steps, s->cap * sizeof *v);
        s->steps = v;
        s->cap = cap;
    }
    st = &s->steps[s->nsteps];
    st->kind = kind;
    st->err = err;
    st->len = len;
    st->data = NULL;
    if (len > 0) {
        st->data = mempipe__alloc(len);
        if (st->data == NULL)
            return -ENOMEM;
        memcpy(st->data, data, len);
    }
    s->nsteps++;
    return 0;
}

/*
 * Adds a step after the checks every builder shares: refused is the set of
 * SAW_ bits after which this step could never play, marks the bits it sets.
 */
static int add_step(mempipe_script *s, enum kind kind, unsigned refused,
                    unsigned marks, const void *data, size_t len, int err)
{
    int rc;
    if (s == NULL || (data == NULL && len > 0))
        return -EINVAL;
    if (s->started)
        return -EBUSY;
    if (s->saw & refused)
        return -EINVAL;
    if ((rc = add(s, kind, data, len, err)) == 0)
        s->saw |= marks;
    return rc;
}

int mempipe_script_expect(mempipe_script *s, const void *data, size_t len)
{
    return add_step(s, EXPECT, SAW_CLOSE | SAW_EOF, 0, data, len, 0);
}

int mempipe_script_send(mempipe_script *s, const void *data, size_t len)
{
    return add_step(s, SEND, SAW_CLOSE | SAW_SHUTDOWN, 0, data, len, 0);
}

int mempipe_script_fail(mempipe_script *s, int err)
{
    /* What mempipe_close_with_error() accepts. */
    if (err >= 0 || err < -4095 || err == -EAGAIN)
        return -EINVAL;
    return add_step(s, FAIL, SAW_CLOSE, SAW_CLOSE, NULL, 0, err);
}

int mempipe_script_shutdown(mempipe_script *s)
{
    return add_step(s, SHUTDOWN, SAW_CLOSE | SAW_SHUTDOWN, SAW_SHUTDOWN, NULL,
                    0, 0);
}

int mempipe_script_close(mempipe_script *s)
{
    return add_step(s, CLOSE, SAW_CLOSE, SAW_CLOSE, NULL, 0, 0);
}

int mempipe_script_expect_eof(mempipe_script *s)
{
    return add_step(s, EXPECT_EOF, SAW_CLOSE | SAW_EOF, SAW_EOF, NULL, 0, 0);
}

/* ---- messages ---------------------------------------------------------- */

/* Appends printf-style to s->msg (truncating, always terminated). */
static void say(mempipe_script *s, const char *fmt, ...)
{
    size_t used = strlen(s->msg);
    va_list ap;
    if (used + 1 >= sizeof s->msg)
        return;
    va_start(ap, fmt);
    vsnprintf(s->msg + used, sizeof s->msg - used, fmt, ap);
    va_end(ap);
}

/* Up to WINDOW bytes as hex, then as text in quotes ('.' if unprintable). */
static void say_bytes(mempipe_script *s, const unsigned char *p, size_t n)
{
    char text[WINDOW + 1];
    if (n > WINDOW)
        n = WINDOW;
    if (n == 0) {
        say(s, "nothing");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        say(s, "%02x ", p[i]);
        text[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '.';
    }
    text[n] = '\0';
    say(s, "\"%s\"", text);
}

static void say_step(mempipe_script *s, size_t i)
{
    const struct step *st = &s->steps[i];
    say(s, "step %zu of %zu (", i + 1, s->nsteps);
    switch (st->kind) {
    case EXPECT:
        say(s, "expect %zu bytes)", st->len);
        break;
    case SEND:
        say(s, "send %zu bytes)", st->len);
        break;
    case FAIL:
        say(s, "fail with %d: %s)", st->err, mempipe_strerror(st->err));
        break;
    case SHUTDOWN:
        say(s, "shutdown)");
        break;
    case CLOSE:
        say(s, "close)");
        break;
    case EXPECT_EOF:
        say(s, "expect EOF)");
        break;
    }
}

/* "the step" for a step, "after the script (...)" past the last one. */
static void say_where(mempipe_script *s)
{
    if (s->cur < s->nsteps)
        say_step(s, s->cur);
    else
        say(s, "after the script (all %zu steps done)", s->nsteps);
}

/*
 * The bytes that did not match: the window we hold, topped up from the pipe
 * without waiting (best effort, for a fuller message), so that the code
 * under test's next bytes show too.
 */
static void say_got(mempipe_script *s, const unsigned char *p, size_t n)
{
    unsigned char w[WINDOW];
    if (n > WINDOW)
        n = WINDOW;
    memcpy(w, p, n);
    while (n < WINDOW && s->end != NULL) {
        ssize_t r = mempipe_poll_read(s->end, w + n, WINDOW - n, NULL);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    say_bytes(s, w, n);
}

static int mismatch(mempipe_script *s, const struct step *st, size_t at,
                    const unsigned char *got, size_t n)
{
    size_t left = st->len - at;
    say_step(s, s->cur);
    say(s, ": mismatch at byte %zu of the step, byte %llu of the stream: ", at,
        s->rx);
    say(s, "expected ");
    say_bytes(s, st->data + at, left);
    say(s, ", got ");
    say_got(s, got, n);
    return -EPROTO;
}

/* The code under test stopped (EOF, a closed reading side, an error) while
 * steps are left. */
static int leftover(mempipe_script *s, const char *what, int err)
{
    say(s, "script has %zu steps left: next is ", s->nsteps - s->cur);
    say_step(s, s->cur);
    say(s, ", %zu bytes of it done; but the code under test %s", s->pos, what);
    if (err < 0)
        say(s, " (%d: %s)", err, mempipe_strerror(err));
    say(s, " at byte %llu of the stream", s->rx);
    return err == -EBADF ? -EBADF : -EPROTO;
}

static int read_failed(mempipe_script *s)
{
    if (s->rd == 0)
        return leftover(s, "closed its writing side (EOF)", 0);
    return leftover(s, "made reading fail", s->rd);
}

/* ---- playing ----------------------------------------------------------- */

/* Matches n bytes that arrived against the current expect step. */
static int match(mempipe_script *s, const struct step *st,
                 const unsigned char *got, size_t n, size_t window)
{
    const unsigned char *want = st->data + s->pos;
    if (memcmp(want, got, n) != 0) {
        size_t i = 0;
        while (want[i] == got[i])
            i++;
        s->pos += i;
        s->rx += i;
        return mismatch(s, st, s->pos, got + i, window - i);
    }
    s->pos += n;
    s->rx += n;
    return 0;
}

static int play_expect(mempipe_script *s, const struct step *st,
                       const mempipe_waker *w)
{
    unsigned char buf[CHUNK];
    while (s->pos < st->len) {
        size_t need = st->len - s->pos;
        ssize_t n;
        int rc;
        if (s->ra_len > 0) {
            /* Read-ahead bytes first: they came before anything unread. */
            size_t take = need < s->ra_len ? need : s->ra_len;
            rc = match(s, st, s->ra + s->ra_off, take, s->ra_len);
            if (rc < 0)
                return rc;
            s->ra_off += take;
            s->ra_len -= take;
            continue;
        }
        if (s->rd != RD_OPEN)
            return read_failed(s);
        /* No more than this step needs: later bytes stay in the pipe. */
        n = mempipe_poll_read(s->end, buf, need < CHUNK ? need : CHUNK, w);
        if (n == -EAGAIN)
            return -EAGAIN;
        if (n <= 0) {
            s->rd = (int)n;
            return read_failed(s);
        }
        rc = match(s, st, buf, (size_t)n, (size_t)n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * Reads whatever the code under test wrote into the read-ahead buffer, while
 * a send is blocked. Returns 1 if bytes came, 0 if none can now (the waker
 * is stored, or the incoming direction ended), -ENOMEM.
 */
static int read_ahead(mempipe_script *s, const mempipe_waker *w)
{
    ssize_t n;
    if (s->rd != RD_OPEN)
        return 0;
    if (s->ra_off > 0) {
        memmove(s->ra, s->ra + s->ra_off, s->ra_len);
        s->ra_off = 0;
    }
    if (s->ra_cap - s->ra_len < RA_MIN) {
        size_t cap = s->ra_cap ? 2 * s->ra_cap : 4 * RA_MIN;
        unsigned char *v;
        if (cap < s->ra_cap || (v = mempipe__alloc(cap)) == NULL) {
            say(s, "out of memory for the read-ahead buffer (%zu bytes held)",
                s->ra_len);
            return -ENOMEM;
        }
        if (s->ra_len)
            memcpy(v, s->ra, s->ra_len);
        mempipe__free(s->ra, s->ra_cap);
        s->ra = v;
        s->ra_cap = cap;
    }
    n = mempipe_poll_read(s->end, s->ra + s->ra_len, s->ra_cap - s->ra_len, w);
    if (n > 0) {
        s->ra_len += (size_t)n;
        return 1;
    }
    if (n != -EAGAIN)
        s->rd = (int)n; /* reported by the step that needs these bytes */
    return 0;
}

static int play_send(mempipe_script *s, const struct step *st,
                     const mempipe_waker *w)
{
    while (s->pos < st->len) {
        ssize_t n =
            mempipe_poll_write(s->end, st->data + s->pos, st->len - s->pos, w);
        int rc;
        if (n > 0) {
            s->pos += (size_t)n;
            continue;
        }
        if (n == -ENOMEM || n == -EBADF) { /* ours, not the peer's doing */
            say_step(s, s->cur);
            say(s, ": %s after %zu bytes", mempipe_strerror((int)n), s->pos);
            return (int)n;
        }
        if (n != -EAGAIN)
            return leftover(s, "closed its reading side", (int)n);
        /* Blocked: drain the other direction so that a code under test
         * blocked writing to us can go on and read. Both wakers are now
         * stored; either direction moving wakes us. */
        rc = read_ahead(s, w);
        if (rc <= 0)
            return rc < 0 ? rc : -EAGAIN;
    }
    return 0;
}

/* Reads up to EOF: for an expect_eof step, and after the script. */
static int play_eof(mempipe_script *s, const mempipe_waker *w)
{
    unsigned char buf[WINDOW];
    const unsigned char *got = buf;
    size_t n = 0;
    if (s->ra_len > 0) {
        got = s->ra + s->ra_off;
        n = s->ra_len;
    } else if (s->rd == RD_OPEN) {
        ssize_t r = mempipe_poll_read(s->end, buf, sizeof buf, w);
        if (r == -EAGAIN)
            return -EAGAIN;
        if (r > 0)
            n = (size_t)r;
        else
            s->rd = (int)r;
    }
    if (n > 0) {
        say_where(s);
        say(s, ": got bytes before EOF at byte %llu of the stream: ", s->rx);
        say_got(s, got, n);
        return -EPROTO;
    }
    if (s->rd < 0) {
        say_where(s);
        say(s,
            ": reading failed with %d (%s) at byte %llu of the stream, "
            "instead of EOF",
            s->rd, mempipe_strerror(s->rd), s->rx);
        return s->rd == -EBADF ? -EBADF : -EPROTO;
    }
    return 0;
}

/* The end goes with the error: the code under test reads the bytes sent
 * so far, then err. The builder checked err as close_with_error does, so
 * the call cannot refuse it. */
static int play_fail(mempipe_script *s, const struct step *st)
{
    int rc = mempipe_close_with_error(s->end, st->err);
    if (rc == 0)
        s->end = NULL;
    return rc;
}

static int play(mempipe_script *s, const mempipe_waker *w)
{
    for (; s->cur < s->nsteps; s->cur++, s->pos = 0) {
        const struct step *st = &s->steps[s->cur];
        int rc = 0;
        switch (st->kind) {
        case EXPECT:
            rc = play_expect(s, st, w);
            break;
        case SEND:
            rc = play_send(s, st, w);
            break;
        case EXPECT_EOF:
            rc = play_eof(s, w);
            break;
        case SHUTDOWN:
            rc = mempipe_shutdown(s->end);
            break;
        case CLOSE:
            mempipe_close(s->end);
            s->end = NULL;
            break;
        case FAIL:
            rc = play_fail(s, st);
            break;
        }
        if (rc != 0)
            return rc;
    }
    /* The last step closed the end: nothing more to read. */
    return s->end == NULL ? 0 : play_eof(s, w);
}

int mempipe_script_poll(mempipe_script *s, const mempipe_waker *w)
{
    int rc;
    if (s == NULL || (w != NULL && w->wake == NULL))
        return -EINVAL;
    s->started = 1;
    if (s->rc != RUNNING)
        return s->rc;
    rc = play(s, w);
    if (rc == -EAGAIN)
        return rc;
    if (rc < 0 && s->msg[0] == '\0') {
        say_where(s);
        say(s, ": %d (%s)", rc, mempipe_strerror(rc));
    }
    s->rc = rc;
    return rc;
}

static void script_wake(void *ctx)
{
    mempipe_script *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->seq++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int mempipe_script_run(mempipe_script *s)
{
    mempipe_waker w = {script_wake, s};
    if (s == NULL)
        return -EINVAL;
    for (;;) {
        unsigned seen;
        int rc;
        /* seq is read before the poll: a wake that comes after the poll
         * stored the waker (even before we sleep) changes it. */
        pthread_mutex_lock(&s->mu);
        seen = s->seq;
        pthread_mutex_unlock(&s->mu);
        rc = mempipe_script_poll(s, &w);
        if (rc != -EAGAIN)
            return rc;
        pthread_mutex_lock(&s->mu);
        while (s->seq == seen)
            pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
    }
}

const char *mempipe_script_error(const mempipe_script *s)
{
    if (s == NULL || s->msg[0] == '\0')
        return NULL;
    return s->msg;
}

void mempipe_script_free(mempipe_script *s)
{
    if (s == NULL)
        return;
    /* First the end: once its close returns no waker of ours runs, so the
     * parker can go. */
    mempipe_close(s->end);
    for (size_t i = 0; i < s->nsteps; i++)
        mempipe__free(s->steps[i].data, s->steps[i].len);
    mempipe__free(s->steps, s->cap * sizeof *s->steps);
    mempipe__free(s->ra, s->ra_cap);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    mempipe__free(s, sizeof *s);
}
