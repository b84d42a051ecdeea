/* SPDX-License-Identifier: MIT */
/*
 * SPEC.md R31: mempipe_strerror names every code the library returns, in
 * both signs, and answers something for every other int; mempipe_version
 * matches the version macros.
 */
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* Every code include/mempipe.h and API.md name as a return value. */
static const int used_codes[] = {
    EAGAIN, EPIPE, EINVAL, EBADF, ENOMEM, ETIMEDOUT, ECONNRESET, EBUSY,
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
        cmocka_unit_test(test_version_number_matches_macros),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
