"""The day-before reminder: sent once as the approved template through the real httpx client against the fake Graph
API, and answered by the patient's button taps (through the webhook) or a bare "sim" / "não"."""

import datetime as dt
import time

import pytest
from django.core.management import call_command
from django.db.models import F
from django.test import Client
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession, ConversationState
from api_gateway.services import conversation
from api_gateway.services import texts as T
from api_gateway.services.reminders import RESEND_AFTER, cancellation_notify, reminders_send
from rag_agent import selectors
from rag_agent import services as clinic_services
from rag_agent.admin import AgendamentoForm
from rag_agent.models import Agendamento, Medico
from tests.api_gateway.test_conversation_probes import _status
from tests.concurrency import at_once
from tests.fakes import graph_server
from tests.fakes.graph_server import graph_error, load_payload, post_webhook

fake_graph = graph_server.fake_graph
celery_inline = graph_server.celery_inline

pytestmark = pytest.mark.django_db(transaction=False)

TEMPLATE = "lembrete_consulta"
Status = Agendamento.Status
Delivery = ConversationMessage.Delivery


@pytest.fixture
def reminders_on(settings):
    settings.WHATSAPP_REMINDER_TEMPLATE = TEMPLATE
    settings.WHATSAPP_TEMPLATE_LANGUAGE = "pt_BR"
    settings.REMINDER_HOURS_BEFORE = 24


def _appointment(*, days=1, hour=10, phone="5511999990001", name="Maria Oliveira", booked_ago=dt.timedelta(days=3),
                 status=Status.AGENDADO, doctor_index=0) -> Agendamento:  # fmt: skip
    """An appointment `days` from today at `hour`, booked `booked_ago` (the real clock: the chat turns use it)."""
    medico = Medico.objects.filter(ativo=True).order_by("pk")[doctor_index]
    appointment = Agendamento.objects.create(
        medico=medico,
        especialidade=medico.especialidades.first(),
        paciente_nome=name,
        paciente_telefone=phone,
        data=timezone.localdate() + dt.timedelta(days=days),
        hora=dt.time(hour, 0),
        status=status,
    )
    Agendamento.objects.filter(pk=appointment.pk).update(
        criado_em=timezone.now() - booked_ago, atualizado_em=timezone.now() - booked_ago
    )
    appointment.refresh_from_db()
    return appointment


def _admin_form(appointment: Agendamento, **changes) -> dict:
    """The appointment's admin change form as posted, with `changes`."""
    return {
        "medico": appointment.medico_id,
        "especialidade": appointment.especialidade_id,
        "convenio": "",
        "paciente_nome": appointment.paciente_nome,
        "paciente_telefone": appointment.paciente_telefone,
        "data": appointment.data.isoformat(),
        "hora": f"{appointment.hora:%H:%M}",
        "status": appointment.status,
        **changes,
    }


def _day_before(appointment: Agendamento, *, at: dt.time = dt.time(10, 0)) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(appointment.data - dt.timedelta(days=1), at))


def test_the_reminder_goes_out_once_as_the_template_with_our_button_payloads(clinic, reminders_on, fake_graph):
    appointment = _appointment()
    now = _day_before(appointment)

    run = reminders_send(now=now)
    again = reminders_send(now=now + dt.timedelta(minutes=10))

    assert run.stored == [appointment.pk] and again.stored == []
    assert len(fake_graph.sends) == 1
    body = fake_graph.sends[0].body
    assert body["to"] == "5511999990001" and body["type"] == "template"
    template = body["template"]
    assert template["name"] == TEMPLATE and template["language"] == {"code": "pt_BR"}
    components = {(c["type"], c.get("index")): c for c in template["components"]}
    params = [p["text"] for p in components[("body", None)]["parameters"]]
    assert params == [
        "Maria Oliveira",
        appointment.medico.nome,
        T.date_long(appointment.data),
        "10:00",
        clinic.endereco,
    ]
    buttons = [components[("button", str(i))] for i in range(3)]
    assert all(b["sub_type"] == "quick_reply" for b in buttons)
    assert [b["parameters"][0]["payload"] for b in buttons] == [
        f"reminder:confirm:{appointment.pk}",
        f"reminder:reschedule:{appointment.pk}",
        f"reminder:cancel:{appointment.pk}",
    ]
    stored = ConversationMessage.objects.get(session__phone_number="5511999990001", channel_type="template")
    assert stored.delivery_status == Delivery.SENT and stored.whatsapp_message_id == fake_graph.sends[0].wamid
    assert "Maria Oliveira" in stored.content and "Você confirma a presença?" in stored.content
    appointment.refresh_from_db()
    assert appointment.lembrete_enviado_em == now


@pytest.mark.parametrize(
    ("case", "appointment_kwargs", "hours_before", "booked_hours_before_now"),
    [
        ("more than a day ahead", {}, 25, 72),
        ("booked an hour ago", {}, 24, 1),
        ("already confirmed", {"status": Status.CONFIRMADO}, 24, 72),
        ("cancelled", {"status": Status.CANCELADO}, 24, 72),
        ("starts within two hours", {"hour": 10}, 1.5, 72),
        ("at night", {"hour": 10}, 13, 72),  # 21:00 the day before
        ("before 8 in the morning", {"hour": 10}, 27, 72),  # 07:00 the day before
    ],
)
def test_no_reminder_when_it_is_not_due(clinic, reminders_on, fake_graph, case, appointment_kwargs, hours_before,
                                        booked_hours_before_now):  # fmt: skip
    appointment = _appointment(**appointment_kwargs)
    start = timezone.make_aware(dt.datetime.combine(appointment.data, appointment.hora))
    now = start - dt.timedelta(hours=hours_before)
    booked = now - dt.timedelta(hours=booked_hours_before_now)
    Agendamento.objects.filter(pk=appointment.pk).update(criado_em=booked, atualizado_em=booked)

    run = reminders_send(now=now)

    assert run.stored == [] and fake_graph.sends == []
    appointment.refresh_from_db()
    assert appointment.lembrete_enviado_em is None


def test_reminders_are_off_without_a_template_name(clinic, settings, fake_graph):
    settings.WHATSAPP_REMINDER_TEMPLATE = ""
    appointment = _appointment()

    run = reminders_send(now=_day_before(appointment))

    assert run.skipped == "disabled" and fake_graph.sends == []


def test_without_an_access_token_the_reminder_is_stored_not_sent(clinic, reminders_on):
    appointment = _appointment()

    reminders_send(now=_day_before(appointment))

    stored = ConversationMessage.objects.get(channel_type="template")
    assert stored.delivery_status == Delivery.NOT_SENT


def test_a_transient_failure_is_retried_by_the_next_run_and_sent_once(clinic, reminders_on, fake_graph, settings):
    appointment = _appointment()
    now = _day_before(appointment)
    fake_graph.default = graph_error(131000, status=500)

    first = reminders_send(now=now)
    stored = ConversationMessage.objects.get(channel_type="template")
    assert first.stored == [appointment.pk] and stored.delivery_status == Delivery.PENDING
    failures = len(fake_graph.sends)

    fake_graph.default = graph_server.graph_ok()
    later = now + RESEND_AFTER * 2
    ConversationMessage.objects.filter(pk=stored.pk).update(created_at=now)
    second = reminders_send(now=later)

    stored.refresh_from_db()
    assert second.resent == [stored.pk] and second.stored == []
    assert stored.delivery_status == Delivery.SENT
    assert len(fake_graph.sends) == failures + 1


def test_a_template_meta_does_not_know_fails_for_good_and_is_not_retried(clinic, reminders_on, fake_graph):
    appointment = _appointment()
    now = _day_before(appointment)
    fake_graph.default = graph_error(132001, status=404)

    reminders_send(now=now)
    sends = len(fake_graph.sends)
    later = reminders_send(now=now + RESEND_AFTER * 3)

    stored = ConversationMessage.objects.get(channel_type="template")
    assert sends == 1 and len(fake_graph.sends) == 1 and later.resent == []
    assert stored.delivery_status == Delivery.FAILED and stored.error_code == 132001


def test_a_phone_that_cannot_be_a_whatsapp_number_is_skipped_once(clinic, reminders_on, fake_graph):
    appointment = _appointment(phone="1234")
    now = _day_before(appointment)

    run = reminders_send(now=now)
    again = reminders_send(now=now + dt.timedelta(minutes=10))

    assert run.no_number == [appointment.pk] and again.no_number == []
    assert fake_graph.sends == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_send_each_reminder_once(clinic, reminders_on, fake_graph):
    appointments = [_appointment(hour=10 + i, doctor_index=i, phone=f"551199999000{i}") for i in range(3)]
    now = _day_before(appointments[0], at=dt.time(12, 0))  # all three start within the next 24 hours
    runs = at_once(2, lambda _: reminders_send(now=now))

    assert sorted(pk for run in runs for pk in run.stored) == sorted(a.pk for a in appointments)
    assert len(fake_graph.sends) == 3
    assert ConversationMessage.objects.filter(channel_type="template").count() == 3


# --- answers --------------------------------------------------------------------------------------------------
def _tap(client, payload: str, *, text: str):
    body = load_payload("button", now=time.time())
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message["button"] = {"payload": payload, "text": text}
    message["id"] = f"wamid.TAP{abs(hash(payload)) % 10**8:08d}"
    assert post_webhook(client, body).status_code == 200


def _last_reply(phone="5511999990001") -> str:
    return ConversationMessage.objects.filter(session__phone_number=phone, message_type="bot").latest("pk").content


@pytest.mark.django_db(transaction=True)  # the webhook enqueues on commit
def test_tapping_confirm_on_the_reminder_confirms_that_appointment(clinic, reminders_on, celery_inline):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))

    _tap(Client(), f"reminder:confirm:{appointment.pk}", text="Confirmar presença")

    appointment.refresh_from_db()
    assert appointment.status == Status.CONFIRMADO
    assert "Presença confirmada" in _last_reply() and appointment.medico.nome in _last_reply()


@pytest.mark.django_db(transaction=True)  # the webhook enqueues on commit
def test_tapping_cancel_asks_first_and_a_yes_cancels(clinic, reminders_on, celery_inline):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))

    _tap(Client(), f"reminder:cancel:{appointment.pk}", text="Cancelar consulta")
    appointment.refresh_from_db()
    assert appointment.status == Status.AGENDADO and "Quer mesmo cancelar" in _last_reply()

    conversation.turn_handle(phone="5511999990001", text="sim")
    appointment.refresh_from_db()
    assert appointment.status == Status.CANCELADO


@pytest.mark.django_db(transaction=True)  # the webhook enqueues on commit
def test_tapping_reschedule_moves_that_appointment(clinic, reminders_on, celery_inline):
    other = _appointment(days=5, doctor_index=1)  # a second appointment: the tap still names the reminded one
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))

    _tap(Client(), f"reminder:reschedule:{appointment.pk}", text="Remarcar")

    session = ConversationSession.objects.get(phone_number="5511999990001")
    assert session.flow == "remarcar" and session.target_appointment_id == appointment.pk != other.pk
    assert appointment.medico.nome in _last_reply()


@pytest.mark.django_db(transaction=True)  # the webhook enqueues on commit
def test_a_tap_on_the_reminder_of_an_appointment_cancelled_since_says_so(clinic, reminders_on, celery_inline):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))
    Agendamento.objects.filter(pk=appointment.pk).update(status=Status.CANCELADO)

    _tap(Client(), f"reminder:confirm:{appointment.pk}", text="Confirmar presença")

    assert T.REMINDER_CANCELLED in _last_reply()


def test_another_phone_cannot_confirm_someone_elses_appointment_by_its_payload(clinic, reminders_on):
    appointment = _appointment(phone="5511988887777")

    result = conversation.turn_handle(phone="5511999990001", text="Confirmar presença",
                                      option_id=f"reminder:confirm:{appointment.pk}")  # fmt: skip

    appointment.refresh_from_db()
    assert appointment.status == Status.AGENDADO and T.REMINDER_GONE in result.reply.text


@pytest.mark.parametrize("answer", ["sim", "confirmo", "Sim, estarei lá"])
def test_a_bare_yes_after_the_reminder_confirms(clinic, reminders_on, answer):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))

    conversation.turn_handle(phone="5511999990001", text=answer)

    appointment.refresh_from_db()
    assert appointment.status == Status.CONFIRMADO


def test_a_bare_no_after_the_reminder_offers_to_cancel_or_move_and_cancels_nothing_yet(clinic, reminders_on):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))

    result = conversation.turn_handle(phone="5511999990001", text="não")

    appointment.refresh_from_db()
    assert appointment.status == Status.AGENDADO
    assert "Quer mesmo cancelar" in result.reply.text and "manage:reschedule" in {o.id for o in result.reply.options}


def test_the_reminder_is_in_the_history_the_next_turn_reads(clinic, reminders_on):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))

    session = ConversationSession.objects.get(phone_number="5511999990001")
    assert session.recent_messages[-1]["role"] == "bot"
    assert "Você confirma a presença?" in session.recent_messages[-1]["text"]


def test_a_reminder_does_not_take_over_a_booking_under_way(clinic, reminders_on):
    appointment = _appointment()
    conversation.turn_handle(phone="5511999990001", text="quero marcar uma consulta de cardiologia")
    before = ConversationSession.objects.get(phone_number="5511999990001")
    assert before.flow == "agendar"

    reminders_send(now=_day_before(appointment))

    after = ConversationSession.objects.get(phone_number="5511999990001")
    assert (after.flow, after.current_state, after.last_options) == (
        before.flow,
        before.current_state,
        before.last_options,
    )
    assert after.current_state != ConversationState.IDLE


def test_a_moved_appointment_is_reminded_again_for_its_new_time(clinic, reminders_on):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))
    slot = selectors.slot_list_free(medico_id=appointment.medico_id, start=appointment.data + dt.timedelta(days=3))[0]

    clinic_services.appointment_reschedule(
        agendamento_id=appointment.pk,
        paciente_telefone=appointment.paciente_telefone,
        data=slot.date(),
        hora=slot.time(),
    )

    appointment.refresh_from_db()
    assert appointment.data == slot.date() and appointment.lembrete_enviado_em is None


def test_an_appointment_the_staff_move_in_the_admin_is_reminded_again(clinic, reminders_on, admin_client):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))
    slot = selectors.slot_list_free(medico_id=appointment.medico_id, start=appointment.data + dt.timedelta(days=3))[0]
    new_day = slot.date()
    form = _admin_form(appointment, data=new_day.isoformat(), hora=f"{slot:%H:%M}")

    response = admin_client.post(f"/admin/rag_agent/agendamento/{appointment.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    appointment.refresh_from_db()
    assert appointment.data == new_day and appointment.lembrete_enviado_em is None


# --- a helper's adversarial review (tenth session) ---------------------------------------------------------------
def test_the_tap_from_the_number_without_the_ninth_digit_finds_the_appointment(clinic, reminders_on):
    appointment = _appointment(phone="(21) 98765-4321")  # typed by the staff, stored as WhatsApp writes it
    Agendamento.objects.filter(pk=appointment.pk).update(paciente_telefone="5521987654321")

    result = conversation.turn_handle(phone="552187654321", text="Confirmar presença",
                                      option_id=f"reminder:confirm:{appointment.pk}")  # fmt: skip

    appointment.refresh_from_db()
    assert appointment.status == Status.CONFIRMADO, result.reply.text


def test_the_reminder_joins_the_conversation_the_patient_already_has(clinic, reminders_on):
    conversation.turn_handle(phone="552187654321", text="oi")  # WhatsApp's id for the line, without the 9
    appointment = _appointment(phone="5521987654321")

    reminders_send(now=_day_before(appointment))
    conversation.turn_handle(phone="552187654321", text="sim")

    assert ConversationMessage.objects.get(channel_type="template").session.phone_number == "552187654321"
    appointment.refresh_from_db()
    assert appointment.status == Status.CONFIRMADO


def test_one_yes_to_two_reminders_asks_which_and_both_can_be_confirmed(clinic, reminders_on):
    first = _appointment(hour=10, name="Maria Oliveira")
    second = _appointment(hour=15, name="Pedro Oliveira", doctor_index=1)
    reminders_send(now=_day_before(first, at=dt.time(16, 0)))

    asked = conversation.turn_handle(phone="5511999990001", text="sim")
    assert T.CHOOSE_APPOINTMENT in asked.reply.text
    assert Agendamento.objects.filter(status=Status.CONFIRMADO).count() == 0
    conversation.turn_handle(phone="5511999990001", text="as duas")

    assert {a.status for a in Agendamento.objects.filter(pk__in=[first.pk, second.pk])} == {Status.CONFIRMADO}


def test_a_yes_to_a_newer_question_is_not_taken_for_the_reminder(clinic, reminders_on):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))
    asked = conversation.turn_handle(phone="5511999990001", text="posso levar acompanhante?")
    assert "atendente" in asked.reply.text  # "... Posso transferir para um atendente, se preferir."

    conversation.turn_handle(phone="5511999990001", text="sim, por favor")

    appointment.refresh_from_db()
    assert appointment.status == Status.AGENDADO


def test_confirming_from_the_reminder_mid_booking_keeps_the_booking(clinic, reminders_on):
    appointment = _appointment()
    conversation.turn_handle(phone="5511999990001", text="quero marcar cardiologia")
    before = ConversationSession.objects.get(phone_number="5511999990001")
    reminders_send(now=_day_before(appointment))

    result = conversation.turn_handle(phone="5511999990001", text="Confirmar presença",
                                      option_id=f"reminder:confirm:{appointment.pk}")  # fmt: skip

    appointment.refresh_from_db()
    after = ConversationSession.objects.get(phone_number="5511999990001")
    assert appointment.status == Status.CONFIRMADO and "Presença confirmada" in result.reply.text
    assert (after.flow, after.selected_specialty_id, after.current_state) == (
        "agendar",
        before.selected_specialty_id,
        before.current_state,
    )
    assert result.reply.text.index("Presença confirmada") < len(result.reply.text) - 1  # the step is asked again


def test_confirm_tapped_while_the_staff_hold_the_conversation_is_done_and_they_keep_it(clinic, reminders_on):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))
    ConversationSession.objects.filter(phone_number="5511999990001").update(
        current_state=ConversationState.HUMAN_HANDOFF
    )
    conversation.session_manager.invalidate(phone="5511999990001")

    result = conversation.turn_handle(phone="5511999990001", text="Confirmar presença",
                                      option_id=f"reminder:confirm:{appointment.pk}")  # fmt: skip

    appointment.refresh_from_db()
    assert appointment.status == Status.CONFIRMADO and "Presença confirmada" in result.reply.text
    assert ConversationSession.objects.get(phone_number="5511999990001").current_state == "human_handoff"


def test_a_yes_after_the_appointment_passed_says_it_passed(clinic, reminders_on):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))
    after = timezone.make_aware(dt.datetime.combine(appointment.data, dt.time(18, 0)))

    result = conversation.turn_handle(phone="5511999990001", text="sim", now=after)

    assert T.REMINDER_PAST in result.reply.text


def test_a_reminder_during_a_cancel_question_makes_the_next_yes_about_the_reminder(clinic, reminders_on):
    other = _appointment(days=4, doctor_index=1)
    appointment = _appointment()
    conversation.turn_handle(phone="5511999990001", text="Cancelar consulta",
                             option_id=f"reminder:cancel:{other.pk}")  # fmt: skip
    reminders_send(now=_day_before(appointment))

    conversation.turn_handle(phone="5511999990001", text="sim")

    other.refresh_from_db()
    appointment.refresh_from_db()
    assert other.status == Status.AGENDADO and appointment.status == Status.CONFIRMADO


@pytest.mark.parametrize(("typed", "expected"), [("1", "Presença confirmada"), ("3", "Quer mesmo cancelar")])
def test_a_typed_button_number_answers_the_reminder(clinic, reminders_on, typed, expected):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))

    result = conversation.turn_handle(phone="5511999990001", text=typed)

    assert expected in result.reply.text


def test_a_reply_after_the_reminder_is_not_greeted_again(clinic, reminders_on):
    appointment = _appointment()
    reminders_send(now=_day_before(appointment))

    result = conversation.turn_handle(phone="5511999990001", text="sim")

    assert "assistente virtual" not in result.reply.text


def test_a_stale_cached_session_does_not_hold_the_reminder_back(clinic, reminders_on, fake_graph):
    appointment = _appointment()
    conversation.turn_handle(phone="5511999990001", text="oi")  # the session is cached
    ConversationSession.objects.filter(phone_number="5511999990001").update(version=F("version") + 1)

    run = reminders_send(now=_day_before(appointment))

    assert run.stored == [appointment.pk] and len(fake_graph.sends) == 1


# --- a review of the session's change ----------------------------------------------------------------------------
def test_a_foreign_number_the_bot_stored_gets_its_reminder_as_it_is(clinic, reminders_on, fake_graph):
    conversation.turn_handle(phone="14155550100", text="oi")  # WhatsApp's id has no "+": 1 415 555 0100
    appointment = _appointment(phone="14155550100")

    reminders_send(now=_day_before(appointment))

    assert [r.body["to"] for r in fake_graph.sends] == ["14155550100"]


@pytest.mark.parametrize("change", ["cancelled", "confirmed", "moved"])
def test_a_reminder_retried_after_its_appointment_changed_is_not_sent(clinic, reminders_on, fake_graph, change):
    appointment = _appointment()
    now = _day_before(appointment)
    fake_graph.default = graph_error(131000, status=500)
    reminders_send(now=now)
    failures = len(fake_graph.sends)
    fake_graph.default = graph_server.graph_ok()
    if change == "moved":
        Agendamento.objects.filter(pk=appointment.pk).update(hora=dt.time(11, 0))
    else:
        status = Status.CANCELADO if change == "cancelled" else Status.CONFIRMADO
        Agendamento.objects.filter(pk=appointment.pk).update(status=status)
    stored = ConversationMessage.objects.get(channel_type="template")
    ConversationMessage.objects.filter(pk=stored.pk).update(created_at=now)

    reminders_send(now=now + RESEND_AFTER * 2)

    stored.refresh_from_db()
    assert len(fake_graph.sends) == failures and stored.delivery_status == Delivery.NOT_SENT


def test_a_moved_appointment_waits_as_a_new_booking_would_before_its_reminder(clinic):
    appointment = _appointment()
    now = timezone.make_aware(dt.datetime.combine(appointment.data, appointment.hora)) - dt.timedelta(hours=20)
    Agendamento.objects.filter(pk=appointment.pk).update(atualizado_em=now - dt.timedelta(hours=1))  # moved

    due = selectors.appointments_to_remind(earliest=now, latest=now + dt.timedelta(hours=24),
                                           changed_before=now - dt.timedelta(hours=12))  # fmt: skip

    assert appointment.pk not in [a.pk for a in due]


def test_formatted_phones_typed_before_the_admin_normalised_them_are_rewritten(clinic):
    import importlib

    from django.apps import apps

    typed = _appointment(phone="(11) 98765-4321")
    foreign = _appointment(phone="14155550100", hour=11, doctor_index=1)
    anonymised = _appointment(phone="anonimizado-9", hour=12, doctor_index=2)
    migration = importlib.import_module("rag_agent.migrations.0007_appointment_phones_as_whatsapp")

    migration.forwards(apps, None)

    phones = dict(Agendamento.objects.values_list("pk", "paciente_telefone"))
    assert phones == {typed.pk: "5511987654321", foreign.pk: "14155550100", anonymised.pk: "anonimizado-9"}


# --- operators and staff -----------------------------------------------------------------------------------------
def test_the_command_lists_what_is_due_on_a_dry_run_and_sends_nothing(clinic, reminders_on, fake_graph, capsys):
    start = timezone.localtime() + dt.timedelta(hours=20)  # due now, unless now is a quiet hour
    due = _appointment(days=(start.date() - timezone.localdate()).days, hour=start.hour)

    call_command("send_reminders", "--dry-run")

    out = capsys.readouterr().out
    assert f"1 reminder(s) due (appointment ids: {due.pk}); nothing sent" in out  # at night too
    quiet = not dt.time(8) <= timezone.localtime().time() < dt.time(20)
    assert ("nothing sent now: quiet hours" in out) == quiet
    assert fake_graph.sends == []
    due.refresh_from_db()
    assert due.lembrete_enviado_em is None


def test_the_command_says_when_reminders_are_off(clinic, settings, capsys):
    settings.WHATSAPP_REMINDER_TEMPLATE = ""
    call_command("send_reminders")
    assert "reminders are off" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("(11) 98765-4321", "5511987654321"),
        ("+55 11 98765-4321", "5511987654321"),
        ("5511987654321", "5511987654321"),
        ("(011) 98765-4321", "5511987654321"),  # the long-distance 0
        ("+1 415 555 0100", "14155550100"),  # a foreign number keeps its country code
    ],
)
def test_the_admin_stores_the_phone_as_whatsapp_writes_it(clinic, typed, stored):
    medico = Medico.objects.filter(ativo=True).first()
    # a time in his agenda whatever today's weekday ("today + 3 at 10:00" failed on the days he does not work)
    free = timezone.localtime(selectors.slot_list_free(medico_id=medico.pk, start=timezone.localdate(), days=14)[0])
    data = {
        "medico": medico.pk,
        "especialidade": medico.especialidades.first().pk,
        "paciente_nome": "Maria Oliveira",
        "paciente_telefone": typed,
        "data": free.date().isoformat(),
        "hora": f"{free:%H:%M}",
        "status": Status.AGENDADO,
    }
    form = AgendamentoForm(data=data)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["paciente_telefone"] == stored


def test_the_admin_refuses_a_phone_without_an_area_code(clinic):
    form = AgendamentoForm(data={"paciente_telefone": "98765-4321"})
    assert not form.is_valid()
    assert "DDD" in form.errors["paciente_telefone"][0]


# --- the clinic cancels: the patient is told ----------------------------------------------------------------------
@pytest.fixture
def cancellation_notices_on(settings):
    settings.WHATSAPP_CANCELLATION_TEMPLATE = "consulta_cancelada"
    settings.WHATSAPP_TEMPLATE_LANGUAGE = "pt_BR"


@pytest.mark.django_db(transaction=True)  # the notice is enqueued on commit
def test_an_appointment_the_staff_cancel_is_told_to_the_patient_once(clinic, cancellation_notices_on, fake_graph,
                                                                    admin_client, celery_inline):  # fmt: skip
    appointment = _appointment(days=3)
    url = "/admin/rag_agent/agendamento/"

    admin_client.post(url, {"action": "cancelar_agendamentos", "_selected_action": [str(appointment.pk)]})
    admin_client.post(url, {"action": "cancelar_agendamentos", "_selected_action": [str(appointment.pk)]})
    cancellation_notify(agendamento_id=appointment.pk)  # a task replayed

    assert len(fake_graph.sends) == 1
    template = fake_graph.sends[0].body["template"]
    assert template["name"] == "consulta_cancelada" and template["language"] == {"code": "pt_BR"}
    params = [p["text"] for p in template["components"][0]["parameters"]]
    assert params == ["Maria Oliveira", appointment.medico.nome, T.date_long(appointment.data), "10:00"]
    stored = ConversationMessage.objects.get(channel_type="template")
    assert "foi cancelada pela clínica" in stored.content and stored.delivery_status == Delivery.SENT
    session = ConversationSession.objects.get(phone_number="5511999990001")
    assert "foi cancelada pela clínica" in session.recent_messages[-1]["text"]


@pytest.mark.django_db(transaction=True)
def test_a_status_set_to_cancelled_on_the_change_form_is_told_too(clinic, cancellation_notices_on, fake_graph,
                                                                  admin_client, celery_inline):  # fmt: skip
    appointment = _appointment(days=3)
    form = _admin_form(appointment, status=Status.CANCELADO)

    response = admin_client.post(f"/admin/rag_agent/agendamento/{appointment.pk}/change/", form)

    assert response.status_code == 302
    assert [r.body["type"] for r in fake_graph.sends] == ["template"]


def test_no_notice_without_the_template_for_a_past_appointment_or_one_reopened(clinic, settings, fake_graph):
    settings.WHATSAPP_CANCELLATION_TEMPLATE = ""
    appointment = _appointment(days=3, status=Status.CANCELADO)
    assert cancellation_notify(agendamento_id=appointment.pk) is None
    settings.WHATSAPP_CANCELLATION_TEMPLATE = "consulta_cancelada"
    past = _appointment(days=-1, status=Status.CANCELADO, doctor_index=1)
    reopened = _appointment(days=3, doctor_index=2)  # the staff undid the cancellation before the task ran
    assert cancellation_notify(agendamento_id=past.pk) is None
    assert cancellation_notify(agendamento_id=reopened.pk) is None
    assert fake_graph.sends == []


def test_a_patient_who_cancels_in_the_chat_gets_no_second_notice(clinic, cancellation_notices_on, fake_graph):
    appointment = _appointment(days=3)
    conversation.turn_handle(phone="5511999990001", text="Cancelar consulta",
                             option_id=f"reminder:cancel:{appointment.pk}")  # fmt: skip
    conversation.turn_handle(phone="5511999990001", text="sim")

    appointment.refresh_from_db()
    assert appointment.status == Status.CANCELADO and fake_graph.sends == []


# --- seventeenth session: a helper's probe of answers to the reminder (each failed before its mend) ---------------
def _reminded(**kwargs) -> Agendamento:
    appointment = _appointment(**kwargs)
    reminders_send(now=_day_before(appointment))
    return appointment


def _says(text: str):
    return conversation.turn_handle(phone="5511999990001", text=text)


def test_good_morning_then_confirmo_confirms_the_reminded_appointment(clinic, reminders_on):
    appointment = _reminded()
    result = _says("bom dia, confirmo")  # patient expects the presence confirmed; was: the greeting menu, nothing done
    assert _status(appointment) == Agendamento.Status.CONFIRMADO, result.reply.as_text()


@pytest.mark.parametrize("answer", ["irei sim", "vou estar lá", "to indo sim", "consigo ir sim", "eu vou"])
def test_everyday_ways_of_saying_i_will_go_confirm_the_reminder(clinic, reminders_on, answer):
    appointment = _reminded()
    result = _says(answer)  # patient expects the presence confirmed; was: "Desculpe, não entendi"
    assert _status(appointment) == Agendamento.Status.CONFIRMADO, result.reply.as_text()


@pytest.mark.parametrize("question", ["esqueci, que horas é mesmo?", "é com qual médico?"])
def test_a_question_about_the_reminded_appointment_is_answered_from_it(clinic, reminders_on, question):
    appointment = _reminded()
    result = _says(question)  # patient expects the time/doctor just reminded; was: "Não encontrei essa informação"
    assert "10:00" in result.reply.as_text() and appointment.medico.nome in result.reply.as_text()


def test_as_duas_sim_to_two_reminders_confirms_both(clinic, reminders_on):
    first = _appointment(hour=10, name="Maria Oliveira")
    second = _appointment(hour=15, name="Pedro Oliveira", doctor_index=3)
    reminders_send(now=_day_before(first, at=dt.time(16, 0)))
    result = _says("as duas sim")  # patient expects both confirmed; was: a new booking ("qual é o seu nome completo?")
    assert (_status(first), _status(second)) == (Agendamento.Status.CONFIRMADO, Agendamento.Status.CONFIRMADO), (
        result.reply.as_text()
    )


def test_confirming_only_the_sons_reminder_confirms_his_and_not_the_mothers(clinic, reminders_on):
    mine = _appointment(hour=10, name="Maria Oliveira")
    sons = _appointment(hour=15, name="Pedro Oliveira", doctor_index=3)
    reminders_send(now=_day_before(mine, at=dt.time(16, 0)))
    result = _says("confirmo só a do pedro")  # patient expects Pedro's confirmed; was: "Desculpe, não entendi"
    assert (_status(sons), _status(mine)) == (Agendamento.Status.CONFIRMADO, Agendamento.Status.AGENDADO), (
        result.reply.as_text()
    )


def test_the_opening_hours_asked_after_a_reminder_are_the_opening_hours(clinic, reminders_on):
    _reminded()
    result = _says("qual o horário de funcionamento?")  # not the reminded appointment's time
    assert "Nosso horário de funcionamento" in result.reply.as_text()
    assert _says("sim").reply.as_text().startswith("Obrigado por confirmar")  # the reminder still takes its "sim"


# --- seventeenth session: a third helper's review (each failed before its mend) ---------------------------------
@pytest.mark.parametrize(
    "answer",
    [
        "sim, mas não vou conseguir ir",
        "não sei se consigo ir",
        "estarei viajando amanhã",
        "eu vou ligar pra confirmar depois",
    ],
)
def test_an_unsure_or_negative_answer_to_the_reminder_confirms_nothing(clinic, reminders_on, answer):
    appointment = _reminded()
    result = _says(answer)  # patient expects no confirmation (a cancel offer or a wait); was: "Presença confirmada"
    assert _status(appointment) == Agendamento.Status.AGENDADO, result.reply.as_text()


def test_a_yes_after_a_price_question_still_answers_the_reminder(clinic, reminders_on):
    appointment = _reminded()
    _says("quanto custa a consulta com o dr carlos?")
    result = _says("sim")  # patient expects her presence confirmed; was: "Combinado!" and nothing confirmed
    assert _status(appointment) == Agendamento.Status.CONFIRMADO, result.reply.as_text()
