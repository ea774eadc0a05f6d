"""The project's error hierarchy, turned into HTTP responses in one place (api_exception_handler)."""

import logging

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A domain error with a message a person can act on."""

    http_status = status.HTTP_400_BAD_REQUEST
    code = "application_error"

    def __init__(self, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class ValidationFailed(ApplicationError):
    code = "invalid"


class ConflictError(ApplicationError):
    http_status = status.HTTP_409_CONFLICT
    code = "conflict"


class UnprocessableError(ApplicationError):
    http_status = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "unprocessable"


class RateLimited(ApplicationError):
    http_status = status.HTTP_429_TOO_MANY_REQUESTS
    code = "rate_limited"


class ServiceUnavailable(ApplicationError):
    http_status = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "unavailable"


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        body = {"error": {"code": exc.code, "message": exc.message, **exc.extra}}
        return Response(body, status=exc.http_status)
    response = exception_handler(exc, context)
    if response is not None:
        detail = response.data
        message = detail.get("detail") if isinstance(detail, dict) and "detail" in detail else "Requisição inválida."
        fields = None if isinstance(detail, dict) and "detail" in detail else detail
        response.data = {"error": {"code": getattr(exc, "default_code", "error"), "message": str(message)}}
        if fields:
            response.data["error"]["fields"] = fields
    return response
