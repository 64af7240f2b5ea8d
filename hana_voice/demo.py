"""GET /demo: a browser page for trying a questionnaire (microphone in, audio out).

The page (``hana_voice/static/demo.html`` with its script and style sheet) is plain HTML and
JavaScript with no build step and nothing fetched from elsewhere, so it works on a machine with
no internet. It talks to the browser JSON protocol of the same server (docs/protocol.md,
docs/demo.md).

The files are read once, when the app is created: they are small, and serving them from memory
keeps blocking file I/O out of the request path.
"""

from __future__ import annotations

from pathlib import Path

from quart import Response
from quart_trio import QuartTrio

from hana_voice.http_routes import error_response
from hana_voice.services import Services

STATIC_DIR = Path(__file__).parent / "static"

#: The files the page is made of, by the name they are served under, with their media types.
ASSETS: dict[str, str] = {
    "demo.html": "text/html; charset=utf-8",
    "demo.js": "text/javascript; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
}

#: The page only talks to its own origin (its WebSocket included: CSP 'self' covers ws: and
#: wss: on the same host) and plays audio it generated itself.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; media-src 'self' blob:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "microphone=(self)",
    # A token may sit in the page's query string (?token=): never cache the page.
    "Cache-Control": "no-store",
}


def load_assets(directory: Path = STATIC_DIR) -> dict[str, bytes]:
    """The page's files, read once; a missing file fails app creation, not the first visit."""
    return {name: (directory / name).read_bytes() for name in ASSETS}


def install(app: QuartTrio, services: Services) -> None:
    assets = load_assets()

    def serve(name: str) -> Response:
        response = Response(assets[name], mimetype=ASSETS[name])
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/demo")
    async def demo_page() -> Response:
        return serve("demo.html")

    @app.get("/demo/<name>")
    async def demo_asset(name: str) -> Response:
        if name not in ASSETS or name == "demo.html":
            return error_response(404, "not_found", "no such demo file")
        return serve(name)
