/* The pod sandbox ("pause") process of the cluster tier's registry-free base image.
 * A sandbox only has to hold the pod's namespaces open: sleep until SIGTERM or SIGINT and
 * reap children (it is PID 1 when the pod shares its PID namespace).
 * Built static by scripts/k8s/node: gcc -static -O2 -o pause pause.c */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) {
    (void)sig;
    _exit(0);
}

static void on_child(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;)
        pause();
}
