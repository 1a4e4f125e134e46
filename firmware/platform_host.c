/* harness.h on a hosted C library: the console is stdout, the exit status main's. */
#include <stdio.h>

#include "harness.h"

void harness_write(const char *text)
{
    fputs(text, stdout);
}
