"""ie_mailbox.oauth_provider: which sign-in a mailbox uses (None: passwords)

Revision ID: 0005
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ie_mailbox") as batch:
        batch.add_column(sa.Column("oauth_provider", sa.String(length=20), nullable=True))
    # Mailboxes signed in before this column existed (tests and early adopters only).
    op.execute("UPDATE ie_mailbox SET oauth_provider = (SELECT provider FROM ie_oauth_token "
               "WHERE ie_oauth_token.mailbox_id = ie_mailbox.id) WHERE id IN "
               "(SELECT mailbox_id FROM ie_oauth_token)")


def downgrade() -> None:
    with op.batch_alter_table("ie_mailbox") as batch:
        batch.drop_column("oauth_provider")
