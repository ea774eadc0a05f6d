"""Voice notes, end to end: the real webhook, the real httpx Graph client against the fake Graph server (media info
and download), the real google-genai SDK against the fake Gemini server (audio in, transcript out).

A voice note heard is a turn like a typed message; one that cannot be heard asks the patient to write, and the
audio is fetched and paid for once.
"""

import time

import pytest

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services import texts as T
from api_gateway.services.inbound import inbound_process
from api_gateway.services.token_monitor import token_monitor
from api_gateway.services.voice import voice_note_text
from tests.fakes import graph_server
from tests.fakes.gemini_server import FakeAnswer, answer_error, answer_json, answer_slow
from tests.fakes.graph_server import graph_error, load_payload, post_webhook

celery_inline = graph_server.celery_inline
fake_graph = graph_server.fake_graph

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_inline")]

MEDIA_ID = "2234567890123456"  # the id in tests/fixtures/whatsapp/audio.json
AUDIO = b"OggS\x00\x02" + bytes(range(256)) * 40  # ~10 kB: five seconds of a voice note
UNDERSTOOD = {"intent": "desconhecido", "confidence": 0.0, "entities": {}}


def _transcripts(*texts: str):
    """A Gemini that transcribes audio requests with `texts` in turn and reads any other request as unknown."""
    queue = list(texts)

    def respond(request) -> FakeAnswer:
        if request.inline_data():
            return answer_json({"transcript": queue.pop(0)})
        return answer_json(UNDERSTOOD)

    return respond


def _audio_requests(fake_gemini):
    return [r for r in fake_gemini.generate_requests if r.inline_data()]


def _voice_note(client):
    post_webhook(client, load_payload("audio", now=time.time()))
    return ConversationMessage.objects.get(whatsapp_message_id="wamid.AUD0001")


def _stored_voice_note(wamid: str) -> ConversationMessage:
    """A voice note the webhook accepted and no task has processed yet."""
    session = ConversationSession.objects.create(phone_number="5511999990001")
    return ConversationMessage.objects.create(
        session=session,
        message_type="user",
        channel_type="audio",
        media_id=MEDIA_ID,
        whatsapp_message_id=wamid,
        processing_status="received",
        entities={"inbound": {"option_id": None, "profile_name": ""}},
    )


def _reply_text(fake_graph) -> str:
    body = fake_graph.sends[-1].body
    return body["text"]["body"] if body["type"] == "text" else body["interactive"]["body"]["text"]


def test_a_voice_note_is_transcribed_and_answered_like_the_words_typed(client, clinic, fake_graph, fake_gemini):
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg; codecs=opus")
    fake_gemini.responder = _transcripts("Oi, quero marcar uma consulta com cardiologista")

    inbound = _voice_note(client)

    [request] = _audio_requests(fake_gemini)
    assert request.inline_data() == [("audio/ogg", AUDIO)]  # the bytes WhatsApp stored, as a type Gemini takes
    assert [r.headers["Authorization"] for r in fake_graph.media_requests] == [
        f"Bearer {graph_server.FAKE_ACCESS_TOKEN}"
    ] * 2  # the media info, then its download URL, both with the token
    assert inbound.content == "Oi, quero marcar uma consulta com cardiologista"
    assert inbound.channel_type == "audio" and inbound.entities["voice"] == "transcribed"
    assert inbound.processing_status == "processed" and inbound.intent == "agendar"
    assert "Cardiologia" in str(inbound.entities.get("especialidade"))
    # Gemini bills the audio: those tokens are on the patient's message and in today's budget.
    assert inbound.input_tokens >= len(AUDIO) * 32 // 2000
    assert token_monitor.tokens_used_today() == inbound.input_tokens + inbound.output_tokens
    assert T.VOICE_NOT_HEARD not in _reply_text(fake_graph)
    session = ConversationSession.objects.get(phone_number="5511999990001")
    assert session.recent_messages[0] == {"role": "user", "text": inbound.content}


def test_an_emergency_said_in_a_voice_note_gets_the_warning(client, clinic, fake_graph, fake_gemini):
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg; codecs=opus")
    fake_gemini.responder = _transcripts("meu pai tá com uma dor forte no peito que vai pro braço esquerdo")

    _voice_note(client)

    assert "192" in _reply_text(fake_graph) and "emergência" in _reply_text(fake_graph)


def test_without_a_gemini_key_the_patient_is_asked_to_write_and_nothing_is_fetched(client, clinic, fake_graph):
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg; codecs=opus")

    inbound = _voice_note(client)

    assert fake_graph.media_requests == []
    assert _reply_text(fake_graph) == T.VOICE_NOT_HEARD
    assert inbound.entities["voice"] == "no_key" and inbound.content == ""


def test_switched_off_no_audio_leaves_the_clinic(client, clinic, fake_graph, fake_gemini, settings):
    settings.VOICE_TRANSCRIPTION = False
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg; codecs=opus")

    inbound = _voice_note(client)

    assert fake_graph.media_requests == [] and _audio_requests(fake_gemini) == []
    assert _reply_text(fake_graph) == T.VOICE_NOT_HEARD and inbound.entities["voice"] == "disabled"


def test_a_voice_note_announced_too_long_is_not_downloaded(client, clinic, fake_graph, fake_gemini, settings):
    settings.VOICE_NOTE_MAX_BYTES = 5000
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg; codecs=opus")

    inbound = _voice_note(client)

    assert len(fake_graph.media_requests) == 1  # the info only: its file_size is over the limit
    assert _audio_requests(fake_gemini) == []
    assert inbound.entities["voice"] == "too_long" and _reply_text(fake_graph) == T.VOICE_NOT_HEARD


def test_a_download_longer_than_announced_is_cut_off(client, clinic, fake_graph, fake_gemini, settings):
    settings.VOICE_NOTE_MAX_BYTES = 5000
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg; codecs=opus", file_size=4000)

    inbound = _voice_note(client)

    assert len(fake_graph.media_requests) == 2 and _audio_requests(fake_gemini) == []
    assert inbound.entities["voice"] == "too_long"


def test_a_format_gemini_does_not_take_is_not_downloaded(client, clinic, fake_graph, fake_gemini):
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/amr")

    inbound = _voice_note(client)

    assert len(fake_graph.media_requests) == 1 and _audio_requests(fake_gemini) == []
    assert inbound.entities["voice"] == "unsupported_format"


@pytest.mark.parametrize(
    "graph_answer", [None, graph_error(190), graph_error(500)], ids=["expired-media", "bad-token", "graph-down"]
)
def test_media_that_cannot_be_fetched_asks_the_patient_to_write(client, clinic, fake_graph, fake_gemini, graph_answer):
    if graph_answer is None:
        pass  # no media under that id: Meta answers 400 (code 100), as for an id past its 7 days
    else:
        fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg")
        fake_graph.media_errors.append(graph_answer)

    inbound = _voice_note(client)

    assert _audio_requests(fake_gemini) == []
    assert inbound.entities["voice"] == "media_unavailable"
    assert inbound.processing_status == "processed" and _reply_text(fake_graph) == T.VOICE_NOT_HEARD


def test_gemini_down_is_tried_once_and_the_patient_asked_to_write(client, clinic, fake_graph, fake_gemini):
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg")
    fake_gemini.default = answer_error(503)

    inbound = _voice_note(client)

    assert len(_audio_requests(fake_gemini)) == 1  # no retry: asking the patient to write is quicker
    assert inbound.entities["voice"] == "gemini_unavailable" and _reply_text(fake_graph) == T.VOICE_NOT_HEARD


def test_a_slow_transcription_gives_up_at_its_own_timeout(client, clinic, fake_graph, fake_gemini, settings):
    settings.GEMINI_TIMEOUT_SECONDS = 30.0  # the NLU's: not the one that applies
    settings.VOICE_TRANSCRIPTION_TIMEOUT_SECONDS = 0.5
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg")
    fake_gemini.default = answer_slow(3.0, answer_json({"transcript": "oi"}))

    started = time.monotonic()
    inbound = _voice_note(client)

    assert time.monotonic() - started < 2.5
    assert inbound.entities["voice"] == "gemini_unavailable"


def test_silence_is_no_speech(client, clinic, fake_graph, fake_gemini):
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg")
    fake_gemini.responder = _transcripts("   ")

    inbound = _voice_note(client)

    assert inbound.entities["voice"] == "no_speech" and inbound.input_tokens > 0  # the listening was paid for
    assert _reply_text(fake_graph) == T.VOICE_NOT_HEARD


def test_over_the_daily_budget_the_audio_is_not_fetched(client, clinic, fake_graph, fake_gemini, settings):
    settings.GEMINI_DAILY_TOKEN_LIMIT = 10
    token_monitor.record_usage(input_tokens=10, output_tokens=0)
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg")

    inbound = _voice_note(client)

    assert fake_graph.media_requests == [] and inbound.entities["voice"] == "budget_exhausted"


def test_a_voice_note_is_transcribed_once_even_when_its_turn_runs_again(clinic, fake_graph, fake_gemini, client):
    """A worker that dies after the transcript is stored: the sweeper's retry reads it instead of paying again."""
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg")
    fake_gemini.responder = _transcripts("qual o endereço da clínica?")
    inbound = _stored_voice_note("wamid.AUD0002")

    assert voice_note_text(inbound) == "qual o endereço da clínica?"  # the first worker, before it died
    inbound_process(message_id=inbound.pk)  # the retry

    inbound.refresh_from_db()
    assert len(_audio_requests(fake_gemini)) == 1
    assert inbound.processing_status == "processed" and inbound.content == "qual o endereço da clínica?"
    assert "Av. Paulista, 1000" in _reply_text(fake_graph)


def test_during_a_human_handoff_the_staff_get_the_transcript_and_the_bot_stays_silent(
    client, clinic, fake_graph, fake_gemini
):
    ConversationSession.objects.create(phone_number="5511999990001", current_state="human_handoff")
    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg")
    fake_gemini.responder = _transcripts("já estou chegando na recepção")

    inbound = _voice_note(client)

    assert inbound.content == "já estou chegando na recepção" and fake_graph.sends == []


# --- Images, documents and videos with a caption: the words are read, the file is not opened -------------------
def test_a_caption_is_read_and_the_patient_told_the_file_was_not_opened(client, clinic, fake_graph):
    payload = load_payload("image_with_caption", now=time.time())
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["caption"] = "quanto custa o hemograma?"

    post_webhook(client, payload)

    reply = _reply_text(fake_graph)
    assert T.ATTACHMENT_CAPTION_READ in reply and "R$ 35,00" in reply
    assert fake_graph.media_requests == []  # an image is never downloaded


def test_a_caption_about_the_file_itself_is_no_failure_of_the_patient(client, clinic, fake_graph, settings):
    """ "Meu pedido médico" says nothing the bot can act on: it says so, and the handoff counter does not move."""
    settings.HANDOFF_AFTER_FAILURES = 1

    post_webhook(client, load_payload("image_with_caption", now=time.time()))

    reply = _reply_text(fake_graph)
    assert T.ATTACHMENT_CAPTION_READ in reply and T.HANDOFF_AFTER_FAILURES not in reply
    assert ConversationSession.objects.get(phone_number="5511999990001").current_state != "human_handoff"


def test_an_emergency_in_a_caption_gets_the_warning(client, clinic, fake_graph):
    payload = load_payload("document", now=time.time())
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["document"]["caption"] = (
        "meu filho engoliu uma bateria, o que eu faço"
    )

    post_webhook(client, payload)

    assert "192" in _reply_text(fake_graph)


def test_the_transcription_runs_before_the_patients_lock_is_taken(clinic, fake_graph, fake_gemini):
    """Fetch and transcription take seconds: they must not use up the time limit of the lock the turn runs under."""
    import threading

    from api_gateway.services.session_cache import session_manager

    fake_graph.add_media(MEDIA_ID, AUDIO, "audio/ogg")
    fake_gemini.responder = _transcripts("qual o endereço?")
    inbound = _stored_voice_note("wamid.AUD0003")
    task = threading.Thread(target=inbound_process, kwargs={"message_id": inbound.pk})

    with session_manager.lock("5511999990001"):  # another turn of this patient is running
        task.start()
        deadline = time.monotonic() + 5
        while not _audio_requests(fake_gemini) and time.monotonic() < deadline:
            time.sleep(0.02)
        transcribed_while_locked = bool(_audio_requests(fake_gemini))
    task.join(timeout=10)

    assert transcribed_while_locked
    inbound.refresh_from_db()
    assert inbound.processing_status == "processed" and len(_audio_requests(fake_gemini)) == 1
