//! TCP_INFO: a snapshot of one connection's state, timers and counters,
//! in the spirit of Linux's `struct tcp_info`.

use std::time::Duration;

use super::seq;
use super::tcb::State;
use crate::socket::SocketId;
use crate::stack::Stack;

/// Options in effect (Linux tcpi_options bits, as booleans).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpInfoOptions {
    pub timestamps: bool,
    pub sack: bool,
    pub wscale: bool,
    /// Shift counts: the peer's (applied to windows it sends) and ours.
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpInfo {
    pub state: State,
    pub rto: Duration,
    /// Smoothed round-trip time and its variation (RFC 6298); zero before
    /// the first sample.
    pub rtt: Duration,
    pub rttvar: Duration,
    /// Congestion window and slow start threshold in bytes.
    pub snd_cwnd: u32,
    pub snd_ssthresh: u32,
    /// MSS we send with and the one we announced.
    pub snd_mss: u32,
    pub rcv_mss: u32,
    /// Retransmissions since the last progress (backoff), and in all.
    pub retransmits: u32,
    pub total_retrans: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    /// Bytes sent and not yet acknowledged (in flight).
    pub unacked: u32,
    /// The peer's last window, scaled (bytes it will take beyond SND.UNA).
    pub snd_wnd: u32,
    /// What is left of the window we last announced (RCV.ADV - RCV.NXT).
    pub rcv_wnd: u32,
    /// The congestion control in use.
    pub congestion: &'static str,
    pub options: TcpInfoOptions,
}

impl Stack {
    /// TCP_INFO of socket `id`, if it is a TCP connection or listener.
    pub fn tcp_info_of(&self, id: SocketId) -> Option<TcpInfo> {
        let t = self.tcp.conns.get(&id)?;
        Some(TcpInfo {
            state: t.state,
            rto: t.rtt.rto(),
            rtt: t.rtt.srtt().unwrap_or_default(),
            rttvar: t.rtt.rttvar(),
            snd_cwnd: t.cc.cwnd(),
            snd_ssthresh: t.cc.ssthresh(),
            snd_mss: t.mss,
            rcv_mss: u32::from(t.our_mss),
            retransmits: t.retries,
            total_retrans: t.total_retrans,
            bytes_acked: t.bytes_acked,
            bytes_received: t.bytes_received,
            unacked: t.flight(),
            snd_wnd: t.snd_wnd,
            rcv_wnd: if t.state.synchronized() && seq::gt(t.rcv_adv, t.rcv_nxt) {
                t.rcv_adv.wrapping_sub(t.rcv_nxt)
            } else {
                0
            },
            congestion: t.cc.name(),
            options: TcpInfoOptions {
                timestamps: t.ts_ok,
                sack: t.sack_ok,
                wscale: t.wscale_ok,
                snd_wscale: t.snd_wscale,
                rcv_wscale: t.rcv_wscale,
            },
        })
    }
}
