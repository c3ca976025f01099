#!/usr/bin/env python3
"""Loopback stand-ins for the key-less providers, so editor tests never reach the internet.

Point the server at it with
  CONDUCTOR_PROVIDERS=wikipedia,hackernews
  CONDUCTOR_WIKIPEDIA_BASE_URL=http://127.0.0.1:PORT
  CONDUCTOR_HACKERNEWS_BASE_URL=http://127.0.0.1:PORT
It answers the Wikipedia Action API (/w/api.php?action=query&generator=search&gsrsearch=...
&prop=extracts|info...) and the Hacker News Algolia API (/api/v1/search?query=...). A query containing
the word "slow" (or a path starting with /slow/) is answered only after --slow seconds, for cancellation
tests.

Usage: loopback_providers.py [--port 0] [--port-file F] [--log F] [--slow 20]
Prints "listening on PORT" once ready. Stdlib only.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

# The answer to generator=search&prop=extracts|info (formatversion 2): pages in page id order, each with
# its search rank in "index" and its intro as plain text in "extract".
WIKI_PAGES = [
    {
        "pageid": 1,
        "ns": 0,
        "title": "Async/await",
        "index": 2,
        "extract": "a syntactic pattern for asynchronous functions",
        "touched": "2023-06-01T00:00:00Z",
        "fullurl": "https://en.wikipedia.org/wiki/Async/await",
    },
    {
        "pageid": 2,
        "ns": 0,
        "title": "Tokio (software)",
        "index": 1,
        "extract": "Tokio is an async runtime for the Rust programming language",
        "touched": "2024-01-01T00:00:00Z",
        "fullurl": "https://en.wikipedia.org/wiki/Tokio_(software)",
    },
]

HN_HITS = [
    {
        "objectID": "101",
        "title": "Tokio 1.0 released",
        "url": "https://tokio.rs/blog/2020-12-tokio-1-0",
        "author": "carllerche",
        "points": 420,
        "num_comments": 77,
        "created_at": "2020-12-23T00:00:00Z",
        "created_at_i": 1608681600,
        "story_text": None,
        "_tags": ["story", "author_carllerche", "story_101"],
    },
]


def make_handler(opts, log_lock):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet; requests go to --log
            pass

        def record(self, status, note=""):
            if not opts.log:
                return
            with log_lock, open(opts.log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"t": time.time(), "path": self.path, "status": status, "note": note}) + "\n")

        def send_json(self, status, body):
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.record(status)
            except (BrokenPipeError, ConnectionResetError):
                self.record(status, "client went away")

        def do_GET(self):
            url = urlparse(self.path)
            q = parse_qs(url.query)
            path = url.path
            query = " ".join(q.get("gsrsearch", []) + q.get("query", []))
            slow = path.startswith("/slow/") or "slow" in query.lower()
            if path.startswith("/slow/"):
                path = path[len("/slow"):]
            if slow:
                self.record(0, "slow request started")
                time.sleep(opts.slow)
            if path == "/healthz":
                return self.send_json(200, {"ok": True})
            if path.endswith("/w/api.php"):
                return self.send_json(
                    200,
                    {
                        "batchcomplete": True,
                        "continue": {"gsroffset": len(WIKI_PAGES), "continue": "gsroffset||"},
                        "query": {"pages": WIKI_PAGES},
                    },
                )
            if path.endswith("/api/v1/search") or path.endswith("/api/v1/search_by_date"):
                return self.send_json(
                    200,
                    {
                        "hits": HN_HITS,
                        "nbHits": len(HN_HITS),
                        "page": 0,
                        "nbPages": 1,
                        "hitsPerPage": 20,
                        "query": query,
                        "params": url.query,
                    },
                )
            return self.send_json(404, {"error": f"loopback: no route for {path}"})

        def do_HEAD(self):
            # Dead-link checks may HEAD the cited URLs; they are not routed here, but answer anyway.
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--slow", type=float, default=20.0)
    opts = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", opts.port), make_handler(opts, threading.Lock()))
    server.daemon_threads = True
    port = server.server_address[1]
    if opts.port_file:
        with open(opts.port_file + ".tmp", "w") as f:
            f.write(str(port))
        import os

        os.replace(opts.port_file + ".tmp", opts.port_file)
    print(f"listening on {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
