"""The agenda: events from calendars, detected in items, or added by staff.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agenda_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(10), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime()),
        sa.Column("all_day", sa.Boolean(), nullable=False),
        sa.Column("place", sa.Text()),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("url", sa.Text()),
        sa.Column("territory", sa.Text()),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_agenda_events_item_id_items"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_agenda_events_source_id_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agenda_events")),
        sa.UniqueConstraint("uid", name=op.f("uq_agenda_events_uid")),
    )
    op.create_index(
        op.f("ix_agenda_events_status_starts_at"), "agenda_events", ["status", "starts_at"]
    )
    op.create_index(op.f("ix_agenda_events_item_id"), "agenda_events", ["item_id"])
    op.create_index(op.f("ix_agenda_events_source_id"), "agenda_events", ["source_id"])


def downgrade() -> None:
    op.drop_table("agenda_events")
