import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from rag_agent.models import Agendamento, HorarioTrabalho
from rag_agent.selectors import clinic_catalog, doctor_detail

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
    user = get_user_model().objects.create_superuser("recepcao", "recepcao@example.com", "senha-forte-123")
    client.force_login(user)
    return client


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


def _change(staff_client, obj, edit) -> None:
    url = reverse(f"admin:rag_agent_{obj._meta.model_name}_change", args=[obj.pk])
    data = _form_data(staff_client.get(url))
    edit(data)
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response


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
