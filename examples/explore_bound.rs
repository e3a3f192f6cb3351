//! Time one exhaustive search: `cargo run --release --example explore_bound -- 4.18 listen 8 [uf|all] [por|plain] [walks] [max_states]`.
use reclaim::arch::Arch;
use reclaim::explore::{Bounds, Checker, Predicate, Scenario, Start, explore};
use reclaim::profile::Profile;
use reclaim::qemu::QemuVersion;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let p = a.get(1).map(String::as_str).unwrap_or("4.18");
    let start = if a.get(2).map(String::as_str) == Some("switchover") { Start::Switchover } else { Start::Listen };
    let depth: u32 = a.get(3).and_then(|s| s.parse().ok()).unwrap_or(8);
    let preds: Vec<Predicate> = if a.get(4).map(String::as_str) == Some("all") {
        Predicate::ALL.to_vec()
    } else {
        vec![Predicate::UserfaultOnReceived]
    };
    let por = a.get(5).map(String::as_str) != Some("plain");
    let walks: u64 = a.get(6).and_then(|s| s.parse().ok()).unwrap_or(0);
    let max_states: u64 = a.get(7).and_then(|s| s.parse().ok()).unwrap_or(50_000_000);
    let sc = Scenario { start, ..Scenario::small(Profile::get(p, Arch::S390x).unwrap(), QemuVersion::V3_0) };
    let b = Bounds { depth, walks, por, max_states, ..Default::default() };
    let r = explore(&sc, &mut Checker::builtins(&preds), &b, |_| true).unwrap();
    println!(
        "{p} {start:?} bound {depth} por {por}: {:.2} s, {} states, {} steps, {} pruned, {:.0} states/s, exhaustive {}",
        r.seconds,
        r.states,
        r.transitions,
        r.pruned,
        r.states as f64 / r.seconds,
        r.exhaustive
    );
    for c in &r.found {
        println!("  {:?} {:?} {} {}", c.violation.predicate, c.violation.cause, c.steps.len(), c.minimal.name());
    }
}
