"""`bastion db`: schema migrations."""

from __future__ import annotations

import typer

from bastion.cli._common import run, settings_for
from bastion.cli._options import ConfigOption, DataDirOption
from bastion.store import Database

app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Apply every migration (needed once per release on PostgreSQL; SQLite migrates itself)."""
    settings = settings_for(data_dir, config)

    async def go() -> str | None:
        database = Database(settings.resolved_database_url, pool_size=1)
        try:
            await database.check_reachable()
            await database.upgrade()
            return await database.current_revision()
        finally:
            await database.dispose()

    typer.echo(f"database at revision {run(go())}", err=True)
