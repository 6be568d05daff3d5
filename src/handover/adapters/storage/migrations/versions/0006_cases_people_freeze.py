"""cases sign-in notifications freeze

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tenures_carrier_subscriber", ["carrier_id", "subscriber"], unique=False
        )

    op.create_table(
        "freeze_reminders",
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column(
            "frozen_at",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=True),
        sa.Column("log_index", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("e164", "frozen_at", "stage", name=op.f("pk_freeze_reminders")),
    )
    op.create_index(
        "ix_numbers_state_cancelled", "numbers", ["state", "cancelled_at"], unique=False
    )
    op.create_table(
        "notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "send_after",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("log_index", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notifications_dedupe_key")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_due", ["sent_at", "send_after"], unique=False)

    op.create_table(
        "release_overrides",
        sa.Column("carrier_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column(
            "advised_release",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("carrier_id", "event_id", name=op.f("pk_release_overrides")),
    )
    op.create_table(
        "renewals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column(
            "tenure_start",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "requested_at",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "completed_at",
            sa.DateTime(timezone=True),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renewals")),
    )
    with op.batch_alter_table("renewals", schema=None) as batch_op:
        batch_op.create_index("ix_renewals_e164", ["e164"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("tenure_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index("ix_sessions_e164", ["e164"], unique=False)

    op.create_table(
        "sign_in_codes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_codes")),
    )
    with op.batch_alter_table("sign_in_codes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sign_in_codes_address_created", ["client_address", "created_at"], unique=False
        )
        batch_op.create_index("ix_sign_in_codes_e164_created", ["e164", "created_at"], unique=False)

    op.create_table(
        "subscriber_contacts",
        sa.Column("carrier_id", sa.String(length=64), nullable=False),
        sa.Column("subscriber", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("carrier_id", "subscriber", name=op.f("pk_subscriber_contacts")),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("renewal_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("requester", sa.String(length=16), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("platform_id", sa.String(length=64), nullable=False),
        sa.Column(
            "tenure_start",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("account_ref", sa.String(length=128), nullable=True),
        sa.Column("migrate_to", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "answered_at",
            sa.DateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "escalated_at",
            sa.DateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "cancelled_at",
            sa.DateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"], ["platforms.id"], name=op.f("fk_cases_platform_id_platforms")
        ),
        sa.ForeignKeyConstraint(
            ["renewal_id"], ["renewals.id"], name=op.f("fk_cases_renewal_id_renewals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_e164", ["e164"], unique=False)
        batch_op.create_index("ix_cases_platform_state", ["platform_id", "state"], unique=False)
        batch_op.create_index("ix_cases_renewal_id", ["renewal_id"], unique=False)
        batch_op.create_index("ix_cases_state_deadline", ["state", "deadline"], unique=False)

    op.create_table(
        "subscriber_links",
        sa.Column("carrier_id", sa.String(length=64), nullable=False),
        sa.Column("subscriber", sa.String(length=128), nullable=False),
        sa.Column("linked", sa.String(length=128), nullable=False),
        sa.Column(
            "attested_at",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_subscriber_links_carrier_id_carriers")
        ),
        sa.PrimaryKeyConstraint(
            "carrier_id", "subscriber", "linked", name=op.f("pk_subscriber_links")
        ),
    )
    with op.batch_alter_table("subscriber_links", schema=None) as batch_op:
        batch_op.create_index("ix_subscriber_links_linked", ["carrier_id", "linked"], unique=False)
    op.create_table(
        "case_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index("ix_case_events_case_id", ["case_id"], unique=False)

    op.create_table(
        "complaints",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_complaints_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
    )
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index("ix_complaints_case_id", ["case_id"], unique=False)
        batch_op.create_index("ix_complaints_state", ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index("ix_complaints_state")
        batch_op.drop_index("ix_complaints_case_id")

    op.drop_table("complaints")
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_index("ix_case_events_case_id")

    op.drop_table("case_events")
    with op.batch_alter_table("subscriber_links", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriber_links_linked")

    op.drop_table("subscriber_links")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_state_deadline")
        batch_op.drop_index("ix_cases_renewal_id")
        batch_op.drop_index("ix_cases_platform_state")
        batch_op.drop_index("ix_cases_e164")

    op.drop_table("cases")
    op.drop_table("subscriber_contacts")
    with op.batch_alter_table("sign_in_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_codes_e164_created")
        batch_op.drop_index("ix_sign_in_codes_address_created")

    op.drop_table("sign_in_codes")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_e164")

    op.drop_table("sessions")
    with op.batch_alter_table("renewals", schema=None) as batch_op:
        batch_op.drop_index("ix_renewals_e164")

    op.drop_table("renewals")
    op.drop_table("release_overrides")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_due")

    op.drop_table("notifications")
    op.drop_index("ix_numbers_state_cancelled", table_name="numbers")
    op.drop_table("freeze_reminders")
    with op.batch_alter_table("tenures", schema=None) as batch_op:
        batch_op.drop_index("ix_tenures_carrier_subscriber")
