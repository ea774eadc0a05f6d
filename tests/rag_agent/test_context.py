import datetime as dt

import pytest
from django.utils import timezone

from rag_agent.context import MAX_CONTEXT_CHARS, context_build, money
from rag_agent.demo import generate_large_clinic
from rag_agent.models import BloqueioAgenda, Medico
from rag_agent.selectors import clinic_catalog

pytestmark = pytest.mark.django_db


def test_money_uses_brazilian_format():
    assert money("350.00") == "R$ 350,00"
    assert money("1234.5") == "R$ 1.234,50"


def test_every_context_starts_with_the_clinic_in_one_line(clinic):
    context = context_build(text="bom dia")
    first = context.splitlines()[0]
    assert "Clínica Vida Saudável" in first
    assert "Av. Paulista, 1000" in first
    assert "Segunda a sexta, das 7h às 19h" in first


def test_a_greeting_gets_no_catalogue(clinic):
    context = context_build(text="bom dia, tudo bem?")
    for name in ("Ana Souza", "Cardiologia", "Unimed", "Hemograma"):
        assert name not in context


def test_an_exam_question_brings_its_price_and_preparation(clinic):
    context = context_build(text="quanto custa o hemograma? e a glicemia?")
    assert "Hemograma completo: R$ 35,00" in context
    assert "Não é necessário jejum." in context
    assert "Glicemia em jejum: R$ 25,00" in context
    assert "Eletrocardiograma" not in context


def test_a_plan_question_says_whether_it_is_accepted_and_by_whom(clinic):
    context = context_build(text="vocês aceitam unimed?", max_doctors=3)
    assert "Convênio Unimed: aceito" in context
    assert "e mais 4" in context  # seven doctors accept Unimed; three are listed


def test_a_plan_the_doctor_in_question_does_not_take_is_flagged(demo):
    context = context_build(text="a dra ana aceita amil?")
    assert "Dra. Ana Souza NÃO aceita o convênio Amil" in context
    assert "R$ 350,00" in context
    assert "seg, qua, sex 08:00-12:00 e 14:00-18:00" in context


def test_filled_slots_bring_the_doctor_in_question_when_the_message_names_nothing(demo):
    context = context_build(text="quanto custa?", slots={"medico_id": demo.carlos.id})
    assert "Dr. Carlos Mendes (Cardiologia)" in context
    assert "R$ 320,00" in context
    assert "Amil" in context


def test_given_entities_are_used_instead_of_matching_the_text(demo):
    context = context_build(text="cardiologia", entities={"especialidade_id": demo.ortopedia.id})
    assert "Especialidade Ortopedia" in context
    assert "Dr. Gustavo Pereira (R$ 330,00)" in context
    assert "Cardiologia" not in context


def test_a_specialty_with_a_plan_lists_only_the_doctors_who_take_it(demo):
    context = context_build(text="tem cardiologista que atende amil?")
    assert "Convênio Amil em Cardiologia: aceito por 1 médico(s)" in context
    assert "Dr. Carlos Mendes (R$ 320,00)" in context
    assert "Ana Souza" not in context


def test_policies_appear_only_when_asked(clinic):
    assert "Políticas" not in context_build(text="qual o endereço?")
    assert "24 horas" in context_build(text="posso cancelar a consulta?")
    assert "24 horas" in context_build(text="e se eu atrasar?", entities={"topico": "politicas"})


def test_a_warm_cache_builds_the_context_without_database_queries(demo, django_assert_num_queries):
    text = "a dra ana aceita unimed? quanto custa o eletro?"
    cold = context_build(text=text)
    with django_assert_num_queries(0):
        warm = context_build(text=text)
    assert warm == cold


MESSAGES = [
    "tem pediatra que aceita unimed?",
    "quero marcar cardiologia",
    "vocês aceitam bradesco?",
    "quanto custa a consulta com a dra ana? aceita sul america?",
    "quais especialidades vocês têm?",
]


def test_context_size_is_bounded_whatever_the_clinic_size(clinic):
    entities_for = {"quais especialidades vocês têm?": {"topico": "especialidades"}}
    demo_sizes = {t: len(context_build(text=t, entities=entities_for.get(t))) for t in MESSAGES}
    generate_large_clinic(doctors=200, specialties=40)
    assert len(clinic_catalog()["medicos"]) == 210  # the signals dropped the demo catalogue
    for text in MESSAGES:
        large = context_build(text=text, entities=entities_for.get(text))
        assert len(large) <= 1.5 * demo_sizes[text], (text, demo_sizes[text], len(large), large)
        assert len(large) < MAX_CONTEXT_CHARS


def test_the_llm_reads_the_clinics_closures_and_the_doctors_absences_but_not_their_reasons(clinic):
    soon, later = timezone.localdate() + dt.timedelta(days=3), timezone.localdate() + dt.timedelta(days=400)
    BloqueioAgenda.objects.create(data_inicio=soon, data_fim=soon, motivo="dedetização")
    BloqueioAgenda.objects.create(medico=Medico.objects.get(nome="Dra. Ana Souza"), data_inicio=soon, data_fim=soon)
    BloqueioAgenda.objects.create(data_inicio=later, data_fim=later)  # past the booking horizon: not said

    context = context_build(text="a dra ana atende essa semana?")

    assert context.splitlines()[0].endswith(f"Fechada em {soon:%d/%m}.")
    assert f"Não atende em {soon:%d/%m}." in context and "dedetiza" not in context
    assert f"{later:%d/%m}" not in context
