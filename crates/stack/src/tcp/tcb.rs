//! One connection's state: the transmission control block of RFC 9293
//! section 3.3.1, with the buffers, timers and options around it.

use std::net::SocketAddr;
use std::time::Duration;

use super::buffers::{DEFAULT_RECV_BUF, DEFAULT_SEND_BUF, RecvBuf, SendBuf};
use super::cc::{self, CongestionControl, NewReno};
use super::rtt::RttEstimator;
use super::seq;
use crate::error::Error;
use crate::socket::SocketId;
use crate::time::{Instant, earliest};

/// Connection states (RFC 9293 section 3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl State {
    /// The name `netstat` shows.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN_SENT",
            State::SynReceived => "SYN_RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN_WAIT_1",
            State::FinWait2 => "FIN_WAIT_2",
            State::CloseWait => "CLOSE_WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST_ACK",
            State::TimeWait => "TIME_WAIT",
        }
    }

    /// Both SYNs have been seen (RFC 9293 "synchronized states").
    pub fn synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// Our data or FIN may still be (re)sent: synchronized, and our FIN,
    /// if sent, not yet acknowledged.
    pub fn sends_data(self) -> bool {
        matches!(
            self,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        )
    }
}

/// TIME-WAIT lasts 2 * MSL; 60 s in all, as on Linux.
pub const TIME_WAIT: Duration = Duration::from_secs(60);
/// How long an orphaned connection may sit in FIN-WAIT-2 (Linux
/// tcp_fin_timeout).
pub const FIN_WAIT2_TIMEOUT: Duration = Duration::from_secs(60);
/// Retransmissions of data before giving up (about 15 minutes with
/// backoff, Linux tcp_retries2).
pub const MAX_RETRIES: u32 = 15;
/// SYN retransmissions before connect(2) fails (Linux tcp_syn_retries).
pub const SYN_RETRIES: u32 = 6;
/// SYN-ACK retransmissions before an embryonic connection is dropped.
pub const SYNACK_RETRIES: u32 = 5;
/// Delayed ACK timer (RFC 9293 section 3.8.6.3 allows up to 500 ms; Linux
/// uses 40 ms at least).
pub const DELACK: Duration = Duration::from_millis(40);
/// Persist timer bounds.
pub const PERSIST_MIN: Duration = Duration::from_millis(200);
pub const PERSIST_MAX: Duration = Duration::from_secs(60);
/// MSS when the peer sends none (RFC 9293 section 3.7.1).
pub const DEFAULT_MSS_V4: u16 = 536;
pub const DEFAULT_MSS_V6: u16 = 1220;

/// Per-socket options (setsockopt).
#[derive(Debug, Clone)]
pub struct TcpOpts {
    pub nodelay: bool,
    pub keepalive: bool,
    pub keep_idle: u32,
    pub keep_intvl: u32,
    pub keep_cnt: u32,
    pub linger: Option<u32>,
    pub reuse_addr: bool,
    pub reuse_port: bool,
    pub v6only: bool,
    pub ttl: Option<u8>,
    /// TCP_MAXSEG: a cap on the MSS (0: none).
    pub max_seg: u16,
}

impl Default for TcpOpts {
    fn default() -> Self {
        TcpOpts {
            nodelay: false,
            keepalive: false,
            // Linux defaults: 2 hours idle, 75 s between probes, 9 probes.
            keep_idle: 7200,
            keep_intvl: 75,
            keep_cnt: 9,
            linger: None,
            reuse_addr: false,
            reuse_port: false,
            v6only: false,
            ttl: None,
            max_seg: 0,
        }
    }
}

/// The timers of one connection; each is a deadline or off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timers {
    /// Retransmission (and SYN / SYN-ACK retransmission).
    pub rexmit: Option<Instant>,
    pub persist: Option<Instant>,
    pub delack: Option<Instant>,
    pub keepalive: Option<Instant>,
    /// TIME-WAIT expiry, or the orphaned FIN-WAIT-2 timeout.
    pub close: Option<Instant>,
    /// RACK's reordering timer (RFC 8985 section 6.3).
    pub reo: Option<Instant>,
    /// The tail loss probe timer (RFC 8985 section 7.2).
    pub probe: Option<Instant>,
}

impl Timers {
    pub fn earliest(&self) -> Option<Instant> {
        [
            self.persist,
            self.delack,
            self.keepalive,
            self.close,
            self.reo,
            self.probe,
        ]
        .into_iter()
        .fold(self.rexmit, earliest)
    }
}

#[derive(Debug)]
pub struct Tcb {
    pub state: State,
    pub v6: bool,
    /// An IPv4 connection accepted by an IPv6 listener: the application
    /// sees its addresses as IPv4-mapped IPv6 ones.
    pub v4_mapped: bool,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub opts: TcpOpts,

    // Send sequence space (RFC 9293 section 3.3.1).
    pub iss: u32,
    pub snd_una: u32,
    pub snd_nxt: u32,
    /// The highest sequence number sent so far (snd_nxt falls back on a
    /// retransmission timeout).
    pub snd_max: u32,
    pub snd_wnd: u32,
    pub snd_wl1: u32,
    pub snd_wl2: u32,
    /// Largest window the peer ever offered (sender SWS avoidance).
    pub max_snd_wnd: u32,
    pub snd_wscale: u8,
    /// Sequence number of the first byte in `sndbuf`.
    pub snd_buf_seq: u32,
    /// Effective send MSS (RFC 9293 section 3.7.1), payload bytes.
    pub mss: u32,
    /// The MSS we announce: from the interface MTU.
    pub our_mss: u16,

    // Receive sequence space.
    pub irs: u32,
    pub rcv_nxt: u32,
    /// Right edge of the window last advertised (never moved left).
    pub rcv_adv: u32,
    pub rcv_wscale: u8,

    pub sndbuf: SendBuf,
    pub rcvbuf: RecvBuf,
    /// Where in-order bytes go at once, if set (`super::sink`).
    pub sink: super::sink::Sink,

    /// shutdown(SHUT_WR) or close: send FIN after the data.
    pub fin_queued: bool,
    /// Our FIN has sequence number `fin_seq` once sent.
    pub fin_sent: bool,
    pub fin_seq: u32,
    /// The peer's FIN arrived (end of stream).
    pub rcv_fin: bool,
    /// Sequence number of a FIN that arrived beyond a hole; it takes
    /// effect when the data before it is in.
    pub rcv_fin_pending: Option<u32>,
    pub shut_rd: bool,

    // Options negotiated on the SYNs.
    pub ts_ok: bool,
    pub ts_recent: u32,
    pub last_ack_sent: u32,
    pub sack_ok: bool,
    pub wscale_ok: bool,

    pub rtt: RttEstimator,
    /// The segment being timed when timestamps are off: (seq, sent at).
    pub rtt_timed: Option<(u32, Instant)>,
    pub cc: Box<dyn CongestionControl>,
    pub dupacks: u32,
    /// Recovery point (RFC 6582, RFC 6675 RecoveryPoint), when in fast
    /// recovery.
    pub recover: Option<u32>,
    /// What the peer reported holding beyond SND.UNA (RFC 6675).
    pub scoreboard: super::sack::Scoreboard,
    /// HighRxt (RFC 6675 section 2): the highest byte retransmitted in
    /// this recovery.
    pub high_rxt: u32,
    /// RescueRxt (RFC 6675 section 2): the recovery point when the rescue
    /// retransmission of this episode went out.
    pub rescue_rxt: Option<u32>,
    /// Use RACK-TLP (RFC 8985) for loss detection, as net.inet.tcp.rack
    /// said when the socket was made; it takes effect with SACK.
    pub rack_wanted: bool,
    /// RACK's state and the transmission records.
    pub rack: super::rack::Rack,
    /// The tail loss probe in flight.
    pub tlp: super::tlp::Tlp,
    /// What to restore if the last recovery proves needless.
    pub undo: super::undo::Undo,
    /// A duplicate segment to report in the next ACK (a DSACK, RFC 2883).
    pub dsack_out: Option<(u32, u32)>,
    /// Retransmissions since the last forward progress.
    pub retries: u32,
    pub persist_backoff: u32,
    pub keep_probes: u32,

    /// Full-size segments received since the last ACK we sent.
    pub unacked_segs: u32,
    /// An ACK must go out now (out-of-order data, FIN, window update).
    pub ack_now: bool,

    pub timers: Timers,
    pub last_rx: Instant,

    pub error: Option<Error>,
    /// TCP_INFO counters: segments retransmitted, bytes the peer
    /// acknowledged, bytes received in order.
    pub total_retrans: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    /// The last ICMP soft error (RFC 1122 section 4.2.3.9), reported if
    /// the connection times out.
    pub soft_error: Option<Error>,
    /// The listener this embryonic or not yet accepted connection came
    /// from.
    pub parent: Option<SocketId>,
    /// Closed by the application: finishes in the background and is then
    /// removed.
    pub orphan: bool,
    /// The deadline this connection is filed under in the stack's timer
    /// index.
    pub armed: Option<Instant>,
    /// Listener state.
    pub listen: Option<super::listen::Listener>,
    /// Buffer auto-tuning and memory accounting.
    pub tune: super::autotune::BufTuning,
}

impl Tcb {
    pub fn new(v6: bool) -> Tcb {
        Tcb {
            state: State::Closed,
            v6,
            v4_mapped: false,
            local: None,
            remote: None,
            opts: TcpOpts::default(),
            iss: 0,
            snd_una: 0,
            snd_nxt: 0,
            snd_max: 0,
            snd_wnd: 0,
            snd_wl1: 0,
            snd_wl2: 0,
            max_snd_wnd: 0,
            snd_wscale: 0,
            snd_buf_seq: 0,
            mss: u32::from(DEFAULT_MSS_V4),
            our_mss: DEFAULT_MSS_V4,
            irs: 0,
            rcv_nxt: 0,
            rcv_adv: 0,
            rcv_wscale: 0,
            sndbuf: SendBuf::new(DEFAULT_SEND_BUF),
            rcvbuf: RecvBuf::new(DEFAULT_RECV_BUF),
            sink: super::sink::Sink::default(),
            fin_queued: false,
            fin_sent: false,
            fin_seq: 0,
            rcv_fin: false,
            rcv_fin_pending: None,
            shut_rd: false,
            ts_ok: false,
            ts_recent: 0,
            last_ack_sent: 0,
            sack_ok: false,
            wscale_ok: false,
            rtt: RttEstimator::default(),
            rtt_timed: None,
            cc: cc::by_name(cc::DEFAULT, u32::from(DEFAULT_MSS_V4))
                .unwrap_or_else(|| Box::new(NewReno::new(u32::from(DEFAULT_MSS_V4)))),
            dupacks: 0,
            recover: None,
            scoreboard: super::sack::Scoreboard::default(),
            high_rxt: 0,
            rescue_rxt: None,
            rack_wanted: true,
            rack: super::rack::Rack::default(),
            tlp: super::tlp::Tlp::default(),
            dsack_out: None,
            undo: super::undo::Undo::default(),
            retries: 0,
            persist_backoff: 0,
            keep_probes: 0,
            unacked_segs: 0,
            ack_now: false,
            timers: Timers::default(),
            last_rx: Instant::ZERO,
            error: None,
            total_retrans: 0,
            bytes_acked: 0,
            bytes_received: 0,
            soft_error: None,
            parent: None,
            orphan: false,
            armed: None,
            listen: None,
            tune: super::autotune::BufTuning::default(),
        }
    }

    /// Bytes sent and not yet acknowledged (SYN and FIN count one).
    pub fn flight(&self) -> u32 {
        self.snd_nxt.wrapping_sub(self.snd_una)
    }

    /// Is the connection in SACK-based loss recovery (RFC 6675 section 5)?
    /// Without SACK, recovery is NewReno's (RFC 6582).
    pub fn sack_recovery(&self) -> bool {
        self.sack_ok && self.recover.is_some()
    }

    /// Is loss detection RACK-TLP's (RFC 8985)? It needs SACK.
    pub fn rack_active(&self) -> bool {
        self.rack_wanted && self.sack_ok
    }

    /// The pipe of RFC 6675 section 4; with RACK, lost means marked lost
    /// by RACK (RFC 8985 section 9.3).
    pub fn pipe(&self) -> u32 {
        if self.rack_active() {
            return self.rack.pipe(self.snd_una, self.snd_max);
        }
        self.scoreboard
            .pipe(self.snd_una, self.snd_max, self.high_rxt, self.mss)
    }

    /// Bytes queued and never sent yet.
    pub fn unsent(&self) -> usize {
        let sent = self.snd_nxt.wrapping_sub(self.snd_buf_seq) as usize;
        self.sndbuf
            .len()
            .saturating_sub(sent.min(self.sndbuf.len()))
    }

    /// The receive window we can offer now.
    pub fn rcv_space(&self) -> u32 {
        if self.shut_rd {
            // Data after SHUT_RD is discarded; keep the window open so the
            // peer is not stalled.
            return self.rcvbuf.cap.min(u32::MAX as usize) as u32;
        }
        // Under memory pressure the window offers no more than the
        // connection's share (`super::memory`).
        self.rcvbuf
            .space()
            .min(self.tune.wnd_clamp)
            .min(u32::MAX as usize) as u32
    }

    /// Current receive window: up to the advertised edge, never less
    /// (RFC 9293 section 3.8.6: the window must not shrink).
    pub fn rcv_wnd(&self) -> u32 {
        // A FIN may take RCV.NXT one past the edge: no window then, not
        // a wrapped-around huge one.
        if seq::lt(self.rcv_adv, self.rcv_nxt) {
            return 0;
        }
        self.rcv_adv.wrapping_sub(self.rcv_nxt).min(i32::MAX as u32)
    }

    /// The window to advertise, applying receiver-side silly window
    /// avoidance (RFC 9293 section 3.8.6.2.2): the right edge moves only
    /// by at least min(buffer / 2, MSS). The right edge never moves left
    /// (RFC 9293 section 3.8.6, RFC 7323 section 2.4): when the scaled
    /// field cannot say the window already offered exactly, it is rounded
    /// up, as Linux does, never down.
    pub fn window_to_advertise(&mut self) -> u32 {
        let offered = self.rcv_wnd();
        let space = self.rcv_space();
        let max_field = 65_535u32 << self.rcv_wscale;
        let space = space.min(max_field);
        let new_edge = self.rcv_nxt.wrapping_add(space);
        let step = (self.rcvbuf.cap as u32 / 2).min(self.mss).max(1);
        let mut wnd = offered;
        if seq::gt(new_edge, self.rcv_adv)
            && (new_edge.wrapping_sub(self.rcv_adv) >= step || offered == 0)
        {
            wnd = space;
        }
        // The field is shifted: round down to what it can say, unless
        // that would take back part of the window already offered.
        let unit = 1u32 << self.rcv_wscale;
        let mut w = wnd >> self.rcv_wscale;
        if (w << self.rcv_wscale) < offered {
            w = offered.div_ceil(unit);
        }
        let w = w.min(65_535);
        self.rcv_adv = self.rcv_nxt.wrapping_add(w << self.rcv_wscale);
        w
    }

    /// Would sending a window update now open the window noticeably (after
    /// the application read)?
    pub fn window_update_due(&self) -> bool {
        let space = self.rcv_space();
        let edge = self.rcv_nxt.wrapping_add(space);
        let step = (self.rcvbuf.cap as u32 / 2).min(self.mss).max(1);
        if !seq::gt(edge, self.rcv_adv) {
            return false;
        }
        // Two full segments more, or one when the window is nearly shut
        // (the sender may be stalled on it).
        let more = edge.wrapping_sub(self.rcv_adv);
        more >= 2 * step || (more >= step && self.rcv_wnd() < step)
    }

    /// The shift to announce for a receive buffer of `cap` bytes (RFC 7323
    /// section 2.2).
    pub fn wscale_for(cap: usize) -> u8 {
        let mut s = 0u8;
        while s < 14 && (cap >> s) > 65_535 {
            s += 1;
        }
        s
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.timers.earliest()
    }

    /// Arms the retransmission timer if it is off.
    pub fn arm_rexmit(&mut self, now: Instant) {
        if self.timers.rexmit.is_none() {
            self.timers.rexmit = Some(now + self.rtt.rto());
        }
    }

    /// The keepalive deadline from the last segment received.
    pub fn arm_keepalive(&mut self, now: Instant) {
        self.timers.keepalive = (self.opts.keepalive && self.state == State::Established)
            .then(|| now + Duration::from_secs(u64::from(self.opts.keep_idle)));
        self.keep_probes = 0;
    }

    /// `a` as the application sees it.
    pub fn app_addr(&self, a: SocketAddr) -> SocketAddr {
        match a {
            SocketAddr::V4(x) if self.v4_mapped => {
                SocketAddr::new(std::net::IpAddr::V6(x.ip().to_ipv6_mapped()), x.port())
            }
            _ => a,
        }
    }

    pub fn set_error(&mut self, e: Error) {
        self.error = Some(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(cap: usize, mss: u32) -> Tcb {
        let mut t = Tcb::new(false);
        t.rcvbuf = RecvBuf::new(cap);
        t.mss = mss;
        t.rcv_nxt = u32::MAX - 100; // across the wrap
        t.rcv_adv = t.rcv_nxt;
        t
    }

    #[test]
    fn the_right_edge_moves_only_by_useful_amounts() {
        let mut t = receiver(10_000, 1000);
        assert_eq!(t.window_to_advertise(), 10_000);
        let start = t.rcv_nxt;
        t.rcvbuf.insert(0, &[0; 9500]);
        t.rcv_nxt = t.rcv_nxt.wrapping_add(9500);
        assert_eq!(t.window_to_advertise(), 500);
        // Reading 300 bytes would open a silly 300-byte sliver: no.
        let mut out = [0u8; 300];
        t.rcvbuf.read(&mut out, true);
        assert!(!t.window_update_due());
        assert_eq!(t.window_to_advertise(), 500);
        // Another 900: the edge moves by 1200, at least one MSS.
        let mut out = [0u8; 900];
        t.rcvbuf.read(&mut out, true);
        assert!(t.window_update_due());
        assert_eq!(t.window_to_advertise(), 1700);
        assert_eq!(t.rcv_adv, start.wrapping_add(11_200));
    }

    #[test]
    fn a_scaled_window_is_rounded_down_and_never_shrinks() {
        let mut t = receiver(1 << 20, 1448);
        t.rcv_wscale = Tcb::wscale_for(1 << 20);
        assert_eq!(t.rcv_wscale, 5);
        assert_eq!(t.window_to_advertise(), (1 << 20) >> 5);
        let edge = t.rcv_adv;
        // The buffer fills without being read: the window drains but the
        // edge stays.
        t.rcvbuf.insert(0, &vec![0; 100_000]);
        t.rcv_nxt = t.rcv_nxt.wrapping_add(100_000);
        let w = t.window_to_advertise();
        assert_eq!(t.rcv_adv, edge);
        assert_eq!(w, ((1 << 20) - 100_000) >> 5);
    }

    #[test]
    fn a_window_the_shift_cannot_say_exactly_is_rounded_up_not_down() {
        let mut t = receiver(1 << 20, 1448);
        t.rcv_wscale = 7;
        assert_eq!(t.window_to_advertise(), 8192);
        let edge = t.rcv_adv;
        // 1000 bytes arrive and are not read: the window left, 1047576
        // bytes, is not a multiple of 128. Rounding down would move the
        // edge 24 bytes left; it is rounded up instead (104 bytes right).
        t.rcvbuf.insert(0, &[0; 1000]);
        t.rcv_nxt = t.rcv_nxt.wrapping_add(1000);
        assert_eq!(t.window_to_advertise(), 8185);
        assert_eq!(t.rcv_adv, edge.wrapping_add(104));
    }

    #[test]
    fn under_memory_pressure_the_window_stops_opening_but_is_not_taken_back() {
        let mut t = receiver(60_000, 1000);
        assert_eq!(t.window_to_advertise(), 60_000);
        let edge = t.rcv_adv;
        t.rcvbuf.insert(0, &[0; 40_000]);
        t.rcv_nxt = t.rcv_nxt.wrapping_add(40_000);
        let mut out = vec![0u8; 40_000];
        t.rcvbuf.read(&mut out, true);
        // The buffer is empty again, but the stack allows 5000 bytes.
        t.tune.wnd_clamp = 5000;
        assert_eq!(t.window_to_advertise(), 20_000);
        assert_eq!(t.rcv_adv, edge);
        // Pressure over: the window opens to the whole buffer.
        t.tune.wnd_clamp = usize::MAX;
        assert_eq!(t.window_to_advertise(), 60_000);
    }
}
