"""Errors as the API speaks them: JSON with a code, a message and the field at fault.

Every failure a client can cause comes back as::

    {"error": {"code": "validation", "message": "state: must be one of ...", "field": "state"}}

with the fitting HTTP status. Validation errors name the field (the path into the request
body or query) and say what would be accepted. Anything unexpected is logged with its
traceback on the server and answered with a plain 500 that gives nothing away.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ApiError", "ErrorBody", "ErrorResponse", "install"]

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    code: str
    """Stable, machine-readable: ``validation``, ``unauthorized``, ``forbidden``, ..."""
    message: str
    """For people: what is wrong and how to fix it."""
    field: str | None = None
    """The request field at fault, when one is."""


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """Raised by route code for any failure the client caused or should know about."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers


def _reply(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, field=field))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation",
    429: "too_many_requests",
}


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str | None:
    # ("body", "state") -> "state"; ("query", "since") -> "since"; ("body",) -> None. The
    # bodies are flat, so the last name is the field; a tagged union puts its tag in between
    # (("body", "available", "reason")), which the last name also skips.
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path") else []
    return parts[-1] if parts else None


def _describe(error: Mapping[str, Any]) -> tuple[str | None, str]:
    """The field at fault and a message for one pydantic error."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "json_invalid":
        return None, "the request body is not valid JSON"
    if kind.startswith("union_tag"):
        field = str(ctx.get("discriminator", "")).strip("'") or None
        if kind == "union_tag_not_found":
            return field, f"{field}: required"
        return field, f"{field}: must be one of {ctx.get('expected_tags')}, not {ctx.get('tag')!r}"
    field = _field_name(tuple(error.get("loc", ())))
    if kind == "missing":
        return field, f"{field or 'body'}: required"
    problem = str(error.get("msg", "invalid request")).removeprefix("Value error, ")
    return field, f"{field}: {problem}" if field else problem


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the JSON shape above."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _reply(exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        field, message = _describe(errors[0] if errors else {})
        more = len(errors) - 1
        if more > 0:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        return _reply(422, "validation", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else None
        return _reply(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("API %s %s failed", request.method, request.url.path, exc_info=exc)
        return _reply(500, "internal", "internal error: the server log has the details")
