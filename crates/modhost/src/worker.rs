//! Layer-2 worker threads (ARCHITECTURE.md, principle 4). Each worker is an
//! epoll loop over the fd watches assigned to it and a heap of its timers;
//! an eventfd wakes it when another thread adds a timer or asks it to stop.
//!
//! Every callback runs with the worker's `dispatch` lock held, so a thread
//! that unwatches an fd or cancels a timer can wait for a running callback
//! to finish by taking that lock (unless it is that very callback).

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::ffi::{c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use iopkt_module_abi::{IOPKT_FD_ERROR, IOPKT_FD_READ, IOPKT_FD_WRITE};

/// Most timers pending on one worker; beyond it `timer_start` refuses.
pub(crate) const MAX_TIMERS: usize = 1 << 16;

pub(crate) type FdCb = unsafe extern "C" fn(*mut c_void, c_int, u32);
pub(crate) type TimerCb = unsafe extern "C" fn(*mut c_void);

/// A pointer a module handed us for its callbacks. The module promises its
/// callbacks may run on any worker thread.
#[derive(Clone, Copy)]
pub(crate) struct ModPtr(pub *mut c_void);
// SAFETY: see above; the host never dereferences it.
unsafe impl Send for ModPtr {}
// SAFETY: as above; modules promise thread-safe ops (tx from any thread).
unsafe impl Sync for ModPtr {}

pub(crate) enum TimerAction {
    Module { cb: TimerCb, arg: ModPtr },
    Host(Box<dyn FnOnce() + Send>),
}

#[derive(Clone, Copy)]
struct Watch {
    cb: FdCb,
    arg: ModPtr,
}

#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: HashMap<u64, (Instant, TimerAction)>,
}

pub(crate) struct Worker {
    epfd: OwnedFd,
    wake: OwnedFd,
    dispatch: Mutex<()>,
    watches: Mutex<HashMap<RawFd, Watch>>,
    timers: Mutex<Timers>,
    stop: AtomicBool,
}

thread_local! {
    /// The worker this thread runs, if any.
    static CURRENT: Cell<*const Worker> = const { Cell::new(std::ptr::null()) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data (every
    // critical section is a single map or heap operation).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn cvt(rc: c_int) -> io::Result<c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl Worker {
    pub(crate) fn new() -> io::Result<Worker> {
        // SAFETY: plain syscalls; the fds are owned right away.
        let epfd = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        let wake = unsafe {
            OwnedFd::from_raw_fd(cvt(libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            ))?)
        };
        let w = Worker {
            epfd,
            wake,
            dispatch: Mutex::new(()),
            watches: Mutex::new(HashMap::new()),
            timers: Mutex::new(Timers::default()),
            stop: AtomicBool::new(false),
        };
        w.ctl(
            libc::EPOLL_CTL_ADD,
            w.wake.as_raw_fd(),
            libc::EPOLLIN as u32,
        )?;
        Ok(w)
    }

    fn ctl(&self, op: c_int, fd: RawFd, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        // SAFETY: valid epoll fd and event struct.
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    /// True when called from this worker's own thread (inside a callback).
    pub(crate) fn is_current(&self) -> bool {
        CURRENT.with(|c| std::ptr::eq(c.get(), self))
    }

    /// The worker running on this thread, if it is one of `workers`.
    pub(crate) fn current_index(workers: &[Arc<Worker>]) -> Option<usize> {
        let cur = CURRENT.with(|c| c.get());
        workers
            .iter()
            .position(|w| std::ptr::eq(Arc::as_ptr(w), cur))
    }

    fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes to our eventfd; a full counter just means a
        // wake-up is already pending.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    pub(crate) fn watch(&self, fd: RawFd, events: u32, cb: FdCb, arg: ModPtr) -> io::Result<()> {
        let mut ev = 0u32;
        if events & IOPKT_FD_READ != 0 {
            ev |= libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32;
        }
        if events & IOPKT_FD_WRITE != 0 {
            ev |= libc::EPOLLOUT as u32;
        }
        let mut watches = lock(&self.watches);
        let replace = watches.contains_key(&fd);
        let r = if replace {
            // The fd may have been closed and reused without an unwatch, in
            // which case epoll already forgot it.
            self.ctl(libc::EPOLL_CTL_MOD, fd, ev).or_else(|e| {
                if e.raw_os_error() == Some(libc::ENOENT) {
                    self.ctl(libc::EPOLL_CTL_ADD, fd, ev)
                } else {
                    Err(e)
                }
            })
        } else {
            self.ctl(libc::EPOLL_CTL_ADD, fd, ev)
        };
        r?;
        watches.insert(fd, Watch { cb, arg });
        Ok(())
    }

    /// Stops a watch; on return its callback is not running elsewhere.
    pub(crate) fn unwatch(&self, fd: RawFd) -> bool {
        let had = lock(&self.watches).remove(&fd).is_some();
        // The fd may already be closed; epoll then dropped it by itself.
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0);
        if had && !self.is_current() {
            drop(lock(&self.dispatch));
        }
        had
    }

    pub(crate) fn add_timer(
        &self,
        id: u64,
        delay: Duration,
        action: TimerAction,
    ) -> Result<(), TimerAction> {
        let deadline = Instant::now() + delay;
        {
            let mut t = lock(&self.timers);
            if t.pending.len() >= MAX_TIMERS {
                return Err(action);
            }
            t.pending.insert(id, (deadline, action));
            t.heap.push(Reverse((deadline, id)));
        }
        if !self.is_current() {
            self.wake();
        }
        Ok(())
    }

    /// True if the timer was pending (it will not run). Otherwise, on return
    /// its callback is not running elsewhere.
    pub(crate) fn cancel_timer(&self, id: u64) -> bool {
        let removed = lock(&self.timers).pending.remove(&id);
        if removed.is_some() {
            return true;
        }
        if !self.is_current() {
            drop(lock(&self.dispatch));
        }
        false
    }

    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Drops every pending timer without running it (after the thread ended).
    pub(crate) fn clear_timers(&self) {
        let t = std::mem::take(&mut *lock(&self.timers));
        drop(t);
    }

    fn timeout_ms(&self) -> c_int {
        let t = lock(&self.timers);
        match t.heap.peek() {
            None => -1,
            Some(Reverse((deadline, _))) => {
                let d = deadline.saturating_duration_since(Instant::now());
                // Round up so a timer never fires early.
                d.as_micros().div_ceil(1000).min(60_000) as c_int
            }
        }
    }

    fn run_due_timers(&self) {
        let now = Instant::now();
        loop {
            let _d = lock(&self.dispatch);
            let action = {
                let mut t = lock(&self.timers);
                match t.heap.peek() {
                    Some(Reverse((deadline, _))) if *deadline <= now => {}
                    _ => break,
                }
                let Some(Reverse((deadline, id))) = t.heap.pop() else {
                    break;
                };
                match t.pending.get(&id) {
                    Some((d, _)) if *d == deadline => t.pending.remove(&id).map(|(_, a)| a),
                    _ => None,
                }
            };
            match action {
                Some(TimerAction::Module { cb, arg }) => {
                    // SAFETY: the module gave us this callback and argument.
                    unsafe { cb(arg.0) }
                }
                Some(TimerAction::Host(f)) => {
                    let ok = catch_unwind(AssertUnwindSafe(f)).is_ok();
                    if !ok {
                        tracing::error!("panic in a host timer");
                    }
                }
                None => {}
            }
        }
        // Cancelled timers leave stale heap entries; rebuild when they dominate.
        let mut t = lock(&self.timers);
        if t.heap.len() > 1024 && t.heap.len() > 2 * t.pending.len() {
            let fresh: BinaryHeap<_> = t
                .pending
                .iter()
                .map(|(id, (d, _))| Reverse((*d, *id)))
                .collect();
            t.heap = fresh;
        }
    }

    fn dispatch_fd(&self, fd: RawFd, ev: u32) {
        let _d = lock(&self.dispatch);
        let Some(w) = lock(&self.watches).get(&fd).copied() else {
            return;
        };
        let mut ready = 0;
        if ev & (libc::EPOLLIN | libc::EPOLLRDHUP) as u32 != 0 {
            ready |= IOPKT_FD_READ;
        }
        if ev & libc::EPOLLOUT as u32 != 0 {
            ready |= IOPKT_FD_WRITE;
        }
        if ev & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
            ready |= IOPKT_FD_ERROR;
        }
        // SAFETY: the module registered this callback for this fd.
        unsafe { (w.cb)(w.arg.0, fd, ready) };
    }

    /// The worker's loop; returns when [`Worker::stop`] is called.
    pub(crate) fn run(self: Arc<Self>) {
        CURRENT.with(|c| c.set(Arc::as_ptr(&self)));
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
        while !self.stop.load(Ordering::SeqCst) {
            let timeout = self.timeout_ms();
            // SAFETY: the buffer holds 64 events.
            let n = unsafe {
                libc::epoll_wait(self.epfd.as_raw_fd(), events.as_mut_ptr(), 64, timeout)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("epoll_wait: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for ev in &events[..n as usize] {
                let fd = ev.u64 as RawFd;
                if fd == self.wake.as_raw_fd() {
                    let mut buf = 0u64;
                    // SAFETY: reading 8 bytes from our eventfd.
                    unsafe { libc::read(fd, (&mut buf as *mut u64).cast(), 8) };
                    continue;
                }
                self.dispatch_fd(fd, ev.events);
            }
            self.run_due_timers();
        }
        CURRENT.with(|c| c.set(std::ptr::null()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn running() -> (Arc<Worker>, std::thread::JoinHandle<()>) {
        let w = Arc::new(Worker::new().unwrap());
        let r = Arc::clone(&w);
        (w, std::thread::spawn(move || r.run()))
    }

    #[test]
    fn timers_fire_in_deadline_order_and_cancel_works() {
        let (w, t) = running();
        let (tx, rx) = mpsc::channel();
        for (id, ms) in [(1u64, 30u64), (2, 10), (3, 20), (4, 15)] {
            let tx = tx.clone();
            let action = TimerAction::Host(Box::new(move || tx.send(id).unwrap()));
            assert!(w.add_timer(id, Duration::from_millis(ms), action).is_ok());
        }
        assert!(w.cancel_timer(4), "pending timer cancels");
        assert!(!w.cancel_timer(4), "only once");
        let got: Vec<u64> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, [2, 3, 1]);
        assert!(
            rx.recv_timeout(Duration::from_millis(50)).is_err(),
            "the cancelled timer never runs"
        );
        assert!(!w.cancel_timer(1), "a timer that ran is not pending");
        w.stop();
        t.join().unwrap();
    }

    static HITS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

    unsafe extern "C" fn on_ready(_arg: *mut c_void, fd: c_int, events: u32) {
        assert!(events & IOPKT_FD_READ != 0);
        let mut b = 0u64;
        // SAFETY: draining the test's eventfd.
        unsafe { libc::read(fd, (&mut b as *mut u64).cast(), 8) };
        HITS.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn fd_watch_calls_back_until_unwatched() {
        let (w, t) = running();
        // SAFETY: a new eventfd we own.
        let efd = unsafe { OwnedFd::from_raw_fd(libc::eventfd(0, libc::EFD_NONBLOCK)) };
        let poke = || {
            let one = 1u64;
            // SAFETY: 8-byte write to our eventfd.
            unsafe { libc::write(efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        };
        w.watch(
            efd.as_raw_fd(),
            IOPKT_FD_READ,
            on_ready,
            ModPtr(std::ptr::null_mut()),
        )
        .unwrap();
        poke();
        let end = Instant::now() + Duration::from_secs(5);
        while HITS.load(Ordering::SeqCst) == 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(HITS.load(Ordering::SeqCst), 1);
        assert!(w.unwatch(efd.as_raw_fd()));
        poke();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(HITS.load(Ordering::SeqCst), 1, "no callback after unwatch");
        assert!(!w.unwatch(efd.as_raw_fd()));
        w.stop();
        t.join().unwrap();
    }
}
