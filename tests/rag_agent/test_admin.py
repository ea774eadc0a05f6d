import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from rag_agent.models import Agendamento, HorarioTrabalho, ListaEspera
from rag_agent.selectors import appointments_to_remind, clinic_catalog, doctor_detail
from tests.rag_agent.conftest import next_weekday

pytestmark = pytest.mark.django_db


def _form_data(response) -> dict:
    """The change form's current values, as the browser would post them back."""
    data: dict = {}

    def put(form, name):
        value = form[name].value()
        key = form.add_prefix(name)
        if value is None:
            data[key] = ""
        elif isinstance(value, bool):
            if value:
                data[key] = "on"
        elif isinstance(value, list | tuple):
            data[key] = [str(v) for v in value]
        else:
            data[key] = str(value)

    form = response.context["adminform"].form
    for name in form.fields:
        put(form, name)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name in formset.management_form.fields:
            data[f"{formset.prefix}-{name}"] = formset.management_form[name].value()
        for inline_form in formset.forms:
            for name in inline_form.fields:
                put(inline_form, name)
    return data


def _change(staff_client, obj, edit):
    url = reverse(f"admin:rag_agent_{obj._meta.model_name}_change", args=[obj.pk])
    data = _form_data(staff_client.get(url))
    edit(data)
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    return response


def _catalog_doctor(doctor_id: int) -> dict:
    return next(m for m in clinic_catalog()["medicos"] if m["id"] == doctor_id)


def test_a_price_edited_in_the_admin_reaches_the_bot_at_once(staff_client, demo):
    assert _catalog_doctor(demo.ana.id)["preco_consulta"] == "350.00"  # warm cache
    _change(staff_client, demo.ana, lambda data: data.update(preco_consulta="375.50"))
    assert _catalog_doctor(demo.ana.id)["preco_consulta"] == "375.50"


def test_plans_and_hours_edited_in_the_admin_invalidate_the_doctor_entry(staff_client, demo):
    assert "Unimed" in doctor_detail(demo.ana.id)["convenios"]
    assert demo.unimed.id in _catalog_doctor(demo.ana.id)["convenio_ids"]
    monday_morning = HorarioTrabalho.objects.get(medico=demo.ana, dia_semana=0, hora_inicio=dt.time(8))

    def edit(data):
        data["convenios"] = [c for c in data["convenios"] if c != str(demo.unimed.id)]
        index = next(k.split("-")[1] for k, v in data.items() if k.endswith("-id") and v == str(monday_morning.pk))
        data[f"horarios-{index}-hora_fim"] = "11:00"

    _change(staff_client, demo.ana, edit)
    detail = doctor_detail(demo.ana.id)
    assert "Unimed" not in detail["convenios"]
    assert {"dia_semana": 0, "inicio": "08:00", "fim": "11:00"} in detail["horarios"]
    assert demo.unimed.id not in _catalog_doctor(demo.ana.id)["convenio_ids"]


def test_a_plan_deactivated_in_the_admin_disappears_from_the_catalogue(staff_client, demo):
    assert "Unimed" in {c["nome"] for c in clinic_catalog()["convenios"]}
    doctor_detail(demo.ana.id)
    _change(staff_client, demo.unimed, lambda data: data.pop("ativo"))
    assert "Unimed" not in {c["nome"] for c in clinic_catalog()["convenios"]}
    assert "Unimed" not in doctor_detail(demo.ana.id)["convenios"]


@pytest.mark.parametrize(
    ("model", "query", "expected"),
    [
        ("clinicainfo", "vida", "Clínica Vida Saudável"),
        ("especialidade", "clinica", "Clínica Geral"),
        ("convenio", "sulamerica", "SulAmérica"),
        ("convenio", "bradesco saude", "Bradesco Saúde"),
        ("medico", "CRM/SP 123456", "Dra. Ana Souza"),
        ("medico", "Fabio", None),
        ("exame", "raio-x de torax", "Raio-X de tórax"),
        ("agendamento", "Jose", "José da Silva"),
        ("agendamento", "dra ana", "José da Silva"),
    ],
)
def test_changelists_render_and_search_ignores_accents(staff_client, demo, model, query, expected):
    Agendamento.objects.create(
        medico=demo.ana,
        especialidade=demo.cardiologia,
        paciente_nome="José da Silva",
        paciente_telefone="5511922223333",
        data=dt.date(2031, 3, 3),
        hora=dt.time(9),
    )
    response = staff_client.get(reverse(f"admin:rag_agent_{model}_changelist"), {"q": query})
    assert response.status_code == 200
    results = list(response.context["cl"].result_list)
    if expected is None:
        assert results == []
    else:
        assert expected in [str(getattr(r, "paciente_nome", r)) for r in results]


def test_changelists_render_with_filters_and_the_date_hierarchy(staff_client, demo):
    for model, params in [
        ("medico", {"especialidades__id__exact": demo.cardiologia.id}),
        ("medico", {"convenios__id__exact": demo.unimed.id, "ativo__exact": "1"}),
        ("agendamento", {"status__exact": "agendado", "data__year": "2031"}),
        ("especialidade", {"ativa__exact": "1"}),
        ("exame", {"ativo__exact": "1"}),
    ]:
        response = staff_client.get(reverse(f"admin:rag_agent_{model}_changelist"), params)
        assert response.status_code == 200, (model, params)
    cardiologists = staff_client.get(
        reverse("admin:rag_agent_medico_changelist"), {"especialidades__id__exact": demo.cardiologia.id}
    )
    assert {m.nome for m in cardiologists.context["cl"].result_list} == {"Dra. Ana Souza", "Dr. Carlos Mendes"}


def test_bulk_actions_confirm_and_cancel_appointments(staff_client, demo):
    rows = [
        Agendamento.objects.create(
            medico=demo.ana,
            especialidade=demo.cardiologia,
            paciente_nome=f"Paciente {i}",
            paciente_telefone=f"551190000000{i}",
            data=dt.date(2031, 3, 3),
            hora=dt.time(8 + i),
        )
        for i in range(3)
    ]
    url = reverse("admin:rag_agent_agendamento_changelist")
    selected = [str(rows[0].pk), str(rows[1].pk)]
    staff_client.post(url, {"action": "confirmar_agendamentos", "_selected_action": selected})
    staff_client.post(url, {"action": "cancelar_agendamentos", "_selected_action": [str(rows[1].pk)]})
    statuses = [Agendamento.objects.get(pk=r.pk).status for r in rows]
    assert statuses == ["confirmado", "cancelado", "agendado"]


# --- what the staff enter passes the bot's own checks (tenth session) ---------------------------------------------
def _post_new_appointment(staff_client, demo, **changes):
    monday = next_weekday(0)
    data = {
        "medico": demo.ana.pk,
        "especialidade": demo.cardiologia.pk,
        "convenio": "",
        "paciente_nome": "Maria Oliveira",
        "paciente_telefone": "(11) 98765-4321",
        "data": monday.isoformat(),
        "hora": "09:00",
        "status": "agendado",
        **changes,
    }
    return staff_client.post(reverse("admin:rag_agent_agendamento_add"), data)


def _form_errors(response) -> str:
    assert response.status_code == 200, response  # the form again, with its errors
    form = response.context["adminform"].form
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def test_an_appointment_on_the_doctors_grid_is_saved_with_the_phone_as_whatsapp_writes_it(staff_client, demo):
    response = _post_new_appointment(staff_client, demo)
    assert response.status_code == 302
    assert Agendamento.objects.get().paciente_telefone == "5511987654321"


@pytest.mark.parametrize(
    ("case", "changes", "message"),
    [
        ("off the grid", {"hora": "09:15"}, "Horários dele nesse dia: 08:00, 08:30, 09:00"),
        ("with seconds", {"hora": "09:00:45"}, "não está na agenda do médico"),
        ("a weekday he does not work", {"data": next_weekday(1).isoformat()}, "não atende nesse dia"),
        ("a specialty she does not see", {"especialidade": "ortopedia"}, "médico na especialidade"),
        ("a plan she does not take", {"convenio": "amil"}, "convênio não é aceito"),
        ("in the past", {"data": next_weekday(0, weeks_ahead=-2).isoformat()}, "já passou"),
    ],
)
def test_an_appointment_the_bot_would_refuse_is_refused_with_the_reason(staff_client, demo, case, changes, message):
    named = {"ortopedia": demo.ortopedia.pk, "amil": demo.amil.pk}
    changes = {k: named.get(v, v) for k, v in changes.items()}

    response = _post_new_appointment(staff_client, demo, **changes)

    assert message in _form_errors(response)
    assert not Agendamento.objects.exists()


def test_a_double_booking_is_refused_in_words_not_by_the_constraint_name(staff_client, demo):
    assert _post_new_appointment(staff_client, demo).status_code == 302
    errors = _form_errors(_post_new_appointment(staff_client, demo, paciente_nome="Pedro Lima"))
    assert "não está mais disponível" in errors and "agendamento_unico" not in errors


def test_an_edit_that_does_not_move_a_past_appointment_is_not_blocked(staff_client, demo):
    past = Agendamento.objects.create(
        medico=demo.ana,
        especialidade=demo.cardiologia,
        paciente_nome="Maria Oliveira",
        paciente_telefone="5511987654321",
        data=next_weekday(0, weeks_ahead=-2),
        hora=dt.time(9, 15),  # from before the grid changed
    )
    _change(staff_client, past, lambda data: data.update(paciente_nome="Maria de Oliveira", status="realizado"))
    past.refresh_from_db()
    assert (past.paciente_nome, past.status) == ("Maria de Oliveira", "realizado")


def _add_shift(data: dict, *, weekday: int, start: str, end: str) -> None:
    index = int(data["horarios-TOTAL_FORMS"])
    data["horarios-TOTAL_FORMS"] = str(index + 1)
    data.update({f"horarios-{index}-dia_semana": str(weekday), f"horarios-{index}-hora_inicio": start,
                 f"horarios-{index}-hora_fim": end, f"horarios-{index}-medico": str(data.get("id", ""))})  # fmt: skip


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("08:15", "12:15", "Dois horários de segunda-feira se sobrepõem"),
        ("14:00", "14:10", "mais curto que uma consulta"),
        ("15:00", "14:00", "O fim do horário deve ser depois do início"),
    ],
)
def test_shifts_that_overlap_are_too_short_or_end_before_they_start_are_refused(staff_client, demo, start, end,
                                                                               message):  # fmt: skip
    url = reverse("admin:rag_agent_medico_change", args=[demo.ana.pk])
    data = _form_data(staff_client.get(url))
    ana_shifts = HorarioTrabalho.objects.filter(medico=demo.ana).values_list("dia_semana", "hora_inicio", "hora_fim")
    shifts = list(ana_shifts)
    _add_shift(data, weekday=0, start=start, end=end)

    response = staff_client.post(url, data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert (
        list(HorarioTrabalho.objects.filter(medico=demo.ana).values_list("dia_semana", "hora_inicio", "hora_fim"))
        == shifts
    )


def test_deactivating_a_doctor_with_appointments_warns_and_stops_their_reminders(staff_client, demo, settings):
    settings.WHATSAPP_REMINDER_TEMPLATE = "lembrete_consulta"
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    booked = Agendamento.objects.create(
        medico=demo.igor,
        especialidade=demo.cardiologia,
        paciente_nome="Maria Oliveira",
        paciente_telefone="5511987654321",
        data=tomorrow,
        hora=dt.time(10),
    )
    three_days_ago = timezone.now() - dt.timedelta(days=3)
    Agendamento.objects.filter(pk=booked.pk).update(criado_em=three_days_ago, atualizado_em=three_days_ago)
    url = reverse("admin:rag_agent_medico_change", args=[demo.igor.pk])
    data = _form_data(staff_client.get(url))
    data.pop("ativo")

    response = staff_client.post(url, data, follow=True)

    page = response.content.decode()
    assert "1 consulta(s) marcada(s) a partir de hoje" in page and f"medico__id__exact={demo.igor.pk}" in page
    due = appointments_to_remind(
        earliest=timezone.now(), latest=timezone.now() + dt.timedelta(days=2), changed_before=timezone.now()
    )
    assert booked.pk not in [a.pk for a in due]


def test_a_consultation_longer_than_four_hours_is_refused(staff_client, demo):
    url = reverse("admin:rag_agent_medico_change", args=[demo.ana.pk])
    data = _form_data(staff_client.get(url))
    data["duracao_consulta_minutos"] = "600"
    response = staff_client.post(url, data)
    assert response.status_code == 200 and "duracao_consulta_minutos" in response.context["adminform"].form.errors
    demo.ana.refresh_from_db()
    assert demo.ana.duracao_consulta_minutos == 30


def test_confirming_an_appointment_of_earlier_today_checks_nothing_about_its_slot(staff_client, demo):
    earlier = Agendamento.objects.create(
        medico=demo.igor,
        especialidade=demo.cardiologia,
        paciente_nome="Maria Oliveira",
        paciente_telefone="14155550100",
        data=timezone.localdate(),
        hora=dt.time(0, 5),
    )
    _change(staff_client, earlier, lambda data: data.update(status="confirmado"))
    earlier.refresh_from_db()
    assert earlier.status == "confirmado"
    assert earlier.paciente_telefone == "14155550100"  # a phone left as it was is not rewritten


def test_reopening_a_cancelled_appointment_whose_time_was_taken_is_refused(staff_client, demo):
    assert _post_new_appointment(staff_client, demo).status_code == 302
    first = Agendamento.objects.get()
    Agendamento.objects.filter(pk=first.pk).update(status="cancelado")
    assert _post_new_appointment(staff_client, demo, paciente_nome="Pedro Lima").status_code == 302
    url = reverse("admin:rag_agent_agendamento_change", args=[first.pk])
    data = _form_data(staff_client.get(url))
    data["status"] = "agendado"
    assert "não está mais disponível" in _form_errors(staff_client.post(url, data))


# --- waitlists (fifteenth session) --------------------------------------------------------------------------------
def _waiting(doctor, phone: str, situacao: str = "aguardando") -> ListaEspera:
    now = timezone.now()
    return ListaEspera.objects.create(
        medico=doctor, paciente_telefone=phone, situacao=situacao, criado_em=now, expira_em=now + dt.timedelta(days=30)
    )


def test_the_doctors_list_shows_how_many_wait_for_each(staff_client, demo):
    for phone in ("5511999990001", "5511999990002"):
        _waiting(demo.gustavo, phone)
    _waiting(demo.gustavo, "5511999990003", situacao="agendou")  # no longer waiting

    page = staff_client.get(reverse("admin:rag_agent_medico_changelist")).content.decode()

    link = reverse("admin:rag_agent_listaespera_changelist") + f"?medico__id__exact={demo.gustavo.pk}"
    assert f'<a href="{link}">2</a>' in page.replace("&amp;", "&")


def test_deactivating_a_doctor_with_patients_waiting_tells_the_staff_to_offer_them_another(staff_client, demo):
    _waiting(demo.igor, "5511999990001")
    url = reverse("admin:rag_agent_medico_change", args=[demo.igor.pk])
    data = _form_data(staff_client.get(url))
    data.pop("ativo")

    page = staff_client.post(url, data, follow=True).content.decode()

    assert "1 paciente(s) na" in page and "de Dr. Igor Santos não serão avisados de horários" in page
