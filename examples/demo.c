/* Placeholder until the demo lands. */
#include <mempipe.h>
#include <stdio.h>
int main(void)
{
    printf("mempipe %s\n", mempipe_version());
    return 0;
}
