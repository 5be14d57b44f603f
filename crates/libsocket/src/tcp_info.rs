//! getsockopt(IPPROTO_TCP, TCP_INFO): the stack's snapshot of a connection
//! (docs/protocol.md, `TcpInfo`) laid out as Linux's `struct tcp_info`
//! (include/uapi/linux/tcp.h), which programs such as iperf3 and ss read.
//!
//! The layout is written out byte by byte rather than taken from the libc
//! crate, whose `tcp_info` stops at `tcpi_snd_wnd` on some targets and is
//! absent on others: the offsets below are the kernel's ABI and never move
//! (fields are only appended). Fields the stack does not keep stay zero, as
//! Linux leaves fields it has nothing for.

use client::raw::TcpInfoWire;

/// Bytes of `struct tcp_info` this library fills: up to and including
/// `tcpi_total_rto_time` (Linux 6.7). A caller asking for more gets this
/// many and `optlen` says so, exactly as a kernel of that version answers;
/// a caller asking for less gets the first `optlen` bytes.
pub const LINUX_TCP_INFO_LEN: usize = 248;

// Offsets in `struct tcp_info`.
const STATE: usize = 0;
const CA_STATE: usize = 1;
const RETRANSMITS: usize = 2;
const BACKOFF: usize = 4;
const OPTIONS: usize = 5;
/// `tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4`: the first bit-field takes
/// the low bits on the little-endian ABIs Linux runs this library on.
const WSCALE: usize = 6;
const RTO: usize = 8;
const SND_MSS: usize = 16;
const RCV_MSS: usize = 20;
const UNACKED: usize = 24;
const RTT: usize = 68;
const RTTVAR: usize = 72;
const SND_SSTHRESH: usize = 76;
const SND_CWND: usize = 80;
const ADVMSS: usize = 84;
const TOTAL_RETRANS: usize = 100;
const BYTES_ACKED: usize = 120;
const BYTES_RECEIVED: usize = 128;
const SND_WND: usize = 228;
const RCV_WND: usize = 232;

/// `tcpi_options` bits.
const TCPI_OPT_TIMESTAMPS: u8 = 1;
const TCPI_OPT_SACK: u8 = 2;
const TCPI_OPT_WSCALE: u8 = 4;

/// `tcpi_ca_state` TCP_CA_Open: the stack does not report its recovery
/// phase, and Open is what a connection without losses shows.
const TCP_CA_OPEN: u8 = 0;

/// What Linux reports as `tcpi_snd_ssthresh` while the threshold is unset
/// (TCP_INFINITE_SSTHRESH).
const INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

fn put_u32(b: &mut [u8; LINUX_TCP_INFO_LEN], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(b: &mut [u8; LINUX_TCP_INFO_LEN], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// Bytes as whole segments, rounding up: Linux counts the congestion
/// window, the threshold and what is unacknowledged in packets.
fn segments(bytes: u32, mss: u32) -> u32 {
    if mss == 0 { 0 } else { bytes.div_ceil(mss) }
}

/// `struct tcp_info` for `i`.
pub fn linux_layout(i: &TcpInfoWire) -> [u8; LINUX_TCP_INFO_LEN] {
    let mut b = [0u8; LINUX_TCP_INFO_LEN];
    b[STATE] = i.state;
    b[CA_STATE] = TCP_CA_OPEN;
    let backoff = u8::try_from(i.retransmits).unwrap_or(u8::MAX);
    // Our retries count is both of Linux's: the retransmissions of the
    // same data and the RTO backoff that went with them.
    b[RETRANSMITS] = backoff;
    b[BACKOFF] = backoff;
    let mut opts = 0;
    if i.timestamps {
        opts |= TCPI_OPT_TIMESTAMPS;
    }
    if i.sack {
        opts |= TCPI_OPT_SACK;
    }
    if i.wscale {
        opts |= TCPI_OPT_WSCALE;
        b[WSCALE] = (i.snd_wscale & 0x0f) | ((i.rcv_wscale & 0x0f) << 4);
    }
    b[OPTIONS] = opts;
    put_u32(&mut b, RTO, i.rto_us);
    put_u32(&mut b, SND_MSS, i.snd_mss);
    put_u32(&mut b, RCV_MSS, i.rcv_mss);
    put_u32(&mut b, UNACKED, segments(i.unacked, i.snd_mss));
    put_u32(&mut b, RTT, i.rtt_us);
    put_u32(&mut b, RTTVAR, i.rttvar_us);
    let ssthresh = if i.snd_ssthresh == u32::MAX {
        INFINITE_SSTHRESH
    } else {
        segments(i.snd_ssthresh, i.snd_mss).min(INFINITE_SSTHRESH)
    };
    put_u32(&mut b, SND_SSTHRESH, ssthresh);
    put_u32(&mut b, SND_CWND, segments(i.snd_cwnd, i.snd_mss));
    put_u32(&mut b, ADVMSS, i.rcv_mss);
    put_u32(
        &mut b,
        TOTAL_RETRANS,
        u32::try_from(i.total_retrans).unwrap_or(u32::MAX),
    );
    put_u64(&mut b, BYTES_ACKED, i.bytes_acked);
    put_u64(&mut b, BYTES_RECEIVED, i.bytes_received);
    put_u32(&mut b, SND_WND, i.snd_wnd);
    put_u32(&mut b, RCV_WND, i.rcv_wnd);
    b
}
