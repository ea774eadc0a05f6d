"""Messages the clinic starts: a reminder, a cancellation notice, a reply typed by the staff.

Each is stored as a pending bot message in the patient's conversation, in one transaction with the session change
that goes with it (the history the next turn reads, a reminder's offer, a handoff), under the patient's lock. The
row is the outbox: `sender.reply_send` sends it and records the outcome, once.
"""

import datetime as dt
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import transaction

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services.session_cache import SessionConflict, session_manager
from core.logging import mask_phone

logger = logging.getLogger(__name__)


def template_entity(name: str, body: list[str], *, buttons: list[str] = ()) -> dict:
    """How a message sent as an approved template is stored (`entities["template"]`, read by
    graph.template_payload): the template's name and language, its body's {{n}} texts and its quick-reply payloads."""
    template = {"name": name, "language": settings.WHATSAPP_TEMPLATE_LANGUAGE, "body": body}
    return {**template, "buttons": list(buttons)} if buttons else template


def clinic_message_store(
    *,
    phone: str,
    text: str,
    entities: dict,
    channel_type: str,
    noted: Callable[[ConversationSession], None],
    now: dt.datetime,
    claim: Callable[[], bool] = lambda: True,
    reply_to_id: int | None = None,
) -> int | None:
    """Stores the message, runs `noted(session)` and saves the session, in one transaction with `claim()` (False:
    someone else has it; nothing is stored). The caller holds the patient's lock. Returns the message's id."""
    for attempt in range(2):
        try:
            with transaction.atomic():
                if not claim():
                    return None
                session = session_manager.get_or_start(phone=phone)
                noted(session)
                bot = ConversationMessage.objects.create(
                    session=session,
                    message_type=ConversationMessage.MessageType.BOT,
                    channel_type=channel_type,
                    content=text,
                    entities=entities,
                    timestamp=now,
                    reply_to_id=reply_to_id,
                    delivery_status=ConversationMessage.Delivery.PENDING,
                )
                session_manager.save(session=session)
            break
        except Exception as exc:
            session_manager.invalidate(phone=phone)  # the cached copy may hold the rolled-back message
            if not isinstance(exc, SessionConflict) or attempt:
                raise
            # A stale cached copy of the session: everything rolled back; once more on the database's row.
    logger.info("%s message %s stored for %s", channel_type, bot.pk, mask_phone(phone))
    return bot.pk
