"""The dashboard: a page at `/` and its files under `/static/`, served from the package (no build step, no
CDN). It is plain HTML, CSS and JavaScript modules (leveret/http/static/) that call the same `/api`
endpoints as any tool, sending the credentials its login form took in an Authorization header, as
RabbitMQ's management UI does; so these files need no login themselves (the auth middleware exempts
`PUBLIC_PATHS` and `PUBLIC_PREFIX`), and what they show is what the logged-in user's tags allow.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).with_name("static")
PUBLIC_PATHS = frozenset({"/"})
PUBLIC_PREFIX = "/static/"
# Scripts, styles and requests only from this origin: the pages never run inline or foreign code.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def index(request: web.Request) -> web.FileResponse:
    """GET /: the dashboard's one page (it routes by the URL's fragment)."""
    return web.FileResponse(STATIC / "index.html", headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


async def static_file(request: web.Request) -> web.StreamResponse:
    """GET /static/{name}: one of the dashboard's files (no subdirectories, so no path escapes STATIC)."""
    name = request.match_info["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


def add_routes(app: web.Application) -> None:
    """The dashboard's routes on the management app."""
    app.router.add_get("/", index)
    app.router.add_get(PUBLIC_PREFIX + "{name}", static_file)
