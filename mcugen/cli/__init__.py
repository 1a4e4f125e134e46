"""The `mcugen` command line. Nothing outside this package imports click.

Each module registers its commands on the one group defined here."""
from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mcugen")
@click.option("--debug", is_flag=True, help="Show the stack trace of internal errors.")
def cli(debug: bool) -> None:
    """Compile ONNX MobileNets into int8 C99 for Arm Cortex-M, bit-exact with a NumPy simulator."""


from . import analysis, core, plan, qemu, quantized  # noqa: E402,F401  (registers the commands)


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USER_ERROR)
    except UserError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(EXIT_USER_ERROR)
    except Exception as exc:  # anything else is our bug: say so briefly
        if debug:
            raise
        click.secho(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the stack trace)",
                    fg="red", err=True)
        sys.exit(EXIT_INTERNAL_ERROR)
