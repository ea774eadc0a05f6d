"""An agenda block (a doctor's holidays, the clinic's recess) that takes booked appointments: each patient is told
once on WhatsApp, through the approved template WHATSAPP_RESCHEDULE_TEMPLATE with "Remarcar" / "Cancelar consulta",
sent through the real httpx client against the fake Graph API; the tap moves or cancels that appointment in the chat."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services import conversation, reminders
from api_gateway.services import texts as T
from api_gateway.services.reminders import RESEND_AFTER, block_notices_send, reminders_send
from rag_agent import services as clinic_services
from rag_agent.models import Agendamento, BloqueioAgenda, Medico
from tests.concurrency import at_once
from tests.fakes import graph_server
from tests.fakes.graph_server import graph_error
from tests.rag_agent.conftest import next_weekday

fake_graph = graph_server.fake_graph
celery_inline = graph_server.celery_inline

pytestmark = pytest.mark.django_db

TEMPLATE = "consulta_remarcar"
MONDAY = next_weekday(0)
WEDNESDAY = MONDAY + dt.timedelta(days=2)
TODAY_10 = timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time(10, 0)))  # within sending hours
Delivery = ConversationMessage.Delivery
Status = Agendamento.Status
MARIA, PEDRO, JOANA = "5511999990001", "5511999990002", "5511999990003"


@pytest.fixture
def notices_on(settings):
    settings.WHATSAPP_RESCHEDULE_TEMPLATE = TEMPLATE
    settings.WHATSAPP_TEMPLATE_LANGUAGE = "pt_BR"


@pytest.fixture
def any_hour(monkeypatch):
    """The admin starts its run on the real clock; messages the clinic starts go out only from 08:00 to 20:00, so
    the admin's tests open that window to the whole day (the hours themselves are tested with an explicit `now`)."""
    monkeypatch.setattr(reminders, "SEND_FROM", dt.time.min)
    monkeypatch.setattr(reminders, "SEND_UNTIL", dt.time.max)


def _book(hhmm="09:00", day=MONDAY, *, doctor="Dra. Ana Souza", phone=MARIA, name="Maria Oliveira") -> Agendamento:
    medico = Medico.objects.get(nome=doctor)
    return clinic_services.appointment_book(
        medico_id=medico.id,
        especialidade_id=medico.especialidades.first().id,
        convenio_id=None,
        paciente_nome=name,
        paciente_telefone=phone,
        data=day,
        hora=dt.time.fromisoformat(hhmm),
    )


def _block(*, doctor: str | None = "Dra. Ana Souza", first=MONDAY, last=MONDAY, hours=None) -> BloqueioAgenda:
    start, end = (dt.time.fromisoformat(h) for h in hours) if hours else (None, None)
    medico = Medico.objects.get(nome=doctor) if doctor else None
    return BloqueioAgenda.objects.create(
        medico=medico, data_inicio=first, data_fim=last, hora_inicio=start, hora_fim=end, motivo="Férias"
    )


def _admin_block_add(client, *, doctor="Dra. Ana Souza", day=MONDAY):
    data = {"medico": Medico.objects.get(nome=doctor).pk, "data_inicio": day.isoformat(), "data_fim": day.isoformat()}
    data.update({"hora_inicio": "", "hora_fim": "", "motivo": "Congresso"})
    return client.post(reverse("admin:rag_agent_bloqueioagenda_add"), data, follow=True)


def _params(send) -> tuple[list[str], list[str]]:
    components = send.body["template"]["components"]
    body = [p["text"] for c in components if c["type"] == "body" for p in c["parameters"]]
    buttons = [c["parameters"][0]["payload"] for c in components if c["type"] == "button"]
    return body, buttons


@pytest.mark.django_db(transaction=True)  # the admin starts the run once the block is committed
def test_a_block_saved_in_the_admin_tells_each_caught_patient_once(clinic, notices_on, any_hour, fake_graph,
                                                                   admin_client, celery_inline):  # fmt: skip
    maria = _book("09:00")
    pedro = _book("10:00", phone=PEDRO, name="Pedro Lima")
    other_doctor = _book("09:00", doctor="Dr. Igor Santos", phone=JOANA, name="Joana Reis")
    other_day = _book("09:00", WEDNESDAY, phone=JOANA, name="Joana Reis")

    page = _admin_block_add(admin_client).content.decode()

    assert "2 paciente(s) recebem pelo WhatsApp um pedido para remarcar ou cancelar" in page, page
    assert [s.body["to"] for s in fake_graph.sends] == [MARIA, PEDRO]
    assert {s.body["template"]["name"] for s in fake_graph.sends} == {TEMPLATE}
    body, buttons = _params(fake_graph.sends[0])
    away = f"Dra. Ana Souza não atende em {MONDAY:%d/%m}."
    assert body == [away, "Maria Oliveira", "Dra. Ana Souza", T.date_long(MONDAY), "09:00"]
    assert buttons == [f"reminder:reschedule:{maria.pk}", f"reminder:cancel:{maria.pk}"]
    stored = ConversationMessage.objects.get(session__phone_number=MARIA, channel_type="template")
    assert stored.delivery_status == Delivery.SENT and stored.content.startswith(f"Olá! {away} A consulta de Maria")
    assert "precisa de outro horário" in ConversationSession.objects.get(phone_number=MARIA).recent_messages[-1]["text"]
    told = dict(Agendamento.objects.values_list("pk", "aviso_bloqueio_em"))
    assert told[maria.pk] and told[pedro.pk] and not told[other_doctor.pk] and not told[other_day.pk]

    again = _admin_block_add(admin_client).content.decode()  # a second block over the same day
    reminders_send()  # and beat's run
    assert len(fake_graph.sends) == 2
    assert "2 já receberam esse pedido antes" in again and "recebem pelo WhatsApp" not in again


@pytest.mark.django_db(transaction=True)
def test_without_the_template_the_admin_asks_the_staff_to_move_them_and_nothing_is_sent(clinic, settings, any_hour,
                                                                                       fake_graph, admin_client,
                                                                                       celery_inline):  # fmt: skip
    settings.WHATSAPP_RESCHEDULE_TEMPLATE = ""
    appointment = _book()

    page = _admin_block_add(admin_client).content.decode()
    reminders_send(now=TODAY_10)

    assert "remarque ou cancele cada uma" in page and fake_graph.sends == []
    appointment.refresh_from_db()
    assert appointment.aviso_bloqueio_em is None


def test_a_clinic_wide_block_tells_every_doctors_patients_that_the_clinic_is_closed(clinic, notices_on, fake_graph):
    _book("09:00")
    _book("09:00", doctor="Dr. Igor Santos", phone=PEDRO, name="Pedro Lima")
    _block(doctor=None)

    told = block_notices_send(now=TODAY_10)

    assert len(told) == 2 and [s.body["to"] for s in fake_graph.sends] == [MARIA, PEDRO]
    assert _params(fake_graph.sends[1])[0][:3] == [
        f"A clínica estará fechada em {MONDAY:%d/%m}.",
        "Pedro Lima",
        "Dr. Igor Santos",
    ]


def test_a_block_with_hours_tells_only_the_consultations_it_overlaps(clinic, notices_on, fake_graph):
    morning = _book("09:00")
    afternoon = _book("14:30", phone=PEDRO, name="Pedro Lima")
    _block(hours=("14:00", "16:00"))

    told = block_notices_send(now=TODAY_10)

    assert told == [afternoon.pk] and morning.pk not in told
    assert _params(fake_graph.sends[0])[0][0] == f"Dra. Ana Souza não atende em {MONDAY:%d/%m} das 14:00 às 16:00."


def test_nothing_goes_out_at_night_and_the_morning_run_tells_them(clinic, notices_on, fake_graph):
    appointment = _book()
    _block()
    night = TODAY_10.replace(hour=21)

    assert block_notices_send(now=night) == [] and reminders_send(now=night).blocked == []
    assert fake_graph.sends == []
    assert reminders_send(now=night + dt.timedelta(hours=11)).blocked == [appointment.pk]  # 08:00
    assert len(fake_graph.sends) == 1


def test_the_command_lists_the_patients_not_told_yet(clinic, notices_on, fake_graph, capsys):
    appointment = _book()
    _block()

    call_command("send_reminders", "--dry-run")

    out = capsys.readouterr().out
    assert (
        f"1 appointment(s) in an agenda block whose patient was not told yet (appointment ids: {appointment.pk})" in out
    )
    assert fake_graph.sends == []


def test_cancelled_past_and_unreachable_appointments_are_not_told(clinic, notices_on, fake_graph):
    cancelled = _book("09:00")
    clinic_services.appointment_cancel(agendamento_id=cancelled.pk, paciente_telefone=MARIA)
    no_number = _book("10:00", phone=PEDRO, name="Pedro Lima")
    Agendamento.objects.filter(pk=no_number.pk).update(paciente_telefone="1234")
    _block()

    assert block_notices_send(now=TODAY_10) == []
    assert block_notices_send(now=timezone.make_aware(dt.datetime.combine(MONDAY, dt.time(9, 30)))) == []
    assert fake_graph.sends == []
    no_number.refresh_from_db()
    assert no_number.aviso_bloqueio_em is not None  # claimed once, so it is not looked at on every run


# --- the patient's answer -------------------------------------------------------------------------------------------
def test_tapping_reschedule_opens_the_move_of_that_appointment_without_the_late_change_warning(clinic, notices_on,
                                                                                               fake_graph):  # fmt: skip
    clinic.cancelamento_horas = 24 * 30  # every appointment below is "late" by the clinic's policy
    clinic.save()
    blocked = _book("09:00")
    free = _book("09:00", WEDNESDAY, phone=PEDRO, name="Pedro Lima")  # the same tap on a reminder, for contrast
    _block()
    block_notices_send(now=TODAY_10)

    reply = conversation.turn_handle(phone=MARIA, text="Remarcar", option_id=f"reminder:reschedule:{blocked.pk}")
    contrast = conversation.turn_handle(phone=PEDRO, text="Remarcar", option_id=f"reminder:reschedule:{free.pk}")

    session = ConversationSession.objects.get(phone_number=MARIA)
    assert session.flow == "remarcar" and session.target_appointment_id == blocked.pk, reply.reply.text
    late = T.LATE_CHANGE.format(hours=24 * 30)
    assert late not in reply.reply.text and late in contrast.reply.text  # the clinic caused this move


def test_tapping_cancel_asks_first_and_a_yes_cancels_that_appointment(clinic, notices_on, fake_graph):
    appointment = _book()
    _block()
    block_notices_send(now=TODAY_10)

    conversation.turn_handle(phone=MARIA, text="Cancelar consulta", option_id=f"reminder:cancel:{appointment.pk}")
    conversation.turn_handle(phone=MARIA, text="sim")

    appointment.refresh_from_db()
    assert appointment.status == Status.CANCELADO


@pytest.mark.parametrize(
    ("typed", "flow", "state"), [("1", "remarcar", "choosing_date"), ("2", "cancelar", "confirming")]
)
def test_a_number_typed_after_the_notice_means_its_own_buttons(clinic, notices_on, fake_graph, typed, flow, state):
    """The notice's buttons are "Remarcar" and "Cancelar consulta": a typed "1" moves the appointment (it is not the
    reminder's "Confirmar presença"), a "2" asks before cancelling it."""
    appointment = _book()
    _block()
    block_notices_send(now=TODAY_10)

    reply = conversation.turn_handle(phone=MARIA, text=typed)

    session = ConversationSession.objects.get(phone_number=MARIA)
    assert (session.flow, session.current_state, session.target_appointment_id) == (flow, state, appointment.pk), (
        reply.reply.text
    )


def test_a_moved_appointment_is_told_again_only_if_a_block_takes_its_new_time(clinic, notices_on, fake_graph):
    appointment = _book()
    _block()
    block_notices_send(now=TODAY_10)

    clinic_services.appointment_reschedule(
        agendamento_id=appointment.pk, paciente_telefone=MARIA, data=WEDNESDAY, hora=dt.time(9, 0)
    )
    appointment.refresh_from_db()
    assert appointment.aviso_bloqueio_em is None
    assert block_notices_send(now=TODAY_10) == []
    _block(first=WEDNESDAY, last=WEDNESDAY)
    assert block_notices_send(now=TODAY_10) == [appointment.pk]
    assert len(fake_graph.sends) == 2


@pytest.mark.parametrize("change", ["moved", "cancelled", "block removed"])
def test_a_notice_retried_after_things_changed_is_not_sent(clinic, notices_on, fake_graph, change):
    appointment = _book()
    block = _block()
    fake_graph.default = graph_error(131000, status=500)
    block_notices_send(now=TODAY_10)
    failures = len(fake_graph.sends)
    fake_graph.default = graph_server.graph_ok()
    if change == "moved":
        clinic_services.appointment_reschedule(
            agendamento_id=appointment.pk, paciente_telefone=MARIA, data=WEDNESDAY, hora=dt.time(9, 0)
        )
    elif change == "cancelled":
        clinic_services.appointment_cancel(agendamento_id=appointment.pk, paciente_telefone=MARIA)
    else:
        block.delete()
    stored = ConversationMessage.objects.get(channel_type="template")
    ConversationMessage.objects.filter(pk=stored.pk).update(created_at=TODAY_10)

    reminders_send(now=TODAY_10 + RESEND_AFTER * 2)

    stored.refresh_from_db()
    assert len(fake_graph.sends) == failures and stored.delivery_status == Delivery.NOT_SENT


def test_a_notice_that_failed_transiently_is_sent_by_the_next_run(clinic, notices_on, fake_graph):
    _book()
    _block()
    fake_graph.default = graph_error(131000, status=500)
    block_notices_send(now=TODAY_10)
    fake_graph.default = graph_server.graph_ok()
    stored = ConversationMessage.objects.get(channel_type="template")
    ConversationMessage.objects.filter(pk=stored.pk).update(created_at=TODAY_10)

    run = reminders_send(now=TODAY_10 + RESEND_AFTER * 2)

    stored.refresh_from_db()
    assert run.resent == [stored.pk] and run.blocked == [] and stored.delivery_status == Delivery.SENT


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_tell_each_patient_once(clinic, notices_on, fake_graph):
    appointments = [_book(f"{9 + i:02d}:00", phone=f"551199999000{i + 1}", name=f"Paciente {i}") for i in range(3)]
    _block()
    runs = at_once(2, lambda _: block_notices_send(now=TODAY_10))

    assert sorted(pk for run in runs for pk in run) == sorted(a.pk for a in appointments)
    assert len(fake_graph.sends) == 3


# --- a helper's review (fourteenth session) ---------------------------------------------------------------------------
def _reminded_tomorrow(settings, doctor="Dr. Igor Santos") -> Agendamento:
    """An appointment tomorrow at 09:00 booked days ago, with reminders on: due for its reminder now."""
    settings.WHATSAPP_REMINDER_TEMPLATE = "lembrete_consulta"
    settings.REMINDER_HOURS_BEFORE = 24
    medico = Medico.objects.get(nome=doctor)
    appointment = Agendamento.objects.create(
        medico=medico,
        especialidade=medico.especialidades.first(),
        paciente_nome="Maria Oliveira",
        paciente_telefone=MARIA,
        data=timezone.localdate() + dt.timedelta(days=1),
        hora=dt.time(9),
    )
    old = timezone.now() - dt.timedelta(days=3)
    Agendamento.objects.filter(pk=appointment.pk).update(criado_em=old, atualizado_em=old)
    return appointment


def test_remarcar_typed_after_the_notice_does_not_move_an_earlier_reminded_appointment(clinic, notices_on, fake_graph,
                                                                                      settings):  # fmt: skip
    reminded = _reminded_tomorrow(settings)
    assert reminders_send(now=TODAY_10).stored == [reminded.pk]
    blocked = _book()
    _block()
    assert block_notices_send(now=TODAY_10) == [blocked.pk]

    reply = conversation.turn_handle(phone=MARIA, text="quero remarcar")

    session = ConversationSession.objects.get(phone_number=MARIA)
    assert session.target_appointment_id != reminded.pk, reply.reply.text
    assert T.CHOOSE_APPOINTMENT in reply.reply.text  # both are open: which one


def test_remarcar_typed_after_the_notice_alone_moves_the_blocked_appointment(clinic, notices_on, fake_graph):
    blocked = _book()
    _book("09:00", WEDNESDAY, doctor="Dr. Igor Santos")  # another appointment of the same phone
    _block()
    block_notices_send(now=TODAY_10)

    conversation.turn_handle(phone=MARIA, text="quero remarcar")

    session = ConversationSession.objects.get(phone_number=MARIA)
    assert (session.flow, session.target_appointment_id) == ("remarcar", blocked.pk)


def test_a_reminder_retried_after_a_block_took_its_time_is_not_sent(clinic, notices_on, fake_graph, settings):
    appointment = _reminded_tomorrow(settings, doctor="Dra. Ana Souza")
    fake_graph.default = graph_error(131000, status=500)
    reminders_send(now=TODAY_10)
    fake_graph.default = graph_server.graph_ok()
    ConversationMessage.objects.filter(entities__reminder=appointment.pk).update(created_at=TODAY_10)
    before = len(fake_graph.sends)
    _block(first=appointment.data, last=appointment.data)

    reminders_send(now=TODAY_10 + RESEND_AFTER * 2)

    assert [s.body["template"]["name"] for s in fake_graph.sends[before:]] == [TEMPLATE]  # the notice only
    reminder = ConversationMessage.objects.get(entities__reminder=appointment.pk)
    assert reminder.delivery_status == Delivery.NOT_SENT


@pytest.fixture
def broker_down():
    """Tasks go to a broker nobody listens on (connection refused at once)."""
    from core import broker
    from core.celery import app

    previous = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = "redis://127.0.0.1:1/0", False
    broker.reset()
    yield
    app.conf.broker_url, app.conf.task_always_eager = previous
    broker.reset()


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_block_is_saved_and_the_patients_told_from_the_request(clinic, notices_on, any_hour,
                                                                                       fake_graph, admin_client,
                                                                                       broker_down):  # fmt: skip
    _book()

    response = _admin_block_add(admin_client)

    assert response.status_code == 200 and BloqueioAgenda.objects.count() == 1
    assert [s.body["to"] for s in fake_graph.sends] == [MARIA]


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_a_cancellation_in_the_admin_is_still_told(clinic, settings, fake_graph, admin_client,
                                                                        broker_down):  # fmt: skip
    settings.WHATSAPP_CANCELLATION_TEMPLATE = "consulta_cancelada"
    appointment = _book()
    url = reverse("admin:rag_agent_agendamento_changelist")

    response = admin_client.post(url, {"action": "cancelar_agendamentos", "_selected_action": [str(appointment.pk)]})

    assert response.status_code == 302
    assert [s.body["template"]["name"] for s in fake_graph.sends] == ["consulta_cancelada"]


@pytest.mark.django_db(transaction=True)
def test_the_admin_names_whom_to_call_and_says_when_the_notices_leave(clinic, notices_on, fake_graph, admin_client,
                                                                      celery_inline, monkeypatch):  # fmt: skip
    unreachable = _book()
    Agendamento.objects.filter(pk=unreachable.pk).update(paciente_telefone="1234")
    _book("10:00", phone=PEDRO, name="Pedro Lima")
    monkeypatch.setattr(reminders, "SEND_FROM", dt.time.max)  # never within the sending hours: a night save

    page = _admin_block_add(admin_client).content.decode()

    assert "1 paciente(s) recebem pelo WhatsApp a partir das 08:00" in page, page
    assert "sem número de WhatsApp, ligue para Maria Oliveira (1234)" in page
    assert fake_graph.sends == []


def test_the_command_counts_block_notices_without_a_whatsapp_number(clinic, notices_on, any_hour, fake_graph, capsys):
    appointment = _book()
    Agendamento.objects.filter(pk=appointment.pk).update(paciente_telefone="1234")
    _block()

    call_command("send_reminders")

    assert "block notices stored and sent 0, without a WhatsApp number 1" in capsys.readouterr().out
