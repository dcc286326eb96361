"""Fixtures for the data tests: a local HTTP server standing in for the dataset mirrors."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest


@pytest.fixture
def served_paths() -> list[str]:
    """The request paths the `server` fixture answered, in order."""
    return []


@pytest.fixture
def server(tmp_path, served_paths):
    """Serve tmp_path/www on 127.0.0.1 (a free port); yields the base URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            served_paths.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
