/* SPDX-License-Identifier: MIT */
/*
 * The consumer project's own program named hello, as many projects have:
 * mempipe, built inside this project, must not take the name (its examples
 * are mempipe_example_<name> there).
 */
#include <stdio.h>

int main(void)
{
    printf("hello from the project that uses mempipe\n");
    return 0;
}
