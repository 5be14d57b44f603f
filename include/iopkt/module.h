/* iopkt module ABI: the interface between io-pkt and its driver and protocol modules. */

#ifndef IOPKT_MODULE_H
#define IOPKT_MODULE_H

/* Generated from crates/module-abi/src/abi.rs by cbindgen: do not edit.
 * Regenerate with: IOPKT_BLESS=1 cargo test -p iopkt-module-abi --test header */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every module exports this function under exactly this name. */
#define IOPKT_MODULE_ENTRY_SYMBOL "iopkt_module_entry"
struct iopkt_module_desc;
#ifdef __cplusplus
extern "C"
#endif
const struct iopkt_module_desc *iopkt_module_entry(void);

/**
 * The version of this ABI. A module built against another version is
 * refused with a one-line error when it is loaded.
 */
#define IOPKT_ABI_VERSION 1

/**
 * `iopkt_module_desc::kind` of a driver (`devnp-NAME.so`).
 */
#define IOPKT_KIND_DRIVER 1

/**
 * `iopkt_module_desc::kind` of a protocol module (`lsm-NAME.so`).
 */
#define IOPKT_KIND_PROTOCOL 2

/**
 * Most packets in one batch handed to `iopkt_host::input` or
 * `iopkt_if_ops::tx`.
 */
#define IOPKT_MAX_BATCH 256

/**
 * `fd_watch` events: the fd is readable.
 */
#define IOPKT_FD_READ 1

/**
 * `fd_watch` events: the fd is writable.
 */
#define IOPKT_FD_WRITE 2

/**
 * Reported to fd callbacks (never needs asking for): error or hang-up.
 */
#define IOPKT_FD_ERROR 4

/**
 * `iopkt_pkt::flags`: the transport (TCP, UDP, ICMP) checksum of a
 * received frame was verified by the device, or the frame never left the
 * host; the stack does not verify it again. Honoured only from an
 * interface attached with `IOPKT_IFCAP_RXCSUM`.
 */
#define IOPKT_PKT_F_CSUM_VALID (1 << 0)

/**
 * `iopkt_pkt::flags`: the transport checksum is partial. The 16-bit field
 * at `csum_start + csum_offset` (bytes from the start of the frame) holds
 * the folded, not complemented, pseudo-header sum; the one's-complement
 * sum of the bytes from `csum_start` to the end of the frame is still to
 * be added and the result complemented (as Linux's `CHECKSUM_PARTIAL` and
 * virtio's `VIRTIO_NET_HDR_F_NEEDS_CSUM`). On `tx` the stack sets it only
 * for interfaces attached with `IOPKT_IFCAP_TXCSUM`. On `input` (with
 * `IOPKT_IFCAP_RXCSUM`) it says the frame was made on this host and is
 * accepted without verification.
 */
#define IOPKT_PKT_F_CSUM_PARTIAL (1 << 1)

/**
 * `iopkt_pkt::flags`: one TCP-over-IPv4 segment of up to 64 KiB, to be
 * cut into segments of `gso_size` payload bytes. On `tx` only to
 * interfaces attached with `IOPKT_IFCAP_TSO4` (always with
 * `IOPKT_PKT_F_CSUM_PARTIAL`); on `input` only from interfaces attached
 * with `IOPKT_IFCAP_LRO`.
 */
#define IOPKT_PKT_F_GSO_TCPV4 (1 << 2)

/**
 * `iopkt_pkt::flags`: as `IOPKT_PKT_F_GSO_TCPV4`, over IPv6
 * (`IOPKT_IFCAP_TSO6` on `tx`).
 */
#define IOPKT_PKT_F_GSO_TCPV6 (1 << 3)

/**
 * `iopkt_if_desc::offloads`: `tx` completes partial checksums
 * (`IOPKT_PKT_F_CSUM_PARTIAL` frames).
 */
#define IOPKT_IFCAP_TXCSUM (1 << 0)

/**
 * `iopkt_if_desc::offloads`: frames given to `input` may carry
 * `IOPKT_PKT_F_CSUM_VALID` or `IOPKT_PKT_F_CSUM_PARTIAL`.
 */
#define IOPKT_IFCAP_RXCSUM (1 << 1)

/**
 * `iopkt_if_desc::offloads`: `tx` takes `IOPKT_PKT_F_GSO_TCPV4` frames
 * (needs `IOPKT_IFCAP_TXCSUM`).
 */
#define IOPKT_IFCAP_TSO4 (1 << 2)

/**
 * `iopkt_if_desc::offloads`: `tx` takes `IOPKT_PKT_F_GSO_TCPV6` frames
 * (needs `IOPKT_IFCAP_TXCSUM`).
 */
#define IOPKT_IFCAP_TSO6 (1 << 3)

/**
 * `iopkt_if_desc::offloads`: frames given to `input` may be coalesced TCP
 * segments larger than the MTU, flagged `IOPKT_PKT_F_GSO_TCPV4` or
 * `IOPKT_PKT_F_GSO_TCPV6`, up to 65553 bytes of frame (the stack drops
 * other frames above the MTU).
 */
#define IOPKT_IFCAP_LRO (1 << 4)

/**
 * Largest frame a GSO packet may be (`pkt_alloc_len`): an IP datagram of
 * 65535 bytes with the Ethernet header and one VLAN tag.
 */
#define IOPKT_MAX_GSO_FRAME (65535 + 18)

/**
 * `log` levels.
 */
#define IOPKT_LOG_ERROR 1

#define IOPKT_LOG_WARN 2

#define IOPKT_LOG_INFO 3

#define IOPKT_LOG_DEBUG 4

/**
 * An interface of the host, handed to a driver by `if_attach`. Opaque.
 */
struct iopkt_if;

/**
 * One packet buffer. `buf[off .. off + len]` is the packet, `buf[.. off]` is
 * headroom, `buf[off + len .. cap]` is tailroom.
 *
 * A module may read and write the bytes and change `off`, `len`, `flags` and
 * `user` (keeping `off + len <= cap`); it must never change `buf`, `cap` or
 * `pool`. Buffers come from `iopkt_host::pkt_alloc` and go back through
 * `iopkt_host::pkt_free`, `iopkt_host::input` or the end of a `tx` call's
 * ownership; never `free()` one.
 *
 * `flags` holds `IOPKT_PKT_F_*` bits; the last four fields give them
 * their numbers. A buffer from `pkt_alloc` has all of them zero.
 */
struct iopkt_pkt {
  uint8_t *buf;
  uint32_t cap;
  uint32_t off;
  uint32_t len;
  uint32_t flags;
  /**
   * Free for the current owner's use.
   */
  uint64_t user;
  /**
   * Owning pool; opaque to modules.
   */
  const void *pool;
  /**
   * With `IOPKT_PKT_F_CSUM_PARTIAL`: the first checksummed byte, counted
   * from the start of the frame (`buf + off`).
   */
  uint16_t csum_start;
  /**
   * With `IOPKT_PKT_F_CSUM_PARTIAL`: the checksum field, counted from
   * `csum_start` (16 for TCP, 6 for UDP).
   */
  uint16_t csum_offset;
  /**
   * With `IOPKT_PKT_F_GSO_TCPV4` / `_TCPV6`: payload bytes per segment
   * (the MSS).
   */
  uint16_t gso_size;
  /**
   * Zero.
   */
  uint16_t reserved;
};

/**
 * A packet buffer with the standard headroom and `len == 0`; NULL when none
 * is available (drop the frame).
 */
typedef struct iopkt_pkt *(*iopkt_pkt_alloc_fn)(void *ctx);

/**
 * Returns a buffer to the host.
 */
typedef void (*iopkt_pkt_free_fn)(void *ctx, struct iopkt_pkt *pkt);

/**
 * Sends packets. The driver takes ownership of every packet in `pkts[0..n]`
 * (`n <= IOPKT_MAX_BATCH`) and frees each with `pkt_free` when done. Called
 * from any thread, possibly from several at once: it must be thread-safe.
 * It must not call `iopkt_host::input` synchronously (defer to a worker).
 */
typedef void (*iopkt_tx_fn)(void *drv, struct iopkt_pkt *const *pkts, size_t n);

/**
 * The stack brought the interface up (`up = true`) or down.
 */
typedef void (*iopkt_set_up_fn)(void *drv, bool up);

/**
 * The interface goes away (`ifconfig IF destroy`, or the stack shutting
 * down). The host has stopped calling `tx` and `set_up` for it before this
 * call and never uses `drv` again after it; the driver releases what
 * belongs to this interface alone (its device, its socket), unwatches the
 * fds and cancels the timers whose callbacks would deliver on it, and may
 * free `drv`. It is called on a thread that is not a worker running one of
 * this module's callbacks, so `fd_unwatch` and `timer_cancel` wait safely.
 * The module instance stays loaded; `fini` still comes at shutdown.
 */
typedef void (*iopkt_detach_fn)(void *drv);

/**
 * What the host may do with one interface of a driver.
 */
struct iopkt_if_ops {
  iopkt_tx_fn tx;
  iopkt_set_up_fn set_up;
  iopkt_detach_fn detach;
};

/**
 * An interface a driver attaches with `iopkt_host::if_attach`. The host
 * copies what it needs; the struct may live on the driver's stack.
 */
struct iopkt_if_desc {
  /**
   * Interface name prefix used when the user gave no `name=` (the host
   * appends the unit number: "en" gives "en0"). NULL means "en".
   */
  const char *name_prefix;
  /**
   * Hardware address, used when `has_mac` is true and the user gave no
   * `mac=`; otherwise the host picks a random locally administered one.
   */
  uint8_t mac[6];
  bool has_mac;
  /**
   * Default MTU (0 means 1500); `mtu=` overrides it.
   */
  uint32_t mtu;
  /**
   * Must stay valid until `detach` returns (usually a static).
   */
  const struct iopkt_if_ops *ops;
  /**
   * The driver's per-interface context, passed back to every op.
   */
  void *drv;
  /**
   * Largest MTU the driver can carry. 0 means what one `pkt_alloc` buffer
   * holds (its frame room less 18 bytes of Ethernet header and VLAN tag),
   * for drivers that receive only into `pkt_alloc` buffers. A driver that
   * receives into `pkt_alloc_rx` buffers states its device's limit. The
   * host refuses `mtu=` and `ifconfig IF mtu N` above it.
   */
  uint32_t max_mtu;
  /**
   * What the driver does about checksums and segmentation
   * (`IOPKT_IFCAP_*`); 0: nothing, the stack computes and verifies
   * every checksum and sends and takes frames of at most the MTU.
   */
  uint32_t offloads;
};

/**
 * Attaches an interface; on success stores its handle in `*out_if` and
 * returns 0, otherwise returns a negative errno (`-EEXIST`: the name is in
 * use) and the host remembers a message for the load error.
 */
typedef int (*iopkt_if_attach_fn)(void *ctx,
                                  const struct iopkt_if_desc *desc,
                                  struct iopkt_if **out_if);

/**
 * Delivers received frames `pkts[0..n]` (`n <= IOPKT_MAX_BATCH`) on `ifp`.
 * The host takes ownership of every packet. Any thread.
 */
typedef void (*iopkt_input_fn)(void *ctx,
                               struct iopkt_if *ifp,
                               struct iopkt_pkt *const *pkts,
                               size_t n);

/**
 * Reports the link (carrier) of `ifp` up or down.
 */
typedef void (*iopkt_link_state_fn)(void *ctx, struct iopkt_if *ifp, bool up);

/**
 * A timer callback; runs on a worker thread.
 */
typedef void (*iopkt_timer_cb)(void *arg);

/**
 * Runs `cb(arg)` once on a worker after `delay_us` microseconds. Returns the
 * timer id (never 0), or 0 when the host cannot take more timers.
 */
typedef uint64_t (*iopkt_timer_start_fn)(void *ctx, uint64_t delay_us, iopkt_timer_cb cb, void *arg);

/**
 * Cancels a timer. Returns 1 if it was pending (its callback will never run),
 * 0 if it had already run or is unknown. When it returns, the callback is not
 * running on another thread.
 */
typedef int (*iopkt_timer_cancel_fn)(void *ctx, uint64_t id);

/**
 * An fd callback; runs on a worker thread with the `IOPKT_FD_*` events that
 * are ready. Watches are level-triggered.
 */
typedef void (*iopkt_fd_cb)(void *arg, int fd, uint32_t events);

/**
 * Watches `fd` for `events` (`IOPKT_FD_READ` | `IOPKT_FD_WRITE`) and calls
 * `cb(arg, fd, ready)` on a worker while they hold. Watching an fd again
 * replaces its events, callback and argument. Returns 0 or a negative errno.
 */
typedef int (*iopkt_fd_watch_fn)(void *ctx, int fd, uint32_t events, iopkt_fd_cb cb, void *arg);

/**
 * Stops watching `fd`. When it returns, its callback is not running on
 * another thread and will not be called again. Returns 0 or a negative errno.
 */
typedef int (*iopkt_fd_unwatch_fn)(void *ctx, int fd);

/**
 * Logs one line (`IOPKT_LOG_*`); the host adds the module's name.
 */
typedef void (*iopkt_log_fn)(void *ctx, int level, const char *msg);

/**
 * A packet buffer with the standard headroom, `len == 0` and room for one
 * received frame of `ifp` at its current MTU: the MTU plus 18 bytes
 * (Ethernet header and one VLAN tag), never less than a `pkt_alloc`
 * buffer. NULL when none is available (drop the frame). Above the pool's
 * buffer size each call makes a buffer of its own, so only interfaces
 * configured with large MTUs pay for them.
 */
typedef struct iopkt_pkt *(*iopkt_pkt_alloc_rx_fn)(void *ctx, struct iopkt_if *ifp);

/**
 * A packet buffer with the standard headroom, `len == 0` and room for at
 * least `size` bytes of frame, for a frame larger than the MTU that a
 * driver with `IOPKT_IFCAP_LRO` received (a coalesced TCP segment). NULL
 * when `size` is above `IOPKT_MAX_GSO_FRAME` or none is available.
 */
typedef struct iopkt_pkt *(*iopkt_pkt_alloc_len_fn)(void *ctx, size_t size);

/**
 * The services the host offers a module. Every function takes `ctx` first.
 * The table stays valid for the life of the process.
 */
struct iopkt_host {
  uint32_t abi_version;
  void *ctx;
  iopkt_pkt_alloc_fn pkt_alloc;
  iopkt_pkt_free_fn pkt_free;
  iopkt_if_attach_fn if_attach;
  iopkt_input_fn input;
  iopkt_link_state_fn link_state;
  iopkt_timer_start_fn timer_start;
  iopkt_timer_cancel_fn timer_cancel;
  iopkt_fd_watch_fn fd_watch;
  iopkt_fd_unwatch_fn fd_unwatch;
  iopkt_log_fn log;
  iopkt_pkt_alloc_rx_fn pkt_alloc_rx;
  iopkt_pkt_alloc_len_fn pkt_alloc_len;
};

/**
 * One option given to a module on the command line: `key=value`, or a bare
 * flag with `value == NULL`. Only the options named in
 * `iopkt_module_desc::options` reach the module; the host keeps the common
 * ones (`name`, `unit`, `mtu`, `mac`, and the impairments).
 */
struct iopkt_option {
  const char *key;
  const char *value;
};

/**
 * Starts one instance of the module with its options
 * (`opts[0..nopts]`). On success stores the instance in `*out_instance` and
 * returns 0. On failure returns non-zero and writes one line saying what
 * went wrong and what to do into `errbuf` (NUL-terminated, at most `errlen`
 * bytes); it must then have released everything it took, including
 * interfaces it attached (the host forgets them without calling `detach`).
 * `host` stays valid for the life of the process.
 */
typedef int (*iopkt_init_fn)(const struct iopkt_host *host,
                             const struct iopkt_option *opts,
                             size_t nopts,
                             void **out_instance,
                             char *errbuf,
                             size_t errlen);

/**
 * Stops an instance: unwatch fds, cancel timers, free everything. Called
 * after `detach` of each of its interfaces.
 */
typedef void (*iopkt_fini_fn)(void *instance);

/**
 * What `iopkt_module_entry()` returns: a static description of the module.
 */
struct iopkt_module_desc {
  /**
   * `IOPKT_ABI_VERSION` as the module was built.
   */
  uint32_t abi_version;
  /**
   * `IOPKT_KIND_DRIVER` or `IOPKT_KIND_PROTOCOL`.
   */
  uint32_t kind;
  /**
   * Short name: "tap" for devnp-tap.so.
   */
  const char *name;
  /**
   * One line for `iopkt mount` listings.
   */
  const char *description;
  /**
   * NULL-terminated array of the option names the module accepts beyond
   * the common ones (may itself be NULL: none).
   */
  const char *const *options;
  iopkt_init_fn init;
  iopkt_fini_fn fini;
};

/**
 * The type of the entry symbol `iopkt_module_entry` every module exports.
 */
typedef const struct iopkt_module_desc *(*iopkt_module_entry_fn)(void);

#endif  /* IOPKT_MODULE_H */
