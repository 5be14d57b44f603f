//! `io-pkt`: see `io_pkt::daemon` and INTERFACES.md.

fn main() {
    std::process::exit(io_pkt::daemon::main(std::env::args().skip(1)));
}
