"""Device Authorization Grant (RFC 8628): the device_codes table.

One row per device authorization request: the device code (hashed), the user code (normalised,
unique), the client it is bound to (§3.4), the requested scope, the user's decision and the
authentication behind it (for the ID token), the expiry, the polling interval with the time of
the last poll (§3.5, `slow_down`), and when the tokens were issued (a device code is redeemed
once).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_codes",
        sa.Column("device_code_hash", sa.String(64), primary_key=True),
        sa.Column("user_code", sa.String(16), nullable=False, unique=True),
        sa.Column("client_id", sa.String(64), sa.ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sub", sa.String(64), nullable=True),
        sa.Column("sid", sa.String(64), nullable=True),
        sa.Column("auth_time", sa.BigInteger, nullable=True),
        sa.Column("amr", sa.String(64), nullable=True),
        sa.Column("acr", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("interval", sa.Integer, nullable=False),
        sa.Column("last_poll_at", sa.BigInteger, nullable=True),
        sa.Column("decided_at", sa.BigInteger, nullable=True),
        sa.Column("redeemed_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_device_codes_client_id", "device_codes", ["client_id"])
    op.create_index("ix_device_codes_expires_at", "device_codes", ["expires_at"])


def downgrade() -> None:
    op.drop_table("device_codes")
