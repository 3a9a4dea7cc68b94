/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Guest-side test helper: relays bytes between a virtio-serial port and an
 * AF_VSOCK connection, so that a host test can reach a vsock listener in the
 * guest through vsock_loopback (this machine has no vhost-vsock).
 *
 *   vsock-relay PORT-DEVICE CID VSOCK-PORT
 *
 * Exits when the vsock peer closes.  Plain libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int copy(int from, int to) {
        char buf[65536];
        ssize_t n = read(from, buf, sizeof(buf));

        if (n <= 0)
                return n == 0 || errno == EAGAIN ? (int) n : -1;
        for (ssize_t off = 0; off < n;) {
                ssize_t w = write(to, buf + off, (size_t) (n - off));
                if (w < 0) {
                        if (errno == EAGAIN || errno == EINTR) {
                                struct pollfd p = { .fd = to, .events = POLLOUT };
                                (void) poll(&p, 1, 100);
                                continue;
                        }
                        return -1;
                }
                off += w;
        }
        return (int) n;
}

int main(int argc, char **argv) {
        struct sockaddr_vm addr = { .svm_family = AF_VSOCK };
        int port, sock = -1;

        if (argc != 4) {
                fprintf(stderr, "usage: %s PORT-DEVICE CID VSOCK-PORT\n", argv[0]);
                return 2;
        }
        addr.svm_cid = (unsigned) atoi(argv[2]);
        addr.svm_port = (unsigned) atoi(argv[3]);
        port = open(argv[1], O_RDWR | O_CLOEXEC);
        if (port < 0) {
                perror(argv[1]);
                return 1;
        }
        for (int i = 0; i < 100; i++) {
                sock = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (sock >= 0 && connect(sock, (struct sockaddr *) &addr, sizeof(addr)) == 0)
                        break;
                if (sock >= 0)
                        close(sock);
                sock = -1;
                usleep(100000);
        }
        if (sock < 0) {
                perror("vsock connect");
                return 1;
        }
        printf("relaying\n");
        fflush(stdout);
        for (;;) {
                struct pollfd p[2] = { { .fd = port, .events = POLLIN }, { .fd = sock, .events = POLLIN } };

                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        return 1;
                if (p[1].revents & (POLLIN | POLLHUP)) {
                        int r = copy(sock, port);
                        if (r <= 0)
                                return 0; /* the agent closed */
                }
                if ((p[0].revents & POLLIN)) {
                        if (copy(port, sock) < 0)
                                return 1;
                } else if (p[0].revents & POLLHUP)
                        usleep(50000); /* no host on the port: EOF is not sticky, wait */
        }
}
