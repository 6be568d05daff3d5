"""signals by txn: a receipt's reader proves it was sent an entry's SET

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_signals_txn", "signals", ["txn"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_signals_txn", table_name="signals")
