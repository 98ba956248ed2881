/* Prints its argv, selected environment, and a few start-up facts, for the e2e tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/auxv.h>

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    const char *keys[] = {"PATH", "HOME", "GREETING", NULL};
    for (int i = 0; keys[i]; i++) {
        const char *v = getenv(keys[i]);
        printf("%s=%s\n", keys[i], v ? v : "(unset)");
    }
    char cwd[256];
    printf("cwd=%s\n", getcwd(cwd, sizeof cwd) ? cwd : "(error)");
    printf("pagesz=%lu hwcap=%#lx\n", getauxval(AT_PAGESZ), getauxval(AT_HWCAP));
    return argc > 1 && strcmp(argv[1], "fail") == 0 ? 3 : 0;
}
