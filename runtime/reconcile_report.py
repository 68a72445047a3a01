"""`amphi reconcile`'s report as the operator reads it: one line a block, then each finding
and order problem, then the verdict."""

from __future__ import annotations

from amphi.geometry import Geometry
from services.reconcile import Report


def format_report(report: Report, *, fixed: bool) -> str:
    """The operator's table: one line a block, then each finding and order problem."""
    head = ("date", "section", "capacity", "sold (ledger)", "sold (redis)", "held",
            "available", "drift")
    rows = []
    for b in report.blocks:
        meta = b.snapshot.meta
        sold, held = meta.get("sold", "-"), meta.get("held", "-")
        available = (str(b.spec.capacity - int(sold) - int(held)) if meta else "-")
        kinds = sorted({f.kind for f in b.found})
        state = "ok" if not kinds else ", ".join(kinds)
        if kinds and fixed:
            state += " -> " + ("fixed" if not b.remaining else "NOT FIXED")
        rows.append((b.spec.block.event_date.isoformat(), b.spec.block.section,
                     str(b.spec.capacity), str(b.expected.ticket_count), sold, held,
                     available, state))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [head, *rows]]
    for b in report.blocks:
        geometry = Geometry(b.spec.rows, b.spec.seats_per_row)
        for f in b.found:
            names = [f"{p.row}{p.seat}" for p in map(geometry.seat, f.seats[:10])]
            more = ", ..." if len(f.seats) > 10 else ""
            seats = f" (seats {', '.join(names)}{more})" if f.seats else ""
            lines.append(f"  {b.spec.block.event_date} {b.spec.block.section}: {f.kind}: "
                         f"{f.detail}{seats}")
    for o in report.orders:
        after = f" -> {o.fixed_status}" if o.fixed_status else ""
        lines.append(f"  order {o.order_id}: {o.what} (status {o.status or '-'}){after}")
    oversold = report.oversold
    if not report.drift_found:
        verdict = f"no drift in {len(report.blocks)} blocks; no oversold seat"
    elif fixed and not report.drift_left:
        verdict = "drift found and fixed; no oversold seat"
    else:
        verdict = "DRIFT" + (f"; {oversold} blocks OVERSOLD in the ledger" if oversold else
                             "; no oversold seat") + ("" if fixed else " (run with --fix)")
    lines.append(verdict)
    return "\n".join(lines)
