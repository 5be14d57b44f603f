//! TCP counters, listed under "tcp" by `crate::counters`.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Connections started by connect(2) (RFC 4022 tcpActiveOpens).
    pub active_opens: u64,
    /// Connections started by a SYN to a listener (tcpPassiveOpens).
    pub passive_opens: u64,
    /// Attempts that failed: SYN-SENT or SYN-RECEIVED to CLOSED.
    pub attempt_fails: u64,
    /// Established connections reset (tcpEstabResets).
    pub estab_resets: u64,
    /// Connections that reached ESTABLISHED.
    pub established: u64,
    pub segs_in: u64,
    pub segs_out: u64,
    pub retrans_segs: u64,
    pub bad_checksum: u64,
    pub malformed: u64,
    pub resets_in: u64,
    pub resets_out: u64,
    /// RFC 5961 challenge ACKs sent, and those held back by the limit.
    pub challenge_acks: u64,
    pub challenge_acks_limited: u64,
    /// Segments to no connection and no listener.
    pub no_port: u64,
    /// SYNs dropped because a listener's queues were full.
    pub listen_overflows: u64,
    pub timeouts: u64,
    pub fast_retransmits: u64,
    pub delayed_acks: u64,
    pub window_probes: u64,
    pub keepalive_probes: u64,
    pub keepalive_drops: u64,
    /// Segments outside the receive window, or failing PAWS.
    pub out_of_window: u64,
    pub ooo_segments: u64,
    /// Data segments that brought nothing new (all below RCV.NXT): a
    /// needless retransmission or a duplicate from the network.
    pub dup_segments: u64,
    /// Connections refused because the connection table was full.
    pub table_full: u64,
    /// Loss recoveries driven by the SACK scoreboard (RFC 6675), and the
    /// segments they retransmitted.
    pub sack_recoveries: u64,
    pub sack_retransmits: u64,
    /// Retransmission timer expiries on established connections.
    pub rexmit_timeouts: u64,
    /// SYN cookies sent, accepted on a final ACK, and refused as forged
    /// or stale (RFC 4987 section 3.6).
    pub syncookies_sent: u64,
    pub syncookies_recv: u64,
    pub syncookies_failed: u64,
    /// ICMP errors applied to a connection, and those ignored because
    /// they quoted no data in flight (RFC 5927).
    pub icmp_errors: u64,
    pub icmp_ignored: u64,
    /// Connections whose MSS a path MTU report lowered.
    pub pmtu_shrinks: u64,
    /// Times auto-tuning grew a receive buffer, and a send buffer.
    pub rcvbuf_grown: u64,
    pub sndbuf_grown: u64,
    /// Times the stack came under memory pressure (buffered bytes past
    /// three quarters of net.inet.tcp.mem_max).
    pub mem_pressures: u64,
    /// Segments whose data was cut because the stack-wide buffer limit
    /// was reached.
    pub mem_drops: u64,
    /// Segments RACK found lost (RFC 8985 section 6.2), and expiries of
    /// its reordering timer.
    pub rack_lost: u64,
    pub rack_reo_timeouts: u64,
    /// Tail loss probes sent, and losses a probe repaired (RFC 8985
    /// section 7).
    pub tlp_probes: u64,
    pub tlp_recoveries: u64,
    /// DSACK blocks received (a segment the peer got twice) and sent
    /// (RFC 2883).
    pub dsacks_in: u64,
    pub dsacks_out: u64,
    /// Recoveries found needless by DSACKs and undone.
    pub undos: u64,
}
