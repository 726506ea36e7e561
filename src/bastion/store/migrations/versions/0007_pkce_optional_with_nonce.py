"""A per-client policy that lets a confidential OpenID Connect client that sends a nonce omit
PKCE (RFC 9700 §2.1.1); off for every existing client.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("pkce_optional_with_nonce", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("pkce_optional_with_nonce")
