"""`bastion sessions`: list and revoke a user's browser sessions (the admin API's operations)."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli._common import emit, fail, run, settings_for, with_database
from bastion.cli._options import ConfigOption, DataDirOption, JsonOption
from bastion.config import Settings
from bastion.server import admin_people
from bastion.server.admin import AdminError

app = typer.Typer(help="Browser sessions of a user: list, revoke.", no_args_is_help=True)


def _admin(settings: Settings, action: Any) -> Any:
    try:
        return run(with_database(settings, action))
    except AdminError as exc:
        raise fail(str(exc)) from None


@app.command("list")
def list_sessions(
    user: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """The user's (username or sub) live browser sessions."""
    settings = settings_for(data_dir, config)

    def table(rows: list[dict[str, Any]]) -> None:
        out = Table("sid", "stage", "amr", "auth_time", "last_seen_at", "expires_at")
        for r in rows:
            out.add_row(
                r["sid"],
                r["stage"],
                " ".join(r["amr"]),
                str(r["auth_time"]),
                str(r["last_seen_at"]),
                str(r["expires_at"]),
            )
        Console().print(out)

    emit(_admin(settings, lambda db: admin_people.list_sessions(db, user)), as_json, table)


@app.command("revoke")
def revoke(
    user: str, sid: str, data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """End one of the user's sessions (by its sid): its next page asks to sign in again."""
    settings = settings_for(data_dir, config)
    emit(
        _admin(settings, lambda db: admin_people.revoke_session(db, user, sid)),
        as_json,
        lambda r: typer.echo(f"session {r['sid']} revoked"),
    )
