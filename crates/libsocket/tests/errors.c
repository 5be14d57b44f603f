/* Error paths of the socket library, checked errno by errno as a C
 * program sees them: a reset connection, a non-blocking connect that
 * waits or is refused, ioctl on the stack's
 * sockets, and sendfile/splice onto UDP. One part per run, named by
 * argv[1]; prints "<part> ok" at the end, and on any failure exits 1
 * naming the line. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAILED line %d: %s (errno %d %s)\n", __LINE__, #c, errno, strerror(errno)); exit(1); } } while (0)

static struct sockaddr_in addr4(const char *ip, unsigned short port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    CHECK(inet_pton(AF_INET, ip, &a.sin_addr) == 1);
    return a;
}

static int listener(int backlog, struct sockaddr_in *a) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(l >= 0);
    *a = addr4("127.0.0.1", 0);
    CHECK(bind(l, (struct sockaddr *)a, sizeof *a) == 0);
    CHECK(listen(l, backlog) == 0);
    socklen_t len = sizeof *a;
    CHECK(getsockname(l, (struct sockaddr *)a, &len) == 0);
    return l;
}

/* A connected pair (client, server side) over the stack. */
static void connected(int *c, int *s) {
    struct sockaddr_in a;
    int l = listener(4, &a);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(*c >= 0);
    CHECK(connect(*c, (struct sockaddr *)&a, sizeof a) == 0);
    *s = accept(l, NULL, NULL);
    CHECK(*s >= 0);
    close(l);
}

static int so_error(int fd) {
    int e = -1;
    socklen_t len = sizeof e;
    CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0);
    return e;
}

static short revents(int fd, short events, int ms) {
    struct pollfd p = { fd, events, 0 };
    int n = poll(&p, 1, ms);
    CHECK(n >= 0);
    return n == 0 ? 0 : p.revents;
}

static volatile sig_atomic_t pipes;
static void on_sigpipe(int sig) { (void)sig; pipes++; }

/* The peer resets (SO_LINGER 0, then close): the data sent before is
 * read, then ECONNRESET once, then end of stream; writes fail with EPIPE
 * and SIGPIPE (none with MSG_NOSIGNAL). */
static void reset(void) {
    int c, s;
    connected(&c, &s);
    CHECK(write(s, "hello", 5) == 5);
    char buf[64];
    CHECK(revents(c, POLLIN, 10000) & POLLIN);
    CHECK(read(c, buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
    struct linger lg = { 1, 0 };
    CHECK(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    CHECK(close(s) == 0);
    /* The reset shows as a hang-up. */
    short r = revents(c, POLLIN, 10000);
    CHECK(r & (POLLIN | POLLHUP));
    errno = 0;
    CHECK(read(c, buf, sizeof buf) == -1 && errno == ECONNRESET);
    CHECK(read(c, buf, sizeof buf) == 0);
    CHECK(recv(c, buf, sizeof buf, 0) == 0);
    CHECK(so_error(c) == 0);
    signal(SIGPIPE, on_sigpipe);
    errno = 0;
    CHECK(send(c, "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    CHECK(pipes == 0);
    errno = 0;
    CHECK(write(c, "x", 1) == -1 && errno == EPIPE);
    CHECK(pipes == 1);
    close(c);

    /* A second connection: reset while data is unread and nothing was
     * read yet; recv sees the data, then the error. */
    connected(&c, &s);
    CHECK(write(s, "abc", 3) == 3);
    CHECK(revents(c, POLLIN, 10000) & POLLIN);
    CHECK(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    CHECK(close(s) == 0);
    /* Wait for the hang-up without reading. */
    for (int i = 0; i < 1000 && !(revents(c, POLLIN, 0) & POLLHUP); i++)
        usleep(10000);
    CHECK(revents(c, POLLIN, 0) & POLLHUP);
    CHECK(recv(c, buf, sizeof buf, 0) == 3 && memcmp(buf, "abc", 3) == 0);
    errno = 0;
    CHECK(recv(c, buf, sizeof buf, 0) == -1 && errno == ECONNRESET);
    CHECK(recv(c, buf, sizeof buf, 0) == 0);
    close(c);
    printf("reset ok\n");
}

/* A connect that cannot complete yet (the listener's backlog is full, so
 * its SYN goes unanswered until a place frees): the descriptor is not
 * writable, to poll nor to epoll, until the connection is established;
 * SO_ERROR says 0 meanwhile without waiting. */
static void pending(void) {
    struct sockaddr_in a;
    int l = listener(1, &a);
    int first = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(first, (struct sockaddr *)&a, sizeof a) == 0);
    /* Let the first connection reach the accept queue. */
    CHECK(revents(l, POLLIN, 10000) & POLLIN);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(s >= 0);
    int ep = epoll_create1(0);
    CHECK(ep >= 0);
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLET, .data.fd = s };
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0);
    errno = 0;
    CHECK(connect(s, (struct sockaddr *)&a, sizeof a) == -1 && errno == EINPROGRESS);
    struct epoll_event got;
    CHECK(revents(s, POLLOUT, 300) == 0);
    CHECK(epoll_wait(ep, &got, 1, 0) == 0);
    CHECK(so_error(s) == 0);
    errno = 0;
    CHECK(write(s, "early", 5) == -1 && errno == EAGAIN);
    errno = 0;
    CHECK(connect(s, (struct sockaddr *)&a, sizeof a) == -1 && errno == EALREADY);
    /* A place frees: the retransmitted SYN is answered. */
    int a1 = accept(l, NULL, NULL);
    CHECK(a1 >= 0);
    CHECK(epoll_wait(ep, &got, 1, 15000) == 1 && got.data.fd == s && (got.events & EPOLLOUT));
    short r = revents(s, POLLOUT, 0);
    CHECK((r & POLLOUT) && !(r & (POLLERR | POLLHUP)));
    CHECK(so_error(s) == 0);
    CHECK(write(s, "late", 4) == 4);
    CHECK(revents(l, POLLIN, 10000) & POLLIN);
    int a2 = accept(l, NULL, NULL);
    CHECK(a2 >= 0);
    char buf[8];
    CHECK(revents(a2, POLLIN, 10000) & POLLIN);
    CHECK(read(a2, buf, sizeof buf) == 4 && memcmp(buf, "late", 4) == 0);
    close(a2); close(a1); close(first); close(s); close(ep); close(l);
    printf("pending ok\n");
}

/* A refused non-blocking connect: POLLOUT with POLLERR and POLLHUP, as
 * the kernel's; SO_ERROR says ECONNREFUSED once, then POLLERR is gone; a
 * read without SO_ERROR fails with ECONNREFUSED. */
static void refused(void) {
    int b = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in ra = addr4("127.0.0.1", 0);
    CHECK(bind(b, (struct sockaddr *)&ra, sizeof ra) == 0);
    socklen_t len = sizeof ra;
    CHECK(getsockname(b, (struct sockaddr *)&ra, &len) == 0);
    for (int round = 0; round < 2; round++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        errno = 0;
        CHECK(connect(s, (struct sockaddr *)&ra, sizeof ra) == -1 && errno == EINPROGRESS);
        short r = revents(s, POLLOUT, 10000);
        if (!((r & POLLERR) && (r & POLLHUP)))
            fprintf(stderr, "round %d: revents 0x%x\n", round, (unsigned)r);
        CHECK((r & POLLERR) && (r & POLLHUP));
        /* The kernel's refused connect shows all three at once. On the
         * pair, closing io-pkt's end raises the error and the hang-up a
         * moment before the kernel frees the connect gate's filler, so a
         * poll in between sees POLLERR|POLLHUP alone; POLLOUT follows
         * within that close. */
        for (int i = 0; i < 1000 && !(r & POLLOUT); i++) {
            usleep(1000);
            r = revents(s, POLLOUT, 0);
        }
        CHECK((r & POLLOUT) && (r & POLLERR) && (r & POLLHUP));
        char buf[4];
        if (round == 0) {
            CHECK(so_error(s) == ECONNREFUSED);
            CHECK(so_error(s) == 0);
            CHECK(!(revents(s, POLLOUT, 0) & POLLERR));
            CHECK(read(s, buf, sizeof buf) == 0);
        } else {
            errno = 0;
            CHECK(read(s, buf, sizeof buf) == -1 && errno == ECONNREFUSED);
            CHECK(read(s, buf, sizeof buf) == 0);
        }
        close(s);
    }
    close(b);
    printf("refused ok\n");
}

static void name_req(struct ifreq *r, const char *name) {
    memset(r, 0, sizeof *r);
    strncpy(r->ifr_name, name, IFNAMSIZ - 1);
}

/* ioctl: the interface queries see the stack's lo0; the queue sizes;
 * what is not supported fails as Linux fails it. */
static void ioctls(void) {
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(u >= 0);
    /* SIOCGIFCONF: first the length, then the list. */
    struct ifconf conf = { 0 };
    CHECK(ioctl(u, SIOCGIFCONF, &conf) == 0 && conf.ifc_len > 0 && conf.ifc_len % sizeof(struct ifreq) == 0);
    struct ifreq reqs[16];
    conf.ifc_len = sizeof reqs;
    conf.ifc_req = reqs;
    CHECK(ioctl(u, SIOCGIFCONF, &conf) == 0);
    int found = 0;
    for (size_t i = 0; i < conf.ifc_len / sizeof(struct ifreq); i++) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&reqs[i].ifr_addr;
        if (strcmp(reqs[i].ifr_name, "lo0") == 0 && sin->sin_family == AF_INET
            && sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
            found = 1;
        /* The kernel's names never show. */
        CHECK(strcmp(reqs[i].ifr_name, "lo") != 0);
    }
    CHECK(found);
    struct ifreq r;
    name_req(&r, "lo0");
    CHECK(ioctl(u, SIOCGIFADDR, &r) == 0);
    CHECK(((struct sockaddr_in *)&r.ifr_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    name_req(&r, "lo0");
    CHECK(ioctl(u, SIOCGIFNETMASK, &r) == 0);
    CHECK(((struct sockaddr_in *)&r.ifr_netmask)->sin_addr.s_addr == htonl(0xff000000));
    name_req(&r, "lo0");
    CHECK(ioctl(u, SIOCGIFBRDADDR, &r) == 0 && r.ifr_broadaddr.sa_family == AF_INET);
    name_req(&r, "lo0");
    CHECK(ioctl(u, SIOCGIFFLAGS, &r) == 0);
    CHECK((r.ifr_flags & IFF_UP) && (r.ifr_flags & IFF_LOOPBACK) && !(r.ifr_flags & IFF_BROADCAST));
    name_req(&r, "lo0");
    CHECK(ioctl(u, SIOCGIFMTU, &r) == 0 && r.ifr_mtu > 1000);
    name_req(&r, "lo0");
    CHECK(ioctl(u, SIOCGIFHWADDR, &r) == 0 && r.ifr_hwaddr.sa_family == ARPHRD_LOOPBACK);
    name_req(&r, "lo0");
    CHECK(ioctl(u, SIOCGIFINDEX, &r) == 0 && r.ifr_ifindex > 0);
    int index = r.ifr_ifindex;
    CHECK((unsigned)index == if_nametoindex("lo0"));
    memset(&r, 0, sizeof r);
    r.ifr_ifindex = index;
    CHECK(ioctl(u, SIOCGIFNAME, &r) == 0 && strcmp(r.ifr_name, "lo0") == 0);
    name_req(&r, "nosuch0");
    errno = 0;
    CHECK(ioctl(u, SIOCGIFFLAGS, &r) == -1 && errno == ENODEV);
    memset(&r, 0, sizeof r);
    r.ifr_ifindex = 9999;
    errno = 0;
    CHECK(ioctl(u, SIOCGIFNAME, &r) == -1 && errno == ENODEV);

    /* UDP queues: SIOCINQ is the next datagram's payload. */
    struct sockaddr_in a = addr4("127.0.0.1", 0);
    CHECK(bind(u, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof a;
    CHECK(getsockname(u, (struct sockaddr *)&a, &len) == 0);
    int v = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(sendto(v, "12345", 5, 0, (struct sockaddr *)&a, sizeof a) == 5);
    CHECK(sendto(v, "1234567", 7, 0, (struct sockaddr *)&a, sizeof a) == 7);
    int n = -1;
    for (int i = 0; i < 1000; i++) {
        CHECK(revents(u, POLLIN, 10000) & POLLIN);
        CHECK(ioctl(u, SIOCINQ, &n) == 0);
        /* Both datagrams are there once the pair holds more than one. */
        char peek[16];
        if (recv(u, peek, sizeof peek, MSG_PEEK) == 5) break;
    }
    CHECK(n == 5);
    char buf[16];
    CHECK(recv(u, buf, sizeof buf, 0) == 5);
    CHECK(revents(u, POLLIN, 10000) & POLLIN);
    CHECK(ioctl(u, SIOCINQ, &n) == 0 && n == 7);
    CHECK(recv(u, buf, sizeof buf, 0) == 7);
    CHECK(ioctl(u, SIOCINQ, &n) == 0 && n == 0);
    CHECK(ioctl(v, SIOCOUTQ, &n) == 0 && n == 0);
    errno = 0;
    CHECK(ioctl(u, SIOCATMARK, &n) == -1 && errno == ENOTTY);
    /* The descriptor's own requests still work. */
    int on = 1;
    CHECK(ioctl(u, FIONBIO, &on) == 0);
    errno = 0;
    CHECK(recv(u, buf, sizeof buf, 0) == -1 && errno == EAGAIN);
    /* Unsupported: ENOTTY (said once on stderr), and configuration
     * changes EOPNOTSUPP. */
    for (int i = 0; i < 3; i++) {
        errno = 0;
        CHECK(ioctl(u, SIOCGSTAMP, buf) == -1 && errno == ENOTTY);
    }
    name_req(&r, "lo0");
    r.ifr_mtu = 1400;
    errno = 0;
    CHECK(ioctl(u, SIOCSIFMTU, &r) == -1 && errno == EOPNOTSUPP);
    close(u); close(v);

    /* TCP: SIOCATMARK 0, SIOCINQ the readable bytes, SIOCOUTQ what is not
     * acknowledged yet, 0 once the peer has read it all. */
    int c, s;
    connected(&c, &s);
    CHECK(ioctl(c, SIOCATMARK, &n) == 0 && n == 0);
    CHECK(write(s, "hello", 5) == 5);
    CHECK(revents(c, POLLIN, 10000) & POLLIN);
    CHECK(ioctl(c, SIOCINQ, &n) == 0 && n == 5);
    CHECK(fcntl(c, F_SETFL, O_NONBLOCK) == 0);
    static char big[65536];
    long sent = 0;
    for (int i = 0; i < 10000; i++) {
        ssize_t w = write(c, big, sizeof big);
        if (w < 0) {
            CHECK(errno == EAGAIN);
            if (revents(c, POLLOUT, 200) == 0) break;
            continue;
        }
        sent += w;
    }
    CHECK(sent > 0);
    CHECK(ioctl(c, SIOCOUTQ, &n) == 0 && n > 0);
    long got = 0;
    while (got < sent) {
        CHECK(revents(s, POLLIN, 10000) & POLLIN);
        ssize_t k = read(s, big, sizeof big);
        CHECK(k > 0);
        got += k;
    }
    for (int i = 0; i < 500; i++) {
        CHECK(ioctl(c, SIOCOUTQ, &n) == 0);
        if (n == 0) break;
        usleep(10000);
    }
    CHECK(n == 0);
    /* A listener has no queues. */
    struct sockaddr_in la;
    int l = listener(1, &la);
    errno = 0;
    CHECK(ioctl(l, SIOCINQ, &n) == -1 && errno == EINVAL);
    close(l); close(c); close(s);

    /* A kernel socket is the kernel's. */
    int sp[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
    CHECK(write(sp[0], "xyz", 3) == 3);
    CHECK(ioctl(sp[1], FIONREAD, &n) == 0 && n == 3);
    close(sp[0]); close(sp[1]);
    printf("ioctl ok\n");
}

/* sendfile and splice onto UDP: one datagram each; beyond the largest
 * datagram EMSGSIZE; splicing from UDP EINVAL. argv[2]: a scratch file. */
static void udp_sendfile(const char *path) {
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(f >= 0);
    static char data[70000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (char)(i * 31 + 7);
    CHECK(write(f, data, sizeof data) == (ssize_t)sizeof data);
    int u = socket(AF_INET, SOCK_DGRAM, 0), v = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = addr4("127.0.0.1", 0);
    CHECK(bind(u, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof a;
    CHECK(getsockname(u, (struct sockaddr *)&a, &len) == 0);
    CHECK(connect(v, (struct sockaddr *)&a, sizeof a) == 0);
    static char buf[70000];
    /* With an offset: the file position stays, the offset moves. */
    CHECK(lseek(f, 0, SEEK_SET) == 0);
    off_t off = 100;
    CHECK(sendfile(v, f, &off, 1000) == 1000 && off == 1100);
    CHECK(lseek(f, 0, SEEK_CUR) == 0);
    CHECK(revents(u, POLLIN, 10000) & POLLIN);
    CHECK(recv(u, buf, sizeof buf, 0) == 1000 && memcmp(buf, data + 100, 1000) == 0);
    /* Without: the position moves. */
    CHECK(lseek(f, 5000, SEEK_SET) == 5000);
    CHECK(sendfile(v, f, NULL, 2000) == 2000);
    CHECK(lseek(f, 0, SEEK_CUR) == 7000);
    CHECK(revents(u, POLLIN, 10000) & POLLIN);
    CHECK(recv(u, buf, sizeof buf, 0) == 2000 && memcmp(buf, data + 5000, 2000) == 0);
    /* Short at the end of the file. */
    off = sizeof data - 10;
    CHECK(sendfile(v, f, &off, 1000) == 10);
    CHECK(revents(u, POLLIN, 10000) & POLLIN);
    CHECK(recv(u, buf, sizeof buf, 0) == 10);
    off = 0;
    errno = 0;
    CHECK(sendfile(v, f, &off, 66000) == -1 && errno == EMSGSIZE && off == 0);
    /* splice from a pipe. */
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(write(p[1], data, 300) == 300);
    CHECK(splice(p[0], NULL, v, NULL, 300, 0) == 300);
    CHECK(revents(u, POLLIN, 10000) & POLLIN);
    CHECK(recv(u, buf, sizeof buf, 0) == 300 && memcmp(buf, data, 300) == 0);
    errno = 0;
    CHECK(splice(u, NULL, p[1], NULL, 100, 0) == -1 && errno == EINVAL);
    close(p[0]); close(p[1]); close(u); close(v); close(f);
    printf("sendfile ok\n");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    CHECK(argc >= 2);
    if (strcmp(argv[1], "reset") == 0) reset();
    else if (strcmp(argv[1], "pending") == 0) pending();
    else if (strcmp(argv[1], "refused") == 0) refused();
    else if (strcmp(argv[1], "ioctl") == 0) ioctls();
    else if (strcmp(argv[1], "sendfile") == 0 && argc >= 3) udp_sendfile(argv[2]);
    else { fprintf(stderr, "unknown part %s\n", argv[1]); return 2; }
    return 0;
}
