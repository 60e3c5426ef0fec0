"""Contrats de ville tracker: staff decisions and imported QPV.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

``contract_decisions`` records each staff decision on a contract's status
(``status`` NULL: the decision was cleared, the classifier speaks again);
the newest row of a SIREN is the one in force, older rows are its history.
``contract_qpv`` holds the QPV imported from ANCT's national file, attributed
to a contract by the SIREN of its carrier. A partial index on
``items(id) WHERE contract IS NOT NULL`` lets the tracker read the classified
items without scanning the others.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contract_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("siren", sa.String(9), nullable=False),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name="fk_contract_decisions_item_id_items",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_contract_decisions"),
    )
    op.create_index(
        "ix_contract_decisions_siren_at", "contract_decisions", ["siren", "at"], unique=False
    )
    op.create_table(
        "contract_qpv",
        sa.Column("code", sa.String(12), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("siren", sa.String(9), nullable=False),
        sa.Column("department", sa.String(3), nullable=False),
        sa.Column("communes", sa.JSON(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_contract_qpv"),
    )
    op.create_index("ix_contract_qpv_siren", "contract_qpv", ["siren"], unique=False)
    op.create_index(
        "ix_items_contract_classified",
        "items",
        ["id"],
        unique=False,
        sqlite_where=sa.text("contract IS NOT NULL"),
        postgresql_where=sa.text("contract IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_items_contract_classified", table_name="items")
    op.drop_index("ix_contract_qpv_siren", table_name="contract_qpv")
    op.drop_table("contract_qpv")
    op.drop_index("ix_contract_decisions_siren_at", table_name="contract_decisions")
    op.drop_table("contract_decisions")
