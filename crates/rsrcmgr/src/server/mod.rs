//! The resource manager's server: a thread running a mio loop over the
//! listening socket and every client connection.
//!
//! The daemon starts it with [`Server::start`], giving access to the stack
//! through a [`StackHost`]; the returned [`Notifier`] is what the daemon's
//! `Ctx::socket_ready` calls. Requests are answered in the loop; `mount` and
//! `destroy` run on threads of their own so a slow module load does not stall
//! other clients, and their answers may overtake earlier requests' (clients
//! match answers by request id).
//!
//! Application sockets (UDP, TCP) are socket pairs whose io-pkt ends the
//! same loop serves (module `appsock`): data moves between them and the stack
//! on readiness of either side.

mod appsock;
mod arenas;
mod buffer_share;
mod busy_poll;
mod conn;
mod connect_gate;
pub(crate) mod handle;
mod host;
mod listen;

use std::collections::BTreeSet;

// The loop looks its tables up several times per message; their keys are
// handles io-pkt or the kernel hands out (tokens, socket ids, inode
// numbers), not values a peer picks, so a fast hash without SipHash's
// flooding resistance is the right one.
use foldhash::{HashMap, HashMapExt};
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use iopkt_stack::socket::SocketId;
use mio::net::UnixListener;
use mio::{Events, Interest, Poll, Token, Waker};

pub use appsock::{MAX_APP_SOCKETS, MAX_APP_SOCKETS_PER_CLIENT};
pub use buffer_share::BUFFER_LIMIT_PER_CLIENT;
pub use conn::{MAX_ASYNC_PER_CLIENT, MAX_SOCKETS_PER_CLIENT, OUTPUT_LIMIT, OUTPUT_PAUSE};
pub use host::StackHost;
pub use listen::StartError;

use crate::proto::errno::{self, errno_of};
use crate::proto::{
    Event, Frame, Kind, ProtoError, Request, Response, StatEntry, decode_request_body, encode_event,
};
use conn::{Conn, ReadOutcome};
use listen::BoundPath;

/// Connections served at once at most; more are closed as they arrive.
pub const MAX_CLIENTS: usize = 1024;
/// `mount`/`destroy` requests running at once, all clients together.
pub const MAX_ASYNC: usize = 16;
/// Replies taken from one socket per wake-up, so one busy socket cannot
/// starve the others.
const RECV_BUDGET: usize = 64;
/// Sockets remembered as ready at most between two turns of the loop.
const MAX_READY: usize = 1 << 16;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CLIENT: usize = 2;

/// The refusal every privileged request from a non-root peer gets.
pub const PERMISSION_DENIED: &str =
    "permission denied: changing the stack's configuration needs root (or the user io-pkt runs as)";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The answer of a `mount` or `destroy` that ran on its own thread.
struct Completion {
    token: Token,
    id: u32,
    resp: Response,
}

struct Shared {
    waker: Waker,
    stop: AtomicBool,
    ready: Mutex<BTreeSet<SocketId>>,
    done: Mutex<Vec<Completion>>,
    /// Bytes io-pkt may hold for one client's application sockets.
    buffer_limit: AtomicUsize,
    /// The loop's thread, once it runs.
    loop_thread: std::sync::OnceLock<std::thread::ThreadId>,
}

/// Tells the server that a socket has news (the daemon's
/// `Ctx::socket_ready`). Cheap, thread-safe, never blocks on I/O; may be
/// called with the stack locked.
#[derive(Clone)]
pub struct Notifier {
    shared: Arc<Shared>,
}

impl Notifier {
    fn on_loop_thread(&self) -> bool {
        self.shared.loop_thread.get() == Some(&std::thread::current().id())
    }

    pub fn socket_ready(&self, sock: SocketId) {
        let mut ready = lock(&self.shared.ready);
        let was_empty = ready.is_empty();
        if ready.len() < MAX_READY {
            ready.insert(sock);
        }
        drop(ready);
        // The loop takes the whole set at once, so only the first addition
        // after it emptied the set needs to wake it. News the loop's own
        // socket calls made needs no wake-up at all: the loop looks at the
        // set before it waits again.
        if was_empty && !self.on_loop_thread() {
            let _ = self.shared.waker.wake();
        }
    }
}

/// A running resource manager. Dropping it shuts it down.
pub struct Server {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Server {
    /// Creates `<prefix>/dev/socket` and starts serving it on a new thread.
    /// The path appears only once the server listens. Fails if another
    /// server answers on the path; a stale socket file is replaced.
    pub fn start<H: StackHost>(
        prefix: &Path,
        host: Arc<H>,
    ) -> Result<(Server, Notifier), StartError> {
        let (mut listener, bound) = listen::bind(prefix)?;
        let path = bound.path.clone();
        let fail = |what, err| {
            bound.remove();
            StartError::Io {
                what,
                path: path.clone(),
                err,
            }
        };
        let poll = Poll::new().map_err(|e| fail("create an event loop for", e))?;
        let waker =
            Waker::new(poll.registry(), WAKER).map_err(|e| fail("create a waker for", e))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| fail("watch", e))?;
        let shared = Arc::new(Shared {
            waker,
            stop: AtomicBool::new(false),
            ready: Mutex::new(BTreeSet::new()),
            done: Mutex::new(Vec::new()),
            buffer_limit: AtomicUsize::new(BUFFER_LIMIT_PER_CLIENT),
            loop_thread: std::sync::OnceLock::new(),
        });
        let mut lp = Loop {
            host,
            shared: shared.clone(),
            poll,
            listener,
            bound,
            conns: HashMap::new(),
            owners: HashMap::new(),
            next_token: FIRST_CLIENT,
            apps: HashMap::new(),
            app_tokens: HashMap::new(),
            app_keys: HashMap::new(),
            app_counts: HashMap::new(),
            app_held: HashMap::new(),
            again: BTreeSet::new(),
            tombs: HashMap::new(),
            tomb_order: std::collections::VecDeque::new(),
            deferred: Vec::new(),
            running: Arc::new(AtomicUsize::new(0)),
            scratch: Vec::new(),
            arenas: arenas::Arenas::default(),
            hot: Vec::new(),
            hot_until: None,
        };
        let thread = std::thread::Builder::new()
            .name("iopkt-rsrcmgr".into())
            .spawn(move || lp.run());
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(StartError::Io {
                    what: "start a thread to serve",
                    path,
                    err: e,
                });
            }
        };
        Ok((
            Server {
                shared: shared.clone(),
                thread: Some(thread),
                path,
            },
            Notifier { shared },
        ))
    }

    /// Sets the bytes io-pkt may hold for one client's application
    /// sockets ([`BUFFER_LIMIT_PER_CLIENT`] unless changed).
    pub fn set_buffer_limit_per_client(&self, bytes: usize) {
        self.shared.buffer_limit.store(bytes, Ordering::Relaxed);
    }

    /// `<prefix>/dev/socket`.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// Stops serving: every client is disconnected, their sockets closed, and
    /// the socket path removed.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.shared.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Loop<H: StackHost> {
    host: Arc<H>,
    shared: Arc<Shared>,
    poll: Poll,
    listener: UnixListener,
    bound: BoundPath,
    conns: HashMap<Token, Conn>,
    /// Which connection owns each open socket.
    owners: HashMap<SocketId, Token>,
    next_token: usize,
    /// Application sockets (UDP, TCP) by stack id, by the token of their
    /// pair end, and by the (st_dev, st_ino) of the application's end.
    apps: HashMap<SocketId, appsock::AppSock>,
    app_tokens: HashMap<Token, SocketId>,
    app_keys: HashMap<(u64, u64), SocketId>,
    /// Application sockets each connection created and that are open.
    app_counts: HashMap<Token, usize>,
    /// Bytes held for each connection's application sockets.
    app_held: HashMap<Token, usize>,
    /// Finished TCP connections, by the application end's key.
    tombs: HashMap<(u64, u64), appsock::Tomb>,
    tomb_order: std::collections::VecDeque<(u64, u64)>,
    /// Application sockets with work left over from their last turn.
    again: BTreeSet<SocketId>,
    /// Answers decided outside the requesting connection's turn.
    deferred: Vec<(Token, u32, Response)>,
    /// `mount`/`destroy` threads running.
    running: Arc<AtomicUsize>,
    /// Where application sockets' bytes pass between the pair and the
    /// stack (one buffer for the loop, not one per turn).
    scratch: Vec<u8>,
    /// The shared arenas of TCP sockets' rings, one per client that asked.
    arenas: arenas::Arenas,
    /// Busy polling (busy_poll.rs): ring sockets watched without waiting,
    /// and until when.
    hot: Vec<SocketId>,
    hot_until: Option<std::time::Instant>,
}

impl<H: StackHost> Loop<H> {
    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        let _ = self.shared.loop_thread.set(std::thread::current().id());
        loop {
            // Left-over work, or news this thread's own stack calls made
            // (those do not wake the loop): look at the descriptors without
            // waiting.
            let news = !lock(&self.shared.ready).is_empty();
            let timeout = if self.again.is_empty() && !news && !self.spinning() {
                None
            } else {
                Some(std::time::Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!("resource manager: event loop failed: {e}");
                break;
            }
            if self.shared.stop.load(Ordering::SeqCst) {
                break;
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    t if self.is_app_token(t) => self.app_event(t, ev),
                    t => self.service(t),
                }
            }
            self.deliver_completions();
            self.deliver_socket_news();
            let again = std::mem::take(&mut self.again);
            for id in again {
                self.pump(id);
            }
            self.watch_hot();
            self.deliver_deferred();
            self.sweep();
        }
        self.close_all();
    }

    fn accept_all(&mut self) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, for instance: try again on the
                    // next readiness rather than spin.
                    tracing::warn!("resource manager: accept failed: {e}");
                    return;
                }
            };
            if self.conns.len() >= MAX_CLIENTS {
                tracing::warn!("resource manager: {MAX_CLIENTS} clients already, refusing one");
                continue;
            }
            let (uid, pid) = match rustix::net::sockopt::socket_peercred(&stream) {
                Ok(c) => (c.uid.as_raw(), c.pid.as_raw_nonzero().get()),
                Err(_) => (u32::MAX, 0),
            };
            let token = Token(self.next_token);
            self.next_token += 1;
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::warn!("resource manager: cannot watch a client: {e}");
                continue;
            }
            tracing::debug!(
                "resource manager: client {} (pid {pid}, uid {uid})",
                token.0
            );
            self.conns.insert(token, Conn::new(stream, uid, pid));
        }
    }

    /// Writes what is pending, reads and answers requests while the client's
    /// output is below the pause mark.
    fn service(&mut self, token: Token) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        loop {
            if conn.flush().is_err() {
                conn.dead = true;
                break;
            }
            if !conn.may_read() {
                break;
            }
            match conn.read_some() {
                Ok(ReadOutcome::Data) => self.process_frames(token, &mut conn),
                Ok(ReadOutcome::WouldBlock) => break,
                Ok(ReadOutcome::Eof) => {
                    conn.closing = true;
                    self.process_frames(token, &mut conn);
                }
                Err(_) => conn.dead = true,
            }
        }
        self.conns.insert(token, conn);
    }

    fn process_frames(&mut self, token: Token, conn: &mut Conn) {
        while !conn.dead {
            match conn.framer.next_frame() {
                Ok(Some(f)) => {
                    let fds = std::mem::take(&mut conn.in_fds);
                    self.on_frame(token, conn, f, fds)
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!("resource manager: client {}: {e}", token.0);
                    conn.protocol_error(0, &e);
                    conn.closing = true;
                    conn.framer = Default::default();
                    return;
                }
            }
        }
    }

    fn on_frame(
        &mut self,
        token: Token,
        conn: &mut Conn,
        f: Frame,
        fds: Vec<std::os::fd::OwnedFd>,
    ) {
        let id = f.header.request_id;
        if f.header.kind != Kind::Request {
            conn.protocol_error(id, &ProtoError::UnexpectedKind(f.header.kind));
            return;
        }
        let req = match decode_request_body(&f.body) {
            Ok(r) => r,
            Err(e) => {
                conn.protocol_error(id, &e);
                return;
            }
        };
        // Root may change any stack; the user a stack runs as may change
        // that stack, which it could as well stop and restart.
        if req.is_privileged() && conn.uid != 0 && conn.uid != rustix::process::geteuid().as_raw() {
            conn.respond(id, &Response::error(errno::EPERM, PERMISSION_DENIED));
            return;
        }
        let resp = match req {
            Request::SocketOpen { .. }
            | Request::Bind { .. }
            | Request::Connect { .. }
            | Request::ConnectWait
            | Request::Listen { .. }
            | Request::Accept
            | Request::Shutdown { .. }
            | Request::SetOpt { .. }
            | Request::GetOpt { .. }
            | Request::GetName
            | Request::GetPeer
            | Request::Disconnect
            | Request::SocketOpenRing { .. }
            | Request::AcceptRing
            | Request::RingOf
            | Request::SocketList => {
                self.socket_request(token, conn, id, req, fds);
                return;
            }
            Request::PingOpen { v6 } => self.ping_open(token, conn, v6),
            Request::PingSend { sock, dst, icmp } => self.ping_send(conn, sock, dst, &icmp),
            Request::Close { sock } => self.close(conn, sock),
            Request::Mount {
                instance,
                kind,
                module,
                options,
            } => {
                let mine = self.host.instance();
                if instance != mine {
                    Response::error(
                        errno::EINVAL,
                        format!(
                            "this stack is {}, not {}: use -T {}",
                            instance_name(mine),
                            instance_name(instance),
                            instance_name(mine)
                        ),
                    )
                } else {
                    match self.start_job(token, conn, id, move |h: &H| {
                        match h.mount(kind, &module, &options) {
                            Ok(interfaces) => Response::Mounted { interfaces },
                            Err(m) => Response::error(errno::EINVAL, m),
                        }
                    }) {
                        Some(r) => r,
                        None => return,
                    }
                }
            }
            Request::DestroyInterface { ifname } => {
                let known = self
                    .host
                    .with_stack(|s, _| s.iface_by_name(&ifname).map(|i| i.index));
                match known {
                    None => Response::error(
                        errno::ENXIO,
                        format!("no such interface: {ifname} (list them with ifconfig -a)"),
                    ),
                    Some(iopkt_stack::LOOPBACK_IFINDEX) => {
                        Response::error(errno::EINVAL, format!("{ifname} cannot be destroyed"))
                    }
                    Some(_) => match self.start_job(token, conn, id, move |h: &H| {
                        match h.destroy(&ifname) {
                            Ok(()) => Response::Ok,
                            Err(m) => Response::error(errno::EBUSY, m),
                        }
                    }) {
                        Some(r) => r,
                        None => return,
                    },
                }
            }
            other => {
                let mut r = self
                    .host
                    .with_stack(|s, c| handle::handle_stack_request(s, c, &other))
                    .unwrap_or_else(|| Response::error(errno::ENOSYS, "request not supported"));
                if let Response::Stats(v) = &mut r {
                    let (all, max) = self.held_totals();
                    v.push(StatEntry {
                        name: "sockets.buffered_bytes".into(),
                        value: all,
                    });
                    v.push(StatEntry {
                        name: "sockets.buffered_bytes_max_client".into(),
                        value: max,
                    });
                }
                r
            }
        };
        conn.respond(id, &resp);
    }

    fn ping_open(&mut self, token: Token, conn: &mut Conn, v6: bool) -> Response {
        if conn.sockets.len() >= MAX_SOCKETS_PER_CLIENT {
            return Response::error(
                errno::EMFILE,
                format!("too many sockets on this connection ({MAX_SOCKETS_PER_CLIENT} at most)"),
            );
        }
        match self.host.ping_open(v6) {
            Ok(sock) => {
                conn.sockets.insert(sock);
                self.owners.insert(sock, token);
                Response::SocketOpened { sock: sock.0 }
            }
            Err(e) => Response::error(errno_of(&e), format!("cannot open a ping socket: {e}")),
        }
    }

    fn ping_send(&mut self, conn: &mut Conn, sock: u32, dst: IpAddr, icmp: &[u8]) -> Response {
        let sock = SocketId(sock);
        if !conn.sockets.contains(&sock) {
            return not_open(sock);
        }
        match self.host.ping_send(sock, dst, icmp) {
            Ok(()) => Response::Ok,
            Err(e) => Response::error(errno_of(&e), format!("ping {dst}: {e}")),
        }
    }

    fn close(&mut self, conn: &mut Conn, sock: u32) -> Response {
        let sock = SocketId(sock);
        if !conn.sockets.remove(&sock) {
            return not_open(sock);
        }
        self.owners.remove(&sock);
        self.host.socket_close(&[sock]);
        Response::Ok
    }

    /// Runs `job` on a thread of its own; its answer comes back through the
    /// completion list. Returns an immediate answer if it cannot start.
    fn start_job(
        &mut self,
        token: Token,
        conn: &mut Conn,
        id: u32,
        job: impl FnOnce(&H) -> Response + Send + 'static,
    ) -> Option<Response> {
        if conn.running >= MAX_ASYNC_PER_CLIENT || self.running.load(Ordering::SeqCst) >= MAX_ASYNC
        {
            return Some(Response::error(
                errno::EBUSY,
                "too many module operations in progress: try again when they finish",
            ));
        }
        let host = self.host.clone();
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("iopkt-rsrcmgr-job".into())
            .spawn(move || {
                let resp = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&host)))
                    .unwrap_or_else(|_| {
                        Response::error(errno::EINVAL, "the module operation failed unexpectedly")
                    });
                lock(&shared.done).push(Completion { token, id, resp });
                let _ = shared.waker.wake();
            });
        match spawned {
            Ok(_) => {
                conn.running += 1;
                self.running.fetch_add(1, Ordering::SeqCst);
                None
            }
            Err(e) => Some(Response::error(
                errno::ENOBUFS,
                format!("cannot start the operation: {e}"),
            )),
        }
    }

    fn deliver_completions(&mut self) {
        let done = std::mem::take(&mut *lock(&self.shared.done));
        for c in done {
            self.running.fetch_sub(1, Ordering::SeqCst);
            if let Some(conn) = self.conns.get_mut(&c.token) {
                conn.running = conn.running.saturating_sub(1);
                conn.respond(c.id, &c.resp);
                self.service(c.token);
            }
        }
    }

    fn deliver_deferred(&mut self) {
        let deferred = std::mem::take(&mut self.deferred);
        for (token, id, resp) in deferred {
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.respond(id, &resp);
                self.service(token);
            }
        }
    }

    /// Turns socket news into events for the sockets' owners, and moves
    /// data of application sockets.
    fn deliver_socket_news(&mut self) {
        let ready = std::mem::take(&mut *lock(&self.shared.ready));
        let (apps, ready): (Vec<SocketId>, Vec<SocketId>) =
            ready.into_iter().partition(|s| self.is_app_sock(*s));
        for id in apps {
            self.pump(id);
        }
        let socks: Vec<SocketId> = ready
            .into_iter()
            .filter(|s| self.owners.contains_key(s))
            .collect();
        if socks.is_empty() {
            return;
        }
        // The stack is visited once; events are written after it is released.
        let replies = self.host.ping_recv(&socks, RECV_BUDGET);
        let mut per_sock: HashMap<SocketId, usize> = HashMap::new();
        let mut touched = BTreeSet::new();
        for (sock, r) in replies {
            *per_sock.entry(sock).or_default() += 1;
            let Some(&token) = self.owners.get(&sock) else {
                continue;
            };
            let Some(conn) = self.conns.get_mut(&token) else {
                continue;
            };
            if conn.dead {
                continue;
            }
            let ev = Event::PingReply {
                sock: sock.0,
                from: r.from,
                ttl: r.ttl,
                icmp: r.icmp,
            };
            if let Ok(bytes) = encode_event(&ev) {
                conn.queue(&bytes);
            }
            if conn.pending_output() > OUTPUT_LIMIT {
                tracing::warn!(
                    "resource manager: client {} (pid {}) does not read its events: disconnected",
                    token.0,
                    conn.pid
                );
                conn.dead = true;
            }
            touched.insert(token);
        }
        // A socket that gave its whole budget may hold more: look again on
        // the next turn.
        let more: Vec<SocketId> = per_sock
            .into_iter()
            .filter(|(_, n)| *n >= RECV_BUDGET)
            .map(|(s, _)| s)
            .collect();
        if !more.is_empty() {
            lock(&self.shared.ready).extend(more);
            let _ = self.shared.waker.wake();
        }
        // Writing may also make room for a client whose reading was paused.
        for t in touched {
            if self.conns.get(&t).is_some_and(|c| !c.dead) {
                self.service(t);
            }
        }
    }

    /// Drops finished connections and closes their sockets.
    fn sweep(&mut self) {
        let gone: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.dead || (c.closing && c.pending_output() == 0 && c.running == 0))
            .map(|(t, _)| *t)
            .collect();
        for t in gone {
            if let Some(c) = self.conns.remove(&t) {
                self.drop_conn(t, c);
            }
        }
    }

    fn drop_conn(&mut self, token: Token, mut c: Conn) {
        let _ = self.poll.registry().deregister(&mut c.stream);
        // Its application sockets live on: they belong to whoever holds
        // their descriptors.
        self.app_counts.remove(&token);
        self.arenas.owner_gone(token);
        let socks: Vec<SocketId> = c.sockets.iter().copied().collect();
        for s in &socks {
            self.owners.remove(s);
        }
        if !socks.is_empty() {
            self.host.socket_close(&socks);
        }
        tracing::debug!(
            "resource manager: client {} gone, {} sockets closed",
            token.0,
            socks.len()
        );
    }

    fn close_all(&mut self) {
        let all: Vec<Token> = self.conns.keys().copied().collect();
        for t in all {
            if let Some(c) = self.conns.remove(&t) {
                self.drop_conn(t, c);
            }
        }
        self.close_all_apps();
        self.bound.remove();
    }
}

fn not_open(sock: SocketId) -> Response {
    Response::error(
        errno::EBADF,
        format!("socket {} is not open on this connection", sock.0),
    )
}

/// `io-pkt` for instance 0, `io-pktN` otherwise (the `mount -T` names).
pub fn instance_name(n: u32) -> String {
    if n == 0 {
        "io-pkt".to_string()
    } else {
        format!("io-pkt{n}")
    }
}
