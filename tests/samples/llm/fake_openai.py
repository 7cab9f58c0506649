"""An OpenAI-compatible chat completions endpoint (stdlib only) that answers every request
with a canary and reports fixed token usage per model. Prints its port, then serves on
127.0.0.1 until stopped."""

import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (prompt tokens, completion tokens) per model: the tests know the totals from these
USAGE = {"m-small": (11, 7), "m-large": (100, 40)}
ANSWER = "CANARY-ANSWER the reply"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt, completion = USAGE.get(request["model"], (1, 1))
        reply = json.dumps({
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": request["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
