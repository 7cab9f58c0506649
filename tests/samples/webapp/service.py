"""A request-handling service: a Flask route calls an AI-written function that calls
another HTTP service (a stdlib http.server in a thread, standing in for a price API)."""

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from flask import Flask, jsonify


class PriceAPI(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = json.dumps({"unit": 2.5}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


price_api = ThreadingHTTPServer(("127.0.0.1", 0), PriceAPI)
threading.Thread(target=price_api.serve_forever, daemon=True).start()
app = Flask(__name__)


# AI-generated: GPT-4o, 2025-06-01, prompt: "quote a quantity using the price API"
def fetch_quote(qty):
    with urllib.request.urlopen(f"http://127.0.0.1:{price_api.server_address[1]}/unit") as response:
        unit = json.load(response)["unit"]
    return round(unit * qty, 2)


@app.route("/quote/<int:qty>")
def quote(qty):
    return jsonify(qty=qty, total=fetch_quote(qty))


if __name__ == "__main__":
    client = app.test_client()
    print(client.get("/quote/3").get_json())
    price_api.shutdown()
