//! Coverage-guided fuzzing of the explorer's step lists (what `Scenario.replay`, `reclaim
//! explore` counterexamples and pasted pytest tests carry): the first byte picks the profile,
//! the rest is whitespace-separated step names such as `read:0:1` or `reclaim_batch`. Every
//! list must parse and replay, or be refused with an error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reclaim::arch::Arch;
use reclaim::explore::{self, Checker, Predicate, Scenario, Step};
use reclaim::profile::Profile;
use reclaim::qemu::QemuVersion;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let profile = ["4.17", "4.18", "6.12"][pick as usize % 3];
    let Ok(steps) = text.split_whitespace().map(Step::parse).collect::<Result<Vec<Step>, _>>() else {
        return;
    };
    let sc = Scenario::small(Profile::get(profile, Arch::S390x).unwrap(), QemuVersion::V3_0);
    let mut ck = Checker::builtins(&Predicate::ALL);
    let _ = explore::replay(&sc, &steps, &mut ck);
});
