"""user and record ids up to 255 characters, record kinds up to 40 (host contract 2.0)

Revision ID: 0006
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

#: (table, column, nullable, old length, new length)
COLUMNS = [
    ("ie_mailbox", "user_id", False, 64, 255),
    ("ie_record_link", "record_kind", False, 16, 40),
    ("ie_record_link", "record_id", False, 64, 255),
    ("ie_record_link", "linked_by", True, 64, 255),
    ("ie_outbound_message", "user_id", False, 64, 255),
    ("ie_bulk_job", "user_id", False, 64, 255),
    ("ie_global_settings", "saved_by", True, 64, 255),
    ("ie_record_share", "owner_user_id", False, 64, 255),
    ("ie_record_share", "record_kind", False, 16, 40),
    ("ie_record_share", "record_id", False, 64, 255),
]


def _alter(new: bool) -> None:
    for table, column, nullable, old_len, new_len in COLUMNS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(old_len if new else new_len),
                                  type_=sa.String(new_len if new else old_len),
                                  existing_nullable=nullable)


def upgrade() -> None:
    _alter(True)


def downgrade() -> None:
    _alter(False)
