"""A PDF rendered from what a resident typed never makes the server fetch anything."""
from __future__ import annotations

import http.server
import threading

from platforma.web.pdf import html_to_pdf


def test_a_pdf_fetches_no_image_stylesheet_or_file(tmp_path):
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"body { color: red }")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = tmp_path / "secret.css"
    secret.write_text("body { color: blue }")
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        pdf = html_to_pdf(f"""<html lang="pl"><head><title>Pismo</title>
            <link rel="stylesheet" href="{base}/style.css"><link rel="stylesheet" href="file://{secret}">
            </head><body><p>Treść</p><img src="{base}/image.png" alt="x">
            <div style="background: url('{base}/background.png')">tło</div></body></html>""")
    finally:
        server.shutdown()
        server.server_close()
    assert pdf.startswith(b"%PDF-")
    assert hits == []
