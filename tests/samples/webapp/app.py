"""Decorators that register the function at definition time: Flask routes, click commands."""

import logging
import sys

import click
from flask import Flask, jsonify
from flask.logging import default_handler

app = Flask(__name__)
default_handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))  # no timestamps


# AI-generated: Copilot, 2025-05-05, prompt: "price endpoint"
@app.route("/price/<int:qty>")
def price(qty):
    """Price for a quantity."""
    if qty > 100:
        raise ValueError("too many")
    return jsonify(total=qty * 3)


# AI-generated: Claude
@click.command()
@click.option("--count", default=2, type=int)
def greet(count):
    """Say hello COUNT times."""
    for _ in range(count):
        click.echo("hello")


if __name__ == "__main__":
    print("registered", app.view_functions["price"] is price, price.__doc__, price.__name__)
    client = app.test_client()
    response = client.get("/price/4")
    print(response.status_code, response.get_json())
    app.testing = False
    print(client.get("/price/500").status_code)
    print("command", greet.name, greet.callback.__name__, greet.help)
    greet.main(["--count", "3"], standalone_mode=False)
    sys.exit(0)
