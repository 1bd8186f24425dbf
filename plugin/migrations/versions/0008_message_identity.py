"""Message identity by content, sanitized HTML kept, attachment slices

ie_message.content_digest: a later message re-using a stored Message-ID with other
content is stored as its own message (existing rows keep their keys; their digest
is filled in when a message with the same Message-ID arrives). ie_message.body_html_safe:
the sanitized HTML, made once. ie_attachment.body_offset/body_length/transfer_encoding:
where an attachment's bytes sit in the raw message, so a download reads only them.
Only new nullable columns: existing data stays as it is.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ie_message") as batch_op:
        batch_op.add_column(sa.Column("body_html_safe", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("content_digest", sa.String(length=64), nullable=True))
    with op.batch_alter_table("ie_attachment") as batch_op:
        batch_op.add_column(sa.Column("body_offset", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("body_length", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("transfer_encoding", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ie_attachment") as batch_op:
        batch_op.drop_column("transfer_encoding")
        batch_op.drop_column("body_length")
        batch_op.drop_column("body_offset")
    with op.batch_alter_table("ie_message") as batch_op:
        batch_op.drop_column("content_digest")
        batch_op.drop_column("body_html_safe")
