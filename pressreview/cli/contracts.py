"""`pressreview contracts ...`: the contrats de ville tracker (docs/contracts.md)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from pressreview import contracts
from pressreview.cli.context import AppContext
from pressreview.cli.display import print_json, table
from pressreview.errors import UsageError


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--date: {value!r} is not a date (YYYY-MM-DD)") from None


def _department(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().upper()
    return value.zfill(2) if value.isdigit() and len(value) < 2 else value


@click.group("contracts")
def contracts_group() -> None:
    """The contrats de ville Quartiers 2030: status, evidence, staff decisions, QPV.

    \b
    Example:
      pressreview contracts list --departement 62
    """


@contracts_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every field, evidence).")
@click.option(
    "--departement",
    "--department",
    "department",
    metavar="CODE",
    help="Only the contracts of this département (02, 59, 60, 62, 80).",
)
@click.pass_obj
def contracts_list(app: AppContext, as_json: bool, department: str | None) -> None:
    """Every listed contract with its status, date and evidence (newest first).

    \b
    Example:
      pressreview contracts list --departement 59 --json
    """
    tracker = contracts.load_tracker(app.config, app.store, department=_department(department))
    if as_json:
        print_json(tracker.as_dict())
        return
    rows = []
    for c in tracker.contracts:
        first = c.evidence[0] if c.evidence else None
        evidence = ""
        if first is not None:
            more = f" (+{len(c.evidence) - 1})" if len(c.evidence) > 1 else ""
            evidence = f"#{first.item_id} {first.outlet or ''}{more}".strip()
        rows.append(
            (
                c.contract.siren,
                c.contract.department,
                c.contract.name,
                c.status + (" (staff)" if c.source == "staff" else ""),
                c.date.isoformat() if c.date else "",
                evidence,
            )
        )
    table(("SIREN", "Dép.", "Contract", "Status", "Date", "Evidence"), rows)
    counts = tracker.counts()
    scope = f" in département {_department(department)}" if department else ""
    click.echo(
        f"{tracker.listed} listed{scope} of {tracker.total} expected: "
        + ", ".join(f"{counts[s]} {s}" for s in contracts.STATUSES)
    )


@contracts_group.command("show")
@click.argument("siren")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def contracts_show(app: AppContext, siren: str, as_json: bool) -> None:
    """A contract's status and history: classified items and staff decisions.

    \b
    Example:
      pressreview contracts show 200093201
    """
    h = contracts.history(app.config, app.store, siren)
    if as_json:
        print_json(h.as_dict())
        return
    c = h.current
    commune = f", commune {c.contract.commune}" if c.contract.commune else ""
    click.echo(f"{c.contract.name} (SIREN {c.contract.siren}{commune}, {c.contract.department})")
    when = f" on {c.date.isoformat()}" if c.date else ""
    by = f" (staff: {c.decision.actor})" if c.source == "staff" and c.decision else ""
    click.echo(f"Status: {c.status}{when}{by}")
    if c.decision is not None and c.decision.note and c.source == "staff":
        click.echo(f"Note: {c.decision.note}")
    if c.qpv:
        click.echo(f"QPV ({len(c.qpv)}): " + ", ".join(f"{p.code} {p.name}" for p in c.qpv))
    click.echo("")
    click.echo("Classified items (2024-2030, Hauts-de-France), newest first:")
    if not h.items:
        click.echo("  none")
    for ev in h.items:
        day = ev.when.isoformat() if ev.when else "?"
        click.echo(f"  #{ev.item_id} {day} {ev.event or '-'}: {ev.title} ({ev.outlet or '?'})")
        if ev.url:
            click.echo(f"      {ev.url}")
    click.echo("Staff decisions, oldest first:")
    if not h.decisions:
        click.echo("  none")
    for d in h.decisions:
        stamp = d.at.strftime("%Y-%m-%d %H:%M")
        if d.status is None:
            click.echo(f"  {stamp} {d.actor}: cleared (the classifier's evidence speaks again)")
            continue
        extra = "".join(
            (
                f" on {d.date.isoformat()}" if d.date else "",
                f", evidence #{d.item_id}" if d.item_id else "",
                f": {d.note}" if d.note else "",
            )
        )
        click.echo(f"  {stamp} {d.actor}: {d.status}{extra}")


@contracts_group.command("set")
@click.argument("siren")
@click.option("--status", type=click.Choice(contracts.STATUSES), help="The status staff confirm.")
@click.option("--date", "on", metavar="YYYY-MM-DD", help="Date of the signing, vote, etc.")
@click.option("--evidence", "evidence", type=int, metavar="ITEM", help="Item id of the evidence.")
@click.option("--note", metavar="TEXT", help="Why (kept in the history).")
@click.option("--clear", is_flag=True, help="Withdraw the staff decision: the classifier decides.")
@click.pass_obj
def contracts_set(
    app: AppContext,
    siren: str,
    status: str | None,
    on: str | None,
    evidence: int | None,
    note: str | None,
    clear: bool,
) -> None:
    """Confirm or override a contract's status (wins over the classifier until --clear).

    \b
    Example:
      pressreview contracts set 200093201 --status signed --date 2024-05-07 --evidence 42
    """
    if clear == (status is not None):
        raise UsageError("give --status STATUS, or --clear")
    result = contracts.set_status(
        app.config,
        app.store,
        siren,
        status=None if clear else status,
        on=_parse_date(on),
        evidence_item=evidence,
        note=note,
        actor=app.actor,
    )
    when = f" on {result.date.isoformat()}" if result.date else ""
    if clear:
        click.echo(
            f"{result.contract.name}: staff decision cleared; status from the items: "
            f"{result.status}{when}"
        )
    else:
        click.echo(f"{result.contract.name}: {result.status}{when} (staff decision, audited)")


@contracts_group.command("import-qpv")
@click.argument("geojson", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option("--strict", is_flag=True, help="Refuse the import if any QPV is unattributed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def contracts_import_qpv(
    app: AppContext, geojson: Path, dry_run: bool, strict: bool, as_json: bool
) -> None:
    """Attribute the QPV of ANCT's national file (GeoJSON) to the listed contracts.

    \b
    Example:
      pressreview contracts import-qpv qpv-2024.geojson --dry-run
    """
    report = contracts.import_qpv(
        app.config, app.store, geojson, actor=app.actor, dry_run=dry_run, strict=strict
    )
    if as_json:
        print_json(report.as_dict())
        return
    verb = "would be " if dry_run else ""
    for label, codes in (
        ("added", report.added),
        ("changed", report.changed),
        ("removed", report.removed),
    ):
        shown = ": " + ", ".join(codes) if codes else ""
        click.echo(f"{len(codes)} QPV {verb}{label}{shown}")
    click.echo(f"{report.elsewhere} QPV of other départements skipped")
    if report.unattributed:
        click.echo(f"{len(report.unattributed)} QPV attributed to no listed contract:", err=True)
        for line in report.unattributed:
            click.echo(f"  {line}", err=True)


@contracts_group.command("init")
@click.argument("path", required=False)
@click.pass_obj
def contracts_init(app: AppContext, path: str | None) -> None:
    """Copy the shipped list of contracts to PATH [default: contracts.yaml beside feeds.yaml].

    \b
    Example:
      pressreview contracts init contracts.yaml
    """
    written = contracts.init_file(app.config, path)
    click.echo(f"Wrote {written}. Name it in feeds.yaml:\n  contracts:\n    file: {written.name}")


commands = [contracts_group]
