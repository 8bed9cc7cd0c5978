"""The baseline for the start-up budget: a bare Typer app with one command printing JSON."""

import json

import typer

app = typer.Typer()


@app.command()
def main(weight: str = "80kg") -> None:
    """Print one JSON line."""
    print(json.dumps({"weight": weight}))


if __name__ == "__main__":
    app()
