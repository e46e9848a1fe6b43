"""`deployer` and `python -m deployer`. `deployer --version` alone is answered here, and shell
completion of values by deployer.complete, before the command line (typer and every command's
options, ~0.1 s) is imported; everything else goes to deployer.cli."""

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from . import __version__

        print(f"deployer {__version__}")  # as cli.py's --version prints it
        raise SystemExit(0)
    from .complete import main as complete_main  # a Tab's values without the CLI, else the CLI

    complete_main()


if __name__ == "__main__":
    main()
