"""The ``hana-voice`` command: serve, interpret, say, transcribe, models download, verify.

Settings and template errors end with exit status 2 and one line on stderr naming the
variable (or file and field), the problem and what is accepted; so does a results database
that cannot be opened or whose schema is newer than this release.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hana_voice import __version__
from hana_voice.errors import SettingsError, TemplateError

if TYPE_CHECKING:
    from hana_voice.settings import Settings

#: Modules that register subcommands through ``add_parser(subparsers)``.
SUBCOMMAND_MODULES = (
    "hana_voice.cli.interpret",
    "hana_voice.cli.engines",
    "hana_voice.models.download",
    "hana_voice.verification.verify",
)


def _serve(args: argparse.Namespace) -> int:
    from hana_voice.logs import configure_logging
    from hana_voice.server import run
    from hana_voice.settings import Settings

    settings = Settings.from_env()
    overrides = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    settings = settings.with_overrides(**overrides)
    configure_logging(settings.log_level)
    if not _results_database_ready(settings):
        return 2
    run(settings)
    return 0


def _results_database_ready(settings: Settings) -> bool:
    """Open the results database once before serving: migrations run here (under an
    advisory lock on PostgreSQL), and a schema newer than this release, an unreachable
    server or an unwritable DATA_DIR stop start-up with one line."""
    from hana_voice.errors import StoreError
    from hana_voice.results.backend import open_backend

    try:
        open_backend(settings).close()
    except StoreError as exc:
        print(f"hana-voice: results database: {exc}", file=sys.stderr)
        return False
    return True


def _check_config(args: argparse.Namespace) -> int:
    from hana_voice.app import create_app
    from hana_voice.settings import Settings

    create_app(Settings.from_env())
    print("configuration ok")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hana-voice", description=__doc__)
    parser.add_argument("--version", action="version", version=f"hana-voice {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service (Hypercorn, trio worker)")
    serve.add_argument("--host", help="listen address (default: HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (default: PORT or 8000)")
    serve.set_defaults(func=_serve)
    check = sub.add_parser("check-config", help="validate settings and questionnaires, then exit")
    check.set_defaults(func=_check_config)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if exc.name != name:
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        code = func(args)
    except (SettingsError, TemplateError) as exc:
        print(f"hana-voice: configuration error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
