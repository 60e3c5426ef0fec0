"""Store queries of the contrats de ville tracker: evidence, staff decisions, imported QPV."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from pressreview.store.schema import contract_decisions, contract_qpv, issues, items


def classified_items(conn: Connection) -> list[dict[str, Any]]:
    """Every item that has a contract classification (through the partial index).

    Only the columns the tracker needs; the other items are never read.
    """
    query = (
        select(
            items.c.id,
            items.c.title,
            items.c.title_edited,
            items.c.outlet,
            items.c.link,
            items.c.url,
            items.c.published_at,
            items.c.status,
            items.c.contract,
            items.c.contract_source,
        )
        .where(items.c.contract.isnot(None))
        .order_by(items.c.published_at.desc(), items.c.id.desc())
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def item_brief(conn: Connection, item_id: int) -> dict[str, Any] | None:
    """The fields of one item that a staff decision's evidence shows."""
    row = (
        conn.execute(
            select(
                items.c.id,
                items.c.title,
                items.c.title_edited,
                items.c.outlet,
                items.c.link,
                items.c.url,
                items.c.published_at,
            ).where(items.c.id == item_id)
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


# -- staff decisions --------------------------------------------------------------


def add_decision(
    conn: Connection,
    *,
    siren: str,
    status: str | None,
    decided_on: date | None,
    item_id: int | None,
    note: str | None,
    actor: str,
    at: datetime,
) -> int:
    """Record a decision (``status`` None: the previous decision is cleared)."""
    return int(
        conn.execute(
            insert(contract_decisions)
            .values(
                siren=siren,
                status=status,
                decided_on=decided_on,
                item_id=item_id,
                note=note,
                actor=actor,
                at=at,
            )
            .returning(contract_decisions.c.id)
        ).scalar_one()
    )


def decisions(conn: Connection, siren: str | None = None) -> list[dict[str, Any]]:
    """Decisions, oldest first (of one SIREN, or all)."""
    query = select(contract_decisions).order_by(contract_decisions.c.at, contract_decisions.c.id)
    if siren is not None:
        query = query.where(contract_decisions.c.siren == siren)
    return [dict(row) for row in conn.execute(query).mappings()]


# -- QPV --------------------------------------------------------------------------


def qpv_rows(conn: Connection) -> list[dict[str, Any]]:
    """Every imported QPV, by code."""
    query = select(contract_qpv).order_by(contract_qpv.c.code)
    return [dict(row) for row in conn.execute(query).mappings()]


def replace_qpv(
    conn: Connection,
    added: Iterable[Mapping[str, Any]],
    changed: Iterable[Mapping[str, Any]],
    removed: Sequence[str],
) -> None:
    """Apply an import: insert, update and delete QPV rows (inside the caller's transaction)."""
    added = list(added)
    if added:
        conn.execute(insert(contract_qpv), added)
    for row in changed:
        values = {k: v for k, v in row.items() if k != "code"}
        conn.execute(update(contract_qpv).where(contract_qpv.c.code == row["code"]).values(values))
    if removed:
        conn.execute(delete(contract_qpv).where(contract_qpv.c.code.in_(list(removed))))


def previous_block(conn: Connection) -> dict[str, Any] | None:
    """The tracker block frozen in the newest published issue (None: none has one)."""
    query = (
        select(issues.c.snapshot)
        .where(issues.c.status == "published", issues.c.snapshot.isnot(None))
        .order_by(issues.c.number.desc())
        .limit(1)
    )
    snapshot = conn.execute(query).scalar()
    block = snapshot.get("contracts") if isinstance(snapshot, dict) else None
    return dict(block) if isinstance(block, dict) else None
