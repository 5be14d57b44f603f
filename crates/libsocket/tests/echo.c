/* Exercises the socket library as an unmodified C program would: TCP
 * through a forked child (blocking connect), a non-blocking connect
 * completed with poll and SO_ERROR, a refused connect, UDP with
 * sendto/recvfrom, connect/send/recv, MSG_TRUNC and FIONREAD, an AF_UNIX
 * pair left to the kernel, and an option the stack does not have.
 * Prints "ALL OK" at the end; any failure exits 1 naming the check. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAILED line %d: %s (errno %d %s)\n", __LINE__, #c, errno, strerror(errno)); exit(1); } } while (0)

#define TOTAL (1 << 20)

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + (i >> 10)); }

static struct sockaddr_in loopback(unsigned short port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int tcp_listener(unsigned short *port) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(l >= 0);
    int one = 1;
    CHECK(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
    struct sockaddr_in a = loopback(0);
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(l, 8) == 0);
    socklen_t len = sizeof a;
    CHECK(getsockname(l, (struct sockaddr *)&a, &len) == 0);
    CHECK(len == sizeof a && a.sin_family == AF_INET && a.sin_port != 0);
    *port = ntohs(a.sin_port);
    int acc = 0; len = sizeof acc;
    CHECK(getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc == 1);
    return l;
}

/* The child: blocking connect, then a poll loop sending TOTAL bytes and
 * reading the echo back, shutting its sending side when done. */
static int client(int listener, unsigned short port) {
    /* The inherited listener is still the stack's: a control call from
     * the child (its own control connection) names it. */
    struct sockaddr_in ln;
    socklen_t ll = sizeof ln;
    CHECK(getsockname(listener, (struct sockaddr *)&ln, &ll) == 0 && ntohs(ln.sin_port) == port);
    CHECK(close(listener) == 0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = loopback(port);
    CHECK(connect(s, (struct sockaddr *)&a, sizeof a) == 0);
    int one = 1;
    CHECK(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
    CHECK(fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) == 0);
    static unsigned char out[65536], in[65536];
    size_t sent = 0, got = 0;
    int shut = 0;
    while (got < TOTAL) {
        struct pollfd p = { s, POLLIN | (sent < TOTAL ? POLLOUT : 0), 0 };
        CHECK(poll(&p, 1, 20000) == 1);
        if (p.revents & POLLOUT) {
            size_t n = TOTAL - sent < sizeof out ? TOTAL - sent : sizeof out;
            for (size_t i = 0; i < n; i++) out[i] = pattern(sent + i);
            ssize_t w = send(s, out, n, MSG_NOSIGNAL);
            CHECK(w > 0 || errno == EAGAIN);
            if (w > 0) sent += (size_t)w;
        }
        if (sent == TOTAL && !shut) { CHECK(shutdown(s, SHUT_WR) == 0); shut = 1; }
        if (p.revents & (POLLIN | POLLHUP)) {
            ssize_t r = recv(s, in, sizeof in, 0);
            CHECK(r > 0 || (r < 0 && errno == EAGAIN));
            for (ssize_t i = 0; i < r; i++) CHECK(in[i] == pattern(got + (size_t)i));
            if (r > 0) got += (size_t)r;
        }
    }
    char b;
    CHECK(fcntl(s, F_SETFL, 0) == 0);
    CHECK(recv(s, &b, 1, 0) == 0); /* the server's FIN */
    CHECK(close(s) == 0);
    return 0;
}

static void tcp_echo_with_fork(void) {
    unsigned short port;
    int l = tcp_listener(&port);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(client(l, port));
    struct pollfd p = { l, POLLIN, 0 };
    CHECK(poll(&p, 1, 20000) == 1 && (p.revents & POLLIN));
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    int c = accept(l, (struct sockaddr *)&peer, &len);
    CHECK(c >= 0);
    CHECK(peer.sin_family == AF_INET && peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    struct sockaddr_in pn; socklen_t pl = sizeof pn;
    CHECK(getpeername(c, (struct sockaddr *)&pn, &pl) == 0 && pn.sin_port == peer.sin_port);
    static unsigned char buf[65536];
    size_t total = 0;
    for (;;) {
        ssize_t r = recv(c, buf, sizeof buf, 0);
        CHECK(r >= 0);
        if (r == 0) break;
        total += (size_t)r;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = send(c, buf + off, (size_t)(r - off), 0);
            CHECK(w > 0);
            off += w;
        }
    }
    CHECK(total == TOTAL);
    CHECK(close(c) == 0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("tcp fork echo ok %zu\n", total);

    /* Non-blocking connect: EINPROGRESS, writable, SO_ERROR 0. */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = loopback(port);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    CHECK(r == 0 || errno == EINPROGRESS);
    struct pollfd q = { s, POLLOUT, 0 };
    CHECK(poll(&q, 1, 20000) == 1);
    int err = -1; len = sizeof err;
    CHECK(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0);
    int ty = 0; len = sizeof ty;
    CHECK(getsockopt(s, SOL_SOCKET, SO_TYPE, &ty, &len) == 0 && ty == SOCK_STREAM);
    CHECK(poll(&p, 1, 20000) == 1);
    c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    CHECK(c >= 0);
    CHECK(fcntl(c, F_GETFL) & O_NONBLOCK);
    CHECK(send(s, "ping", 4, 0) == 4);
    struct pollfd w = { c, POLLIN, 0 };
    CHECK(poll(&w, 1, 20000) == 1);
    char b4[8];
    CHECK(recv(c, b4, sizeof b4, 0) == 4 && memcmp(b4, "ping", 4) == 0);
    /* dup keeps it one of ours: a name call through the copy. */
    int d = dup(c);
    CHECK(d >= 0);
    len = sizeof pn;
    CHECK(getsockname(d, (struct sockaddr *)&pn, &len) == 0 && ntohs(pn.sin_port) == port);
    CHECK(close(d) == 0 && close(c) == 0 && close(s) == 0);
    CHECK(close(l) == 0);
    printf("nonblocking connect ok\n");

    /* Refused: a port held by a socket that is bound but not listening.
     * (Not the listener just closed: the stack learns of a close when io-pkt
     * sees its end of the pair hang up, a moment after close() returns.) */
    int b = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(b >= 0);
    struct sockaddr_in ra = loopback(0);
    CHECK(bind(b, (struct sockaddr *)&ra, sizeof ra) == 0);
    len = sizeof ra;
    CHECK(getsockname(b, (struct sockaddr *)&ra, &len) == 0 && ra.sin_port != 0);
    s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(s >= 0);
    r = connect(s, (struct sockaddr *)&ra, sizeof ra);
    CHECK(r == -1 && errno == EINPROGRESS);
    q.fd = s;
    CHECK(poll(&q, 1, 20000) == 1);
    err = 0; len = sizeof err;
    CHECK(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == ECONNREFUSED);
    close(s);
    s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(s, (struct sockaddr *)&ra, sizeof ra) == -1 && errno == ECONNREFUSED);
    close(s);
    close(b);
    printf("refused ok\n");
}

static void udp_echo(void) {
    int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    CHECK(u1 >= 0 && u2 >= 0);
    struct sockaddr_in a = loopback(0);
    CHECK(bind(u1, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof a;
    CHECK(getsockname(u1, (struct sockaddr *)&a, &len) == 0 && a.sin_port != 0);
    CHECK(sendto(u2, "hello", 5, 0, (struct sockaddr *)&a, sizeof a) == 5);
    char buf[200];
    struct sockaddr_in from; len = sizeof from;
    struct pollfd p = { u1, POLLIN, 0 };
    CHECK(poll(&p, 1, 20000) == 1);
    int avail = -1;
    CHECK(ioctl(u1, FIONREAD, &avail) == 0 && avail == 5);
    CHECK(recvfrom(u1, buf, sizeof buf, 0, (struct sockaddr *)&from, &len) == 5);
    CHECK(memcmp(buf, "hello", 5) == 0 && from.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    CHECK(sendto(u1, "HELLO", 5, 0, (struct sockaddr *)&from, len) == 5);
    struct sockaddr_in back; len = sizeof back;
    CHECK(recvfrom(u2, buf, sizeof buf, 0, (struct sockaddr *)&back, &len) == 5);
    CHECK(memcmp(buf, "HELLO", 5) == 0 && back.sin_port == a.sin_port);

    /* Connected: send/recv and read/write; a datagram cut short. */
    CHECK(connect(u2, (struct sockaddr *)&a, sizeof a) == 0);
    char big[100];
    memset(big, 'x', sizeof big);
    CHECK(write(u2, big, sizeof big) == 100);
    struct iovec iov = { buf, 10 };
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_name = &from; m.msg_namelen = sizeof from;
    m.msg_iov = &iov; m.msg_iovlen = 1;
    CHECK(poll(&p, 1, 20000) == 1);
    CHECK(recvmsg(u1, &m, 0) == 10 && (m.msg_flags & MSG_TRUNC));
    CHECK(m.msg_namelen == sizeof from && from.sin_family == AF_INET);
    CHECK(send(u2, "abc", 3, 0) == 3);
    CHECK(recv(u1, buf, sizeof buf, MSG_PEEK) == 3);
    CHECK(read(u1, buf, sizeof buf) == 3 && memcmp(buf, "abc", 3) == 0);
    close(u1);
    close(u2);
    printf("udp echo ok\n");
}

static void others_left_to_kernel(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(write(sv[0], "unix", 4) == 4);
    char b[8];
    CHECK(read(sv[1], b, sizeof b) == 4 && memcmp(b, "unix", 4) == 0);
    int ty = 0; socklen_t len = sizeof ty;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_DOMAIN, &ty, &len) == 0 && ty == AF_UNIX);
    close(sv[0]); close(sv[1]);
    printf("af_unix ok\n");
}

static void unsupported_option(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    CHECK(setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo0", 4) == -1 && errno == ENOPROTOOPT);
    int prio = 3;
    CHECK(setsockopt(s, SOL_SOCKET, SO_PRIORITY, &prio, sizeof prio) == 0);
    close(s);
    printf("options ok\n");
}

/* The stack's interfaces (lo0), not the kernel's (lo). */
static void interfaces(void) {
    struct ifaddrs *list, *p;
    CHECK(getifaddrs(&list) == 0);
    int v4 = 0, v6 = 0, kernel = 0;
    for (p = list; p; p = p->ifa_next) {
        if (strcmp(p->ifa_name, "lo") == 0) kernel = 1;
        if (strcmp(p->ifa_name, "lo0") != 0 || !p->ifa_addr) continue;
        CHECK((p->ifa_flags & IFF_LOOPBACK) && (p->ifa_flags & IFF_UP) && p->ifa_netmask);
        if (p->ifa_addr->sa_family == AF_INET &&
            ((struct sockaddr_in *)p->ifa_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) v4 = 1;
        if (p->ifa_addr->sa_family == AF_INET6 &&
            IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)p->ifa_addr)->sin6_addr)) v6 = 1;
    }
    freeifaddrs(list);
    CHECK(v4 && v6 && !kernel);
    unsigned idx = if_nametoindex("lo0");
    CHECK(idx > 0);
    char name[IF_NAMESIZE];
    CHECK(if_indextoname(idx, name) && strcmp(name, "lo0") == 0);
    CHECK(if_nametoindex("nosuch0") == 0);
    struct if_nameindex *ni = if_nameindex();
    CHECK(ni && ni[0].if_name);
    if_freenameindex(ni);
    printf("interfaces ok\n");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    tcp_echo_with_fork();
    udp_echo();
    others_left_to_kernel();
    unsupported_option();
    interfaces();
    printf("ALL OK\n");
    return 0;
}
