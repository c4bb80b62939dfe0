"""visattn view: a saved analysis (visattn.save, or an export's arrays.npz) -> the offline
hover view, viewer.html, without running any network."""
from __future__ import annotations

from pathlib import Path

from ..render import COLORMAPS
from .common import UserError


def add(sub) -> None:
    s = sub.add_parser(
        "view", help="make the offline hover view of a saved analysis (.npz)",
        description="Read an analysis saved by visattn.save (or an export's arrays.npz) and "
                    "write the offline hover view of its pairwise layers: one HTML file that "
                    "opens in any browser with no network. No network is run.")
    s.add_argument("trace", metavar="TRACE.npz", help="a saved analysis")
    s.add_argument("--html", action="store_true", required=True,
                   help="write the hover view as HTML (the one output this command has)")
    s.add_argument("--out", metavar="FILE.html",
                   help="where to write it (default: next to TRACE, with .html)")
    s.add_argument("--cmap", default="jet", choices=COLORMAPS)
    s.set_defaults(run=run)


def run(args) -> int:
    from ..hover import viewer_html
    from ..records import Pairwise
    from ..trace_file import TraceFileError, load
    source = Path(args.trace)
    if not source.is_file():
        raise UserError(f"{args.trace[:200]}: no such file; give a .npz written by visattn.save "
                        "or `visattn analyze`.", 2)
    try:
        trace = load(source)
    except TraceFileError as exc:
        raise UserError(f"{source.name[:80]}: {exc}", 2) from None
    if not any(isinstance(r, Pairwise) for r in trace):
        raise UserError(f"{source.name[:80]} has no pairwise layer to point at "
                        f"({trace.model} records: {len(trace)}).", 2)
    out = Path(args.out) if args.out else source.with_suffix(".html")
    out.write_text(viewer_html(trace, cmap=args.cmap), encoding="utf-8")
    print(f"wrote {out}: the hover view of {trace.model}'s pairwise layers, offline")
    return 0
