"""REST input and output shapes (also what the OpenAPI schema publishes)."""

import re

from django.conf import settings
from rest_framework import serializers

# E.164 without the "+": country code first digit 1-9, 8 to 15 digits in all.
PHONE_RE = re.compile(r"^[1-9]\d{7,14}$")
ERROR_PHONE = "Informe o telefone no formato E.164, só com dígitos (ex.: 5511999990001)."
ERROR_TEXT_BLANK = "A mensagem não pode ficar em branco."


class MessageRequestSerializer(serializers.Serializer):
    phone = serializers.CharField(
        max_length=20, help_text="E.164 digits, e.g. 5511999990001 (a leading + is accepted)."
    )
    text = serializers.CharField(trim_whitespace=True, allow_blank=False, error_messages={"blank": ERROR_TEXT_BLANK})
    message_id = serializers.CharField(
        max_length=128, required=False, allow_blank=True, default="",
        help_text="The client's id for this message; with phone (and timestamp) it derives the idempotency key "
        "when no Idempotency-Key header is sent.",
    )  # fmt: skip
    timestamp = serializers.CharField(
        max_length=40, required=False, allow_blank=True, default="",
        help_text="Optional client timestamp, part of the derived idempotency key.",
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Built per instance so the limit follows settings (API_MAX_TEXT_LENGTH) at request time.
        limit = settings.API_MAX_TEXT_LENGTH
        self.fields["text"] = serializers.CharField(
            max_length=limit,
            error_messages={
                "blank": ERROR_TEXT_BLANK,
                "max_length": f"A mensagem pode ter no máximo {limit} caracteres.",
            },
        )

    def validate_phone(self, value: str) -> str:
        digits = value.strip().removeprefix("+")
        if not PHONE_RE.match(digits):
            raise serializers.ValidationError(ERROR_PHONE)
        return digits


class OptionSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)


class MessageResponseSerializer(serializers.Serializer):
    reply = serializers.CharField(help_text="The bot's answer as text (options numbered).")
    state = serializers.CharField(help_text="The conversation state after the turn.")
    idempotency_key = serializers.CharField()
    options = OptionSerializer(many=True)
    nlu_source = serializers.CharField(help_text="offline or gemini")


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per-field messages, on validation errors only.",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
