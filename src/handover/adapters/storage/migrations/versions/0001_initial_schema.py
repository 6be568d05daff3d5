"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carriers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carriers")),
    )
    op.create_table(
        "number_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("carrier_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subscriber", sa.String(length=128), nullable=True),
        sa.Column("to_carrier", sa.String(length=64), nullable=True),
        sa.Column("ingest_id", sa.String(length=36), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_number_events")),
        sa.UniqueConstraint("carrier_id", "event_id", name="uq_number_events_carrier_event"),
    )
    with op.batch_alter_table("number_events", schema=None) as batch_op:
        batch_op.create_index("ix_number_events_e164_seq", ["e164", "seq"], unique=False)

    op.create_table(
        "tenures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("subscriber", sa.String(length=128), nullable=False),
        sa.Column("carrier_id", sa.String(length=64), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenures")),
        sa.UniqueConstraint("e164", "start_at", name="uq_tenures_e164_start"),
    )
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("carrier_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_clients_carrier_id_carriers")
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_clients")),
    )
    op.create_table(
        "ingests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("carrier_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_ingests_carrier_id_carriers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingests")),
    )
    with op.batch_alter_table("ingests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ingests_carrier_received", ["carrier_id", "received_at"], unique=False
        )

    op.create_table(
        "numbers",
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=3), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("carrier_id", sa.String(length=64), nullable=False),
        sa.Column("subscriber", sa.String(length=128), nullable=True),
        sa.Column("tenure_carrier", sa.String(length=64), nullable=True),
        sa.Column("tenure_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenure_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_numbers_carrier_id_carriers")
        ),
        sa.PrimaryKeyConstraint("e164", name=op.f("pk_numbers")),
    )
    with op.batch_alter_table("numbers", schema=None) as batch_op:
        batch_op.create_index("ix_numbers_carrier_state", ["carrier_id", "state"], unique=False)

    op.create_table(
        "ingest_rejections",
        sa.Column("ingest_id", sa.String(length=36), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ingest_id"], ["ingests.id"], name=op.f("fk_ingest_rejections_ingest_id_ingests")
        ),
        sa.PrimaryKeyConstraint("ingest_id", "line", name=op.f("pk_ingest_rejections")),
    )


def downgrade() -> None:
    op.drop_table("ingest_rejections")
    with op.batch_alter_table("numbers", schema=None) as batch_op:
        batch_op.drop_index("ix_numbers_carrier_state")

    op.drop_table("numbers")
    with op.batch_alter_table("ingests", schema=None) as batch_op:
        batch_op.drop_index("ix_ingests_carrier_received")

    op.drop_table("ingests")
    op.drop_table("clients")
    op.drop_table("tenures")
    with op.batch_alter_table("number_events", schema=None) as batch_op:
        batch_op.drop_index("ix_number_events_e164_seq")

    op.drop_table("number_events")
    op.drop_table("carriers")
