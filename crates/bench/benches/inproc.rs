//! Criterion's detailed view of the in-process row: TCP bulk between two
//! iopkt stacks on the simulated link, and between two smoltcp sockets
//! over a loopback device, same payload, throughput in bytes.
//!
//! cargo bench -p iopkt-bench --bench inproc

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iopkt_bench::inproc::{iopkt_bulk, payload, smoltcp_bulk};

const BYTES: usize = 16 << 20;

fn bulk(c: &mut Criterion) {
    let data = payload(BYTES);
    let mut g = c.benchmark_group("tcp_bulk_in_process");
    g.throughput(Throughput::Bytes(BYTES as u64));
    g.sample_size(10);
    g.bench_function("iopkt_sim_link", |b| {
        b.iter(|| {
            let t = iopkt_bulk(&data).expect("iopkt transfer");
            assert!(t.intact);
        })
    });
    g.bench_function("smoltcp_loopback", |b| {
        b.iter(|| {
            let t = smoltcp_bulk(&data).expect("smoltcp transfer");
            assert!(t.intact);
        })
    });
    g.finish();
}

criterion_group!(benches, bulk);
criterion_main!(benches);
