/*
 * devnp-cudp: a minimal point-to-point UDP driver written in C against
 * include/iopkt/module.h only. It shows the whole module ABI from C: the
 * entry symbol, the descriptor, options, init/fini, attaching an interface,
 * receiving a batch into host buffers, and tx taking ownership of packets.
 *
 * Options: local=IPv4:PORT (where to receive), remote=IPv4:PORT (where to
 * send). Each Ethernet frame travels as one UDP datagram.
 *
 * Build: gcc -shared -fPIC -O2 -I include -o devnp-cudp.so tests/c-driver/devnp-cudp.c
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iopkt/module.h"

struct cudp {
    const struct iopkt_host *host;
    struct iopkt_if *ifp;
    int fd;
    struct sockaddr_in remote;
};

static int parse_ipv4(const char *s, struct sockaddr_in *out)
{
    char ip[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof ip)
        return -1;
    memcpy(ip, s, (size_t)(colon - s));
    ip[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return -1;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, ip, &out->sin_addr) == 1 ? 0 : -1;
}

/* Sends each frame as one datagram; owns and frees every packet. */
static void cudp_tx(void *drv, struct iopkt_pkt *const *pkts, size_t n)
{
    struct cudp *c = drv;
    for (size_t i = 0; i < n; i++) {
        struct iopkt_pkt *p = pkts[i];
        (void)sendto(c->fd, p->buf + p->off, p->len, MSG_DONTWAIT,
                     (const struct sockaddr *)&c->remote, sizeof c->remote);
        c->host->pkt_free(c->host->ctx, p);
    }
}

static void cudp_set_up(void *drv, bool up) { (void)drv; (void)up; }
static void cudp_detach(void *drv) { (void)drv; }

static const struct iopkt_if_ops cudp_ops = {
    .tx = cudp_tx,
    .set_up = cudp_set_up,
    .detach = cudp_detach,
};

/* Readable: receive up to one batch of datagrams into host buffers. */
static void cudp_ready(void *arg, int fd, uint32_t events)
{
    struct cudp *c = arg;
    struct iopkt_pkt *batch[IOPKT_MAX_BATCH];
    size_t n = 0;
    (void)events;
    while (n < IOPKT_MAX_BATCH) {
        struct iopkt_pkt *p = c->host->pkt_alloc(c->host->ctx);
        if (p == NULL)
            break;
        ssize_t r = recv(fd, p->buf + p->off, p->cap - p->off, MSG_DONTWAIT | MSG_TRUNC);
        if (r < 0 || (size_t)r > p->cap - p->off) {
            c->host->pkt_free(c->host->ctx, p);
            if (r < 0)
                break;
            continue; /* truncated: larger than a buffer */
        }
        p->len = (uint32_t)r;
        batch[n++] = p;
    }
    if (n > 0)
        c->host->input(c->host->ctx, c->ifp, batch, n);
}

static int fail(char *errbuf, size_t errlen, const char *msg, struct cudp *c)
{
    snprintf(errbuf, errlen, "%s", msg);
    if (c != NULL) {
        if (c->fd >= 0)
            close(c->fd);
        free(c);
    }
    return -1;
}

static int cudp_init(const struct iopkt_host *host, const struct iopkt_option *opts, size_t nopts,
                     void **out_instance, char *errbuf, size_t errlen)
{
    struct sockaddr_in local, remote;
    int have_local = 0, have_remote = 0;
    for (size_t i = 0; i < nopts; i++) {
        const char *v = opts[i].value ? opts[i].value : "";
        if (strcmp(opts[i].key, "local") == 0) {
            if (parse_ipv4(v, &local) != 0)
                return fail(errbuf, errlen, "local= expects IPv4:PORT", NULL);
            have_local = 1;
        } else if (strcmp(opts[i].key, "remote") == 0) {
            if (parse_ipv4(v, &remote) != 0)
                return fail(errbuf, errlen, "remote= expects IPv4:PORT", NULL);
            have_remote = 1;
        }
    }
    if (!have_local || !have_remote)
        return fail(errbuf, errlen, "needs local=IP:PORT and remote=IP:PORT", NULL);

    struct cudp *c = calloc(1, sizeof *c);
    if (c == NULL)
        return fail(errbuf, errlen, "out of memory", NULL);
    c->host = host;
    c->remote = remote;
    c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return fail(errbuf, errlen, "cannot create a UDP socket", c);
    if (bind(c->fd, (const struct sockaddr *)&local, sizeof local) != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "cannot bind local=: %s (is the port in use?)", strerror(errno));
        return fail(errbuf, errlen, msg, c);
    }

    struct iopkt_if_desc d;
    memset(&d, 0, sizeof d);
    d.name_prefix = "cu";
    d.mtu = 1500;
    d.ops = &cudp_ops;
    d.drv = c;
    if (host->if_attach(host->ctx, &d, &c->ifp) != 0)
        return fail(errbuf, errlen, "cannot attach the interface", c);
    if (host->fd_watch(host->ctx, c->fd, IOPKT_FD_READ, cudp_ready, c) != 0)
        return fail(errbuf, errlen, "cannot watch the socket", c);
    *out_instance = c;
    return 0;
}

static void cudp_fini(void *instance)
{
    struct cudp *c = instance;
    c->host->fd_unwatch(c->host->ctx, c->fd);
    close(c->fd);
    free(c);
}

static const char *const cudp_options[] = { "local", "remote", NULL };

static const struct iopkt_module_desc cudp_desc = {
    .abi_version = IOPKT_ABI_VERSION,
    .kind = IOPKT_KIND_DRIVER,
    .name = "cudp",
    .description = "Ethernet over point-to-point UDP (example driver in C)",
    .options = cudp_options,
    .init = cudp_init,
    .fini = cudp_fini,
};

const struct iopkt_module_desc *iopkt_module_entry(void)
{
    return &cudp_desc;
}
