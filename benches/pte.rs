//! PTE algebra and DAT translation throughput.

use criterion::{Criterion, criterion_group, criterion_main};
use reclaim::arch::pgtable::PageTables;
use reclaim::arch::s390::dat::{GEOMETRY, translate};
use reclaim::arch::s390::pte::{PAGE_RW, Pte};
use std::hint::black_box;

fn pte_algebra(c: &mut Criterion) {
    c.bench_function("pte mkold/mkyoung/mkdirty/mkclean x1M", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for pfn in 0..1_000_000u64 {
                let p = Pte::mk(black_box(pfn), PAGE_RW).mkold().mkyoung().mkdirty().mkclean().mkwrite();
                acc ^= p.val();
            }
            acc
        })
    });
}

fn translate_1m(c: &mut Criterion) {
    let mut t = PageTables::new(&GEOMETRY, true);
    let base = 0x3ff_0000_0000u64 - (1 << 32);
    for i in 0..(1u64 << 20) {
        let idx = t.pte_alloc(base + (i << 12)).unwrap();
        t.set_pte(idx, Pte::mk(i, PAGE_RW).mkdirty().mkwrite().val());
    }
    c.bench_function("translate 1M addresses", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for i in 0..(1u64 << 20) {
                acc ^= translate(&t, black_box(base + (i << 12) + 8), false).unwrap_or(0);
            }
            acc
        })
    });
}

criterion_group!(benches, pte_algebra, translate_1m);
criterion_main!(benches);
