//! The stack's generation of interface settings: it moves when an
//! interface's admin state or MTU may have changed (so a host that tells
//! drivers about those can tell in O(1) that nothing changed) and stays
//! put through socket traffic.

use std::net::{IpAddr, SocketAddr};

use iopkt_sim::{LinkCfg, Sim};
use iopkt_stack::transport::SockType;

#[test]
fn the_generation_moves_with_admin_state_and_mtu_only() {
    let mut sim = Sim::new(3);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    let (ia, _) = sim.connect(a, b, LinkCfg::default());
    let g = |sim: &Sim| sim.stack(a).link_settings_generation();

    let g0 = g(&sim);
    sim.with(a, |s, c| s.set_up(c, ia, false)).unwrap();
    let g1 = g(&sim);
    assert_ne!(g1, g0, "ifconfig down");
    sim.with(a, |s, c| s.set_up(c, ia, true)).unwrap();
    let g2 = g(&sim);
    assert_ne!(g2, g1, "ifconfig up");
    sim.with(a, |s, _| s.set_mtu(ia, 1400)).unwrap();
    let g3 = g(&sim);
    assert_ne!(g3, g2, "ifconfig mtu");
    // A refused MTU changes nothing, and says so or not: the host
    // compares settings whenever the generation moved.
    assert!(sim.with(a, |s, _| s.set_mtu(ia, 10)).is_err());

    // Socket traffic over lo0 leaves it alone.
    let before = g(&sim);
    let to = SocketAddr::new("127.0.0.1".parse::<IpAddr>().unwrap(), 9);
    let u = sim
        .with(a, |s, c| s.socket_open(c, false, SockType::Datagram))
        .unwrap();
    for _ in 0..10 {
        sim.with(a, |s, c| s.socket_send(c, u, b"x", Some(to)))
            .unwrap();
    }
    sim.run_for(std::time::Duration::from_millis(10));
    assert_eq!(g(&sim), before);
}
