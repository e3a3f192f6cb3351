"""The ``reclaim`` command line.

Errors are one readable line on stderr (exit code 2 for bad input, 1 for a failed run); no
traceback reaches the user for a ReclaimError. Exit codes: 0 success, 1 a run failed or an
engine error, 2 bad usage or arguments, 3 (study, explore) the outcome was a hang or a violation
when --fail-on-hang is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import reclaim
import reclaim.explorer
from reclaim._reclaim import PostcopyResult
from reclaim.progress import StatusLine, bar
from reclaim.studies.postcopy import postcopy
from reclaim.variants import (
    add_profiles_parser,
    add_variant_options,
    cmd_explore_compare,
    cmd_study_compare,
    resolve_cli_compare,
    resolve_cli_profile,
    seeds_arg,
)

EPILOG = """examples:
  reclaim demo                          the 2018 seed bug on 4.17 next to its fix on 4.18
  reclaim demo --json --plot out.png    machine-readable, plot written to out.png
  reclaim study postcopy --profile 4.17 --guest-memory 1GiB --seed 3
  reclaim study postcopy --profile 4.18 --free-policy random --json
  reclaim explore --profile 4.17        find the seed bug from a scenario that does not mention it
  reclaim explore --profile all --start listen --bound 8
  reclaim replay trace.oracleGeneral --memory 25%   replay a trace under memory pressure
"""


class Progress(StatusLine):
    """A progress bar on stderr (a terminal only) for runs longer than a second."""

    def __init__(self, label: str, enabled: bool = True, unit: str = "pages") -> None:
        super().__init__(enabled=enabled and sys.stderr.isatty())
        self.label = label
        self.unit = unit

    def __call__(self, done: int, total: int, sim_s: float | None = None) -> None:
        frac = min(1.0, done / total) if total else 1.0
        sim = "" if sim_s is None else f", t={sim_s:6.2f}s sim"
        self.show(f"{self.label} {bar(frac)} {frac:4.0%} {self.unit}{sim}")


def _row(r: PostcopyResult, label: str) -> dict[str, object]:
    m = r.metrics
    return {
        "run": label,
        "profile": r.profile,
        "source_profile": r.source_profile,
        "qemu": r.qemu,
        "seed": r.seed,
        "outcome": r.outcome,
        "userfaults_on_received": m["userfaults_on_received"],
        "dest_pages_dropped": m["dest_pages_dropped"],
        "dest_pages_swapped": m["dest_pages_swapped"],
        "dest_cbrl_zapped": m["dest_cbrl_zapped"],
        "migration_time_s": round(m["total_time_ns"] / 1e9, 3),
        "vcpu_blocked_s": round(m["vcpu_blocked_ns"] / 1e9, 3),
        "hang": r.hang,
        "chain": r.chain,
        "metrics": m,
        "log_hash": r.log_hash,
    }


def _print_table(rows: list[dict[str, object]]) -> None:
    cols = [
        ("run", 30),
        ("outcome", 10),
        ("userfaults_on_received", 10),
        ("dest_pages_dropped", 9),
        ("dest_pages_swapped", 9),
        ("dest_cbrl_zapped", 7),
        ("migration_time_s", 9),
    ]
    heads = ["run", "outcome", "uf@recv", "dropped", "swapped", "cbrl", "time s"]
    print("  ".join(f"{h:<{w}}" for h, (_, w) in zip(heads, cols, strict=True)))
    for r in rows:
        print("  ".join(f"{r[c]!s:<{w}}" for c, w in cols))


def _print_chain(row: dict[str, object]) -> None:
    hang = row["hang"]
    if not isinstance(hang, dict):
        return
    chain = row["chain"]
    assert isinstance(chain, list)
    print(
        f"\n{row['run']}: vCPU {hang['vcpu']} hung on guest page {hang['gfn']:#x} "
        f"since t={hang['since'] / 1e9:.3f}s; the causal chain:"
    )
    for step in chain:
        print(f"  t={step['t'] / 1e9:9.6f}s  {step['host']:<11}  {step['what']}")


def cmd_demo(args: argparse.Namespace) -> int:
    """``reclaim demo``: the postcopy study on 4.17 (the seed bug: the migration hangs) next to
    4.18 (the fix), and 4.18 with a guest that frees cold pages: a table, the causal chain of
    the hang and a timeline plot (unless --no-plot). Returns 0."""
    runs = [
        ("4.17 (before the fix)", "4.17", {}),
        ("4.18 (the fix)", "4.18", {}),
        ("4.18, guest frees cold pages", "4.18", {"free_policy": "random"}),
    ]
    results = []
    for label, profile, extra in runs:
        p = Progress(label, not args.json)
        results.append((label, postcopy(profile, seed=args.seed, progress=p, **extra)))
        p.close()
    rows = [_row(r, label) for label, r in results]
    plot_path: Path | None = None
    if not args.no_plot:
        from reclaim.plot import timeline

        plot_path = timeline([r for _, r in results], args.plot)
    if args.json:
        out = {"runs": rows, "plot": str(plot_path) if plot_path else None}
        print(json.dumps(out, indent=2, default=str))
        return 0
    print("Postcopy migration of a 256 MiB s390 KVM guest to a host with less free memory")
    print(f"(QEMU 3.0 logic, seed {args.seed}); the same workload on each kernel profile:\n")
    _print_table(rows)
    _print_chain(rows[0])
    print("\n4.17: host reclaim drops a received page the guest marked UNUSED (pte_unused); the")
    print("guest reuses it, the userfault asks QEMU for a page it already sent: the vCPU hangs.")
    print("4.18: the page in an armed VMA goes to swap instead; the guest's touch is a swap-in.")
    third = rows[2]
    if third["outcome"] == "hung":
        print("4.18 with cold frees: still hangs, through the CBRL (ESSA on a swapped-out page,")
        print("__gmap_zap → ptep_zap_unused, no userfaultfd check): a residual path,")
        print("see FINDINGS.md.")
    if plot_path:
        print(f"\ntimeline plot: {plot_path}")
    return 0


#: The postcopy study's parameters that `reclaim study postcopy` and `reclaim export` take as
#: options (all of `reclaim.studies.postcopy.prepare`'s but the profile and older names).
STUDY_PARAMS = (
    "source_profile",
    "qemu",
    "guest_memory",
    "vcpus",
    "workload",
    "used_fraction",
    "write_fraction",
    "turnover",
    "free_policy",
    "cmma",
    "nodat",
    "diag10",
    "op_interval",
    "source_memory",
    "source_swap",
    "host_memory",
    "swap",
    "other_load",
    "load_interval",
    "bandwidth",
    "latency",
    "precopy_iterations",
    "seed",
    "max_time",
    "trace",
)


def _study_params(args: argparse.Namespace) -> dict[str, object]:
    return {k: v for k, v in vars(args).items() if k in STUDY_PARAMS and v is not None}


def cmd_study_postcopy(args: argparse.Namespace) -> int:
    """``reclaim study postcopy``: one postcopy migration study with the given parameters; its
    outcome, causal chain and metrics. Returns the exit code (3 for a hang with
    --fail-on-hang)."""
    params = _study_params(args)
    args.profile = resolve_cli_profile(args, args.profile)
    other = resolve_cli_compare(args)
    if other is not None:
        return cmd_study_compare(args, args.profile, other, params)
    p = Progress(f"{args.profile}", not args.json)
    r = postcopy(args.profile, progress=p, **params)
    p.close()
    hosts = args.profile if r.source_profile == r.profile else f"{r.source_profile} -> {r.profile}"
    row = _row(r, f"{hosts} seed {r.seed}")
    if args.plot:
        from reclaim.plot import timeline

        row["plot"] = str(timeline([r], args.plot))
    if args.json:
        print(json.dumps(row, indent=2, default=str))
    else:
        _print_table([row])
        _print_chain(row)
        for k, v in r.metrics.items():
            print(f"  {k:<24} {v}")
        if "plot" in row:
            print(f"\ntimeline plot: {row['plot']}")
    return 3 if (args.fail_on_hang and r.outcome != "completed") else 0


def cmd_export(args: argparse.Namespace) -> int:
    """``reclaim export``: run the postcopy study and write its event log as a Perfetto (Chrome
    Trace Event) file and/or as ftrace text, and/or its page states as a heatmap PNG. Returns
    0."""
    from reclaim.studies.postcopy import prepare

    args.profile = resolve_cli_profile(args, args.profile)
    if not (args.perfetto or args.ftrace or args.heatmap):
        raise reclaim.ArgumentError("say what to write: --perfetto, --ftrace and/or --heatmap")
    params = _study_params(args)
    params["trace"] = "full"
    written: dict[str, str] = {}
    every_ns = 10_000_000
    if args.heatmap:  # its own run of the same study: the same seed gives the same run
        from reclaim.heatmap import page_heatmap

        run = prepare(args.profile, **params)  # type: ignore[arg-type]
        written["heatmap"] = str(page_heatmap(run, host=1, every_ns=every_ns, path=args.heatmap))
        result = run.result()
    samples: list[tuple[int, int, dict[str, int]]] = []
    if args.perfetto or args.ftrace:
        from reclaim.events import run_slices

        run = prepare(args.profile, **params)  # type: ignore[arg-type]
        p = Progress(f"{args.profile}", not args.json)
        for now in run_slices(run, every_ns):
            samples += [(now, host, run.vmstat(host)) for host in (0, 1)]
            sent, total = run.progress
            p(sent, total, now / 1e9)
        p.close()
        result = run.result()
    if args.perfetto:
        from reclaim.export import chrome_trace

        written["perfetto"] = str(chrome_trace(result, args.perfetto, samples=samples))
    if args.ftrace:
        from reclaim.export import ftrace_text

        ftrace_text(result, args.ftrace, host=args.host)
        written["ftrace"] = str(args.ftrace)
    if args.json:
        print(json.dumps({"outcome": result.outcome, "events": result.n_events, **written}))
    else:
        print(f"{args.profile}: {result.outcome}, {result.n_events} events")
        for what, where in written.items():
            print(f"{what}: {where}")
    return 0


def cmd_crosscheck(args: argparse.Namespace) -> int:
    """``reclaim crosscheck``: run the cross-check scenarios on the model and on this machine's
    kernel and print where they differ. Returns 1 if a scenario that ran disagrees."""
    from reclaim.crosscheck import LIBRARY, crosscheck, format_table
    from reclaim.crosscheck.library import BY_NAME

    if args.list:
        for sc in LIBRARY:
            print(f"{sc.name:<32} {sc.doc}")
        return 0
    for n in args.scenario or []:
        if n not in BY_NAME:
            raise reclaim.ArgumentError(f"unknown scenario {n!r}; see reclaim crosscheck --list")
    # the whole library takes seconds (each scenario starts an agent process)
    status = Progress("crosscheck", not args.json, unit="scenarios")
    try:
        rows = crosscheck(args.scenario, progress=status)
    finally:
        status.close()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2, default=str))
    else:
        print(format_table(rows))
    return 1 if any(not r.agree and not r.skipped for r in rows) else 0


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def cmd_explore(args: argparse.Namespace) -> int:
    """``reclaim explore``: search the interleavings of a small postcopy scenario for invariant
    violations, per profile; print (or write as pytest tests) the findings. Returns the exit
    code (3 for a violation with --fail-on-violation)."""
    from reclaim.explorer import explore

    profiles = list(reclaim.PROFILES) if args.profile == ["all"] else (args.profile or ["4.17"])
    profiles = [resolve_cli_profile(args, prof) for prof in profiles]
    options: dict[str, object] = {
        "qemu": args.qemu,
        "pages": _csv(args.pages) if args.pages else None,
        "vcpus": args.vcpus,
        "host_pages": args.host_pages,
        "guest_steps": _csv(args.guest_steps) if args.guest_steps else None,
        "start": args.start,
    }
    other = resolve_cli_compare(args)
    if other is not None:
        return max(cmd_explore_compare(args, prof, other, options) for prof in profiles)
    results = []
    for prof in profiles:
        sc = reclaim.Scenario(prof, **options)  # type: ignore[arg-type]
        results.append(
            explore(
                sc,
                depth=args.bound,
                max_states=args.max_states,
                walks=args.walks,
                walk_len=args.walk_len,
                seed=args.seed,
                predicates=args.predicate,
                progress=None if not args.json else False,
            )
        )
    if args.pytest:
        tests = [f.pytest() for r in results for f in r.findings]
        body = "\n\n".join(t.split("\n\n\n", 1)[1] for t in tests)
        Path(args.pytest).write_text(
            f'"""Explorer findings (reclaim explore)."""\n\nimport reclaim\n\n\n{body}'
        )
    if args.json:
        out = [
            {
                "profile": r.scenario.profile,
                "scenario": repr(r.scenario),
                "depth": r.depth,
                "depth_completed": r.depth_completed,
                "exhaustive": r.exhaustive,
                "states": r.states,
                "transitions": r.transitions,
                "walks": r.walks,
                "seconds": round(r.seconds, 3),
                "findings": [
                    {
                        "predicate": f.predicate,
                        "cause": f.cause,
                        "message": f.message,
                        "steps": list(f.steps),
                        "minimal": f.minimal,
                        "explained": list(f.explained),
                    }
                    for f in r.findings
                ],
            }
            for r in results
        ]
        print(json.dumps(out, indent=2))
    else:
        print("\n\n".join(r.text() for r in results))
        if args.pytest:
            print(f"\npytest tests of the findings: {args.pytest}")
    found = any(r.findings for r in results)
    return 3 if (args.fail_on_violation and found) else 0


def cmd_replay(args: argparse.Namespace) -> int:
    """``reclaim replay``: replay a memory-access trace under memory pressure and print the
    hits, faults and reclaim counts. Returns the exit code."""
    from reclaim.trace import replay

    args.profile = resolve_cli_profile(args, args.profile)
    p = Progress(Path(args.trace).name, not args.json, unit="requests")
    r = replay(
        args.trace,
        format=args.format,
        profile=args.profile,
        memory=args.memory,
        swap=args.swap,
        kvm=args.kvm,
        limit=args.limit,
        seed=args.seed,
        progress=p,
    )
    p.close()
    if args.json:
        print(json.dumps(r.to_dict(), indent=2))
        return 0
    print(f"{r.path} ({r.format}, {r.mapping} mapping) on profile {r.profile}:")
    print(f"  memory {r.memory >> 20} MiB, swap {r.swap >> 20} MiB")
    rows = [
        ("requests", r.requests),
        ("distinct pages", r.distinct_pages),
        ("hits", r.hits),
        ("minor faults", r.minor_faults),
        ("major faults", r.major_faults),
        ("miss ratio", f"{r.miss_ratio:.4f}"),
        ("pages reclaimed", r.pages_reclaimed),
        ("pages swapped out", r.pages_swapped_out),
        ("resident pages", r.resident_pages),
        ("seconds", f"{r.seconds:.3f} (+{r.scan_seconds:.3f} reading the trace first)"),
        ("requests/second", f"{r.requests_per_second:,.0f}"),
    ]
    for name, v in rows:
        print(f"  {name:<18} {v}")
    return 0


def _add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rp = sub.add_parser(
        "replay",
        help="replay a memory-access trace (binary, CSV, libCacheSim oracleGeneral) under pressure",
        epilog="""examples:
  reclaim replay trace.bin                      host memory: 25% of the trace's pages
  reclaim replay trace.oracleGeneral --memory 10% --profile 4.18 --json
  reclaim replay accesses.csv --memory 64MiB --limit 1000000

A miss is an access to a page that was not resident: a minor fault (first touch, swap cache)
or a major fault (swap-in); miss ratio = misses / requests. Formats: docs/trace-format.md.
exit codes: 0 done, 1 engine error, 2 bad input (a malformed trace names offset or line)""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rp.add_argument("trace", help="the trace file")
    rp.add_argument(
        "--format", choices=["auto", "binary", "csv", "oracle"], default="auto", help="default auto"
    )
    rp.add_argument("--profile", default="6.12", help="kernel profile (default 6.12)")
    rp.add_argument(
        "--memory",
        default="25%",
        help="host memory: a share of the trace's pages (25%%, the default) or a size (64MiB)",
    )
    rp.add_argument("--swap", help="swap size (default: room for every page)")
    rp.add_argument("--limit", type=int, help="replay only the first LIMIT requests")
    rp.add_argument("--kvm", action="store_true", help="a KVM host process (PGSTEs)")
    rp.add_argument("--seed", type=int, default=0, help="the kernel's seed (default 0)")
    rp.add_argument("--json", action="store_true", help="machine-readable output")
    add_variant_options(rp)
    rp.set_defaults(func=cmd_replay)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``reclaim`` command (every subcommand but ``sweep`` and
    ``bench``, which have their own)."""
    p = argparse.ArgumentParser(
        prog="reclaim",
        description="An executable model of Linux memory reclaim on s390.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"reclaim {reclaim.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser(
        "demo",
        help="the seed bug on 4.17 and its fix on 4.18, side by side",
        epilog="example: reclaim demo --seed 3 --plot /tmp/demo.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.add_argument("--seed", type=int, default=0, help="the seed of every run (default 0)")
    d.add_argument("--plot", default="reclaim-demo.png", help="where to write the timeline PNG")
    d.add_argument("--no-plot", action="store_true", help="do not write the plot")
    d.set_defaults(func=cmd_demo)
    _add_explore(sub)
    add_profiles_parser(sub)
    from reclaim.bisect import add_bisect_parser

    add_bisect_parser(sub)
    _add_replay(sub)

    st = sub.add_parser(
        "study", help="run a study", formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ss = st.add_subparsers(dest="study", metavar="STUDY")
    pc = ss.add_parser(
        "postcopy",
        help="postcopy migration of a KVM guest under destination memory pressure",
        epilog="example: reclaim study postcopy --profile 4.17 --guest-memory 1GiB --seed 3 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _study_args(pc)
    add_variant_options(pc, compare="run the study on this profile too and compare")
    pc.add_argument("--seeds", type=seeds_arg, help="with --compare: 0-7, 0,3,5 or a count")
    pc.add_argument("--json", action="store_true", help="machine-readable output")
    pc.add_argument("--plot", help="write a timeline PNG here")
    pc.add_argument("--fail-on-hang", action="store_true", help="exit 3 unless completed")
    pc.set_defaults(func=cmd_study_postcopy)

    xp = sub.add_parser(
        "export",
        help="run a postcopy study and export it: Perfetto trace, ftrace text, page heatmap",
        epilog="""examples:
  reclaim export --perfetto seed.json --profile 4.17     open seed.json in ui.perfetto.dev
  reclaim export --ftrace trace.txt --host 1 --profile 4.18
  reclaim export --heatmap pages.png --profile 4.17 --guest-memory 64MiB""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _study_args(xp)
    add_variant_options(xp)
    xp.add_argument("--perfetto", help="write Chrome Trace Event JSON (Perfetto UI) here")
    xp.add_argument("--ftrace", help="write ftrace-style text (the mm_vmscan_* formats) here")
    xp.add_argument(
        "--host", type=int, choices=[0, 1], help="ftrace: only the source (0) or destination (1)"
    )
    xp.add_argument("--heatmap", help="write a page-state heatmap PNG of the destination here")
    xp.add_argument("--json", action="store_true", help="machine-readable output")
    xp.set_defaults(func=cmd_export)

    sw = sub.add_parser(
        "sweep",
        help="run a study over a grid of parameters (TOML), locally or on Dask; resumable",
        add_help=False,
    )
    sw.add_argument("args", nargs=argparse.REMAINDER)  # main() hands these to reclaim.sweeper
    bn = sub.add_parser(
        "bench",
        help="the benchmark suite: replay vs libCacheSim, reclaim vs the host kernel, speed",
        add_help=False,
    )
    bn.add_argument("args", nargs=argparse.REMAINDER)  # main() hands these to reclaim.bench

    cc = sub.add_parser(
        "crosscheck",
        help="run the userfaultfd scenario library on the model and on this machine's kernel",
        epilog="example: reclaim crosscheck --scenario missing_basic --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cc.add_argument("--scenario", action="append", help="only this scenario (repeatable)")
    cc.add_argument("--list", action="store_true", help="list the scenarios and exit")
    cc.add_argument("--json", action="store_true", help="machine-readable output")
    cc.set_defaults(func=cmd_crosscheck)
    return p


def _on_off(s: str) -> bool:
    if s.lower() in ("1", "on", "true", "yes"):
        return True
    if s.lower() in ("0", "off", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, not {s!r}")


def _study_args(pc: argparse.ArgumentParser) -> None:
    """The parameters of the postcopy study (see reclaim.studies.postcopy): sizes like 256MiB,
    durations like 100us, 5ms (reclaim.units)."""
    pc.add_argument(
        "--profile", default="4.18", help="the destination's kernel profile: 4.17, 4.18, 6.12"
    )
    pc.add_argument("--source-profile", help="the source's kernel profile (default: --profile)")
    pc.add_argument("--qemu", help="QEMU logic: 3.0 (default) or 5.2")
    pc.add_argument("--guest-memory", help="guest RAM, e.g. 256MiB (default)")
    pc.add_argument("--vcpus", type=int)
    pc.add_argument("--workload", help="uniform, zipf[:s], sequential, phased[:f:len]")
    pc.add_argument("--used-fraction", type=float)
    pc.add_argument("--write-fraction", type=float)
    pc.add_argument("--turnover", type=float)
    pc.add_argument("--free-policy", help="recent[:lifetime] (default) or random")
    pc.add_argument("--cmma", type=_on_off, help="on/off: the guest's ESSA hints (default on)")
    pc.add_argument(
        "--nodat", type=_on_off, help="on/off: allocate with ESSA SET_STABLE_NODAT (default off)"
    )
    pc.add_argument("--diag10", type=float, help="fraction of frees released with DIAG 0x10")
    pc.add_argument("--op-interval", help="between two operations of a vCPU (default 5us)")
    pc.add_argument("--source-memory", help="default: the guest + 25%% + 64MiB")
    pc.add_argument("--source-swap", help="default 64MiB")
    pc.add_argument("--host-memory", help="the destination's memory (default: 7/8 of the guest)")
    pc.add_argument("--swap", help="the destination's swap (default: half the guest, >= 512MiB)")
    pc.add_argument("--other-load", help="memory the destination's other process touches")
    pc.add_argument("--load-interval", help="between two accesses of the other load (20us)")
    pc.add_argument("--bandwidth", help="e.g. 1Gbit, 10Gbit/s, 125MB/s")
    pc.add_argument("--latency", help="of the link (default 100us)")
    pc.add_argument("--precopy-iterations", type=int)
    pc.add_argument("--seed", type=int)
    pc.add_argument("--max-time", type=float, help="simulated seconds before giving up")
    pc.add_argument("--trace", choices=["auto", "full", "chain", "rare"])


def _add_explore(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ex = sub.add_parser(
        "explore",
        help="search every interleaving of a small postcopy scenario for invariant violations",
        epilog="""examples:
  reclaim explore --profile 4.17
  reclaim explore --profile 4.18 --start listen --predicate userfault_on_received
  reclaim explore --profile all --bound 12 --pytest test_findings.py

predicates: """
        + ", ".join(reclaim.explorer.PREDICATES)
        + """
page classes: used_received, free_received, used_dirty, free_zero, zero_received
guest steps: alloc, free, read, write, diag10, enable_skey
exit codes: 0 done (found or not), 2 bad input, 3 a violation with --fail-on-violation""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ex.add_argument(
        "--profile",
        action="append",
        help="kernel profile (repeat for several; 'all' for every profile; default 4.17)",
    )
    ex.add_argument("--qemu", default="3.0", help="QEMU logic: 3.0 (default) or 5.2")
    ex.add_argument(
        "--pages",
        help="guest page classes, comma-separated (default: one of each of the first four)",
    )
    ex.add_argument("--vcpus", type=int, default=1)
    ex.add_argument("--host-pages", type=int, default=64, help="destination memory in pages")
    ex.add_argument("--guest-steps", help="guest actions allowed, comma-separated (default: all)")
    ex.add_argument(
        "--start",
        choices=["switchover", "listen"],
        default="switchover",
        help="search from before the final storage attributes, or from just after LISTEN",
    )
    ex.add_argument(
        "--bound", type=int, default=10, help="depth: steps searched exhaustively (default 10)"
    )
    ex.add_argument(
        "--max-states", type=int, default=2_000_000, help="state budget (default 2000000)"
    )
    ex.add_argument("--walks", type=int, default=200, help="random walks beyond the bound")
    ex.add_argument("--walk-len", type=int, default=40)
    ex.add_argument("--seed", type=int, default=0, help="seed of the random walks")
    ex.add_argument(
        "--predicate", action="append", help="check only this predicate (repeatable; default all)"
    )
    ex.add_argument("--json", action="store_true", help="machine-readable output")
    ex.add_argument("--pytest", help="write a pytest test per finding to this file")
    ex.add_argument("--fail-on-violation", action="store_true", help="exit 3 if anything is found")
    add_variant_options(ex, compare="explore this profile too and compare the findings")
    ex.set_defaults(func=cmd_explore)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``reclaim`` command with ``argv`` (default ``sys.argv[1:]``) and return its exit
    code; errors become one line on stderr (see the module docstring for the codes)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except (reclaim.ArgumentError, reclaim.FormatError, reclaim.FileError, TypeError) as e:
        print(f"reclaim: error: {e}", file=sys.stderr)
        return 2
    except reclaim.ReclaimError as e:
        print(f"reclaim: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("reclaim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (head, less) went away: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # an output path that cannot be written, a directory that is a file
        where = f"{e.filename}: " if e.filename else ""
        print(f"reclaim: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


def _dispatch(argv: list[str]) -> int:
    if argv[:1] == ["sweep"]:  # its own parser (reclaim.sweeper), help included
        from reclaim.sweeper import main as sweep_main

        return sweep_main(argv[1:])
    if argv[:1] == ["bench"]:  # its own parser (reclaim.bench)
        from reclaim.bench import main as bench_main

        return bench_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
