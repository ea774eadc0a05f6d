"""HTTP entry points: verify and validate, call one service, respond."""

import hmac
import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api_gateway.auth import ApiKeyAuthentication, HasApiKey
from api_gateway.serializers import ErrorSerializer, MessageRequestSerializer, MessageResponseSerializer
from api_gateway.services.inbound import message_handle_api, webhook_ingest
from api_gateway.whatsapp import PayloadError, signature_is_valid, webhook_parse
from core.exceptions import ApplicationError, ValidationFailed

logger = logging.getLogger(__name__)

API_MAX_BODY_BYTES = 64 * 1024
IDEMPOTENCY_KEY_MAX = 255


class PayloadTooLarge(ApplicationError):
    http_status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "too_large"


def _error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status_code)


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@method_decorator(csrf_exempt, name="dispatch")
class WhatsAppWebhookView(View):
    http_method_names = ["get", "post"]

    def get(self, request: HttpRequest) -> HttpResponse:
        """Meta's verification handshake: echo hub.challenge when the verify token matches."""
        token = request.GET.get("hub.verify_token", "")
        expected = settings.WHATSAPP_VERIFY_TOKEN
        # Compared as bytes: compare_digest refuses non-ASCII str (an accented token was a 500).
        if (
            request.GET.get("hub.mode") == "subscribe"
            and expected
            and hmac.compare_digest(token.encode(), expected.encode())
        ):
            challenge = request.GET.get("hub.challenge")
            if not challenge:
                return HttpResponse("Missing hub.challenge.", status=400, content_type="text/plain")
            return HttpResponse(challenge, content_type="text/plain")
        logger.warning("webhook verification refused (mode=%s)", request.GET.get("hub.mode"))
        return HttpResponse("Forbidden", status=403, content_type="text/plain")

    def post(self, request: HttpRequest) -> HttpResponse:
        if _content_length(request) > settings.WHATSAPP_MAX_BODY_BYTES:
            return _error(413, "too_large", "Payload too large.")
        try:
            body = request.body
        except RequestDataTooBig:
            return _error(413, "too_large", "Payload too large.")
        if len(body) > settings.WHATSAPP_MAX_BODY_BYTES:
            return _error(413, "too_large", "Payload too large.")
        # The signature is checked on the raw bytes before anything is parsed or stored.
        secret = settings.WHATSAPP_APP_SECRET
        header = request.headers.get("X-Hub-Signature-256", "")
        if secret or not settings.DEBUG:
            if not header:
                logger.warning("webhook POST without X-Hub-Signature-256 refused")
                return _error(401, "signature_missing", "Missing X-Hub-Signature-256.")
            if not signature_is_valid(body=body, header=header, secret=secret):
                logger.warning("webhook POST with a wrong signature refused")
                return _error(403, "signature_invalid", "Invalid X-Hub-Signature-256.")
        else:
            logger.warning("DEBUG without WHATSAPP_APP_SECRET: accepting an unsigned webhook POST")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
            return _error(400, "malformed_json", "Malformed JSON.")
        try:
            parsed = webhook_parse(payload, own_number_id=settings.WHATSAPP_PHONE_NUMBER_ID)
        except PayloadError as exc:
            # Valid JSON we do not handle: a non-200 would only make Meta retry it for days.
            logger.info("webhook POST ignored: %s", exc)
            return JsonResponse({"status": "ignored"})
        try:
            summary = webhook_ingest(parsed=parsed)
        except DatabaseError:
            logger.exception("webhook batch not stored; Meta will retry")
            return _error(503, "unavailable", "Temporarily unavailable.")
        return JsonResponse(
            {
                "status": "ok",
                "accepted": summary.accepted,
                "duplicates": summary.duplicates,
                "ignored": summary.ignored,
                "statuses": summary.statuses_applied,
                "errors": len(parsed.problems),  # items that could not be read (logged with where they were)
            }
        )


_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Malformed JSON or invalid fields (see error.fields)."),
    401: OpenApiResponse(ErrorSerializer, description="No or wrong API key (Authorization: Bearer <key>)."),
    403: OpenApiResponse(ErrorSerializer, description="The REST API is disabled (no API_KEYS configured)."),
    405: OpenApiResponse(ErrorSerializer, description="Method not allowed."),
    409: OpenApiResponse(ErrorSerializer, description="The same Idempotency-Key is still being processed."),
    413: OpenApiResponse(ErrorSerializer, description="Body larger than 64 KiB."),
    415: OpenApiResponse(ErrorSerializer, description="Content-Type is not application/json."),
    422: OpenApiResponse(ErrorSerializer, description="The Idempotency-Key was used with a different payload."),
    429: OpenApiResponse(ErrorSerializer, description="Over PATIENT_MAX_MESSAGES_PER_MINUTE for this phone."),
    503: OpenApiResponse(ErrorSerializer, description="Another message of this patient is still being processed."),
}


class _JSONParser(JSONParser):
    """DRF's parser, with one readable message for every body that is not JSON (absurdly deep nesting raised a
    RecursionError, a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except (ParseError, RecursionError) as exc:
            raise ParseError("O corpo da requisição não é um JSON válido.") from exc


class MessageCreateApi(APIView):
    parser_classes = [_JSONParser]
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]

    @extend_schema(
        operation_id="messages_create",
        summary="Run one conversation turn synchronously",
        request=MessageRequestSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Optional. Without it the key is the sha256 of [message_id, phone, timestamp] as JSON.",
            )
        ],
        responses={
            200: OpenApiResponse(
                MessageResponseSerializer,
                description="The turn's result. A replay carries the header Idempotent-Replayed: true.",
            ),
            **_ERRORS,
        },
        examples=[
            OpenApiExample(
                "Marcar consulta",
                value={"phone": "5511999990001", "text": "Quero marcar uma consulta", "message_id": "abc-1"},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        if _content_length(request) > API_MAX_BODY_BYTES:
            raise PayloadTooLarge("A requisição é grande demais.")
        header_key = request.headers.get("Idempotency-Key", "").strip()
        if len(header_key) > IDEMPOTENCY_KEY_MAX:
            raise ValidationFailed(f"O cabeçalho Idempotency-Key pode ter no máximo {IDEMPOTENCY_KEY_MAX} caracteres.")
        serializer = MessageRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key, result = message_handle_api(
            phone=data["phone"],
            text=data["text"],
            message_id=data["message_id"],
            timestamp=data["timestamp"],
            idempotency_key=header_key,
        )
        response = Response(result.body)
        response["Idempotency-Key"] = key
        if result.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


@extend_schema(exclude=True)
class MessageCreateApiNoSlash(MessageCreateApi):
    """The same endpoint without the trailing slash, kept out of the schema (one operation, one path)."""
