"""The operational commands of the GlanceSync service (``glancesync-manage``).

A plain click group (no Flask-Script): ``runserver``, ``gunicornserver``, ``listen``,
``worker``, ``tasks prune``, ``db`` (the Flask-Migrate commands an operator runs) and
``shell``. It lives inside the package so that an installed wheel can run the service;
the checkout's ``manage.py`` reuses this group and adds the authoring commands of ``db``
(``migrate``, ``revision``...). The application is built only by the command that needs
it, so ``--help`` works without any configuration file; a settings error is printed as it
is, without a traceback, with exit status 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

import click
from flask import Config
from flask.cli import ScriptInfo, shell_command
from flask_migrate import cli as migrate_cli

from app import create_app
from app.settings import Settings, SettingsError, flask_config_file, load_settings

CONTEXT = {"help_option_names": ["-h", "--help"]}
# What an operator runs on a deployed service; the rest of Flask-Migrate's ``db`` commands
# write migration scripts and belong to the checkout (manage.py).
OPERATIONAL_DB_COMMANDS = ("upgrade", "downgrade", "current", "history", "stamp")


@click.group(context_settings=CONTEXT)
def cli() -> None:
    """Manage the GlanceSync server: run it, migrate its database, open a shell."""


RUNSERVER_HELP = "Runs the Flask development server i.e. app.run()"


@cli.command("runserver", help=RUNSERVER_HELP, short_help=RUNSERVER_HELP)
@click.option("-t", "--host", help="Address to bind (default: [glancesync] HOST).")
@click.option("-p", "--port", type=int, help="Port to bind (default: [glancesync] PORT).")
@click.option("-d", "--no-debug", is_flag=True, help="Run without the debug mode.")
@click.option("-r", "--no-reload", is_flag=True, help="Run without the code reloader.")
@click.option("--threaded", is_flag=True, help="Serve each request in its own thread.")
@click.pass_obj
def runserver(
    info: ScriptInfo,
    host: str | None,
    port: int | None,
    no_debug: bool,
    no_reload: bool,
    threaded: bool,
) -> None:
    app = info.load_app()
    settings: Settings = app.config["SETTINGS"]
    from app.broker import check_app_routes
    from app.tasks import check_lease_timing, start_service

    check_app_routes(app)
    check_lease_timing(app.config)

    if no_reload or os.environ.get("WERKZEUG_RUN_MAIN") == "true":  # not the reloader's parent
        from app.schedule import start_scheduler

        start_service(app)  # the serving process only, not the reloader's watcher
        start_scheduler(app)
    app.run(
        host=host or settings.host,
        port=port or settings.port,
        debug=not no_debug,
        use_reloader=not no_reload,
        threaded=threaded,
    )


GUNICORN_HELP = "Run the GlanceSync server application within Gunicorn."


@cli.command("gunicornserver", help=GUNICORN_HELP, short_help=GUNICORN_HELP)
@click.option("-H", "--host", help="IP address or hostname of the Glancesync server.")
@click.option("-p", "--port", type=int, help="Port in which the GlanceSync server is running")
@click.option(
    "-w",
    "--workers",
    type=int,
    help="Number of concurrent workers to be launched, usually 2*core numbers+1.",
)
@click.pass_obj
def gunicornserver(
    info: ScriptInfo, host: str | None, port: int | None, workers: int | None
) -> None:
    # Read the settings here, in the arbiter, so that a bad file stops before any fork;
    # the app itself (database pool, threads) is built only in the workers.
    settings = load_settings()
    from app.broker import check_routes
    from app.gunicorn import run_gunicorn
    from app.regions import Core
    from app.tasks import check_lease_timing

    check_lease_timing(flask_config())
    if settings.celery.broker_url:  # a misspelt route would send its region elsewhere
        check_routes(settings.celery.routes, Core())

    run_gunicorn(
        settings,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
    )


def flask_config() -> Config:
    """The Flask settings every worker will read (the defaults, then GLANCESYNCAPP_CONFIG),
    read once in the arbiter so that a bad value stops before any fork."""
    from app import DEFAULTS

    config = Config(os.getcwd(), DEFAULTS)
    path = flask_config_file(os.environ)
    if path:
        config.from_pyfile(path)
    return config


LISTEN_HELP = "Sync the regions when the master Glance announces a change."


@cli.command("listen", help=LISTEN_HELP, short_help=LISTEN_HELP)
@click.pass_obj
def listen(info: ScriptInfo) -> None:
    from app.broker import check_app_routes
    from app.listener import run_listener

    app = info.load_app()
    check_app_routes(app)
    run_listener(app)


WORKER_HELP = "Run a Celery worker: it syncs the tasks of its queues."


@cli.command("worker", help=WORKER_HELP, short_help=WORKER_HELP)
@click.option(
    "-Q",
    "--queues",
    default="",
    help="Comma-separated queues of [celery] ROUTES to serve (default: the default queue).",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    help="Syncs at the same time (default: SYNC_WORKERS, 4).",
)
@click.pass_obj
def worker(info: ScriptInfo, queues: str, concurrency: int) -> None:
    from app.broker import run_worker

    names = tuple(q.strip() for q in queues.split(",") if q.strip())
    run_worker(info.load_app(), names, concurrency)


TASKS_HELP = "Manage the stored sync tasks."


@cli.group("tasks", help=TASKS_HELP, short_help=TASKS_HELP)
def tasks_group() -> None:
    pass


PRUNE_HELP = "Delete the finished tasks (synced or failed) older than DAYS days."


@tasks_group.command("prune", help=PRUNE_HELP, short_help=PRUNE_HELP)
@click.option(
    "--older-than",
    "days",
    required=True,
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Age in days (of the task's last update) beyond which finished tasks go.",
)
@click.pass_obj
def prune(info: ScriptInfo, days: float) -> None:
    from app.tasks import prune_finished

    app = info.load_app()
    with app.app_context():
        count = prune_finished(days)
    click.echo(f"Deleted {count} finished task(s) older than {days:g} day(s)")


DB_HELP = "Perform database migrations"


def db_group(names: Iterable[str] | None = None) -> click.Group:
    """Flask-Migrate's ``db`` group restricted to ``names`` (all of them when None)."""
    commands = migrate_cli.db.commands
    chosen = commands if names is None else {name: commands[name] for name in names}
    return click.Group(
        "db",
        commands=dict(chosen),
        callback=migrate_cli.db.callback,
        params=migrate_cli.db.params,
        help=DB_HELP,
        short_help=DB_HELP,
        context_settings=CONTEXT,
    )


cli.add_command(db_group(OPERATIONAL_DB_COMMANDS))

SHELL_HELP = "Runs a Python shell inside Flask application context."
cli.add_command(
    click.Command(
        "shell",
        callback=shell_command.callback,
        params=shell_command.params,
        help=SHELL_HELP,
        short_help=SHELL_HELP,
        context_settings=CONTEXT,
    )
)


def main(argv: list[str] | None = None, prog_name: str = "glancesync-manage") -> int:
    """Entry point; the migrations are found inside the package whatever the working dir."""
    info = ScriptInfo(create_app=create_app, set_debug_flag=False)
    try:
        cli.main(args=argv, prog_name=prog_name, obj=info, standalone_mode=True)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
