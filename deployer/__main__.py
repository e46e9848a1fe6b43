"""`deployer` and `python -m deployer`. `deployer --version` alone is answered here, and shell
completion of values by deployer.complete, before the command line (typer and every command's
options, ~0.1 s) is imported; everything else goes to deployer.cli."""

import os
import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from . import __version__

        print(f"deployer {__version__}")  # as cli.py's --version prints it
        raise SystemExit(0)
    # pydantic looks for plugins in every installed distribution's entry points when deployer's
    # first model is built (~40 ms of a one-site plan's start-up, more in a large environment), and
    # a plugin would see every value validated, passwords included: deployer loads none, unless
    # the operator's environment names some
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from .complete import main as complete_main  # a Tab's values without the CLI, else the CLI

    complete_main()


if __name__ == "__main__":
    main()
