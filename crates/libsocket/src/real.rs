//! The C library's own functions, found behind ours with
//! `dlsym(RTLD_NEXT)`: what every call on a descriptor that is not the
//! stack's goes to.

/// `real!(name: fn(args) -> ret)` evaluates to the next definition of
/// `name` as a function pointer, looked up once.
macro_rules! real {
    ($name:ident : fn($($t:ty),* $(,)?) -> $r:ty) => {{
        static ADDR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let mut p = ADDR.load(std::sync::atomic::Ordering::Relaxed);
        if p == 0 {
            // SAFETY: a NUL-terminated name; RTLD_NEXT is valid in a
            // shared object.
            p = unsafe {
                libc::dlsym(libc::RTLD_NEXT, concat!(stringify!($name), "\0").as_ptr().cast())
            } as usize;
            if p == 0 {
                $crate::real::missing(stringify!($name));
            }
            ADDR.store(p, std::sync::atomic::Ordering::Relaxed);
        }
        // SAFETY: the C library's symbol of this name has this signature.
        unsafe { std::mem::transmute::<usize, unsafe extern "C" fn($($t),*) -> $r>(p) }
    }};
}
pub(crate) use real;

/// Without the C library's function nothing can go on: this library is
/// preloaded into a program linked against it, so this does not happen
/// unless the process is broken.
pub fn missing(name: &str) -> ! {
    let msg = format!("iopkt: the C library has no {name}; cannot continue\n");
    // SAFETY: writing a valid buffer to stderr.
    unsafe { libc::syscall(libc::SYS_write, 2, msg.as_ptr(), msg.len()) };
    std::process::abort()
}
