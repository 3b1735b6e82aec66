"""Serves the built dashboard (frontend/dist) with history-mode fallback, so deep links
such as /login or /channels/<id> load the app directly."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from litestar import Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File

DIST = Path(__file__).resolve().parents[2] / "frontend" / "dist"
_API_PREFIXES = ("api/", "health", "ready", "schema")


def frontend_router(dist: Path = DIST) -> Router:
    root = dist.resolve()

    @get("/", include_in_schema=False, sync_to_thread=False, opt={"static_site": True})
    def index() -> File:
        return serve("")

    @get("/{path:path}", include_in_schema=False, sync_to_thread=False, opt={"static_site": True})
    def page(path: FromPath[str]) -> File:
        return serve(path)

    def serve(path: str) -> File:
        relative = path.lstrip("/")
        if relative.startswith(_API_PREFIXES):
            raise NotFoundException(f"no route for /{relative}")
        candidate = (root / relative).resolve()
        if relative and candidate.is_file() and candidate.is_relative_to(root):
            # Hashed asset names change with content, so they may be cached for good.
            immutable = relative.startswith("assets/")
            return File(
                candidate,
                content_disposition_type="inline",
                media_type=mimetypes.guess_type(candidate.name)[0],
                headers={"Cache-Control": "public, max-age=31536000, immutable"}
                if immutable
                else {"Cache-Control": "no-cache"},
            )
        if "." in relative.rsplit("/", 1)[-1]:
            raise NotFoundException(f"/{relative} not found")
        return File(
            root / "index.html",
            content_disposition_type="inline",
            media_type="text/html",
            headers={"Cache-Control": "no-cache"},
        )

    return Router(path="/", route_handlers=[index, page])
