"""``reclaim export``: a postcopy study's run as a Perfetto trace, ftrace text or a page
heatmap."""

from __future__ import annotations

import argparse
import json

import reclaim
from reclaim.cli.common import Progress, Subparsers, report_failures
from reclaim.cli.study import add_study_args, study_params
from reclaim.output import output_path, png_path
from reclaim.variants import add_variant_options


def cmd_export(args: argparse.Namespace) -> int:
    """``reclaim export``: run the postcopy study and write its event log as a Perfetto (Chrome
    Trace Event) file and/or as ftrace text, and/or its page states as a heatmap PNG. Returns
    0, or 1 if the run failed (the files are written all the same)."""
    from reclaim.studies.postcopy import prepare
    from reclaim.variants import resolve_cli_profile

    args.profile = resolve_cli_profile(args, args.profile)
    if not (args.perfetto or args.ftrace or args.heatmap):
        raise reclaim.ArgumentError("say what to write: --perfetto, --ftrace and/or --heatmap")
    heatmap = png_path(args.heatmap, "--heatmap") if args.heatmap else None  # before the runs
    for option, path in (("--perfetto", args.perfetto), ("--ftrace", args.ftrace)):
        if path:
            output_path(path, option)
    params = study_params(args)
    params["trace"] = "full"
    written: dict[str, str] = {}
    every_ns = 10_000_000
    if heatmap:  # its own run of the same study: the same seed gives the same run
        from reclaim.heatmap import page_heatmap

        run = prepare(args.profile, **params)  # type: ignore[arg-type]
        written["heatmap"] = str(page_heatmap(run, host=1, every_ns=every_ns, path=heatmap))
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
        doc = {"outcome": result.outcome, "failure": result.failure, "events": result.n_events}
        print(json.dumps({**doc, **written}))
    else:
        print(f"{args.profile}: {result.outcome}, {result.n_events} events")
        for what, where in written.items():
            print(f"{what}: {where}")
    row: dict[str, object] = {
        "run": args.profile,
        "outcome": result.outcome,
        "failure": result.failure,
    }
    return report_failures([row], text=not args.json)


def add_parser(sub: Subparsers) -> None:
    """Add ``export`` and its options (the study's and what to write) to the subcommands."""
    xp = sub.add_parser(
        "export",
        help="run a postcopy study and export it: Perfetto trace, ftrace text, page heatmap",
        epilog="""examples:
  reclaim export --perfetto seed.json --profile 4.17     open seed.json in ui.perfetto.dev
  reclaim export --ftrace trace.txt --host 1 --profile 4.18
  reclaim export --heatmap pages.png --profile 4.17 --guest-memory 64MiB""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_study_args(xp)
    xp.add_argument("--perfetto", help="write Chrome Trace Event JSON (Perfetto UI) here")
    xp.add_argument("--ftrace", help="write ftrace-style text (the mm_vmscan_* formats) here")
    xp.add_argument(
        "--host", type=int, choices=[0, 1], help="ftrace: only the source (0) or destination (1)"
    )
    xp.add_argument(
        "--heatmap",
        help="write a page-state heatmap PNG of the destination here (.png added if missing)",
    )
    xp.add_argument("--json", action="store_true", help="machine-readable output")
    add_variant_options(xp)
    xp.set_defaults(func=cmd_export)
