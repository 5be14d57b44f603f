//! The `io-pkt` command line: whoever starts the daemon writes it, and a
//! mistake must end in a usage message, never a crash.

use io_pkt::options::{Options, split_options};

/// Fuzz input: the arguments after the program name, one per line.
pub fn daemon_options(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let args: Vec<String> = if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').map(String::from).collect()
    };
    if let Ok(o) = Options::parse(args.iter().cloned()) {
        // What is accepted is in the ranges INTERFACES.md gives.
        assert!(o.instance < 1000, "instance {} accepted", o.instance);
        if let Some(t) = o.threads {
            assert!((1..=256).contains(&t), "{t} threads accepted");
        }
        if let Some(p) = &o.tcpip.prefix {
            assert!(p.is_absolute(), "relative prefix {p:?} accepted");
        }
        if let Some(n) = o.tcpip.somaxconn {
            assert!((1..=65_535).contains(&n), "somaxconn {n} accepted");
        }
        for m in o.drivers.iter().chain(&o.protocols) {
            assert!(
                !m.name.is_empty() && !m.name.starts_with('-'),
                "module name {:?} accepted",
                m.name
            );
            assert!(
                split_options(&m.options).is_ok(),
                "module options {:?} accepted but do not split",
                m.options
            );
        }
    }
    for a in &args {
        let _ = split_options(a);
    }
}
