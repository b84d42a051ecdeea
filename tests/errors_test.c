/* SPDX-License-Identifier: MIT */
/*
 * SPEC.md R31: mempipe_strerror names every code the library returns, in
 * both signs, and answers something for every other int; mempipe_version
 * matches the version macros. The headers and docs are held to the table in
 * src/err.c: every code a public header documents has a message there, and
 * every message the docs quote is the table's, word for word.
 */
#include "testutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every code include/mempipe.h, the adapters' headers and API.md name as a
 * return value. */
static const int used_codes[] = {
    EAGAIN, EPIPE,  EINVAL, EBADF,  ENOMEM, ETIMEDOUT, ECONNRESET, EBUSY,
    EMFILE, ENFILE, ENODEV, EEXIST, EIO,    ENOSYS,    EPROTO,
};
#define NUSED (int)(sizeof used_codes / sizeof used_codes[0])

static void expect_message(int code)
{
    const char *m = mempipe_strerror(code);
    if (m == NULL)
        fail_msg("mempipe_strerror(%d) is NULL", code);
    if (m[0] == '\0')
        fail_msg("mempipe_strerror(%d) is empty", code);
}

static void test_R31_every_used_code_has_a_message(void **state)
{
    (void)state;
    const char *unknown = mempipe_strerror(-123456);
    for (int i = 0; i < NUSED; i++) {
        int c = used_codes[i];
        expect_message(-c);
        expect_message(c);
        /* Both signs name the same error. */
        assert_string_equal(mempipe_strerror(-c), mempipe_strerror(c));
        /* A real name, not the fallback for unknown codes. */
        if (strcmp(mempipe_strerror(-c), unknown) == 0)
            fail_msg("code -%d has only the unknown-code message", c);
    }
}

static void test_R31_used_codes_have_distinct_messages(void **state)
{
    (void)state;
    for (int i = 0; i < NUSED; i++)
        for (int j = i + 1; j < NUSED; j++)
            if (strcmp(mempipe_strerror(-used_codes[i]),
                       mempipe_strerror(-used_codes[j])) == 0)
                fail_msg("codes %d and %d share the message \"%s\"",
                         used_codes[i], used_codes[j],
                         mempipe_strerror(-used_codes[i]));
}

static void test_R31_epipe_names_a_broken_pipe(void **state)
{
    (void)state;
    const char *m = mempipe_strerror(-EPIPE);
    assert_non_null(m);
    assert_non_null(strstr(m, "broken pipe"));
}

static void test_R31_zero_has_a_message(void **state)
{
    (void)state;
    expect_message(0);
}

static void test_R31_unknown_codes_have_a_message(void **state)
{
    (void)state;
    static const int odd[] = {
        INT_MIN, INT_MIN + 1, -INT_MAX, INT_MAX, -4096,    4096,
        -4095,   4095,        -9999,    9999,    -1000000, 1000000,
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        expect_message(odd[i]);
    /* Every small code of either sign, known or not. */
    for (int c = -5000; c <= 5000; c++)
        expect_message(c);
    /* INT_MIN has no positive form: it must not be taken for any code. */
    assert_string_equal(mempipe_strerror(-123456), mempipe_strerror(INT_MIN));
}

/* The codes the library returns in practice map to the table. */
static void test_R31_codes_returned_by_calls_have_messages(void **state)
{
    (void)state;
    mempipe *r, *w;
    unsigned char c;
    assert_rc(0, mempipe_simplex(1, &r, &w));
    ssize_t got[] = {
        mempipe_poll_read(r, &c, 1, NULL),    /* -EAGAIN */
        mempipe_poll_read(w, &c, 1, NULL),    /* -EBADF */
        mempipe_poll_read(NULL, &c, 1, NULL), /* -EINVAL */
    };
    assert_rc(-EAGAIN, got[0]);
    assert_rc(-EBADF, got[1]);
    assert_rc(-EINVAL, got[2]);
    mempipe_close(r);
    ssize_t epipe = mempipe_poll_write(w, "x", 1, NULL);
    assert_rc(-EPIPE, epipe);
    mempipe_close(w);
    assert_rc(0, mempipe_duplex(1, &r, &w));
    int busy = mempipe_set_allocator(NULL, NULL);
    assert_rc(-EBUSY, busy);
    mempipe_close(r);
    mempipe_close(w);
    const char *unknown = mempipe_strerror(-123456);
    long long codes[] = {got[0], got[1], got[2], epipe, busy};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        expect_message((int)codes[i]);
        assert_true(strcmp(mempipe_strerror((int)codes[i]), unknown) != 0);
    }
}

/* ---- the docs against the table ---------------------------------------- */

#ifndef MEMPIPE_SOURCE_DIR
#error "tests/CMakeLists.txt passes MEMPIPE_SOURCE_DIR (the source tree)"
#endif

/*
 * Error names a header may document, with their values. A header that
 * documents a code missing here fails the test: add the code here and its
 * message to src/err.c.
 */
static const struct {
    const char *name;
    int code;
} names[] = {
    {"EAGAIN", EAGAIN},
    {"EPIPE", EPIPE},
    {"EINVAL", EINVAL},
    {"EBADF", EBADF},
    {"ENOMEM", ENOMEM},
    {"ETIMEDOUT", ETIMEDOUT},
    {"EBUSY", EBUSY},
    {"ECONNRESET", ECONNRESET},
    {"ENOSYS", ENOSYS},
    {"EMFILE", EMFILE},
    {"ENFILE", ENFILE},
    {"EEXIST", EEXIST},
    {"EIO", EIO},
    {"ENODEV", ENODEV},
    {"EPROTO", EPROTO},
    {"ENOTSOCK", ENOTSOCK},
    {"EPROTOTYPE", EPROTOTYPE},
    {"ENOTCONN", ENOTCONN},
    {"EOPNOTSUPP", EOPNOTSUPP},
};

/* The whole file, NUL-terminated; fails the test if it cannot be read. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/*
 * The text as a reader sees it: comment markers at the start of each line
 * (a slash-star, a star, two slashes) and comment ends dropped, lines
 * joined, every run of white space one blank. Markdown needs nothing more.
 */
static char *prose(const char *text)
{
    char *out = malloc(strlen(text) + 2);
    assert_non_null(out);
    size_t o = 0;
    const char *p = text;
    while (*p != '\0') {
        const char *eol = strchr(p, '\n');
        const char *end = eol != NULL ? eol : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p >= 2 &&
            (strncmp(p, "/*", 2) == 0 || strncmp(p, "//", 2) == 0))
            p += 2;
        else if (p < end && *p == '*' && (end - p == 1 || p[1] != '/'))
            p++;
        for (; p < end; p++) {
            if (end - p >= 2 && strncmp(p, "*/", 2) == 0) {
                p++;
                continue;
            }
            bool blank = *p == ' ' || *p == '\t' || *p == '\r';
            if (blank && (o == 0 || out[o - 1] == ' '))
                continue;
            out[o++] = blank ? ' ' : *p;
        }
        if (o > 0 && out[o - 1] != ' ')
            out[o++] = ' ';
        p = eol != NULL ? eol + 1 : end;
    }
    out[o] = '\0';
    return out;
}

/* Calls fn(path) for the headers (headers_only) or every doc file. */
static void for_each_doc(bool headers_only, void (*fn)(const char *path))
{
    char path[4096];
    snprintf(path, sizeof path, "%s/include/mempipe.h", MEMPIPE_SOURCE_DIR);
    fn(path);
    static const char *const dirs[] = {"include/mempipe", "docs"};
    for (size_t i = 0; i < (headers_only ? 1u : 2u); i++) {
        snprintf(path, sizeof path, "%s/%s", MEMPIPE_SOURCE_DIR, dirs[i]);
        DIR *d = opendir(path);
        if (d == NULL)
            fail_msg("cannot open the folder %s", path);
        const char *ext = i == 0 ? ".h" : ".md";
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            size_t n = strlen(e->d_name);
            if (n <= strlen(ext) ||
                strcmp(e->d_name + n - strlen(ext), ext) != 0)
                continue;
            snprintf(path, sizeof path, "%s/%s/%s", MEMPIPE_SOURCE_DIR, dirs[i],
                     e->d_name);
            fn(path);
        }
        closedir(d);
    }
    if (!headers_only) {
        snprintf(path, sizeof path, "%s/README.md", MEMPIPE_SOURCE_DIR);
        fn(path);
    }
}

static int documented; /* codes found in the headers */

static void check_documented_codes(const char *path)
{
    char *text = slurp(path);
    const char *unknown = mempipe_strerror(-123456);
    for (const char *p = text; (p = strstr(p, "-E")) != NULL; p++) {
        if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
            continue;
        size_t n = 1;
        while (isupper((unsigned char)p[1 + n]) ||
               isdigit((unsigned char)p[1 + n]))
            n++;
        if (n < 3)
            continue;
        int code = 0;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strlen(names[i].name) == n &&
                strncmp(names[i].name, p + 1, n) == 0)
                code = names[i].code;
        if (code == 0)
            fail_msg("%s documents -%.*s, which this test does not know: add "
                     "it to names[] here and its message to src/err.c",
                     path, (int)n, p + 1);
        if (strcmp(mempipe_strerror(-code), unknown) == 0)
            fail_msg("%s documents -%.*s, but mempipe_strerror() says \"%s\" "
                     "for it: add its message to src/err.c",
                     path, (int)n, p + 1, unknown);
        documented++;
    }
    free(text);
}

/* F (issue 9): every code a public call documents has a real message. */
static void test_R31_every_documented_code_has_a_message(void **state)
{
    (void)state;
    documented = 0;
    for_each_doc(true, check_documented_codes);
    /* The scan found the headers' codes, not nothing. */
    if (documented < 20)
        fail_msg("only %d documented codes found in the headers", documented);
}

static int quoted; /* table messages found in the docs */

/*
 * Each message of the table is looked for by its leading words: up to its
 * colon ("broken pipe:"), or, for a message without one, the whole message
 * in double quotes. Wherever the docs have those words, the rest must be
 * the table's text exactly.
 */
static void check_quoted_messages(const char *path)
{
    char *raw = slurp(path);
    char *text = prose(raw);
    free(raw);
    const char *unknown = mempipe_strerror(-123456);
    for (int c = 0; c <= 4096; c++) {
        const char *msg = c == 4096 ? unknown : mempipe_strerror(-c);
        if (c < 4096 && c > 0 && strcmp(msg, unknown) == 0)
            continue;
        char key[256];
        const char *colon = strchr(msg, ':');
        if (colon != NULL)
            snprintf(key, sizeof key, "%.*s", (int)(colon + 1 - msg), msg);
        else
            snprintf(key, sizeof key, "\"%s", msg);
        for (const char *p = text; (p = strstr(p, key)) != NULL; p++) {
            if (p > text && isalpha((unsigned char)p[-1]))
                continue;
            const char *want = colon != NULL ? msg : key;
            size_t n = strlen(want);
            bool same =
                strncmp(p, want, n) == 0 && (colon != NULL || p[n] == '"');
            if (!same)
                fail_msg("%s quotes the message of code %d as\n  \"%.*s\"\n"
                         "but src/err.c says\n  \"%s\"",
                         path, c, (int)(n + 20), p, msg);
            quoted++;
        }
    }
    free(text);
}

/* E (issue 15): the docs quote mempipe_strerror's texts, not their own. */
static void test_R31_docs_quote_the_table_messages(void **state)
{
    (void)state;
    quoted = 0;
    for_each_doc(false, check_quoted_messages);
    /* At least the README's demo output and the header's example. */
    if (quoted < 2)
        fail_msg("only %d quoted messages found in the docs", quoted);
}

static void test_R31_version_matches_macros(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", MEMPIPE_VERSION_MAJOR,
             MEMPIPE_VERSION_MINOR, MEMPIPE_VERSION_PATCH);
    const char *v = mempipe_version();
    assert_non_null(v);
    assert_string_equal(want, v);
    /* A static string: the same one on every call. */
    assert_ptr_equal(v, mempipe_version());
}

/* mempipe_version_number() and MEMPIPE_VERSION_HEX agree with the three
 * macros, and so does mempipe_version()'s string. */
static void test_version_number_matches_macros(void **state)
{
    (void)state;
    unsigned want = ((unsigned)MEMPIPE_VERSION_MAJOR << 16) |
                    ((unsigned)MEMPIPE_VERSION_MINOR << 8) |
                    (unsigned)MEMPIPE_VERSION_PATCH;
    assert_int_equal(want, MEMPIPE_VERSION_HEX);
    assert_int_equal(want, mempipe_version_number());
    unsigned major, minor, patch;
    char end;
    assert_int_equal(3, sscanf(mempipe_version(), "%u.%u.%u%c", &major, &minor,
                               &patch, &end));
    assert_int_equal(MEMPIPE_VERSION_MAJOR, major);
    assert_int_equal(MEMPIPE_VERSION_MINOR, minor);
    assert_int_equal(MEMPIPE_VERSION_PATCH, patch);
    assert_int_equal(want, (major << 16) | (minor << 8) | patch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R31_every_used_code_has_a_message),
        cmocka_unit_test(test_R31_used_codes_have_distinct_messages),
        cmocka_unit_test(test_R31_epipe_names_a_broken_pipe),
        cmocka_unit_test(test_R31_zero_has_a_message),
        cmocka_unit_test(test_R31_unknown_codes_have_a_message),
        cmocka_unit_test(test_R31_codes_returned_by_calls_have_messages),
        cmocka_unit_test(test_R31_version_matches_macros),
        cmocka_unit_test(test_R31_every_documented_code_has_a_message),
        cmocka_unit_test(test_R31_docs_quote_the_table_messages),
        cmocka_unit_test(test_version_number_matches_macros),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
