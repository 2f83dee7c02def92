"""The HTTP side of the embedded (``local``) media store: its upload endpoint, which takes
the multipart form an S3 presigned POST takes, and the folder of checked images it serves.

``POST /media/upload/{mediaId}``: the fields of ``MediaUpload.uploadFields``, then ``file``.
Answers 204 like S3; 403 for a form it did not sign (or expired, or altered), 409 when the
form was used already or its item was finalized, 413 past ``MEDIA_MAX_BYTES`` (the request
body is bounded as it is read: ``http_body.BodyLimit``), 400 for a form without a file.
``GET /media/i/...``: the images and thumbnails ``finalizeMedia`` wrote; uploads themselves
are never served.
"""

from __future__ import annotations

from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from starling.http_body import error_response
from starling.store.media import ObjectTooLarge
from starling.store.media.local import (
    SERVED_PREFIX,
    SERVED_ROUTE,
    UPLOAD_ROUTE,
    InvalidUpload,
    LocalMediaStore,
)

# The form's text fields: a presigned POST has a handful; the rest of a body is the file.
FORM_MAX_FIELDS = 20
FORM_OVERHEAD_BYTES = 64 * 1024
UPLOAD_FILE_FIELD = "file"


def upload_body_limit(max_bytes: int) -> dict[str, int]:
    """The request body limit of the upload endpoint: the largest file and its form."""
    return {UPLOAD_ROUTE + "/": max_bytes + FORM_OVERHEAD_BYTES}


async def upload(request: Request) -> Response:
    store = request.app.state.services.media
    if not isinstance(store, LocalMediaStore):
        return error_response("This server takes no uploads (MEDIA_STORE=s3).", 404, "NOT_FOUND")
    try:
        form = await request.form(max_files=1, max_fields=FORM_MAX_FIELDS)
    except Exception:  # python-multipart's and Starlette's refusals of a malformed form
        return error_response("The body is not a multipart form.")
    try:
        fields = {name: value for name, value in form.multi_items() if isinstance(value, str)}
        file = form.get(UPLOAD_FILE_FIELD)
        if not isinstance(file, UploadFile):
            return error_response(f"The form has no `{UPLOAD_FILE_FIELD}` field.")
        try:
            grant = store.verify(fields)
        except InvalidUpload as exc:
            return error_response(str(exc), 403, "FORBIDDEN")
        media_id = request.path_params["media_id"]
        if grant.key != f"u/{media_id}":
            return error_response("The upload form is for another media item.", 403, "FORBIDDEN")
        # Finalized already: its upload was consumed (and deleted), so it is not taken again.
        pending = await request.app.state.services.db.media.find_one({"_id": media_id, "status": "pending"})
        if pending is None:
            return error_response("This media item takes no more uploads.", 409, "CONFLICT")
        try:
            await store.accept(grant, file.file)
        except FileExistsError:
            return error_response("This upload form was used already.", 409, "CONFLICT")
        except ObjectTooLarge:
            return error_response(f"The file is over {grant.max_bytes:,} bytes.", 413)
    finally:
        await form.close()
    return Response(status_code=204)


def media_routes(root: Path) -> list[BaseRoute]:
    """The routes of the local store whose folder is ``root`` (it makes the folder on start)."""
    return [
        Route(UPLOAD_ROUTE + "/{media_id:int}", upload, methods=["POST"]),
        Mount(
            f"{SERVED_ROUTE}/{SERVED_PREFIX.rstrip('/')}",
            StaticFiles(directory=root / SERVED_PREFIX, check_dir=False),
        ),
    ]
