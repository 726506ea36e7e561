"""Registered post-logout redirect URIs per client (OpenID Connect RP-Initiated Logout 1.0 §3),
so logout redirects only to URIs registered for that purpose, not to any redirect URI.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        # Existing clients get none registered: logout then shows the signed-out page.
        batch.add_column(sa.Column("post_logout_redirect_uris", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("post_logout_redirect_uris")
