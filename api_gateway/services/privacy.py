"""LGPD tools: purge old conversations, and erase one patient on request.

The database is erased first (in one transaction), the cache afterwards: a cache key that outlived its row would
be the only copy of personal data left, and the session cache never holds what the database does not.
Appointments are the clinic's record: purge leaves them alone, forget anonymises them (rag_agent owns how).
"""

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services import cache_inspect
from api_gateway.services.session_cache import session_manager
from core.exceptions import ValidationFailed
from core.logging import mask_phone
from core.phones import phone_forms
from rag_agent.services import patient_forget_appointments, patient_forget_waitlist

logger = logging.getLogger(__name__)

DELETE_BATCH_SIZE = 2000
INVALID_PHONE_MESSAGE = "Telefone inválido: informe o número com DDI e DDD, por exemplo 5511999990001."
INVALID_DAYS_MESSAGE = "--older-than-days precisa ser 1 ou mais."


@dataclass
class PurgeResult:
    cutoff: dt.datetime
    dry_run: bool
    messages: int = 0
    sessions: int = 0
    cache_keys: int = 0


@dataclass
class ForgetResult:
    phones: list[str]
    dry_run: bool
    sessions: int = 0
    messages: int = 0
    appointments: int = 0
    waitlist: int = 0
    cache_keys: list[str] = field(default_factory=list)

    @property
    def found_anything(self) -> bool:
        return bool(self.sessions or self.messages or self.appointments or self.waitlist or self.cache_keys)


def phone_variants(*, phone: str) -> list[str]:
    """The digits, plus the same Brazilian mobile with/without the ninth digit.

    WhatsApp's wa_id may omit the 9 that Brazilian mobiles gained after the area code, so a patient who types
    their number may be stored under the other form; both name the same line.
    """
    digits = cache_inspect.phone_normalize(phone)
    if len(digits) < 10:
        raise ValidationFailed(INVALID_PHONE_MESSAGE)
    return phone_forms(digits)


def _delete_in_batches(queryset) -> int:
    """Small transactions, so a purge of a big history neither holds long locks nor loads every row at once."""
    deleted = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:DELETE_BATCH_SIZE])
        if not ids:
            return deleted
        with transaction.atomic():
            deleted += queryset.model.objects.filter(pk__in=ids).delete()[1].get(queryset.model._meta.label, 0)


def conversations_purge(*, older_than_days: int, dry_run: bool = False) -> PurgeResult:
    """Delete messages older than the cutoff, then sessions with no activity and no message left since then."""
    if older_than_days < 1:
        raise ValidationFailed(INVALID_DAYS_MESSAGE)
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    result = PurgeResult(cutoff=cutoff, dry_run=dry_run)
    old_messages = ConversationMessage.objects.filter(timestamp__lt=cutoff)
    idle_sessions = ConversationSession.objects.filter(last_activity__lt=cutoff).exclude(
        messages__timestamp__gte=cutoff
    )
    if dry_run:
        result.messages = old_messages.count()
        result.sessions = idle_sessions.count()
        return result
    result.messages = _delete_in_batches(old_messages)
    while True:
        batch = list(idle_sessions.values_list("pk", "phone_number")[:DELETE_BATCH_SIZE])
        if not batch:
            break
        with transaction.atomic():
            ConversationSession.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
        result.sessions += len(batch)
        result.cache_keys += cache_inspect.cache_delete_keys(
            keys=[cache_inspect.session_key(phone) for _, phone in batch]
        )
    logger.info(
        "conversations purged: older than %d days, %d messages, %d sessions",
        older_than_days,
        result.messages,
        result.sessions,
    )
    return result


def patient_forget(*, phone: str, dry_run: bool = False) -> ForgetResult:
    """Erase a patient's sessions, messages, waitlist entries and cache keys, and anonymise their appointments."""
    phones = phone_variants(phone=phone)
    result = ForgetResult(phones=phones, dry_run=dry_run)
    sessions = ConversationSession.objects.filter(phone_number__in=phones)
    if dry_run:
        from rag_agent.models import Agendamento, ListaEspera

        result.sessions = sessions.count()
        result.messages = ConversationMessage.objects.filter(session__in=sessions).count()
        result.appointments = Agendamento.objects.filter(paciente_telefone__in=phones).count()
        result.waitlist = ListaEspera.objects.filter(paciente_telefone__in=phones).count()
        result.cache_keys = cache_inspect.cache_clear_phones(phones=set(phones), dry_run=True)
        return result
    # Hold the patient's turn lock, so a message arriving meanwhile cannot recreate the session mid-erasure.
    with session_manager.lock(phones[0], wait_seconds=10):
        with transaction.atomic():
            result.messages = _delete_in_batches(ConversationMessage.objects.filter(session__in=sessions))
            result.sessions = sessions.delete()[1].get(ConversationSession._meta.label, 0)
            result.appointments = sum(patient_forget_appointments(phone=p) for p in phones)
            result.waitlist = sum(patient_forget_waitlist(phone=p) for p in phones)
        result.cache_keys = cache_inspect.cache_clear_phones(phones=set(phones))
        for p in phones:  # even when the key was not seen above, e.g. written by a turn that just finished
            session_manager.invalidate(phone=p)
    logger.info(
        "patient forgotten: %s, %d sessions, %d messages, %d appointments anonymised, %d waitlist entries, "
        "%d cache keys",
        mask_phone(phones[0]),
        result.sessions,
        result.messages,
        result.appointments,
        result.waitlist,
        len(result.cache_keys),
    )
    return result
