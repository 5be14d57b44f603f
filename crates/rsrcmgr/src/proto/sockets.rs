//! Wire forms of the application socket interface: socket options, the
//! `netstat -a` line, and the fixed header every UDP datagram carries on
//! the socket pair between an application and io-pkt.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use iopkt_stack::tcp::{State as TcpState, TcpInfo};
use iopkt_stack::transport::{SockOpt, SockOptName, SocketInfo};
use serde::{Deserialize, Serialize};

/// A socket option with its value (setsockopt/getsockopt). Sizes are
/// bytes, times seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SockOptWire {
    ReuseAddr(bool),
    ReusePort(bool),
    Broadcast(bool),
    KeepAlive(bool),
    Linger(Option<u32>),
    RecvBuf(u32),
    SendBuf(u32),
    Ttl(u8),
    MulticastTtl(u8),
    MulticastLoop(bool),
    MulticastIf(u32),
    JoinGroup(IpAddr, u32),
    LeaveGroup(IpAddr, u32),
    PktInfo(bool),
    V6Only(bool),
    NoDelay(bool),
    KeepIdle(u32),
    KeepIntvl(u32),
    KeepCnt(u32),
    Congestion(String),
    MaxSeg(u16),
    /// SO_TYPE: 1 SOCK_STREAM, 2 SOCK_DGRAM (read only).
    Type(u8),
    /// SO_ERROR: the pending error as an errno, 0 if none (read only;
    /// reading clears it).
    Error(i32),
    /// TCP_INFO: the connection's state, timers and counters (read only).
    TcpInfo(TcpInfoWire),
    /// SIOCOUTQ: bytes written and not yet acknowledged by the peer (TCP)
    /// or not yet sent (UDP), wherever they wait: the pair, io-pkt, the
    /// stack (read only).
    OutQueue(u32),
}

/// The name of an option to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SockOptNameWire {
    ReuseAddr,
    ReusePort,
    Broadcast,
    KeepAlive,
    Linger,
    RecvBuf,
    SendBuf,
    Ttl,
    MulticastTtl,
    MulticastLoop,
    MulticastIf,
    PktInfo,
    V6Only,
    NoDelay,
    KeepIdle,
    KeepIntvl,
    KeepCnt,
    Congestion,
    MaxSeg,
    Type,
    Error,
    TcpInfo,
    OutQueue,
}

/// Longest TCP_CONGESTION name accepted.
pub const MAX_CONGESTION_NAME: usize = 16;

impl SockOptWire {
    pub fn validate(&self) -> Result<(), String> {
        match self {
            SockOptWire::Congestion(n)
                if n.is_empty()
                    || n.len() > MAX_CONGESTION_NAME
                    || !n.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                Err(format!("bad congestion control name {n:?}"))
            }
            SockOptWire::Type(_)
            | SockOptWire::Error(_)
            | SockOptWire::TcpInfo(_)
            | SockOptWire::OutQueue(_) => {
                Err("SO_TYPE, SO_ERROR, TCP_INFO and SIOCOUTQ can only be read".into())
            }
            _ => Ok(()),
        }
    }

    /// The stack's form; `None` for the read-only options.
    pub fn to_stack(&self) -> Option<SockOpt> {
        Some(match self.clone() {
            SockOptWire::ReuseAddr(b) => SockOpt::ReuseAddr(b),
            SockOptWire::ReusePort(b) => SockOpt::ReusePort(b),
            SockOptWire::Broadcast(b) => SockOpt::Broadcast(b),
            SockOptWire::KeepAlive(b) => SockOpt::KeepAlive(b),
            SockOptWire::Linger(l) => SockOpt::Linger(l),
            SockOptWire::RecvBuf(n) => SockOpt::RecvBuf(n as usize),
            SockOptWire::SendBuf(n) => SockOpt::SendBuf(n as usize),
            SockOptWire::Ttl(t) => SockOpt::Ttl(t),
            SockOptWire::MulticastTtl(t) => SockOpt::MulticastTtl(t),
            SockOptWire::MulticastLoop(b) => SockOpt::MulticastLoop(b),
            SockOptWire::MulticastIf(i) => SockOpt::MulticastIf(i),
            SockOptWire::JoinGroup(a, i) => SockOpt::JoinGroup(a, i),
            SockOptWire::LeaveGroup(a, i) => SockOpt::LeaveGroup(a, i),
            SockOptWire::PktInfo(b) => SockOpt::PktInfo(b),
            SockOptWire::V6Only(b) => SockOpt::V6Only(b),
            SockOptWire::NoDelay(b) => SockOpt::NoDelay(b),
            SockOptWire::KeepIdle(n) => SockOpt::KeepIdle(n),
            SockOptWire::KeepIntvl(n) => SockOpt::KeepIntvl(n),
            SockOptWire::KeepCnt(n) => SockOpt::KeepCnt(n),
            SockOptWire::Congestion(s) => SockOpt::Congestion(s),
            SockOptWire::MaxSeg(n) => SockOpt::MaxSeg(n),
            SockOptWire::Type(_)
            | SockOptWire::Error(_)
            | SockOptWire::TcpInfo(_)
            | SockOptWire::OutQueue(_) => {
                return None;
            }
        })
    }

    pub fn from_stack(o: SockOpt) -> SockOptWire {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        match o {
            SockOpt::ReuseAddr(b) => SockOptWire::ReuseAddr(b),
            SockOpt::ReusePort(b) => SockOptWire::ReusePort(b),
            SockOpt::Broadcast(b) => SockOptWire::Broadcast(b),
            SockOpt::KeepAlive(b) => SockOptWire::KeepAlive(b),
            SockOpt::Linger(l) => SockOptWire::Linger(l),
            SockOpt::RecvBuf(n) => SockOptWire::RecvBuf(clamp(n)),
            SockOpt::SendBuf(n) => SockOptWire::SendBuf(clamp(n)),
            SockOpt::Ttl(t) => SockOptWire::Ttl(t),
            SockOpt::MulticastTtl(t) => SockOptWire::MulticastTtl(t),
            SockOpt::MulticastLoop(b) => SockOptWire::MulticastLoop(b),
            SockOpt::MulticastIf(i) => SockOptWire::MulticastIf(i),
            SockOpt::JoinGroup(a, i) => SockOptWire::JoinGroup(a, i),
            SockOpt::LeaveGroup(a, i) => SockOptWire::LeaveGroup(a, i),
            SockOpt::PktInfo(b) => SockOptWire::PktInfo(b),
            SockOpt::V6Only(b) => SockOptWire::V6Only(b),
            SockOpt::NoDelay(b) => SockOptWire::NoDelay(b),
            SockOpt::KeepIdle(n) => SockOptWire::KeepIdle(n),
            SockOpt::KeepIntvl(n) => SockOptWire::KeepIntvl(n),
            SockOpt::KeepCnt(n) => SockOptWire::KeepCnt(n),
            SockOpt::Congestion(s) => SockOptWire::Congestion(s),
            SockOpt::MaxSeg(n) => SockOptWire::MaxSeg(n),
        }
    }
}

impl SockOptNameWire {
    /// The stack's name; `None` for SO_ERROR, SO_TYPE and TCP_INFO, which
    /// the server answers itself.
    pub fn to_stack(self) -> Option<SockOptName> {
        Some(match self {
            SockOptNameWire::ReuseAddr => SockOptName::ReuseAddr,
            SockOptNameWire::ReusePort => SockOptName::ReusePort,
            SockOptNameWire::Broadcast => SockOptName::Broadcast,
            SockOptNameWire::KeepAlive => SockOptName::KeepAlive,
            SockOptNameWire::Linger => SockOptName::Linger,
            SockOptNameWire::RecvBuf => SockOptName::RecvBuf,
            SockOptNameWire::SendBuf => SockOptName::SendBuf,
            SockOptNameWire::Ttl => SockOptName::Ttl,
            SockOptNameWire::MulticastTtl => SockOptName::MulticastTtl,
            SockOptNameWire::MulticastLoop => SockOptName::MulticastLoop,
            SockOptNameWire::MulticastIf => SockOptName::MulticastIf,
            SockOptNameWire::PktInfo => SockOptName::PktInfo,
            SockOptNameWire::V6Only => SockOptName::V6Only,
            SockOptNameWire::NoDelay => SockOptName::NoDelay,
            SockOptNameWire::KeepIdle => SockOptName::KeepIdle,
            SockOptNameWire::KeepIntvl => SockOptName::KeepIntvl,
            SockOptNameWire::KeepCnt => SockOptName::KeepCnt,
            SockOptNameWire::Congestion => SockOptName::Congestion,
            SockOptNameWire::MaxSeg => SockOptName::MaxSeg,
            SockOptNameWire::Type
            | SockOptNameWire::Error
            | SockOptNameWire::TcpInfo
            | SockOptNameWire::OutQueue => {
                return None;
            }
        })
    }
}

/// TCP_INFO as the server sends it: the stack's [`TcpInfo`] with times in
/// microseconds and the state as Linux numbers it (`include/net/tcp_states.h`,
/// which `struct tcp_info`'s `tcpi_state` uses), so a library fills
/// Linux's structure without a table of its own. Sizes are bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpInfoWire {
    /// 1 ESTABLISHED, 2 SYN_SENT, 3 SYN_RECV, 4 FIN_WAIT1, 5 FIN_WAIT2,
    /// 6 TIME_WAIT, 7 CLOSE, 8 CLOSE_WAIT, 9 LAST_ACK, 10 LISTEN, 11 CLOSING.
    pub state: u8,
    /// Retransmissions of the same data since the last forward progress.
    pub retransmits: u32,
    pub rto_us: u32,
    /// Smoothed round-trip time and its variation (RFC 6298); 0 before
    /// the first sample.
    pub rtt_us: u32,
    pub rttvar_us: u32,
    /// The MSS we send with and the one we announced.
    pub snd_mss: u32,
    pub rcv_mss: u32,
    /// Congestion window and slow start threshold; `u32::MAX` while the
    /// threshold is unset.
    pub snd_cwnd: u32,
    pub snd_ssthresh: u32,
    /// Bytes in flight, the peer's window, what is left of ours.
    pub unacked: u32,
    pub snd_wnd: u32,
    pub rcv_wnd: u32,
    pub total_retrans: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub timestamps: bool,
    pub sack: bool,
    pub wscale: bool,
    /// Window shift counts: the peer's and ours.
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
}

/// Linux's `TCP_CLOSE`: what a socket without a connection reports.
pub const TCPI_STATE_CLOSE: u8 = 7;

/// Linux's number for a TCP state (`include/net/tcp_states.h`).
pub fn linux_tcp_state(s: TcpState) -> u8 {
    match s {
        TcpState::Established => 1,
        TcpState::SynSent => 2,
        TcpState::SynReceived => 3,
        TcpState::FinWait1 => 4,
        TcpState::FinWait2 => 5,
        TcpState::TimeWait => 6,
        TcpState::Closed => TCPI_STATE_CLOSE,
        TcpState::CloseWait => 8,
        TcpState::LastAck => 9,
        TcpState::Listen => 10,
        TcpState::Closing => 11,
    }
}

fn micros(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl TcpInfoWire {
    /// A socket with no connection (closed, or finished and forgotten):
    /// Linux answers TCP_INFO for it too, in state CLOSE.
    pub fn closed() -> TcpInfoWire {
        TcpInfoWire {
            state: TCPI_STATE_CLOSE,
            retransmits: 0,
            rto_us: 0,
            rtt_us: 0,
            rttvar_us: 0,
            snd_mss: 0,
            rcv_mss: 0,
            snd_cwnd: 0,
            snd_ssthresh: u32::MAX,
            unacked: 0,
            snd_wnd: 0,
            rcv_wnd: 0,
            total_retrans: 0,
            bytes_acked: 0,
            bytes_received: 0,
            timestamps: false,
            sack: false,
            wscale: false,
            snd_wscale: 0,
            rcv_wscale: 0,
        }
    }
}

impl From<&TcpInfo> for TcpInfoWire {
    fn from(i: &TcpInfo) -> Self {
        TcpInfoWire {
            state: linux_tcp_state(i.state),
            retransmits: i.retransmits,
            rto_us: micros(i.rto),
            rtt_us: micros(i.rtt),
            rttvar_us: micros(i.rttvar),
            snd_mss: i.snd_mss,
            rcv_mss: i.rcv_mss,
            snd_cwnd: i.snd_cwnd,
            snd_ssthresh: i.snd_ssthresh,
            unacked: i.unacked,
            snd_wnd: i.snd_wnd,
            rcv_wnd: i.rcv_wnd,
            total_retrans: i.total_retrans,
            bytes_acked: i.bytes_acked,
            bytes_received: i.bytes_received,
            timestamps: i.options.timestamps,
            sack: i.options.sack,
            wscale: i.options.wscale,
            snd_wscale: i.options.snd_wscale,
            rcv_wscale: i.options.rcv_wscale,
        }
    }
}

/// One line of `netstat -a`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketInfoWire {
    pub id: u32,
    /// "tcp", "tcp6", "udp", "udp6", "icmp", "icmp6".
    pub proto: String,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// TCP state ("LISTEN", "ESTABLISHED", ...); empty for datagrams.
    pub state: String,
    pub recv_queue: u64,
    pub send_queue: u64,
}

impl From<&SocketInfo> for SocketInfoWire {
    fn from(i: &SocketInfo) -> Self {
        SocketInfoWire {
            id: i.id.0,
            proto: i.proto.to_string(),
            local: i.local,
            remote: i.remote,
            state: i.state.to_string(),
            recv_queue: i.recv_queue as u64,
            send_queue: i.send_queue as u64,
        }
    }
}

/// Bytes of the header in front of every datagram on a UDP socket's pair.
pub const DGRAM_HEADER_LEN: usize = 48;
/// Largest UDP payload (65535 less the 8-byte UDP header; RFC 768).
pub const MAX_DGRAM_PAYLOAD: usize = 65_527;

/// Flag: the datagram was longer than what follows (MSG_TRUNC).
pub const DGRAM_TRUNCATED: u32 = 1;

/// The header of one SEQPACKET message on a UDP socket's pair, in both
/// directions (docs/protocol.md, "UDP datagrams"). Integers little-endian,
/// addresses in network order:
///
/// | off | size | field |
/// |---|---|---|
/// | 0 | 1 | address family: 0 none, 4 IPv4, 6 IPv6 |
/// | 1 | 1 | pktinfo family: 0 none, 4, 6 |
/// | 2 | 2 | port |
/// | 4 | 4 | flags (bit 0: truncated) |
/// | 8 | 4 | errno: not 0 in a message reporting an asynchronous error (no payload) |
/// | 12 | 4 | pktinfo interface index |
/// | 16 | 16 | address (IPv4 in the first 4 bytes) |
/// | 32 | 16 | pktinfo address (the datagram's destination) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DgramHeader {
    /// Application to io-pkt: the destination (`None`: the connected peer).
    /// io-pkt to application: the sender.
    pub addr: Option<SocketAddr>,
    pub flags: u32,
    pub errno: i32,
    /// Destination address and arrival interface (IP_PKTINFO).
    pub pktinfo: Option<(IpAddr, u32)>,
}

fn put_ip(out: &mut [u8; DGRAM_HEADER_LEN], at: usize, ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(a) => {
            out[at..at + 4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            out[at..at + 16].copy_from_slice(&a.octets());
            6
        }
    }
}

fn get_ip(b: &[u8], fam: u8, at: usize) -> Result<Option<IpAddr>, String> {
    match fam {
        0 => Ok(None),
        4 => {
            let o: [u8; 4] = b
                .get(at..at + 4)
                .and_then(|s| s.try_into().ok())
                .ok_or("short header")?;
            Ok(Some(IpAddr::V4(Ipv4Addr::from(o))))
        }
        6 => {
            let o: [u8; 16] = b
                .get(at..at + 16)
                .and_then(|s| s.try_into().ok())
                .ok_or("short header")?;
            Ok(Some(IpAddr::V6(Ipv6Addr::from(o))))
        }
        f => Err(format!("unknown address family {f}")),
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

impl DgramHeader {
    pub fn encode(&self) -> [u8; DGRAM_HEADER_LEN] {
        let mut out = [0u8; DGRAM_HEADER_LEN];
        if let Some(a) = self.addr {
            out[0] = put_ip(&mut out, 16, a.ip());
            out[2..4].copy_from_slice(&a.port().to_le_bytes());
        }
        if let Some((ip, ifindex)) = self.pktinfo {
            out[1] = put_ip(&mut out, 32, ip);
            out[12..16].copy_from_slice(&ifindex.to_le_bytes());
        }
        out[4..8].copy_from_slice(&self.flags.to_le_bytes());
        out[8..12].copy_from_slice(&self.errno.to_le_bytes());
        out
    }

    /// Reads the header at the start of `msg`; the payload follows it.
    pub fn decode(msg: &[u8]) -> Result<DgramHeader, String> {
        if msg.len() < DGRAM_HEADER_LEN {
            return Err(format!(
                "datagram message of {} bytes is shorter than its {DGRAM_HEADER_LEN}-byte header",
                msg.len()
            ));
        }
        let port = u16::from_le_bytes([msg[2], msg[3]]);
        let addr = get_ip(msg, msg[0], 16)?.map(|ip| SocketAddr::new(ip, port));
        let pktinfo = get_ip(msg, msg[1], 32)?.map(|ip| (ip, le_u32(msg, 12)));
        Ok(DgramHeader {
            addr,
            flags: le_u32(msg, 4),
            errno: le_u32(msg, 8) as i32,
            pktinfo,
        })
    }
}
