"""The ID token signing algorithm per client (OpenID Connect Registration 1.0 §2
`id_token_signed_response_alg`); RS256, the default, for every existing client.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("id_token_signed_response_alg", sa.String(8), nullable=False, server_default="RS256")
        )


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("id_token_signed_response_alg")
