"""Bulk mail that lands: provider limits, slowed pace, suppression list, bounces,
the unsubscribe URL of each bulk row, the admin's unsubscribe switch; saved templates
and mailbox signatures

Revision ID: 0012
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from plugin.models._types import UTCDateTime

revision = "0012"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ie_send_limit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("per_minute", sa.Integer(), nullable=False),
        sa.Column("per_day", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ie_send_limit")),
        sa.UniqueConstraint("provider", name=op.f("uq_ie_send_limit_provider")),
    )
    op.create_table(
        "ie_send_pace",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("per_minute", sa.Integer(), nullable=False),
        sa.Column("slowed_until", UTCDateTime(), nullable=True),
        sa.Column("throttles", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["mailbox_id"], ["ie_mailbox.id"], ondelete="CASCADE",
                                name=op.f("fk_ie_send_pace_mailbox_id_ie_mailbox")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ie_send_pace")),
        sa.UniqueConstraint("mailbox_id", name=op.f("uq_ie_send_pace_mailbox_id")),
    )
    op.create_table(
        "ie_suppression",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.Column("outbound_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["outbound_id"], ["ie_outbound_message.id"],
                                ondelete="SET NULL",
                                name=op.f("fk_ie_suppression_outbound_id_ie_outbound_message")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ie_suppression")),
        sa.UniqueConstraint("address", name=op.f("uq_ie_suppression_address")),
    )
    op.create_table(
        "ie_bounce",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbound_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("hard", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["outbound_id"], ["ie_outbound_message.id"], ondelete="CASCADE",
                                name=op.f("fk_ie_bounce_outbound_id_ie_outbound_message")),
        sa.ForeignKeyConstraint(["message_id"], ["ie_message.id"], ondelete="CASCADE",
                                name=op.f("fk_ie_bounce_message_id_ie_message")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ie_bounce")),
        sa.UniqueConstraint("message_id", "address",
                            name=op.f("uq_ie_bounce_message_id_address")),
    )
    op.create_index("ix_ie_bounce_outbound", "ie_bounce", ["outbound_id"])
    op.create_table(
        "ie_mail_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ie_mail_template")),
    )
    op.create_index("ix_ie_mail_template_user", "ie_mail_template", ["user_id"])
    op.create_table(
        "ie_signature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["mailbox_id"], ["ie_mailbox.id"], ondelete="CASCADE",
                                name=op.f("fk_ie_signature_mailbox_id_ie_mailbox")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ie_signature")),
        sa.UniqueConstraint("mailbox_id", name=op.f("uq_ie_signature_mailbox_id")),
    )
    with op.batch_alter_table("ie_outbound_message") as batch:
        batch.add_column(sa.Column("unsubscribe_url", sa.String(length=600), nullable=True))
    with op.batch_alter_table("ie_bulk_job") as batch:
        batch.add_column(sa.Column("window_days", sa.String(length=7), nullable=True))
        batch.add_column(sa.Column("window_start", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("window_end", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("window_zone", sa.String(length=64), nullable=True))
    with op.batch_alter_table("ie_global_settings") as batch:
        batch.add_column(sa.Column("bulk_unsubscribe", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("ie_bulk_job") as batch:
        for name in ("window_zone", "window_end", "window_start", "window_days"):
            batch.drop_column(name)
    with op.batch_alter_table("ie_global_settings") as batch:
        batch.drop_column("bulk_unsubscribe")
    with op.batch_alter_table("ie_outbound_message") as batch:
        batch.drop_column("unsubscribe_url")
    op.drop_table("ie_signature")
    op.drop_index("ix_ie_mail_template_user", table_name="ie_mail_template")
    op.drop_table("ie_mail_template")
    op.drop_index("ix_ie_bounce_outbound", table_name="ie_bounce")
    op.drop_table("ie_bounce")
    op.drop_table("ie_suppression")
    op.drop_table("ie_send_pace")
    op.drop_table("ie_send_limit")
