//! Throughput of many accesses through the core's batch path and of a trace replay: the
//! paths `Process.access_batch`, `Process.run_workload` and `reclaim.replay` run.

use criterion::{Criterion, criterion_group, criterion_main};
use reclaim::arch::Arch;
use reclaim::fault::batch::OutcomeCounts;
use reclaim::mm::mmap::MapKind;
use reclaim::sim::workload::{AccessStream, Pattern};
use reclaim::trace::replay::{MemorySize, Replay, ReplayConfig};
use reclaim::trace::{Format, write_zipf};
use reclaim::{Kernel, Profile};
use std::hint::black_box;

fn access_batch(c: &mut Criterion) {
    // 16 Ki pages of a zipf workload in 32 MiB (8 Ki pages) of memory: hits, swap-outs and -ins
    let mut k = Kernel::new(Profile::get("6.12", Arch::S390x).unwrap(), 32 << 20, 128 << 20, 0).unwrap();
    let pid = k.spawn("bench", false).unwrap();
    let base = k.mmap(pid, 64 << 20, MapKind::Anon, false, None).unwrap();
    let mut stream = AccessStream::new(Pattern::Zipf { s: 0.9 }, base, 16 << 10, 0.3, 1).unwrap();
    c.bench_function("access_batch zipf:0.9 x64Ki, memory 50%", |b| {
        b.iter(|| {
            let mut counts = OutcomeCounts::default();
            k.access_batch(pid, 0, stream.by_ref().take(1 << 16), |o, _| counts.add(o)).unwrap();
            black_box(counts)
        })
    });
}

fn replay(c: &mut Criterion) {
    let path = std::env::temp_dir().join(format!("reclaim-bench-{}.bin", std::process::id()));
    write_zipf(&path, Format::Binary, 200_000, 20_000, 0.9, 0.0, 1).unwrap();
    let cfg = ReplayConfig {
        profile: Profile::get("6.12", Arch::S390x).unwrap(),
        format: None,
        memory: MemorySize::Fraction(0.25),
        swap: None,
        kvm: false,
        limit: None,
        seed: 0,
        as_recorded: false,
        shmem: false,
        guest: None,
        guest_tmpfs: None,
        page_cluster: None,
        one_cpu: false,
        swap_io: Default::default(),
        x86_tlb: None,
        memcg_stats: Default::default(),
        guest_zones: None,
        guest_clock: None,
        sched_tick: false,
        pgtable_pages: false,
        swap_cache_nodes: false,
        pcp_lists: false,
    };
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.bench_function("zipf:0.9 200k requests over 20k pages, memory 25%", |b| {
        b.iter(|| {
            let mut r = Replay::open(&path, &cfg).unwrap();
            r.advance(u64::MAX).unwrap();
            black_box(r.counts)
        })
    });
    g.finish();
    std::fs::remove_file(&path).unwrap();
}

criterion_group!(benches, access_batch, replay);
criterion_main!(benches);
