"""``reclaim study postcopy``: one postcopy migration study; its parameters as options, which
``reclaim export`` takes too."""

from __future__ import annotations

import argparse
import json

from reclaim.cli.common import (
    U32_MAX,
    Progress,
    Subparsers,
    integer,
    postcopy_row,
    print_chain,
    print_table,
    report_failures,
)
from reclaim.output import png_path
from reclaim.studies.postcopy import postcopy
from reclaim.variants import (
    add_variant_options,
    cmd_study_compare,
    resolve_cli_compare,
    resolve_cli_profile,
    seeds_arg,
)

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


def study_params(args: argparse.Namespace) -> dict[str, object]:
    """The study parameters given on the command line (those of `STUDY_PARAMS` not None)."""
    return {k: v for k, v in vars(args).items() if k in STUDY_PARAMS and v is not None}


def cmd_study_postcopy(args: argparse.Namespace) -> int:
    """``reclaim study postcopy``: one postcopy migration study with the given parameters; its
    outcome, causal chain and metrics. Returns the exit code (1 for a run that failed, with the
    reason; 3 for a hang with --fail-on-hang)."""
    params = study_params(args)
    args.profile = resolve_cli_profile(args, args.profile)
    other = resolve_cli_compare(args)
    if other is not None:
        return cmd_study_compare(args, args.profile, other, params)
    plot = png_path(args.plot, "--plot") if args.plot else None  # refused before the run
    p = Progress(f"{args.profile}", not args.json)
    r = postcopy(args.profile, progress=p, **params)
    p.close()
    hosts = args.profile if r.source_profile == r.profile else f"{r.source_profile} -> {r.profile}"
    row = postcopy_row(r, f"{hosts} seed {r.seed}")
    if plot:
        from reclaim.plot import timeline

        row["plot"] = str(timeline([r], plot))
    if args.json:
        print(json.dumps(row, indent=2, default=str))
    else:
        print_table([row])
        print_chain(row)
        for k, v in r.metrics.items():
            print(f"  {k:<24} {v}")
        if "plot" in row:
            print(f"\ntimeline plot: {row['plot']}")
    if report_failures([row], text=not args.json):
        return 1
    return 3 if (args.fail_on_hang and r.outcome != "completed") else 0


def _on_off(s: str) -> bool:
    if s.lower() in ("1", "on", "true", "yes"):
        return True
    if s.lower() in ("0", "off", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, not {s!r}")


def _default(name: str) -> object:
    """The default of the postcopy study's parameter `name` (reclaim.studies.postcopy.prepare)."""
    import inspect

    from reclaim.studies.postcopy import prepare

    return inspect.signature(prepare).parameters[name].default


def add_study_args(pc: argparse.ArgumentParser) -> None:
    """The parameters of the postcopy study (see reclaim.studies.postcopy): sizes like 256MiB,
    durations like 100us, 5ms (reclaim.units)."""
    pc.add_argument(
        "--profile",
        default="4.18",
        help="the destination's kernel profile: 4.17, 4.18, 6.12 (default 4.18)",
    )
    pc.add_argument("--source-profile", help="the source's kernel profile (default: --profile)")
    pc.add_argument("--qemu", help="QEMU logic: 3.0 (default) or 5.2")
    pc.add_argument("--guest-memory", help="guest RAM, e.g. 256MiB (default)")
    pc.add_argument(
        "--vcpus", type=integer(1, U32_MAX), help=f"the guest's vCPUs (default {_default('vcpus')})"
    )
    pc.add_argument("--workload", help="uniform, zipf[:s], sequential, phased[:f:len]")
    pc.add_argument(
        "--used-fraction",
        type=float,
        help="share of guest pages in use when the migration starts, the rest free (UNUSED) "
        f"(default {_default('used_fraction')})",
    )
    pc.add_argument(
        "--write-fraction",
        type=float,
        help=f"share of guest accesses that are stores (default {_default('write_fraction')})",
    )
    pc.add_argument(
        "--turnover",
        type=float,
        help="share of guest operations that allocate a page, as many freeing one "
        f"(default {_default('turnover')})",
    )
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
    pc.add_argument(
        "--precopy-iterations",
        type=integer(0, U32_MAX),
        help=f"precopy passes before postcopy (default {_default('precopy_iterations')})",
    )
    pc.add_argument(
        "--seed",
        type=integer(),
        help=f"the run's seed: same seed, same events (default {_default('seed')})",
    )
    pc.add_argument("--max-time", type=float, help="simulated seconds before giving up")
    pc.add_argument(
        "--trace",
        choices=["auto", "full", "chain", "rare"],
        help="how much of the event log to keep (default auto: full up to 1 GiB of guest, chain "
        "up to 16 GiB, rare above)",
    )


def add_parser(sub: Subparsers) -> None:
    """Add ``study`` (with its study ``postcopy``) and their options to the subcommands."""
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
    add_study_args(pc)
    add_variant_options(pc, compare="run the study on this profile too and compare")
    pc.add_argument("--seeds", type=seeds_arg, help="with --compare: 0-7, 0,3,5 or a count")
    pc.add_argument("--json", action="store_true", help="machine-readable output")
    pc.add_argument("--plot", help="write a timeline PNG here (.png added to a name without one)")
    pc.add_argument("--fail-on-hang", action="store_true", help="exit 3 unless completed")
    pc.set_defaults(func=cmd_study_postcopy)
