"""`deployer` and `python -m deployer`. `deployer --version` alone is answered here, before the
command line (typer and every command's options, ~0.1 s) is imported; everything else goes to
deployer.cli."""

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from . import __version__

        print(f"deployer {__version__}")  # as cli.py's --version prints it
        raise SystemExit(0)
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
