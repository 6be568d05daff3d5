"""platform bindings

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bindings",
        sa.Column("platform_id", sa.String(length=64), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("account_ref", sa.String(length=128), nullable=False),
        sa.Column("bound_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"], ["platforms.id"], name=op.f("fk_bindings_platform_id_platforms")
        ),
        sa.PrimaryKeyConstraint("platform_id", "e164", "account_ref", name=op.f("pk_bindings")),
    )
    with op.batch_alter_table("bindings", schema=None) as batch_op:
        batch_op.create_index("ix_bindings_e164", ["e164"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bindings", schema=None) as batch_op:
        batch_op.drop_index("ix_bindings_e164")

    op.drop_table("bindings")
