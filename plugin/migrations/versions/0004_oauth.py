"""OAuth2 sign-in: provider settings and per-mailbox tokens

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from plugin.models._types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ie_oauth_provider",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=True),
        sa.Column("client_secret", sa.Text(), nullable=True),
        sa.Column("tenant", sa.String(length=255), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ie_oauth_provider")),
        sa.UniqueConstraint("provider", name=op.f("uq_ie_oauth_provider_provider")),
    )
    op.create_table(
        "ie_oauth_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("account", sa.String(length=320), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("access_expires_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("refreshing_until", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["mailbox_id"], ["ie_mailbox.id"], ondelete="CASCADE",
                                name=op.f("fk_ie_oauth_token_mailbox_id_ie_mailbox")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ie_oauth_token")),
        sa.UniqueConstraint("mailbox_id", name=op.f("uq_ie_oauth_token_mailbox_id")),
    )


def downgrade() -> None:
    op.drop_table("ie_oauth_token")
    op.drop_table("ie_oauth_provider")
