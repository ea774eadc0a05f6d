"""Writes on appointments. Every check reads the database (not the cache): a booking must see the truth."""

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from core.exceptions import ApplicationError, ConflictError, UnprocessableError
from core.logging import mask_phone
from core.metrics import BOOKINGS
from core.phones import phone_forms
from rag_agent.closures import block_over, block_period, holiday_name
from rag_agent.models import Agendamento, Convenio, ListaEspera, Medico
from rag_agent.selectors import (
    OPEN_STATUSES,
    appointment_overlapping_for_patient,
    appointments_upcoming_for_phone,
    blocks_for_doctor,
    booking_last_day,
    doctor_grid,
    slot_overlaps_booking,
)

logger = logging.getLogger(__name__)

SLOT_UNAVAILABLE_MESSAGE = "Esse horário não está mais disponível. Por favor, escolha outro horário."
PLAN_NOT_ACCEPTED_MESSAGE = "Esse convênio não é aceito por este médico. Você pode escolher outro médico ou particular."
TOO_MANY_OPEN_MESSAGE = (
    "Você já tem {limit} consultas agendadas. Para marcar outra, cancele ou aguarde uma das consultas atuais."
)
INVALID_DOCTOR_MESSAGE = "Não encontramos esse médico na especialidade escolhida."
INVALID_SLOT_MESSAGE = "Esse horário não está na agenda do médico."
HOLIDAY_MESSAGE = "{date} é feriado ({holiday}): a clínica não abre."
CLINIC_CLOSED_MESSAGE = "A clínica estará fechada {period}."
DOCTOR_AWAY_MESSAGE = "{doctor} não atende {period}."
PAST_SLOT_MESSAGE = "Esse horário já passou. Por favor, escolha um horário futuro."
TOO_SOON_MESSAGE = (
    "Esse horário está muito em cima da hora: agendamos com pelo menos {minutes} minutos de antecedência."
)
TOO_FAR_MESSAGE = "A agenda está aberta só até {date}. Por favor, escolha uma data até lá."
INVALID_PATIENT_MESSAGE = "Precisamos do nome e do telefone do paciente para agendar."
APPOINTMENT_NOT_FOUND_MESSAGE = "Não encontramos esse agendamento entre as suas consultas ativas."
PATIENT_BUSY_MESSAGE = "{patient} já tem uma consulta nesse horário ({doctor}, às {time}). Escolha outro horário."

ANONYMIZED_NAME = "Paciente removido (LGPD)"


class SlotUnavailable(ConflictError):
    code = "slot_unavailable"


class PatientBusy(ConflictError):
    code = "patient_busy"


class PlanNotAccepted(UnprocessableError):
    code = "plan_not_accepted"


class TooManyOpenAppointments(UnprocessableError):
    code = "too_many_open_appointments"


class InvalidBooking(UnprocessableError):
    code = "invalid_booking"


class AppointmentNotFound(ApplicationError):
    http_status = 404
    code = "appointment_not_found"


def _record(action: str, outcome: str) -> None:
    BOOKINGS.labels(action, outcome).inc()


def appointment_check_for_staff(
    *,
    medico_id: int,
    especialidade_id: int,
    convenio_id: int | None,
    data: dt.date,
    hora: dt.time,
    exclude_id: int | None = None,
) -> None:
    """What the bot checks before booking, for an appointment the staff enter or move in the admin: an active doctor
    of that specialty who takes the plan, a start on the doctor's grid (so the bot's slots never overlap it), in the
    future, not on a holiday nor in an agenda block, free. The staff may book at short notice and past the bot's
    horizon."""
    if hora.second or hora.microsecond:
        raise InvalidBooking(INVALID_SLOT_MESSAGE)
    medico, _ = _doctor_fitting(medico_id=medico_id, especialidade_id=especialidade_id, convenio_id=convenio_id)
    _validate_slot(medico=medico, data=data, hora=hora, exclude_id=exclude_id, staff=True)


def _validate_slot(
    *, medico: Medico, data: dt.date, hora: dt.time, exclude_id: int | None = None, staff: bool = False
) -> None:
    """The slot lies on the doctor's grid, is in the future and (as far as we can see now) is free; for a patient,
    also at least BOOKING_MIN_NOTICE_MINUTES ahead and within the booking horizon."""
    detail = {
        "duracao_consulta_minutos": medico.duracao_consulta_minutos,
        "horarios": [
            {"dia_semana": h.dia_semana, "inicio": f"{h.hora_inicio:%H:%M}", "fim": f"{h.hora_fim:%H:%M}"}
            for h in medico.horarios.all()
        ],
        "bloqueios": blocks_for_doctor(medico.pk, since=data),
    }
    hora = hora.replace(second=0, microsecond=0)
    holiday = holiday_name(data)
    if holiday:
        raise InvalidBooking(HOLIDAY_MESSAGE.format(date=f"{data:%d/%m}", holiday=holiday))
    block = block_over(detail["bloqueios"], data, hora, medico.duracao_consulta_minutos)
    if block is not None:
        raise InvalidBooking(block_message(block, medico.nome))
    grid = doctor_grid(detail, data)
    if hora not in grid:
        if staff:  # the staff are shown the doctor's times that day
            times = ", ".join(f"{t:%H:%M}" for t in grid) or "nenhum (o médico não atende nesse dia)"
            raise InvalidBooking(f"{INVALID_SLOT_MESSAGE} Horários dele nesse dia: {times}.")
        raise InvalidBooking(INVALID_SLOT_MESSAGE)
    starts = dt.datetime.combine(data, hora, tzinfo=timezone.get_default_timezone())
    if starts <= timezone.now():
        raise InvalidBooking(PAST_SLOT_MESSAGE)
    if not staff and starts < timezone.now() + dt.timedelta(minutes=settings.BOOKING_MIN_NOTICE_MINUTES):
        raise InvalidBooking(TOO_SOON_MESSAGE.format(minutes=settings.BOOKING_MIN_NOTICE_MINUTES))
    last_day = booking_last_day()
    if not staff and data > last_day:
        raise InvalidBooking(TOO_FAR_MESSAGE.format(date=f"{last_day:%d/%m/%Y}"))
    minutes = medico.duracao_consulta_minutos
    if slot_overlaps_booking(medico_id=medico.pk, data=data, hora=hora, minutes=minutes, exclude_id=exclude_id):
        raise SlotUnavailable(SLOT_UNAVAILABLE_MESSAGE)


def block_message(block: dict, doctor: str) -> str:
    """What the patient (or the staff) is told about an agenda block, never its reason: "A clínica estará fechada
    de 24/12 a 01/01." / "Dra. Ana não atende de 21/12 a 05/01." """
    period = block_period(block)
    if block["clinica"]:
        return CLINIC_CLOSED_MESSAGE.format(period=period)
    return DOCTOR_AWAY_MESSAGE.format(doctor=doctor, period=period)


def patient_busy_message(other: Agendamento) -> str:
    """What to tell a patient whose new time overlaps `other`, one of their own appointments."""
    time = f"{other.hora:%H:%M}"
    return PATIENT_BUSY_MESSAGE.format(patient=other.paciente_nome, doctor=other.medico.nome, time=time)


def _validate_patient_free(
    *, paciente_telefone: str, paciente_nome: str, medico: Medico, data: dt.date, hora: dt.time, exclude_id=None
) -> None:
    other = appointment_overlapping_for_patient(
        phone=paciente_telefone,
        name=paciente_nome,
        data=data,
        hora=hora,
        minutes=medico.duracao_consulta_minutos,
        exclude_id=exclude_id,
    )
    if other is not None:
        raise PatientBusy(patient_busy_message(other))


def _doctor_fitting(
    *, medico_id: int, especialidade_id: int, convenio_id: int | None
) -> tuple[Medico, Convenio | None]:
    """An active doctor who sees the specialty and, when there is one, takes the (active) plan."""
    medico = Medico.objects.filter(pk=medico_id, ativo=True).prefetch_related("horarios").first()
    if medico is None or not medico.especialidades.filter(pk=especialidade_id, ativa=True).exists():
        raise InvalidBooking(INVALID_DOCTOR_MESSAGE)
    convenio = None
    if convenio_id is not None:
        convenio = Convenio.objects.filter(pk=convenio_id, ativo=True).first()
        if convenio is None or not medico.convenios.filter(pk=convenio_id).exists():
            raise PlanNotAccepted(PLAN_NOT_ACCEPTED_MESSAGE)
    return medico, convenio


def _validate_booking(
    *, medico_id: int, especialidade_id: int, convenio_id: int | None, paciente_telefone: str
) -> tuple[Medico, Convenio | None]:
    medico, convenio = _doctor_fitting(medico_id=medico_id, especialidade_id=especialidade_id, convenio_id=convenio_id)
    limit = settings.PATIENT_MAX_OPEN_APPOINTMENTS
    if len(appointments_upcoming_for_phone(paciente_telefone)) >= limit:
        raise TooManyOpenAppointments(TOO_MANY_OPEN_MESSAGE.format(limit=limit), extra={"limit": limit})
    return medico, convenio


def _serialise_bookings_of(phone: str) -> None:
    """A transaction-scoped per-phone lock. PostgreSQL: an advisory lock; SQLite already runs one writer at a
    time (transactions are IMMEDIATE, see settings)."""
    _transaction_lock(f"booking:{phone}")


def _transaction_lock(key: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])


def appointment_book(
    *,
    medico_id: int,
    especialidade_id: int,
    convenio_id: int | None,
    paciente_nome: str,
    paciente_telefone: str,
    data: dt.date,
    hora: dt.time,
) -> Agendamento:
    """Book one slot. Of two patients racing for the same slot exactly one wins; the other gets SlotUnavailable."""
    try:
        paciente_nome, paciente_telefone = (paciente_nome or "").strip(), (paciente_telefone or "").strip()
        if not paciente_nome or not paciente_telefone:
            raise InvalidBooking(INVALID_PATIENT_MESSAGE)
        with transaction.atomic():
            # The open-appointment cap is a count followed by an insert: serialise them per phone.
            _serialise_bookings_of(paciente_telefone)
            medico, convenio = _validate_booking(
                medico_id=medico_id,
                especialidade_id=especialidade_id,
                convenio_id=convenio_id,
                paciente_telefone=paciente_telefone,
            )
            hora = hora.replace(second=0, microsecond=0)
            _validate_slot(medico=medico, data=data, hora=hora)
            _validate_patient_free(
                paciente_telefone=paciente_telefone, paciente_nome=paciente_nome, medico=medico, data=data, hora=hora
            )
            try:
                with transaction.atomic():
                    agendamento = Agendamento.objects.create(
                        medico=medico,
                        especialidade_id=especialidade_id,
                        convenio=convenio,
                        paciente_nome=paciente_nome,
                        paciente_telefone=paciente_telefone,
                        data=data,
                        hora=hora,
                        status=Agendamento.Status.AGENDADO,
                    )
            except IntegrityError as exc:
                # The partial unique constraint is the last defence: someone took the slot since we checked.
                raise SlotUnavailable(SLOT_UNAVAILABLE_MESSAGE) from exc
            waitlist_fulfilled(medico_id=medico.pk, paciente_telefone=paciente_telefone)
    except ApplicationError as exc:
        _record("book", exc.code)
        logger.info("booking refused for %s: %s", mask_phone(paciente_telefone), exc.code)
        raise
    _record("book", "success")
    logger.info(
        "appointment %s booked for %s with doctor %s on %s %s",
        agendamento.pk,
        mask_phone(paciente_telefone),
        medico_id,
        data,
        f"{hora:%H:%M}",
    )
    return agendamento


def _own_open_appointment(*, agendamento_id: int, paciente_telefone: str, for_update: bool = False) -> Agendamento:
    queryset = Agendamento.objects.filter(
        pk=agendamento_id, paciente_telefone__in=phone_forms(paciente_telefone), status__in=OPEN_STATUSES
    )
    if for_update:
        queryset = queryset.select_for_update()
    agendamento = queryset.first()
    if agendamento is None:
        raise AppointmentNotFound(APPOINTMENT_NOT_FOUND_MESSAGE)
    return agendamento


def appointment_cancel(*, agendamento_id: int, paciente_telefone: str) -> Agendamento:
    """Cancel one of this phone's own open appointments; the slot becomes free again."""
    return _status_set(agendamento_id, paciente_telefone, Agendamento.Status.CANCELADO, action="cancel")


def appointment_confirm(*, agendamento_id: int, paciente_telefone: str) -> Agendamento:
    """The patient says they will come ("confirmo minha presença"): the staff see it as "confirmado"."""
    return _status_set(agendamento_id, paciente_telefone, Agendamento.Status.CONFIRMADO, action="confirm")


def _status_set(agendamento_id: int, paciente_telefone: str, status: str, *, action: str) -> Agendamento:
    try:
        with transaction.atomic():
            agendamento = _own_open_appointment(
                agendamento_id=agendamento_id, paciente_telefone=paciente_telefone, for_update=True
            )
            if agendamento.status != status:
                agendamento.status = status
                agendamento.save(update_fields=["status", "atualizado_em"])
    except ApplicationError as exc:
        _record(action, exc.code)
        raise
    _record(action, "success")
    logger.info("appointment %s %s by %s", agendamento.pk, status, mask_phone(paciente_telefone))
    return agendamento


def appointment_reschedule(
    *, agendamento_id: int, paciente_telefone: str, data: dt.date, hora: dt.time, medico_id: int | None = None
) -> Agendamento:
    """Move one of this phone's own open appointments to another free slot: of the same doctor, or of `medico_id`,
    another doctor who sees the appointment's specialty and takes its plan."""
    hora = hora.replace(second=0, microsecond=0)
    try:
        try:
            with transaction.atomic():
                agendamento = _own_open_appointment(
                    agendamento_id=agendamento_id, paciente_telefone=paciente_telefone, for_update=True
                )
                medico = _doctor_for_reschedule(agendamento, medico_id or agendamento.medico_id)
                _validate_slot(medico=medico, data=data, hora=hora, exclude_id=agendamento.pk)
                _validate_patient_free(
                    paciente_telefone=paciente_telefone,
                    paciente_nome=agendamento.paciente_nome,
                    medico=medico,
                    data=data,
                    hora=hora,
                    exclude_id=agendamento.pk,
                )
                agendamento.medico, agendamento.data, agendamento.hora = medico, data, hora
                agendamento.status = Agendamento.Status.AGENDADO
                # The new time gets its own reminder, and its own notice should a block take it too.
                agendamento.lembrete_enviado_em = agendamento.aviso_bloqueio_em = None
                agendamento.duracao_minutos = medico.duracao_consulta_minutos
                moved = [
                    "medico",
                    "data",
                    "hora",
                    "status",
                    "duracao_minutos",
                    "lembrete_enviado_em",
                    "aviso_bloqueio_em",
                    "atualizado_em",
                ]
                agendamento.save(update_fields=moved)
                waitlist_fulfilled(medico_id=medico.pk, paciente_telefone=paciente_telefone)
        except IntegrityError as exc:
            raise SlotUnavailable(SLOT_UNAVAILABLE_MESSAGE) from exc
    except ApplicationError as exc:
        _record("reschedule", exc.code)
        raise
    _record("reschedule", "success")
    logger.info("appointment %s rescheduled by %s", agendamento.pk, mask_phone(paciente_telefone))
    return agendamento


def _doctor_for_reschedule(agendamento: Agendamento, medico_id: int) -> Medico:
    """The same doctor (still active), or another one who fits the appointment as a new booking would."""
    if medico_id != agendamento.medico_id:
        return _doctor_fitting(
            medico_id=medico_id, especialidade_id=agendamento.especialidade_id, convenio_id=agendamento.convenio_id
        )[0]
    medico = Medico.objects.filter(pk=medico_id, ativo=True).prefetch_related("horarios").first()
    if medico is None:
        raise InvalidBooking(INVALID_DOCTOR_MESSAGE)
    return medico


def patient_forget_appointments(*, phone: str) -> int:
    """Anonymise every appointment of a phone (LGPD); the rows stay so the clinic's agenda history is intact."""
    with transaction.atomic():
        count = Agendamento.objects.filter(paciente_telefone=phone).update(
            paciente_nome=ANONYMIZED_NAME,
            paciente_telefone=Concat(models.Value("anonimizado-"), Cast("id", output_field=models.CharField())),
        )
    logger.info("anonymised %d appointments of %s", count, mask_phone(phone))
    return count


def waitlist_fulfilled(*, medico_id: int, paciente_telefone: str) -> None:
    """The patient got a time with the doctor (booked by the bot, the REST API or the reception, or moved an
    appointment there): off that doctor's waitlist."""
    ListaEspera.objects.filter(
        medico_id=medico_id, paciente_telefone__in=phone_forms(paciente_telefone), situacao__in=ListaEspera.OPEN
    ).update(situacao=ListaEspera.Situacao.AGENDOU, encerrado_em=timezone.now())


def waitlist_join(
    *, medico_id: int, especialidade_id: int | None, paciente_nome: str, paciente_telefone: str, now: dt.datetime
) -> tuple[ListaEspera, bool]:
    """Puts the patient on an active doctor's waitlist for WAITLIST_DAYS from now. Returns the entry and whether
    this joined it: False when the patient was already waiting (the days count again from now). One who was told
    of a time someone else took waits again, at their old place in line (first come, first served)."""
    if not Medico.objects.filter(pk=medico_id, ativo=True).exists():
        raise InvalidBooking(INVALID_DOCTOR_MESSAGE)
    until = now + dt.timedelta(days=settings.WAITLIST_DAYS)
    forms = phone_forms(paciente_telefone)
    with transaction.atomic():
        # The unique constraint sees one spelling of the phone; both forms of a mobile are one patient.
        _transaction_lock(f"waitlist:{medico_id}:{min(forms)}")
        entry = (
            ListaEspera.objects.select_for_update()
            .filter(medico_id=medico_id, paciente_telefone__in=forms, situacao__in=ListaEspera.OPEN)
            .first()
        )
        if entry is not None:  # asking again: waiting again, told again when a time opens (notices count anew)
            joined = entry.situacao == ListaEspera.Situacao.AVISADO  # told of a time someone else took
            entry.situacao, entry.expira_em = ListaEspera.Situacao.AGUARDANDO, until
            entry.avisado_em, entry.avisos = None, 0
            entry.save(update_fields=["situacao", "expira_em", "avisado_em", "avisos"])
            return entry, joined
        try:
            with transaction.atomic():
                entry = ListaEspera.objects.create(
                    medico_id=medico_id,
                    especialidade_id=especialidade_id,
                    paciente_nome=(paciente_nome or "").strip()[:200],
                    paciente_telefone=paciente_telefone,
                    criado_em=now,
                    expira_em=until,
                )
        except IntegrityError:  # the same patient joined from another channel a moment ago
            return ListaEspera.objects.get(
                medico_id=medico_id, paciente_telefone=paciente_telefone, situacao__in=ListaEspera.OPEN
            ), False
    logger.info("%s joined the waitlist of doctor %s", mask_phone(paciente_telefone), medico_id)
    return entry, True


def waitlist_leave(*, entry_ids: list[int], now: dt.datetime) -> int:
    """The patient asked to leave these waitlists."""
    return ListaEspera.objects.filter(pk__in=entry_ids, situacao__in=ListaEspera.OPEN).update(
        situacao=ListaEspera.Situacao.SAIU, encerrado_em=now
    )


def waitlist_expire(*, now: dt.datetime) -> int:
    """Closes the entries past their WAITLIST_DAYS: the patient's need is likely gone."""
    return ListaEspera.objects.filter(situacao__in=ListaEspera.OPEN, expira_em__lt=now).update(
        situacao=ListaEspera.Situacao.EXPIROU, encerrado_em=now
    )


def waitlist_told_claim(*, entry_id: int, now: dt.datetime, told_before: dt.datetime, max_notices: int) -> bool:
    """Marks an open entry as told of a free time now, unless it was told since `told_before` or `max_notices`
    times already (or closed meanwhile, or another run claimed it): then False."""
    return bool(
        ListaEspera.objects.filter(pk=entry_id, situacao__in=ListaEspera.OPEN, avisos__lt=max_notices)
        .filter(Q(avisado_em__isnull=True) | Q(avisado_em__lt=told_before))
        .update(situacao=ListaEspera.Situacao.AVISADO, avisado_em=now, avisos=F("avisos") + 1)
    )


def waitlist_notice_failed(*, entry_id: int) -> None:
    """The notice could not be delivered: the patient waits again (told again no sooner than any other patient
    told; the attempt counts), and the time is not held for them."""
    ListaEspera.objects.filter(pk=entry_id, situacao=ListaEspera.Situacao.AVISADO).update(
        situacao=ListaEspera.Situacao.AGUARDANDO
    )


def patient_forget_waitlist(*, phone: str) -> int:
    """Deletes a phone's waitlist entries (LGPD): unlike appointments, they are no record the clinic must keep."""
    return ListaEspera.objects.filter(paciente_telefone=phone).delete()[1].get(ListaEspera._meta.label, 0)
