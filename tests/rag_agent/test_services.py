import datetime as dt

import pytest
from django.utils import timezone

from core.metrics import BOOKINGS
from rag_agent.models import Agendamento
from rag_agent.selectors import slot_list_free
from rag_agent.services import (
    ANONYMIZED_NAME,
    APPOINTMENT_NOT_FOUND_MESSAGE,
    HOLIDAY_MESSAGE,
    PLAN_NOT_ACCEPTED_MESSAGE,
    SLOT_UNAVAILABLE_MESSAGE,
    AppointmentNotFound,
    InvalidBooking,
    PatientBusy,
    PlanNotAccepted,
    SlotUnavailable,
    TooManyOpenAppointments,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    patient_forget_appointments,
)
from tests.concurrency import at_once
from tests.rag_agent.conftest import next_weekday

pytestmark = pytest.mark.django_db

MONDAY = next_weekday(0)
WEDNESDAY = next_weekday(2)


def _book_ana(demo, phone, *, day=MONDAY, hhmm="09:00", convenio=None, nome="Maria Oliveira"):
    return appointment_book(
        medico_id=demo.ana.id,
        especialidade_id=demo.cardiologia.id,
        convenio_id=convenio.id if convenio else None,
        paciente_nome=nome,
        paciente_telefone=phone,
        data=day,
        hora=dt.time.fromisoformat(hhmm),
    )


def _metric(action: str, outcome: str) -> float:
    return BOOKINGS.labels(action, outcome)._value.get()


def test_booking_a_free_slot_creates_a_scheduled_appointment(demo, phone):
    before = _metric("book", "success")
    agendamento = _book_ana(demo, phone, convenio=demo.unimed)
    agendamento.refresh_from_db()
    assert agendamento.status == Agendamento.Status.AGENDADO
    assert (agendamento.data, agendamento.hora) == (MONDAY, dt.time(9, 0))
    assert agendamento.convenio == demo.unimed
    assert agendamento.paciente_telefone == phone
    assert _metric("book", "success") == before + 1
    assert dt.time(9, 0) not in [s.time() for s in slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=1)]


def test_private_booking_needs_no_plan(demo, phone):
    assert _book_ana(demo, phone).convenio is None


def test_booking_a_taken_slot_raises_slot_unavailable(demo, phone):
    _book_ana(demo, phone)
    before = _metric("book", "slot_unavailable")
    with pytest.raises(SlotUnavailable) as excinfo:
        _book_ana(demo, "5511911112222")
    assert excinfo.value.message == SLOT_UNAVAILABLE_MESSAGE
    assert _metric("book", "slot_unavailable") == before + 1
    assert Agendamento.objects.count() == 1


def test_a_cancelled_slot_can_be_booked_again(demo, phone):
    first = _book_ana(demo, phone)
    appointment_cancel(agendamento_id=first.pk, paciente_telefone=phone)
    second = _book_ana(demo, "5511911112222")
    assert second.pk != first.pk


def test_plan_not_accepted_by_the_doctor_is_refused(demo, phone):
    with pytest.raises(PlanNotAccepted) as excinfo:
        _book_ana(demo, phone, convenio=demo.amil)
    assert excinfo.value.message == PLAN_NOT_ACCEPTED_MESSAGE
    with pytest.raises(PlanNotAccepted):
        _book_ana(demo, phone, convenio=demo.hapvida)  # inactive plan
    assert not Agendamento.objects.exists()


@pytest.mark.parametrize(
    ("day_offset", "hhmm"),
    [
        (0, "09:15"),  # off the 30-minute grid
        (0, "12:30"),  # lunch break
        (0, "17:45"),  # would end after the shift
        (1, "09:00"),  # Ana does not work on Tuesdays
    ],
)
def test_slots_off_the_doctors_grid_are_invalid(demo, phone, day_offset, hhmm):
    with pytest.raises(InvalidBooking):
        _book_ana(demo, phone, day=MONDAY + dt.timedelta(days=day_offset), hhmm=hhmm)


def test_past_slots_are_invalid(demo, phone):
    last_monday = next_weekday(0, weeks_ahead=-1) - dt.timedelta(days=7)
    with pytest.raises(InvalidBooking):
        _book_ana(demo, phone, day=last_monday)


def test_slots_sooner_than_the_minimum_notice_are_refused(demo, phone, settings):
    settings.BOOKING_MIN_NOTICE_MINUTES = 60 * 24 * 60  # two months: next Monday is too soon
    with pytest.raises(InvalidBooking, match="pelo menos 86400 minutos de antecedência"):
        _book_ana(demo, phone)
    settings.BOOKING_MIN_NOTICE_MINUTES = 60
    assert _book_ana(demo, phone).data == MONDAY


def test_doctor_without_the_specialty_is_invalid(demo, phone):
    with pytest.raises(InvalidBooking):
        appointment_book(
            medico_id=demo.ana.id,
            especialidade_id=demo.ortopedia.id,
            convenio_id=None,
            paciente_nome="Maria",
            paciente_telefone=phone,
            data=MONDAY,
            hora=dt.time(9, 0),
        )


def test_blank_patient_name_is_invalid(demo, phone):
    with pytest.raises(InvalidBooking):
        _book_ana(demo, phone, nome="   ")


def test_a_phone_cannot_hold_more_open_appointments_than_the_limit(demo, phone, settings):
    settings.PATIENT_MAX_OPEN_APPOINTMENTS = 2
    first = _book_ana(demo, phone, hhmm="08:00")
    _book_ana(demo, phone, hhmm="08:30")
    with pytest.raises(TooManyOpenAppointments) as excinfo:
        _book_ana(demo, phone, hhmm="09:00")
    assert "2" in excinfo.value.message
    appointment_cancel(agendamento_id=first.pk, paciente_telefone=phone)
    assert _book_ana(demo, phone, hhmm="09:00").status == Agendamento.Status.AGENDADO


def _book_igor(demo, phone, hhmm, nome="Maria Oliveira", day=MONDAY):
    return appointment_book(
        medico_id=demo.igor.id,
        especialidade_id=demo.clinica_geral.id,
        convenio_id=None,
        paciente_nome=nome,
        paciente_telefone=phone,
        data=day,
        hora=dt.time.fromisoformat(hhmm),
    )


def test_one_person_cannot_be_booked_into_two_overlapping_consultations(demo, phone):
    _book_ana(demo, phone, hhmm="09:00")  # 30 minutes: until 09:30
    with pytest.raises(PatientBusy, match="Maria Oliveira já tem uma consulta nesse horário"):
        _book_igor(demo, phone, "09:20", nome="  maria  OLIVEIRA ")
    assert _book_igor(demo, phone, "09:40").pk  # after the first ends
    assert _book_igor(demo, phone, "09:20", nome="Joana Oliveira").pk  # a child of the same phone


def test_rescheduling_onto_another_own_appointment_is_refused(demo, phone):
    first = _book_ana(demo, phone, hhmm="09:00")
    _book_igor(demo, phone, "10:00")
    with pytest.raises(PatientBusy):
        appointment_reschedule(agendamento_id=first.pk, paciente_telefone=phone, data=MONDAY, hora=dt.time(10, 0))
    moved = appointment_reschedule(agendamento_id=first.pk, paciente_telefone=phone, data=MONDAY, hora=dt.time(9, 30))
    assert moved.hora == dt.time(9, 30)  # overlapping its own old time is fine


def _next_weekday_christmas() -> dt.date:
    today = timezone.localdate()
    year = today.year if dt.date(today.year, 12, 25) > today else today.year + 1
    while dt.date(year, 12, 25).weekday() > 4:
        year += 1
    return dt.date(year, 12, 25)


def test_a_holiday_has_no_free_slots_and_cannot_be_booked(demo, phone, settings):
    settings.CLINIC_HOLIDAYS = "BR"
    christmas = _next_weekday_christmas()
    assert slot_list_free(medico_id=demo.igor.id, start=christmas, days=1) == []
    with pytest.raises(InvalidBooking) as refused:
        _book_igor(demo, phone, "09:00", day=christmas)
    assert refused.value.message == HOLIDAY_MESSAGE.format(date=f"{christmas:%d/%m}", holiday="Natal")
    settings.CLINIC_HOLIDAYS = ""  # a clinic that opens on holidays
    assert slot_list_free(medico_id=demo.igor.id, start=christmas, days=1)
    assert _book_igor(demo, phone, "09:00", day=christmas).pk


def test_cancel_only_works_on_the_phones_own_open_appointment(demo, phone):
    agendamento = _book_ana(demo, phone)
    with pytest.raises(AppointmentNotFound) as excinfo:
        appointment_cancel(agendamento_id=agendamento.pk, paciente_telefone="5511911112222")
    assert excinfo.value.message == APPOINTMENT_NOT_FOUND_MESSAGE
    agendamento.refresh_from_db()
    assert agendamento.status == Agendamento.Status.AGENDADO
    cancelled = appointment_cancel(agendamento_id=agendamento.pk, paciente_telefone=phone)
    assert cancelled.status == Agendamento.Status.CANCELADO
    with pytest.raises(AppointmentNotFound):
        appointment_cancel(agendamento_id=agendamento.pk, paciente_telefone=phone)  # already cancelled


def test_reschedule_moves_the_own_appointment_to_a_free_slot(demo, phone):
    agendamento = _book_ana(demo, phone)
    moved = appointment_reschedule(
        agendamento_id=agendamento.pk, paciente_telefone=phone, data=WEDNESDAY, hora=dt.time(14, 0)
    )
    moved.refresh_from_db()
    assert (moved.pk, moved.data, moved.hora) == (agendamento.pk, WEDNESDAY, dt.time(14, 0))
    # the old slot is free again
    assert _book_ana(demo, "5511911112222").data == MONDAY


def test_reschedule_refuses_other_phones_taken_slots_and_off_grid_times(demo, phone):
    mine = _book_ana(demo, phone)
    _book_ana(demo, "5511911112222", hhmm="10:00")
    with pytest.raises(AppointmentNotFound):
        appointment_reschedule(
            agendamento_id=mine.pk, paciente_telefone="5511911112222", data=MONDAY, hora=dt.time(11, 0)
        )
    with pytest.raises(SlotUnavailable):
        appointment_reschedule(agendamento_id=mine.pk, paciente_telefone=phone, data=MONDAY, hora=dt.time(10, 0))
    with pytest.raises(InvalidBooking):
        appointment_reschedule(agendamento_id=mine.pk, paciente_telefone=phone, data=MONDAY, hora=dt.time(12, 30))
    mine.refresh_from_db()
    assert (mine.data, mine.hora) == (MONDAY, dt.time(9, 0))


def test_rescheduling_to_the_same_slot_is_allowed(demo, phone):
    mine = _book_ana(demo, phone)
    same = appointment_reschedule(agendamento_id=mine.pk, paciente_telefone=phone, data=MONDAY, hora=dt.time(9, 0))
    assert same.hora == dt.time(9, 0)


def test_forgetting_a_patient_anonymises_all_their_appointments(demo, phone):
    a = _book_ana(demo, phone, hhmm="08:00")
    b = _book_ana(demo, phone, hhmm="08:30")
    other = _book_ana(demo, "5511911112222", hhmm="09:00", nome="José Lima")
    assert patient_forget_appointments(phone=phone) == 2
    a.refresh_from_db()
    b.refresh_from_db()
    other.refresh_from_db()
    assert (a.paciente_nome, a.paciente_telefone) == (ANONYMIZED_NAME, f"anonimizado-{a.pk}")
    assert b.paciente_telefone == f"anonimizado-{b.pk}"
    assert other.paciente_nome == "José Lima"
    assert not Agendamento.objects.filter(paciente_telefone=phone).exists()
    assert patient_forget_appointments(phone=phone) == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_patients_racing_for_the_last_slot_get_exactly_one_booking(demo):
    contenders = 6

    def contend(index: int) -> str:
        try:
            _book_ana(demo, f"55119000000{index:02d}", hhmm="15:00")
            return "booked"
        except SlotUnavailable:
            return "unavailable"

    outcomes = at_once(contenders, contend)
    assert sorted(outcomes) == ["booked"] + ["unavailable"] * (contenders - 1)
    assert Agendamento.objects.filter(medico=demo.ana, data=MONDAY, hora=dt.time(15, 0)).count() == 1


def test_reschedule_can_move_to_another_doctor_of_the_specialty_who_takes_the_plan(demo, phone):
    with_unimed = _book_ana(demo, phone, convenio=demo.unimed)  # Dr. Carlos (Cardiologia) does not take Unimed
    free = slot_list_free(medico_id=demo.carlos.id, start=timezone.localdate(), days=14)
    when = timezone.localtime(free[0])
    move = {"data": when.date(), "hora": when.time()}
    with pytest.raises(PlanNotAccepted):
        appointment_reschedule(agendamento_id=with_unimed.pk, paciente_telefone=phone, medico_id=demo.carlos.id, **move)
    with pytest.raises(InvalidBooking):  # Dr. Igor does not see Cardiologia
        appointment_reschedule(agendamento_id=with_unimed.pk, paciente_telefone=phone, medico_id=demo.igor.id, **move)
    with_unimed.refresh_from_db()
    assert with_unimed.medico == demo.ana
    private = _book_ana(demo, "5511911113333", hhmm="10:00")
    appointment_reschedule(
        agendamento_id=private.pk, paciente_telefone="5511911113333", medico_id=demo.carlos.id, **move
    )
    private.refresh_from_db()
    assert (private.medico, private.data, private.hora) == (demo.carlos, when.date(), when.time())


def test_a_date_beyond_the_booking_horizon_is_refused(demo, phone, settings):
    settings.BOOKING_HORIZON_DAYS = 30
    far = MONDAY + dt.timedelta(days=35)
    with pytest.raises(InvalidBooking, match="A agenda está aberta só até"):
        _book_ana(demo, phone, day=far)
    settings.BOOKING_HORIZON_DAYS = 60
    assert _book_ana(demo, phone, day=far).data == far
