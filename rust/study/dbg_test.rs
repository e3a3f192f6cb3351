#[cfg(test)]
mod t {
    use crate::study::postcopy::*;
    use crate::profile::Profile;
    use crate::arch::Arch;
    #[test]
    fn dbg() {
        for seed in 0..20 {
            let mut c = PostcopyConfig::new(Profile::get("4.18", Arch::S390x).unwrap());
            c.guest.pages = 16384; c.source_memory = c.guest.pages*4096 + c.guest.pages*1024 + (64<<20);
            c.dest_memory = (c.guest.pages*4096/8*7) & !4095; c.other_load = (c.guest.pages*4096/8) & !4095; c.seed = seed;
            let mut w = build(&c).unwrap(); w.start(); w.run(c.max_time_ns);
            for e in &w.data_errors {
                let hva = w.dst.ram_base + ((e.gfn as u64) << 12);
                eprintln!("seed {seed} err {:?}", e);
                let evs: Vec<_> = w.hosts[1].log.events().iter().filter(|x| x.addr == hva).collect();
                for x in evs.iter().rev().take(12).rev() { eprintln!("   {} {}", x.t, x.render()); }
                let s = w.hosts[0].log.events().iter().filter(|x| x.addr == w.src.ram_base + ((e.gfn as u64) << 12)).count();
                eprintln!("   src events {s}");
            }
        }
    }
}
