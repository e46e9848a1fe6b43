"""Commands beyond plan/apply/verify: each module holds one command group's logic and its typer entry."""
