"""The conversation engine: one patient message in, one reply out, with the state machine in code.

The NLU (Gemini or offline) only says what the patient *said* (intent + entities); this module decides what
happens: which slot it fills, what is validated against the clinic's tables, which state comes next and what the
bot answers. Nothing is booked without an explicit confirmation, and only real doctors, plans and free slots are
ever offered.

Persistence of one turn is one transaction: the inbound message (inserted, or marked processed when the webhook
stored it), the bot message (delivery pending: the sender sends it after commit) and the session (write-through
with a version check). The engine never talks to WhatsApp.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession, followup_counts
from api_gateway.models import ConversationState as S
from api_gateway.services import safety
from api_gateway.services import texts as T
from api_gateway.services.nlu.dates import dates_extract, fold
from api_gateway.services.nlu.offline import ARRIVING, NOT_BOOKING
from api_gateway.services.nlu.types import Intent, NLUResult
from api_gateway.services.replies import Option, Reply
from api_gateway.services.session_cache import SessionConflict, session_manager
from api_gateway.services.voice import voice_outcome
from api_gateway.whatsapp import SILENT_TYPES
from core import broker, metrics
from core.logging import mask_phone
from rag_agent import selectors
from rag_agent import services as clinic_services
from rag_agent.closures import block_over, blocks_on, holiday_name, periods_ahead, whole_day_block
from rag_agent.matching import doctor_name_words

logger = logging.getLogger(__name__)

# Channel types read as words; any other (media, contacts, orders, "unsupported", a type WhatsApp adds later) gets
# the polite "only text" answer, never "não entendi".
READABLE_TYPES = frozenset({"text", "interactive", "button", "api", "location"})
# Attachments whose caption is read as words (the attachment itself is not opened).
CAPTIONED_TYPES = frozenset({"image", "document", "video"})
HISTORY_SIZE = 4
HISTORY_CHARS = 300
MAX_STORED_TEXT = 8000
FLOW_BOOK, FLOW_CANCEL, FLOW_RESCHEDULE, FLOW_CONFIRM = "agendar", "cancelar", "remarcar", "confirmar"
_EXISTING_APPOINTMENT = re.compile(
    r"(?<![a-z])(?:minhas?|meus?) (?:consultas?|agendamentos?|marcac\w+|horario)|consultas? (?:marcada|agendada|de )"
)
# At "Quer mesmo cancelar?": answers that keep the appointment, though some say "cancela" ("não cancela").
_KEEP_APPOINTMENT = re.compile(
    r"(?<![a-z])(?:mantem|mantenha|manter|mantém|deixa|deixe|melhor nao|nao cancel\w*|nao precisa cancelar|esquece"
    r"|nao quero mais cancelar|desisti de cancelar)(?![a-z])"
)
_RATHER_MOVE = re.compile(r"(?<![a-z])(?:remarc\w*|mudar (?:o dia|a data|o horario)|trocar (?:o dia|a data|o horario))")
# At "Qual delas?": a short way out ("nenhuma", "deixa"), or all of them ("as duas", "todas").
_NONE_OF_THEM = re.compile(r"^\W*(?:nao\W+)?(?:nenhuma|nenhum|deixa|deixe|esquece|mantem|manter|mantenha)\b")
_ALL_BUT = re.compile(  # not "pelo menos" (at least)
    r"(?<![a-z])(?<!pelo )(?<!ao )(?:menos|exceto|tirando|fora|sem ser|com excecao d[aoe]s?)(?![a-z])"
)
_PARTS = re.compile(r"\s+e\s+|[,;]")  # "a de terça e a de quarta, a de quinta não": each names its own
_NEGATED_PART = re.compile(r"(?<![a-z])(?:nao|nem)(?![a-z])")
_OWN_ONES = re.compile(r"(?<![a-z])(?:minhas|meus)(?![a-z])")  # "as duas minhas": the sender's own
_BOTH = re.compile(r"(?<![a-z])(?:as duas|os dois|ambas|ambos)(?![a-z])")
_ALL_OF_THEM = re.compile(
    r"(?<![a-z])(?:todas|todos|as duas|os dois|ambas|as tres|nenhuma das duas"
    # "tudo", but not the greeting "oi, tudo bem?"
    r"|tudo(?!\s+(?:bem|bom|certo|certinho|joia|tranquilo|beleza|ok|otimo|em ordem|na paz|em paz)(?![a-z])))(?![a-z])"
)
# Another doctor for an appointment being moved: "troca o médico", "o dr carlos em vez da dra ana"
_NEW_DOCTOR = re.compile(
    r"(?<![a-z])(?:(?:troca\w*|muda\w*)\s+(?:de|o|a)\s+(?:medic|doutor)|em vez d|ao inves d|outr[oa] medic)"
)
# A message about an appointment already booked ("a consulta com a dra ana é que horas?", "to marcada com a dra
# ana?", "mantém a consulta de quarta"): never the start of another booking.
_ABOUT_BOOKED = re.compile(
    r"(?<![a-z])(?:(?:tenho|to|estou|esta|ta|tava|estava|fiquei|ficou)\s+(?:com\s+)?(?:(?:horario|consulta)\s+)?marcad[oa]"
    r"|(?:horario|consulta)\s+marcad[oa]"
    r"|(?:a|minha|na|da)\s+consulta\s+(?:com|de|do|da)\s+[^?]*(?:que horas|q horas|qual horario|quando|com quem"
    r"|(?:e|eh)\s+com|mais cedo|mais tarde)"
    r"|(?:que horas|q horas|qual (?:o )?horario|quando)\s+(?:e\s+|eh\s+|fica\s+)?(?:a|da|minha)\s+consulta"
    r"|(?:mantem|mantenha|manter|deixa|deixe)\s+(?:a|minha)\s+consulta)(?![a-z])"
)
# While moving an appointment: keep it as it was ("deixa como está", "vou manter o horário que eu tinha")
_KEEP_AS_IT_WAS = re.compile(
    r"(?<![a-z])(?:(?:deixa|deixe|fica|manter|mantem|mantenha)\s+(?:\w+\s+)?(?:como|do jeito que)"
    r"\s+(?:esta|ta|estava|tava)"
    r"|(?:manter|mantem|mantenha)\s+(?:o|a|meu|minha)\s+(?:horario|consulta|data|dia))(?![a-z])"
)
# "não, a outra" at "Quer mesmo cancelar a de quarta?": the patient's other appointment
_THE_OTHER = re.compile(r"(?<![a-z])(?:a outra|o outro|outra consulta)(?![a-z])")
# A yes this long after "Quer mesmo cancelar?" is asked again: the patient may no longer mean it.
CANCEL_QUESTION_STALE = dt.timedelta(hours=2)
# "remarca a de quinta pra sexta": the day after "pra" is where it goes, the one before which appointment
_MOVED_TO = re.compile(r"(?<![a-z])(?:pra|para|pro|p/)\s")
# "Não vou poder ir amanhã": an appointment the patient will miss. Not "não posso ir de manhã" (a wish for a time).
_CANT_ATTEND = re.compile(
    r"(?<![a-z])(?:nao (?:vou|vai|irei) (?:mais )?(?:poder|conseguir) (?:ir|comparecer)|nao irei|nao estarei"
    r"|nao vou mais(?: ir| na consulta)?(?=\W*$)"
    r"|nao (?:posso|consigo|poderei|conseguirei) (?:ir|comparecer)|nao da (?:pra|para) ir"
    r"|(?:vou|vai) (?:ter que |ter q |precisar )?faltar|nao vou comparecer)(?![a-z])"
    r"(?!\s+(?:de|pela|na|a|à)\s+(?:manha|tarde|noite))"
)
# A yes to a reminder in the patient's words ("bom dia, confirmo", "irei sim", "vou estar lá", "to indo", "eu vou"),
# read only while a reminder waits for its answer
# — the whole message, so "sim, mas não vou conseguir ir" or "estarei viajando" is no yes
_WILL_ATTEND = re.compile(
    r"^\W*(?:(?:bom dia|boa tarde|boa noite|oi|ola)\W+)?(?:(?:as duas|os dois|ambas|todas)\W+)?(?:sim\W+)?"
    r"(?:irei|vou estar (?:la|ai|presente)|(?:to|tou|estou) indo|consigo ir|eu vou|vou sim|vou ir|sim|confirmo"
    r"|confirmado|confirmada|pode confirmar|estarei (?:la|ai|presente))"
    r"(?:\W+sim)?(?:\W+(?:obrigad[oa]|valeu|pode confirmar))?\W*$"
    # "confirmo só a do pedro": a confirmation that names which, with no "não"/"depois"/"se" after it
    r"|^\W*(?:(?:bom dia|boa tarde|boa noite|oi|ola)\W+)?(?:eu\W+)?confirmo\b(?!.*\b(?:nao|depois|se)\b)"
)
# "esqueci, que horas é mesmo?", "é com qual médico?": about the appointment just reminded
_ABOUT_REMINDED = re.compile(
    r"(?<![a-z])(?:que horas|qual (?:o |e o )?horario|que dia|qual (?:o |e o )?dia|com quem|(?:qual|que) medic[oa]"
    r"|(?:qual|que) (?:doutor|doutora|dr|dra))(?![a-z])"
)
_WANTS_BOOKING = re.compile(r"(?<![a-z])(?:marcar|agendar|marca|marcacao|agendamento|nova consulta)(?![a-z])")
_CONFIRMS_ATTENDANCE = re.compile(
    r"(?<![a-z])(?<!nao )(?<!nao vou )(?<!nao vou poder )(?<!nao consigo )(?<!nao posso )"
    r"(?:confirm\w* (?:a |minha )*presenca|vou (?:na|a) consulta sim|estarei (?:la|presente|ai)"
    r"|confirmo (?:a|minha) consulta"
    # "confirmo as duas consultas", "vou sim na consulta de amanhã", "o pedro vai sim na consulta"
    r"|confirm(?:o|a|ar) (?:as |os )?(?:duas|dois|tres|ambas|todas)(?: as)?(?: consultas)?"
    r"|(?:vou|vai|vamos) sim(?: na consulta| comparecer)?|(?:vou|vai|vamos) comparecer"
    r"|(?:vou|vai) (?:na|a) consulta sim)(?![a-z])"
)
BOOKING_STATES = {
    S.SELECTING_SPECIALTY,
    S.CHOOSING_PLAN,
    S.SELECTING_DOCTOR,
    S.CHOOSING_DATE,
    S.CHOOSING_TIME,
    S.CONFIRMING,
}
MAX_LIST_ROWS = 10
BUTTON_KINDS = {"menu", "confirm", "name", "topic", "waitlist", "no_slots"}
RESUME_SOURCE = "resume"  # the step's prompt repeated after a question mid-flow: not an answer to it


@dataclass
class TurnResult:
    reply: Reply
    state: str
    session_id: int
    user_message_id: int
    bot_message_id: int | None
    nlu_source: str


@dataclass
class _Turn:
    """Working state of one turn: the session being edited, the NLU result and the reply parts."""

    session: ConversationSession
    nlu: NLUResult
    now: dt.datetime
    option_id: str | None
    profile_name: str
    prefix: list[str] = field(default_factory=list)
    understood: bool = True
    text: str = ""  # the patient's message as received
    new_booking: bool = False  # this message started a booking
    doctor_chosen: bool = False  # this message chose the doctor (by name or from the list)
    ruled_out: frozenset = frozenset()  # weekdays this message ruled out ("qualquer dia menos segunda")
    busy_at: dt.datetime | None = None  # a time the patient already has another appointment at
    latest: bool = False  # "o mais tarde possível": the day's last times
    first_contact: bool = False  # the bot had never greeted this number
    full_doctor: int | None = None  # left out of the doctors offered ("particular" after his full agenda)

    @functools.cached_property
    def folded(self) -> str:
        """The message folded for the text rules (lower case, no accents), once per turn."""
        return fold(self.text)

    @functools.cached_property
    def doctors_named(self) -> set[int]:
        """The doctors the message names by title or in full, looked up once per turn."""
        return {m.id for m in selectors.mentions_find(self.text).get("medico", [])}


# --- entry points ---------------------------------------------------------------------------------------------


def turn_handle(
    *,
    phone: str,
    text: str,
    inbound: ConversationMessage | None = None,
    option_id: str | None = None,
    channel_type: str = "text",
    profile_name: str = "",
    now: dt.datetime | None = None,
) -> TurnResult:
    """One turn, serialised with the other turns of this phone."""
    with session_manager.lock(phone):
        return turn_handle_unlocked(
            phone=phone,
            text=text,
            inbound=inbound,
            option_id=option_id,
            channel_type=channel_type,
            profile_name=profile_name,
            now=now,
        )


def turn_handle_unlocked(
    *,
    phone: str,
    text: str,
    inbound: ConversationMessage | None = None,
    option_id: str | None = None,
    channel_type: str = "text",
    profile_name: str = "",
    now: dt.datetime | None = None,
) -> TurnResult:
    """One turn; the caller holds `session_manager.lock(phone)`."""
    with selectors.catalog_snapshot():
        return _turn(
            phone=phone,
            text=text,
            inbound=inbound,
            option_id=option_id,
            channel_type=channel_type,
            profile_name=profile_name,
            now=now,
        )


def _turn(
    *,
    phone: str,
    text: str,
    inbound: ConversationMessage | None,
    option_id: str | None,
    channel_type: str,
    profile_name: str,
    now: dt.datetime | None,
) -> TurnResult:
    now = now or timezone.now()
    text = (text or "").replace("\x00", "")[:MAX_STORED_TEXT]  # PostgreSQL refuses NUL characters
    session = session_manager.get_or_start(phone=phone)
    if session.current_state == S.HUMAN_HANDOFF and _handoff_over(session, text=text, now=now, inbound=inbound):
        release_to_bot(session)  # saved with this turn, which the bot answers
    _resume_after_question(session)  # the NLU reads this message in the step it answers, not "answering_question"
    nlu = _interpret(session=session, text=text, option_id=option_id, channel_type=channel_type, now=now)
    for attempt in range(3):
        try:
            return _run_and_persist(
                session=session,
                text=text,
                nlu=nlu,
                inbound=inbound,
                option_id=option_id,
                channel_type=channel_type,
                profile_name=profile_name,
                now=now,
            )
        except SessionConflict:
            # A stale cached copy (or a turn outside the lock) changed the row: replay on the database's state.
            logger.warning("session conflict for %s (attempt %d); replaying the turn", mask_phone(phone), attempt + 1)
            session = session_manager.get_from_database(phone=phone) or session_manager.get_or_start(phone=phone)
    raise SessionConflict(f"session {mask_phone(phone)} kept changing during the turn")


def _interpret(
    *, session: ConversationSession, text: str, option_id: str | None, channel_type: str, now: dt.datetime
) -> NLUResult:
    if channel_type not in READABLE_TYPES - {"location"} and not _caption(channel_type, text):  # no words to read
        return NLUResult(intent=Intent.DESCONHECIDO, confidence=1.0, source="")
    if session.current_state == S.HUMAN_HANDOFF:
        if option_id and option_id.startswith(("reminder:confirm:", "waitlist:join:")):  # these need no person
            return _option_intent(option_id) or NLUResult(intent=Intent.DESCONHECIDO, confidence=1.0, source="")
        return NLUResult(intent=Intent.DESCONHECIDO, confidence=1.0, source="")  # staff answer; no tokens spent
    if option_id:
        picked = _option_intent(option_id)
        if picked is not None:
            return picked
    from api_gateway.services.nlu.router import nlu_interpret

    history = list(session.recent_messages or [])
    result = nlu_interpret(text=text, session=session, history=history, now=now)
    metrics.TURNS.labels(result.source or "none").inc()
    # A typed number on the text fallback of buttons ("1" for "Confirmar") is the same as tapping the button, and so
    # is a text that names a button. After the menu, what else it says is kept ("quero marcar com dermatologista"
    # books Dermatologia); on confirm/name buttons the answer is the button alone, as it always was.
    offered = session.last_options or {}
    index = result.entities.get("opcao")
    if offered.get("kind") in BUTTON_KINDS and isinstance(index, int) and 1 <= index <= len(offered["items"]):
        picked = _option_intent(offered["items"][index - 1]["id"])
        if picked is not None:
            said = {}
            if offered["kind"] == "menu":
                said = {k: v for k, v in result.entities.items() if k not in {"opcao", "referencia"}}
            return dataclasses.replace(
                picked,
                entities={**said, **picked.entities},
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
            )
    return result


def _option_intent(option_id: str) -> NLUResult | None:
    """Interactive replies carry our own ids: no NLU needed."""
    kind, _, value = option_id.partition(":")
    fixed = {
        ("menu", "agendar"): Intent.AGENDAR,
        ("menu", "duvidas"): Intent.PERGUNTA,
        ("menu", "atendente"): Intent.ATENDENTE,
        ("confirm", "yes"): Intent.CONFIRMAR,
        ("confirm", "no"): Intent.NEGAR,
        ("confirm", "stop"): Intent.REINICIAR,
        ("name", "yes"): Intent.CONFIRMAR,
        ("name", "no"): Intent.NEGAR,
        ("manage", "reschedule"): Intent.REMARCAR,
    }
    if (kind, value) in fixed:
        return NLUResult(intent=fixed[(kind, value)], confidence=1.0, source="option")
    if kind == "reminder":  # a quick-reply button of the reminder template: "reminder:confirm:12"
        action, _, appointment_id = value.partition(":")
        intent = {"confirm": Intent.CONFIRMAR, "reschedule": Intent.REMARCAR, "cancel": Intent.CANCELAR}.get(action)
        if intent is None or not appointment_id.isdigit():
            return None
        return NLUResult(intent=intent, confidence=1.0, entities={"lembrete_id": int(appointment_id)}, source="option")
    if kind == "waitlist":  # "Lista de espera" ("waitlist:join:<doctor>"), or the notice's "Ver horários"
        action, _, doctor_id = value.partition(":")
        if action not in {"join", "book"} or not doctor_id.isdigit():
            return None
        if action == "join":
            entities = {"lista_espera": int(doctor_id)}
            return NLUResult(intent=Intent.CONFIRMAR, confidence=1.0, entities=entities, source="option")
        entities = {"medico_id": int(doctor_id), "aviso_lista": True}
        return NLUResult(intent=Intent.AGENDAR, confidence=1.0, entities=entities, source="option")
    if kind == "topic" and value in _QUESTION_TOPICS:  # a row of the "Tirar dúvidas" list
        return NLUResult(intent=Intent.PERGUNTA, confidence=1.0, entities={"topico": value}, source="option")
    if kind in {"specialty", "plan", "doctor", "slot", "appointment"}:
        return NLUResult(intent=Intent.INFORMAR, confidence=1.0, entities={"option_id": option_id}, source="option")
    return None


def _run_and_persist(
    *,
    session: ConversationSession,
    text: str,
    nlu: NLUResult,
    inbound: ConversationMessage | None,
    option_id: str | None,
    channel_type: str,
    profile_name: str,
    now: dt.datetime,
) -> TurnResult:
    turn = _Turn(
        session=session, nlu=nlu, now=now, option_id=option_id, profile_name=(profile_name or "")[:80], text=text
    )
    state_before = session.current_state
    reply = _decide(turn, text=text, channel_type=channel_type)
    session.last_activity = now
    if reply.send:
        _remember(session, "user", text)
        _remember(session, "bot", reply.text)
    elif session.current_state == S.HUMAN_HANDOFF and text and channel_type not in SILENT_TYPES:
        _remember(session, "user", text)  # answered by a person: the bot reads both sides after the release
    try:
        with transaction.atomic():
            user_message = _store_user_message(session, inbound, text=text, nlu=nlu, channel_type=channel_type, now=now)
            bot_message = None
            if reply.send:
                bot_message = ConversationMessage.objects.create(
                    session=session,
                    message_type=ConversationMessage.MessageType.BOT,
                    channel_type=reply.kind,
                    content=reply.text,
                    entities={"reply": reply.to_dict()},
                    timestamp=now,
                    reply_to=user_message,
                    # Only webhook turns are delivered through WhatsApp; REST and chat replies go back in-band.
                    delivery_status=ConversationMessage.Delivery.PENDING if inbound is not None else "",
                )
            session_manager.save(session=session)
    except Exception:
        # The transaction rolled back: drop the cached copy, which may already hold this turn's state.
        session_manager.invalidate(phone=session.phone_number)
        raise
    if inbound is not None and session.current_state == S.HUMAN_HANDOFF:
        if state_before != S.HUMAN_HANDOFF:
            transaction.on_commit(functools.partial(_reception_told, session.pk))
        elif (
            settings.HANDOFF_NOTIFY_EMAILS
            and channel_type not in SILENT_TYPES
            and _staff_awaits_answer(session, now=now, inbound=inbound)
        ):
            # The patient answered the staff's follow-up template, maybe days later: the person who sent it is told.
            transaction.on_commit(functools.partial(_reception_told, session.pk, answered=True))
    return TurnResult(
        reply=reply,
        state=session.current_state,
        session_id=session.pk,
        user_message_id=user_message.pk,
        bot_message_id=bot_message.pk if bot_message else None,
        nlu_source=nlu.source,
    )


def _store_user_message(
    session: ConversationSession,
    inbound: ConversationMessage | None,
    *,
    text: str,
    nlu: NLUResult,
    channel_type: str,
    now: dt.datetime,
) -> ConversationMessage:
    entities = _jsonable(nlu.entities)
    if inbound is not None and (voice := voice_outcome(inbound)):
        entities["voice"] = voice  # what became of a voice note, for the staff reading the conversation
    fields = {
        "intent": str(nlu.intent),
        "confidence": nlu.confidence,
        "entities": entities,
        "nlu_source": nlu.source,
        "input_tokens": nlu.input_tokens,
        "output_tokens": nlu.output_tokens,
        "processing_status": ConversationMessage.Processing.PROCESSED,
        "processed_at": now,
    }
    if inbound is None:
        return ConversationMessage.objects.create(
            session=session,
            message_type=ConversationMessage.MessageType.USER,
            channel_type=channel_type if channel_type != "text" else "api",
            content=text,
            timestamp=now,
            **fields,
        )
    # Tokens are added: a voice note's transcription is already counted on the row (api_gateway.services.voice).
    tokens = {
        "input_tokens": F("input_tokens") + nlu.input_tokens,
        "output_tokens": F("output_tokens") + nlu.output_tokens,
    }
    ConversationMessage.objects.filter(pk=inbound.pk).update(**{**fields, **tokens})
    for name, value in fields.items():
        if name not in tokens:
            setattr(inbound, name, value)
    return inbound


def _jsonable(entities: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, dt.date | dt.time) else v) for k, v in (entities or {}).items()}


def _remember(session: ConversationSession, role: str, text: str) -> None:
    history = list(session.recent_messages or [])
    history.append({"role": role, "text": (text or "")[:HISTORY_CHARS]})
    session.recent_messages = history[-HISTORY_SIZE:]


# --- the state machine ----------------------------------------------------------------------------------------


def _decide(turn: _Turn, *, text: str, channel_type: str) -> Reply:
    s = turn.session
    if channel_type in SILENT_TYPES:
        return Reply(text="", send=False)
    caption = _caption(channel_type, text)
    warning = _emergency_warning(turn) if channel_type in READABLE_TYPES or caption else ""
    # a crisis (CVV) gets the warning alone, never a booking question after it
    alone = s.current_state == S.HUMAN_HANDOFF or warning == T.EMERGENCY_SELF_HARM
    if warning and (alone or not _acts_beside_emergency(turn)):
        s.has_greeted = True
        if s.current_state == S.CONFIRMING:
            # A yes/no was pending ("Quer mesmo cancelar?", a booking's summary): after an emergency, the next "ok,
            # vou ligar" answers the warning, never that question. A cancellation is dropped (nothing changed); a
            # booking keeps its choices and shows its summary again before any yes counts.
            if s.flow == FLOW_CANCEL:
                _flow_reset(s)
            else:
                s.last_options = {"kind": "after_warning"}
        return Reply(text=warning)  # nothing else: the flow stays where it was, and staff keep the conversation
    if s.current_state == S.HUMAN_HANDOFF:
        if turn.nlu.entities.get("lembrete_id"):  # the reminder's "Confirmar presença": done, the staff keep the rest
            return _reminder_answer(turn) or Reply(text="", send=False)
        doctor = _doctor(turn.nlu.entities.get("lista_espera"))
        if doctor is not None:  # "Lista de espera" tapped after "Falar c/ atendente": joined, the staff keep the rest
            return Reply(text=_waitlist_joined(turn, doctor))
        return Reply(text="", send=False)  # the clinic's staff answer until they release the session
    if channel_type == "location":
        return Reply(text=T.LOCATION_RECEIVED.format(address=_clinic()["endereco"]))
    if channel_type == "audio":  # a voice note that could not be heard (api_gateway.services.voice)
        return Reply(text=T.VOICE_NOT_HEARD)
    if channel_type not in READABLE_TYPES and not caption:
        return Reply(text=T.MEDIA_NOT_SUPPORTED)
    _resume_after_question(s)

    greeting = ""
    if not s.has_greeted:
        s.has_greeted = turn.first_contact = True
        bare_ok = turn.nlu.intent == Intent.CONFIRMAR and not s.flow  # answered with the full greeting below
        if turn.nlu.intent not in {Intent.SAUDACAO} and not warning and not bare_ok:  # the warning comes first
            greeting = T.GREETING_SHORT.format(clinic=_clinic()["nome"])

    reply = _dispatch(turn)
    if caption and reply.send:
        reply.text = f"{T.ATTACHMENT_CAPTION_READ}\n\n{reply.text}"
    if turn.understood:
        s.failed_attempts = 0
    elif not caption:  # "segue meu pedido" is about the file we cannot open, no failure of the patient's
        s.failed_attempts += 1
        if s.failed_attempts >= settings.HANDOFF_AFTER_FAILURES:
            return _handoff(turn, T.HANDOFF_AFTER_FAILURES)
    if greeting and reply.send:
        reply.text = f"{greeting}\n\n{reply.text}"
    if warning and reply.send:
        reply.text = f"{warning}\n\n{reply.text}"
    return reply


def _caption(channel_type: str, text: str) -> bool:
    """An image, document or video sent with words: the words are read, the file is not opened."""
    return channel_type in CAPTIONED_TYPES and bool(text.strip())


_ACTIONS = frozenset(
    {Intent.AGENDAR, Intent.REMARCAR, Intent.CANCELAR, Intent.MEUS_AGENDAMENTOS, Intent.ATENDENTE, Intent.REINICIAR}
)


def _emergency_warning(turn: _Turn) -> str:
    """The emergency numbers when the message describes a warning sign (see `safety`), else ""."""
    kind = safety.emergency_kind(turn.text)
    if kind is None:
        return ""
    metrics.EMERGENCY_WARNINGS.labels(kind).inc()
    logger.warning("emergency warning (%s) sent to %s", kind, mask_phone(turn.session.phone_number))
    return T.EMERGENCY_SELF_HARM if kind == safety.SELF_HARM else T.EMERGENCY_MEDICAL


def _carry_question_subject(turn: _Turn) -> None:
    """A booking asked as a follow-up of a question ("e tem horário quinta?", "quero marcar com ela") keeps the one
    doctor and the plan that question was about, unless the message names others."""
    e, memory = turn.nlu.entities, turn.session.last_options or {}
    if e.get("medico_id") or e.get("especialidade_id"):
        return
    follow_up = turn.folded.lstrip().startswith("e ") or _PRONOUN.search(turn.folded)
    doctors = [i["id"] for i in memory.get("items", []) if str(i.get("id", "")).startswith("doctor:")]
    if follow_up and memory.get("kind") == "doctor" and len(doctors) == 1:
        e["medico_id"] = int(doctors[0].partition(":")[2])
        if memory.get("plan") and not (e.get("convenio_id") or e.get("particular")):
            e["convenio_id"] = memory["plan"]


def _just_booked(turn: _Turn):
    """The patient's appointment booked in the last 15 minutes, if any (the newest). `criado_em` is the
    database's clock, so it is compared with the real time, not the turn's."""
    recent = [
        a
        for a in selectors.appointments_upcoming_for_phone(turn.session.phone_number, now=turn.now)
        if a.criado_em and timezone.now() - a.criado_em <= dt.timedelta(minutes=15)
    ]
    return max(recent, key=lambda a: a.criado_em) if recent else None


def _acts_beside_emergency(turn: _Turn) -> bool:
    """Whether the message also asks for something we act on ("quero marcar cardiologista, estou com dor no
    peito", "tô com dor no peito, vocês aceitam Bradesco?"): then the warning comes first and the request is still
    served. A message that only describes the emergency gets the warning alone, not a "não entendi" or the
    specialty for its complaint after it."""
    nlu, e = turn.nlu, turn.nlu.entities
    if nlu.intent == Intent.AGENDAR:
        return bool(_WANTS_BOOKING.search(turn.folded))  # asked in words, not inferred from "criança com febre"
    if nlu.intent in _ACTIONS or (nlu.intent == Intent.PERGUNTA and e.get("topico")):
        return True
    named = {"medico_id", "convenio_id", "exame_id", "data", "hora", "nome", "opcao", "option_id"}
    return any(e.get(key) for key in named)


def _resume_after_question(s: ConversationSession) -> None:
    """A question mid-flow was answered last turn: this message belongs to the step that was interrupted."""
    if s.current_state == S.ANSWERING_QUESTION:
        s.current_state = s.previous_state or S.IDLE
        s.previous_state = ""


def _dispatch(turn: _Turn) -> Reply:
    s, nlu = turn.session, turn.nlu
    intent = nlu.intent
    if intent == Intent.ATENDENTE:
        return _handoff(turn, T.HANDOFF)
    reminded = _reminder_answer(turn)
    if reminded is not None:
        return reminded
    if _leaves_waitlist(turn.folded):  # "me tira da lista de espera", "não quero mais ficar na fila"
        return _waitlist_leave(turn)
    about_list = not s.flow and _WAITLIST_WORDS.search(turn.folded)
    leave = not s.flow and _LEAVES_A_LIST.search(turn.folded)
    if about_list or leave:
        entries = selectors.waitlist_open_for_phone(s.phone_number)
        asks = "?" in turn.text or re.match(r"\W*se\b", turn.folded)  # "se eu marcar com outro, cancela a lista?"
        if entries and leave and not asks and "nao" not in turn.folded[: leave.start()].split():
            return _waitlist_leave(turn)  # "me tira da lista", "desisto da lista de espera"
        if entries and about_list and not _JOINS_WAITLIST.search(turn.folded):
            return Reply(text=_waitlist_line(entries))  # "to na lista de espera?", "alguma novidade da lista?"
    if nlu.entities.get("aviso_lista") and _doctor(nlu.entities.get("medico_id")) is None:
        reply = _menu(s, _doctor_gone(nlu.entities.get("medico_id")))  # "Ver horários" of a doctor no longer seeing
        s.last_options["offer"] = "book"  # "Posso ajudar a marcar com outro profissional?": a "sim" books
        return reply
    notice_doctor = s.last_options.get("medico_id") if s.last_options.get("offer") == "book" and not s.flow else None
    if notice_doctor:
        answered = _notice_answer(turn, notice_doctor)
        if answered is not None:
            return answered
        intent = nlu.intent  # "quero esse horário": now a booking with the notice's doctor
    offered_waitlist = s.last_options.get("kind") == "waitlist" and _answers_waitlist_offer(turn)
    if offered_waitlist and ("?" in turn.text or intent == Intent.PERGUNTA) and "lista" in turn.folded:
        return _waitlist_explained(turn)  # "como funciona a lista de espera?": the answer, and the offer again
    says_yes = _JOINS_WAITLIST.search(turn.folded) or _TAKES_OFFER.match(turn.folded) or _YES_FIRST.match(turn.folded)
    if offered_waitlist and intent != Intent.NEGAR and says_yes and not _SAYS_NO.search(turn.folded):
        intent = turn.nlu.intent = Intent.CONFIRMAR  # "pode colocar", "quero entrar na lista", "me avisa"
    if nlu.entities.get("lista_espera") or (offered_waitlist and intent in {Intent.CONFIRMAR, Intent.NEGAR}):
        return _waitlist_answer(turn)
    quiet = not s.flow or s.current_state == S.IDLE
    if _SERVICE_COMPLAINT.search(turn.folded) and (quiet or intent == Intent.DESCONHECIDO):
        # "fui mal atendida", "esperei 2 horas", "robô burro": an apology and a person, never a booking
        s.last_options = {"offer": "handoff"}
        return Reply(text=T.SERVICE_COMPLAINT)
    oops = _OOPS.search(turn.folded) and intent not in _ACTIONS - {Intent.AGENDAR} | {Intent.PERGUNTA}
    if (
        not s.flow
        and oops
        and (_has_booking_entities(nlu, frozenset({"data", "hora", "nome"})) or "nome" in turn.folded)
    ):
        just_booked = _just_booked(turn)
        if just_booked is not None:  # "ops, errei, queria quarta": the booking just made, not a second one
            when = f"{T.date_long(just_booked.data)} às {just_booked.hora:%H:%M}"
            return Reply(text=T.JUST_BOOKED_CHANGE.format(when=when, doctor=just_booked.medico.nome))
    if quiet and intent not in {Intent.REMARCAR, Intent.PERGUNTA}:
        told = turn.folded
        if _CANT_ATTEND.search(told) and not _WANTS_BOOKING.search(told):  # "não vou poder ir amanhã"
            turn.prefix.append(T.CANT_ATTEND)
            rather_move = _RATHER_MOVE.search(told)  # "não vou poder ir, quero remarcar": a move, not a cancel
            return _with_prefix(turn, _start_manage(turn, FLOW_RESCHEDULE if rather_move else FLOW_CANCEL))
        if _CONFIRMS_ATTENDANCE.search(told):
            return _confirm_attendance(turn)
    if (
        quiet
        and intent != Intent.REMARCAR
        and _ABOUT_BOOKED.search(turn.folded)
        and not _WANTS_BOOKING.search(turn.folded)
    ):
        reply = _about_booked(turn)
        if reply is not None:
            return reply
    if s.current_state == S.MANAGING_APPOINTMENT and intent in {Intent.CANCELAR, Intent.NEGAR, Intent.CONFIRMAR}:
        return _manage_step(turn)  # "cancela as duas", "nenhuma", "a de amanhã sim" answer "Qual delas?"
    if s.flow == FLOW_CANCEL and s.current_state == S.CONFIRMING and intent == Intent.MEUS_AGENDAMENTOS:
        _flow_reset(s)  # "minhas consultas" at "Quer mesmo cancelar?": the list, nothing cancelled
        return _list_appointments(turn)
    if s.flow == FLOW_CANCEL and s.current_state == S.CONFIRMING and intent == Intent.AGENDAR:
        _flow_reset(s)  # "quero marcar dermato" at "Quer mesmo cancelar?": nothing cancelled, the booking starts
        turn.prefix.append(T.KEEP_APPOINTMENT)
    if s.flow == FLOW_CANCEL and s.current_state == S.CONFIRMING and intent != Intent.PERGUNTA:
        return _manage_step(turn)  # "Quer mesmo cancelar?": "pode cancelar" is a yes, "não cancela" a no
    moving = s.flow == FLOW_RESCHEDULE and s.current_state in BOOKING_STATES
    # "cancelar" (the change menu's word), "deixa pra lá", "não quero mais remarcar": the move is given up
    gives_up = intent == Intent.CANCELAR and (len(turn.folded.split()) <= 2 or not _CANCEL_WORD.search(turn.folded))
    if moving and intent == Intent.CANCELAR and not gives_up and s.target_appointment_id:
        target = _own_appointment(s)  # "pensando bem, quero cancelar" while moving it: that one, asked first
        if target is not None:
            _flow_reset(s)
            s.flow, s.target_appointment_id = FLOW_CANCEL, target.pk
            return _manage_selected(turn, target)
    gives_up = gives_up or (moving and _KEEP_AS_IT_WAS.search(turn.folded))  # "deixa como está"
    if moving and (intent == Intent.REINICIAR or gives_up):
        # "Desistir" or the "cancelar" the change menu offers, while moving an appointment: the move is dropped,
        # never the appointment (cancelling it takes words that say so: "quero cancelar a consulta").
        _flow_reset(s)
        return _menu(s, T.RESCHEDULE_ABANDONED) if intent == Intent.REINICIAR else Reply(text=T.RESCHEDULE_ABANDONED)
    if intent == Intent.REINICIAR:
        _flow_reset(s)
        return _menu(s, T.RESTARTED)
    if s.flow == FLOW_BOOK and NOT_BOOKING.search(turn.folded):  # "não quero marcar, só saber o horário dele"
        chosen = _doctor(s.selected_doctor_id) if s.selected_doctor_id else None
        _flow_reset(s)
        if chosen:
            _remember_doctors(s, [chosen])  # "dele" is still him
        if intent != Intent.PERGUNTA:
            return Reply(text=T.BOOKING_ABANDONED)
    at_summary = s.current_state == S.CONFIRMING and s.flow in {FLOW_BOOK, FLOW_RESCHEDULE}
    shift = _EARLIER_OR_LATER.search(turn.folded) if at_summary and s.preferred_time else None
    if shift and intent != Intent.AGUARDAR and not _has_booking_entities(nlu):
        # "pode ser mais tarde?" at the summary: that day's times after (or before) the one chosen
        chosen = s.preferred_time
        s.preferred_period, s.preferred_time = "", None
        if shift.group(0) == "mais cedo":
            s.preferred_after, s.preferred_before = None, chosen
        else:
            s.preferred_after = (dt.datetime.combine(dt.date.min, chosen) + dt.timedelta(minutes=1)).time()
            s.preferred_before = None
        return _advance(turn)
    picking_slot = s.current_state in {S.CHOOSING_DATE, S.CHOOSING_TIME} and s.last_options.get("kind") == "slot"
    picking_slot = picking_slot and intent not in {Intent.AGUARDAR, Intent.DESPEDIDA}  # "e depois volto"
    if picking_slot and _MORE_SLOTS.search(turn.folded) and not _has_booking_entities(nlu) and s.selected_doctor_id:
        return _offer_more_slots(turn)  # "outros horários", "tem mais tarde?": the next ones, not "não entendi"
    if intent == Intent.AGUARDAR or (intent == Intent.DESPEDIDA and at_summary):
        # "vou ver com meu marido e te falo": the step waits, nothing is booked. "falou" / "tchau" at the summary
        # may be a yes in slang or a goodbye: neither books nor drops it, the summary stays waiting for a "sim".
        return Reply(text=T.LATER_CONFIRMING if s.current_state == S.CONFIRMING and s.flow else T.LATER)
    plan_named = {"convenio_id", "convenio", "particular"} & set(nlu.entities)
    last_plan = s.last_options.get("last") if s.current_state == S.CHOOSING_PLAN else None
    same = _SAME_PLAN.search(turn.folded) or (intent == Intent.CONFIRMAR and not _PLAN_UNNAMED.search(turn.folded))
    if last_plan and not plan_named and same:  # "o mesmo", "mesmo convênio", "sim" to "Da última vez foi pelo X"
        nlu.entities["convenio_id"], plan_named = last_plan, True
    if s.current_state == S.CHOOSING_PLAN and not plan_named and _NOT_SURE.search(turn.folded):
        turn.prefix.append(T.PLAN_NOT_SURE)  # "não sei": what each answer means, then the same question
        return _with_prefix(turn, _ask_plan(turn) or _advance(turn))
    if s.current_state == S.CHOOSING_PLAN and not plan_named:
        if intent == Intent.CONFIRMAR or _PLAN_UNNAMED.search(turn.folded):
            return _ask_plan(turn, which=True) or _advance(turn)  # "é convênio", "tenho sim": which one
    # At the summary, "a data" / "quero mudar o horário" / "outro médico" reopen that step of this booking.
    changing = _field_to_change(turn) if intent not in {Intent.CANCELAR, Intent.CONFIRMAR} else None
    row_of_change_list = s.last_options.get("kind") in {"change", "no_slots"} and (
        turn.option_id or nlu.entities.get("opcao")
    )
    if changing and (row_of_change_list or not _has_booking_entities(nlu)):
        if changing == "plan" and s.flow != FLOW_BOOK:
            turn.prefix.append(T.RESCHEDULE_KEEPS_PAYMENT.format(payment=_payment(s, _doctor(s.selected_doctor_id))))
        else:
            if changing == "doctor" and s.flow == FLOW_BOOK and _THE_OTHER_DOCTOR.search(turn.folded):
                turn.full_doctor = s.selected_doctor_id  # "não, com a outra médica": the others, not her
            _reopen(s, changing)
        return _advance(turn)
    # "cancelar" while booking gives up this booking; "cancelar minha consulta de sexta" means a booked one.
    booking_now = s.flow == FLOW_BOOK and s.current_state in BOOKING_STATES | {S.COLLECTING_PATIENT_INFO}
    told = turn.folded
    booked_meant = _EXISTING_APPOINTMENT.search(told) or _ALL_OF_THEM.search(told)  # "cancelar tudo"
    abandon = intent == Intent.CANCELAR and booking_now and not booked_meant
    if intent in {Intent.CANCELAR, Intent.REMARCAR} and not abandon:
        return _start_manage(turn, FLOW_CANCEL if intent == Intent.CANCELAR else FLOW_RESCHEDULE)
    if intent == Intent.CANCELAR:
        _flow_reset(s)
        return Reply(text=T.BOOKING_ABANDONED)
    if intent == Intent.MEUS_AGENDAMENTOS and s.flow == FLOW_BOOK and s.selected_doctor_id and _WHO_WITH.search(told):
        # "a consulta é com quem?" while booking: this booking's doctor, then the step it interrupted
        doctor = _doctor(s.selected_doctor_id)
        return _answer_then_resume(turn, T.BOOKING_WITH.format(doctor=doctor["nome"])) or _advance(turn)
    if intent == Intent.MEUS_AGENDAMENTOS:
        return _list_appointments(turn)
    if not s.flow and intent not in _ACTIONS - {Intent.AGENDAR} and _tells_a_need(nlu):
        return _answer_need(turn)  # "estou com dor nas costas", "vocês têm neurologista?"
    # A question that carries a date is a booking ("tem vaga sábado?"), unless it asks when the clinic is open. A
    # question on a topic that names an offered row ("quanto custa com o dr. Gustavo?" after a list) is a question.
    topic = nlu.entities.get("topico")
    scheduling = _has_booking_entities(nlu, _SCHEDULING_KEYS - {"opcao"} if topic else _SCHEDULING_KEYS)
    if intent == Intent.PERGUNTA and (topic in _NEVER_A_BOOKING or not scheduling):
        return _answer_question(turn)
    if intent == Intent.VOLTAR:
        _go_back(s)
        return _advance(turn) if s.flow else _menu(s, T.MENU_AGAIN)

    if s.current_state == S.MANAGING_APPOINTMENT or (s.flow == FLOW_CANCEL and s.current_state == S.CONFIRMING):
        return _manage_step(turn)

    if s.current_state == S.CONFIRMING and s.flow in {FLOW_BOOK, FLOW_RESCHEDULE} and not _has_booking_entities(nlu):
        if intent == Intent.CONFIRMAR and s.last_options.get("kind") in {"change", "after_warning"}:
            # "ok" to "O que você quer alterar?", or to an emergency warning, is no "sim" to the booking: the
            # summary again
            return _advance(turn)
        shown = s.last_options.get("payment")
        if intent == Intent.CONFIRMAR and shown and shown != _payment(s, _doctor(s.selected_doctor_id)):
            turn.prefix.append(T.PRICE_CHANGED)  # the clinic changed the price since the summary: shown again
            return _advance(turn)
        if intent == Intent.CONFIRMAR:
            return _book(turn) if s.flow == FLOW_BOOK else _reschedule(turn)
        if intent == Intent.NEGAR:
            return _what_to_change(s)

    asked_name = s.current_state == S.COLLECTING_PATIENT_INFO and s.last_options.get("kind") == "name"
    if asked_name and not nlu.entities.get("nome"):
        if intent == Intent.CONFIRMAR:
            s.patient_name, s.name_confirmed = s.last_options["hint"], True
            s.last_options = {}
            return _advance(turn)
        if intent == Intent.NEGAR:
            s.last_options = {}
            s.patient_name, s.name_confirmed = "", False
            return Reply(text=T.ASK_NAME)

    if not s.flow and s.last_options.get("offer") in {"handoff", "book"} and _TAKES_OFFER.match(turn.folded):
        intent = Intent.CONFIRMAR  # "quero", "por favor", "pode transferir" to "Posso transferir...?"
    if not s.flow and s.last_options.get("offer") == "handoff" and intent in {Intent.CONFIRMAR, Intent.NEGAR}:
        s.last_options = {}  # "sim" to "Posso transferir para um atendente, se preferir."
        return _handoff(turn, T.HANDOFF) if intent == Intent.CONFIRMAR else _menu(s, T.MENU_AGAIN)
    if not s.flow and s.last_options.get("offer") == "book" and intent in {Intent.CONFIRMAR, Intent.NEGAR}:
        if intent == Intent.NEGAR:
            after_booking, s.last_options = s.last_options.get("after_booking"), {}
            return Reply(text=T.NO_NEXT_BOOKING if after_booking else T.BOOKING_ABANDONED)
        intent = Intent.AGENDAR  # "sim" to "Quer marcar uma consulta?"
        if s.last_options.get("para_quem") and not nlu.entities.get("para_quem"):
            nlu.entities["para_quem"] = s.last_options["para_quem"]
        if s.last_options.get("medico_id") and not nlu.entities.get("medico_id"):  # the waitlist's free time
            nlu.entities["medico_id"] = s.last_options["medico_id"]
    offered_doctors = [i["id"] for i in s.last_options.get("items", []) if str(i.get("id", "")).startswith("doctor:")]
    if s.current_state == S.SELECTING_DOCTOR and offered_doctors and _CHEAPEST.search(turn.folded):
        # "a mais barata": the offered doctor with the lowest private price
        doctors = [d for d in (_doctor(int(i.partition(":")[2])) for i in offered_doctors) if d]
        if doctors:
            nlu.entities["medico_id"] = min(doctors, key=lambda d: d["preco_consulta"] or 0)["id"]
            intent = Intent.INFORMAR
    dated = _has_booking_entities(nlu, frozenset({"data", "hora", "a_partir_de"}))
    if not s.flow and (intent == Intent.AGENDAR or (dated and intent in {Intent.PERGUNTA, Intent.INFORMAR})):
        _carry_question_subject(turn)  # "a dra beatriz atende unimed?" then "e tem horário quinta?": her, by Unimed
    if intent == Intent.AGENDAR and not s.flow and _wants_an_exam(turn):
        s.last_options = {"offer": "handoff"}  # "Se quiser, digite *atendente*": a "sim" transfers
        return Reply(text=_exam_booking_answer(turn))  # the bot books consultations; exams go through the desk
    changed = _merge_entities(turn)
    if intent == Intent.AGENDAR or (changed and s.flow == ""):
        if s.flow not in {FLOW_BOOK, FLOW_RESCHEDULE}:
            limit = settings.PATIENT_MAX_OPEN_APPOINTMENTS
            if len(selectors.appointments_upcoming_for_phone(s.phone_number, now=turn.now)) >= limit:
                _flow_reset(s)  # said now, not after the whole flow and a "sim" (the booking would refuse it)
                return Reply(text=clinic_services.TOO_MANY_OPEN_MESSAGE.format(limit=limit))
            s.flow = FLOW_BOOK
            turn.new_booking = True
            availability = _availability_line(turn) if "?" in turn.text else None
            if availability:  # "tem horário amanhã com cardiologista?": answered before the name is asked
                turn.prefix.append(availability)
            turn.prefix.extend(_side_questions(turn))  # "tem clínico geral hoje de manhã? quanto é?": the price too
        return _advance(turn)
    if s.flow:
        if not changed and intent == Intent.DESPEDIDA:  # "tchau" mid-flow: let the patient go, nothing booked
            _flow_reset(s)
            return Reply(text=T.BOOKING_ABANDONED)
        if not changed and intent == Intent.AGRADECIMENTO:  # "obrigada" is no failed answer to the step
            turn.prefix.append(T.YOU_ARE_WELCOME)
            return _advance(turn)
        if not changed:
            nothing_chosen = not (s.patient_name or s.selected_specialty_id or s.selected_doctor_id)
            if intent == Intent.NEGAR and nothing_chosen and s.flow == FLOW_BOOK:
                _flow_reset(s)  # "não, obrigado" to the first question: nothing to change, the booking ends
                return Reply(text=T.BOOKING_ABANDONED)
            if intent == Intent.NEGAR:
                return _what_to_change(s)
            nothing_usable = intent in {Intent.DESCONHECIDO, Intent.INFORMAR, Intent.CONFIRMAR}
            # "a dra. Ana" when she is already chosen; "neurologista", which the clinic lacks, or another complaint
            # (both said in the prefix)
            answered = (
                _repeats_selection(nlu, s)
                or _missing_specialty(nlu.entities)
                or nlu.entities.get("sintoma")
                or nlu.entities.get("data_invalida")  # said in the prefix
                or nlu.entities.get("para_quem") not in {None, "eu"}  # "é pro meu filho": his name is asked
                or turn.ruled_out  # "menos segunda": the list without Mondays
            )
            if nothing_usable and not answered:
                turn.understood = False
                turn.prefix.append(_not_understood_for_state(s))
        return _advance(turn)

    if intent == Intent.SAUDACAO:
        return _menu(s, T.GREETING.format(name=_first_name_suffix(turn), clinic=_clinic()["nome"]))
    if intent == Intent.AGRADECIMENTO:
        return Reply(text=T.THANKS)
    if intent == Intent.DESPEDIDA:
        return Reply(text=T.GOODBYE)
    if intent == Intent.PERGUNTA or (intent == Intent.INFORMAR and nlu.entities.get("exame_id")):
        return _answer_question(turn)  # "oq é o exame tsh": the exam's line
    if "?" in turn.text and intent == Intent.DESCONHECIDO and len(turn.folded.split()) >= 2:
        # "fazem teleconsulta?", "dá pra parcelar?": a question the tables do not answer gets a person offered,
        # not "não entendi"
        s.last_options = {"offer": "handoff"}
        return Reply(text=T.UNKNOWN_ANSWER)
    if intent == Intent.CONFIRMAR and turn.first_contact:  # "ok" as the first message: a hello
        return _menu(s, T.GREETING.format(name=_first_name_suffix(turn), clinic=_clinic()["nome"]))
    if intent == Intent.CONFIRMAR and not s.last_options.get("offer"):
        return Reply(text=T.ACKNOWLEDGED)  # "ok", "blz", "👍" after an answer or a booking: nothing asked or offered
    turn.understood = False
    return _menu(s, f"{T.NOT_UNDERSTOOD} {T.MENU_AGAIN}")


def _flow_reset(s: ConversationSession) -> None:
    """Clear the flow's slots on this in-memory session (saved with the rest of the turn)."""
    for name in (
        "flow",
        "previous_state",
        "insurance_type",
        "preferred_period",
        "next_patient",
    ):
        setattr(s, name, "")
    s.excluded_weekdays = []
    s.selected_specialty_id = s.selected_doctor_id = s.selected_convenio_id = s.target_appointment_id = None
    s.preferred_date = s.preferred_time = s.preferred_from = s.preferred_after = s.preferred_before = None
    s.last_options = {}
    s.current_state = S.IDLE


def _handoff(turn: _Turn, text: str) -> Reply:
    s = turn.session
    s.previous_state = s.current_state if s.current_state != S.HUMAN_HANDOFF else s.previous_state
    s.current_state = S.HUMAN_HANDOFF
    s.failed_attempts = 0
    metrics.HANDOFFS.inc()
    logger.info("session %s handed to a human", mask_phone(s.phone_number))
    hours = _clinic().get("horario_funcionamento") or ""
    # The staff answer in opening hours; the patient can always come back to the bot.
    return Reply(
        text="\n\n".join([text, *([T.HANDOFF_HOURS.format(hours=hours)] if hours else []), T.HANDOFF_WAY_BACK])
    )


_BACK_TO_BOT = re.compile(r"^\W*(?:menu|bot|robo|voltar (?:pro|ao|para o) (?:bot|robo|menu)|reiniciar|recomecar)\W*$")


def _handoff_over(s: ConversationSession, *, text: str, now: dt.datetime, inbound=None) -> bool:
    """A handed-over conversation returns to the bot when the patient asks ("menu") or after a silence of
    HANDOFF_IDLE_HOURS: a question the next day is answered, not left waiting for staff who moved on."""
    if _BACK_TO_BOT.search(fold(text)):
        return True
    idle = now - s.last_activity if s.last_activity else dt.timedelta(0)
    return idle > dt.timedelta(hours=settings.HANDOFF_IDLE_HOURS) and not _staff_awaits_answer(
        s, now=now, inbound=inbound
    )


FOLLOWUP_ANSWER_WAIT = dt.timedelta(days=7)


def _staff_awaits_answer(s: ConversationSession, *, now: dt.datetime, inbound=None) -> bool:
    """The staff sent the follow-up template (after the 24-hour window) and this is the patient's first message
    since: it answers the person, however many hours later (within FOLLOWUP_ANSWER_WAIT). Of an answer sent as a
    burst ("oi", "desculpe a demora"), stored before any of its turns ran, the first one handled is the answer:
    messages still waiting for their turn do not count against `inbound`."""
    followup = (
        ConversationMessage.objects.filter(
            followup_counts(), session_id=s.pk, created_at__gt=now - FOLLOWUP_ANSWER_WAIT
        )
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if followup is None:
        return False
    since = ConversationMessage.objects.filter(
        session_id=s.pk, message_type=ConversationMessage.MessageType.USER, pk__gt=followup
    ).exclude(channel_type__in=SILENT_TYPES)
    if inbound is None:  # a turn without a stored WhatsApp message (REST, chat): only the message it answers
        return since.count() <= 1
    waiting = [ConversationMessage.Processing.RECEIVED, ConversationMessage.Processing.PROCESSING]
    return not since.exclude(pk=inbound.pk).exclude(processing_status__in=waiting).exists()


def _reception_told(session_id: int, *, answered: bool = False) -> None:
    """A WhatsApp patient was just handed over (or, `answered`, answered the staff's follow-up template): the
    reception is e-mailed when HANDOFF_NOTIFY_EMAILS is set (a task, so in production a slow mail server never holds
    a turn; a broker failure loses the e-mail, never the turn: the admin lists them). REST and terminal turns are
    not announced: the staff cannot answer them on WhatsApp."""
    if not settings.HANDOFF_NOTIFY_EMAILS:
        return
    from api_gateway.tasks import notify_handoff

    try:
        broker.task_publish(notify_handoff, *((session_id, True) if answered else (session_id,)))
    except Exception:  # noqa: BLE001 - see the docstring
        logger.exception("could not enqueue the handoff e-mail for session %s", session_id)


def _time_given_up(phone: str, doctor_ids: Iterable[int]) -> None:
    """The patient cancelled or moved appointments with these doctors (the booking service has committed it, so
    on_commit runs at once, mid-turn): the first in line on the waitlists are told of the times now rather than at
    beat's next run, she not of her own (only with WHATSAPP_WAITLIST_TEMPLATE set; a task, so a slow Graph API never
    holds the turn in production; on the embedded default it runs inside the turn). A broker failure leaves them to
    beat's run."""
    if settings.WHATSAPP_WAITLIST_TEMPLATE:
        given_up = [[phone, doctor_id] for doctor_id in sorted(set(doctor_ids))]
        transaction.on_commit(functools.partial(_waitlist_run_start, given_up))


def _waitlist_run_start(given_up: list[list]) -> None:
    from api_gateway.tasks import notify_waitlist

    try:
        broker.task_publish(notify_waitlist, *given_up)
    except Exception:  # noqa: BLE001 - see _time_given_up
        logger.exception("could not enqueue the waitlist run after %s gave a time up", mask_phone(given_up[0][0]))


def release_to_bot(s: ConversationSession) -> None:
    """End a human handoff: the bot answers again, from the menu (a booking left before the handoff is dropped)."""
    _flow_reset(s)
    s.previous_state = S.HUMAN_HANDOFF
    s.failed_attempts = 0


def _buttons(s: ConversationSession, kind: str, text: str, options: list[Option]) -> Reply:
    """Reply buttons, remembered so a typed "1"/"2" on the numbered text fallback means the same."""
    s.last_options = {"kind": kind, "items": [{"id": o.id, "title": o.title} for o in options]}
    return Reply(text=text, kind="buttons", options=options)


def _menu(s: ConversationSession, text: str) -> Reply:
    options = [
        Option("menu:agendar", T.BUTTON_BOOK),
        Option("menu:duvidas", T.BUTTON_QUESTIONS),
        Option("menu:atendente", T.BUTTON_HUMAN),
    ]
    return _buttons(s, "menu", text, options)


def _first_name_suffix(turn: _Turn) -> str:
    name = turn.session.patient_name if turn.session.name_confirmed else ""
    return f", {name.split()[0]}" if name else ""


_SCHEDULING_KEYS = frozenset({"data", "hora", "opcao", "option_id", "nome"})
_SLOT_KEYS = _SCHEDULING_KEYS | {"especialidade_id", "medico_id", "convenio_id", "particular"}


def _has_booking_entities(nlu: NLUResult, keys: frozenset = _SLOT_KEYS) -> bool:
    """A question naming a doctor or specialty is still a question; one naming a date or time is a booking."""
    return bool(keys & {k for k, v in nlu.entities.items() if v not in (None, "", False)})


_OTHER_DOCTOR = re.compile(r"(?<![a-z])outr[oa] (?:medic[oa]|doutor[a]?|profissional)(?![a-z])")
# "pode ser com outro", the whole answer when the doctor has no free time and another doctor was offered
_ANOTHER_ONE = re.compile(
    r"^(?:(?:sim|pode ser|quero|prefiro|ok|entao|tem)\W+)*(?:com |um |uma |o |a )?outr[oa]"
    r"(?: (?:medic[oa]|doutor[a]?|profissional))?(?: (?:entao|mesmo|por favor))?\W*$"
)
_REFUSES_ANOTHER = re.compile(r"(?<![a-z])(?:nao|nem)(?: \w+){0,3} outr[oa] (?:medic[oa]|doutor[a]?|profissional)")
_ALSO = re.compile(r"(?<![a-z])(?:tambem|tb|tbm|alem disso|e ainda)(?![a-z])")
# The answer to "o nome, a data, o horário ou o médico?" may be the bare word: "data", "mudar horário".
_BARE_FIELD = r"|^\s*(?:(?:quero |queria )?(?:mudar|trocar|alterar|corrigir) )?(?:{words})\s*[.!]?\s*$"
_FIELDS_TO_CHANGE = (
    (
        "name",
        re.compile(
            r"(?<![a-z])(?:o|outro|de|meu) nome(?![a-z])|nome (?:errado|do paciente)" + _BARE_FIELD.format(words="nome")
        ),
    ),
    (
        "doctor",
        re.compile(
            r"(?<![a-z])(?:o|a|outr[oa]|de) (?:medic[oa]|doutor[a]?|profissional)(?![a-z])"
            + _BARE_FIELD.format(words="medic[oa]|doutor[a]?")
        ),
    ),
    (
        "date",
        re.compile(
            r"(?<![a-z])(?:a|outra|de) data(?![a-z])|(?<![a-z])(?:o|outro|de) dia(?![a-z])"
            + _BARE_FIELD.format(words="data|dia")
        ),
    ),
    (
        "time",
        re.compile(
            r"(?<![a-z])(?:o|outro|de) horario(?![a-z])|(?<![a-z])(?:a|outra|de) hora(?![a-z])"
            + _BARE_FIELD.format(words="horario|hora")
        ),
    ),
    (
        "plan",
        re.compile(
            r"(?<![a-z])(?:o|outro|de) (?:convenio|plano)(?![a-z])|forma de pagamento"
            + _BARE_FIELD.format(words="convenio|plano|pagamento|convenio/particular")
        ),
    ),
)


def _what_to_change(s: ConversationSession) -> Reply:
    """ "Alterar": which part, as a list, so a typed "1" means "o nome" and never the summary's "Confirmar"."""
    rows = [("name", T.CHANGE_NAME), ("date", T.CHANGE_DATE), ("time", T.CHANGE_TIME), ("doctor", T.CHANGE_DOCTOR)]
    if s.flow == FLOW_BOOK:  # a moved appointment keeps how it is paid
        rows.append(("plan", T.CHANGE_PLAN))
    s.last_options = {"kind": "change", "items": [{"id": f"change:{key}", "title": title} for key, title in rows]}
    options = [Option(f"change:{key}", title) for key, title in rows]
    fields = T.CHANGE_FIELDS_BOOKING if s.flow == FLOW_BOOK else T.CHANGE_FIELDS_MOVE
    return Reply(
        text=T.WHAT_TO_CHANGE.format(fields=fields), kind="list", button_label=T.BUTTON_CHANGE, options=options
    )


def _field_to_change(turn: _Turn) -> str | None:
    """Which part of the summary the patient wants to change ("name", "doctor", "date", "time"), if any; also
    "doctor" when another doctor is asked for while this one's times are offered."""
    s = turn.session
    text, kind = turn.folded, s.last_options.get("kind")
    if kind == "change" and s.current_state == S.CONFIRMING or kind == "no_slots":
        picked = turn.option_id or ""
        items, row = s.last_options.get("items", []), turn.nlu.entities.get("opcao")
        if not picked and isinstance(row, int) and 1 <= row <= len(items):
            picked = items[row - 1]["id"]
        if picked.startswith("change:"):
            return picked.partition(":")[2]
    picking = s.current_state in {S.CHOOSING_DATE, S.CHOOSING_TIME} and s.flow in {FLOW_BOOK, FLOW_RESCHEDULE}
    asks = _OTHER_DOCTOR.search(text) and not _REFUSES_ANOTHER.search(text)  # not "não quero outro médico"
    if picking and (asks or kind == "no_slots" and _ANOTHER_ONE.search(text)):
        return "doctor"  # "prefiro outro médico" while the times of this one are on screen, "com outro" at none
    if s.current_state != S.CONFIRMING or s.flow not in {FLOW_BOOK, FLOW_RESCHEDULE}:
        return None
    for name, pattern in _FIELDS_TO_CHANGE:
        if pattern.search(text):
            return name
    return None


def _reopen(s: ConversationSession, field_name: str) -> None:
    if field_name == "name":
        s.patient_name, s.name_confirmed = "", False
        return
    if field_name == "plan":  # asked again; a doctor who does not take the new plan is said so and replaced
        s.selected_convenio_id, s.insurance_type = None, ""
        return
    if field_name == "doctor":
        s.selected_doctor_id = None
    if field_name in {"doctor", "date"}:
        s.preferred_date = None
    s.preferred_time = None


def _repeats_selection(nlu: NLUResult, s: ConversationSession) -> bool:
    """The message names what is already chosen: understood, nothing to change."""
    e = nlu.entities
    chosen = {
        "medico_id": s.selected_doctor_id,
        "especialidade_id": s.selected_specialty_id,
        "convenio_id": s.selected_convenio_id,
    }
    if e.get("particular") and s.insurance_type == "particular":
        return True  # "ok, pode ser particular então" after a plan we do not take
    return any(e.get(key) is not None and str(e[key]) == str(value) for key, value in chosen.items() if value)


def _not_understood_for_state(s: ConversationSession) -> str:
    if s.current_state == S.SELECTING_SPECIALTY:
        return T.SPECIALTY_NOT_FOUND
    return T.NOT_UNDERSTOOD


# --- slot filling -----------------------------------------------------------------------------------------------


def _merge_entities(turn: _Turn) -> bool:
    """Copy what the patient said into the session's slots. Returns whether anything changed."""
    s, e = turn.session, dict(turn.nlu.entities)
    before = _slots(s)
    _resolve_option(turn, e)

    name = (e.get("nome") or "").strip()
    if name:  # the NLU only reports a name the patient stated ("meu nome é ...", or when asked for it)
        s.patient_name, s.name_confirmed = name[:200], True
        if s.last_options.get("kind") == "name":
            s.last_options = {}

    plan_said = e.get("convenio_id") or e.get("particular") or e.get("convenio")
    if plan_said and s.flow == FLOW_RESCHEDULE:  # a moved appointment keeps how it is paid (the service keeps it)
        turn.prefix.append(T.RESCHEDULE_KEEPS_PAYMENT.format(payment=_payment(s, _doctor(s.selected_doctor_id))))
    elif e.get("convenio_id") and _by_id(_catalog()["convenios"], e["convenio_id"]):
        s.selected_convenio_id = int(e["convenio_id"])
        s.insurance_type = e.get("convenio") or _plan_name(s.selected_convenio_id)
    elif e.get("particular"):
        full = s.last_options.get("full") if s.last_options.get("kind") in _FULL_AGENDA_KINDS else None
        if full and full == s.selected_doctor_id and s.selected_convenio_id:
            s.selected_doctor_id, turn.full_doctor = None, full  # "é só dizer *particular*": the others, not him
        s.selected_convenio_id, s.insurance_type = None, "particular"
    elif e.get("convenio"):  # "tenho hapvida": a plan the clinic does not take; the booking goes on as private
        turn.prefix.append(T.PLAN_NOT_TAKEN_BOOKING.format(plan=e["convenio"]))
        s.selected_convenio_id, s.insurance_type = None, "particular"

    if not _by_id(_catalog()["especialidades"], e.get("especialidade_id")):
        e.pop("especialidade_id", None)
    if _missing_specialty(e):  # mid-flow "quero neurologista": the step's question (and list) follows
        turn.prefix.append(T.SPECIALTY_MISSING.format(specialty=e["especialidade"]))
    also = e.get("sintoma") and s.flow and s.selected_specialty_id and _ALSO.search(turn.folded)
    if also and e.get("especialidade_id") and int(e["especialidade_id"]) != s.selected_specialty_id:
        # "também tô com dor de cabeça" at the summary of an Ortopedia booking: another need, not a new choice
        turn.prefix.append(T.COMPLAINT_ALSO.format(complaint=e["sintoma"], specialty=e["especialidade"]))
        e.pop("especialidade_id")
    if e.get("especialidade_id") and int(e["especialidade_id"]) != s.selected_specialty_id:
        s.selected_specialty_id = int(e["especialidade_id"])
        if e.get("sintoma"):
            turn.prefix.append(T.COMPLAINT_SPECIALTY.format(complaint=e["sintoma"], specialty=e["especialidade"]))
        doctor = _doctor(s.selected_doctor_id) if s.selected_doctor_id else None
        if doctor and s.selected_specialty_id not in doctor["especialidade_ids"] and not e.get("medico_id"):
            s.selected_doctor_id = None
            s.preferred_time = None

    if e.get("medico") and not e.get("medico_id"):  # "quero marcar com a dra patricia"
        turn.prefix.append(_doctor_unknown(e["medico"]))
    if e.get("medico_id") and int(e["medico_id"]) != s.selected_doctor_id:
        doctor = _doctor(int(e["medico_id"]))
        if doctor and s.flow == FLOW_RESCHEDULE and s.selected_specialty_id not in doctor["especialidade_ids"]:
            # moving a Clínica Geral visit to a cardiologist is another consultation, not the same one moved
            specialty = _specialty_name(s.selected_specialty_id)
            turn.prefix.append(T.RESCHEDULE_OTHER_SPECIALTY.format(doctor=doctor["nome"], specialty=specialty))
            doctor = None
        moving_plan = s.selected_convenio_id if s.flow == FLOW_RESCHEDULE else None
        if doctor and moving_plan and moving_plan not in doctor["convenio_ids"]:
            turn.prefix.append(T.RESCHEDULE_OTHER_PLAN.format(doctor=doctor["nome"], plan=_plan_name(moving_plan)))
            doctor = None
        if doctor:
            s.selected_doctor_id = doctor["id"]
            turn.doctor_chosen = True
            if s.selected_specialty_id not in doctor["especialidade_ids"]:
                s.selected_specialty_id = doctor["especialidade_ids"][0] if doctor["especialidade_ids"] else None

    if (
        s.flow == FLOW_BOOK
        and s.selected_doctor_id
        and not e.get("medico_id")
        and _THE_OTHER_DOCTOR.search(turn.folded)
    ):
        # "não, com a outra dermatologista": the specialty's other doctor (or the others, him left out)
        specialty_doctors = selectors.doctor_list(especialidade_id=s.selected_specialty_id)
        others = [d for d in specialty_doctors if d["id"] != s.selected_doctor_id]
        turn.full_doctor = s.selected_doctor_id
        s.selected_doctor_id = others[0]["id"] if len(others) == 1 else None
        turn.doctor_chosen = len(others) == 1
        if turn.doctor_chosen:
            turn.prefix.append(T.DOCTOR_SWITCHED.format(doctor=others[0]["nome"]))

    wanted_date, wanted_time = _wanted_moment(e)
    moving = s.flow == FLOW_RESCHEDULE and s.target_appointment_id
    if moving and wanted_time is None and _SAME_TIME.search(turn.folded):  # "mesmo horário na sexta"
        appointment = _own_appointment(s)
        wanted_time = appointment.hora if appointment else None
    if e.get("data_invalida"):  # "30/02": said, never moved to a day the patient did not name
        turn.prefix.append(T.DATE_INVALID.format(date=e["data_invalida"]))
    said = e.get("dia_semana")
    if wanted_date and isinstance(said, int) and 0 <= said <= 6 and said != wanted_date.weekday():
        turn.prefix.append(  # "sexta dia 10" when the 10th is a Thursday: the 10th, and which day it is
            T.WEEKDAY_MISMATCH.format(
                date=f"{wanted_date:%d/%m}", weekday=T.WEEKDAYS[wanted_date.weekday()], said=T.WEEKDAYS_BARE[said]
            )
        )
    turn.ruled_out = _weekdays_ruled_out(e)
    if turn.ruled_out:  # kept for the flow: "terça ou quinta" in the first message still counts at the times
        s.excluded_weekdays = sorted(turn.ruled_out)
    elif wanted_date and wanted_date.weekday() in s.excluded_weekdays:
        s.excluded_weekdays = []  # "dia 14" said after "terça ou quinta": that day, whatever its weekday
    if turn.ruled_out and s.preferred_date and s.preferred_date.weekday() in turn.ruled_out:
        s.preferred_date = s.preferred_time = None  # "sexta não dá" over Friday's times: the other days
    wanted_from = _wanted_from(e)
    if not (wanted_from or wanted_date) and s.flow == FLOW_BOOK and _OTHER_WEEK.search(turn.folded):
        # "dá pra ser outra semana?": the week after the times listed (or after this one)
        shown = [
            dt.datetime.fromisoformat(i["id"].partition(":")[2]).date()
            for i in s.last_options.get("items", [])
            if str(i.get("id", "")).startswith("slot:")
        ]
        base = min(shown) if shown else timezone.localtime(turn.now).date()
        wanted_from = base + dt.timedelta(days=7 - base.weekday())
    if wanted_from:  # "semana que vem": any day from then on; a day named later narrows it
        s.preferred_from, s.preferred_date = wanted_from, None
        wanted_date = wanted_date if wanted_date != wanted_from else None  # Gemini may call it a day
    if wanted_date and s.preferred_from and 0 < (s.preferred_from - wanted_date).days < 7:
        wanted_date += dt.timedelta(days=7)  # "quarta" after "semana que vem" is that week's Wednesday
    earliest, latest = _wanted_bounds(e)
    if earliest or latest:  # "depois das 17h": a window, not a time; it replaces the period unless both were said
        s.preferred_after, s.preferred_before = earliest, latest
        s.preferred_period = e.get("periodo") or ""
        wanted_time = None if wanted_time in {earliest, latest} else wanted_time  # Gemini may call a bound a time
    elif e.get("periodo") in {"manha", "tarde", "noite"}:
        s.preferred_after = s.preferred_before = None
    s.preferred_date = wanted_date or s.preferred_date
    s.preferred_time = wanted_time or s.preferred_time
    if (earliest or latest) and s.preferred_time and not _in_window(s, s.preferred_time):
        s.preferred_time = None
    if e.get("periodo") in {"manha", "tarde", "noite"}:
        s.preferred_period = e["periodo"]
        # "de tarde" at the summary of a 09:00 slot: a time in that period is wanted instead.
        if s.preferred_time and not wanted_time and s.preferred_date:
            if not _in_period(_aware(s.preferred_date, s.preferred_time), s.preferred_period):
                s.preferred_time = None
    if _AS_LATE_AS_POSSIBLE.search(turn.folded) and not wanted_time:
        # "segunda o mais tarde possível": the last times of the day, whatever part of the day was said before
        turn.latest = True
        s.preferred_period, s.preferred_after, s.preferred_before, s.preferred_time = "", None, None, None
    return _slots(s) != before or turn.latest


def _wanted_moment(e: dict) -> tuple[dt.date | None, dt.time | None]:
    """The date and time the NLU read in this message, when they are valid."""
    wanted_date, wanted_time = _iso_date(e.get("data")), None
    try:
        wanted_time = dt.time.fromisoformat(str(e["hora"])) if e.get("hora") else None
    except ValueError:
        pass
    return wanted_date, wanted_time


def _iso_date(value: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _wanted_bounds(e: dict) -> tuple[dt.time | None, dt.time | None]:
    bounds = []
    for key in ("depois_de", "antes_de"):
        try:
            bounds.append(dt.time.fromisoformat(str(e[key])) if e.get(key) else None)
        except ValueError:
            bounds.append(None)
    return bounds[0], bounds[1]


def _wanted_from(e: dict) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(e["a_partir_de"])) if e.get("a_partir_de") else None
    except ValueError:
        return None


def _slots(s: ConversationSession) -> tuple:
    return (
        s.patient_name,
        s.selected_specialty_id,
        s.selected_doctor_id,
        s.selected_convenio_id,
        s.insurance_type,
        s.preferred_date,
        s.preferred_time,
        s.preferred_period,
        s.preferred_after,
        s.preferred_before,
        s.preferred_from,
        s.target_appointment_id,
    )


def _resolve_option(turn: _Turn, e: dict) -> None:
    """'o primeiro', 'com ele', a tapped list row: map it onto the options offered last."""
    s = turn.session
    option_id = e.pop("option_id", None) or turn.option_id
    offered = s.last_options or {}
    items = offered.get("items", [])
    if not option_id and items:
        index = e.get("opcao")
        if isinstance(index, int) and 1 <= index <= len(items):
            option_id = items[index - 1]["id"]
        elif e.get("referencia") and len(items) >= 1 and offered.get("kind") == "doctor":
            option_id = items[0]["id"] if len(items) == 1 else None
    if not option_id and e.get("qualquer_medico") and offered.get("kind") == "doctor" and items:
        option_id = _first_free_doctor(turn, [i["id"] for i in items])  # "tanto faz": whoever is free first
    if not option_id and e.get("referencia") and offered.get("doctor") and not e.get("medico_id"):
        option_id = f"doctor:{offered['doctor']}"  # "quero marcar com ele" after a question about one doctor
    if not option_id:
        return
    kind, _, value = option_id.partition(":")
    # Ids come back from the patient's phone: trust only those that still name a row of the clinic's tables.
    if kind == "specialty" and value.isdigit() and _by_id(_catalog()["especialidades"], value):
        e.setdefault("especialidade_id", int(value))
    elif kind == "plan" and value == "particular":
        e.setdefault("particular", True)
    elif kind == "plan" and value.isdigit() and _by_id(_catalog()["convenios"], value):
        e.setdefault("convenio_id", int(value))
    elif kind == "doctor" and value.isdigit() and _doctor(int(value)):
        e.setdefault("medico_id", int(value))
    elif kind == "slot":
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return
        e["data"], e["hora"] = when.date().isoformat(), when.strftime("%H:%M")
    elif kind == "appointment" and value.isdigit():
        own = {a.pk for a in selectors.appointments_upcoming_for_phone(s.phone_number, now=turn.now)}
        if int(value) in own:
            s.target_appointment_id = int(value)


def _first_free_doctor(turn: _Turn, option_ids: list[str]) -> str | None:
    """Of the doctors offered, the one with the earliest free time (on the day asked, if one was)."""
    s, first = turn.session, None
    start = s.preferred_date or timezone.localtime(turn.now).date()
    days = 1 if s.preferred_date else settings.SLOT_SEARCH_DAYS
    for option_id in option_ids:
        kind, _, value = option_id.partition(":")
        if kind != "doctor" or not value.isdigit():
            continue
        free = selectors.slot_list_free(medico_id=int(value), start=start, days=days, now=turn.now)
        if free and (first is None or free[0] < first[0]):
            first = (free[0], option_id)
    return first[1] if first else (option_ids[0] if option_ids else None)


def _go_back(s: ConversationSession) -> None:
    if s.preferred_time:
        s.preferred_time = None
    elif s.preferred_date:
        s.preferred_date = None
    elif s.selected_doctor_id:
        s.selected_doctor_id = None
        plan = s.selected_convenio_id
        doctors = selectors.doctor_list(especialidade_id=s.selected_specialty_id) if s.selected_specialty_id else []
        if len([d for d in doctors if not plan or plan in d["convenio_ids"]]) <= 1:
            _go_back(s)  # the only doctor was chosen for the patient: back is the step before
    elif s.insurance_type and s.flow == FLOW_BOOK:
        s.selected_convenio_id, s.insurance_type = None, ""
    elif s.selected_specialty_id:
        s.selected_specialty_id = None


# --- the booking steps --------------------------------------------------------------------------------------------


def _advance(turn: _Turn) -> Reply:
    """Ask for the first missing or invalid slot, or show the summary to confirm."""
    return _with_prefix(turn, _next_step(turn))


def _with_prefix(turn: _Turn, reply: Reply) -> Reply:
    """Put what this turn had to say first (a rejected plan, a taken slot) above the next question."""
    if turn.prefix:
        reply.text = "\n\n".join([*turn.prefix, reply.text])
        turn.prefix = []
    return reply


def _next_step(turn: _Turn) -> Reply:
    s = turn.session
    relative = turn.nlu.entities.get("para_quem")  # "pro meu filho": neither the sender's nor a past name
    if relative and turn.new_booking and not turn.nlu.entities.get("nome"):
        s.patient_name, s.name_confirmed = "", False  # "pra mim" too: the last booking may have been a child's
    elif relative and relative != "eu" and not turn.nlu.entities.get("nome") and _WHO_CORRECTED.search(turn.folded):
        s.patient_name, s.name_confirmed = "", False  # "ah, na verdade é pro meu filho" at the summary
    if s.flow == FLOW_BOOK and (turn.nlu.entities.get("tambem_para") or relative in T.OTHER_RELATIVE):
        s.next_patient = turn.nlu.entities.get("tambem_para") or relative  # offered once this booking is done
    relative = None if relative == "eu" else relative
    if s.patient_name and turn.new_booking and not turn.nlu.entities.get("nome"):
        # A new booking by a number we know: the last appointment may have been a relative's.
        s.current_state = S.COLLECTING_PATIENT_INFO
        options = [Option("name:yes", T.BUTTON_YES), Option("name:no", T.BUTTON_NO)]
        reply = _buttons(s, "name", T.CONFIRM_PROFILE_NAME.format(name=s.patient_name), options)
        s.last_options["hint"] = s.patient_name
        return reply
    if not s.patient_name:
        s.current_state = S.COLLECTING_PATIENT_INFO
        hint = "" if relative else turn.profile_name.strip()
        if hint and s.last_options.get("kind") != "name":
            options = [Option("name:yes", T.BUTTON_YES), Option("name:no", T.BUTTON_NO)]
            reply = _buttons(s, "name", T.CONFIRM_PROFILE_NAME.format(name=hint), options)
            s.last_options["hint"] = hint
            return reply
        answered = turn.nlu.intent in {Intent.INFORMAR, Intent.DESCONHECIDO} and turn.nlu.source != RESUME_SOURCE
        # whose name was asked ("do seu filho"), kept through a failed answer and a side question
        asked_whose = s.last_options.get("whose") if s.last_options.get("kind") == "ask_name" else None
        if turn.nlu.entities.get("para_quem") == "eu":
            asked_whose = None  # "na verdade é pra mim"
        if s.current_state == S.COLLECTING_PATIENT_INFO and answered and not relative:
            if not turn.nlu.entities.get("nome") and s.last_options.get("kind") == "ask_name":
                if asked_whose:  # "pediatria" answering "Qual é o nome do seu filho?"
                    return Reply(text=T.ASK_RELATIVE_NAME_AGAIN.format(whose=asked_whose))
                return Reply(text=T.ASK_NAME_AGAIN)
        s.last_options = {"kind": "ask_name", "items": []}
        if asked_whose and not relative:  # the step asked again after "quanto custa pediatria?": still his name
            s.last_options["whose"] = asked_whose
            return Reply(text=T.ASK_RELATIVE_NAME.format(whose=asked_whose))
        if relative:  # "é pro meu filho" answering "qual é o seu nome?": his name, not a failed answer
            whose = T.RELATIVES.get(relative, "do paciente")
            s.last_options["whose"] = whose
            text = T.ASK_RELATIVE_NAME.format(whose=whose)
            second = turn.nlu.entities.get("tambem_para")
            if second:  # "pra mim e pro meu filho"
                then = "sua" if second == "eu" else T.RELATIVES.get(second, "do outro paciente")
                text = f"{T.ONE_AT_A_TIME.format(first=whose, then=then)}\n\n{text}"
            return Reply(text=text)
        # "o nome" at the summary: the rest is chosen, so not "Para começar, ..."
        return Reply(text=T.ASK_PATIENT_NAME if s.selected_doctor_id else T.ASK_NAME)

    if s.selected_doctor_id is None and s.selected_specialty_id is None:
        return _offer_specialties(turn)
    if s.flow == FLOW_BOOK and not s.insurance_type:
        reply = _ask_plan(turn)
        if reply is not None:
            return reply
    if s.selected_doctor_id is None:
        reply = _offer_doctors(turn)
        if reply is not None:
            return reply

    doctor = _doctor(s.selected_doctor_id)
    if doctor is None:  # deactivated since it was chosen
        s.selected_doctor_id = None
        return _next_step(turn)
    if s.selected_convenio_id and s.selected_convenio_id not in doctor["convenio_ids"]:
        plan = _plan_name(s.selected_convenio_id)
        if turn.doctor_chosen and not turn.nlu.entities.get("convenio_id"):
            # The doctor was chosen now, the plan earlier (maybe only asked about): the choice made now wins.
            turn.prefix.append(
                T.DOCTOR_KEPT_PRIVATE.format(doctor=doctor["nome"], plan=plan, price=T.money(doctor["preco_consulta"]))
            )
            s.selected_convenio_id, s.insurance_type = None, "particular"
            return _next_step(turn)
        turn.prefix.append(T.DOCTOR_REJECTS_PLAN.format(doctor=doctor["nome"], plan=plan))
        s.selected_doctor_id = None
        reply = _offer_doctors(turn, or_private=doctor)
        if reply is not None:
            return reply
        doctor = _doctor(s.selected_doctor_id)
    if s.selected_specialty_id not in doctor["especialidade_ids"]:
        s.selected_specialty_id = doctor["especialidade_ids"][0]

    today = timezone.localtime(turn.now).date()
    if s.preferred_date and s.preferred_date < today:
        s.preferred_date = None
        turn.prefix.append(T.DATE_IN_PAST)
    last_day = selectors.booking_last_day(turn.now)
    if (s.preferred_date and s.preferred_date > last_day) or (s.preferred_from and s.preferred_from > last_day):
        s.preferred_date = s.preferred_from = None  # "daqui a 2 anos", "10/03/2028", "em julho" past the horizon
        turn.prefix.append(clinic_services.TOO_FAR_MESSAGE.format(date=f"{last_day:%d/%m/%Y}"))
    if s.preferred_date is None:
        return _offer_next_slots(turn, doctor, T.ASK_DATE.format(doctor=doctor["nome"]))
    if s.preferred_time is None:
        return _offer_times_on_date(turn, doctor)

    when = _aware(s.preferred_date, s.preferred_time)
    if not selectors.slot_is_free(medico_id=doctor["id"], when=when, now=turn.now):
        s.preferred_time = None
        return _offer_times_on_date(turn, doctor, refused=when)
    if s.flow == FLOW_BOOK and _patient_busy(turn, doctor):
        return _offer_times_on_date(turn, doctor)

    s.current_state = S.CONFIRMING
    summary = T.SUMMARY.format(
        patient=s.patient_name,
        doctor=doctor["nome"],
        specialty=_specialty_name(s.selected_specialty_id),
        date=T.date_long(s.preferred_date),
        time=f"{s.preferred_time:%H:%M}",
        payment=_payment(s, doctor),
    )
    options = [
        Option("confirm:yes", T.BUTTON_CONFIRM),
        Option("confirm:no", T.BUTTON_CHANGE),
        Option("confirm:stop", T.BUTTON_GIVE_UP),
    ]
    reply = _buttons(s, "confirm", summary, options)
    s.last_options["payment"] = _payment(s, doctor)  # what the "sim" agrees to
    return reply


def _patient_busy(turn: _Turn, doctor: dict) -> bool:
    """The patient already has a consultation at that time ("também um clínico geral no mesmo dia às 15h"): say
    so and drop the time, before a summary is shown for a booking that would be refused."""
    s = turn.session
    other = selectors.appointment_overlapping_for_patient(
        phone=s.phone_number,
        name=s.patient_name,
        data=s.preferred_date,
        hora=s.preferred_time,
        minutes=doctor["duracao_consulta_minutos"],
    )
    if other is None:
        return False
    turn.prefix.append(clinic_services.patient_busy_message(other))
    turn.busy_at = _aware(s.preferred_date, s.preferred_time)
    s.preferred_time = None
    return True


def _offer_specialties(turn: _Turn) -> Reply:
    s = turn.session
    s.current_state = S.SELECTING_SPECIALTY
    specialties = _catalog()["especialidades"]
    if s.selected_convenio_id:
        accepted = {
            sid for d in selectors.doctor_list(convenio_id=s.selected_convenio_id) for sid in d["especialidade_ids"]
        }
        specialties = [sp for sp in specialties if sp["id"] in accepted] or specialties
    rows = specialties[:MAX_LIST_ROWS]
    s.last_options = {
        "kind": "specialty",
        "items": [{"id": f"specialty:{sp['id']}", "title": sp["nome"]} for sp in rows],
    }
    text = T.ASK_SPECIALTY
    if len(specialties) > MAX_LIST_ROWS:
        text += " Se não estiver na lista, escreva o nome."
    return Reply(
        text=text,
        kind="list",
        button_label="Especialidades",
        options=[Option(f"specialty:{sp['id']}", sp["nome"]) for sp in rows],
    )


def _ask_plan(turn: _Turn, *, which: bool = False) -> Reply | None:
    """ "Particular ou convênio?" once the specialty (or the doctor) is known: the plan decides which doctors are
    offered, and a booking left private by silence is a wrong booking for a patient who meant to use a plan. None
    when there is nothing to choose: no doctor here takes any plan."""
    s = turn.session
    chosen = _doctor(s.selected_doctor_id)
    doctors = [chosen] if chosen else selectors.doctor_list(especialidade_id=s.selected_specialty_id)
    taken = {plan_id for d in doctors for plan_id in d["convenio_ids"]}
    plans = [p for p in _catalog()["convenios"] if p["id"] in taken]
    if not plans:
        return None
    s.current_state = S.CHOOSING_PLAN
    last = selectors.plan_last_used(s.phone_number, s.patient_name) if s.patient_name else None
    last = last if last in taken else None
    rows = [("plan:particular", T.PLAN_PRIVATE_ROW)] + [
        (f"plan:{p['id']}", p["nome"]) for p in plans if p["id"] != last
    ]
    if last:  # the plan used last time on top
        rows.insert(0, (f"plan:{last}", _plan_name(last)))
    rows = rows[:MAX_LIST_ROWS]
    s.last_options = {"kind": "plan", "items": [{"id": key, "title": title} for key, title in rows], "last": last}
    text = T.ASK_PLAN_WHICH if which else T.ASK_PLAN
    if last and not which:
        text = T.ASK_PLAN_AGAIN.format(plan=_plan_name(last))
    if len(plans) + 1 > MAX_LIST_ROWS:
        text += T.ASK_PLAN_MORE
    options = [Option(key, title[:24]) for key, title in rows]
    return Reply(text=text, kind="list", button_label="Convênios", options=options)


_SAME_PLAN = re.compile(
    r"(?<![a-z])(?:o mesmo|a mesma|mesmo (?:convenio|plano)|(?:igual|como) (?:a |da |na )?(?:outra|ultima) vez)"
    r"(?![a-z])"
)
# "convênio", "é pelo plano", "tenho sim", "quero usar meu plano": a plan without its name; "nenhum desses", "o meu
# não está na lista": a plan not listed (named next, it is taken or said not to be)
_PLAN_UNNAMED = re.compile(
    r"^\W*(?:(?:sim|e|eh|vai ser|sera|seria|pelo|pela|por|com|tenho|uso|o|meu|um|quero usar|vou usar)\W+)*"
    r"(?:convenio|plano(?: de saude)?|tenho)(?:\W+(?:sim|da empresa|do trabalho))?\W*$"
    r"|(?<![a-z])(?:nenhum|nenhuma) (?:desses|dessas|deles|delas|da lista)(?![a-z])"
    r"|(?<![a-z])(?:nao (?:esta|ta|tem|aparece)|nao e nenhum) (?:na|da) lista(?![a-z])|o meu nao (?:esta|ta|tem)"
)


def _offer_doctors(turn: _Turn, *, or_private: dict | None = None) -> Reply | None:
    """Offer the specialty's doctors (who accept the plan, when one was given); None when one was auto-chosen.
    `or_private`: the doctor the patient named, who does not take the plan, offered beside them as private."""
    s = turn.session
    specialty = _specialty_name(s.selected_specialty_id)
    all_doctors = selectors.doctor_list(especialidade_id=s.selected_specialty_id)
    if not all_doctors:
        turn.prefix.append(T.NO_DOCTOR_FOR_SPECIALTY.format(specialty=specialty))
        s.selected_specialty_id = None
        return _offer_specialties(turn)
    full = turn.full_doctor or (s.last_options.get("full") if s.last_options.get("kind") == "no_slots" else None)
    others = [d for d in all_doctors if d["id"] != full]
    if full and others and len(others) < len(all_doctors):  # "Outro médico": not the one with no free time
        all_doctors = others
    else:
        full = None  # another specialty asked for instead
    doctors, plan, day_note = all_doctors, "", ""
    if s.selected_convenio_id:
        plan = _plan_name(s.selected_convenio_id)
        doctors = [d for d in all_doctors if s.selected_convenio_id in d["convenio_ids"]]
        if not doctors:
            turn.prefix.append(T.NO_DOCTOR_FOR_PLAN.format(specialty=specialty, plan=plan))
            s.selected_convenio_id, s.insurance_type = None, "particular"
            doctors, plan, or_private = all_doctors, "", None
    if s.preferred_date and len(doctors) > 1:  # "pediatria sábado": who works that weekday
        weekday = s.preferred_date.weekday()
        working = [d for d in doctors if any(sh["dia_semana"] == weekday for sh in _shifts(d["id"]))]
        if working:  # "dermatologia quarta": who works Wednesdays, and said so even when all of them do
            doctors = working
            day_note = f" {T.on_weekday(weekday)}"
            at = f"{s.preferred_time:%H:%M}" if s.preferred_time else None
            covering = [
                d
                for d in working
                if at and any(sh["dia_semana"] == weekday and sh["inicio"] <= at < sh["fim"] for sh in _shifts(d["id"]))
            ]
            if covering:  # "dermatologia quarta às 14h": who is there at 14:00, not who works mornings
                doctors = covering
                day_note += f" às {at}"
        else:  # "cardiologia sábado": nobody then; said, and the day dropped
            turn.prefix.append(T.NOBODY_ON_WEEKDAY.format(specialty=specialty, day=T.on_weekday(weekday)))
            s.preferred_date = None
    if len(doctors) == 1 and not or_private:
        s.selected_doctor_id = doctors[0]["id"]
        only = doctors[0]
        plan_note = f", pelo convênio {plan}" if plan else ""
        price_note = "" if plan else f" (particular, R$ {T.money(only['preco_consulta'])})"
        turn.prefix.append(
            (T.ALSO_DOCTOR if full else T.ONLY_DOCTOR).format(
                specialty=specialty, day_note=day_note, plan_note=plan_note, doctor=only["nome"], price_note=price_note
            )
        )
        return None
    s.current_state = S.SELECTING_DOCTOR
    rows = doctors[: MAX_LIST_ROWS - 1 if or_private else MAX_LIST_ROWS]
    options = [Option(f"doctor:{d['id']}", d["nome"], f"Convênio {plan}" if plan else _private(d)) for d in rows]
    text = T.ASK_DOCTOR.format(specialty=specialty, plan_note=f" que atendem {plan}" if plan else "", day_note=day_note)
    if or_private:  # "Dra. Fernanda não atende Unimed": Unimed with a colleague, or her as private
        options.append(Option(f"doctor:{or_private['id']}", or_private["nome"], _private(or_private)))
        text = T.ASK_DOCTOR_OR_PRIVATE.format(
            plan=plan,
            names=T.join_names([d["nome"] for d in rows]),
            doctor=or_private["nome"],
            price=T.money(or_private["preco_consulta"]),
        )
    s.last_options = {"kind": "doctor", "items": [{"id": o.id, "title": o.title} for o in options]}
    return Reply(text=text, kind="list", button_label="Médicos", options=options)


def _private(doctor: dict) -> str:
    return f"Particular R$ {T.money(doctor['preco_consulta'])}"


def _slot_reply(s: ConversationSession, text: str, slots: list[dt.datetime]) -> Reply:
    rows = slots[:MAX_LIST_ROWS]
    # Ids carry the clinic-local wall time ("slot:2026-11-30T10:30"): what the patient chose, whatever the offset.
    items = [
        {"id": f"slot:{timezone.localtime(w):%Y-%m-%dT%H:%M}", "title": T.slot_title(timezone.localtime(w))}
        for w in rows
    ]
    s.last_options = {"kind": "slot", "items": items}
    return Reply(
        text=text,
        kind="list",
        button_label="Horários",
        options=[Option(i["id"], i["title"]) for i in items],
    )


def _in_period(when: dt.datetime, period: str) -> bool:
    hour = timezone.localtime(when).hour
    return {"manha": hour < 12, "tarde": 12 <= hour < 18, "noite": hour >= 18}.get(period, True)


def _in_window(s: ConversationSession, moment: dt.time) -> bool:
    """Within the bounds the patient gave ("depois das 17h", "antes das 10h"), if any."""
    return (s.preferred_after is None or moment >= s.preferred_after) and (
        s.preferred_before is None or moment < s.preferred_before
    )


def _window_label(s: ConversationSession) -> str:
    parts = [T.PERIOD_LABELS[s.preferred_period]] if s.preferred_period in T.PERIOD_LABELS else []
    if s.preferred_after and s.preferred_before:
        parts.append(f"entre {s.preferred_after:%H:%M} e {s.preferred_before:%H:%M}")
    elif s.preferred_after:
        parts.append(f"a partir das {s.preferred_after:%H:%M}")
    elif s.preferred_before:
        parts.append(f"antes das {s.preferred_before:%H:%M}")
    return " ".join(parts)


def _weekdays_ruled_out(e: dict) -> frozenset:
    return frozenset(d for d in e.get("exceto_dias") or [] if isinstance(d, int) and 0 <= d <= 6)


def _on_wanted_weekdays(s: ConversationSession, free: list[dt.datetime]) -> list[dt.datetime]:
    """Without the weekdays the patient ruled out ("menos segunda", "terça ou quinta"); all of them when nothing is
    left (the list then shows what there is)."""
    return [w for w in free if timezone.localtime(w).weekday() not in s.excluded_weekdays] or free


def _fits_wishes(s: ConversationSession, when: dt.datetime) -> bool:
    """In the part of the day and between the bounds the patient asked for."""
    return _in_period(when, s.preferred_period) and _in_window(s, timezone.localtime(when).time())


def _in_preferred_period(turn: _Turn, doctor: dict, free: list[dt.datetime], where: str) -> list[dt.datetime]:
    """The free slots in the period (and between the bounds) the patient asked for; all of them, saying so, when
    there are none there."""
    s = turn.session
    if not (s.preferred_period or s.preferred_after or s.preferred_before) or not free:
        return free
    inside = [w for w in free if _fits_wishes(s, w)]
    if not inside:
        label = _window_label(s)
        turn.prefix.append(T.NO_SLOTS_IN_PERIOD.format(doctor=doctor["nome"], period=label, where=where))
    return inside or free


def _offer_next_slots(turn: _Turn, doctor: dict, text: str) -> Reply:
    s = turn.session
    s.current_state = S.CHOOSING_DATE
    today = timezone.localtime(turn.now).date()
    start = today
    if s.preferred_from and s.preferred_from > today:  # "semana que vem"
        start = s.preferred_from
        text = T.ASK_DATE_FROM.format(doctor=doctor["nome"], date=T.date_long(start))
    free = selectors.slot_list_free(medico_id=doctor["id"], start=start, days=settings.SLOT_SEARCH_DAYS, now=turn.now)
    free = _in_preferred_period(turn, doctor, free, "nos próximos dias")
    free = _on_wanted_weekdays(s, free)
    if s.preferred_time:  # "às 15h" without a date: the next days at that time first
        at_time = [w for w in free if timezone.localtime(w).time() == s.preferred_time]
        free = at_time or free
    if not free:
        return _no_slots_at_all(turn, doctor)
    return _slot_reply(s, text, _spread(free))


def _no_slots_at_all(turn: _Turn, doctor: dict) -> Reply:
    """The doctor has no free time in the weeks searched: when the clinic can tell a patient later
    (WHATSAPP_WAITLIST_TEMPLATE), a place on the doctor's waitlist is offered."""
    s = turn.session
    s.current_state = S.CHOOSING_DATE
    all_doctors = selectors.doctor_list(especialidade_id=s.selected_specialty_id)
    doctors = all_doctors
    if s.selected_convenio_id:  # the plan the booking (or the move) keeps
        doctors = [d for d in all_doctors if s.selected_convenio_id in d["convenio_ids"]]
    only = len(doctors) < 2  # nobody else to offer
    specialty = _specialty_name(s.selected_specialty_id) if only else ""
    if only and s.selected_convenio_id:
        specialty += f" pelo convênio {_plan_name(s.selected_convenio_id)}"
    names = {"doctor": doctor["nome"], "specialty": specialty}
    # others see the specialty privately: a booking may still change how it is paid (a move keeps it)
    private = f" {T.PRIVATE_WITH_OTHERS}" if only and s.flow == FLOW_BOOK and len(all_doctors) > 1 else ""
    human = Option("menu:atendente", T.BUTTON_HUMAN)
    if settings.WHATSAPP_WAITLIST_TEMPLATE and s.flow == FLOW_BOOK:  # a move keeps the appointment it has
        offer = T.WAITLIST_OFFER_ONLY_DOCTOR.format(**names) + private if only else T.WAITLIST_OFFER.format(**names)
        reply = _waitlist_offer(s, doctor, offer)
    elif only:
        reply = _buttons(s, "no_slots", T.NO_SLOTS_ONLY_DOCTOR.format(**names) + private, [human])
    else:
        options = [Option("change:doctor", T.BUTTON_OTHER_DOCTOR), human]
        reply = _buttons(s, "no_slots", T.NO_SLOTS_AT_ALL.format(**names), options)
    # "Outro médico", or "particular" after the plan-only text: the specialty's doctors but him
    s.last_options["full"] = doctor["id"]
    return reply


def _waitlist_offer(s: ConversationSession, doctor: dict, text: str) -> Reply:
    options = [Option(f"waitlist:join:{doctor['id']}", T.BUTTON_WAITLIST), Option("menu:atendente", T.BUTTON_HUMAN)]
    return _buttons(s, "waitlist", text, options)


def _waitlist_explained(turn: _Turn) -> Reply:
    doctor = _doctor(turn.session.selected_doctor_id)
    if doctor is None:
        _flow_reset(turn.session)
        return _menu(turn.session, f"{T.NOT_UNDERSTOOD} {T.MENU_AGAIN}")
    text = T.WAITLIST_HOW.format(doctor=doctor["nome"], days=settings.WAITLIST_DAYS)
    return _waitlist_offer(turn.session, doctor, text)


def _answers_waitlist_offer(turn: _Turn) -> bool:
    """At the waitlist's offer, whether the message may answer it: it names no date, time or other doctor
    ("sim, pro dr gustavo mesmo" names the offered one) and does not ask for another doctor ("outro médico", as the
    offer suggests: the usual doctor step)."""
    chosen = turn.session.selected_doctor_id
    others = {k: v for k, v in turn.nlu.entities.items() if not (k == "medico_id" and v == chosen)}
    return not _has_booking_entities(dataclasses.replace(turn.nlu, entities=others)) and not _OTHER_DOCTOR.search(
        turn.folded
    )


def _waitlist_answer(turn: _Turn) -> Reply:
    """The answer to the waitlist's offer: "Lista de espera" (or "sim", "1") puts the patient on the doctor's
    list, unless a time opened meanwhile (then it is offered); "não" ends the booking. The button of an older offer,
    tapped while another booking or question is under way, joins that list and leaves the rest as it was."""
    s, nlu = turn.session, turn.nlu
    answers_offer = s.last_options.get("kind") == "waitlist"
    if nlu.intent == Intent.NEGAR:
        _flow_reset(s)
        return _menu(s, T.WAITLIST_DECLINED)
    doctor = _doctor(nlu.entities.get("lista_espera") or s.selected_doctor_id)
    if doctor is None:  # no longer seeing patients
        if answers_offer:
            _flow_reset(s)
        return _menu(s, f"{T.NOT_UNDERSTOOD} {T.MENU_AGAIN}") if answers_offer else _prompt_again(turn)
    today = timezone.localtime(turn.now).date()
    start = max(s.preferred_from or today, today) if answers_offer else today  # where the offer looked from
    if answers_offer and selectors.slot_list_free(
        medico_id=doctor["id"], start=start, days=settings.SLOT_SEARCH_DAYS, now=turn.now, limit=1
    ):
        # a time opened since the offer (a cancellation): the booking with this doctor, no list needed
        turn.nlu = dataclasses.replace(nlu, intent=Intent.AGENDAR, entities={"medico_id": doctor["id"]})
        s.last_options = {}
        return _dispatch(turn)
    text = _waitlist_joined(turn, doctor, specialty_id=s.selected_specialty_id if answers_offer else None)
    if answers_offer or not s.flow:
        _flow_reset(s)
        return Reply(text=text)
    turn.prefix.append(text)  # an old button: the booking (or cancellation) under way asks its question again
    return _with_prefix(turn, _prompt_again(turn))


def _waitlist_joined(turn: _Turn, doctor: dict, *, specialty_id: int | None = None) -> str:
    """Puts the patient on the doctor's waitlist; what to tell them."""
    s = turn.session
    try:
        _, joined = clinic_services.waitlist_join(
            medico_id=doctor["id"],
            especialidade_id=specialty_id,
            paciente_nome=s.patient_name or turn.profile_name,
            paciente_telefone=s.phone_number,
            now=turn.now,
        )
    except clinic_services.InvalidBooking:  # deactivated a moment ago
        return T.NO_SLOTS_AT_ALL.format(doctor=doctor["nome"])
    text = T.WAITLIST_JOINED if joined else T.WAITLIST_ALREADY
    return text.format(doctor=T.of_doctor(doctor["nome"]), days=settings.WAITLIST_DAYS)


def _spread(free: list[dt.datetime]) -> list[dt.datetime]:
    """At most 2 slots per day, so a list spans several days."""
    spread, per_day = [], {}
    for when in free:
        day = timezone.localtime(when).date()
        if per_day.get(day, 0) < 2:
            spread.append(when)
            per_day[day] = per_day.get(day, 0) + 1
        if len(spread) == MAX_LIST_ROWS:
            break
    return spread


def _availability_line(turn: _Turn) -> str | None:
    """Whether the doctor (or a doctor of the specialty) asked about has free slots on the day asked, and from
    when: "tem vaga amanhã com cardiologista?" deserves a yes or no before the booking's first question."""
    e = turn.nlu.entities
    day, _ = _wanted_moment(e)
    if day is None:
        return None
    closed = _clinic_closed(day)
    if closed:
        return closed
    s = turn.session
    asked_doctor = _doctor(e["medico_id"]) if e.get("medico_id") else None
    away = _doctor_away(asked_doctor, day, lambda t: _fits_wishes(s, _aware(day, t))) if asked_doctor else None
    if away:  # "tem vaga com a dra ana dia 22?" while she is on holiday
        return away
    when = " ".join(filter(None, [T.date_long(day), _window_label(s)]))  # "sábado, 12/12/2026 à tarde"

    def free_on_day(doctor_id: int) -> list[dt.datetime]:  # in the part of the day asked for ("sábado à tarde")
        return [
            w
            for w in selectors.slot_list_free(medico_id=doctor_id, start=day, days=1, now=turn.now)
            if _fits_wishes(s, w)
        ]

    if not (e.get("medico_id") or e.get("especialidade_id")):  # "vocês têm vaga pra amanhã?": which specialties
        open_specialties = {
            sid for d in _catalog()["medicos"] for sid in d["especialidade_ids"] if free_on_day(d["id"])
        }
        names = [sp["nome"] for sp in _catalog()["especialidades"] if sp["id"] in open_specialties]
        if not names:
            return T.NO_AVAILABILITY.format(date=when, who="na clínica")
        return T.AVAILABILITY_SPECIALTIES.format(date=when, items=T.join_names(names))
    doctors = (
        [_doctor(e["medico_id"])]
        if e.get("medico_id")
        else selectors.doctor_list(especialidade_id=int(e["especialidade_id"]))
    )
    free = {d["nome"]: slots for d in doctors[:MAX_LIST_ROWS] if d and (slots := free_on_day(d["id"]))}
    if not free:
        who = f"com {doctors[0]['nome']}" if e.get("medico_id") else f"em {_specialty_name(int(e['especialidade_id']))}"
        return T.NO_AVAILABILITY.format(date=when, who=who)
    items = T.join_names(
        [f"{name} (a partir das {timezone.localtime(slots[0]):%H:%M})" for name, slots in free.items()]
    )
    return T.AVAILABILITY.format(date=when, items=items)


def _offer_more_slots(turn: _Turn) -> Reply:
    """ "outros horários", "tem mais tarde?", "mais pra frente": the free slots after the last one listed (that
    day's first, when a day's times were listed), in the period asked for if any are left there."""
    s = turn.session
    doctor = _doctor(s.selected_doctor_id)
    shown = [dt.datetime.fromisoformat(i["id"].partition(":")[2]) for i in s.last_options.get("items", [])]
    if s.current_state == S.CHOOSING_DATE and _LATER_IN_THE_DAY.search(turn.folded):
        # "mais tarde" over a list of days is later in the day: the afternoon after morning times, else after
        # the time most days showed
        usual = statistics.mode(max(w.time() for w in shown if w.date() == day) for day in {w.date() for w in shown})
        if usual < dt.time(12):
            s.preferred_period, s.preferred_after, s.preferred_before = "tarde", None, None
        else:
            s.preferred_period, s.preferred_before = "", None
            s.preferred_after = dt.time(min(usual.hour + 1, 23), usual.minute)
        return _offer_next_slots(turn, doctor, T.ASK_DATE.format(doctor=doctor["nome"]))
    last = _aware(max(shown).date(), max(shown).time())
    if s.current_state == S.CHOOSING_DATE and _OTHER_DAYS.search(turn.folded):  # "outros dias": not those listed
        last = _aware(last.date(), dt.time(23, 59))
    free = selectors.slot_list_free(
        medico_id=doctor["id"], start=last.date(), days=settings.SLOT_SEARCH_DAYS, now=turn.now
    )
    free = [w for w in free if w > last]
    free = _on_wanted_weekdays(s, [w for w in free if _fits_wishes(s, w)] or free)
    if not free:
        return Reply(text=T.NO_MORE_SLOTS.format(doctor=doctor["nome"]))
    if s.current_state == S.CHOOSING_TIME:
        same_day = [w for w in free if timezone.localtime(w).date() == last.date()]
        if same_day:
            return _slot_reply(s, T.ASK_TIME.format(doctor=doctor["nome"], date=T.date_long(last.date())), same_day)
        turn.prefix.append(T.NO_MORE_ON_DAY.format(date=T.date_long(last.date())))
        s.preferred_date, s.preferred_time = None, None
        s.current_state = S.CHOOSING_DATE
    return _with_prefix(turn, _slot_reply(s, T.MORE_SLOTS.format(doctor=doctor["nome"]), _spread(free)))


def _offer_times_on_date(turn: _Turn, doctor: dict, refused: dt.datetime | None = None) -> Reply:
    """The free times on the chosen day; when there are none, the nearest ones on other days."""
    s = turn.session
    free = selectors.slot_list_free(medico_id=doctor["id"], start=s.preferred_date, days=1, now=turn.now)
    free = [w for w in free if w != turn.busy_at]  # just refused: the patient has another appointment then
    free = _in_preferred_period(turn, doctor, free, "nesse dia")
    if turn.latest:
        free = free[-MAX_LIST_ROWS:]
    if free and refused is not None:  # "às 9h" while she is away that morning: say so, not "not available"
        turn.prefix.append(
            _block_at(doctor, refused) or T.SLOT_TAKEN.format(when=T.slot_title(refused), doctor=doctor["nome"])
        )
        s.current_state = S.CHOOSING_TIME
        # The nearest times, listed in clock order like every other list, so row numbers read the same way.
        nearest = sorted(free, key=lambda w: abs((w - refused).total_seconds()))[:MAX_LIST_ROWS]
        return _slot_reply(s, T.NEAREST_SLOTS, sorted(nearest))
    if not free:
        closed = _clinic_closed(s.preferred_date)
        works = {sh["dia_semana"] for sh in _shifts(doctor["id"])}
        away = None if closed else _doctor_away(doctor, s.preferred_date)
        if closed or away:  # "dia 25": Christmas (or the doctor's holidays), not a doctor without times
            turn.prefix.append(closed or away)
        elif works and s.preferred_date.weekday() not in works:  # "sábado" with a Tuesday/Thursday doctor
            turn.prefix.append(
                T.DOCTOR_NOT_ON_WEEKDAY.format(doctor=doctor["nome"], day=T.on_weekday(s.preferred_date.weekday()))
            )
        else:
            turn.prefix.append(T.NO_SLOTS_ON_DATE.format(doctor=doctor["nome"], date=T.date_long(s.preferred_date)))
        wanted = _aware(s.preferred_date, dt.time(9, 0))
        s.preferred_date = None
        return _offer_nearest(turn, doctor, wanted)
    s.current_state = S.CHOOSING_TIME
    return _slot_reply(s, T.ASK_TIME.format(doctor=doctor["nome"], date=T.date_long(s.preferred_date)), free)


def _offer_nearest(turn: _Turn, doctor: dict, wanted: dt.datetime) -> Reply:
    s = turn.session
    nearest = selectors.slots_nearest(medico_id=doctor["id"], wanted=wanted, limit=5, now=turn.now)
    if not nearest:
        return _no_slots_at_all(turn, doctor)
    s.current_state = S.CHOOSING_TIME if s.preferred_date else S.CHOOSING_DATE
    return _slot_reply(s, T.NEAREST_SLOTS, sorted(nearest))


def _times_again(turn: _Turn, doctor: dict, why: str) -> Reply:
    """The chosen time was refused (`why`): say so and offer that day's times again."""
    turn.prefix.append(why)
    turn.session.preferred_time = None
    return _with_prefix(turn, _offer_times_on_date(turn, doctor))


def _slot_lost(turn: _Turn, doctor: dict) -> Reply:
    """Someone else took the slot between the summary and the patient's "sim": offer the nearest free ones."""
    s = turn.session
    when = _aware(s.preferred_date, s.preferred_time)
    turn.prefix.append(T.SLOT_TAKEN.format(when=T.slot_title(when), doctor=doctor["nome"]))
    s.preferred_time = None
    return _with_prefix(turn, _offer_nearest(turn, doctor, when))


def _book(turn: _Turn) -> Reply:
    s = turn.session
    doctor = _doctor(s.selected_doctor_id)
    try:
        appointment = clinic_services.appointment_book(
            medico_id=s.selected_doctor_id,
            especialidade_id=s.selected_specialty_id,
            convenio_id=s.selected_convenio_id,
            paciente_nome=s.patient_name,
            paciente_telefone=s.phone_number,
            data=s.preferred_date,
            hora=s.preferred_time,
        )
    except clinic_services.SlotUnavailable:
        return _slot_lost(turn, doctor)
    except clinic_services.PatientBusy as exc:  # booked by another channel since the summary
        return _times_again(turn, doctor, exc.message)
    except clinic_services.TooManyOpenAppointments as exc:
        _flow_reset(s)
        return Reply(text=exc.message)
    except (clinic_services.PlanNotAccepted, clinic_services.InvalidBooking) as exc:
        turn.prefix.append(exc.message)
        s.current_state = S.SELECTING_DOCTOR
        s.selected_doctor_id = None
        return _advance(turn)
    clinic = _clinic()
    text = T.BOOKED.format(
        patient=s.patient_name,
        doctor=doctor["nome"],
        specialty=_specialty_name(appointment.especialidade_id),
        date=T.date_long(appointment.data),
        time=f"{appointment.hora:%H:%M}",
        payment=_payment(s, doctor),
        address=clinic["endereco"],
        policies=clinic.get("politicas", ""),
    ).strip()
    following = s.next_patient
    _flow_reset(s)
    if following:  # "pra mim e pro meu filho": now the other one ("sim" starts it, asking that patient's name)
        plural = T.OTHER_RELATIVE.get(following)  # "pros meus dois filhos": the other son
        patient, whose = plural or (following, _whose_consultation(following))
        s.last_options = {"offer": "book", "para_quem": patient, "after_booking": True}
        text = f"{text}\n\n{T.NEXT_PATIENT_OFFER.format(whose=whose)}"
    return Reply(text=text)


def _whose_consultation(patient: str) -> str:
    """ "eu" -> "a sua consulta"; "pai" -> "a consulta do seu pai"."""
    return "a sua consulta" if patient == "eu" else f"a consulta {T.RELATIVES.get(patient, 'do outro paciente')}"


# --- cancelling and rescheduling ----------------------------------------------------------------------------------


def _start_manage(turn: _Turn, flow: str) -> Reply:
    s = turn.session
    _flow_reset(s)
    s.flow = flow
    appointments = selectors.appointments_upcoming_for_phone(s.phone_number, now=turn.now)
    if not appointments:
        s.flow = ""
        # "quero cancelar" with no appointment: maybe the waitlist is meant
        waiting = _waitlist_line(selectors.waitlist_open_for_phone(s.phone_number)) if flow == FLOW_CANCEL else None
        return Reply(text="\n\n".join(filter(None, [T.NO_APPOINTMENTS, waiting])))
    several = _several_meant(turn, appointments) if flow in {FLOW_CANCEL, FLOW_CONFIRM} else None
    if several and flow == FLOW_CANCEL:  # "cancela a de quarta e a de quinta", "todas menos a do pedro"
        return _confirm_cancel_all(turn, [a.pk for a in several])
    if several:  # "confirmo as duas minhas"
        return _attendance_confirmed(turn, several)
    misfit = _not_as_described(turn, appointments[0]) if len(appointments) == 1 else None
    if misfit:  # "cancela a de quinta" when the only one is Tuesday's: shown to be picked, never taken for it
        turn.prefix.append(misfit)
        named = None
    else:
        named = appointments[0] if len(appointments) == 1 else _appointment_named(turn, appointments)
    if named is not None:
        s.target_appointment_id = named.pk
        return _manage_selected(turn, named)
    meant = _all_meant(turn, appointments) if flow in {FLOW_CANCEL, FLOW_CONFIRM} else None
    if meant is not None and _ALL_OF_THEM.search(turn.folded):  # "desmarca tudo" (not "as duas" of three)
        return (
            _confirm_cancel_all(turn, [a.pk for a in meant])
            if flow == FLOW_CANCEL
            else _attendance_confirmed(turn, meant)
        )
    e = turn.nlu.entities
    asked = _doctor(e["medico_id"]) if e.get("medico_id") else None
    if asked and not misfit and not any(a.medico_id == asked["id"] for a in appointments):
        turn.prefix.append(T.NO_APPOINTMENT_WITH.format(doctor=asked["nome"]))  # "cancela a da dra ana": none with her
    return _ask_which(turn, appointments)


def _ask_which(turn: _Turn, appointments: list) -> Reply:
    """ "Encontrei estas consultas marcadas. Qual delas?" over the patient's appointments, for the flow under way."""
    s, e, flow = turn.session, turn.nlu.entities, turn.session.flow
    s.current_state = S.MANAGING_APPOINTMENT
    rows = appointments[:MAX_LIST_ROWS]
    items = [
        {
            "id": f"appointment:{a.pk}",
            "title": _appointment_title(a),
            "description": _appointment_who(a, rows),
            "when": _aware(a.data, a.hora).isoformat(),  # so "a de amanhã" / "a das 10h" can name one
            "doctor_id": a.medico_id,  # so "a do dr. Igor" can
            "specialty_id": a.especialidade_id,  # and "a da ortopedia"
        }
        for a in rows
    ]
    s.last_options = {"kind": "appointment", "items": items}
    if flow == FLOW_RESCHEDULE and _MOVED_TO.search(turn.folded):  # "remarca pra sexta às 10h", then "Qual delas?"
        wanted = {k: e[k] for k in ("data", "hora", "periodo", "a_partir_de") if e.get(k)}
        if _OTHER_WEEK.search(turn.folded):  # "quero trocar pra outra semana", then "a de quarta"
            wanted["outra_semana"] = True
        if wanted:
            s.last_options["wanted"] = wanted
    return _appointment_choice(items, turn)


def _appointment_choice(items: list[dict], turn: _Turn | None = None) -> Reply:
    options = [Option(i["id"], i["title"][:24], i.get("description", "")) for i in items]
    reply = Reply(text=T.CHOOSE_APPOINTMENT, kind="list", button_label="Consultas", options=options)
    return _with_prefix(turn, reply) if turn else reply


def _day_words(day: dt.date, now: dt.datetime) -> str:
    """ "hoje (sábado)", "amanhã (domingo)", or "aos sábados" for a day further away."""
    today = timezone.localtime(now).date()
    near = {today: "hoje", today + dt.timedelta(days=1): "amanhã"}.get(day)
    return f"{near} ({T.WEEKDAYS_BARE[day.weekday()]})" if near else T.on_weekday(day.weekday())


def clinic_message_noted(session: ConversationSession, *, text: str) -> None:
    """A message the clinic started (a reminder, a cancellation notice) is in the history the next turn reads, and
    it said "Olá!" already. Called under the session lock."""
    _remember(session, "bot", text)
    session.has_greeted = True


def staff_reply_noted(session: ConversationSession, *, text: str, release: bool, now: dt.datetime) -> None:
    """A person of the clinic wrote to the patient (the admin's "Responder"): the history shows it, and the person
    has the conversation, so the bot keeps quiet (human handoff) until they release it. Their reply counts as
    activity: HANDOFF_IDLE_HOURS run from it, not from the patient's last message. With `release` the bot answers
    the next message from the menu, as after "Devolver ao bot", whatever it was doing before: a question it had
    left open ("Quer mesmo cancelar?") must not take the patient's "sim" to the person's message. Called under the
    session lock."""
    clinic_message_noted(session, text=text)
    session.last_activity = now
    if release:
        release_to_bot(session)
    elif session.current_state != S.HUMAN_HANDOFF:
        session.previous_state = session.current_state
        session.current_state = S.HUMAN_HANDOFF
        session.failed_attempts = 0


def _pending_yes_dropped(session: ConversationSession) -> None:
    """A message the clinic started (a reminder, a notice) arrived after a yes/no question the bot asked: a bare
    "sim" would now answer the newer message, so a pending cancellation is dropped (nothing changed) and a booking's
    summary is shown again before a yes books it, as after an emergency warning."""
    if session.current_state == S.CONFIRMING and session.flow == FLOW_CANCEL:
        _flow_reset(session)
    elif session.current_state == S.CONFIRMING:
        session.last_options = {"kind": "after_warning"}


def reminder_offer(session: ConversationSession, *, appointment, text: str, blocked: bool = False) -> None:
    """The day-before reminder, or (`blocked`) the notice that a block took the appointment's time, was just stored
    for this session (under its lock): the history shows it, and when nothing else is under way a bare "sim" /
    "não" / button number, or "remarcar", answers it (see `_reminder_answer`; the notice's buttons are "Remarcar",
    "Cancelar consulta", so its "1" moves the appointment). A yes/no question left open before it no longer takes a
    bare "sim", which would now be read as an answer to the reminder: a pending cancellation is dropped (nothing
    changed) and a booking's summary is shown again before a yes books it, as after an emergency warning."""
    clinic_message_noted(session, text=text)
    _pending_yes_dropped(session)
    if not session.flow and session.current_state == S.IDLE:
        offered = session.last_options if session.last_options.get("kind") == "reminder" else {}
        reminded = [pk for pk in offered.get("appointments", []) if pk != appointment.pk]
        told_blocked = [pk for pk in offered.get("blocked", []) if pk != appointment.pk]
        session.last_options = {"kind": "reminder", "appointments": [*reminded, appointment.pk]}
        if blocked or told_blocked:
            session.last_options["blocked"] = [*told_blocked, *([appointment.pk] if blocked else [])]


def _waitlist_leave(turn: _Turn, *, doctor_id: int | None = None) -> Reply:
    """Off the waitlists the patient is on: `doctor_id`'s (a "não" to its notice), else those of the doctors the
    message names, else all of them."""
    s = turn.session
    entries = selectors.waitlist_open_for_phone(s.phone_number)
    if s.last_options.get("kind") == "waitlist":
        _flow_reset(s)  # "não, pode me tirar da lista" at the offer
    elif s.last_options.get("offer") == "book":
        s.last_options = {}  # the notice's "sim" no longer books
    wanted = {doctor_id} if doctor_id else turn.doctors_named
    leaving = [e for e in entries if e.medico_id in wanted] if wanted else entries
    if not leaving:
        named = T.join_names([T.of_doctor(d["nome"]) for d in map(_doctor, wanted) if d])
        text = T.WAITLIST_NOT_ON.format(doctor=named) if named else T.WAITLIST_NONE
        return Reply(text="\n\n".join(filter(None, [text, _waitlist_line(entries)])))
    clinic_services.waitlist_leave(entry_ids=[e.pk for e in leaving], now=turn.now)
    return Reply(text=T.WAITLIST_LEFT.format(doctors=T.join_names([T.of_doctor(e.medico.nome) for e in leaving])))


def _waitlist_line(entries: list) -> str | None:
    """ "minhas consultas" also says which waitlists the patient is on (`entries`), and how to leave them."""
    if not entries:
        return None
    return T.ON_WAITLIST.format(doctors=T.join_names([T.of_doctor(e.medico.nome) for e in entries]))


def _notice_answer(turn: _Turn, doctor_id: int) -> Reply | None:
    """The patient's answer to the notice that a time opened with `doctor_id`. "não quero mais" (or "já consegui")
    takes them off that list; another "não" ("não posso segunda") keeps them on it; a wish in their own words
    ("quero esse horário", Gemini's "agendar"), or a "não" asking for another day, becomes a booking with that doctor
    (the NLU result is changed in place and None returned: the dispatch goes on with it). None also when the message
    is about something else."""
    nlu, folded = turn.nlu, turn.folded
    says_no = nlu.intent == Intent.NEGAR or bool(_SAYS_NO.search(folded) and not _TAKES_NOTICE.search(folded))
    if says_no and _NO_LONGER_WANTED.search(folded):
        return _waitlist_leave(turn, doctor_id=doctor_id)
    if says_no and not _ANOTHER_TIME.search(folded):
        turn.session.last_options = {}
        doctor = _doctor(doctor_id)
        return Reply(text=T.WAITLIST_STAYS.format(doctor=T.of_doctor(doctor["nome"]) if doctor else ""))
    if not (says_no or nlu.intent in {Intent.AGENDAR, Intent.CONFIRMAR} or _TAKES_NOTICE.search(folded)):
        return None
    if nlu.entities.get("especialidade_id") or nlu.entities.get("medico_id") not in (None, doctor_id):
        return None  # another doctor or a specialty: the usual booking
    if says_no:  # "não posso segunda, tem outro dia?": the doctor's times, not the day just refused
        nlu.entities.clear()
    nlu.intent = Intent.AGENDAR
    nlu.entities["medico_id"] = doctor_id
    nlu.entities.pop("opcao", None)
    turn.session.last_options = {}
    return None


def _doctor_gone(doctor_id) -> str:
    detail = selectors.doctor_detail(int(doctor_id)) if doctor_id else None
    return T.WAITLIST_DOCTOR_GONE.format(doctor=detail["nome"] if detail else "Esse profissional")


def waitlist_opened_noted(session: ConversationSession, *, doctor_id: int, text: str) -> None:
    """A time opened with the doctor whose waitlist the patient is on, and the notice was just stored (under the
    session's lock): the history shows it, and when nothing else is under way a "sim" / "quero" books with that
    doctor (the notice's button does the same). As for a reminder, a yes/no question left open before it no longer
    takes a bare "sim"; and a reminder's pending answer is kept (its "sim" confirms the appointment)."""
    clinic_message_noted(session, text=text)
    _pending_yes_dropped(session)
    if not session.flow and session.current_state == S.IDLE and session.last_options.get("kind") != "reminder":
        session.last_options = {"offer": "book", "medico_id": doctor_id}


# The reminder template's buttons, in order; "1", "2", "3" typed after it mean the same. The block notice's are
# "Remarcar", "Cancelar consulta".
_REMINDER_BUTTONS = {1: Intent.CONFIRMAR, 2: Intent.REMARCAR, 3: Intent.CANCELAR}
_BLOCK_NOTICE_BUTTONS = {1: Intent.REMARCAR, 2: Intent.CANCELAR}
_BARE_BUTTON_NUMBER = re.compile(r"\s*([123])\W*")


def _reminder_answer(turn: _Turn) -> Reply | None:
    """A reminder button tapped (any time), or a bare yes / no / button number to the reminders just sent, while
    the bot has asked nothing since. None: the message is not about a reminder."""
    s, nlu = turn.session, turn.nlu
    intent, wanted = nlu.intent, nlu.entities.get("lembrete_id")
    upcoming = None
    if wanted is None:
        offered = s.last_options if not s.flow else {}
        # a question answered since ("qual o horário de funcionamento?") leaves only its memory beside the reminder;
        # one that named doctors ("quanto custa com o dr carlos?") keeps the reminder aside, under "reminded"
        if offered.get("kind") == "reminder" and set(offered) - {"blocked", *_MEMORY_KEYS} == {"kind", "appointments"}:
            reminded = offered["appointments"]
        elif offered.get("reminded"):
            reminded = offered["reminded"]
        else:
            return None  # no reminder pending, or the bot asked something newer ("Posso transferir...?")
        typed = _BARE_BUTTON_NUMBER.fullmatch(turn.folded) if offered.get("kind") == "reminder" else None
        if typed and len(reminded) == 1:
            buttons = _BLOCK_NOTICE_BUTTONS if reminded[0] in offered.get("blocked", []) else _REMINDER_BUTTONS
            intent = buttons.get(int(typed.group(1)), intent)
        answers = {Intent.CONFIRMAR, Intent.NEGAR, Intent.REMARCAR, Intent.CANCELAR}
        if intent not in answers and _WILL_ATTEND.search(turn.folded):
            intent = Intent.CONFIRMAR  # "bom dia, confirmo", "irei sim", "to indo", "as duas sim"
        about_it = _ABOUT_REMINDED.search(turn.folded) and not nlu.entities.get("topico")  # not "que horas abre?"
        if intent not in answers and about_it:
            return _list_appointments(turn)  # "esqueci, que horas é mesmo?": the reminder stays open for a "sim"
        if intent not in answers:
            return None
        upcoming = selectors.appointments_upcoming_for_phone(s.phone_number, now=turn.now)
        still = [a for a in upcoming if a.pk in reminded]
        if len(still) > 1:  # two reminders, one "sim": which one (or "as duas")
            if intent in {Intent.NEGAR, Intent.CANCELAR}:
                turn.prefix.append(T.CANT_ATTEND)
            flow = {Intent.CONFIRMAR: FLOW_CONFIRM, Intent.REMARCAR: FLOW_RESCHEDULE}.get(intent, FLOW_CANCEL)
            return _with_prefix(turn, _start_manage(turn, flow))
        if intent in {Intent.REMARCAR, Intent.CANCELAR} and not still:
            return None  # "quero remarcar" after an old reminder: the usual question about which appointment
        wanted = reminded[-1]
    if upcoming is None:
        upcoming = selectors.appointments_upcoming_for_phone(s.phone_number, now=turn.now)
    appointment = next((a for a in upcoming if a.pk == wanted), None)
    if appointment is None:
        if s.last_options.get("kind") == "reminder":
            s.last_options = {}
        return Reply(text=_reminder_gone(s, wanted, now=turn.now))
    if intent == Intent.CONFIRMAR:
        booking = s.flow == FLOW_BOOK and s.current_state in BOOKING_STATES | {S.COLLECTING_PATIENT_INFO}
        if s.current_state == S.HUMAN_HANDOFF or booking:  # confirmed; the booking under way goes on
            confirmed = _attendance_confirmed(turn, [appointment], keep_flow=True)
            if not booking:
                return confirmed
            turn.prefix.append(confirmed.text)
            return _advance(turn)
        return _attendance_confirmed(turn, [appointment])
    _flow_reset(s)
    s.flow, s.target_appointment_id = FLOW_RESCHEDULE if intent == Intent.REMARCAR else FLOW_CANCEL, appointment.pk
    if intent == Intent.NEGAR:  # "não" to "Você confirma a presença?": cancel it, or move it ("Remarcar")
        turn.prefix.append(T.CANT_ATTEND)
    return _with_prefix(turn, _manage_selected(turn, appointment))


def _reminder_gone(s: ConversationSession, appointment_id: int, *, now: dt.datetime) -> str:
    """Why a reminded appointment cannot be answered any more: cancelled, already past, or not this phone's."""
    appointment = selectors.appointment_for_phone(s.phone_number, appointment_id)
    if appointment is None:
        return T.REMINDER_GONE
    if appointment.status == appointment.Status.CANCELADO:
        return T.REMINDER_CANCELLED
    return T.REMINDER_PAST


def _appointment_who(a, appointments: list) -> str:
    """ "Dra. Ana Souza", and whose it is when the phone books for several people ("Dra. Ana Souza · Laura")."""
    several = len({x.paciente_nome for x in appointments}) > 1
    return f"{a.medico.nome} · {a.paciente_nome.split()[0]}" if several and a.paciente_nome else a.medico.nome


def _appointment_named(turn: _Turn, appointments: list):
    """The one appointment the request names by its doctor or its day ("remarcar a da dra. Ana pra sexta",
    "cancelar a de amanhã"), if exactly one fits."""
    e = turn.nlu.entities
    doctors = _doctors_said(turn)  # "a da dra ana pro dr carlos": Ana's is the one, Carlos the new doctor
    if doctors:
        fits = [a for a in appointments if a.medico_id in doctors]
        if len(fits) == 1:
            return fits[0]
    if e.get("especialidade_id") is not None:  # "cancela a da dermato"
        fits = [a for a in appointments if str(a.especialidade_id) == str(e["especialidade_id"])]
        if len(fits) == 1:
            return fits[0]
    words = set(re.findall(r"[a-z]+", turn.folded))
    names = {a.pk: fold(a.paciente_nome).split()[:1] for a in appointments}
    patients = {n[0] for n in names.values() if n}
    fits = [a for a in appointments if _doctor_first_name(a) in words - patients]
    if len({a.medico_id for a in fits}) == 1 and len(fits) == 1:  # "remarca a da beatriz pra quinta"
        return fits[0]
    fits = [a for a in appointments if names[a.pk] and names[a.pk][0] in words]  # "a do pedro"
    if fits and len({a.paciente_nome for a in fits}) == 1 and len({n[0] for n in names.values() if n}) > 1:
        if len(fits) == 1:
            return fits[0]
        appointments = fits
    wanted_date, _ = _wanted_moment(e)
    moved = _MOVED_TO.search(turn.folded)
    if moved:  # "remarca a de quinta pra sexta": the appointment is Thursday's, whatever the NLU took as the day
        before = dates_extract(turn.text[: moved.start()], now=turn.now).date
        wanted_date = before or wanted_date
    fits = [a for a in appointments if a.data == wanted_date]
    return fits[0] if len(fits) == 1 else None


def _doctor_first_name(appointment) -> str:
    """ "beatriz" for Dra. Beatriz Lima: how patients name the doctor of their own appointment."""
    return (doctor_name_words(appointment.medico.nome) or [""])[0]


def _first_name(name: str) -> str:
    """A patient's first name, folded ("maria" for "Maria Oliveira"): how appointments are told apart by whose."""
    return (fold(name).split() or [""])[0]


def _doctors_said(turn: _Turn) -> set[int]:
    """Every doctor the message names: the NLU's (maybe a first name alone) and each one titled or in full."""
    medico_id = turn.nlu.entities.get("medico_id")
    return turn.doctors_named | ({int(medico_id)} if medico_id is not None else set())


def _several_meant(turn: _Turn, appointments: list | None = None) -> list | None:
    """The appointments a request about several of them means ("a de terça e a de quinta", "todas menos a do
    pedro", "as duas minhas"), when it names two or more; None otherwise. Without `appointments`, those listed at
    "Qual delas?". "As duas" with other than two meant is no answer (never all three)."""
    s = turn.session
    if appointments is None:
        listed = {i["id"] for i in s.last_options.get("items", [])}
        upcoming = selectors.appointments_upcoming_for_phone(s.phone_number, now=turn.now)
        appointments = [a for a in upcoming if f"appointment:{a.pk}" in listed]
    text = turn.folded
    but = _ALL_BUT.search(text)
    if but:  # "todas menos a do pedro": the ones named after "menos" are kept
        from api_gateway.services.nlu.offline import offline_interpret

        tail = turn.text[but.end() :]
        tail_turn = dataclasses.replace(turn, text=tail, nlu=offline_interpret(text=tail, session=s, now=turn.now))
        named = _appointment_named(tail_turn, appointments)
        kept = {a.pk for a in _appointments_said(tail_turn, appointments)} | ({named.pk} if named else set())
        meant = [a for a in appointments if a.pk not in kept] if kept else []
    elif _ALL_OF_THEM.search(text):
        meant = _all_meant(turn, appointments) or []
    else:
        meant = _appointments_said(turn, appointments)
    if _BOTH.search(text) and len(meant) != 2:
        return None
    # one is enough when the message set others aside: "todas menos a do pedro" of two, "a de quarta sim, a de
    # quinta não"
    set_aside = but or any(_NEGATED_PART.search(fold(part)) for part in _PARTS.split(turn.text))
    return meant if len(meant) >= 2 or (meant and set_aside) else None


def _all_meant(turn: _Turn, appointments: list) -> list | None:
    """The appointments "todas" / "as duas" means: of a day said ("as duas de sexta"), the sender's own ("as duas
    minhas", by her WhatsApp name, not her son's); None when "as duas" does not fit (three of them: never all)."""
    meant = appointments
    day, _ = _wanted_moment(turn.nlu.entities)
    if day and any(a.data == day for a in meant):  # "as duas de sexta": Friday's, not Monday's too
        meant = [a for a in meant if a.data == day]
    mine = _first_name(turn.profile_name)
    if _OWN_ONES.search(turn.folded) and mine:
        meant = [a for a in meant if _first_name(a.paciente_nome) == mine] or meant
    if _BOTH.search(turn.folded) and len(meant) != 2:
        return None
    return meant


def _appointments_said(turn: _Turn, appointments: list) -> list:
    """Each appointment the message names on its own, by its weekday ("a de quarta"), its date ("09/12"), its
    doctor ("a da dra ana e a do dr gustavo", "a da beatriz"), its specialty ("a da cardio") or, when the names tell
    them apart, its patient ("a do pedro"). Each part of the message ("e", ",") names its own; within a part every
    detail said must fit ("a da maria de quarta" is Maria's Wednesday one, not all of Maria's)."""
    first_names = {a.pk: _first_name(a.paciente_nome) for a in appointments}
    patients = set(first_names.values()) if len(set(first_names.values())) > 1 else set()
    parts = _PARTS.split(turn.text)
    nlu_doctor = turn.nlu.entities.get("medico_id") if len(parts) == 1 else None  # the doctor of the only part
    said = []
    for part in parts:
        folded = fold(part)
        if _NEGATED_PART.search(folded):  # "a de quinta não": that one is not meant
            continue
        words = set(re.findall(r"[a-z]+", folded))
        mentions = selectors.mentions_find(part)
        doctors = {m.id for m in mentions.get("medico", [])}
        doctors |= {a.medico_id for a in appointments if _doctor_first_name(a) in words - patients}
        if nlu_doctor is not None:
            doctors.add(int(nlu_doctor))
        specialties = {m.id for m in mentions.get("especialidade", [])}
        weekdays = {day for day, name in enumerate(T.WEEKDAYS) if fold(name).split("-")[0] in words}
        dates = set(re.findall(r"\d{1,2}/\d{1,2}", folded))
        named = words & patients
        if not (doctors or specialties or weekdays or dates or named):
            continue
        for a in appointments:
            fits = (
                (not doctors or a.medico_id in doctors)
                and (not specialties or a.especialidade_id in specialties)
                and (not weekdays or a.data.weekday() in weekdays)
                and (not dates or f"{a.data:%d/%m}" in dates or f"{a.data.day}/{a.data.month}" in dates)
                and (not named or first_names[a.pk] in named)
            )
            if fits and a not in said:
                said.append(a)
    return said


def _not_as_described(turn: _Turn, appointment) -> str | None:
    """Why the patient's only appointment is not the one the request describes ("a de quinta", "com o dr
    gustavo", "a de ortopedia"), or None. A move describes it before "pra" ("remarca a de quinta pra sexta");
    without "pra", a day said with "remarcar" is where it goes, not which one."""
    e = turn.nlu.entities
    moved = _MOVED_TO.search(turn.folded) if turn.session.flow == FLOW_RESCHEDULE else None
    if moved:
        described = turn.text[: moved.start()]
        found = selectors.mentions_find(described)
        doctor_id = found["medico"][0].id if found.get("medico") else None
        specialty_id = found["especialidade"][0].id if found.get("especialidade") else None
        day = dates_extract(described, now=turn.now).date
    else:
        doctor_id, specialty_id = e.get("medico_id"), e.get("especialidade_id")
        day = None if turn.session.flow == FLOW_RESCHEDULE else _wanted_moment(e)[0]
    if turn.session.flow == FLOW_RESCHEDULE and (
        _NEW_DOCTOR.search(turn.folded) or appointment.medico_id in _doctors_said(turn)
    ):
        doctor_id = specialty_id = None  # "o dr carlos em vez da dra ana": the doctor it goes to, not which one
    if doctor_id is not None and int(doctor_id) != appointment.medico_id:
        doctor = _doctor(int(doctor_id))
        return T.NO_APPOINTMENT_WITH.format(doctor=doctor["nome"]) if doctor else None
    if doctor_id is None and specialty_id is not None and int(specialty_id) != appointment.especialidade_id:
        return T.NO_APPOINTMENT_IN.format(specialty=_specialty_name(int(specialty_id)))
    if day is not None and day != appointment.data:
        return T.NO_APPOINTMENT_ON.format(date=T.date_long(day))
    return None


def _appointment_title(a) -> str:
    return f"{T.date_short(a.data)} às {a.hora:%H:%M}"


def _late_change_notice(turn: _Turn, appointment) -> str | None:
    """The clinic's free-cancellation window (ClinicaInfo.cancelamento_horas) has passed for this appointment."""
    hours = _clinic().get("cancelamento_horas") or 0
    if hours and _aware(appointment.data, appointment.hora) - turn.now < dt.timedelta(hours=hours):
        return T.LATE_CHANGE.format(hours=hours)
    return None


def _confirm_attendance(turn: _Turn) -> Reply:
    """ "confirmo minha presença amanhã": the appointment meant is marked confirmed for the staff."""
    appointments = selectors.appointments_upcoming_for_phone(turn.session.phone_number, now=turn.now)
    if not appointments:
        return Reply(text=T.NO_APPOINTMENTS)
    named = appointments[0] if len(appointments) == 1 else _appointment_named(turn, appointments)
    meant = _all_meant(turn, appointments) if named is None and _ALL_OF_THEM.search(turn.folded) else None
    if meant:  # "confirmo as duas consultas"
        return _attendance_confirmed(turn, meant)
    if named is None:  # "confirmo presença" with two: "Qual delas?" ("as duas" confirms both)
        return _start_manage(turn, FLOW_CONFIRM)
    return _attendance_confirmed(turn, [named])


def _attendance_confirmed(turn: _Turn, appointments: list, *, keep_flow: bool = False) -> Reply:
    lines, notes = [], []
    for appointment in appointments:
        if note := _caught_by_block(turn, appointment):  # not confirmed: the doctor is away then
            notes.append(note)
            continue
        try:
            clinic_services.appointment_confirm(
                agendamento_id=appointment.pk, paciente_telefone=turn.session.phone_number
            )
        except clinic_services.AppointmentNotFound:
            continue
        lines.append(f"{T.date_long(appointment.data)} às {appointment.hora:%H:%M} com {appointment.medico.nome}")
    if not keep_flow:
        _flow_reset(turn.session)
    if not lines and not notes:
        return Reply(text=T.NO_APPOINTMENTS)
    confirmed = [T.ATTENDANCE_CONFIRMED.format(when=" e ".join(lines), address=_clinic()["endereco"])] if lines else []
    return Reply(text="\n\n".join([*confirmed, *notes]))


def _manage_selected(turn: _Turn, appointment) -> Reply:
    s = turn.session
    if s.flow == FLOW_CONFIRM:
        return _attendance_confirmed(turn, [appointment])
    when = f"{T.date_long(appointment.data)} às {appointment.hora:%H:%M}"
    # A move the clinic's block forces costs the patient nothing: no late-change warning for it.
    late = None if _block_over_appointment(appointment) else _late_change_notice(turn, appointment)
    if s.flow == FLOW_CANCEL:
        if late:
            turn.prefix.append(late)
        s.current_state = S.CONFIRMING
        options = [
            Option("confirm:yes", T.BUTTON_YES),
            Option("confirm:no", T.BUTTON_NO),
            Option("manage:reschedule", T.BUTTON_RESCHEDULE),
        ]
        question = T.CONFIRM_CANCEL.format(when=when, doctor=appointment.medico.nome)
        return _with_prefix(turn, _buttons(s, "confirm", question, options))
    # Reschedule: same doctor (unless another is asked for) and specialty, new date and time.
    s.selected_doctor_id = appointment.medico_id
    s.selected_specialty_id = appointment.especialidade_id
    others = _doctors_said(turn) - {appointment.medico_id}
    if len(others) == 1 and (_NEW_DOCTOR.search(turn.folded) or _MOVED_TO.search(turn.folded)):
        s.selected_doctor_id = others.pop()  # "troca o médico pro dr carlos": his slots (the plan is checked next)
    s.selected_convenio_id = appointment.convenio_id
    s.insurance_type = appointment.convenio.nome if appointment.convenio_id else "particular"
    # "remarcar pra quarta às 9": the new moment, unless the message only described the appointment being moved.
    wanted_date, wanted_time = _wanted_moment(turn.nlu.entities)
    wanted_from = _iso_date(turn.nlu.entities.get("a_partir_de"))  # "pra semana que vem": from its Monday
    moved = _MOVED_TO.search(turn.folded)
    if moved:  # "remarca a de quinta pra sexta": Friday is where it goes
        target = dates_extract(turn.text[moved.end() :], now=turn.now)
        if target.date and target.grain == "day":
            wanted_date, wanted_from = target.date, None
        elif target.date and target.grain in {"week", "from"}:
            wanted_date, wanted_from = None, target.date
        wanted_time = target.time or wanted_time
    if wanted_time is None and _SAME_TIME.search(turn.folded):  # "pro mesmo horário na outra semana"
        wanted_time = appointment.hora
    if wanted_date == appointment.data and wanted_time in {None, appointment.hora}:
        wanted_date = wanted_time = None  # "a de quarta": the appointment described, not where it goes
    other_week = turn.nlu.entities.get("outra_semana") or _OTHER_WEEK.search(turn.folded)
    if wanted_date is None and wanted_from is None and other_week:
        # "trocar pra outra semana": another week than the appointment's, so from the Monday after it
        wanted_from = appointment.data + dt.timedelta(days=7 - appointment.data.weekday())
    s.preferred_date, s.preferred_time = wanted_date, wanted_time
    s.preferred_from = wanted_from if wanted_date is None else None
    if turn.nlu.entities.get("periodo") in {"manha", "tarde", "noite"}:  # "pra sexta depois do almoço"
        s.preferred_period = turn.nlu.entities["periodo"]
    s.preferred_after, s.preferred_before = _wanted_bounds(turn.nlu.entities)  # "pra mais tarde, depois das 17h"
    s.excluded_weekdays = sorted(_weekdays_ruled_out(turn.nlu.entities))  # "remarca pra terça ou quinta"
    turn.prefix.append(T.RESCHEDULE_START.format(when=when, doctor=appointment.medico.nome))
    if late:
        turn.prefix.append(late)
    s.patient_name = appointment.paciente_nome  # the summary names whose appointment moves (maybe a child's)
    return _advance(turn)


def _manage_step(turn: _Turn) -> Reply:
    s, nlu = turn.session, turn.nlu
    if s.current_state == S.MANAGING_APPOINTMENT:
        several = _several_meant(turn) if s.flow in {FLOW_CANCEL, FLOW_CONFIRM} else None
        if several:  # "todas menos a do pedro", "a de terça e a de quinta": one question (or one answer) for them
            if s.flow == FLOW_CANCEL:
                return _confirm_cancel_all(turn, [a.pk for a in several])
            return _attendance_confirmed(turn, several)
        e = dict(nlu.entities)
        if nlu.intent == Intent.CONFIRMAR and len(s.last_options.get("items", [])) == 1:
            e.setdefault("opcao", 1)  # "sim" to the one row shown
        _resolve_option(turn, e)
        appointment = _own_appointment(s) if s.target_appointment_id else None
        if appointment is None:  # "a de quinta pra terça 15h": named by its day (or doctor), and where it goes
            listed = {i["id"] for i in s.last_options.get("items", [])}
            upcoming = selectors.appointments_upcoming_for_phone(s.phone_number, now=turn.now)
            appointment = _appointment_named(turn, [a for a in upcoming if f"appointment:{a.pk}" in listed])
            if appointment is not None:
                s.target_appointment_id = appointment.pk
        text = turn.folded
        if appointment is None and (nlu.intent == Intent.NEGAR or _NONE_OF_THEM.search(text)):
            _flow_reset(s)  # "nenhuma", "deixa": a way out of "Qual delas?"
            return Reply(text=T.NOTHING_CHANGED)
        if appointment is None and s.flow == FLOW_CANCEL and _ALL_OF_THEM.search(text):
            return _confirm_cancel_all(turn)
        if appointment is None and nlu.intent == Intent.CANCELAR and s.flow == FLOW_RESCHEDULE:
            s.flow = FLOW_CANCEL  # "pensando bem, quero cancelar": the same list, now to cancel
            return _appointment_choice(s.last_options.get("items", []))
        if appointment is None:
            turn.understood = False
            return _appointment_choice(s.last_options.get("items", []))
        wanted = s.last_options.get("wanted")
        if s.flow == FLOW_RESCHEDULE and wanted:  # the moment said with "remarca pra sexta às 10h", not "a de terça"
            for key in ("data", "hora", "periodo", "a_partir_de", "outra_semana"):
                nlu.entities.pop(key, None)
            nlu.entities.update(wanted)
        return _manage_selected(turn, appointment)
    # CONFIRMING a cancellation
    upcoming = selectors.appointments_upcoming_for_phone(s.phone_number, now=turn.now)
    targets = s.last_options.get("targets")
    if targets:  # "cancela só a de quinta" at "Quer mesmo cancelar estas 2?": only that one, asked once more
        named = (
            None
            if _ALL_OF_THEM.search(turn.folded)
            else _appointment_named(turn, [a for a in upcoming if a.pk in targets])
        )
        if named is None and _stale_question(turn) and nlu.intent in {Intent.CONFIRMAR, Intent.CANCELAR}:
            turn.prefix.append(T.CANCEL_ASKED_AGAIN)
            return _with_prefix(turn, _confirm_cancel_all(turn, targets))
        if named is None:
            return _cancel_all(turn)
        s.last_options, s.target_appointment_id = {}, named.pk
        return _manage_selected(turn, named)
    appointment = _own_appointment(s)
    if appointment is None:
        _flow_reset(s)
        return Reply(text=T.NO_APPOINTMENTS)
    if _ALL_OF_THEM.search(turn.folded) and len(upcoming) > 1 and nlu.intent in {Intent.CONFIRMAR, Intent.CANCELAR}:
        return _confirm_cancel_all(turn)  # "cancela as duas" at the question about one of them
    other = _other_appointment_meant(turn, appointment, upcoming)
    if other is not None:  # "não, a outra", "não é essa, é a do ortopedista"
        s.target_appointment_id = other.pk
        return _manage_selected(turn, other)
    if _stale_question(turn) and nlu.intent in {Intent.CONFIRMAR, Intent.CANCELAR}:
        turn.prefix.append(T.CANCEL_ASKED_AGAIN)  # "ok" a day later: asked again rather than cancelled
        return _manage_selected(turn, appointment)
    text = turn.folded
    if nlu.intent in {Intent.REINICIAR, Intent.VOLTAR}:  # "menu", "voltar": out of the question, nothing cancelled
        _flow_reset(s)
        return _menu(s, f"{T.KEEP_APPOINTMENT} {T.MENU_AGAIN}")
    leaving = nlu.intent in {Intent.DESPEDIDA, Intent.AGRADECIMENTO, Intent.AGUARDAR}  # "tchau": kept as it is
    keep = nlu.intent == Intent.NEGAR or _KEEP_APPOINTMENT.search(text) or leaving
    if nlu.intent == Intent.REMARCAR or _RATHER_MOVE.search(text):  # "e se eu remarcar em vez de cancelar?"
        _flow_reset(s)
        s.flow, s.target_appointment_id = FLOW_RESCHEDULE, appointment.pk
        return _manage_selected(turn, appointment)
    if not keep and nlu.intent in {Intent.CONFIRMAR, Intent.CANCELAR}:
        when = f"{T.date_long(appointment.data)} às {appointment.hora:%H:%M}"
        clinic_services.appointment_cancel(agendamento_id=appointment.pk, paciente_telefone=s.phone_number)
        _time_given_up(s.phone_number, [appointment.medico_id])
        _flow_reset(s)
        return Reply(text=T.CANCELLED.format(when=when, doctor=appointment.medico.nome))
    if keep:
        _flow_reset(s)
        return Reply(text=T.KEEP_APPOINTMENT)
    turn.understood = False
    return _manage_selected(turn, appointment)


def _other_appointment_meant(turn: _Turn, asked_about, upcoming: list):
    """At "Quer mesmo cancelar a de quarta?": another of the patient's appointments, named ("é a do ortopedista")
    or "a outra" when there are two."""
    others = [a for a in upcoming if a.pk != asked_about.pk]
    if not others:
        return None
    named = _appointment_named(turn, upcoming)
    if named is not None and named.pk != asked_about.pk:
        return named
    if _THE_OTHER.search(turn.folded) and len(others) == 1:
        return others[0]
    return None


def _stale_question(turn: _Turn) -> bool:
    last = turn.session.last_activity
    return bool(last) and turn.now - last > CANCEL_QUESTION_STALE


def _confirm_cancel_all(turn: _Turn, targets: list[int] | None = None) -> Reply:
    """ "cancela as duas": one question for all of them, then one cancellation each. `targets`: the ones the
    question was about, when it is asked again."""
    s = turn.session
    appointments = selectors.appointments_upcoming_for_phone(s.phone_number, now=turn.now)[:MAX_LIST_ROWS]
    if targets is not None:
        appointments = [a for a in appointments if a.pk in targets]
    elif (meant := _all_meant(turn, appointments)) is not None:
        appointments = meant
    elif len(appointments) > 1:  # "cancela as duas" with three: which ones, never all three
        s.flow = FLOW_CANCEL
        return _ask_which(turn, appointments)
    if not appointments:
        _flow_reset(s)
        return Reply(text=T.NO_APPOINTMENTS)
    if len(appointments) == 1:
        s.target_appointment_id = appointments[0].pk
        return _manage_selected(turn, appointments[0])
    s.current_state = S.CONFIRMING
    items = _appointment_bullets(appointments)
    late = next((n for n in (_late_change_notice(turn, a) for a in appointments) if n), None)
    question = T.CONFIRM_CANCEL_ALL.format(count=len(appointments), items=items)
    options = [Option("confirm:yes", T.BUTTON_YES), Option("confirm:no", T.BUTTON_NO)]
    reply = _buttons(s, "confirm", f"{late}\n\n{question}" if late else question, options)
    s.last_options["targets"] = [a.pk for a in appointments]
    return reply


def _cancel_all(turn: _Turn) -> Reply:
    s, nlu = turn.session, turn.nlu
    targets = s.last_options["targets"]
    keep = nlu.intent == Intent.NEGAR or _KEEP_APPOINTMENT.search(turn.folded)
    if keep or nlu.intent not in {Intent.CONFIRMAR, Intent.CANCELAR}:
        if not keep:
            turn.understood = False
            return _confirm_cancel_all(turn)
        _flow_reset(s)
        return Reply(text=T.NOTHING_CHANGED)
    cancelled = []
    for pk in targets:
        try:
            cancelled.append(clinic_services.appointment_cancel(agendamento_id=pk, paciente_telefone=s.phone_number))
        except clinic_services.AppointmentNotFound:
            continue  # cancelled meanwhile by another channel
    if cancelled:
        _time_given_up(s.phone_number, [a.medico_id for a in cancelled])
    _flow_reset(s)
    return Reply(text=T.CANCELLED_ALL.format(items=_appointment_bullets(cancelled)) if cancelled else T.NO_APPOINTMENTS)


def _appointment_bullets(appointments: list) -> str:
    return "\n".join(f"• {_appointment_title(a)} — {a.medico.nome}" for a in appointments)


def _own_appointment(s: ConversationSession):
    for appointment in selectors.appointments_upcoming_for_phone(s.phone_number):
        if appointment.pk == s.target_appointment_id:
            return appointment
    return None


def _reschedule(turn: _Turn) -> Reply:
    s = turn.session
    doctor = _doctor(s.selected_doctor_id)
    before = _own_appointment(s) if settings.WHATSAPP_WAITLIST_TEMPLATE else None  # whose time the move gives up
    try:
        appointment = clinic_services.appointment_reschedule(
            agendamento_id=s.target_appointment_id,
            paciente_telefone=s.phone_number,
            data=s.preferred_date,
            hora=s.preferred_time,
            medico_id=s.selected_doctor_id,
        )
    except clinic_services.SlotUnavailable:
        return _slot_lost(turn, doctor)
    except clinic_services.PatientBusy as exc:  # another of the patient's appointments is at that time
        return _times_again(turn, doctor, exc.message)
    except (clinic_services.PlanNotAccepted, clinic_services.InvalidBooking) as exc:  # changed since the summary
        turn.prefix.append(exc.message)
        s.selected_doctor_id = None
        return _advance(turn)
    except clinic_services.AppointmentNotFound:
        _flow_reset(s)
        return Reply(text=T.NO_APPOINTMENTS)
    if before is not None:
        _time_given_up(s.phone_number, [before.medico_id])
    _flow_reset(s)
    return Reply(
        text=T.RESCHEDULED.format(
            date=T.date_long(appointment.data),
            time=f"{appointment.hora:%H:%M}",
            doctor=doctor["nome"],
            address=_clinic()["endereco"],
        )
    )


def _about_booked(turn: _Turn) -> Reply | None:
    """A message about the patient's booked appointments: kept ("mantém a consulta"), moved ("dá pra ser mais
    cedo?") or listed ("é que horas?"). None when the patient has none (then it may well be a new booking)."""
    if not selectors.appointments_upcoming_for_phone(turn.session.phone_number, now=turn.now):
        return None
    if _KEEP_APPOINTMENT.search(turn.folded):
        upcoming = selectors.appointments_upcoming_for_phone(turn.session.phone_number, now=turn.now)
        notes = [note for a in upcoming if (note := _caught_by_block(turn, a))]
        return Reply(text="\n\n".join(notes) if notes else T.KEEP_APPOINTMENT)  # not "it stays" for one that can't
    if _EARLIER_OR_LATER.search(turn.folded):
        return _start_manage(turn, FLOW_RESCHEDULE)
    return _list_appointments(turn)


def _list_appointments(turn: _Turn) -> Reply:
    appointments = selectors.appointments_upcoming_for_phone(turn.session.phone_number, now=turn.now)
    waiting = [line] if (line := _waitlist_line(selectors.waitlist_open_for_phone(turn.session.phone_number))) else []
    if not appointments:
        text = "\n\n".join([T.NO_APPOINTMENTS, *waiting])
    else:
        items = "\n".join(
            f"• {T.date_long(a.data)} às {a.hora:%H:%M} — {_appointment_who(a, appointments)}" for a in appointments
        )
        notes = [note for a in appointments if (note := _caught_by_block(turn, a))]
        text = "\n\n".join([T.MY_APPOINTMENTS.format(items=items), *notes, *waiting])
    return _answer_then_resume(turn, text) or Reply(text=text)  # asked mid-booking: the booking goes on


def _block_over_appointment(appointment) -> dict | None:
    """The agenda block that took an appointment's time after it was booked (the doctor's holidays, the clinic's
    recess). The staff were told when the block was saved (rag_agent.admin); the patient is told when they ask."""
    detail = selectors.doctor_detail(appointment.medico_id) or {}
    return block_over(detail.get("bloqueios", []), appointment.data, appointment.hora, appointment.minutes)


def _caught_by_block(turn: _Turn, appointment) -> str | None:
    """ "⚠️ Dra. Ana Souza não atende de 09/12 a 11/12. A consulta de ... precisa de outro horário: ...", or None.
    In a human handoff the bot will not move it ("remarcar" reaches the staff), so the staff are named instead."""
    block = _block_over_appointment(appointment)
    if block is None:
        return None
    when = f"{T.date_long(appointment.data)} às {appointment.hora:%H:%M}"
    note = T.APPOINTMENT_IN_BLOCK_STAFF if turn.session.current_state == S.HUMAN_HANDOFF else T.APPOINTMENT_IN_BLOCK
    return note.format(away=clinic_services.block_message(block, appointment.medico.nome), when=when)


# --- questions ---------------------------------------------------------------------------------------------------


def _answer_question(turn: _Turn) -> Reply:
    s = turn.session
    memory = _question_memory(turn)
    # Gemini read the whole question against the retrieved facts, so its grounded answer comes first; the
    # templates answer (exactly, from the tables) whenever the model was not asked or gave no answer.
    answer = (turn.nlu.answer or "").strip() if turn.nlu.source == "gemini" else ""
    if turn.nlu.entities.get("topico") == "urgencia":
        answer = T.NO_EMERGENCY_CARE  # a fixed safety answer, never the model's wording
    answer = answer or _answers_each_question(turn) or _answer_from_data(turn)
    if not answer and turn.nlu.source == "option" and not s.flow:  # "Tirar dúvidas": the common topics, as a list
        rows = [(f"topic:{key}", title) for key, title in _QUESTION_TOPICS.items()]
        s.last_options = {"kind": "topic", "items": [{"id": key, "title": title} for key, title in rows]}
        options = [Option(key, title) for key, title in rows]
        return Reply(text=T.QUESTIONS_PROMPT, kind="list", button_label=T.BUTTON_QUESTIONS, options=options)
    if not answer:
        answer = T.QUESTIONS_PROMPT if turn.nlu.source == "option" else T.UNKNOWN_ANSWER
    if resumed := _answer_then_resume(turn, answer):
        return resumed
    # A person offered before this answer is no longer what a "sim" or an "ok" answers (the book offer after a
    # booking stays: "quanto custa?" then "sim" still books the next patient)
    kept = {k: v for k, v in s.last_options.items() if not (k == "offer" and v == "handoff")}
    s.last_options = {**kept, **memory}
    if answer == T.UNKNOWN_ANSWER:  # it offers a person: a "sim" next takes it
        s.last_options["offer"] = "handoff"
    elif answer.endswith(T.LATE_HELP):  # "posso remarcar (diga *remarcar*) ou a recepção (diga *atendente*)"
        s.last_options["offer"] = "late"  # a bare "sim" picks neither: it is not taken as an "ok"
    return Reply(text=answer)


def _answer_then_resume(turn: _Turn, answer: str) -> Reply | None:
    """The answer to a question asked mid-flow, followed by the step it interrupted ("Voltando ao que estávamos
    fazendo: ..."); None outside a flow's question steps."""
    s = turn.session
    if not (s.flow and s.current_state in BOOKING_STATES | {S.COLLECTING_PATIENT_INFO, S.MANAGING_APPOINTMENT}):
        return None
    resume_turn = _Turn(
        session=s,
        nlu=NLUResult(intent=Intent.INFORMAR, confidence=1.0, source=RESUME_SOURCE),
        now=turn.now,
        option_id=None,
        profile_name=turn.profile_name,
    )
    resume = _prompt_again(resume_turn)
    s.previous_state, s.current_state = s.current_state, S.ANSWERING_QUESTION
    return Reply(
        text=answer + T.RESUME.format(prompt=resume.text),
        options=resume.options,
        kind=resume.kind,
        button_label=resume.button_label,
    )


def _answers_each_question(turn: _Turn) -> str | None:
    """ "qual o endereço e o horário?", "aceita unimed? e onde fica?": each question of a message answered from the
    tables, in order, when it asks more than one thing (None otherwise: the message's one answer is found whole).
    The parts are read by the offline rules, which cost nothing; Gemini reads a message whole by itself."""
    answers: list[str] = []
    for part, nlu in _question_parts(turn, min_words=2):
        e = nlu.entities
        if (e.get("convenio_id") or e.get("convenio")) and e.get("topico") not in {"preco", "convenio"}:
            e["topico"] = "convenio"  # "ginecologista atende sábado? e pelo bradesco?": the plan, not the days
        elif nlu.intent != Intent.PERGUNTA and not e.get("exame_id"):
            if answers and (e.get("especialidade_id") or e.get("medico_id")):
                e["topico"] = turn.session.last_options.get("topic")  # "quanto custa cardio? e pediatria?"
            else:
                continue
        part_turn = dataclasses.replace(turn, nlu=nlu, text=part)
        answer = _answer_from_data(part_turn)
        if not turn.session.flow:  # "tem dermatologista? quanto custa?": the price follows the specialty
            turn.session.last_options = {**turn.session.last_options, **_question_memory(part_turn)}
        if answer and answer not in answers:
            answers.append(answer)
    return "\n\n".join(answers) if len(answers) >= 2 else None


def _question_parts(turn: _Turn, *, min_words: int):
    """Each question of a message ("?", ";" or "e" before a new question) with its reading by the offline rules,
    read one at a time so a part can follow what an earlier part's answer remembered. Nothing for one question."""
    parts = [p.strip() for p in _QUESTION_BREAK.split(turn.text or "") if len(p.split()) >= min_words]
    if len(parts) < 2:
        return
    from api_gateway.services.nlu.offline import offline_interpret

    for part in parts:
        yield part, offline_interpret(text=part, session=turn.session, now=turn.now)


def _side_questions(turn: _Turn) -> list[str]:
    """The answers to the data questions asked beside a booking request, each from the tables ("quanto é?",
    "aceita unimed?"): they are not lost because the message also asked for a slot."""
    answers = []
    for part, nlu in list(_question_parts(turn, min_words=1))[1:]:
        if nlu.intent != Intent.PERGUNTA or nlu.entities.get("topico") not in _SIDE_TOPICS:
            continue
        nlu.entities.setdefault("especialidade_id", turn.nlu.entities.get("especialidade_id"))
        nlu.entities.setdefault("medico_id", turn.nlu.entities.get("medico_id"))
        answer = _answer_from_data(dataclasses.replace(turn, nlu=nlu, text=part))
        if answer and answer not in answers:
            answers.append(answer)
    return answers


def _prompt_again(turn: _Turn) -> Reply:
    """The question the flow was waiting on, asked again after a question of the patient's was answered: the
    booking's next step, or "Qual delas?" / "Quer mesmo cancelar?" (never a booking question in their place)."""
    s = turn.session
    if s.current_state == S.MANAGING_APPOINTMENT:
        return _appointment_choice(s.last_options.get("items", []))
    if s.flow == FLOW_CANCEL and s.current_state == S.CONFIRMING:
        targets = s.last_options.get("targets")
        if targets:
            return _confirm_cancel_all(turn, targets)
        appointment = _own_appointment(s)
        if appointment is None:
            _flow_reset(s)
            return Reply(text=T.NO_APPOINTMENTS)
        return _manage_selected(turn, appointment)
    return _advance(turn)


_QUESTION_TOPICS = {
    "convenio": "Convênios aceitos",
    "preco": "Preço das consultas",
    "especialidades": "Especialidades",
    "medicos": "Médicos",
    "exames": "Exames e preparo",
    "endereco": "Endereço",
    "horario": "Horário de funcionamento",
}
_MEMORY_KEYS = ("topic", "exam", "specialty", "doctor", "plan")


def _question_memory(turn: _Turn) -> dict:
    """What the questions so far were about, so a follow-up that names nothing stays on it: "e de pediatria?"
    after a price question asks the same thing; "e precisa de jejum?" stays on the exam; "quanto custa?" after
    "tem dermatologista pela amil?" is about Dermatologia by Amil. A new exam, specialty or doctor replaces the
    subject; the plan stays until another (or "particular") is said."""
    e, before = turn.nlu.entities, turn.session.last_options or {}
    memory = {key: before[key] for key in _MEMORY_KEYS if before.get(key) is not None}
    if e.get("topico"):
        memory["topic"] = e["topico"]
    subject = {"exam": e.get("exame_id"), "doctor": e.get("medico_id"), "specialty": e.get("especialidade_id")}
    if any(subject.values()):  # a new subject replaces the old one
        for key, value in subject.items():
            memory.pop(key, None)
            if value:
                memory[key] = value
    if e.get("convenio_id") or e.get("particular"):
        memory["plan"] = e.get("convenio_id")
    return memory


def _tells_a_need(nlu: NLUResult) -> bool:
    """A complaint or a specialty the clinic lacks, said without asking to book, nor asking a question the
    tables answer otherwise ("quanto custa consulta para dor no joelho?" is a price question)."""
    e = nlu.entities
    missing = _missing_specialty(e)
    if not (e.get("sintoma") or missing):
        return False
    if e.get("medico_id") or _has_booking_entities(nlu, _SCHEDULING_KEYS):
        return False
    if nlu.intent == Intent.AGENDAR:
        return missing  # "quero marcar com psiquiatra": say what there is before asking for anything
    if nlu.intent == Intent.PERGUNTA:
        return e.get("topico") in {None, "medicos", "especialidades"}
    return nlu.intent in {Intent.INFORMAR, Intent.DESCONHECIDO}


def _missing_specialty(e: dict) -> bool:
    """A specialty named that the clinic does not have (a name without an id, and no doctor named)."""
    return bool(e.get("especialidade") and not e.get("especialidade_id") and not e.get("medico_id"))


def _answer_need(turn: _Turn) -> Reply:
    """A complaint gets the specialty that sees it, its doctors and an offer to book (a "sim" books it); a
    specialty the clinic lacks, or a complaint none of its specialties sees, gets the ones it has."""
    s, e = turn.session, turn.nlu.entities
    specialties = _catalog()["especialidades"]
    specialty_id = e.get("especialidade_id")
    if not (specialty_id and _by_id(specialties, specialty_id)):
        said = T.COMPLAINT_NOT_SEEN if e.get("sintoma") else T.SPECIALTY_MISSING
        offered = T.SPECIALTIES_LIST.format(items=T.join_names([sp["nome"] for sp in specialties[:15]]))
        return Reply(text=f"{said.format(complaint=e.get('sintoma'), specialty=e['especialidade'])} {offered}")
    doctors = selectors.doctor_list(especialidade_id=specialty_id)
    s.selected_specialty_id = int(specialty_id)  # so "sim", "quanto custa?" or "quero marcar" follow on
    _remember_doctors(s, doctors)
    s.last_options["offer"] = "book"
    if e.get("para_quem"):  # "minha filha de 8 anos tá com dor de ouvido" then "sim": her name will be asked
        s.last_options["para_quem"] = e["para_quem"]
    name = _specialty_name(specialty_id)
    parts = [T.COMPLAINT_SPECIALTY.format(complaint=e.get("sintoma"), specialty=name)]
    if doctors:
        parts.append(T.DOCTORS_LIST.format(where=f" de {name}", items=T.join_names([d["nome"] for d in doctors[:10]])))
    parts.append(T.OFFER_BOOKING)
    return Reply(text=" ".join(parts))


def _remember_doctors(s: ConversationSession, doctors: list[dict]) -> None:
    """Doctors named in an answer become the offered options, so "quero com ele" / "o primeiro" can follow. A
    reminder still waiting for its answer is kept aside: a "sim" next still confirms the appointment."""
    before = s.last_options or {}
    reminded = before.get("appointments") if before.get("kind") == "reminder" else before.get("reminded")
    s.last_options = {
        "kind": "doctor",
        "items": [{"id": f"doctor:{d['id']}", "title": d["nome"]} for d in doctors[:MAX_LIST_ROWS]],
        "prose": True,  # named in a sentence, not a numbered list: "3" is not the third of them
    }
    if reminded:
        s.last_options.update(reminded=reminded, blocked=before.get("blocked", []))


def _answer_from_data(turn: _Turn) -> str | None:
    """Templated answers straight from the clinic's tables: exact, free, and never invented."""
    e, catalog = turn.nlu.entities, _catalog()
    clinic = catalog["clinica"]
    topic = e.get("topico")
    exam = _by_id(catalog["exames"], e.get("exame_id"))
    doctor = _doctor(e["medico_id"]) if e.get("medico_id") else _doctor_referred(turn)
    other_subject = doctor or e.get("especialidade_id") or _CONSULTATION_WORD.search(turn.folded)
    if exam is None and topic in {"preco", "preparo"} and not other_subject:
        exam = _by_id(catalog["exames"], turn.session.last_options.get("exam"))  # the exam just talked about
    remembered = turn.session.last_options if not turn.session.flow else {}
    specialty_id = e.get("especialidade_id") or turn.session.selected_specialty_id
    if not (specialty_id or doctor or exam):  # "quanto custa?" after "o dr lucas atende amil?": about him
        specialty_id = remembered.get("specialty")
        doctor = _doctor(remembered["doctor"]) if remembered.get("doctor") and not specialty_id else None
    if e.get("medico") and not e.get("medico_id"):  # "quanto custa com o dr roberto?": no such doctor here
        return f"{_doctor_unknown(e['medico'])} {T.DOCTORS_LIST.format(where='', items=_all_doctor_names())}"
    if exam and _EXAM_RESULT.search(turn.folded) and topic != "preco":
        return None  # "o resultado do hemograma sai quando?": not in the clinic's data (not its price instead)
    if exam and topic in {None, "preco", "preparo", "exames", "politicas"}:
        return _exam_line(exam)  # price and preparation: "quanto custa o colesterol e precisa de jejum?"
    if topic == "agenda":  # "o dr gustavo atende sábado?", "que dias a dra ana atende?"
        return _agenda_answer(turn, doctor, e.get("especialidade_id") or specialty_id)
    if topic == "endereco":
        return f"Estamos na {clinic['endereco']}."
    if topic == "horario":
        asked_day, _ = _wanted_moment(e)
        closed = _clinic_closed(asked_day) if asked_day else None
        if closed:  # "vocês abrem no natal?", "dia 25/12 funciona?"
            return closed
        hours = f"Nosso horário de funcionamento: {clinic['horario_funcionamento']}."
        if _HOLIDAY_WORD.search(turn.folded) and not asked_day and settings.CLINIC_HOLIDAYS:
            return f"{T.CLOSED_ON_HOLIDAYS} {hours}"  # "abre feriado?"
        if asked_day and _WHO_WORKS.search(turn.folded):  # "qual médico atende sábado?": those doctors
            return _agenda_answer(turn, None, None)
        context = remembered.get("specialty") or remembered.get("doctor")
        if asked_day and context and not _CLINIC_ITSELF.search(turn.folded):
            # "tem cardiologista?" then "atende sábado?": that specialty's (or doctor's) days, not the clinic's
            known = (
                _doctor(remembered["doctor"]) if remembered.get("doctor") and not remembered.get("specialty") else None
            )
            return _agenda_answer(turn, known, remembered.get("specialty"))
        if asked_day:  # "vocês abrem hoje?", "e domingo?": yes or no for that day, from the doctors' shifts
            open_days = {sh["dia_semana"] for d in catalog["medicos"] for sh in _shifts(d["id"])}
            day = _day_words(asked_day, turn.now)
            if asked_day.weekday() not in open_days:
                return f"{T.CLOSED_ON_DAY.format(day=day)} {hours}"
            part = blocks_on(catalog.get("fechamentos", []), asked_day)  # "24/12 das 12:00 às 18:00"
            closing = clinic_services.block_message(part[0], "") if part else None
            return " ".join(filter(None, [T.OPEN_ON_DAY.format(day=day), closing, hours]))
        return " ".join(filter(None, [hours, _clinic_closures(turn.now)]))  # "qual o horário?" in December
    if topic == "telefone":
        return f"Nosso telefone é {clinic['telefone']}."
    if topic == "email":
        return f"Nosso e-mail é {clinic['email']}."
    if topic == "politicas":
        policy = clinic.get("politicas") or ""
        sentences = re.split(r"(?<=[.!?])\s+", policy)
        if _LATE.search(turn.folded):  # "vou me atrasar 20 min": the lateness rule, and what can be done
            rule = [x for x in sentences if re.search(r"atras|toleran", fold(x))]
            if rule:
                return " ".join(rule) + T.LATE_HELP
        if ARRIVING.search(turn.folded):  # "cheguei": the desk, and what to show there
            return " ".join([T.ARRIVING, *(x for x in sentences if re.search(r"document|carteirinha", fold(x)))])
        return policy or None
    if topic == "duracao":
        if exam:  # "quanto tempo demora o resultado do hemograma?": not in the clinic's data
            return None
        if doctor:
            return T.DOCTOR_DURATION.format(doctor=doctor["nome"], minutes=doctor["duracao_consulta_minutos"])
        named = specialty_id  # "quanto tempo dura a consulta com o ortopedista?", or the one just talked about
        medicos = selectors.doctor_list(especialidade_id=int(named)) if named else catalog["medicos"]
        if named and len(medicos) == 1:
            return T.DOCTOR_DURATION.format(doctor=medicos[0]["nome"], minutes=medicos[0]["duracao_consulta_minutos"])
        minutes = sorted({d["duracao_consulta_minutos"] for d in medicos})
        if minutes:
            if len(minutes) == 1:
                return T.DURATION_SINGLE.format(minutes=minutes[0])
            return T.DURATION_RANGE.format(low=minutes[0], high=minutes[-1])
        return None
    if topic == "preparo":
        return T.ASK_WHICH_EXAM.format(items=T.join_names([x["nome"] for x in catalog["exames"][:10]]))
    if topic == "preco":
        # the plan said now, else the last one asked about ("e bradesco?"), else the booking's
        plan_id = None if e.get("particular") else e.get("convenio_id") or remembered.get("plan")
        plan_id = plan_id or (None if e.get("particular") else turn.session.selected_convenio_id)
        chosen = _doctor(turn.session.selected_doctor_id) if turn.session.flow else None
        if plan_id and chosen and not (doctor or e.get("especialidade_id")):
            doctor = chosen  # "ok, mas quanto custa?" at the summary: this booking's doctor, not the specialty's
        if plan_id and (doctor or specialty_id):
            return _plan_price_answer(turn.session, int(plan_id), doctor, specialty_id)
        if doctor:
            _remember_doctors(turn.session, [doctor])  # so "quero marcar com ele" can follow
            return T.DOCTOR_PRICE.format(doctor=doctor["nome"], price=T.money(doctor["preco_consulta"]))
        chosen = _doctor(turn.session.selected_doctor_id) if turn.session.flow else None
        if chosen and not e.get("especialidade_id"):  # "quanto é se for particular?" with a doctor chosen
            return T.DOCTOR_PRICE.format(doctor=chosen["nome"], price=T.money(chosen["preco_consulta"]))
        if specialty_id:
            doctors = selectors.doctor_list(especialidade_id=specialty_id)[:5]
            items = T.join_names([f"{d['nome']} R$ {T.money(d['preco_consulta'])}" for d in doctors])
            return T.SPECIALTY_PRICE.format(specialty=_specialty_name(specialty_id), items=items)
        if plan_id:  # "quanto custa pela unimed?": who takes the plan, not the private prices
            in_plan = [d["nome"] for d in catalog["medicos"] if int(plan_id) in d["convenio_ids"]]
            if in_plan:
                return T.PLAN_PRICE_ANY.format(plan=_plan_name(int(plan_id)), items=T.join_names(in_plan))
        prices = [d["preco_consulta"] for d in catalog["medicos"] if d.get("preco_consulta") is not None]
        if prices:  # "quanto custa a consulta?": the range, and what would narrow it
            return T.CONSULTATION_PRICE_RANGE.format(low=T.money(min(prices)), high=T.money(max(prices)))
        return None
    if topic == "medicos" and e.get("medico_id") and doctor:  # "quem é a dra ana?"
        asked_specialty = e.get("especialidade_id")
        if asked_specialty and int(asked_specialty) not in doctor["especialidade_ids"]:
            # "o dr igor é pediatra?": no, and who is
            others = selectors.doctor_list(especialidade_id=int(asked_specialty))[:MAX_LIST_ROWS]
            return T.DOCTOR_NOT_OF_SPECIALTY.format(
                doctor=doctor["nome"],
                specialty=_specialty_name(int(asked_specialty)),
                his=T.join_names([_specialty_name(sid) for sid in doctor["especialidade_ids"]]),
                others=T.join_names([d["nome"] for d in others]) or "nenhum médico no momento",
            )
        profile = _doctor_profile(turn.session, doctor)
        return f"Sim. {profile}" if asked_specialty else profile
    named_specialty = e.get("especialidade_id")  # named in this message ("tem ortopedista?"), not remembered
    plan_topics = {None, "especialidades", "medicos"}
    asks_plan = e.get("convenio") and turn.nlu.intent == Intent.PERGUNTA and topic in plan_topics
    if topic == "convenio" or asks_plan:  # "aceita amil?", "a dra ana atende unimed?", "tem ortopedista pela amil?"
        if doctor is None and not named_specialty and turn.session.flow:  # "aceita sulamerica?" at the summary
            doctor = _doctor(turn.session.selected_doctor_id)
        if not (e.get("convenio_id") or e.get("convenio")) and remembered.get("plan") and (doctor or named_specialty):
            e["convenio_id"] = remembered["plan"]  # "aceita amil?" then "e na dermato?": Amil in Dermatologia
        return _plan_answer(turn, doctor, specialty_id)
    if topic == "medicos" or (topic == "especialidades" and named_specialty):
        doctors = selectors.doctor_list(especialidade_id=specialty_id) if specialty_id else catalog["medicos"]
        _remember_doctors(turn.session, doctors)
        names = T.join_names([d["nome"] for d in doctors[:10]])
        if topic == "especialidades":
            return T.SPECIALTY_AVAILABLE.format(specialty=_specialty_name(specialty_id), items=names)
        where = f" de {_specialty_name(specialty_id)}" if specialty_id else ""
        return T.DOCTORS_LIST.format(where=where, items=names)
    if topic == "especialidades":
        return T.SPECIALTIES_LIST.format(items=T.join_names([sp["nome"] for sp in catalog["especialidades"][:15]]))
    if topic == "exames":
        items = T.join_names([f"{x['nome']} (R$ {T.money(x['preco'])})" for x in catalog["exames"][:10]])
        if e.get("exame") and not exam:  # "faz ressonância?"
            return T.EXAM_NOT_OFFERED.format(exam=e["exame"], items=items)
        return T.EXAMS_LIST.format(items=items)
    return None


def _agenda_answer(turn: _Turn, doctor: dict | None, specialty_id: int | None) -> str | None:
    """The days and hours a doctor (or each doctor of a specialty) works, from HorarioTrabalho; "yes/no" first
    when a weekday or a part of the day was asked."""
    e, s = turn.nlu.entities, turn.session
    wanted_date, _ = _wanted_moment(e)
    period = e.get("periodo") if e.get("periodo") in T.PERIOD_LABELS else None
    weekday = wanted_date.weekday() if wanted_date else None
    earliest, latest = _wanted_bounds(e)  # "atende depois das 17h?"
    asked = weekday is not None or period is not None or earliest is not None or latest is not None
    when = " ".join(
        part
        for part in (
            None if weekday is None else T.on_weekday(weekday),
            T.PERIOD_LABELS.get(period or ""),
            f"a partir das {earliest:%H:%M}" if earliest else None,
            f"antes das {latest:%H:%M}" if latest else None,
        )
        if part
    )

    def fitting(shifts: list[dict]) -> list[dict]:
        return [
            sh
            for sh in shifts
            if (weekday is None or sh["dia_semana"] == weekday)
            and _shift_in_period(sh["inicio"], sh["fim"], period)
            and (earliest is None or sh["fim"] > f"{earliest:%H:%M}")
            and (latest is None or sh["inicio"] < f"{latest:%H:%M}")
        ]

    def hours_of(shifts: list[dict]) -> str:
        return T.day_hours(shifts, weekday) if weekday is not None else T.weekly_hours(shifts)

    def wanted(time: dt.time) -> bool:  # a start time in the part of the day asked for
        return (
            _in_period(_aware(wanted_date, time), period or "")
            and (earliest is None or time >= earliest)
            and (latest is None or time < latest)
        )

    def away_on_date(doctors: list[dict]) -> dict[int, str]:  # "dia 11": who is away then (holidays, congress)
        said = {d["id"]: _doctor_away(d, wanted_date, wanted) for d in doctors} if wanted_date else {}
        return {doctor_id: text for doctor_id, text in said.items() if text}

    closed = _clinic_closed(wanted_date) if wanted_date else None
    if doctor:
        _remember_doctors(s, [doctor])
        shifts = _shifts(doctor["id"])
        if not shifts:
            return T.DOCTOR_NO_AGENDA.format(doctor=doctor["nome"])
        closed = closed or away_on_date([doctor]).get(doctor["id"])
        if closed:  # "o dr igor atende dia 25?": the clinic is closed on Christmas, whatever his Fridays
            return f"{closed} {T.DOCTOR_AGENDA.format(doctor=doctor['nome'], hours=T.weekly_hours(shifts))}"
        if not asked:
            agenda = T.DOCTOR_AGENDA.format(doctor=doctor["nome"], hours=T.weekly_hours(shifts))
            return " ".join(filter(None, [agenda, _doctor_absences(doctor, turn.now)]))
        matching = fitting(shifts)
        if not matching:
            return T.DOCTOR_OFF_ON.format(doctor=doctor["nome"], when=when, hours=T.weekly_hours(shifts))
        return T.DOCTOR_WORKS_ON.format(doctor=doctor["nome"], when=when, hours=hours_of(matching))
    if closed:
        return closed
    if not specialty_id:
        return _clinic_agenda(turn, fitting, hours_of, when, away_on_date) if asked else None
    doctors = selectors.doctor_list(especialidade_id=specialty_id)[:MAX_LIST_ROWS]
    weeks = [(d, _shifts(d["id"])) for d in doctors]
    weeks = [(d, shifts) for d, shifts in weeks if shifts]
    everyone = T.join_names([f"{d['nome']} ({T.weekly_hours(shifts)})" for d, shifts in weeks])
    specialty = _specialty_name(specialty_id)
    if not asked:
        _remember_doctors(s, [d for d, _ in weeks])
        return T.SPECIALTY_AGENDA.format(specialty=specialty, items=everyone) if weeks else None
    on = [(d, fitting(shifts)) for d, shifts in weeks]
    on = [(d, shifts) for d, shifts in on if shifts]
    away = away_on_date([d for d, _ in on])
    on = [(d, shifts) for d, shifts in on if d["id"] not in away]
    _remember_doctors(s, [d for d, _ in (on or weeks)])
    if not on:
        answer = T.SPECIALTY_OFF_ON.format(when=T.capitalized(when), specialty=specialty, items=everyone)
    else:
        items = T.join_names([f"{d['nome']} ({hours_of(shifts)})" for d, shifts in on])
        answer = T.SPECIALTY_ON_DAY.format(when=T.capitalized(when), specialty=specialty, items=items)
    return " ".join([answer, *away.values()])


def _clinic_agenda(turn: _Turn, fitting, hours_of, when: str, away_on_date) -> str:
    """ "qual médico atende sábado?": every doctor with a shift then (their specialty and hours), or nobody; on a
    date, not those away then (said after the list)."""
    on = [(d, shifts) for d in _catalog()["medicos"] if (shifts := fitting(_shifts(d["id"])))]
    away = away_on_date([d for d, _ in on])
    on = [(d, shifts) for d, shifts in on if d["id"] not in away][:MAX_LIST_ROWS]
    notes = list(away.values())[:MAX_LIST_ROWS]
    if not on:
        return " ".join([T.CLINIC_NOBODY_ON.format(when=T.capitalized(when)), *notes])
    _remember_doctors(turn.session, [d for d, _ in on])
    specialties = {d["id"]: T.join_names([_specialty_name(sid) for sid in d["especialidade_ids"]]) for d, _ in on}
    items = T.join_names([f"{d['nome']} ({specialties[d['id']]}, {hours_of(shifts)})" for d, shifts in on])
    return " ".join([T.CLINIC_DOCTORS_ON.format(when=T.capitalized(when), items=items), *notes])


def _doctor_profile(s: ConversationSession, doctor: dict) -> str:
    _remember_doctors(s, [doctor])
    specialties = T.join_names([_specialty_name(sid) for sid in doctor["especialidade_ids"]])
    plans = T.join_names([_plan_name(pid) for pid in doctor["convenio_ids"]]) or "nenhum (só particular)"
    bio = (doctor.get("bio") or "").strip()
    return T.DOCTOR_PROFILE.format(
        doctor=doctor["nome"],
        crm=doctor["crm"],
        specialties=specialties,
        bio=f" {bio}" if bio else "",
        price=T.money(doctor["preco_consulta"]),
        plans=plans,
    )


def _shift_in_period(start: str, end: str, period: str | None) -> bool:
    bounds = {"manha": ("00:00", "12:00"), "tarde": ("12:00", "18:00"), "noite": ("18:00", "24:00")}
    low, high = bounds.get(period or "", ("00:00", "24:00"))
    return start < high and end > low  # "HH:MM" strings compare as times


_EXAM_RESULT = re.compile(r"(?<![a-z])(?:resultados?|laudos?)(?![a-z])")
_LATE = re.compile(r"(?<![a-z])atras\w*")
_WHO_WORKS = re.compile(
    r"(?<![a-z])(?:qu(?:al|ais|e) (?:medic[oa]s?|doutor(?:a|es|as)?|especialidades?)|quem)(?![a-z])"
)
# The clinic itself, not a doctor just talked about: "vocês abrem sábado?", "a clínica funciona?"
_CLINIC_ITSELF = re.compile(
    r"(?<![a-z])(?:voces|vcs|vc|clinica|abre|abrem|aberto|abertos|aberta|funciona|funcionam|fecha|fecham)(?![a-z])"
)
_EXAM_WORD = re.compile(r"(?<![a-z])(?:exame|exames)(?![a-z])")
_CONSULTATION_WORD = re.compile(r"(?<![a-z])(?:consulta|consultas|medic[oa]|doutor[a]?|dra?)(?![a-z])")


def _wants_an_exam(turn: _Turn) -> bool:
    """ "quero agendar exame de sangue", "quero marcar um eletrocardiograma": an exam, not a consultation."""
    e, text = turn.nlu.entities, turn.folded
    if e.get("especialidade_id") or e.get("medico_id") or _CONSULTATION_WORD.search(text):
        return False
    return bool(e.get("exame_id") or _EXAM_WORD.search(text))


def _exam_booking_answer(turn: _Turn) -> str:
    exam = _by_id(_catalog()["exames"], turn.nlu.entities.get("exame_id"))
    phone = _clinic().get("telefone") or ""
    how = T.EXAM_BOOKING.format(phone=f" ({phone})" if phone else "")
    return f"{_exam_line(exam)}\n\n{how}" if exam else how


def _exam_line(exam: dict) -> str:
    price = T.EXAM_PRICE.format(exam=exam["nome"], price=T.money(exam["preco"]))
    return f"{price} {T.EXAM_PREP.format(exam=exam['nome'], prep=exam['preparo'] or 'não há preparo especial.')}"


def _clinic_closed(day: dt.date) -> str | None:
    """ "Sexta-feira, 25/12/2026 é feriado (Natal): a clínica não abre.", "A clínica estará fechada de 24/12 a
    01/01." (a whole-day agenda block of the clinic), or None on a working day."""
    holiday = holiday_name(day)
    if holiday:
        return T.capitalized(clinic_services.HOLIDAY_MESSAGE.format(date=T.date_long(day), holiday=holiday))
    block = whole_day_block(_catalog().get("fechamentos", []), day)  # .get: a catalogue cached before blocks
    return clinic_services.block_message(block, "") if block else None


def _absences(blocks: list[dict], now: dt.datetime) -> str:
    """ "de 21/12 a 05/01 e em 12/01 das 14:00 às 18:00": the blocks that start within the booking horizon."""
    return T.join_names(periods_ahead(blocks, selectors.booking_last_day(now)))


def _doctor_absences(doctor: dict, now: dt.datetime) -> str | None:
    """ "Dra. Ana não atende de 21/12 a 05/01.": said with the doctor's weekly hours, so nobody counts on them."""
    detail = selectors.doctor_detail(doctor["id"]) or {}
    periods = _absences([b for b in detail.get("bloqueios", []) if not b["clinica"]], now)
    return clinic_services.DOCTOR_AWAY_MESSAGE.format(doctor=doctor["nome"], period=periods) if periods else None


def _clinic_closures(now: dt.datetime) -> str | None:
    """ "A clínica estará fechada de 24/12 a 01/01.": said with the opening hours."""
    periods = _absences(_catalog().get("fechamentos", []), now)
    return clinic_services.CLINIC_CLOSED_MESSAGE.format(period=periods) if periods else None


def _doctor_away(doctor: dict, day: dt.date, wanted=lambda time: True) -> str | None:
    """ "Dra. Ana Souza não atende de 21/12 a 05/01.": agenda blocks take every time the weekly hours give the
    doctor on `day` (of those `wanted`: "de manhã", "depois das 17h"), or None. Decided on the grid, as the free
    slots are, so a block with hours that covers the shift counts as well as a whole-day one."""
    detail = selectors.doctor_detail(doctor["id"]) or {}
    blocks = blocks_on(detail.get("bloqueios", []), day)
    if not blocks:
        return None
    usual = [t for t in selectors.doctor_grid({**detail, "bloqueios": []}, day) if wanted(t)]
    if not usual or any(wanted(t) for t in selectors.doctor_grid(detail, day)):
        return None  # not working then anyway, or some time is left
    minutes = detail["duracao_consulta_minutos"]
    block = whole_day_block(blocks, day) or block_over(blocks, day, usual[0], minutes)
    return clinic_services.block_message(block, doctor["nome"])


def _block_at(doctor: dict, when: dt.datetime) -> str | None:
    """ "Dra. Ana Souza não atende em 11/12 das 08:00 às 12:00.": the block a time asked for falls into."""
    detail = selectors.doctor_detail(doctor["id"]) or {}
    local = timezone.localtime(when)
    minutes = detail.get("duracao_consulta_minutos", 1)
    block = block_over(detail.get("bloqueios", []), local.date(), local.time(), minutes)
    return clinic_services.block_message(block, doctor["nome"]) if block else None


def _doctor_unknown(name: str) -> str:
    return T.DOCTOR_NOT_FOUND.format(doctor=name)


def _all_doctor_names() -> str:
    return T.join_names([d["nome"] for d in _catalog()["medicos"][:MAX_LIST_ROWS]])


_MORE_SLOTS = re.compile(
    r"\b(?:outr[oa]s (?:horarios|opcoes|datas|dias)|mais (?:horarios|opcoes|datas|dias)|tem mais\b(?! cedo)"
    r"|mais (?:pra|para) frente|(?:tem|e|algum|alguma|so) (?:\w+ )?depois\b(?! d)|mais tarde\b(?! eu)"
    r"|mais (?:pro|para o) (?:fim|final) do dia"
    r"|proximos horarios|ver mais|mostra mais|nenhum desses|nenhuma dessas|nenhum desses horarios"
    r"|tem (?:algum |um )?outr[oa] (?:horario|opcao|data|dia)(?! que)(?: nao)?\W*$)"  # "não tem outro horário?"
)
_LATER_IN_THE_DAY = re.compile(r"\bmais tarde\b|\bmais (?:pro|para o) (?:fim|final) do dia\b")
_OTHER_DAYS = re.compile(r"\b(?:outr[oa]s (?:dias|datas)|mais (?:dias|datas)|mais (?:pra|para) frente|depois)\b")
# At the waitlist's offer: a yes in other words ("pode colocar", "quero entrar na lista", "me avisa")
_JOINS_WAITLIST = re.compile(
    r"(?<![a-z])(?:coloca\w*|bota|inclui\w*|(?:entrar|ficar)\W+(?:n|d)a\W+lista|me avis\w*|avisa\w*\W+me)(?![a-z])"
    r"|^\W*lista de espera\W*$"  # the button's title, typed
)
# "me tira da lista de espera", "quero sair da fila de espera", "pode tirar meu nome da lista de espera", "não quero
# mais ficar na lista": a wish to leave, never a question about the list ("quando sai a minha vaga da lista de
# espera?", "queria tirar uma dúvida sobre a lista de espera") nor an appointment ("cancela a primeira da lista")
_LEAVES_WAITLIST = re.compile(
    r"(?<![a-z])(?:"
    r"(?:(?:quero|queria|gostaria de|pode|podem|pode me|podem me|favor|por favor|preciso)\W+(?:me\W+)?"
    r"(?:sair|tirar|remover|retirar|excluir|cancelar)"
    r"|me\W+(?:tira|tire|remove|remova|retira|retire|exclui|exclua)|tira|tire|sair|sai|saio)"
    r"\W+(?:(?:o\W+)?(?:meu\W+nome|minha\W+inscricao|o\W+nome)\W+)?(?:d[ao]|na|de)\W+(?:lista|fila)\W+de\W+espera"
    r"|nao quero mais (?:esperar|ficar na (?:lista|fila)))(?![a-z])"
)


# Said by a patient who is on a waitlist: "me tira da lista", "pode tirar meu nome", "desisto da lista de espera",
# "quero cancelar a lista de espera" (read only when she is on one)
_LEAVES_A_LIST = re.compile(
    r"(?<![a-z])(?:(?:me\W+)?(?:tira|tire|remove|retira)\W+(?:(?:o\W+)?meu\W+nome\W+)?d[ao]\W+(?:lista|fila)"
    r"|(?:pode|podem)\W+(?:me\W+)?tirar\W+(?:o\W+)?(?:meu\W+nome|da\W+lista)|desisto\W+d[ao]\W+(?:lista|fila)"
    r"|(?:cancelar|cancela|cancelo)\W+(?:a\W+|minha\W+)?(?:lista|fila|inscricao)\W+de\W+espera)(?![a-z])"
)
_WAITLIST_WORDS = re.compile(r"(?<![a-z])(?:lista|fila) de espera(?![a-z])")


def _leaves_waitlist(folded: str) -> bool:
    """Asks to leave a waitlist, and not "não quero sair da lista de espera"."""
    wish = _LEAVES_WAITLIST.search(folded)
    return bool(wish) and "nao" not in folded[: wish.start()].split()[-3:]


# A yes that says more ("sim, pro dr gustavo mesmo")
_YES_FIRST = re.compile(r"^\W*(?:sim|isso|pode|claro|ok|beleza|com certeza)(?![a-z])")
# After the notice: a wish in the patient's words ("oba, quero sim", "pode marcar pra mim", "quero esse horário")
_TAKES_NOTICE = re.compile(
    r"(?<![a-z])(?:quero|queria|pode marcar|pode agendar|marca|marcar|agendar|garant\w+|oba|otimo|claro)(?![a-z])"
)
# ... a "não" that ends the wait ("não quero mais", "já consegui em outro lugar")
_NO_LONGER_WANTED = re.compile(
    r"(?<![a-z])(?:nao (?:quero|preciso) mais|nao tenho mais interesse|ja (?:consegui|marquei|resolvi|fui)"
    r"|pode (?:me )?tirar)(?![a-z])"
)
# ... and one that asks for another day or time ("não posso segunda, teria outro dia?")
_ANOTHER_TIME = re.compile(r"(?<![a-z])(?:outr[oa]s? (?:dia|data|horario|semana)s?|tem outro|teria outro)(?![a-z])")
_SAYS_NO = re.compile(r"(?<![a-z])(?:nao|nem|dispenso)(?![a-z])")
_TAKES_OFFER = re.compile(
    r"^\W*(?:sim\W+)?(?:quero|queria|gostaria|por favor|pode|pode ser|pode sim|pode transferir|transfere|transferir"
    r"|me transfere|manda|bora|quero sim|sim quero|sim por favor)(?:\W+(?:sim|por favor|pf|pfv|obrigad[oa]))?\W*$"
)
_SERVICE_COMPLAINT = re.compile(
    r"\b(?:fui mal atendid[oa]|mal atendid[oa]|pessimo atendimento|atendimento (?:pessimo|horrivel|ruim|lamentavel)"
    r"|esperei (?:\d+|uma|duas|tres|muito|demais|horas)(?: \w+)?(?: horas?| hr| h)?\b.{0,40}"
    r"(?:atendid|consulta|absurdo)"
    r"|(?:quero|queria|vou) (?:fazer |registrar |abrir )?(?:uma )?reclamac\w*|(?:quero|vou) reclamar|descaso"
    r"|falta de respeito|(?:robo|bot|voce|vc|vcs|voces) (?:e |eh |sao |e um |e muito )?(?:burr[oa]s?|inutil|inuteis"
    r"|pessim[oa]s?|horrive(?:l|is)|idiota)|absurdo (?:isso|o atendimento)|que absurdo|vergonha (?:de|esse|essa))\b"
)
# Where one question of a message ends and the next begins: "?", ";", or "e" before another question or subject.
_QUESTION_BREAK = re.compile(
    r"\?+|;|\s+e\s+(?=(?:tamb[eé]m\s+)?(?:qual|quais|quanto|onde|como|quando|que horas|aceita|aceitam|tem|vcs|voc[eê]s"
    r"|precisa|se\s|o\s|a\s|os\s|as\s|d[oa]s?\s))",
    re.IGNORECASE,
)
_HOLIDAY_WORD = re.compile(r"\bferiados?\b")
_AS_LATE_AS_POSSIBLE = re.compile(
    r"\b(?:o mais tarde possivel|mais tarde possivel|ultimo horario do dia|no fim do dia|no final do dia"
    r"|bem no fim da tarde|bem no final da tarde)\b"
)
# Questions answered as asked even when they carry a date ("se eu cancelar a de quarta tem multa?")
_NEVER_A_BOOKING = frozenset({"horario", "agenda", "politicas", "preparo", "duracao", "endereco", "telefone", "email"})
_CANCEL_WORD = re.compile(r"\b(?:cancel\w*|desmarc\w*)")
# "na verdade é pro meu filho", "esqueci, é pra minha mãe", "a paciente é minha filha": someone else than named
_WHO_CORRECTED = re.compile(
    r"\b(?:na verdade|esqueci|errei|me enganei|nao e (?:pra|para) mim|(?:o|a) paciente (?:e|vai ser)|ah,? e)\b"
)
# "ops, errei, queria quarta", "ih, o nome tá errado": a correction of what was just done
_OOPS = re.compile(r"\b(?:ops|ih|errei|me enganei|nome (?:ta|esta) errado|era (?:pra|para) ser)\b")
_NOT_SURE = re.compile(r"^\W*(?:(?:ah|hum|hmm)\W+)?(?:nao sei|sei la|nao tenho certeza|nao lembro)\b")
_CHEAPEST = re.compile(r"\b(?:mais barat[oa]|menor preco|mais em conta|preco mais baixo|que custa menos)\b")
_EARLIER_OR_LATER = re.compile(r"\bmais (?:tarde|cedo)\b")
_SIDE_TOPICS = frozenset({"preco", "convenio", "duracao", "endereco", "politicas", "preparo"})
_FULL_AGENDA_KINDS = frozenset({"no_slots", "waitlist"})  # the questions asked at a doctor with no free time
# "não, com a outra dermatologista", "prefiro outro médico" (not "outra lista"), asked for, not told in a story ("o
# outro médico que eu fui era mais caro")
_THE_OTHER_DOCTOR = re.compile(
    r"(?:^\W*(?:nao\W+)?|(?<![a-z])(?:prefiro|quero|queria|com|pode ser|seja)\s+)(?:com\s+)?(?:[ao]\s+)?"
    r"outr[oa] (?:medic[oa]|doutor[a]?|dra?|profissional|especialista|\w+(?:logista|pedista|atra)|clinico geral)"
    r"(?![a-z])(?!\s+que\b)"
)
_WHO_WITH = re.compile(r"\bcom quem\b")
_OTHER_WEEK = re.compile(r"\b(?:outra semana|semana depois)\b")
_SAME_TIME = re.compile(r"\b(?:mesmo horario|mesma hora|mesmo hora|no mesmo horario|na mesma hora)\b")
_PRONOUN = re.compile(r"\b(?:ele|ela|dele|dela)\b")


def _doctor_referred(turn: _Turn) -> dict | None:
    """ "e ele aceita bradesco?" right after an answer that named one doctor."""
    items = turn.session.last_options.get("items", []) if turn.session.last_options.get("kind") == "doctor" else []
    pronoun = _PRONOUN.search(turn.folded)
    if (turn.nlu.entities.get("referencia") or pronoun) and len(items) == 1:
        return _doctor(int(items[0]["id"].partition(":")[2]))
    return None


def _plan_answer(turn: _Turn, doctor: dict | None, specialty_id: int | None) -> str:
    """Whether the clinic, a doctor or a specialty takes a plan: always about what was asked, never a bare "Sim"."""
    e, s = turn.nlu.entities, turn.session
    all_plans = T.join_names([p["nome"] for p in _catalog()["convenios"]])
    if not e.get("convenio_id"):
        if e.get("convenio"):  # a plan the clinic does not take ("aceita hapvida?")
            return T.PLAN_NOT_TAKEN.format(plan=e["convenio"], items=all_plans)
        if doctor:  # "quais convênios a dra ana aceita?"
            _remember_doctors(s, [doctor])
            plans = T.join_names([_plan_name(p) for p in doctor["convenio_ids"]])
            return T.DOCTOR_PLANS.format(doctor=doctor["nome"], items=plans or "nenhum convênio (só particular)")
        return T.PLANS_LIST.format(items=all_plans)
    plan_id = int(e["convenio_id"])
    plan = _plan_name(plan_id)
    if doctor:
        if plan_id in doctor["convenio_ids"]:
            _remember_doctors(s, [doctor])
            _plan_assume(s, plan_id)
            return T.DOCTOR_TAKES_PLAN.format(doctor=doctor["nome"], plan=plan)
        refused = T.DOCTOR_REFUSES_PLAN.format(doctor=doctor["nome"], plan=plan)
        shared = set(doctor["especialidade_ids"])
        others = [d for d in selectors.doctor_list(convenio_id=plan_id) if shared & set(d["especialidade_ids"])]
        if others:  # who sees the same specialty by that plan
            _remember_doctors(s, others)
            names = T.join_names([d["nome"] for d in others[:MAX_LIST_ROWS]])
            return f"{refused} {T.OTHERS_TAKE_PLAN.format(plan=plan, items=names)}"
        _remember_doctors(s, [doctor])
        return f"{refused} {T.DOCTOR_PRICE.format(doctor=doctor['nome'], price=T.money(doctor['preco_consulta']))}"
    doctors = selectors.doctor_list(convenio_id=plan_id, especialidade_id=specialty_id)
    if not doctors and specialty_id:
        refused = T.PLAN_NOT_IN_SPECIALTY.format(specialty=_specialty_name(specialty_id), plan=plan)
        private = selectors.doctor_list(especialidade_id=specialty_id)
        _remember_doctors(s, private)
        items = T.join_names([f"{d['nome']} R$ {T.money(d['preco_consulta'])}" for d in private[:5]])
        return f"{refused} {T.PLAN_PRICE_PRIVATE.format(items=items)}" if private else refused
    if not doctors:
        return T.PLAN_WITHOUT_DOCTORS.format(plan=plan)
    _remember_doctors(s, doctors)
    _plan_assume(s, plan_id)
    names = T.join_names([d["nome"] for d in doctors[:MAX_LIST_ROWS]])
    if specialty_id:
        return T.PLAN_IN_SPECIALTY.format(specialty=_specialty_name(specialty_id), plan=plan, items=names)
    return T.PLAN_ACCEPTED.format(plan=plan, doctors_note=f"Atendem por ele: {names}.")


def _plan_assume(s: ConversationSession, plan_id: int) -> None:
    """A plan asked about is most likely the patient's: it is shown in the summary, where it can be corrected."""
    if s.selected_convenio_id is None:
        s.selected_convenio_id, s.insurance_type = plan_id, _plan_name(plan_id)


def _plan_price_answer(session, plan_id: int, doctor: dict | None, specialty_id: int | None) -> str:
    """ "Quanto custa pela Unimed?": who is covered by the plan, and the private price of those who are not, so a
    Unimed patient is never handed a price list of doctors who will not take the plan."""
    plan = _plan_name(plan_id)
    doctors = [doctor] if doctor else selectors.doctor_list(especialidade_id=specialty_id)
    in_plan = [d for d in doctors if plan_id in d["convenio_ids"]]
    _remember_doctors(session, in_plan or doctors)  # so "quero marcar com ela" can follow
    out_of_plan = [d for d in doctors if plan_id not in d["convenio_ids"]][:5]
    private = T.join_names([f"{d['nome']} R$ {T.money(d['preco_consulta'])}" for d in out_of_plan])
    if not in_plan and doctor:
        return T.PLAN_PRICE_DOCTOR_OUT.format(doctor=doctor["nome"], plan=plan, price=T.money(doctor["preco_consulta"]))
    if not in_plan:
        refused = T.PLAN_NOT_IN_SPECIALTY.format(specialty=_specialty_name(specialty_id), plan=plan)
        return f"{refused} {T.PLAN_PRICE_PRIVATE.format(items=private)}"
    covered = T.PLAN_PRICE_COVERED.format(plan=plan, items=T.join_names([d["nome"] for d in in_plan[:5]]))
    if doctor:  # the plan may be only assumed from a question: the private price too
        return f"{covered} {T.PLAN_PRICE_ALSO_PRIVATE.format(price=T.money(doctor['preco_consulta']))}"
    return f"{covered} {T.PLAN_PRICE_OTHERS.format(items=private)}" if out_of_plan else covered


# --- clinic data helpers (all served from the cached catalogue) --------------------------------------------------


def _catalog() -> dict:
    return selectors.clinic_catalog()


def _clinic() -> dict:
    return _catalog()["clinica"]


def _doctor(doctor_id: int | None) -> dict | None:
    if not doctor_id:
        return None
    return _by_id(_catalog()["medicos"], doctor_id)


def _shifts(doctor_id: int) -> list[dict]:
    """The doctor's weekly shifts (HorarioTrabalho rows, from the cached doctor detail)."""
    return (selectors.doctor_detail(doctor_id) or {}).get("horarios", [])


def _by_id(rows: list[dict], row_id) -> dict | None:
    if not row_id:
        return None
    return next((r for r in rows if r["id"] == int(row_id)), None)


def _specialty_name(specialty_id: int | None) -> str:
    row = _by_id(_catalog()["especialidades"], specialty_id)
    return row["nome"] if row else ""


def _plan_name(plan_id: int | None) -> str:
    row = _by_id(_catalog()["convenios"], plan_id)
    return row["nome"] if row else ""


def _payment(s: ConversationSession, doctor: dict | None) -> str:
    if s.selected_convenio_id:
        return f"Convênio {_plan_name(s.selected_convenio_id)}"
    return f"Particular — R$ {T.money(doctor['preco_consulta'])}" if doctor else "Particular"


def _aware(day: dt.date, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, time, tzinfo=timezone.get_default_timezone())
