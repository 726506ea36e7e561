"""A pending request says which flow it belongs to: `kind` (authorization | device) and, for a
device request, the device's `user_code` in its own column. Until now a device request was told
apart by a sentinel redirect URI (the device grant's URN) and carried its user code in `state`;
requests in flight are converted both ways.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The sentinel redirect URI of a device request before this revision (RFC 8628 §7.2's grant type).
DEVICE_SENTINEL = "urn:ietf:params:oauth:grant-type:device_code"

requests = sa.table(
    "authorization_requests",
    sa.column("redirect_uri", sa.Text),
    sa.column("state", sa.Text),
    sa.column("kind", sa.String(16)),
    sa.column("user_code", sa.String(16)),
)


def upgrade() -> None:
    with op.batch_alter_table("authorization_requests") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="authorization"))
        batch.add_column(sa.Column("user_code", sa.String(16), nullable=True))
    op.execute(
        requests.update()
        .where(requests.c.redirect_uri == DEVICE_SENTINEL)
        .values(kind="device", user_code=requests.c.state, state=None, redirect_uri="")
    )


def downgrade() -> None:
    op.execute(
        requests.update()
        .where(requests.c.kind == "device")
        .values(redirect_uri=DEVICE_SENTINEL, state=requests.c.user_code)
    )
    with op.batch_alter_table("authorization_requests") as batch:
        batch.drop_column("user_code")
        batch.drop_column("kind")
