"""The doctors' waitlists on WhatsApp: a patient who found a doctor's agenda full joined the list (the bot offered
it; rag_agent.services.waitlist_join); when times open (a cancellation, a block lifted, a new shift), the first in
line are told through the approved template WHATSAPP_WAITLIST_TEMPLATE, whose "Ver horários" button
("waitlist:book:<doctor id>") starts the booking with that doctor.

As many patients are told as there are free times, first come first served; a patient told has HOLD to book before
the next in line is told for the same time (the times go to whoever books first: being told is no reservation).
A notice is claimed in the transaction that stores it (`ListaEspera.avisado_em`, as the reminders are), so two runs
never both send it. A patient told who has not booked stays on the list and may be told again after RETELL_AFTER
(a notice missed, or a time someone else took), up to MAX_NOTICES; a notice that could not be delivered puts the
patient back in line (template_deliver). Beat's `send_reminders` runs this every 10 minutes, from 08:00 to 20:00
(the reminders' hours).
"""

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from api_gateway.services import texts as T
from api_gateway.services.conversation import waitlist_opened_noted
from api_gateway.services.outbox import template_entity
from api_gateway.services.reminders import quiet_hours, recipient, template_deliver, template_store
from api_gateway.services.session_cache import SessionLockTimeout
from core.phones import phone_forms
from rag_agent import selectors
from rag_agent import services as clinic_services
from rag_agent.models import ListaEspera

logger = logging.getLogger(__name__)

HOLD = dt.timedelta(hours=2)  # a told patient's head start before the next in line is told for the same time
RETELL_AFTER = dt.timedelta(days=1)  # a patient told who has not booked may be told again after this long...
MAX_NOTICES = 3  # ...up to this many notices per request (a notice that could not be delivered counts)
# A patient whose turn is under way (on the embedded default, the turn that started this run) is told next run
NOTICE_LOCK_WAIT = 2.0


@dataclass
class WaitlistRun:
    told: list[int] = field(default_factory=list)  # waitlist entry ids whose notice was stored and handed to send
    due: list[int] = field(default_factory=list)  # dry run: the entries a run would tell now
    expired: int = 0  # entries closed after WAITLIST_DAYS


def waitlist_enabled() -> bool:
    return bool(settings.WHATSAPP_WAITLIST_TEMPLATE)


def waitlist_notify(
    *, now: dt.datetime | None = None, dry_run: bool = False, given_up: Iterable[tuple[str, int]] = ()
) -> WaitlistRun:
    """Closes the entries past their WAITLIST_DAYS, and tells the first waiting patients of each doctor with free
    times that one opened (a dry run only lists them, whatever the hour). Safe to run often and from several
    workers at once (each entry is claimed once). `given_up`: (phone, doctor id) of times just given up; those
    patients are not told of them (on that doctor's list they are passed over; beat's next run counts them again).
    A patient in the middle of a turn is not told either (her conversation is busy, see NOTICE_LOCK_WAIT) and keeps
    her place: the next run tells her."""
    now = now or timezone.now()
    run = WaitlistRun()
    if not dry_run:
        run.expired = clinic_services.waitlist_expire(now=now)
    if not waitlist_enabled() or (quiet_hours(now) and not dry_run):
        return run
    today = timezone.localtime(now).date()
    to_tell = selectors.waitlist_to_tell(now=now, told_before=now - RETELL_AFTER, max_notices=MAX_NOTICES)
    passed_over = {(form, medico_id) for phone, medico_id in given_up for form in phone_forms(phone)}
    for medico_id, waiting in to_tell.items():
        waiting = [entry for entry in waiting if (entry.paciente_telefone, medico_id) not in passed_over]
        if not waiting:
            continue
        free = selectors.slot_list_free(medico_id=medico_id, start=today, days=settings.SLOT_SEARCH_DAYS, now=now)
        room = len(free) - selectors.waitlist_told_since(medico_id, now - HOLD)
        for entry in waiting[: max(room, 0)]:
            if dry_run:
                run.due.append(entry.pk)
                continue
            try:
                bot_id = _notice_store(entry, first=free[0], now=now)
            except SessionLockTimeout:  # her conversation is busy (her own turn may have started this run)
                logger.info("waitlist entry %s: the patient's conversation is busy; the next run tells her", entry.pk)
                continue
            except Exception:  # one patient's trouble (a lock wait) must not hold back the others
                logger.exception("waitlist notice for entry %s not stored; the next run tries again", entry.pk)
                continue
            if bot_id is not None:
                run.told.append(entry.pk)
                template_deliver(bot_id, now=now)
    return run


def _notice_store(entry: ListaEspera, *, first: dt.datetime, now: dt.datetime) -> int | None:
    body = [entry.medico.nome, T.date_long(timezone.localtime(first).date()), f"{timezone.localtime(first):%H:%M}"]
    doctor, when, time = body
    text = T.WAITLIST_OPENED.format(doctor=doctor, when=when, time=time)
    template = template_entity(settings.WHATSAPP_WAITLIST_TEMPLATE, body, buttons=[f"waitlist:book:{entry.medico_id}"])
    return template_store(
        phone=recipient(entry.paciente_telefone) or entry.paciente_telefone,  # the WhatsApp conversation (REST joins)
        text=text,
        entities={"template": template, "waitlist": entry.pk},
        claim=lambda: clinic_services.waitlist_told_claim(
            entry_id=entry.pk, now=now, told_before=now - RETELL_AFTER, max_notices=MAX_NOTICES
        ),
        noted=lambda s: waitlist_opened_noted(s, doctor_id=entry.medico_id, text=text),
        now=now,
        lock_wait=NOTICE_LOCK_WAIT,
    )
