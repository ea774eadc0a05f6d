"""Who may call the REST API: a client holding one of API_KEYS, sent as `Authorization: Bearer <key>`.

A REST turn acts as the patient whose phone it names (it can list, move and cancel their appointments), so the
endpoint is never open in production: without API_KEYS it refuses every call, unless DEBUG is on (local use).
"""

import hmac

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated, PermissionDenied
from rest_framework.permissions import BasePermission

MISSING_KEY = "Envie a chave de API no cabeçalho Authorization: Bearer <chave>."
WRONG_KEY = "Chave de API inválida."
API_DISABLED = "A API REST está desativada neste servidor: defina API_KEYS para usá-la."


class ApiClient:
    """The caller authenticated by an API key (not a Django user)."""

    is_authenticated = True


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip() or not settings.API_KEYS:
            return None  # no keys configured: HasApiKey decides (open under DEBUG, off otherwise)
        given = key.strip().encode()
        if not any(hmac.compare_digest(given, known.encode()) for known in settings.API_KEYS):
            raise AuthenticationFailed(WRONG_KEY)
        return ApiClient(), None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'  # makes DRF answer 401 (not 403) without credentials


class HasApiKey(BasePermission):
    def has_permission(self, request, view) -> bool:
        if not settings.API_KEYS:
            if settings.DEBUG:
                return True  # local development on the embedded default
            raise PermissionDenied(API_DISABLED)
        if not isinstance(request.user, ApiClient):
            raise NotAuthenticated(MISSING_KEY)
        return True


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """The scheme in the OpenAPI document (and Swagger UI's "Authorize" button)."""

    target_class = "api_gateway.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
