"""The web feed: static files (HTML, CSS, JavaScript modules) shipped inside the package and served at `/`.

No build step and no CDN: the files under `static/` are what the browser runs, so the page works offline
and installs with pip (hatchling puts every file under `src/activity_feed` into the wheel).
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS_PATH", "install_web", "static_files"]

ASSETS_PATH = "/ui"
# The page is small and changes with the package version; revalidating it on every load keeps a browser
# from running an old page against a new API after an upgrade.
_NO_CACHE = {"Cache-Control": "no-cache"}


def static_files() -> Traversable:
    """The folder of the page's files, found through importlib.resources so it works from a wheel too."""
    return files(__package__).joinpath("static")


def _index_html() -> str:
    return static_files().joinpath("index.html").read_text(encoding="utf-8")


async def _index(request: Request) -> Response:
    return HTMLResponse(_index_html(), headers=_NO_CACHE)


def install_web(app: Starlette, *, path: str = "/") -> None:
    """Serve the web feed's page at `path` and its files under `/ui/`.

    `create_app` calls this; an app that embeds the feed with `ActivityFeed.install` may call it too
    (the page then takes `path` in that app, `/` unless told otherwise)."""
    # StaticFiles(packages=...) resolves the folder through the package's import spec, so an installed
    # wheel and an editable checkout behave alike.
    assets = StaticFiles(packages=[(__package__ or "activity_feed.web", "static")])
    app.router.routes.append(Route(path, _index, methods=["GET", "HEAD"], name="activity_feed_page"))
    app.router.routes.append(Mount(ASSETS_PATH, app=assets, name="activity_feed_assets"))
