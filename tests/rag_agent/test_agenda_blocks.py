"""Agenda blocks (BloqueioAgenda): a doctor's holidays or congress, the clinic's recess. No slot in one is offered
or booked, the staff are told which appointments fall into a new one, and those get no reminder."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from rag_agent.closures import block_period
from rag_agent.models import Agendamento, BloqueioAgenda
from rag_agent.selectors import (
    appointments_blocked_untold,
    appointments_in_block,
    appointments_to_remind,
    doctor_detail,
    slot_list_free,
)
from rag_agent.services import InvalidBooking, appointment_book, appointment_check_for_staff
from tests.rag_agent.conftest import next_weekday

pytestmark = pytest.mark.django_db

MONDAY = next_weekday(0)
TZ = timezone.get_default_timezone()


def _times(doctor, day: dt.date) -> list[str]:
    return [f"{timezone.localtime(w):%H:%M}" for w in slot_list_free(medico_id=doctor.id, start=day, days=1)]


def _book(demo, doctor, day: dt.date, hhmm: str, *, phone="5511999990001", name="Maria Oliveira"):
    specialty = demo.cardiologia if doctor == demo.ana else demo.clinica_geral
    return appointment_book(
        medico_id=doctor.id,
        especialidade_id=specialty.id,
        convenio_id=None,
        paciente_nome=name,
        paciente_telefone=phone,
        data=day,
        hora=dt.time.fromisoformat(hhmm),
    )


def test_a_doctors_whole_day_block_takes_only_that_doctors_slots_and_refuses_a_booking(demo):
    assert _times(demo.ana, MONDAY)  # the doctor details are cached now: the block must drop them
    BloqueioAgenda.objects.create(medico=demo.ana, data_inicio=MONDAY, data_fim=MONDAY + dt.timedelta(days=2))

    assert _times(demo.ana, MONDAY) == [] and _times(demo.ana, MONDAY + dt.timedelta(days=2)) == []
    assert _times(demo.ana, MONDAY + dt.timedelta(days=4))  # Friday, after the block
    assert _times(demo.igor, MONDAY)  # another doctor works as usual
    with pytest.raises(InvalidBooking) as refused:
        _book(demo, demo.ana, MONDAY, "09:00")
    period = f"de {MONDAY:%d/%m} a {MONDAY + dt.timedelta(days=2):%d/%m}"
    assert refused.value.message == f"Dra. Ana Souza não atende {period}."
    assert not Agendamento.objects.exists()


def test_a_block_with_hours_takes_only_the_slots_that_overlap_them(demo):
    # Dra. Ana: 08-12 and 14-18, 30 minutes. Away 14:10-15:30 on Monday: 14:00 to 15:00 overlap it.
    BloqueioAgenda.objects.create(
        medico=demo.ana, data_inicio=MONDAY, data_fim=MONDAY, hora_inicio=dt.time(14, 10), hora_fim=dt.time(15, 30)
    )
    afternoon = [t for t in _times(demo.ana, MONDAY) if t >= "13:00"]
    assert afternoon == ["15:30", "16:00", "16:30", "17:00", "17:30"]
    with pytest.raises(InvalidBooking) as refused:
        _book(demo, demo.ana, MONDAY, "15:00")
    assert refused.value.message == f"Dra. Ana Souza não atende em {MONDAY:%d/%m} das 14:10 às 15:30."
    assert _book(demo, demo.ana, MONDAY, "15:30").pk


def test_a_clinic_wide_block_closes_every_doctor_and_is_said_as_the_clinic_closed(demo):
    BloqueioAgenda.objects.create(data_inicio=MONDAY, data_fim=MONDAY, motivo="dedetização")
    assert _times(demo.ana, MONDAY) == [] and _times(demo.igor, MONDAY) == []
    with pytest.raises(InvalidBooking) as refused:
        _book(demo, demo.igor, MONDAY, "09:00")
    assert refused.value.message == f"A clínica estará fechada em {MONDAY:%d/%m}."  # the reason stays internal


def test_editing_or_deleting_a_block_gives_the_slots_back_at_once(demo):
    block = BloqueioAgenda.objects.create(medico=demo.ana, data_inicio=MONDAY, data_fim=MONDAY)
    assert _times(demo.ana, MONDAY) == []
    block.medico = demo.igor  # moved to another doctor: the first one's cached entry must not keep it
    block.save()
    assert _times(demo.ana, MONDAY) and _times(demo.igor, MONDAY) == []
    block.delete()
    assert _times(demo.igor, MONDAY)
    assert doctor_detail(demo.igor.id)["bloqueios"] == []


def test_the_staff_cannot_enter_an_appointment_inside_a_block(demo):
    BloqueioAgenda.objects.create(medico=demo.ana, data_inicio=MONDAY, data_fim=MONDAY)
    with pytest.raises(InvalidBooking) as refused:
        appointment_check_for_staff(
            medico_id=demo.ana.id,
            especialidade_id=demo.cardiologia.id,
            convenio_id=None,
            data=MONDAY,
            hora=dt.time(9),
        )
    assert refused.value.message == f"Dra. Ana Souza não atende em {MONDAY:%d/%m}."


def test_a_block_that_ended_is_no_longer_read(demo):
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    BloqueioAgenda.objects.create(medico=demo.ana, data_inicio=yesterday - dt.timedelta(days=5), data_fim=yesterday)
    assert doctor_detail(demo.ana.id)["bloqueios"] == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"data_fim": MONDAY - dt.timedelta(days=1)}, "A data final deve ser igual ou posterior à inicial."),
        ({"hora_inicio": dt.time(14)}, "Preencha as duas horas"),
        ({"hora_inicio": dt.time(14), "hora_fim": dt.time(13)}, "Preencha as duas horas"),
    ],
)
def test_a_block_that_makes_no_sense_is_refused_in_portuguese(demo, fields, message):
    block = BloqueioAgenda(medico=demo.ana, **{"data_inicio": MONDAY, "data_fim": MONDAY, **fields})
    with pytest.raises(ValidationError) as refused:
        block.full_clean()
    assert message in str(refused.value)


def test_a_block_is_said_with_years_only_when_they_differ():
    assert block_period({"de": "2026-12-21", "ate": "2027-01-05", "das": None}) == "de 21/12/2026 a 05/01/2027"
    assert block_period({"de": "2026-12-24", "ate": "2026-12-24", "das": "12:00", "as": "18:00"}) == (
        "em 24/12 das 12:00 às 18:00"
    )
    assert block_period({"de": "2026-12-21", "ate": "2026-12-23", "das": "08:00", "as": "12:00"}) == (
        "de 21/12 a 23/12, das 08:00 às 12:00"
    )


def _appointment(demo, doctor, day, hhmm, name="Maria Oliveira") -> Agendamento:
    specialty = demo.cardiologia if doctor == demo.ana else demo.clinica_geral
    return Agendamento.objects.create(
        medico=doctor,
        especialidade=specialty,
        paciente_nome=name,
        paciente_telefone="5511987654321",
        data=day,
        hora=dt.time.fromisoformat(hhmm),
    )


def test_the_appointments_caught_by_a_block_are_the_open_ones_that_overlap_it(demo):
    inside = _appointment(demo, demo.ana, MONDAY, "14:30")
    _appointment(demo, demo.ana, MONDAY, "16:00", name="Fora do Horário")  # after the block's hours
    _appointment(demo, demo.igor, MONDAY, "09:00", name="Outro Médico")
    cancelled = _appointment(demo, demo.ana, MONDAY, "15:00", name="Cancelada")
    Agendamento.objects.filter(pk=cancelled.pk).update(status=Agendamento.Status.CANCELADO)
    block = BloqueioAgenda.objects.create(
        medico=demo.ana, data_inicio=MONDAY, data_fim=MONDAY, hora_inicio=dt.time(14), hora_fim=dt.time(15, 30)
    )
    assert [a.pk for a in appointments_in_block(block)] == [inside.pk]
    clinic = BloqueioAgenda.objects.create(data_inicio=MONDAY, data_fim=MONDAY)
    assert len(appointments_in_block(clinic)) == 3


def test_the_appointments_whose_patient_must_be_told_are_those_of_every_block_not_told_yet(demo):
    inside = _appointment(demo, demo.ana, MONDAY, "14:30")
    _appointment(demo, demo.ana, MONDAY, "16:00", name="Fora do Horário")  # after the block's hours
    _appointment(demo, demo.igor, MONDAY, "14:30", name="Outro Médico")  # Igor is not away
    told = _appointment(demo, demo.ana, MONDAY, "15:00", name="Já Avisada")
    Agendamento.objects.filter(pk=told.pk).update(aviso_bloqueio_em=timezone.now())
    igor_later = _appointment(demo, demo.igor, MONDAY + dt.timedelta(days=7), "09:00", name="Recesso")
    BloqueioAgenda.objects.create(
        medico=demo.ana, data_inicio=MONDAY, data_fim=MONDAY, hora_inicio=dt.time(14), hora_fim=dt.time(15, 30)
    )
    BloqueioAgenda.objects.create(data_inicio=MONDAY + dt.timedelta(days=7), data_fim=MONDAY + dt.timedelta(days=8))
    BloqueioAgenda.objects.create(data_inicio=MONDAY - dt.timedelta(days=30), data_fim=MONDAY - dt.timedelta(days=20))

    assert [a.pk for a in appointments_blocked_untold()] == [inside.pk, igor_later.pk]


def test_an_appointment_inside_a_block_gets_no_reminder(demo):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    kept = _appointment(demo, demo.igor, tomorrow, "09:00")
    away = _appointment(demo, demo.ana, tomorrow, "10:00", name="João Lima")
    long_ago = timezone.now() - dt.timedelta(days=3)
    Agendamento.objects.update(criado_em=long_ago, atualizado_em=long_ago)
    BloqueioAgenda.objects.create(medico=demo.ana, data_inicio=tomorrow, data_fim=tomorrow)

    due = appointments_to_remind(
        earliest=timezone.now(), latest=timezone.now() + dt.timedelta(days=2), changed_before=timezone.now()
    )
    assert [a.pk for a in due] == [kept.pk] and away.pk not in [a.pk for a in due]


def test_the_admin_warns_of_the_appointments_a_new_block_catches_and_links_to_exactly_them(staff_client, demo):
    inside = _appointment(demo, demo.ana, MONDAY, "09:00")
    outside = _appointment(demo, demo.ana, MONDAY + dt.timedelta(days=2), "09:00", name="Outra Data")
    data = {"medico": demo.ana.pk, "data_inicio": MONDAY.isoformat(), "data_fim": MONDAY.isoformat(), "motivo": "x"}
    data.update({"hora_inicio": "", "hora_fim": ""})

    response = staff_client.post(reverse("admin:rag_agent_bloqueioagenda_add"), data, follow=True)

    page = response.content.decode()
    assert "Há 1 consulta(s) marcada(s) nesse bloqueio" in page, page
    assert BloqueioAgenda.objects.filter(medico=demo.ana, data_inicio=MONDAY).exists()
    link = reverse("admin:rag_agent_agendamento_changelist") + f"?id__in={inside.pk}"
    assert link in page
    listed = staff_client.get(link)
    assert listed.status_code == 200 and list(listed.context["cl"].queryset) == [inside]
    assert outside not in listed.context["cl"].queryset


def test_the_admin_lists_blocks_with_who_and_when(staff_client, demo):
    BloqueioAgenda.objects.create(data_inicio=MONDAY, data_fim=MONDAY + dt.timedelta(days=1), motivo="Recesso")
    page = staff_client.get(reverse("admin:rag_agent_bloqueioagenda_changelist")).content.decode()
    assert "Clínica inteira" in page and f"de {MONDAY:%d/%m} a {MONDAY + dt.timedelta(days=1):%d/%m}" in page


def test_a_consultation_already_over_today_is_not_counted_as_caught(demo):
    now = timezone.localtime()
    if now.hour < 1:
        pytest.skip("needs an hour of today behind us")
    today = now.date()
    over = _appointment(demo, demo.ana, today, f"{now.hour - 1:02d}:00")
    block = BloqueioAgenda.objects.create(medico=demo.ana, data_inicio=today, data_fim=today)
    assert over.pk not in [a.pk for a in appointments_in_block(block)]


def test_whole_days_come_before_hours_on_the_same_day_on_every_database(demo):
    BloqueioAgenda.objects.create(
        medico=demo.ana, data_inicio=MONDAY, data_fim=MONDAY, hora_inicio=dt.time(8), hora_fim=dt.time(9)
    )
    BloqueioAgenda.objects.create(data_inicio=MONDAY, data_fim=MONDAY)
    assert [b["das"] for b in doctor_detail(demo.ana.id)["bloqueios"]] == [None, "08:00"]
