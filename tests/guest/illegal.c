/* Executes an illegal instruction (the all-zero word): Linux kills it with SIGILL. */
#include <stdio.h>

int main(void) {
    printf("before\n");
    fflush(stdout);
    __asm__ volatile(".word 0x00000000");
    printf("after\n");
    return 0;
}
