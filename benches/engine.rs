//! Engine throughput: faults, reclaim through try_to_unmap (swap and drop paths), the rmap walk
//! of a page mapped by many processes, and the explorer. `make bench` runs them; BENCHMARKS.md
//! records the results.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use reclaim::arch::Arch;
use reclaim::arch::s390::essa::ESSA_SET_UNUSED;
use reclaim::explore::{self, Bounds, Checker, Predicate, Scenario};
use reclaim::kernel::Kernel;
use reclaim::mm::madvise::Advice;
use reclaim::mm::mmap::MapKind;
use reclaim::profile::Profile;
use reclaim::qemu::QemuVersion;
use reclaim::uffd::ioctl::{UFFD_API, UFFDIO_REGISTER_MODE_MISSING};
use std::hint::black_box;
use std::time::{Duration, Instant};

const PAGE: u64 = 4096;

/// A kernel of `pages` pages of memory and `swap_pages` usable swap slots (slot 0 of a swap
/// device is its header, as in `swapon`).
fn kernel(profile: &str, pages: u64, swap_pages: u64) -> Kernel {
    Kernel::new(Profile::get(profile, Arch::S390x).unwrap(), pages * PAGE, (swap_pages + 1) * PAGE, 0).unwrap()
}

/// A process with `n` anon pages written (resident), host memory `mem` pages; the per-page
/// events are muted, as in a large study.
fn populated(profile: &str, n: u64, mem: u64, kvm: bool) -> (Kernel, u32, u64) {
    let mut k = kernel(profile, mem, n);
    k.mute_per_page();
    let pid = k.spawn("bench", kvm).unwrap();
    let a = k.mmap(pid, n * PAGE, MapKind::Anon, false, None).unwrap();
    for i in 0..n {
        k.access(pid, 0, a + i * PAGE, true, i + 1).unwrap();
    }
    (k, pid, a)
}

fn faults(c: &mut Criterion) {
    let n = 1 << 20;
    let mut g = c.benchmark_group("faults");
    g.sample_size(10);
    g.bench_function("first touch (do_anonymous_page), 1M pages", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut k = kernel("6.12", 2 * n, 0);
                let pid = k.spawn("bench", false).unwrap();
                let a = k.mmap(pid, n * PAGE, MapKind::Anon, false, None).unwrap();
                let t = Instant::now();
                for i in 0..n {
                    black_box(k.access(pid, 0, a + i * PAGE, true, i).unwrap());
                }
                total += t.elapsed();
            }
            total
        })
    });
    g.bench_function("swap-in (do_swap_page), 256K pages", |b| {
        let n = 1 << 18;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (mut k, pid, a) = populated("6.12", n, 2 * n, false);
                k.madvise(pid, a, n * PAGE, Advice::Pageout).unwrap();
                let t = Instant::now();
                for i in 0..n {
                    black_box(k.access(pid, 0, a + i * PAGE, false, 0).unwrap());
                }
                total += t.elapsed();
            }
            total
        })
    });
    g.bench_function("userfault + UFFDIO_COPY, 256K pages", |b| {
        let n = 1 << 18;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut k = kernel("6.12", 2 * n, 0);
                let pid = k.spawn("bench", false).unwrap();
                let a = k.mmap(pid, n * PAGE, MapKind::Anon, false, None).unwrap();
                let u = k.userfaultfd(pid).unwrap();
                k.uffdio_api(u, UFFD_API, 0).unwrap();
                k.uffdio_register(u, a, n * PAGE, UFFDIO_REGISTER_MODE_MISSING).unwrap();
                let t = Instant::now();
                for i in 0..n {
                    k.access(pid, 0, a + i * PAGE, false, 0).unwrap();
                    k.uffd_read(u).unwrap();
                    k.uffdio_copy(u, a + i * PAGE, &[i], 0).unwrap();
                }
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

/// Reclaim `n` resident pages with MADV_PAGEOUT (isolate + shrink_folio_list + try_to_unmap).
fn pageout(k: &mut Kernel, pid: u32, a: u64, n: u64) {
    k.madvise(pid, a, n * PAGE, Advice::Pageout).unwrap();
}

fn reclaim(c: &mut Criterion) {
    let n = 4 << 20;
    let mut g = c.benchmark_group("reclaim");
    g.sample_size(10);
    let (swap_base, pid, a) = populated("6.12", n, 2 * n, false);
    g.bench_function("anon to swap (try_to_unmap + pageout), 4M pages", |b| {
        b.iter_batched(
            || swap_base.clone(),
            |mut k| {
                pageout(&mut k, pid, a, n);
                assert_eq!(k.swap_inuse(), n);
                k
            },
            BatchSize::PerIteration,
        )
    });
    drop(swap_base);
    let (mut drop_base, pid, a) = populated("6.12", n, 2 * n, true);
    for i in 0..n {
        drop_base.essa(pid, 0, a + i * PAGE, ESSA_SET_UNUSED).unwrap();
    }
    g.bench_function("pte_unused drop (guest-unused pages of a KVM guest), 4M pages", |b| {
        b.iter_batched(
            || drop_base.clone(),
            |mut k| {
                pageout(&mut k, pid, a, n);
                assert_eq!(k.swap_inuse(), 0);
                k
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn rmap(c: &mut Criterion) {
    let mut g = c.benchmark_group("rmap");
    g.sample_size(10);
    g.bench_function("reclaim of 4K pages mapped by 64 processes (rmap walk)", |b| {
        let n = 4096;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (mut k, pid, _) = populated("6.12", n, 4 * n, false);
                for _ in 0..63 {
                    k.fork(pid).unwrap();
                }
                let t = Instant::now();
                // MADV_PAGEOUT leaves shared pages alone: reclaim them from the LRU
                let got = k.reclaim(n);
                total += t.elapsed();
                assert_eq!(got, n);
            }
            total
        })
    });
    g.finish();
}

fn explorer(c: &mut Criterion) {
    let mut g = c.benchmark_group("explore");
    g.sample_size(10);
    let sc = Scenario::small(Profile::get("4.17", Arch::S390x).unwrap(), QemuVersion::V3_0);
    let b = Bounds { depth: 8, max_states: 1_000_000, walks: 0, ..Default::default() };
    g.bench_function("4.17 switchover scenario to depth 8", |bn| {
        bn.iter(|| {
            let mut ck = Checker::builtins(&Predicate::ALL);
            black_box(explore::explore(&sc, &mut ck, &b, |_| true).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, faults, reclaim, rmap, explorer);
criterion_main!(benches);
