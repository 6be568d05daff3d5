"""sign-in lanes: device credentials, long codes, requests per address

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Codes issued under the old rules have no long code and are dropped: they lived five
minutes, and a person in the middle of signing in asks again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_devices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("tenure_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_devices")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sign_in_devices_token_hash")),
    )
    op.create_table(
        "sign_in_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_requests")),
    )
    with op.batch_alter_table("sign_in_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sign_in_requests_address_created", ["client_address", "created_at"], unique=False
        )

    op.execute("DELETE FROM sign_in_codes")
    with op.batch_alter_table("sign_in_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("long_hash", sa.String(length=64), nullable=False))
        batch_op.add_column(sa.Column("device_id", sa.String(length=32), nullable=True))
        batch_op.drop_index("ix_sign_in_codes_address_created")
        batch_op.drop_column("last_failure_at")


def downgrade() -> None:
    with op.batch_alter_table("sign_in_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_sign_in_codes_address_created", ["client_address", "created_at"], unique=False
        )
        batch_op.drop_column("device_id")
        batch_op.drop_column("long_hash")

    with op.batch_alter_table("sign_in_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_requests_address_created")

    op.drop_table("sign_in_requests")
    op.drop_table("sign_in_devices")
