"""number ranges granted to carriers; activations refused outside them

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

A store upgraded to this revision has no ranges: until the operator grants its carriers
their prefixes (`handover carrier grant`), every activation of a new number is refused as
`outside_range`. Numbers already known keep following the lifecycle's holder rules.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "number_ranges",
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("carrier_id", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_number_ranges_carrier_id_carriers")
        ),
        sa.PrimaryKeyConstraint("prefix", name=op.f("pk_number_ranges")),
    )
    with op.batch_alter_table("number_ranges", schema=None) as batch_op:
        batch_op.create_index("ix_number_ranges_carrier", ["carrier_id"], unique=False)

    op.create_table(
        "range_refusals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("carrier_id", sa.String(length=64), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingest_id", sa.String(length=36), nullable=True),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_range_refusals")),
    )
    with op.batch_alter_table("range_refusals", schema=None) as batch_op:
        batch_op.create_index("ix_range_refusals_carrier_id", ["carrier_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("range_refusals", schema=None) as batch_op:
        batch_op.drop_index("ix_range_refusals_carrier_id")
    op.drop_table("range_refusals")

    with op.batch_alter_table("number_ranges", schema=None) as batch_op:
        batch_op.drop_index("ix_number_ranges_carrier")
    op.drop_table("number_ranges")
