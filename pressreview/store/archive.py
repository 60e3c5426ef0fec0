"""Store queries of the archive stage: the frozen snapshots of published issues."""

from __future__ import annotations

from sqlalchemy import Text, cast, select

from pressreview.store import Store
from pressreview.store.schema import issues


def published_snapshot_texts(store: Store) -> list[tuple[int, str]]:
    """(number, snapshot as stored JSON text) of every published issue, oldest first.

    The archive reads nothing else: a published issue is rendered from its
    frozen snapshot only, so re-rendering it years later gives the same page.
    The stored text (never rewritten once published) is what the archive
    hashes to know which pages changed, without re-serialising anything.
    """
    query = (
        select(issues.c.number, cast(issues.c.snapshot, Text))
        .where(
            issues.c.status == "published",
            issues.c.snapshot.is_not(None),
            issues.c.number.is_not(None),
        )
        .order_by(issues.c.number)
    )
    with store.connect() as conn:
        return [(int(number), str(text)) for number, text in conn.execute(query).all()]
