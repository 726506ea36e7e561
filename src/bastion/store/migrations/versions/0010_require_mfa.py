"""A per-client policy that every code and device approval for the client comes from a session
that signed in with a second factor (`require_mfa`); off for every existing client.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("require_mfa", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("require_mfa")
