"""Message identity by content, sanitized HTML kept, attachment slices, mailbox
action errors and a server for every fetching mailbox

ie_message.content_digest: a later message re-using a stored Message-ID with other
content is stored as its own message (existing rows keep their keys; their digest
is filled in when a message with the same Message-ID arrives). ie_message.body_html_safe:
the sanitized HTML, made once. ie_attachment.body_offset/body_length/transfer_encoding:
where an attachment's bytes sit in the raw message, so a download reads only them.
ie_mailbox.action_error*: the last failed Sent copy, consolidation or flag push, for
the status panel; ck_ie_mailbox_incoming_host: a fetching mailbox names its server.
Only new nullable columns and one check: existing data stays as it is (a fetching
row without a server, which could never fetch, becomes outgoing-only).

Revision ID: 0008
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from plugin.models._types import UTCDateTime

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A mailbox row that fetches but names no server cannot fetch at all: it becomes
    # outgoing-only (its mail and settings otherwise stay) before the constraint.
    op.execute("UPDATE ie_mailbox SET protocol = NULL "
               "WHERE protocol IS NOT NULL AND (in_host IS NULL OR in_host = '')")
    with op.batch_alter_table("ie_mailbox") as batch_op:
        batch_op.add_column(sa.Column("action_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("action_error_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("action_error_at", UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_check_constraint(
            "ck_ie_mailbox_incoming_host",
            "protocol IS NULL OR (in_host IS NOT NULL AND in_host <> '')")
    with op.batch_alter_table("ie_message") as batch_op:
        batch_op.add_column(sa.Column("body_html_safe", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("content_digest", sa.String(length=64), nullable=True))
    with op.batch_alter_table("ie_attachment") as batch_op:
        batch_op.add_column(sa.Column("body_offset", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("body_length", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("transfer_encoding", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ie_mailbox") as batch_op:
        batch_op.drop_constraint("ck_ie_mailbox_incoming_host", type_="check")
        batch_op.drop_column("action_error_at")
        batch_op.drop_column("action_error_kind")
        batch_op.drop_column("action_error")
    with op.batch_alter_table("ie_attachment") as batch_op:
        batch_op.drop_column("transfer_encoding")
        batch_op.drop_column("body_length")
        batch_op.drop_column("body_offset")
    with op.batch_alter_table("ie_message") as batch_op:
        batch_op.drop_column("content_digest")
        batch_op.drop_column("body_html_safe")
