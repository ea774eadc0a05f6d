"""Voice notes heard as text: the patient's audio becomes the words of an ordinary turn.

WhatsApp delivers a media id, not the audio. Before the turn, `voice_note_text` fetches it from the Graph API (the
id gives a short-lived URL, downloaded with the same token) and has Gemini transcribe it (audio in, JSON out, one
attempt): in its task before the patient's lock is taken, or under the lock for an earlier note whose own task
has not run yet. The transcript is stored on the inbound row (`content`) with the outcome
(`entities["inbound"]["voice"]`) and the tokens it cost, so a retried turn never pays for it twice and the staff
read in the admin what was heard. When it cannot be heard (no key, switched off, over the daily budget, too long,
a format Gemini does not take, Graph or Gemini failing, no speech) the turn asks the patient to write, with the
emergency number: an unheard voice note may be an emergency. The audio itself is never stored or logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.db.models import F

from api_gateway.clients import graph
from api_gateway.clients.gemini import GeminiUnavailable, gemini_generate
from api_gateway.models import ConversationMessage
from api_gateway.services.nlu.gemini import tokens_spent
from api_gateway.services.token_monitor import token_monitor
from core import metrics

logger = logging.getLogger(__name__)

TRANSCRIBED = "transcribed"
MAX_TRANSCRIPT_CHARS = 4000
MAX_OUTPUT_TOKENS = 2048  # ~1500 words: more than the longest voice note VOICE_NOTE_MAX_BYTES lets through
# Gemini bills 32 tokens per second of audio; a WhatsApp voice note (Opus) runs at ~16 kbit/s, ~2 kB a second.
# Used only when a response carries no usage_metadata.
AUDIO_BYTES_PER_TOKEN = 62
# The audio formats Gemini takes, among those WhatsApp delivers (AMR and MP4 it does not take).
GEMINI_AUDIO_TYPES = {
    "audio/ogg": "audio/ogg",
    "audio/opus": "audio/ogg",
    "audio/mpeg": "audio/mp3",
    "audio/mp3": "audio/mp3",
    "audio/aac": "audio/aac",
    "audio/wav": "audio/wav",
    "audio/x-wav": "audio/wav",
    "audio/flac": "audio/flac",
    "audio/aiff": "audio/aiff",
}
SYSTEM_INSTRUCTION = (
    "Você transcreve mensagens de voz que pacientes mandam pelo WhatsApp para uma clínica médica no Brasil. "
    "Escreva exatamente o que a pessoa disse, em português, como ela disse: não responda, não resuma, não corrija "
    "e não acrescente nada. Escreva datas, horários, nomes e números como foram falados. Se não houver fala "
    "compreensível, devolva a transcrição vazia."
)
PROMPT = "Transcreva este áudio."
RESPONSE_SCHEMA = {
    "type": "object",
    "properties": {"transcript": {"type": "string"}},
    "required": ["transcript"],
}


@dataclass(frozen=True)
class VoiceNote:
    text: str
    outcome: str  # "transcribed", or why not: disabled | no_key | no_media | budget_exhausted | unsupported_format
    #               | too_long | media_unavailable | gemini_unavailable | blocked | truncated | malformed | no_speech
    input_tokens: int = 0
    output_tokens: int = 0


def voice_outcome(message: ConversationMessage) -> str:
    """What became of a voice note ("" for other messages, or one not yet tried): under the webhook's extras
    before its turn, among the turn's entities after it."""
    entities = message.entities or {}
    return entities.get("voice") or (entities.get("inbound") or {}).get("voice") or ""


def voice_note_text(inbound: ConversationMessage) -> str | None:
    """The words of this voice note, transcribed once (a retried turn reads the stored transcript); None when it
    could not be heard."""
    if outcome := voice_outcome(inbound):
        return inbound.content if outcome == TRANSCRIBED else None
    extras = (inbound.entities or {}).get("inbound") or {}
    note = voice_transcribe(media_id=inbound.media_id)
    metrics.VOICE_NOTES.labels(note.outcome).inc()
    entities = {**(inbound.entities or {}), "inbound": {**extras, "voice": note.outcome}}
    ConversationMessage.objects.filter(pk=inbound.pk).update(
        content=note.text,
        entities=entities,
        input_tokens=F("input_tokens") + note.input_tokens,
        output_tokens=F("output_tokens") + note.output_tokens,
    )
    inbound.content, inbound.entities = note.text, entities
    if note.outcome != TRANSCRIBED:
        logger.info("voice note %s not heard: %s", inbound.pk, note.outcome)
        return None
    return note.text


def voice_transcribe(*, media_id: str) -> VoiceNote:
    if not settings.VOICE_TRANSCRIPTION:
        return VoiceNote("", "disabled")
    if not settings.GEMINI_API_KEY:
        return VoiceNote("", "no_key")
    if not media_id or not settings.WHATSAPP_ACCESS_TOKEN:
        return VoiceNote("", "no_media")
    status = token_monitor.status()
    if status.exhausted:
        return VoiceNote("", "budget_exhausted")
    try:
        audio, mime_type = _audio_fetch(media_id)
    except _NotHeard as exc:
        return VoiceNote("", exc.outcome)
    return _transcribe(audio, mime_type, economy=status.economy)


class _NotHeard(Exception):
    def __init__(self, outcome: str):
        super().__init__(outcome)
        self.outcome = outcome


def _audio_fetch(media_id: str) -> tuple[bytes, str]:
    limit = settings.VOICE_NOTE_MAX_BYTES
    try:
        info = graph.graph_media_info(media_id=media_id)
        mime_type = GEMINI_AUDIO_TYPES.get(str(info.get("mime_type") or "").split(";")[0].strip().lower())
        if mime_type is None:
            raise _NotHeard("unsupported_format")
        if _int(info.get("file_size")) > limit:
            raise _NotHeard("too_long")
        return graph.graph_media_download(url=info["url"], max_bytes=limit), mime_type
    except graph.MediaTooLarge as exc:
        raise _NotHeard("too_long") from exc
    except (graph.GraphError, httpx.HTTPError, httpx.InvalidURL) as exc:
        logger.warning("voice note media %s could not be fetched: %s", media_id[-6:], exc)
        raise _NotHeard("media_unavailable") from exc


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _transcribe(audio: bytes, mime_type: str, *, economy: bool) -> VoiceNote:
    model = settings.GEMINI_ECONOMY_MODEL if economy else settings.GEMINI_MODEL
    try:
        result = gemini_generate(
            model=model,
            system_instruction=SYSTEM_INSTRUCTION,
            contents=[
                {"role": "user", "parts": [{"inline_data": {"mime_type": mime_type, "data": audio}}, {"text": PROMPT}]}
            ],
            response_schema=RESPONSE_SCHEMA,
            max_output_tokens=MAX_OUTPUT_TOKENS,
            timeout_seconds=settings.VOICE_TRANSCRIPTION_TIMEOUT_SECONDS,
            attempts=1,
        )
    except GeminiUnavailable as exc:
        logger.warning("voice note not transcribed: Gemini unavailable (%s)", exc.reason)
        return VoiceNote("", "gemini_unavailable")
    input_tokens, output_tokens = tokens_spent(result, len(audio) // AUDIO_BYTES_PER_TOKEN)
    token_monitor.record_usage(input_tokens=input_tokens, output_tokens=output_tokens)
    if result.outcome != "ok":
        return VoiceNote("", result.outcome, input_tokens, output_tokens)
    text = " ".join(str(result.parsed.get("transcript") or "").replace("\x00", "").split())[:MAX_TRANSCRIPT_CHARS]
    return VoiceNote(text, TRANSCRIBED if text else "no_speech", input_tokens, output_tokens)
