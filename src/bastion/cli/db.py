"""`bastion db`: schema migrations, and the purge of expired rows."""

from __future__ import annotations

import time

import typer

from bastion.cli._common import emit, run, settings_for, with_database
from bastion.cli._options import ConfigOption, DataDirOption, JsonOption
from bastion.server.sweeper import purge_expired
from bastion.store import Database

app = typer.Typer(help="Database schema migrations and the purge of expired rows.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Apply every migration (needed once per release on PostgreSQL; SQLite migrates itself,
    and this creates a new data directory's database)."""
    settings = settings_for(data_dir, config, creates_data=True)

    async def go() -> str | None:
        database = Database(settings.resolved_database_url, pool_size=1)
        try:
            await database.check_reachable()
            await database.upgrade()
            return await database.current_revision()
        finally:
            await database.dispose()

    typer.echo(f"database at revision {run(go())}", err=True)


def _counts(counts: dict[str, int]) -> None:
    for table, deleted in counts.items():
        typer.echo(f"{table}: {deleted}")


@app.command("purge")
def purge(data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Delete every expired row now (what each server process does every purge_interval seconds);
    print how many per table."""
    settings = settings_for(data_dir, config)
    idle = settings.session_idle_lifetime
    counts = run(with_database(settings, lambda db: purge_expired(db, now=int(time.time()), session_idle=idle)))
    emit(counts, as_json, _counts)
