//! The socket calls on TCP sockets, as `crate::transport` dispatches them.

use std::net::{IpAddr, SocketAddr};

use super::buffers::{MAX_BUF, MIN_BUF, RecvBuf, SendBuf};
use super::listen::Listener;
use super::tcb::{State, Tcb};
use super::{EPHEMERAL_FIRST, EPHEMERAL_LAST};
use crate::ctx::Ctx;
use crate::error::Error;
use crate::socket::SocketId;
use crate::stack::Stack;
use crate::transport::{Readiness, RecvInfo, SockOpt, SockOptName, SocketInfo};

fn family_ok(t: &Tcb, a: &SocketAddr) -> Result<(), Error> {
    if a.is_ipv6() != t.v6 {
        return Err(Error::Invalid("address family of the socket".into()));
    }
    Ok(())
}

impl Stack {
    fn tcb(&self, id: SocketId) -> Result<&Tcb, Error> {
        self.tcp.conns.get(&id).ok_or(Error::BadSocket)
    }

    fn tcb_mut(&mut self, id: SocketId) -> Result<&mut Tcb, Error> {
        self.tcp.conns.get_mut(&id).ok_or(Error::BadSocket)
    }

    pub(crate) fn tcp_open(&mut self, ctx: &mut impl Ctx, v6: bool) -> Result<SocketId, Error> {
        let _ = ctx;
        self.tcp_new_socket(v6).ok_or_else(|| {
            self.tcp.stats.table_full += 1;
            Error::NoBuffers
        })
    }

    fn is_our_addr(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(x) => x.is_unspecified() || self.is_local4(x),
            IpAddr::V6(x) => {
                x.is_unspecified() || x.is_loopback() || self.local_iface6(&x).is_some()
            }
        }
    }

    /// Would binding `id` to `local` clash with another socket? Two
    /// sockets clash on the same port when their addresses overlap,
    /// unless both set SO_REUSEADDR and neither listens (TIME-WAIT
    /// connections never block an SO_REUSEADDR bind, as on Linux).
    fn tcp_bind_clash(&self, id: SocketId, local: SocketAddr) -> bool {
        if !self.tcp.port_refs.contains_key(&local.port()) {
            return false;
        }
        let me = self.tcp.conns.get(&id);
        let reuse = me.is_some_and(|t| t.opts.reuse_addr);
        self.tcp.conns.iter().any(|(oid, o)| {
            let Some(a) = o.local else { return false };
            if *oid == id || a.port() != local.port() || a.is_ipv6() != local.is_ipv6() {
                return false;
            }
            let overlap =
                a.ip() == local.ip() || a.ip().is_unspecified() || local.ip().is_unspecified();
            if !overlap {
                return false;
            }
            let tolerated = reuse
                && (o.state == State::TimeWait || (o.opts.reuse_addr && o.state != State::Listen));
            !tolerated
        })
    }

    /// A free port for a bind to port 0 (RFC 6056: a random start, then
    /// the next free one).
    fn tcp_pick_port(&mut self, ctx: &mut impl Ctx) -> Option<u16> {
        let span = u32::from(EPHEMERAL_LAST - EPHEMERAL_FIRST) + 1;
        let start = ctx.random_below(u64::from(span)) as u32;
        (0..span)
            .map(|i| EPHEMERAL_FIRST + ((start + i) % span) as u16)
            .find(|p| !self.tcp.port_refs.contains_key(p))
    }

    pub(crate) fn tcp_bind(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        mut local: SocketAddr,
    ) -> Result<(), Error> {
        let t = self.tcb(id)?;
        family_ok(t, &local)?;
        if t.local.is_some() {
            return Err(Error::Invalid("socket already bound".into()));
        }
        if !self.is_our_addr(local.ip()) {
            return Err(Error::AddrNotAvailable);
        }
        if local.port() == 0 {
            local.set_port(self.tcp_pick_port(ctx).ok_or(Error::AddrInUse)?);
        } else if self.tcp_bind_clash(id, local) {
            return Err(Error::AddrInUse);
        }
        self.tcb_mut(id)?.local = Some(local);
        self.tcp_claim_port(local.port());
        Ok(())
    }

    pub(crate) fn tcp_connect(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        remote: SocketAddr,
    ) -> Result<(), Error> {
        let t = self.tcb(id)?;
        family_ok(t, &remote)?;
        match t.state {
            State::Closed if t.remote.is_none() => {}
            State::SynSent | State::SynReceived => return Err(Error::Already),
            State::Listen => return Err(Error::Invalid("listening socket".into())),
            _ => return Err(Error::IsConnected),
        }
        if remote.ip().is_unspecified() || remote.port() == 0 {
            return Err(Error::Invalid("destination address".into()));
        }
        if remote.ip().is_multicast() {
            return Err(Error::NetUnreachable);
        }
        let bound = t.local;
        // The source: the bound address, or the one the route chooses.
        let src = match bound.map(|a| a.ip()).filter(|a| !a.is_unspecified()) {
            Some(a) => a,
            None => match remote.ip() {
                IpAddr::V4(d) => {
                    IpAddr::V4(self.ipv4_select_source(d).ok_or(Error::NetUnreachable)?)
                }
                IpAddr::V6(d) => {
                    IpAddr::V6(self.ipv6_select_source(&d).ok_or(Error::NetUnreachable)?)
                }
            },
        };
        let local = match bound {
            Some(b) => {
                let l = SocketAddr::new(src, b.port());
                if self.tcp.by_tuple.contains_key(&(l, remote)) {
                    return Err(Error::AddrInUse);
                }
                l
            }
            None => {
                // RFC 6056 section 3.3.1: random start, then the next port
                // whose 4-tuple is free and that no listener holds.
                let span = u32::from(EPHEMERAL_LAST - EPHEMERAL_FIRST) + 1;
                let start = ctx.random_below(u64::from(span)) as u32;
                let port = (0..span)
                    .map(|i| EPHEMERAL_FIRST + ((start + i) % span) as u16)
                    .find(|p| {
                        !self.tcp.listeners.contains_key(p)
                            && !self
                                .tcp
                                .by_tuple
                                .contains_key(&(SocketAddr::new(src, *p), remote))
                    })
                    .ok_or(Error::AddrNotAvailable)?;
                self.tcp_claim_port(port);
                SocketAddr::new(src, port)
            }
        };
        let now = ctx.now();
        let our_mss = self.tcp_route_mss(remote.ip());
        let iss = self.tcp.key.isn(local, remote, now);
        let sack_offer = self.tcp.sack_enabled;
        let wscale = self.tcp_rcv_wscale(self.tcb(id)?);
        let t = self.tcb_mut(id)?;
        t.sack_ok = sack_offer;
        t.local = Some(local);
        t.remote = Some(remote);
        t.our_mss = if t.opts.max_seg > 0 {
            our_mss.min(t.opts.max_seg)
        } else {
            our_mss
        };
        t.iss = iss;
        t.snd_una = iss;
        t.snd_nxt = iss.wrapping_add(1);
        t.snd_max = t.snd_nxt;
        t.snd_buf_seq = t.snd_nxt;
        t.rcv_wscale = wscale;
        t.state = State::SynSent;
        t.rtt_timed = Some((iss, now));
        t.arm_rexmit(now);
        self.tcp.by_tuple.insert((local, remote), id);
        self.tcp.stats.active_opens += 1;
        self.tcp_send_syn(ctx, id);
        self.tcp_rearm(id);
        Err(Error::InProgress)
    }

    pub(crate) fn tcp_listen(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        backlog: u32,
    ) -> Result<(), Error> {
        let t = self.tcb(id)?;
        match t.state {
            State::Listen => {
                // listen(2) again changes the backlog.
                let cap = self.config.somaxconn;
                if let Some(l) = self.tcb_mut(id)?.listen.as_mut() {
                    l.backlog = Listener::new(backlog, cap).backlog;
                }
                return Ok(());
            }
            State::Closed if t.remote.is_none() => {}
            _ => return Err(Error::Invalid("socket is connected".into())),
        }
        if t.local.is_none() {
            let any = if t.v6 {
                SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0)
            } else {
                SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0)
            };
            self.tcp_bind(ctx, id, any)?;
        }
        let cap = self.config.somaxconn;
        let t = self.tcb_mut(id)?;
        let port = t.local.map_or(0, |a| a.port());
        t.state = State::Listen;
        t.listen = Some(Listener::new(backlog, cap));
        self.tcp.listeners.entry(port).or_default().push(id);
        Ok(())
    }

    pub(crate) fn tcp_accept(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
    ) -> Result<(SocketId, SocketAddr), Error> {
        let _ = ctx;
        let t = self.tcb_mut(id)?;
        let l = t
            .listen
            .as_mut()
            .ok_or_else(|| Error::Invalid("socket is not listening".into()))?;
        let child = l.accept_queue.pop_front().ok_or(Error::WouldBlock)?;
        let c = self.tcb_mut(child)?;
        c.parent = None;
        let peer = c.remote.ok_or(Error::ConnAborted)?;
        Ok((child, c.app_addr(peer)))
    }

    pub(crate) fn tcp_send(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        data: &[u8],
    ) -> Result<usize, Error> {
        let room = self.tcp_send_room(id)?;
        if data.is_empty() {
            return Ok(0);
        }
        if room == 0 {
            return Err(self.tcp_send_refused(id));
        }
        let n = self.tcb_mut(id)?.sndbuf.push(&data[..data.len().min(room)]);
        self.tcp_sent_into_buffer(ctx, id);
        Ok(n)
    }

    /// Like `tcp_send`, but the bytes are written into the send buffer in
    /// place by `fill` (see `SendBuf::fill_with`), at most `max` of them.
    /// `Ok(0)`: `fill` wrote nothing although there was room;
    /// `Error::WouldBlock`: no room (and `fill` was not called).
    pub(crate) fn tcp_send_with(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        max: usize,
        fill: impl FnOnce(&mut [u8], &mut [u8]) -> usize,
    ) -> Result<usize, Error> {
        let room = self.tcp_send_room(id)?.min(max);
        if room == 0 {
            return Err(self.tcp_send_refused(id));
        }
        let n = self.tcb_mut(id)?.sndbuf.fill_with(room, fill);
        if n > 0 {
            self.tcp_sent_into_buffer(ctx, id);
        }
        Ok(n)
    }

    /// The bytes a send may queue now, or why it may not (a pending error,
    /// a state that takes no data): the send buffer's room within the
    /// stack-wide memory bound.
    fn tcp_send_room(&mut self, id: SocketId) -> Result<usize, Error> {
        let t = self.tcb_mut(id)?;
        if let Some(e) = t.error.take() {
            return Err(e);
        }
        if t.fin_queued {
            return Err(Error::BrokenPipe);
        }
        match t.state {
            State::Established | State::CloseWait => {}
            State::SynSent | State::SynReceived => return Err(Error::WouldBlock),
            State::Closed if t.remote.is_some() => return Err(Error::BrokenPipe),
            State::Closed | State::Listen => return Err(Error::NotConnected),
            _ => return Err(Error::BrokenPipe),
        }
        let room = self.tcp_mem_snd_room(self.tcb(id)?);
        Ok(room.min(self.tcb(id)?.sndbuf.space()))
    }

    /// A send found no room: `WouldBlock`, after noting a writer to wake
    /// if memory rather than the buffer was short.
    fn tcp_send_refused(&mut self, id: SocketId) -> Error {
        if self.tcb(id).is_ok_and(|t| t.sndbuf.space() > 0) {
            self.tcp.mem.blocked.insert(id);
        }
        Error::WouldBlock
    }

    /// New bytes are in the send buffer: send what the windows allow.
    fn tcp_sent_into_buffer(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        self.tcp_output(ctx, id, false);
        self.tcp_rearm(id);
        self.tcp_mem_recharge(ctx, id);
    }

    pub(crate) fn tcp_recv(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<RecvInfo, Error> {
        let t = self.tcb_mut(id)?;
        if !t.rcvbuf.is_empty() && !buf.is_empty() {
            let n = t.rcvbuf.read(buf, !peek);
            if !peek {
                self.tcp_read_from_buffer(ctx, id, n)?;
            }
            return Ok(recv_info(n));
        }
        self.tcp_recv_nothing(id, buf.is_empty())
    }

    /// Like `tcp_recv`, but the readable bytes (at most `max`) are offered
    /// in place to `drain` (see `RecvBuf::drain_with`), which returns how
    /// many it took. When bytes were readable the answer is `Ok` with the
    /// count taken, even 0 (`drain` took none); when none were, as
    /// `tcp_recv` (`Ok(0)` at end of stream, errors, `WouldBlock`).
    pub(crate) fn tcp_recv_with(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        max: usize,
        drain: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Result<RecvInfo, Error> {
        let t = self.tcb_mut(id)?;
        if !t.rcvbuf.is_empty() && max > 0 {
            let n = t.rcvbuf.drain_with(max, drain);
            if n > 0 {
                self.tcp_read_from_buffer(ctx, id, n)?;
            }
            return Ok(recv_info(n));
        }
        self.tcp_recv_nothing(id, max == 0)
    }

    /// The application took `n` bytes out of the receive buffer.
    fn tcp_read_from_buffer(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        n: usize,
    ) -> Result<(), Error> {
        // What the application reads per round trip sizes the buffer
        // (`super::autotune`).
        let now = ctx.now();
        self.tcp_rcv_space_adjust(id, n, now);
        self.tcp_mem_recharge(ctx, id);
        let clamp = self.tcp_mem_wnd_clamp(self.tcb(id)?);
        let t = self.tcb_mut(id)?;
        t.tune.wnd_clamp = clamp;
        // Tell the peer when reading opened the window noticeably
        // (RFC 9293 section 3.8.6.2.2).
        if t.state.synchronized() && t.window_update_due() {
            self.tcp_send_ack(ctx, id);
            self.tcp_rearm(id);
        }
        Ok(())
    }

    /// A receive with nothing readable: the pending error, end of stream,
    /// or `WouldBlock`.
    fn tcp_recv_nothing(&mut self, id: SocketId, empty_buf: bool) -> Result<RecvInfo, Error> {
        let t = self.tcb_mut(id)?;
        if let Some(e) = t.error.take() {
            return Err(e);
        }
        if t.rcv_fin || t.shut_rd {
            return Ok(recv_info(0));
        }
        match t.state {
            State::Closed | State::Listen => Err(Error::NotConnected),
            _ if empty_buf => Ok(recv_info(0)),
            _ => Err(Error::WouldBlock),
        }
    }

    pub(crate) fn tcp_shutdown(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        read: bool,
        write: bool,
    ) -> Result<(), Error> {
        let t = self.tcb_mut(id)?;
        match t.state {
            State::Closed | State::Listen => return Err(Error::NotConnected),
            State::SynSent => {
                // Nothing was exchanged yet: shutting the socket down ends
                // the attempt.
                self.tcp_closed(ctx, id);
                return Ok(());
            }
            _ => {}
        }
        if read {
            t.shut_rd = true;
        }
        if write && !t.fin_queued {
            t.fin_queued = true;
            match t.state {
                State::Established | State::SynReceived => t.state = State::FinWait1,
                State::CloseWait => t.state = State::LastAck,
                _ => {}
            }
            self.tcp_output(ctx, id, false);
        }
        self.tcp_rearm(id);
        ctx.socket_ready(id);
        Ok(())
    }

    pub(crate) fn tcp_close(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        t.orphan = true;
        match t.state {
            State::Listen => {
                // Pending connections of a closed listener are reset.
                let children: Vec<SocketId> = self
                    .tcp
                    .conns
                    .iter()
                    .filter(|(_, c)| c.parent == Some(id))
                    .map(|(cid, _)| *cid)
                    .collect();
                for c in children {
                    if let Some(ct) = self.tcp.conns.get_mut(&c) {
                        ct.orphan = true;
                    }
                    self.tcp_send_rst(ctx, c);
                    self.tcp_closed(ctx, c);
                }
                self.tcp_forget(id);
            }
            State::Closed | State::SynSent => self.tcp_closed(ctx, id),
            _ => {
                // RFC 9293 section 3.10.4 / RFC 2525 2.17: unread data, or
                // SO_LINGER with a zero timeout, aborts with a reset.
                if !t.rcvbuf.is_empty() || t.opts.linger == Some(0) || t.state == State::SynReceived
                {
                    self.tcp_send_rst(ctx, id);
                    self.tcp_closed(ctx, id);
                    return;
                }
                if !t.fin_queued {
                    t.fin_queued = true;
                    match t.state {
                        State::Established => t.state = State::FinWait1,
                        State::CloseWait => t.state = State::LastAck,
                        _ => {}
                    }
                }
                if t.state == State::FinWait2 {
                    let now = ctx.now();
                    t.timers.close = Some(now + super::tcb::FIN_WAIT2_TIMEOUT);
                }
                if t.state == State::TimeWait {
                    // Nothing left for the application.
                }
                self.tcp_output(ctx, id, false);
                self.tcp_rearm(id);
                // The handle is gone; the connection finishes alone.
                self.sockets.remove(id);
            }
        }
    }

    pub(crate) fn tcp_setopt(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        opt: SockOpt,
    ) -> Result<(), Error> {
        let t = self.tcb_mut(id)?;
        let mut kick = false;
        match opt {
            SockOpt::NoDelay(v) => {
                t.opts.nodelay = v;
                kick = v;
            }
            SockOpt::KeepAlive(v) => {
                t.opts.keepalive = v;
                let now = ctx.now();
                t.arm_keepalive(now);
            }
            SockOpt::KeepIdle(s) | SockOpt::KeepIntvl(s) if s == 0 || s > 32_767 => {
                return Err(Error::Invalid("keepalive time 1 to 32767 s".into()));
            }
            SockOpt::KeepIdle(s) => {
                t.opts.keep_idle = s;
                let now = ctx.now();
                t.arm_keepalive(now);
            }
            SockOpt::KeepIntvl(s) => t.opts.keep_intvl = s,
            SockOpt::KeepCnt(n) if n == 0 || n > 127 => {
                return Err(Error::Invalid("keepalive count 1 to 127".into()));
            }
            SockOpt::KeepCnt(n) => t.opts.keep_cnt = n,
            SockOpt::Linger(l) => t.opts.linger = l,
            // Setting a size locks it: auto-tuning leaves that direction
            // alone from then on, as on Linux. The size given is what the
            // buffer holds; getsockopt reports twice it, as Linux does
            // (see tcp_getopt).
            SockOpt::RecvBuf(n) => {
                let n = n.clamp(MIN_BUF, MAX_BUF);
                t.tune.rcv_locked = true;
                if t.rcvbuf.held() == 0 && !t.state.synchronized() {
                    t.rcvbuf = RecvBuf::new(n);
                } else {
                    // The window scale is fixed by now, and the window
                    // never shrinks: a smaller buffer takes effect as the
                    // advertised window drains.
                    t.rcvbuf.cap = n.max(t.rcvbuf.len());
                }
            }
            SockOpt::SendBuf(n) => {
                t.tune.snd_locked = true;
                if t.sndbuf.is_empty() {
                    t.sndbuf = SendBuf::new(n.clamp(MIN_BUF, MAX_BUF));
                } else {
                    t.sndbuf.cap = n.clamp(MIN_BUF, MAX_BUF).max(t.sndbuf.len());
                }
            }
            SockOpt::MaxSeg(m) => {
                if !(88..=65_495).contains(&m) && m != 0 {
                    return Err(Error::Invalid("TCP_MAXSEG 88 to 65495".into()));
                }
                t.opts.max_seg = m;
            }
            SockOpt::ReuseAddr(v) => t.opts.reuse_addr = v,
            SockOpt::ReusePort(v) => t.opts.reuse_port = v,
            SockOpt::V6Only(v) => t.opts.v6only = v,
            SockOpt::Ttl(v) => t.opts.ttl = Some(v),
            SockOpt::Congestion(name) => {
                let c = super::cc::by_name(&name, t.mss)
                    .ok_or_else(|| Error::Invalid(format!("congestion control {name}")))?;
                t.cc = c;
            }
            other => return Err(Error::NotSupported(format!("{other:?} on a TCP socket"))),
        }
        if kick {
            self.tcp_output(ctx, id, false);
        }
        // Keepalive options move a timer.
        self.tcp_rearm(id);
        Ok(())
    }

    pub(crate) fn tcp_getopt(&self, id: SocketId, name: SockOptName) -> Result<SockOpt, Error> {
        let t = self.tcb(id)?;
        let o = &t.opts;
        Ok(match name {
            SockOptName::NoDelay => SockOpt::NoDelay(o.nodelay),
            SockOptName::KeepAlive => SockOpt::KeepAlive(o.keepalive),
            SockOptName::KeepIdle => SockOpt::KeepIdle(o.keep_idle),
            SockOptName::KeepIntvl => SockOpt::KeepIntvl(o.keep_intvl),
            SockOptName::KeepCnt => SockOpt::KeepCnt(o.keep_cnt),
            SockOptName::Linger => SockOpt::Linger(o.linger),
            // Linux reports twice the size set (the other half stands for
            // its per-packet bookkeeping), and applications expect that:
            // SO_RCVBUF 65536 reads back as 131072. The buffer holds the
            // size set; what is reported is twice the current size,
            // auto-tuned or locked.
            SockOptName::RecvBuf => SockOpt::RecvBuf(t.rcvbuf.cap.saturating_mul(2)),
            SockOptName::SendBuf => SockOpt::SendBuf(t.sndbuf.cap.saturating_mul(2)),
            SockOptName::MaxSeg => SockOpt::MaxSeg(if t.state.synchronized() {
                t.mss.min(65_535) as u16
            } else if o.max_seg > 0 {
                o.max_seg
            } else {
                super::tcb::DEFAULT_MSS_V4
            }),
            SockOptName::ReuseAddr => SockOpt::ReuseAddr(o.reuse_addr),
            SockOptName::ReusePort => SockOpt::ReusePort(o.reuse_port),
            SockOptName::V6Only => SockOpt::V6Only(o.v6only),
            SockOptName::Ttl => SockOpt::Ttl(o.ttl.unwrap_or(self.config.ttl)),
            SockOptName::Congestion => SockOpt::Congestion(t.cc.name().to_string()),
            other => return Err(Error::NotSupported(format!("{other:?} on a TCP socket"))),
        })
    }

    pub(crate) fn tcp_readiness(&self, id: SocketId) -> Readiness {
        let Some(t) = self.tcp.conns.get(&id) else {
            return Readiness {
                error: true,
                hup: true,
                ..Readiness::default()
            };
        };
        if let Some(l) = &t.listen {
            return Readiness {
                readable: !l.accept_queue.is_empty(),
                ..Readiness::default()
            };
        }
        let connected = matches!(t.state, State::Established | State::CloseWait);
        let closed_after_use = t.state == State::Closed && t.remote.is_some();
        Readiness {
            readable: !t.rcvbuf.is_empty()
                || t.rcv_fin
                || t.shut_rd
                || t.error.is_some()
                || closed_after_use,
            writable: (connected && !t.fin_queued && self.tcp_mem_snd_room(t) > 0)
                || t.error.is_some()
                || closed_after_use,
            error: t.error.is_some(),
            hup: closed_after_use || (t.rcv_fin && t.fin_queued),
        }
    }

    pub(crate) fn tcp_take_error(&mut self, id: SocketId) -> Option<Error> {
        self.tcp.conns.get_mut(&id)?.error.take()
    }

    pub(crate) fn tcp_local(&self, id: SocketId) -> Option<SocketAddr> {
        let t = self.tcp.conns.get(&id)?;
        t.local.map(|a| t.app_addr(a))
    }

    pub(crate) fn tcp_peer(&self, id: SocketId) -> Option<SocketAddr> {
        let t = self.tcp.conns.get(&id)?;
        if t.state.synchronized() || t.state == State::SynReceived {
            t.remote.map(|a| t.app_addr(a))
        } else {
            None
        }
    }

    /// Every TCP connection, those the application already closed
    /// (FIN-WAIT, TIME-WAIT, …) included, for `netstat -a`; sorted by id.
    pub fn tcp_connections(&self) -> Vec<SocketInfo> {
        let mut v: Vec<SocketInfo> = self
            .tcp
            .conns
            .keys()
            .filter_map(|id| self.tcp_info(*id))
            .collect();
        v.sort_by_key(|i| i.id);
        v
    }

    pub(crate) fn tcp_info(&self, id: SocketId) -> Option<SocketInfo> {
        let t = self.tcp.conns.get(&id)?;
        Some(SocketInfo {
            id,
            proto: if t.v6 { "tcp6" } else { "tcp" },
            local: t.local,
            remote: t.remote,
            state: t.state.name(),
            recv_queue: t.rcvbuf.len(),
            send_queue: t.sndbuf.len(),
        })
    }
}

/// What a stream receive of `len` bytes reports (no address, never
/// truncated).
fn recv_info(len: usize) -> RecvInfo {
    RecvInfo {
        len,
        from: None,
        truncated: false,
        full_len: len,
        pktinfo: None,
    }
}
