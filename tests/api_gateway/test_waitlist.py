"""The doctors' waitlists: a patient who finds a doctor's agenda full is offered a place on the doctor's list; when a
time opens, the first in line are told through the approved template WHATSAPP_WAITLIST_TEMPLATE (sent through the
real httpx client against the fake Graph API), and its "Ver horários" button books with that doctor."""

import base64
import datetime as dt
import io
import itertools
import json
import time

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services import texts as T
from api_gateway.services.reminders import RESEND_AFTER, reminders_send
from api_gateway.services.waitlist import HOLD, MAX_NOTICES, RETELL_AFTER, waitlist_notify
from api_gateway.tasks import notify_waitlist
from core.celery import app
from rag_agent import selectors
from rag_agent import services as clinic_services
from rag_agent.models import (
    Agendamento,
    BloqueioAgenda,
    Convenio,
    Especialidade,
    HorarioTrabalho,
    ListaEspera,
    Medico,
)
from tests.api_gateway.test_block_notices import _book as block_notices_book
from tests.api_gateway.test_block_notices import _params, any_hour  # noqa: F401 - a fixture
from tests.api_gateway.test_conversation_dialogues import (
    REF,
    Patient,
    _book_directly,
    _reach_confirmation_with_ana_on_wednesday,
)
from tests.api_gateway.test_reminders import _admin_form as admin_form_of
from tests.concurrency import at_once
from tests.fakes import gemini_server, graph_server
from tests.fakes.gemini_server import answer_json
from tests.fakes.graph_server import graph_error, load_payload, post_webhook
from tests.rag_agent.test_admin import _add_shift as add_shift
from tests.rag_agent.test_admin import _change as admin_change
from tests.test_broker import published_for_real  # noqa: F401 - a fixture

fake_graph = graph_server.fake_graph
fake_gemini = gemini_server.fake_gemini
celery_inline = graph_server.celery_inline

pytestmark = pytest.mark.django_db

TEMPLATE = "lista_espera"
NEXT_MONDAY = REF.date() + dt.timedelta(days=7)
MARIA, PEDRO, JOANA = "5511999990001", "5511999990002", "5511999990003"
FILLER = "5511999990009"
Situacao = ListaEspera.Situacao
Delivery = ConversationMessage.Delivery


@pytest.fixture
def waitlist_on(settings):
    settings.WHATSAPP_WAITLIST_TEMPLATE = TEMPLATE
    settings.WHATSAPP_TEMPLATE_LANGUAGE = "pt_BR"


@pytest.fixture
def gustavo_away(clinic) -> BloqueioAgenda:
    """Dr. Gustavo Pereira, the only orthopaedist, has no free time in the whole agenda (a long leave)."""
    return BloqueioAgenda.objects.create(
        medico=Medico.objects.get(nome="Dr. Gustavo Pereira"),
        data_inicio=REF.date(),
        data_fim=REF.date() + dt.timedelta(days=400),
        motivo="Licença",
    )


@pytest.fixture
def rafael(clinic, settings) -> Medico:
    """A doctor with one free time in the weeks searched (Mondays 09:00, 30 minutes; the search spans 8 days from
    a Monday at 10:00, so only next Monday's), booked by someone else: his agenda is full."""
    settings.SLOT_SEARCH_DAYS = 8
    doctor = Medico.objects.create(
        nome="Dr. Rafael Teixeira",
        crm="CRM/SP 990001",
        preco_consulta="300.00",
        duracao_consulta_minutos=30,
    )
    doctor.especialidades.add(Especialidade.objects.get(nome="Ortopedia"))
    HorarioTrabalho.objects.create(medico=doctor, dia_semana=0, hora_inicio=dt.time(9), hora_fim=dt.time(9, 30))
    _book(doctor, JOANA, "Joana Reis")
    return doctor


def _book(doctor: Medico, phone: str, name: str) -> Agendamento:
    """Books the doctor's next-Monday 09:00 through the booking service, as the block notices' tests do."""
    return block_notices_book("09:00", NEXT_MONDAY, doctor=doctor.nome, phone=phone, name=name)


def _reach_full_agenda(phone=MARIA, name="Maria Oliveira") -> Patient:
    patient = Patient(phone, name)
    patient.says("quero marcar ortopedista")
    patient.says("sim")  # the name WhatsApp gave
    patient.says("particular")
    return patient


def _join(doctor: Medico, phone: str, name: str, *, at: dt.datetime) -> ListaEspera:
    entry, joined = clinic_services.waitlist_join(
        medico_id=doctor.pk, especialidade_id=None, paciente_nome=name, paciente_telefone=phone, now=at
    )
    assert joined
    return entry


def test_a_full_agenda_offers_the_waitlist_and_the_patient_joins_once(waitlist_on, gustavo_away):
    patient = _reach_full_agenda()
    gustavo = gustavo_away.medico

    only = T.WAITLIST_OFFER_ONLY_DOCTOR.format(doctor="Dr. Gustavo Pereira", specialty="Ortopedia")
    assert only in patient.text and "outro médico" not in patient.text  # the only orthopaedist: nobody else
    assert [o.id for o in patient.last.reply.options] == [f"waitlist:join:{gustavo.pk}", "menu:atendente"]
    patient.says("1")  # the typed number of "Lista de espera"

    assert patient.text == T.WAITLIST_JOINED.format(doctor="do Dr. Gustavo Pereira", days=30)
    entry = ListaEspera.objects.get()
    assert (entry.medico, entry.especialidade.nome) == (gustavo, "Ortopedia")
    assert (entry.paciente_telefone, entry.paciente_nome, entry.situacao) == (
        MARIA,
        "Maria Oliveira",
        Situacao.AGUARDANDO,
    )
    assert patient.state == "idle" and not patient.session.flow

    again = _reach_full_agenda()
    again.says("Lista de espera", option_id=f"waitlist:join:{gustavo.pk}")  # the button tapped
    assert again.text == T.WAITLIST_ALREADY.format(doctor="do Dr. Gustavo Pereira")
    assert ListaEspera.objects.count() == 1


def test_a_typed_yes_joins_and_a_no_ends_the_booking(waitlist_on, gustavo_away):
    yes = _reach_full_agenda()
    yes.says("sim, pode colocar")
    no = _reach_full_agenda(PEDRO, "Pedro Lima")
    no.says("não")

    assert yes.text.startswith("Pronto, você está na lista de espera")
    assert no.text.startswith(T.WAITLIST_DECLINED) and not no.session.flow
    assert list(ListaEspera.objects.values_list("paciente_telefone", flat=True)) == [MARIA]


@pytest.mark.parametrize(
    ("answer", "joins"),
    [
        ("pode colocar", True),
        ("me avisa quando abrir", True),
        ("quero entrar na lista", True),
        ("não precisa me avisar", False),
        ("nem precisa colocar", False),
        ("quero outro médico", False),
    ],
)
def test_the_offer_is_taken_only_by_words_that_take_it(waitlist_on, gustavo_away, answer, joins):
    patient = _reach_full_agenda()
    patient.says(answer)
    assert ListaEspera.objects.exists() == joins, patient.text


def test_without_the_template_no_waitlist_is_offered(settings, gustavo_away):
    settings.WHATSAPP_WAITLIST_TEMPLATE = ""
    patient = _reach_full_agenda()
    assert T.NO_SLOTS_ONLY_DOCTOR.format(doctor="Dr. Gustavo Pereira", specialty="Ortopedia") in patient.text
    assert "lista de espera" not in patient.text
    assert [o.id for o in patient.last.reply.options] == ["menu:atendente"]
    patient.says("sim")
    assert not ListaEspera.objects.exists()


def test_a_time_that_opened_before_the_answer_is_offered_instead_of_the_list(waitlist_on, gustavo_away):
    patient = _reach_full_agenda()
    gustavo_away.delete()  # the leave was cancelled meanwhile

    patient.says("1")

    assert patient.state == "choosing_date" and "Dr. Gustavo Pereira" in patient.text
    assert any(o.id.startswith("slot:") for o in patient.last.reply.options)
    assert not ListaEspera.objects.exists()


def test_when_a_time_opens_the_first_in_line_is_told_once_and_the_next_after_the_hold(waitlist_on, rafael,
                                                                                      fake_graph):  # fmt: skip
    maria = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=3))
    pedro = _join(rafael, PEDRO, "Pedro Lima", at=REF - dt.timedelta(days=1))
    assert waitlist_notify(now=REF).told == []  # still full

    Agendamento.objects.filter(paciente_telefone=JOANA).update(status=Agendamento.Status.CANCELADO)
    first = waitlist_notify(now=REF)
    second = waitlist_notify(now=REF + dt.timedelta(minutes=10))

    assert first.told == [maria.pk] and second.told == []
    assert [s.body["to"] for s in fake_graph.sends] == [MARIA]
    assert fake_graph.sends[0].body["template"]["name"] == TEMPLATE
    body, buttons = _params(fake_graph.sends[0])
    assert body == ["Dr. Rafael Teixeira", T.date_long(NEXT_MONDAY), "09:00"]
    assert buttons == [f"waitlist:book:{rafael.pk}"]
    stored = ConversationMessage.objects.get(session__phone_number=MARIA, channel_type="template")
    assert stored.delivery_status == Delivery.SENT and stored.content.startswith("Abriu horário com Dr. Rafael")
    maria.refresh_from_db()
    assert (maria.situacao, maria.avisado_em) == (Situacao.AVISADO, REF)

    later = waitlist_notify(now=REF + HOLD + dt.timedelta(minutes=1))  # Maria did not book: Pedro's turn
    assert later.told == [pedro.pk] and [s.body["to"] for s in fake_graph.sends] == [MARIA, PEDRO]


def test_the_notice_button_books_with_that_doctor_and_the_booking_closes_the_entry(waitlist_on, rafael, fake_graph):
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    Agendamento.objects.filter(paciente_telefone=JOANA).update(status=Agendamento.Status.CANCELADO)
    waitlist_notify(now=REF)

    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("Ver horários", option_id=f"waitlist:book:{rafael.pk}")
    patient.says("sim")  # the name
    patient.says("particular")
    assert patient.state == "choosing_date", patient.text
    assert "Dr. Rafael Teixeira" in patient.text and "09:00" in patient.text
    patient.says("1")
    patient.says("sim")

    assert Agendamento.objects.filter(paciente_telefone=MARIA, medico=rafael, hora=dt.time(9)).exists(), patient.text
    entry.refresh_from_db()
    assert entry.situacao == Situacao.AGENDOU and entry.encerrado_em is not None


def test_a_yes_typed_after_the_notice_starts_the_booking_with_that_doctor(waitlist_on, rafael, fake_graph):
    _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    Agendamento.objects.filter(paciente_telefone=JOANA).update(status=Agendamento.Status.CANCELADO)
    waitlist_notify(now=REF)

    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("quero sim")

    assert patient.session.flow == "agendar" and patient.session.selected_doctor_id == rafael.pk, patient.text


def test_a_notice_whose_patient_booked_before_it_left_is_not_sent(waitlist_on, rafael, fake_graph):
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    Agendamento.objects.filter(paciente_telefone=JOANA).update(status=Agendamento.Status.CANCELADO)
    fake_graph.default = graph_error(131000, status=500)  # the Graph API is down: the notice stays pending
    waitlist_notify(now=REF)
    fake_graph.default = graph_server.graph_ok()
    failures = len(fake_graph.sends)
    stored = ConversationMessage.objects.get(session__phone_number=MARIA, channel_type="template")
    assert stored.delivery_status == Delivery.PENDING

    _book(rafael, MARIA, "Maria Oliveira")  # by phone with the reception, meanwhile
    reminders_send(now=REF + RESEND_AFTER + dt.timedelta(minutes=1))  # beat's retry of pending templates

    stored.refresh_from_db()
    entry.refresh_from_db()
    assert stored.delivery_status == Delivery.NOT_SENT and len(fake_graph.sends) == failures
    assert entry.situacao == Situacao.AGENDOU


def test_a_patient_told_of_a_time_someone_else_took_waits_again_at_the_same_place(waitlist_on, rafael, fake_graph):
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=2))
    Agendamento.objects.filter(paciente_telefone=JOANA).update(status=Agendamento.Status.CANCELADO)
    waitlist_notify(now=REF)
    _book(rafael, PEDRO, "Pedro Lima")  # faster

    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("Ver horários", option_id=f"waitlist:book:{rafael.pk}")
    patient.says("sim")
    patient.says("particular")
    assert T.WAITLIST_OFFER.format(doctor="Dr. Rafael Teixeira") in patient.text
    patient.says("1")

    assert patient.text == T.WAITLIST_JOINED.format(doctor="do Dr. Rafael Teixeira", days=30)
    entry.refresh_from_db()
    assert (entry.situacao, entry.avisado_em, entry.criado_em) == (
        Situacao.AGUARDANDO,
        None,
        REF - dt.timedelta(days=2),
    )
    assert ListaEspera.objects.count() == 1


def test_nothing_is_sent_at_night_and_old_entries_expire(waitlist_on, rafael, fake_graph, settings):
    fresh = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    old = _join(rafael, PEDRO, "Pedro Lima", at=REF - dt.timedelta(days=settings.WAITLIST_DAYS + 1))
    Agendamento.objects.filter(paciente_telefone=JOANA).update(status=Agendamento.Status.CANCELADO)

    night = waitlist_notify(now=REF.replace(hour=21))
    assert night.told == [] and night.expired == 1 and not fake_graph.sends
    morning = waitlist_notify(now=REF.replace(hour=21) + dt.timedelta(hours=11))
    assert morning.told == [fresh.pk]
    old.refresh_from_db()
    assert old.situacao == Situacao.EXPIROU and old.encerrado_em is not None


def test_forgetting_a_patient_erases_their_waitlist_entries(rafael, capsys):
    _join(rafael, MARIA, "Maria Oliveira", at=REF)
    _join(rafael, PEDRO, "Pedro Lima", at=REF)

    call_command("forget_patient", MARIA, "--yes")

    assert "1 lugar(es) em lista de espera" in capsys.readouterr().out
    assert list(ListaEspera.objects.values_list("paciente_telefone", flat=True)) == [PEDRO]


def test_the_staff_see_the_line_and_take_a_patient_off_it(rafael, admin_client):
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF)
    url = reverse("admin:rag_agent_listaespera_changelist")

    page = admin_client.get(url, {"q": "maria"}).content.decode()
    assert "Maria Oliveira" in page and "Dr. Rafael Teixeira" in page
    admin_client.post(url, {"action": "retirar_da_lista", "_selected_action": [entry.pk]})

    entry.refresh_from_db()
    assert entry.situacao == Situacao.SAIU
    assert admin_client.get(reverse("admin:rag_agent_listaespera_add")).status_code == 403


def test_an_appointment_the_reception_enters_takes_the_patient_off_the_list(rafael, admin_client):
    waiting = _join(rafael, MARIA, "Maria Oliveira", at=REF)
    other_doctor = _join(Medico.objects.get(nome="Dr. Gustavo Pereira"), MARIA, "Maria Oliveira", at=REF)
    Agendamento.objects.filter(paciente_telefone=JOANA).update(status=Agendamento.Status.CANCELADO)
    data = {"medico": rafael.pk, "especialidade": rafael.especialidades.first().pk, "convenio": ""}
    data.update({"paciente_nome": "Maria Oliveira", "paciente_telefone": "(11) 99999-0001", "status": "agendado"})
    data.update({"data": NEXT_MONDAY.isoformat(), "hora": "09:00"})

    response = admin_client.post(reverse("admin:rag_agent_agendamento_add"), data)

    assert response.status_code == 302
    assert ListaEspera.objects.get(pk=waiting.pk).situacao == Situacao.AGENDOU
    assert ListaEspera.objects.get(pk=other_doctor.pk).situacao == Situacao.AGUARDANDO


def test_the_patient_sees_their_waitlists_with_their_appointments_and_leaves_them_in_words(rafael):
    gustavo = Medico.objects.get(nome="Dr. Gustavo Pereira")
    on_rafael = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=2))
    on_gustavo = _join(gustavo, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    patient = Patient(MARIA, "Maria Oliveira")

    patient.says("minhas consultas")
    listed = patient.text
    patient.says("me tira da lista de espera do dr gustavo")
    one = patient.text
    patient.says("quero sair da fila de espera")
    rest = patient.text
    patient.says("quero sair da lista de espera")

    assert T.NO_APPOINTMENTS in listed
    assert T.ON_WAITLIST.format(doctors="do Dr. Rafael Teixeira e do Dr. Gustavo Pereira") in listed
    assert one == T.WAITLIST_LEFT.format(doctors="do Dr. Gustavo Pereira")
    assert rest == T.WAITLIST_LEFT.format(doctors="do Dr. Rafael Teixeira")
    assert patient.text == T.WAITLIST_NONE
    assert {e.situacao for e in ListaEspera.objects.filter(pk__in=[on_rafael.pk, on_gustavo.pk])} == {Situacao.SAIU}


def test_an_appointment_list_answer_is_no_request_to_leave_the_waitlist(rafael):
    _join(rafael, MARIA, "Maria Oliveira", at=REF)
    _book_directly("Dra. Ana Souza", NEXT_MONDAY, "10:00", phone=MARIA)
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("minhas consultas")
    patient.says("cancela a primeira da lista")
    assert ListaEspera.objects.get().situacao == Situacao.AGUARDANDO, patient.text


# --- after a review by a helper (each failed before the fixes) ------------------------------------------------
def _free_rafaels_monday():
    """Joana, who held Dr. Rafael's only time in the weeks searched, cancels."""
    Agendamento.objects.filter(paciente_telefone=JOANA).update(status=Agendamento.Status.CANCELADO)


def test_a_yes_to_the_notice_does_not_book_a_summary_left_open_with_another_doctor(waitlist_on, rafael, fake_graph):
    """Maria waits for Dr. Rafael and left a booking with Dra. Ana at "Posso confirmar?". Hours later the notice
    arrives and she answers "sim": the stale Ana summary is not booked (as after a reminder, it is shown again)."""
    _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    patient = Patient(MARIA, "Maria Oliveira")
    _reach_confirmation_with_ana_on_wednesday(patient)  # left unanswered
    _free_rafaels_monday()
    patient.now += dt.timedelta(hours=4)
    waitlist_notify(now=patient.now)
    assert fake_graph.sends, "the notice went out"

    patient.says("sim")  # to "Abriu horário com Dr. Rafael Teixeira!"

    booked = list(Agendamento.objects.filter(paciente_telefone=MARIA).values_list("medico__nome", flat=True))
    assert booked == [], f"a 'sim' to the waitlist notice booked {booked}: {patient.text}"


def test_a_notice_that_could_not_be_delivered_is_not_the_patients_only_chance(waitlist_on, rafael, fake_graph):
    """A notice that fails for good (Graph 131026) puts the patient back in line: a later run tells her again while
    the time is still free, and the failed notice held no time for her."""
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    _free_rafaels_monday()
    fake_graph.default = graph_error(131026)
    waitlist_notify(now=REF)
    assert ConversationMessage.objects.get(channel_type="template").delivery_status == Delivery.FAILED
    fake_graph.default = graph_server.graph_ok()

    later = waitlist_notify(now=REF + HOLD + dt.timedelta(hours=1))  # the time is still free

    entry.refresh_from_db()
    assert later.told == [entry.pk] or entry.situacao == Situacao.AGUARDANDO, (
        f"entry {entry.situacao}, told {later.told}: the patient was never told and never will be"
    )


def test_the_offer_made_for_a_later_start_date_can_be_taken(waitlist_on, rafael):
    """'A partir do dia X' with no free time from X on but one before X: the offer can be taken (the answer looks
    from where the offer looked, not from today, which would restart the same offer in a loop)."""
    _free_rafaels_monday()  # next Monday 09:00 is free...
    BloqueioAgenda.objects.create(  # ...but nothing after it for months
        medico=rafael,
        data_inicio=NEXT_MONDAY + dt.timedelta(days=1),
        data_fim=NEXT_MONDAY + dt.timedelta(days=90),
        motivo="Congresso",
    )
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says(f"quero marcar com o dr rafael a partir do dia {NEXT_MONDAY + dt.timedelta(days=2):%d/%m}")
    patient.says("sim")  # the name
    offer = patient.text
    assert "lista de espera" in offer

    patient.says("Lista de espera", option_id=f"waitlist:join:{rafael.pk}")

    joined = ListaEspera.objects.exists()
    offered_times = any(o.id.startswith("slot:") for o in patient.last.reply.options)
    assert joined or offered_times, f"the same offer again: {patient.text!r}"


@pytest.mark.parametrize("answer", ["outro médico", "não, prefiro outro médico"])
def test_other_doctor_at_the_offer_lists_the_specialtys_other_doctors(waitlist_on, clinic, answer):
    """The offer says "diga o nome de outro médico": "outro médico" lists the specialty's other doctors, as it does
    without the waitlist, instead of ending the booking as a "não"."""
    ana = Medico.objects.get(nome="Dra. Ana Souza")
    BloqueioAgenda.objects.create(
        medico=ana, data_inicio=REF.date(), data_fim=REF.date() + dt.timedelta(days=400), motivo="Licença"
    )
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("quero marcar com a dra ana")
    patient.says("sim")
    patient.says("particular")
    assert "lista de espera" in patient.text

    patient.says(answer)

    # Cardiology's other doctor, at once (seventeenth session: was the list of the specialty's other doctors)
    assert "também atende Dr. Carlos Mendes" in patient.text, patient.text
    assert patient.session.selected_doctor.nome == "Dr. Carlos Mendes"


def test_a_yes_to_the_reminder_is_not_taken_by_a_notice_sent_in_the_same_run(waitlist_on, rafael, fake_graph,
                                                                             settings):  # fmt: skip
    """Beat's run sends tomorrow's reminder and, right after it, the waitlist notice: a bare "sim" still confirms
    the appointment (the notice keeps the reminder's pending answer)."""
    settings.WHATSAPP_REMINDER_TEMPLATE = "lembrete"
    settings.REMINDER_HOURS_BEFORE = 24
    tomorrow = _book_directly("Dra. Ana Souza", REF.date() + dt.timedelta(days=1), "09:00", phone=MARIA)
    Agendamento.objects.filter(pk=tomorrow.pk).update(
        criado_em=REF - dt.timedelta(days=5), atualizado_em=REF - dt.timedelta(days=5)
    )
    _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    _free_rafaels_monday()
    assert reminders_send(now=REF).stored == [tomorrow.pk]
    waitlist_notify(now=REF)
    assert [s.body["template"]["name"] for s in fake_graph.sends] == ["lembrete", "lista_espera"]

    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("sim")

    tomorrow.refresh_from_db()
    asked_which = "qual" in patient.text.lower()
    assert tomorrow.status == Agendamento.Status.CONFIRMADO or asked_which, (
        f"reminder dropped; status {tomorrow.status}, flow {patient.session.flow!r}: {patient.text!r}"
    )


def test_a_patient_who_waits_again_keeps_the_days_the_bot_promised(waitlist_on, rafael, fake_graph, settings):
    """Told of a time someone else took, Maria asks again and is told "A lista vale por 30 dias": she keeps her
    place in line and gets the 30 days from her new request."""
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=settings.WAITLIST_DAYS - 1))
    _free_rafaels_monday()
    waitlist_notify(now=REF - dt.timedelta(hours=1))
    _book(rafael, PEDRO, "Pedro Lima")  # faster
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("Ver horários", option_id=f"waitlist:book:{rafael.pk}")
    patient.says("sim")
    patient.says("particular")
    patient.says("1")  # "Lista de espera"
    assert f"A lista vale por {settings.WAITLIST_DAYS} dias" in patient.text

    waitlist_notify(now=REF + dt.timedelta(days=2))

    entry.refresh_from_db()
    assert entry.situacao == Situacao.AGUARDANDO, "expired two days after the bot said the list lasts 30 days"


@pytest.mark.parametrize(
    "answer",
    [
        "como funciona a lista de espera?",
        "quanto tempo demora a lista de espera?",
        "me coloca com outro médico",
    ],
)
def test_a_question_or_another_wish_at_the_offer_is_no_yes(waitlist_on, gustavo_away, answer):
    """A question about the list, or "put me with another doctor", is no yes to the offer."""
    patient = _reach_full_agenda()
    patient.says(answer)
    assert not ListaEspera.objects.exists(), patient.text


def test_an_old_waitlist_button_does_not_silently_drop_a_booking_under_way(waitlist_on, rafael):
    """A "Lista de espera" button from earlier in the chat, tapped at another booking's summary, joins that list and
    leaves the booking under way as it was (its question asked again)."""
    patient = Patient(MARIA, "Maria Oliveira")
    _reach_confirmation_with_ana_on_wednesday(patient)

    patient.says("Lista de espera", option_id=f"waitlist:join:{rafael.pk}")

    assert patient.session.flow == "agendar" or "Dra. Ana" in patient.text, patient.text


def test_a_missed_notice_does_not_take_the_patient_off_the_list_in_silence(waitlist_on, rafael, fake_graph):
    """Maria was told but missed it, and someone not on the list took the time. Days later it is free again: Maria,
    still on the list, is told again (up to MAX_NOTICES)."""
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    _free_rafaels_monday()
    waitlist_notify(now=REF)
    taken = _book(rafael, PEDRO, "Pedro Lima")
    Agendamento.objects.filter(pk=taken.pk).update(status=Agendamento.Status.CANCELADO)  # free again, later

    again = waitlist_notify(now=REF + dt.timedelta(days=3))

    entry.refresh_from_db()
    assert again.told == [entry.pk], f"entry {entry.situacao}: the only patient waiting is not told"


def test_a_patient_is_told_at_most_max_notices_times_per_request(waitlist_on, rafael, fake_graph):
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    _free_rafaels_monday()  # and nobody books it

    told = [waitlist_notify(now=REF + n * RETELL_AFTER + dt.timedelta(minutes=n)).told for n in range(MAX_NOTICES + 2)]

    assert told == [[entry.pk]] * MAX_NOTICES + [[], []]
    assert ListaEspera.objects.get(pk=entry.pk).avisos == MAX_NOTICES


@pytest.mark.parametrize("question", ["como funciona a lista de espera?", "quanto tempo demora a lista de espera?"])
def test_a_question_about_the_list_is_answered_and_the_offer_stands(waitlist_on, gustavo_away, question):
    patient = _reach_full_agenda()
    patient.says(question)
    assert patient.text.startswith("Funciona assim: quando abrir um horário com Dr. Gustavo Pereira")
    patient.says("1")
    assert ListaEspera.objects.get().paciente_telefone == MARIA


def test_the_dry_run_lists_the_waitlist_patients_it_would_tell(waitlist_on, rafael, fake_graph):
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    out = io.StringIO()  # the command runs on the real clock: the Monday of REF is within 8 days, its 09:00 free

    call_command("send_reminders", "--dry-run", stdout=out)

    assert f"1 waitlist patient(s) to tell of a free time (entry ids: {entry.pk})" in out.getvalue()
    assert not fake_graph.sends and ListaEspera.objects.get().situacao == Situacao.AGUARDANDO


@pytest.mark.parametrize(("name", "status"), [("Joana Reis Silva", "agendado"), ("Joana Reis", "confirmado")])
def test_editing_or_confirming_her_appointment_with_the_doctor_keeps_her_on_his_list(rafael, admin_client, name,
                                                                                     status):  # fmt: skip
    waiting = _join(rafael, JOANA, "Joana Reis", at=REF)  # Joana holds his only time and waits for an earlier one
    appointment = Agendamento.objects.get(paciente_telefone=JOANA)
    data = {"medico": rafael.pk, "especialidade": appointment.especialidade_id, "convenio": ""}
    data.update({"paciente_nome": name, "paciente_telefone": JOANA, "status": status})
    data.update({"data": NEXT_MONDAY.isoformat(), "hora": "09:00"})

    response = admin_client.post(reverse("admin:rag_agent_agendamento_change", args=[appointment.pk]), data)

    assert response.status_code == 302
    assert ListaEspera.objects.get(pk=waiting.pk).situacao == Situacao.AGUARDANDO


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_tell_each_waiting_patient_once(waitlist_on, gustavo_away, fake_graph):
    gustavo = gustavo_away.medico
    entries = [_join(gustavo, phone, "Paciente", at=REF - dt.timedelta(days=1)) for phone in (MARIA, PEDRO)]
    gustavo_away.delete()  # his leave was cancelled: plenty of free times

    runs = at_once(2, lambda _: waitlist_notify(now=REF))

    assert sorted(pk for run in runs for pk in run.told) == sorted(e.pk for e in entries)
    assert sorted(s.body["to"] for s in fake_graph.sends) == [MARIA, PEDRO]


# --- after a second review by a helper (each failed before the fixes) -----------------------------------------
@pytest.mark.parametrize(
    "message",
    [
        "quando sai a minha vaga da lista de espera?",
        "alguém cancelou? estou na lista de espera do dr rafael",
        "queria tirar uma dúvida sobre a lista de espera",
        "se alguém cancelar me avisa, estou na lista de espera",
        # seventeenth session, a third helper's review (each took her off the list before its mend)
        "bom dia, não me tira da lista de espera",
        "por favor não me tira da lista",
        "se eu marcar com outro médico, cancela minha lista de espera?",
        "se eu não responder o aviso, podem tirar meu nome da lista?",
    ],
)
def test_a_waiting_patients_question_does_not_take_her_off_the_list(rafael, message):
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says(message)
    entry.refresh_from_db()
    assert entry.situacao == Situacao.AGUARDANDO, f"taken off the list: {patient.text!r}"


def test_minhas_consultas_does_not_promise_a_list_of_a_doctor_no_longer_seeing_patients(rafael):
    _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    Medico.objects.filter(pk=rafael.pk).update(ativo=False)
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("minhas consultas")
    assert "Dr. Rafael Teixeira" not in patient.text, patient.text


def test_leaving_words_at_the_offer_do_not_join_the_offered_list(waitlist_on, gustavo_away):
    """Maria waits for Dra. Ana; asking for an orthopaedist she is offered Dr. Gustavo's list, and answers that she
    wants to leave the waitlist: that is no yes to Dr. Gustavo's list."""
    _join(Medico.objects.get(nome="Dra. Ana Souza"), MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    patient = _reach_full_agenda()
    assert T.WAITLIST_OFFER_ONLY_DOCTOR.format(doctor="Dr. Gustavo Pereira", specialty="Ortopedia") in patient.text

    patient.says("quero sair da lista de espera")

    joined = ListaEspera.objects.filter(medico=gustavo_away.medico).exists()
    assert not joined, f"'sair da lista de espera' joined Dr. Gustavo's list: {patient.text!r}"


def test_leaving_a_named_doctors_list_the_patient_is_not_on_keeps_her_other_lists(rafael):
    on_rafael = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("me tira da lista de espera do dr gustavo")
    on_rafael.refresh_from_db()
    assert on_rafael.situacao == Situacao.AGUARDANDO, f"Dr. Rafael's list left: {patient.text!r}"


def test_a_notice_meta_reports_failed_later_holds_no_time(waitlist_on, rafael, fake_graph):
    """Meta accepts the template (200, a wamid) and reports it undeliverable through the status webhook a moment
    later, as it does for 131026 / 131049. The docs: "a notice WhatsApp could not deliver puts the patient back in
    line and holds no time" — the next in line should not wait the 2-hour HOLD for a notice that never arrived."""
    from api_gateway.services.inbound import message_status_apply
    from api_gateway.whatsapp import StatusUpdate

    _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=2))
    pedro = _join(rafael, PEDRO, "Pedro Lima", at=REF - dt.timedelta(days=1))
    _free_rafaels_monday()
    waitlist_notify(now=REF)
    notice = ConversationMessage.objects.get(session__phone_number=MARIA, channel_type="template")
    message_status_apply(
        update=StatusUpdate(
            wamid=notice.whatsapp_message_id,
            status="failed",
            timestamp=REF + dt.timedelta(minutes=1),
            recipient=MARIA,
            error_code=131026,
            error_title="Message undeliverable",
        )
    )

    later = waitlist_notify(now=REF + dt.timedelta(minutes=10))

    assert later.told == [pedro.pk], "Maria never got the notice, yet the time is held for her for 2 hours"


def test_an_ok_after_leaving_the_list_in_answer_to_the_notice_starts_no_booking(waitlist_on, rafael, fake_graph):
    """Told of a free time, Maria answers "pode me tirar da lista de espera, já consegui em outro lugar" and is told
    "Pronto, tirei você da lista". Her "ok" to that is no yes to the notice she just turned down."""
    _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    _free_rafaels_monday()
    waitlist_notify(now=REF)
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("pode me tirar da lista de espera, já consegui em outro lugar")
    assert patient.text.endswith(T.WAITLIST_LEFT.format(doctors="do Dr. Rafael Teixeira"))

    patient.says("ok")

    assert not patient.session.flow, f"a booking with Dr. Rafael started: {patient.text!r}"


@pytest.mark.parametrize(
    "answer", ["não quero mais", "não, obrigada, não preciso mais", "não, já consegui em outro lugar"]
)
def test_a_patient_who_says_she_no_longer_wants_it_is_not_told_again(waitlist_on, rafael, fake_graph, answer):
    """To the notice Maria answers that she no longer wants the time: off that list, and told so."""
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    _free_rafaels_monday()
    waitlist_notify(now=REF)
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says(answer)

    again = waitlist_notify(now=REF + RETELL_AFTER + dt.timedelta(minutes=5))

    entry.refresh_from_db()
    assert again.told == [] and entry.situacao == Situacao.SAIU, patient.text
    assert patient.text.endswith(T.WAITLIST_LEFT.format(doctors="do Dr. Rafael Teixeira"))


@pytest.mark.parametrize(
    ("message", "leaves"),
    [
        ("me tira da lista de espera", True),
        ("quero sair da fila de espera", True),
        ("pode tirar meu nome da lista de espera", True),
        ("não quero mais ficar na lista", True),
        ("não quero sair da lista de espera", False),
        ("cancela a primeira da lista", False),
        ("qual a lista de convênios?", False),
    ],
)
def test_only_a_wish_to_leave_takes_the_patient_off(rafael, message, leaves):
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF)
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says(message)
    entry.refresh_from_db()
    assert (entry.situacao == Situacao.SAIU) == leaves, patient.text


def test_a_cancel_with_no_appointment_but_a_waitlist_says_how_to_leave_it(rafael):
    _join(rafael, MARIA, "Maria Oliveira", at=REF)
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("quero cancelar")
    assert T.ON_WAITLIST.format(doctors="do Dr. Rafael Teixeira") in patient.text
    assert ListaEspera.objects.get().situacao == Situacao.AGUARDANDO


def test_the_notice_button_of_a_doctor_no_longer_seeing_patients_says_so(waitlist_on, rafael):
    Medico.objects.filter(pk=rafael.pk).update(ativo=False)
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("Ver horários", option_id=f"waitlist:book:{rafael.pk}")
    assert T.WAITLIST_DOCTOR_GONE.format(doctor="Dr. Rafael Teixeira") in patient.text and not patient.session.flow


# --- after a third review by a helper (Gemini, webhook taps, REST, texts; each failed before the fixes) ---------
def _told(rafael):
    """Maria waits for Dr. Rafael; Joana cancels; the notice "Abriu horário com Dr. Rafael Teixeira!" goes out."""
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    _free_rafaels_monday()
    waitlist_notify(now=REF)
    return entry


# --- answers to the notice ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "other_times"),
    [
        ("não posso segunda, teria outro dia?", True),
        ("não consigo nesse horário, tem outro?", True),
        ("não dá pra mim esse dia", False),
    ],
)
def test_a_no_to_the_notices_time_only_is_no_wish_to_leave_the_list(waitlist_on, rafael, fake_graph, text,
                                                                    other_times):  # fmt: skip
    """Maria cannot come on the Monday the notice names: she stays on the list; asking for another day starts the
    booking with that doctor (his other times), a bare "não dá" is told she keeps her place."""
    entry = _told(rafael)
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says(text)
    entry.refresh_from_db()
    assert entry.situacao != Situacao.SAIU, patient.text
    if other_times:
        assert patient.session.selected_doctor_id == rafael.pk and patient.session.flow == "agendar", patient.text
    else:
        assert patient.text == T.WAITLIST_STAYS.format(doctor="do Dr. Rafael Teixeira")


@pytest.mark.parametrize(
    "text",
    ["quero marcar esse horário", "sim, quero marcar", "pode marcar pra mim", "oba, quero sim", "quero esse horário"],
)
def test_a_wish_typed_after_the_notice_books_with_its_doctor(waitlist_on, rafael, fake_graph, text):
    """Only the tap, a bare "sim"/"quero sim" carry the notice's doctor: "quero marcar esse horário" starts a booking
    from scratch (name, specialty...) and "oba, quero sim" gets "Desculpe, não entendi" and the menu."""
    _told(rafael)
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says(text)
    assert patient.session.selected_doctor_id == rafael.pk, patient.text


@pytest.mark.parametrize(
    "gemini",
    [
        {"intent": "agendar", "confidence": 0.9, "entities": {}},
        {"intent": "agendar", "confidence": 0.9, "entities": {"data": NEXT_MONDAY.isoformat(), "hora": "09:00"}},
    ],
)
def test_gemini_reading_the_yes_to_the_notice_as_agendar_keeps_its_doctor(waitlist_on, rafael, fake_graph, fake_gemini,
                                                                          gemini):  # fmt: skip
    """The offline NLU is unsure (0.8) so Gemini reads "quero esse horário sim" — as "agendar", the natural reading.
    The doctor is carried only for CONFIRMAR: the bot asks the name and then the specialty, or (with the notice's
    date) lists every specialty free on Monday."""
    _told(rafael)
    patient = Patient(MARIA, "Maria Oliveira")
    fake_gemini.enqueue(answer_json(gemini))
    patient.says("opa que ótimo!! quero esse horário sim, dá pra garantir pra mim?")
    assert len(fake_gemini.generate_requests) == 1
    assert patient.session.selected_doctor_id == rafael.pk, patient.text


# --- answers to the offer ----------------------------------------------------------------------------------------
def test_gemini_naming_the_offered_doctor_in_a_yes_to_the_offer_joins(waitlist_on, gustavo_away, fake_gemini):
    """Gemini returns the doctor the patient named ("confirmar", medico "Dr. Gustavo Pereira"): the merged
    medico_id counts as a booking entity, so the offer is not answered and the same offer comes back."""
    patient = _reach_full_agenda()
    fake_gemini.enqueue(
        answer_json({"intent": "confirmar", "confidence": 0.9, "entities": {"medico": "Dr. Gustavo Pereira"}})
    )
    patient.says("tá bom, pode deixar meu nome aí pro dr gustavo então, fazer o que né")
    assert ListaEspera.objects.exists(), patient.text


def test_a_yes_naming_the_offered_doctor_joins(waitlist_on, gustavo_away):
    patient = _reach_full_agenda()
    patient.says("sim, pro dr gustavo mesmo")
    assert ListaEspera.objects.exists(), patient.text


# --- the real webhook ---------------------------------------------------------------------------------------------
_ids = itertools.count(1)


def _webhook(client, kind: str, body: dict, phone=MARIA):
    payload = load_payload("text", now=time.time())
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("text", None)
    message.update({"type": kind, kind: body, "id": f"wamid.R3{next(_ids):06d}", "from": phone})
    payload["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = phone
    assert post_webhook(client, payload).status_code == 200


def _tap(client, option_id: str, title: str):
    _webhook(client, "interactive", {"type": "button_reply", "button_reply": {"id": option_id, "title": title}})


@pytest.mark.django_db(transaction=True)  # the webhook enqueues on commit
def test_lista_de_espera_tapped_after_asking_for_a_person_joins(clinic, waitlist_on, gustavo_away, celery_inline,
                                                                fake_graph):  # fmt: skip
    """At the offer Maria taps "Falar c/ atendente", then changes her mind and taps "Lista de espera". In the handoff
    every message goes to the staff (only the reminder's "Confirmar presença" is read), and the staff cannot add
    anyone to the list in the admin: nothing is joined, the bot says nothing, and no one can do it for her."""
    client = Client()
    for text in ["quero marcar ortopedista", "sim", "particular"]:
        _webhook(client, "text", {"body": text})
    _tap(client, "menu:atendente", "Falar c/ atendente")
    _tap(client, f"waitlist:join:{gustavo_away.medico_id}", "Lista de espera")
    assert ListaEspera.objects.filter(paciente_telefone=MARIA).exists()


# --- REST ---------------------------------------------------------------------------------------------------------
def _rest(client, text, phone=MARIA):
    response = client.post(
        "/api/v1/messages/",
        data=json.dumps({"phone": phone, "text": text}),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer test-api-key",
    )
    assert response.status_code == 200, response.content
    return response.json()


# --- races ----------------------------------------------------------------------------------------------------------
MARIA_8 = "551199990001"  # Maria's mobile without the ninth digit (old WhatsApp ids)


def test_asking_again_after_three_undelivered_notices_is_told_again(waitlist_on, rafael, fake_graph):
    """Maria's phone was off WhatsApp for three days: the three notices of Dr. Rafael's free Monday all failed
    (131026). Back, she asks for Dr. Rafael again (the time was taken meanwhile) and is told "Você já está na lista de
    espera ... Aviso pelo WhatsApp assim que abrir um horário". Her entry is "aguardando" with avisos=3 (a failed notice
    puts her back in line but keeps the count; a re-join resets it only from "avisado"): never told again, though
    the bot and "minhas consultas" say she is waiting."""
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    _free_rafaels_monday()
    fake_graph.default = graph_error(131026)
    for day in range(3):
        waitlist_notify(now=REF + day * (RETELL_AFTER + dt.timedelta(minutes=1)))
    fake_graph.default = graph_server.graph_ok()
    joana = _book(rafael, "5511999990003", "Joana Reis")  # the time went to someone else

    patient = Patient(MARIA, "Maria Oliveira")
    patient.now = REF + dt.timedelta(days=3, hours=1)
    patient.says("quero marcar com o dr rafael")
    patient.says("sim")
    patient.says("particular")
    patient.says("1")
    assert "lista de espera" in patient.text, patient.text

    Agendamento.objects.filter(pk=joana.pk).update(status=Agendamento.Status.CANCELADO)
    again = waitlist_notify(now=patient.now + dt.timedelta(minutes=10))
    entry.refresh_from_db()
    assert again.told == [entry.pk], f"never told again ({entry.situacao}, {entry.avisos} notices): {patient.text!r}"


def test_a_rest_join_is_told_in_the_patients_whatsapp_conversation(client, waitlist_on, gustavo_away, fake_graph):
    """The docs: "Patients join only through the bot, so the number on the list is the one WhatsApp writes from".
    A REST client (the clinic's site chat) joins Maria with her number as she typed it, without the ninth digit;
    Maria already talks to the clinic on WhatsApp as 5511999990001. The reminders go into the conversation the
    patient already has (reminders.recipient); the waitlist notice should too, so her typed "sim" books."""
    Patient(MARIA, "Maria Oliveira").says("oi")  # her WhatsApp conversation, idle for days
    ConversationMessage.objects.filter(session__phone_number=MARIA, message_type="user").update(
        whatsapp_message_id="wamid.MARIA1"
    )
    ConversationSession.objects.filter(phone_number=MARIA).update(last_activity=REF - dt.timedelta(days=5))
    for text in ["quero marcar ortopedista", "Maria Oliveira", "particular", "1"]:
        body = _rest(client, text, phone=MARIA_8)
    assert ListaEspera.objects.filter(paciente_telefone=MARIA_8).exists(), body
    assert "Aviso pelo WhatsApp" in json.dumps(body, ensure_ascii=False)  # not "por aqui": the site's chat
    gustavo_away.delete()  # back from leave
    waitlist_notify(now=REF + dt.timedelta(minutes=30))
    notice = ConversationMessage.objects.get(channel_type="template")
    maria = Patient(MARIA, "Maria Oliveira")
    maria.now = REF + dt.timedelta(minutes=40)
    maria.says("sim")  # on WhatsApp, to "Abriu horário com Dr. Gustavo Pereira!"
    assert maria.session.selected_doctor_id == gustavo_away.medico_id, (
        f"the notice went to the conversation of {notice.session.phone_number}; Maria's 'sim' on WhatsApp "
        f"({MARIA}) got {maria.text!r}"
    )


# --- texts ----------------------------------------------------------------------------------------------------------
def test_the_notice_button_of_a_woman_doctor_gone_does_not_call_her_esse_medico(waitlist_on, clinic):
    """The notice's button of a doctor who left names her, not "esse médico"."""
    ana = Medico.objects.get(nome="Dra. Ana Souza")
    Medico.objects.filter(pk=ana.pk).update(ativo=False)
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("Ver horários", option_id=f"waitlist:book:{ana.pk}")
    assert T.WAITLIST_DOCTOR_GONE.format(doctor="Dra. Ana Souza") in patient.text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_joins_at_once_with_the_two_forms_of_a_mobile_leave_one_entry(rafael):
    """WhatsApp's id without the ninth digit and a REST client's number with it, joining in the same instant: the
    unique constraint sees one spelling, so the join serialises on the patient (both forms) itself."""
    forms = [MARIA, MARIA_8]

    def join(i):
        return clinic_services.waitlist_join(
            medico_id=rafael.pk, especialidade_id=None, paciente_nome="Maria", paciente_telefone=forms[i], now=REF
        )[1]

    joined = at_once(2, join)

    assert sorted(joined) == [False, True], joined
    assert ListaEspera.objects.filter(situacao__in=ListaEspera.OPEN).count() == 1


# --- a time that opens tells the first in line at once, not at beat's next run (sixteenth session) ---------------
def _waitlist_told(fake_graph) -> list[str]:
    return [s.body["to"] for s in fake_graph.sends if s.body.get("template", {}).get("name") == TEMPLATE]


@pytest.fixture
def rafael_full_now(rafael, settings) -> Medico:
    """Dr. Rafael's agenda full on the real clock too, which the run a freed time starts reads: every one of his
    times in the weeks searched from now, but Joana's, is taken by another patient."""
    settings.SLOT_SEARCH_DAYS = 15  # from today, Joana's time (at most a week and a day ahead) is in the window
    for slot in selectors.slot_list_free(medico_id=rafael.pk, start=timezone.localdate(), days=15):
        slot = timezone.localtime(slot)
        block_notices_book(f"{slot:%H:%M}", slot.date(), doctor=rafael.nome, phone=FILLER, name="Lucas Prado")
    return rafael


def _cancels(phone=JOANA, name="Joana Reis") -> Patient:
    patient = Patient(phone, name)
    patient.says("quero cancelar minha consulta")
    patient.says("sim")
    assert patient.text.startswith("Consulta de ") and "cancelada" in patient.text, patient.text
    return patient


def _moves_to_gustavo(phone=JOANA, name="Joana Reis") -> Patient:
    patient = Patient(phone, name)
    for text in ("quero remarcar minha consulta", "Dr. Gustavo Pereira", "1", "sim"):
        patient.says(text)
    assert patient.text.startswith("✅ Consulta remarcada") and "Gustavo" in patient.text, patient.text
    return patient


@pytest.mark.parametrize("frees_the_time", [_cancels, _moves_to_gustavo], ids=["cancels", "moves"])
@pytest.mark.usefixtures("waitlist_on", "rafael_full_now", "any_hour", "celery_inline")
def test_a_patient_freeing_a_time_through_the_bot_tells_the_first_in_line_at_once(
    rafael, fake_graph, django_capture_on_commit_callbacks, frees_the_time
):
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    _join(rafael, PEDRO, "Pedro Lima", at=REF)

    with django_capture_on_commit_callbacks(execute=True):
        frees_the_time()

    assert _waitlist_told(fake_graph) == [MARIA]
    assert _params(fake_graph.sends[-1]) == (
        ["Dr. Rafael Teixeira", T.date_long(NEXT_MONDAY), "09:00"],
        [f"waitlist:book:{rafael.pk}"],
    )
    entry.refresh_from_db()
    assert entry.situacao == Situacao.AVISADO


@pytest.mark.django_db(transaction=True)  # the run starts when the turn commits, while the patient's lock is held
@pytest.mark.usefixtures("waitlist_on", "rafael_full_now", "any_hour", "celery_inline")
def test_the_patient_who_freed_the_time_is_not_told_of_it_and_the_next_in_line_is(rafael, fake_graph):
    _join(rafael, JOANA, "Joana Reis", at=REF - dt.timedelta(days=2))  # holds his only time, waits for an earlier one
    maria = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))

    _cancels()

    assert _waitlist_told(fake_graph) == [MARIA]
    maria.refresh_from_db()
    assert maria.situacao == Situacao.AVISADO


def _staff_cancel_action(client, appointment):
    url = reverse("admin:rag_agent_agendamento_changelist")
    return client.post(url, {"action": "cancelar_agendamentos", "_selected_action": [str(appointment.pk)]})


def _staff_form(client, appointment, **changes):
    url = reverse("admin:rag_agent_agendamento_change", args=[appointment.pk])
    return client.post(url, admin_form_of(appointment, **changes))


def _staff_move_to_gustavo(client, appointment):
    gustavo = Medico.objects.get(nome="Dr. Gustavo Pereira")
    tuesday = NEXT_MONDAY + dt.timedelta(days=1)  # his Tuesday afternoon
    return _staff_form(client, appointment, medico=gustavo.pk, data=tuesday.isoformat(), hora="13:00")


@pytest.mark.parametrize(
    "staff_free_the_time",
    [
        _staff_cancel_action,
        lambda client, appointment: _staff_form(client, appointment, status="cancelado"),
        _staff_move_to_gustavo,
        lambda client, appointment: client.post(
            reverse("admin:rag_agent_agendamento_delete", args=[appointment.pk]), {"post": "yes"}
        ),
    ],
    ids=["cancel action", "cancelled on the form", "moved to another doctor", "deleted"],
)
@pytest.mark.django_db(transaction=True)  # the run is enqueued when the admin's change commits
@pytest.mark.usefixtures("waitlist_on", "rafael_full_now", "any_hour", "celery_inline")
def test_the_staff_freeing_a_time_in_the_admin_tell_the_first_in_line(
    rafael, fake_graph, admin_client, staff_free_the_time
):
    maria = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))

    response = staff_free_the_time(admin_client, Agendamento.objects.get(paciente_telefone=JOANA))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert _waitlist_told(fake_graph) == [MARIA]
    maria.refresh_from_db()
    assert maria.situacao == Situacao.AVISADO


@pytest.fixture
def gustavo_away_now(clinic) -> BloqueioAgenda:
    """Dr. Gustavo Pereira, the only orthopaedist, on leave from today on the real clock (the run reads it)."""
    today = timezone.localdate()
    return BloqueioAgenda.objects.create(
        medico=Medico.objects.get(nome="Dr. Gustavo Pereira"),
        data_inicio=today,
        data_fim=today + dt.timedelta(days=400),
        motivo="Licença",
    )


def _block_deleted(client, block):
    return client.post(reverse("admin:rag_agent_bloqueioagenda_delete", args=[block.pk]), {"post": "yes"})


def _block_shortened(client, block):
    return admin_change(client, block, lambda data: data.update(data_fim=data["data_inicio"]))  # back tomorrow


@pytest.mark.parametrize("lift", [_block_deleted, _block_shortened], ids=["deleted", "shortened"])
@pytest.mark.usefixtures("waitlist_on", "any_hour", "celery_inline")
@pytest.mark.django_db(transaction=True)  # the run is enqueued when the admin's change commits
def test_the_staff_lifting_a_block_tell_the_first_in_line(gustavo_away_now, fake_graph, admin_client, lift):
    maria = _join(gustavo_away_now.medico, MARIA, "Maria Oliveira", at=timezone.now() - dt.timedelta(days=1))

    response = lift(admin_client, gustavo_away_now)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert _waitlist_told(fake_graph) == [MARIA]
    maria.refresh_from_db()
    assert maria.situacao == Situacao.AVISADO


@pytest.mark.usefixtures("waitlist_on", "any_hour", "celery_inline")
@pytest.mark.django_db(transaction=True)
def test_the_staff_opening_hours_for_a_doctor_tell_the_first_in_line(clinic, fake_graph, admin_client):
    doctor = Medico.objects.create(nome="Dr. Rafael Teixeira", crm="CRM/SP 990001", preco_consulta="300.00")
    doctor.especialidades.add(Especialidade.objects.get(nome="Ortopedia"))  # no hours yet: nothing free
    maria = _join(doctor, MARIA, "Maria Oliveira", at=timezone.now() - dt.timedelta(days=1))
    weekdays = [(timezone.localdate() + dt.timedelta(days=n)).weekday() for n in (2, 3, 4)]  # not all holidays

    def open_hours(data):
        for weekday in weekdays:
            add_shift(data, weekday=weekday, start="09:00", end="12:00")

    response = admin_change(admin_client, doctor, open_hours)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert HorarioTrabalho.objects.filter(medico=doctor).count() == 3
    assert _waitlist_told(fake_graph) == [MARIA]
    maria.refresh_from_db()
    assert maria.situacao == Situacao.AVISADO


@pytest.mark.skipif(not settings.REDIS_URL, reason="the broker is Redis only with REDIS_URL set")
@pytest.mark.parametrize("template", [TEMPLATE, ""], ids=["waitlist on", "waitlist off"])
@pytest.mark.usefixtures("rafael_full_now", "any_hour", "published_for_real")
def test_in_production_a_cancellation_hands_the_waitlist_run_to_a_worker(
    rafael, fake_graph, django_capture_on_commit_callbacks, settings, template
):
    settings.WHATSAPP_WAITLIST_TEMPLATE = template
    maria = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    client = redis.Redis.from_url(app.conf.broker_url)
    queue = app.conf.task_default_queue
    client.delete(queue)

    with django_capture_on_commit_callbacks(execute=True):
        _cancels()

    published = [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
    client.delete(queue)
    if not template:
        assert published == []  # no notice to send: no task either
        return
    assert [m["headers"]["task"] for m in published] == ["api_gateway.tasks.notify_waitlist"]
    args, kwargs, _ = json.loads(base64.b64decode(published[0]["body"]))
    assert not fake_graph.sends  # the turn itself sent nothing
    notify_waitlist.apply(args=args, kwargs=kwargs)  # what the worker runs
    assert [s.body["to"] for s in fake_graph.sends] == [MARIA]
    maria.refresh_from_db()
    assert maria.situacao == Situacao.AVISADO


# --- a full agenda without the list (a move, or no template): other doctors are one tap away -------------------
def _moves_with_rafael_full() -> Patient:
    patient = Patient(JOANA, "Joana Reis")
    patient.says("quero remarcar minha consulta")
    assert T.NO_SLOTS_AT_ALL.format(doctor="Dr. Rafael Teixeira") in patient.text, patient.text
    return patient


@pytest.mark.parametrize(
    ("answer", "option_id"),
    [
        ("outro médico", None),
        ("quero com outro médico", None),
        ("pode ser com outro", None),
        ("1", None),
        ("Outro médico", "change:doctor"),
    ],
)
def test_moving_from_a_full_agenda_another_doctor_is_one_answer_away(rafael, answer, option_id):
    patient = _moves_with_rafael_full()
    assert [o.id for o in patient.last.reply.options] == ["change:doctor", "menu:atendente"]

    patient.says(answer, option_id=option_id)

    assert patient.state == "choosing_date" and patient.session.flow == "remarcar", patient.text
    assert patient.text.startswith("Em Ortopedia, também atende Dr. Gustavo Pereira"), patient.text


def test_a_question_about_another_day_at_a_full_agenda_is_no_request_for_another_doctor(rafael):
    patient = _moves_with_rafael_full()
    patient.says("tem outro dia?")
    assert patient.state != "selecting_doctor", patient.text


def test_booking_a_full_agenda_without_the_list_a_typed_number_picks_another_doctor(rafael):
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says("quero marcar com o dr rafael")
    patient.says("sim")
    patient.says("particular")
    assert T.NO_SLOTS_AT_ALL.format(doctor="Dr. Rafael Teixeira") in patient.text, patient.text

    patient.says("1")

    assert patient.text.startswith("Em Ortopedia, também atende Dr. Gustavo Pereira"), patient.text


def test_the_only_doctor_of_a_specialty_with_a_full_agenda_is_not_offered_another(gustavo_away):
    patient = _reach_full_agenda()

    assert T.NO_SLOTS_ONLY_DOCTOR.format(doctor="Dr. Gustavo Pereira", specialty="Ortopedia") in patient.text
    assert "outro médico" not in patient.text
    assert [o.id for o in patient.last.reply.options] == ["menu:atendente"]


# --- after a review by a helper of this session's changes (each failed before the fixes) ------------------------
def _paulo() -> Medico:
    """A second orthopaedist with plenty of free mornings, who takes no health plan (private only)."""
    doctor = Medico.objects.create(
        nome="Dr. Paulo Nunes", crm="CRM/SP 990002", preco_consulta="250.00", duracao_consulta_minutos=30
    )
    doctor.especialidades.add(Especialidade.objects.get(nome="Ortopedia"))
    for weekday in range(5):
        HorarioTrabalho.objects.create(medico=doctor, dia_semana=weekday, hora_inicio=dt.time(8), hora_fim=dt.time(12))
    return doctor


# --- the no-slots question's buttons -----------------------------------------------------------------------------
def test_a_typed_2_for_falar_com_atendente_at_a_full_agenda_when_moving_reaches_a_person(rafael):
    """Moving her appointment from Dr. Rafael's full agenda, Joana gets the no-slots question as buttons; on the text
    fallback (REST, or a phone without buttons) she reads "1. Outro médico / 2. Falar c/ atendente" and types "2".
    She gets "Desculpe, não entendi" and the same question again; she should be handed to a person, as the tapped
    button (and the waitlist offer's typed "2") does. (conversation.py: the new kind "no_slots" is missing from
    BUTTON_KINDS, so _interpret never maps the number to "menu:atendente"; _field_to_change only looks for
    "change:" ids.)"""
    patient = _moves_with_rafael_full()
    assert f"2. {T.BUTTON_HUMAN}" in patient.text, patient.text

    patient.says("2")

    assert patient.state == "human_handoff", patient.text


def test_a_typed_1_for_falar_com_atendente_at_the_only_doctors_full_agenda_reaches_a_person(gustavo_away, settings):
    """Without the waitlist template, Maria asks for Ortopedia, whose only doctor is away: "Dr. Gustavo Pereira não
    tem horários livres..., e é quem atende Ortopedia aqui. Para ver um encaixe, fale com um atendente. 1. Falar c/
    atendente". She types "1" and gets "Desculpe, não entendi" and the same text; she should reach a person.
    (conversation.py: kind "no_slots" not in BUTTON_KINDS.)"""
    settings.WHATSAPP_WAITLIST_TEMPLATE = ""
    patient = _reach_full_agenda()
    assert T.NO_SLOTS_ONLY_DOCTOR.format(doctor="Dr. Gustavo Pereira", specialty="Ortopedia") in patient.text
    assert f"1. {T.BUTTON_HUMAN}" in patient.text, patient.text

    patient.says("1")

    assert patient.state == "human_handoff", patient.text


@pytest.mark.parametrize(
    "answer",
    [
        "não quero outro médico",
        "quero o mesmo médico",
        "prefiro esperar outra vaga com ele",
        "fica pra outro momento",
        "outra especialidade",
    ],
)
def test_answers_that_do_not_ask_for_another_doctor_are_not_taken_for_the_button(rafael, answer):
    """Moving her appointment, Joana hears that Dr. Rafael has no free time ("Quer escolher outro médico ou falar
    com um atendente?") and answers that she does NOT want another doctor, wants the same one, will wait, or wants
    another specialty. She gets "Estes são os médicos de Ortopedia. Com quem você prefere?" — the list she just
    refused. She should not be sent to the doctors list (a "não" / the same question / a person would do).
    (conversation.py _field_to_change: _ANOTHER_ONE matches any "outro"/"outra" not followed by a date word, the
    negation is never read, and with kind "no_slots" a message naming the word "médico" of the "Outro médico"
    button title is taken by the offline NLU as row 1 = change:doctor; _OTHER_DOCTOR now also applies to moves.)"""
    patient = _moves_with_rafael_full()

    patient.says(answer)

    assert patient.state != "selecting_doctor", patient.text
    assert "Estes são os médicos de Ortopedia" not in patient.text


def test_moving_with_a_plan_only_the_full_doctor_takes_offers_a_person_not_the_same_doctor_again(gustavo_away):
    """Joana's appointment with Dr. Gustavo is by Unimed; he is away, and moving it she is offered the button
    "Outro médico" (Ortopedia has two doctors). Tapping it she gets "Em Ortopedia, pelo convênio Unimed, quem
    atende é Dr. Gustavo Pereira. Dr. Gustavo Pereira não tem horários livres... Quer escolher outro médico?" —
    the same doctor and the same question, for ever. The button should not be offered when no other doctor takes
    the plan the move keeps (the only-doctor text and a person instead), or should lead somewhere else.
    (conversation.py _no_slots_at_all counts the specialty's doctors without the session's plan;
    _offer_doctors then filters by the plan and auto-chooses the full doctor again.)"""
    _paulo()
    Agendamento.objects.create(
        medico=gustavo_away.medico,
        especialidade=Especialidade.objects.get(nome="Ortopedia"),
        convenio=Convenio.objects.get(nome="Unimed"),
        paciente_nome="Joana Reis",
        paciente_telefone=JOANA,
        data=REF.date() + dt.timedelta(days=8),
        hora=dt.time(13),
    )
    patient = Patient(JOANA, "Joana Reis")
    patient.says("quero remarcar minha consulta")

    only = T.NO_SLOTS_ONLY_DOCTOR.format(doctor="Dr. Gustavo Pereira", specialty="Ortopedia pelo convênio Unimed")
    assert only in patient.text and T.PRIVATE_WITH_OTHERS not in patient.text, patient.text  # a move keeps the plan
    assert [o.id for o in patient.last.reply.options] == ["menu:atendente"]


def test_booking_with_a_plan_only_the_full_doctor_takes_points_to_the_private_doctors(gustavo_away, settings):
    """Without WHATSAPP_WAITLIST_TEMPLATE, Maria books Ortopedia by Unimed; only Dr. Gustavo takes Unimed and he is
    away, so she gets "Quer escolher outro médico ou falar com um atendente?" with the button "Outro médico". Tapping
    it she gets the very same message about Dr. Gustavo again, and again. She should be offered the other
    orthopaedist, Dr. Paulo Nunes, as private (as ASK_DOCTOR_OR_PRIVATE does when a doctor rejects a plan), or not
    be offered the button. (conversation.py _no_slots_at_all / _offer_doctors.)"""
    settings.WHATSAPP_WAITLIST_TEMPLATE = ""
    _paulo()
    patient = Patient(MARIA, "Maria Oliveira")
    for text in ("quero marcar ortopedista", "sim", "Unimed"):
        patient.says(text)
    only = T.NO_SLOTS_ONLY_DOCTOR.format(doctor="Dr. Gustavo Pereira", specialty="Ortopedia pelo convênio Unimed")
    assert f"{only} {T.PRIVATE_WITH_OTHERS}" in patient.text, patient.text

    patient.says("particular")  # the other orthopaedist at once (seventeenth session; was one more tap)

    assert "Dr. Paulo Nunes" in patient.text, patient.text


@pytest.mark.parametrize("waitlist", [False, True])
def test_particular_said_at_the_plan_only_text_offers_the_other_doctors_at_once(gustavo_away, settings, waitlist):
    """Maria books Ortopedia by Unimed; only Dr. Gustavo takes Unimed and he is away: "é só dizer *particular*".
    She says "particular": she should get the other orthopaedist's times (Dr. Paulo Nunes, private), not the same
    full doctor asked about again (seventeenth session: one step less)."""
    if not waitlist:
        settings.WHATSAPP_WAITLIST_TEMPLATE = ""
    _paulo()
    patient = Patient(MARIA, "Maria Oliveira")
    for text in ("quero marcar ortopedista", "sim", "Unimed"):
        patient.says(text)
    assert T.PRIVATE_WITH_OTHERS in patient.text, patient.text

    patient.says("particular")

    assert "Dr. Paulo Nunes" in patient.text and patient.session.selected_doctor.nome == "Dr. Paulo Nunes"
    assert patient.state == "choosing_date", patient.text


# --- the waitlist run started when the staff free a time ---------------------------------------------------------
@pytest.mark.parametrize("how", ["cancel action", "deleted"])
@pytest.mark.django_db(transaction=True)  # the run is enqueued when the admin's change commits
@pytest.mark.usefixtures("waitlist_on", "rafael_full_now", "any_hour", "celery_inline")
def test_the_staff_freeing_a_patients_time_do_not_offer_her_that_same_time(rafael, fake_graph, admin_client, how):
    """Joana holds Dr. Rafael's Monday 09:00 and waits on his list for an earlier time; she phones the reception,
    which cancels (or deletes) her appointment in the admin. At once Joana receives the waitlist template "Abriu
    um horário com Dr. Rafael Teixeira: segunda-feira ... às 09:00" — the very time she just gave up — while Maria,
    next in line and really waiting, is not told (the run's room is used up by Joana's notice for HOLD). As the bot
    path does (waitlist_notify(except_phone=...)), the patient whose appointment the staff freed should be skipped
    and Maria told. (api_gateway/admin.py TellsWaitlists.times_freed_by_staff enqueues notify_waitlist without
    freed_by; rag_agent/admin.py's hooks do not pass whose time it was.)"""
    _join(rafael, JOANA, "Joana Reis", at=REF - dt.timedelta(days=2))
    maria = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    appointment = Agendamento.objects.get(paciente_telefone=JOANA)

    if how == "cancel action":
        response = _staff_cancel_action(admin_client, appointment)
    else:
        response = admin_client.post(
            reverse("admin:rag_agent_agendamento_delete", args=[appointment.pk]), {"post": "yes"}
        )

    assert response.status_code == 302
    told = _waitlist_told(fake_graph)
    assert JOANA not in told, told
    maria.refresh_from_db()
    assert maria.situacao == Situacao.AVISADO


def test_the_doctors_offered_after_outro_medico_leave_out_the_full_one(rafael):
    """Moving from Dr. Rafael's full agenda, Joana taps "Outro médico" and gets "Estes são os médicos de Ortopedia.
    Com quem você prefere? 1. Dr. Gustavo Pereira 2. Dr. Rafael Teixeira": the doctor just said to have no free
    time is offered again as "another" one (picking him gives the same no-slots question). The list should leave
    him out (with one other doctor left, go straight to that doctor's times). (conversation.py _reopen("doctor")
    then _offer_doctors, which does not know which doctor was full.)"""
    patient = _moves_with_rafael_full()
    rafael_id = patient.session.selected_doctor_id

    patient.says(T.BUTTON_OTHER_DOCTOR, option_id="change:doctor")

    assert f"doctor:{rafael_id}" not in [o.id for o in patient.last.reply.options], patient.text
    assert "Dr. Rafael Teixeira" not in patient.text and "Dr. Gustavo Pereira" in patient.text
    _paulo()  # a third orthopaedist: a list of the two others
    patient = _moves_with_rafael_full()
    patient.says("outro médico")
    assert patient.state == "selecting_doctor", patient.text
    assert [o.id for o in patient.last.reply.options if o.id == f"doctor:{rafael_id}"] == []
    assert "Dr. Gustavo Pereira" in patient.text and "Dr. Paulo Nunes" in patient.text


# --- after a second review by a helper (admin paths, production path) ----------------------------------------------
@pytest.mark.parametrize("action", ["cancelar_agendamentos", "delete_selected"])
@pytest.mark.usefixtures("waitlist_on", "rafael_full_now", "any_hour", "celery_inline")
@pytest.mark.django_db(transaction=True)  # the run is enqueued when the admin's change commits
def test_a_patient_whose_other_doctors_appointment_the_staff_free_keeps_her_place_in_line(
    rafael, fake_graph, admin_client, action
):
    """Maria is first on Dr. Rafael's waitlist (Pedro is behind her); she also holds a Tuesday appointment with
    Dr. Gustavo, which she phones the reception to drop. In the same bulk action the reception cancels (or deletes)
    it together with Joana's appointment, Dr. Rafael's only time. Pedro receives the waitlist template "Abriu um
    horário com Dr. Rafael Teixeira ... às 09:00" and Maria, first in line for Dr. Rafael, receives nothing (and,
    with Pedro's notice holding the time for HOLD, beat's next runs do not tell her either). She should be told, not
    Pedro: giving up a time with Dr. Gustavo is no reason to lose her place on Dr. Rafael's list.
    (api_gateway/services/waitlist.py waitlist_notify drops `except_phones` from every doctor's list, not only from
    the lists of the doctors whose times they gave up; the admin's bulk actions pass all the selected patients'
    phones through TellsWaitlists.times_freed_by_staff -> notify_waitlist(*freed_by).)"""
    gustavo = Medico.objects.get(nome="Dr. Gustavo Pereira")
    maria = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=2))
    _join(rafael, PEDRO, "Pedro Lima", at=REF - dt.timedelta(days=1))
    today = timezone.localdate()
    tuesday = today + dt.timedelta(days=(1 - today.weekday()) % 7 + 7)  # his Tuesday afternoon, over a week away
    marias = block_notices_book("13:00", tuesday, doctor=gustavo.nome, phone=MARIA, name="Maria Oliveira")
    joanas = Agendamento.objects.get(paciente_telefone=JOANA, medico=rafael)

    response = admin_client.post(
        reverse("admin:rag_agent_agendamento_changelist"),
        {"action": action, "_selected_action": [str(joanas.pk), str(marias.pk)], "post": "yes"},
    )

    assert response.status_code == 302
    assert _waitlist_told(fake_graph) == [MARIA]
    maria.refresh_from_db()
    assert maria.situacao == Situacao.AVISADO


@pytest.mark.usefixtures("waitlist_on", "rafael_full_now", "any_hour", "celery_inline")
@pytest.mark.django_db(transaction=True)  # the run starts inside her turn, which holds her session's lock
def test_a_patient_cancelling_another_doctors_appointment_keeps_her_place_on_a_list_with_a_time_free(
    rafael, fake_graph, caplog
):
    """Maria is first on Dr. Rafael's list when his only time opens (Joana cancelled by phone, no run yet); in the
    same minute Maria cancels her appointment with Dr. Gustavo through the bot. The run her cancellation starts
    cannot write to her conversation while her own turn holds it, and must not pass her over for Pedro: she is
    told by the next run, and Pedro waits behind her."""
    gustavo = Medico.objects.get(nome="Dr. Gustavo Pereira")
    maria = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=2))
    _join(rafael, PEDRO, "Pedro Lima", at=REF - dt.timedelta(days=1))
    today = timezone.localdate()
    tuesday = today + dt.timedelta(days=(1 - today.weekday()) % 7 + 7)
    block_notices_book("13:00", tuesday, doctor=gustavo.nome, phone=MARIA, name="Maria Oliveira")
    Agendamento.objects.filter(paciente_telefone=JOANA).update(status=Agendamento.Status.CANCELADO)

    _cancels(MARIA, "Maria Oliveira")

    assert PEDRO not in _waitlist_told(fake_graph)
    assert "the patient's conversation is busy" in caplog.text  # an INFO line, not an error with a traceback
    waitlist_notify()  # beat's next run
    assert _waitlist_told(fake_graph) == [MARIA]
    maria.refresh_from_db()
    assert maria.situacao == Situacao.AVISADO


def test_another_specialty_asked_at_the_no_slots_question_is_not_told_as_also_seeing_it(rafael):
    """The no-slots question remembers the full doctor for "Outro médico"; asking for another specialty instead
    must not present that specialty's only doctor as one who "também atende" it."""
    patient = Patient(MARIA, "Maria Oliveira")
    for text in ("quero marcar com o dr rafael", "sim", "particular"):
        patient.says(text)
    assert T.NO_SLOTS_AT_ALL.format(doctor="Dr. Rafael Teixeira") in patient.text, patient.text

    patient.says("então quero oftalmologia")  # its only doctor

    assert "também atende" not in patient.text, patient.text


# --- seventeenth session: a helper's probe of asking about and leaving the list in other words --------------------
@pytest.mark.parametrize(
    "question",
    ["to na lista de espera?", "e a lista de espera, alguma novidade?", "ainda to na lista de espera do dr rafael?"],
)
def test_asking_about_her_place_on_the_waitlist_says_which_list_she_is_on(rafael, question):
    _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says(question)  # patient expects "you're on Dr. Rafael's list"; was: "Não encontrei" or a new booking
    assert "Dr. Rafael Teixeira" in patient.text and not patient.session.flow, patient.text


@pytest.mark.parametrize(
    "message",
    [
        "me tira da lista",
        "já consegui marcar em outro lugar, pode tirar meu nome",
        "quero cancelar a lista de espera",
        "desisto da lista de espera",
    ],
)
def test_leaving_the_waitlist_in_other_words_takes_her_off(rafael, message):
    entry = _join(rafael, MARIA, "Maria Oliveira", at=REF - dt.timedelta(days=1))
    patient = Patient(MARIA, "Maria Oliveira")
    patient.says(message)  # patient expects to be off the list; was: "não entendi", a booking, or "diga *sair...*"
    entry.refresh_from_db()
    assert entry.situacao == ListaEspera.Situacao.SAIU, patient.text
