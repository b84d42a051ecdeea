/* SPDX-License-Identifier: MIT */
/*
 * HTTP/2 over an in-memory pipe with nghttp2: a server thread and a client
 * talk HTTP/2 over one mempipe duplex, exactly as over a TCP connection.
 * The client sends GET /hello and a POST /echo with a body; the server
 * answers "hello" and echoes the body back. The client then closes the
 * connection with GOAWAY.
 *
 * Both modes of mempipe_nghttp2_pump(): the server blocks on its own
 * thread (NULL waker; everything it does happens in its callbacks), the
 * client runs a one-thread loop with a waker (pump, and on -EAGAIN wait
 * for the waker, then pump again), as an event loop would.
 *
 *   build: cc h2_client_server.c $(pkg-config --cflags --libs mempipe-nghttp2)
 *          -pthread
 */
#include <mempipe/nghttp2.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NV(name, value)                                                        \
    {                                                                          \
        (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1,               \
            strlen(value), NGHTTP2_NV_FLAG_NONE                                \
    }

/* A body being sent from memory: what nghttp2's data provider reads. */
struct body {
    char data[256];
    size_t len, off;
};

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf,
                         size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    (void)s, (void)id, (void)user;
    struct body *b = src->ptr;
    size_t n = b->len - b->off < length ? b->len - b->off : length;
    memcpy(buf, b->data + b->off, n);
    b->off += n;
    if (b->off == b->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- the server: one thread, blocking pump ------------------------------ */

/* Per stream: the :path, and the request body (echoed for /echo). */
struct request {
    char path[64];
    struct body body;
};

static int srv_begin_headers(nghttp2_session *s, const nghttp2_frame *f,
                             void *user)
{
    (void)user;
    if (f->hd.type == NGHTTP2_HEADERS)
        nghttp2_session_set_stream_user_data(s, f->hd.stream_id,
                                             calloc(1, sizeof(struct request)));
    return 0;
}

static int srv_header(nghttp2_session *s, const nghttp2_frame *f,
                      const uint8_t *name, size_t namelen, const uint8_t *value,
                      size_t valuelen, uint8_t flags, void *user)
{
    (void)flags, (void)user;
    struct request *r =
        nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (r != NULL && namelen == 5 && memcmp(name, ":path", 5) == 0 &&
        valuelen < sizeof r->path)
        memcpy(r->path, value, valuelen);
    return 0;
}

static int srv_data(nghttp2_session *s, uint8_t flags, int32_t id,
                    const uint8_t *data, size_t len, void *user)
{
    (void)flags, (void)user;
    struct request *r = nghttp2_session_get_stream_user_data(s, id);
    if (r == NULL || len > sizeof r->body.data - r->body.len)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* too big for this example */
    memcpy(r->body.data + r->body.len, data, len);
    r->body.len += len;
    return 0;
}

/* The whole request is in: respond (from the callback, as nghttp2 allows). */
static int srv_frame(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    (void)user;
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
        return 0;
    struct request *r =
        nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (r == NULL)
        return 0;
    if (strcmp(r->path, "/hello") == 0) {
        r->body.len = (size_t)snprintf(r->body.data, sizeof r->body.data,
                                       "hello from the server\n");
    } else if (strcmp(r->path, "/echo") != 0) {
        nghttp2_nv nv[] = {NV(":status", "404")};
        return nghttp2_submit_response(s, f->hd.stream_id, nv, 1, NULL);
    }
    nghttp2_nv nv[] = {NV(":status", "200")};
    nghttp2_data_provider prd = {{.ptr = &r->body}, read_body};
    return nghttp2_submit_response(s, f->hd.stream_id, nv, 1, &prd);
}

static int srv_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
    (void)code, (void)user;
    free(nghttp2_session_get_stream_user_data(s, id));
    return 0;
}

static void *server(void *arg)
{
    mempipe *end = arg;
    nghttp2_session_callbacks *cb;
    nghttp2_session *s;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
                                                            srv_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, srv_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, srv_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, srv_close);
    nghttp2_session_server_new(&s, cb, NULL);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100};
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, &iv, 1);

    /* Blocks until the session is over: here, the client's GOAWAY. */
    int rc = mempipe_nghttp2_pump(s, end, NULL);
    if (rc != 0)
        fprintf(stderr, "server: %s\n", mempipe_strerror(rc));
    mempipe_nghttp2_release(s);
    nghttp2_session_del(s);
    mempipe_close(end); /* as one closes a socket */
    return (void *)(intptr_t)(rc != 0);
}

/* ---- the client: one-thread loop, pump with a waker --------------------- */

struct client {
    int open; /* streams not closed yet */
    int ok;   /* responses that were as expected */
    char got[2][256];
    size_t gotlen[2];
};

static int cl_data(nghttp2_session *s, uint8_t flags, int32_t id,
                   const uint8_t *data, size_t len, void *user)
{
    (void)s, (void)flags;
    struct client *c = user;
    int i = id == 1 ? 0 : 1; /* streams 1 and 3, in submit order */
    if (len > sizeof c->got[i] - 1 - c->gotlen[i])
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(c->got[i] + c->gotlen[i], data, len);
    c->gotlen[i] += len;
    return 0;
}

static int cl_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
    (void)id;
    struct client *c = user;
    if (code == NGHTTP2_NO_ERROR)
        c->ok++;
    if (--c->open == 0) /* both answered: close the connection */
        nghttp2_session_terminate_session(s, NGHTTP2_NO_ERROR);
    return 0;
}

/* The client's waker: the loop sleeps until it is called. */
struct park {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int woken;
};

static void wake(void *ctx)
{
    struct park *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->woken = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int main(void)
{
    mempipe *client_end, *server_end;
    if (mempipe_duplex(64 * 1024, &client_end, &server_end) != 0)
        return 1;
    pthread_t th;
    pthread_create(&th, NULL, server, server_end);

    struct client c = {.open = 2};
    nghttp2_session_callbacks *cb;
    nghttp2_session *s;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, cl_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, cl_close);
    nghttp2_session_client_new(&s, cb, &c);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_nv get[] = {NV(":method", "GET"), NV(":scheme", "http"),
                        NV(":authority", "mempipe"), NV(":path", "/hello")};
    nghttp2_nv post[] = {NV(":method", "POST"), NV(":scheme", "http"),
                         NV(":authority", "mempipe"), NV(":path", "/echo")};
    struct body up = {"ping over HTTP/2 in memory\n", 27, 0};
    nghttp2_data_provider prd = {{.ptr = &up}, read_body};
    nghttp2_submit_request(s, NULL, get, 4, NULL, NULL);
    nghttp2_submit_request(s, NULL, post, 4, &prd, NULL);

    /* Pump; on -EAGAIN the waker is armed: sleep until it fires. */
    struct park p = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    mempipe_waker w = {wake, &p};
    int rc;
    while ((rc = mempipe_nghttp2_pump(s, client_end, &w)) == -EAGAIN) {
        pthread_mutex_lock(&p.mu);
        while (!p.woken)
            pthread_cond_wait(&p.cv, &p.mu);
        p.woken = 0;
        pthread_mutex_unlock(&p.mu);
    }
    if (rc != 0)
        fprintf(stderr, "client: %s\n", mempipe_strerror(rc));
    printf("GET /hello:  %s", c.got[0]);
    printf("POST /echo:  %s", c.got[1]);
    int good = rc == 0 && c.ok == 2 &&
               strcmp(c.got[0], "hello from the server\n") == 0 &&
               strcmp(c.got[1], up.data) == 0;

    mempipe_nghttp2_release(s);
    nghttp2_session_del(s);
    mempipe_close(client_end); /* no waker of p runs after this */
    void *server_failed;
    pthread_join(th, &server_failed);
    printf("%s\n", good && server_failed == NULL ? "HTTP/2 over mempipe: ok"
                                                 : "FAILED");
    return good && server_failed == NULL ? 0 : 1;
}
