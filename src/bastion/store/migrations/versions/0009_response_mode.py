"""The response mode of a pending authorization request (`response_mode`: query or form_post,
OAuth 2.0 Form Post Response Mode), so the code or error at its end travels as the client asked.
Requests in flight were all answered in the query: they get `query`.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("authorization_requests") as batch:
        batch.add_column(sa.Column("response_mode", sa.String(16), nullable=False, server_default="query"))


def downgrade() -> None:
    with op.batch_alter_table("authorization_requests") as batch:
        batch.drop_column("response_mode")
