/* Stores to an unmapped address (16): Linux kills it with SIGSEGV. */
#include <stdio.h>

int main(void) {
    printf("before\n");
    fflush(stdout);
    __asm__ volatile("sw %0, 0(%1)" : : "r"(1), "r"(16L) : "memory");
    printf("after\n");
    return 0;
}
