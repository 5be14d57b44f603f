//! The running stack: one [`Stack`] behind one lock (io-pkt's "stack
//! context": one thread at a time runs the protocols), a timer thread for the
//! stack's deadlines, and the flushing of output after the lock is released
//! so drivers and the resource manager never run under it.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Instant as StdInstant;

use iopkt_pkt::{PktBuf, Pool};
use iopkt_stack::{Config, IfIndex, Stack};

use crate::ctx::{DaemonCtx, Output};

struct StackCell {
    stack: Stack,
    ctx: DaemonCtx,
}

#[derive(Default)]
struct TimerState {
    deadline: Option<StdInstant>,
    stop: bool,
}

/// Where the stack's output goes once the lock is released.
pub trait OutputSinks: Send + Sync {
    fn transmit(&self, ifindex: IfIndex, frames: Vec<PktBuf>);
    fn socket_ready(&self, sock: iopkt_stack::socket::SocketId);
}

pub struct Runtime {
    cell: Mutex<StackCell>,
    timer: Mutex<TimerState>,
    timer_cv: Condvar,
    sinks: OnceLock<Box<dyn OutputSinks>>,
    pub pool: Pool,
    pub instance: u32,
}

impl Runtime {
    pub fn new(pool: Pool, config: Config, instance: u32) -> Arc<Runtime> {
        let mut ctx = DaemonCtx::new();
        let stack = Stack::new(&mut ctx, pool.clone(), config);
        Arc::new(Runtime {
            cell: Mutex::new(StackCell { stack, ctx }),
            timer: Mutex::new(TimerState::default()),
            timer_cv: Condvar::new(),
            sinks: OnceLock::new(),
            pool,
            instance,
        })
    }

    /// Sets where output goes (once, at start-up).
    pub fn set_sinks(&self, sinks: Box<dyn OutputSinks>) {
        let _ = self.sinks.set(sinks);
    }

    fn lock(&self) -> MutexGuard<'_, StackCell> {
        // A panic while holding the stack was caught and logged where it
        // happened; the stack's tables are still memory-safe values, so go on.
        self.cell.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` holding the stack context, then sends what it produced.
    pub fn with_stack<R>(&self, f: impl FnOnce(&mut Stack, &mut DaemonCtx) -> R) -> R {
        let (r, out, deadline) = {
            let mut g = self.lock();
            let c = &mut *g;
            let r = f(&mut c.stack, &mut c.ctx);
            // What a socket call sent to ourselves goes through lo0 now,
            // not at the timer thread's next turn: that would be a thread
            // hop (and a wake-up of the timer thread) per segment.
            c.stack.run_loopback(&mut c.ctx);
            let out = c.ctx.take_output();
            let d = c.stack.next_deadline().map(|d| c.ctx.to_std(d));
            (r, out, d)
        };
        self.flush(out);
        self.note_deadline(deadline);
        r
    }

    /// Feeds received frames to the stack. A bug that panics in the stack is
    /// contained here: the batch is lost and logged, the stack goes on.
    pub fn input(&self, ifindex: IfIndex, frames: Vec<PktBuf>) {
        let r = catch_unwind(AssertUnwindSafe(|| {
            self.with_stack(|s, c| s.input(c, ifindex, frames));
        }));
        if r.is_err() {
            tracing::error!(
                "stack failed on a batch received on interface #{ifindex}; batch dropped"
            );
        }
    }

    fn flush(&self, out: Output) {
        let Some(sinks) = self.sinks.get() else {
            return;
        };
        // Keep each interface's frames in order, one batch per interface.
        let mut by_if: HashMap<IfIndex, Vec<PktBuf>> = HashMap::new();
        let mut order = Vec::new();
        for (i, f) in out.frames {
            by_if
                .entry(i)
                .or_insert_with(|| {
                    order.push(i);
                    Vec::new()
                })
                .push(f);
        }
        for i in order {
            if let Some(v) = by_if.remove(&i) {
                sinks.transmit(i, v);
            }
        }
        for s in out.ready {
            sinks.socket_ready(s);
        }
    }

    fn note_deadline(&self, d: Option<StdInstant>) {
        let mut t = self.timer.lock().unwrap_or_else(|e| e.into_inner());
        let earlier = match (d, t.deadline) {
            (Some(n), Some(o)) => n < o,
            (Some(_), None) => true,
            _ => false,
        };
        if earlier {
            t.deadline = d;
            self.timer_cv.notify_one();
        }
    }

    /// The timer thread: sleeps until the stack's next deadline and polls it.
    pub fn run_timers(self: Arc<Self>) {
        loop {
            {
                let mut t = self.timer.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if t.stop {
                        return;
                    }
                    let now = StdInstant::now();
                    match t.deadline {
                        Some(d) if d <= now => {
                            t.deadline = None;
                            break;
                        }
                        Some(d) => {
                            t = self
                                .timer_cv
                                .wait_timeout(t, d - now)
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                        }
                        None => {
                            t = self.timer_cv.wait(t).unwrap_or_else(|e| e.into_inner());
                        }
                    }
                }
            }
            let r = catch_unwind(AssertUnwindSafe(|| self.with_stack(|s, c| s.poll(c))));
            if r.is_err() {
                tracing::error!("stack failed while running its timers");
            }
            // with_stack only records earlier deadlines; after a poll the
            // next one may be later, so set it outright.
            let next = {
                let g = self.lock();
                g.stack.next_deadline().map(|d| g.ctx.to_std(d))
            };
            let mut t = self.timer.lock().unwrap_or_else(|e| e.into_inner());
            t.deadline = match (t.deadline, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }

    pub fn stop_timers(&self) {
        let mut t = self.timer.lock().unwrap_or_else(|e| e.into_inner());
        t.stop = true;
        self.timer_cv.notify_all();
    }
}
