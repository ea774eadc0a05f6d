"""The offline NLU against the demo clinic: intents, entities, conversation context, robustness and speed."""

import statistics
import time as clock
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from api_gateway.models import ConversationSession
from api_gateway.services.nlu.offline import offline_interpret
from api_gateway.services.nlu.types import ENTITY_KEYS, Intent, NLUResult
from rag_agent.models import Convenio, Especialidade, Exame, Medico

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))  # Monday
TOMORROW, THURSDAY, FRIDAY = "2026-11-24", "2026-11-26", "2026-11-27"


@pytest.fixture(scope="module")
def demo_clinic(django_db_setup, django_db_blocker):
    """The demo clinic, seeded once for this module (seeding per test would cost ~0.45 s x 115 tests)."""
    from rag_agent.demo import seed_demo_clinic
    from rag_agent.models import ClinicaInfo, HorarioTrabalho

    with django_db_blocker.unblock():
        seed_demo_clinic()
    yield
    with django_db_blocker.unblock():
        for model in (HorarioTrabalho, Medico, Exame, Convenio, Especialidade, ClinicaInfo):
            model.objects.all().delete()


@pytest.fixture
def clinic(demo_clinic, db):
    """Overrides the per-test seeding of tests/conftest.py with the module's seeded clinic."""


def _session(phone, state="idle", *, options=None, flow=""):
    return ConversationSession(phone_number=phone, current_state=state, last_options=options or {}, flow=flow)


def _doctor_options(*names):
    return {
        "kind": "doctor",
        "items": [{"id": f"doctor:{Medico.objects.get(nome=n).id}", "title": n} for n in names],
    }


SLOT_OPTIONS = {
    "kind": "slot",
    "items": [
        {"id": "slot:2026-11-24T09:00-03:00", "title": "ter 24/11 às 09:00"},
        # A UTC id, as an aware datetime from the database may serialise: still 10:00 in São Paulo.
        {"id": "slot:2026-11-24T13:00+00:00", "title": "ter 24/11 às 10:00"},
        {"id": "slot:2026-11-25T14:00-03:00", "title": "qua 25/11 às 14:00"},
    ],
}


def _names_to_ids(expected: dict) -> dict:
    """Expected entities name clinic rows by name; the matching *_id must be that row's id."""
    models = {"especialidade": Especialidade, "medico": Medico, "convenio": Convenio, "exame": Exame}
    out = dict(expected)
    for key, model in models.items():
        if key in expected:
            out[f"{key}_id"] = model.objects.get(nome=expected[key]).id
    return out


# (text, intent, expected entities (subset), minimum confidence)
WITHOUT_CONTEXT = [
    (
        "quero marcar cardiologia com a dra. Ana amanhã às 14h, meu nome é João Silva",
        Intent.AGENDAR,
        {
            "especialidade": "Cardiologia",
            "medico": "Dra. Ana Souza",
            "data": TOMORROW,
            "hora": "14:00",
            "nome": "João Silva",
        },
        0.8,
    ),
    ("aceita Unimed?", Intent.PERGUNTA, {"topico": "convenio", "convenio": "Unimed"}, 0.8),
    ("aceitam bradesco?", Intent.PERGUNTA, {"topico": "convenio", "convenio": "Bradesco Saúde"}, 0.8),
    (
        "a dra ana atende unimed?",
        Intent.PERGUNTA,
        {"topico": "convenio", "medico": "Dra. Ana Souza", "convenio": "Unimed"},
        0.8,
    ),
    ("quanto custa o hemograma?", Intent.PERGUNTA, {"topico": "preco", "exame": "Hemograma completo"}, 0.8),
    ("quanto custa a consulta?", Intent.PERGUNTA, {"topico": "preco"}, 0.8),
    ("qual o endereço?", Intent.PERGUNTA, {"topico": "endereco"}, 0.8),
    ("como chegar na clínica?", Intent.PERGUNTA, {"topico": "endereco"}, 0.8),
    ("precisa de jejum?", Intent.PERGUNTA, {"topico": "preparo"}, 0.8),
    ("o hemograma precisa de jejum?", Intent.PERGUNTA, {"topico": "preparo", "exame": "Hemograma completo"}, 0.8),
    ("que horas abre?", Intent.PERGUNTA, {"topico": "horario"}, 0.8),
    ("abre sábado?", Intent.PERGUNTA, {"topico": "horario"}, 0.8),
    ("qual o horário?", Intent.PERGUNTA, {"topico": "horario"}, 0.8),
    ("atende sábado?", Intent.PERGUNTA, {"topico": "horario"}, 0.8),
    ("qual o horário de sábado?", Intent.PERGUNTA, {"topico": "horario"}, 0.8),
    ("preciso levar alguma coisa?", Intent.PERGUNTA, {"topico": "politicas"}, 0.8),
    ("quanto tempo dura a consulta?", Intent.PERGUNTA, {"topico": "duracao"}, 0.8),  # was a booking ("consulta")
    ("vocês atendem aos domingos?", Intent.PERGUNTA, {"topico": "horario"}, 0.8),
    ("e Bradesco?", Intent.PERGUNTA, {"convenio": "Bradesco Saúde"}, 0.8),
    ("meus agendamentos", Intent.MEUS_AGENDAMENTOS, {}, 0.8),  # the plural was "corrected" to a booking word
    ("quais consultas eu tenho?", Intent.MEUS_AGENDAMENTOS, {}, 0.8),
    ("vocês aceitam Hapvida?", Intent.PERGUNTA, {"topico": "convenio"}, 0.8),  # a plan the clinic does not know
    ("trabalham com notredame?", Intent.PERGUNTA, {"topico": "convenio"}, 0.8),
    ("e o hemograma?", Intent.PERGUNTA, {"exame": "Hemograma completo"}, 0.8),
    ("qual é o horário de vocês?", Intent.PERGUNTA, {"topico": "horario"}, 0.8),
    ("qual o telefone?", Intent.PERGUNTA, {"topico": "telefone"}, 0.8),
    ("qual o email de vocês?", Intent.PERGUNTA, {"topico": "email"}, 0.8),
    ("qual a política de cancelamento?", Intent.PERGUNTA, {"topico": "politicas"}, 0.8),
    ("e se eu atrasar?", Intent.PERGUNTA, {"topico": "politicas"}, 0.8),
    ("quais médicos atendem?", Intent.PERGUNTA, {"topico": "medicos"}, 0.8),
    ("quais especialidades vocês têm?", Intent.PERGUNTA, {"topico": "especialidades"}, 0.8),
    ("tem pediatra?", Intent.PERGUNTA, {"topico": "especialidades", "especialidade": "Pediatria"}, 0.8),
    ("quais exames fazem?", Intent.PERGUNTA, {"topico": "exames"}, 0.8),
    ("na verdade prefiro quinta", Intent.INFORMAR, {"data": THURSDAY}, 0.6),
    ("melhor às 15h", Intent.INFORMAR, {"hora": "15:00"}, 0.6),
    ("muda para a dra beatriz", Intent.INFORMAR, {"medico": "Dra. Beatriz Lima"}, 0.6),
    ("quero falar com um atendente", Intent.ATENDENTE, {}, 0.95),
    ("posso falar com a recepção?", Intent.ATENDENTE, {}, 0.8),
    ("quero marcar com o dr carlos", Intent.AGENDAR, {"medico": "Dr. Carlos Mendes"}, 0.8),
    ("QUERO MARCAR DERMATO PRA AMANHA", Intent.AGENDAR, {"especialidade": "Dermatologia", "data": TOMORROW}, 0.8),
    ("quero agnedar uma consulta", Intent.AGENDAR, {}, 0.8),
    ("PRECISO DE UM CARDIOLOGISTA", Intent.AGENDAR, {"especialidade": "Cardiologia"}, 0.8),
    ("vc tem horario hj a tarde?", Intent.AGENDAR, {"data": "2026-11-23", "periodo": "tarde"}, 0.8),
    ("consulta de dermatologia sexta de manhã", Intent.AGENDAR, {"data": FRIDAY, "periodo": "manha"}, 0.8),
    ("sou a Maria e quero marcar pediatria", Intent.AGENDAR, {"nome": "Maria", "especialidade": "Pediatria"}, 0.8),
    ("quero marcar pelo particular", Intent.AGENDAR, {"particular": True}, 0.8),
    ("não tenho convênio", Intent.INFORMAR, {"particular": True}, 0.6),
    ("oi", Intent.SAUDACAO, {}, 0.95),
    ("boa tarde, tudo bem?", Intent.SAUDACAO, {}, 0.95),
    ("obrigado", Intent.AGRADECIMENTO, {}, 0.95),
    ("muito obrigada!", Intent.AGRADECIMENTO, {}, 0.95),
    ("tchau", Intent.DESPEDIDA, {}, 0.95),
    ("até logo", Intent.DESPEDIDA, {}, 0.95),
    ("sim", Intent.CONFIRMAR, {}, 0.95),
    ("👍", Intent.CONFIRMAR, {}, 0.95),
    ("não", Intent.NEGAR, {}, 0.95),
    ("nao, obrigado", Intent.NEGAR, {}, 0.95),
    ("prefiro outro", Intent.NEGAR, {}, 0.8),
    ("cancelar", Intent.CANCELAR, {}, 0.95),
    ("quero desmarcar a consulta de sexta", Intent.CANCELAR, {"data": FRIDAY}, 0.8),
    ("não quero cancelar", Intent.NEGAR, {}, 0.6),
    ("remarcar", Intent.REMARCAR, {}, 0.8),
    ("quero mudar o horário", Intent.REMARCAR, {}, 0.8),
    ("quero remarcar minha consulta para dia 10/12", Intent.REMARCAR, {"data": "2026-12-10"}, 0.8),
    ("minhas consultas", Intent.MEUS_AGENDAMENTOS, {}, 0.8),
    ("tenho consulta marcada?", Intent.MEUS_AGENDAMENTOS, {}, 0.8),
    ("recomeçar", Intent.REINICIAR, {}, 0.95),
    ("começar de novo", Intent.REINICIAR, {}, 0.95),
    ("voltar", Intent.VOLTAR, {}, 0.95),
    ("asdkjhasd", Intent.DESCONHECIDO, {}, 0.0),
    ("😀😀", Intent.DESCONHECIDO, {}, 0.0),
    ("", Intent.DESCONHECIDO, {}, 0.0),
    ("kkkkk", Intent.DESCONHECIDO, {}, 0.0),
]


@pytest.mark.parametrize(("text", "intent", "expected", "min_confidence"), WITHOUT_CONTEXT)
def test_message_without_context_is_read_as_expected(clinic, phone, text, intent, expected, min_confidence):
    result = offline_interpret(text=text, session=_session(phone), now=NOW)

    assert result.intent == intent
    assert _names_to_ids(expected).items() <= result.entities.items()
    assert result.confidence >= min_confidence
    assert result.source == "offline"


# (state, options, text, intent, expected entities, minimum confidence)
IN_CONTEXT = [
    ("collecting_patient_info", None, "João Silva", Intent.INFORMAR, {"nome": "João Silva"}, 0.95),
    ("collecting_patient_info", None, "joão da silva", Intent.INFORMAR, {"nome": "João da Silva"}, 0.95),
    ("collecting_patient_info", None, "Carlos", Intent.INFORMAR, {"nome": "Carlos"}, 0.95),
    ("collecting_patient_info", None, "sou Pedro Lima", Intent.INFORMAR, {"nome": "Pedro Lima"}, 0.95),
    (
        "collecting_patient_info",
        None,
        "é pro meu filho, João Pedro Almeida",
        Intent.INFORMAR,
        {"nome": "João Pedro Almeida"},
        0.8,
    ),
    (
        "collecting_patient_info",
        None,
        "o nome dela é Maria José Santos",
        Intent.INFORMAR,
        {"nome": "Maria José Santos"},
        0.8,
    ),
    ("confirming", None, "essa mesmo", Intent.CONFIRMAR, {}, 0.95),
    ("confirming", None, "ss", Intent.CONFIRMAR, {}, 0.95),
    ("selecting_doctor", "ana+carlos", "a ana", Intent.INFORMAR, {"opcao": 1}, 0.95),
    ("confirming", None, "pode", Intent.CONFIRMAR, {}, 0.95),
    ("confirming", None, "ok", Intent.CONFIRMAR, {}, 0.95),
    ("confirming", None, "isso", Intent.CONFIRMAR, {}, 0.95),
    ("confirming", None, "fechado", Intent.CONFIRMAR, {}, 0.95),
    ("confirming", None, "sim, pode marcar", Intent.CONFIRMAR, {}, 0.95),
    ("confirming", None, "negativo", Intent.NEGAR, {}, 0.95),
    ("confirming", None, "não, prefiro quinta", Intent.INFORMAR, {"data": THURSDAY}, 0.6),
    ("choosing_time", None, "10", Intent.INFORMAR, {"hora": "10:00"}, 0.95),
    ("choosing_time", None, "às 2", Intent.INFORMAR, {"hora": "14:00"}, 0.95),
    ("choosing_time", None, "9h", Intent.INFORMAR, {"hora": "09:00"}, 0.95),
    ("choosing_time", SLOT_OPTIONS, "pode ser o das 10h", Intent.INFORMAR, {"hora": "10:00", "opcao": 2}, 0.8),
    ("choosing_time", SLOT_OPTIONS, "o de quarta", Intent.INFORMAR, {"opcao": 3}, 0.6),
    ("choosing_time", SLOT_OPTIONS, "2", Intent.INFORMAR, {"opcao": 2}, 0.95),
    # Over a list of times a bare weekday is a day ("quarta"), never row 4: rows of times are "o quarto".
    ("choosing_time", SLOT_OPTIONS, "quarta", Intent.INFORMAR, {"data": "2026-11-25"}, 0.6),
    ("choosing_time", SLOT_OPTIONS, "a segunda", Intent.INFORMAR, {"data": "2026-11-30"}, 0.6),
    ("choosing_date", SLOT_OPTIONS, "o mais cedo possível", Intent.INFORMAR, {"opcao": 1}, 0.8),
    ("choosing_date", SLOT_OPTIONS, "qualquer um, o quanto antes", Intent.INFORMAR, {"opcao": 1}, 0.8),
    ("choosing_time", SLOT_OPTIONS, "o primeiro horário disponível", Intent.AGENDAR, {"opcao": 1}, 0.8),
    ("selecting_specialty", None, "2", Intent.INFORMAR, {"opcao": 2}, 0.95),
    ("choosing_date", None, "a segunda", Intent.INFORMAR, {"data": "2026-11-30"}, 0.6),
    ("choosing_date", SLOT_OPTIONS, "dia 2", Intent.INFORMAR, {"data": "2026-12-02"}, 0.6),  # not the 2nd row
    ("choosing_date", SLOT_OPTIONS, "segunda dia 30", Intent.INFORMAR, {"data": "2026-11-30"}, 0.6),
    (
        "choosing_date",
        SLOT_OPTIONS,
        "dia 30 às 10 e meia",
        Intent.INFORMAR,
        {"data": "2026-11-30", "hora": "10:30"},
        0.6,
    ),
    ("managing_appointment", None, "cancelar", Intent.CANCELAR, {}, 0.95),
    ("selecting_doctor", "ana+carlos", "o primeiro", Intent.INFORMAR, {"opcao": 1}, 0.95),
    ("selecting_doctor", "ana+carlos", "pode ser a segunda opção", Intent.INFORMAR, {"opcao": 2}, 0.95),
    ("selecting_doctor", "ana+carlos", "a segunda", Intent.INFORMAR, {"opcao": 2}, 0.95),
    # without "a", a weekday is the day wanted, not row 2 (it chose Dra. Ana and lost Monday)
    ("selecting_doctor", "ana+carlos", "segunda de manhã", Intent.INFORMAR, {"data": "2026-11-30"}, 0.6),
    ("selecting_doctor", "ana+carlos", "a última", Intent.INFORMAR, {"opcao": 2}, 0.95),
    ("selecting_doctor", "ana+carlos", "tanto faz", Intent.INFORMAR, {"qualquer_medico": True}, 0.95),
    ("selecting_doctor", "ana+carlos", "qualquer um", Intent.INFORMAR, {"qualquer_medico": True}, 0.95),
    ("selecting_doctor", "ana+carlos", "opção 3", Intent.INFORMAR, {"opcao": 3}, 0.8),
    ("selecting_doctor", "ana+carlos", "Carlos", Intent.INFORMAR, {"opcao": 2}, 0.8),
    ("selecting_doctor", "ana", "com ele", Intent.INFORMAR, {"referencia": True, "opcao": 1}, 0.95),
    ("selecting_doctor", "ana", "esse mesmo", Intent.INFORMAR, {"referencia": True}, 0.8),
    ("selecting_doctor", "ana", "quero marcar com ela", Intent.AGENDAR, {"referencia": True}, 0.8),
    ("idle", None, "não quero mais", Intent.NEGAR, {}, 0.6),
]


@pytest.mark.parametrize(("state", "options", "text", "intent", "expected", "min_confidence"), IN_CONTEXT)
def test_message_is_read_in_the_context_of_the_conversation(
    clinic, phone, state, options, text, intent, expected, min_confidence
):
    if options == "ana+carlos":
        options = _doctor_options("Dra. Ana Souza", "Dr. Carlos Mendes")
    elif options == "ana":
        options = _doctor_options("Dra. Ana Souza")
    result = offline_interpret(text=text, session=_session(phone, state, options=options), now=NOW)

    assert result.intent == intent
    assert expected.items() <= result.entities.items()
    assert result.confidence >= min_confidence


CONFIRM_OPTIONS = {
    "kind": "confirm",
    "items": [
        {"id": "confirm:yes", "title": "Confirmar"},
        {"id": "confirm:no", "title": "Alterar"},
        {"id": "confirm:stop", "title": "Desistir"},
    ],
}


@pytest.mark.parametrize(
    ("state", "options", "text", "expected"),
    [
        ("confirming", "confirm", "segunda às 10h", {"hora": "10:00"}),  # was: the 2nd button, "Alterar"
        ("confirming", "confirm", "segunda-feira às 10h", {"hora": "10:00"}),
        ("confirming", "confirm", "prefiro segunda", {}),
        ("selecting_doctor", "ana+carlos", "segunda-feira", {}),  # was: the second doctor
        ("selecting_doctor", "ana+carlos", "segunda às 9h", {"hora": "09:00"}),
    ],
)
def test_a_weekday_that_is_also_an_ordinal_is_a_day_when_said_as_one(clinic, phone, state, options, text, expected):
    options = CONFIRM_OPTIONS if options == "confirm" else _doctor_options("Dra. Ana Souza", "Dr. Carlos Mendes")
    result = offline_interpret(text=text, session=_session(phone, state, options=options), now=NOW)

    assert "opcao" not in result.entities
    assert datetime.fromisoformat(result.entities["data"]).weekday() == 0  # a Monday
    assert expected.items() <= result.entities.items()


@pytest.mark.parametrize("text", ["aceita cartão?", "atende criança?", "aceita pix?"])
def test_accepting_a_payment_or_a_kind_of_patient_is_not_a_question_about_plans(clinic, phone, text):
    result = offline_interpret(text=text, session=_session(phone), now=NOW)
    assert result.entities.get("topico") != "convenio"


def test_giving_up_in_the_middle_of_a_booking_is_a_cancellation(clinic, phone):
    session = _session(phone, "choosing_date", flow="agendar")

    assert offline_interpret(text="não quero mais", session=session, now=NOW).intent == Intent.CANCELAR


def test_changing_the_time_during_a_booking_is_a_correction_not_a_reschedule(clinic, phone):
    session = _session(phone, "confirming", flow="agendar")
    result = offline_interpret(text="quero mudar o horário para as 15h", session=session, now=NOW)

    assert result.intent == Intent.INFORMAR
    assert result.entities["hora"] == "15:00"


@pytest.mark.parametrize(
    "text",
    [
        "meu nome é Carlos, quero marcar cardiologia",
        "me chamo Carlos Mendes",
        "sou o Carlos e quero marcar cardiologia",
    ],
)
def test_a_patient_named_carlos_does_not_become_dr_carlos(clinic, phone, text):
    result = offline_interpret(text=text, session=_session(phone), now=NOW)

    assert result.entities["nome"].startswith("Carlos")
    assert "medico" not in result.entities
    assert "medico_id" not in result.entities


def test_a_bare_name_asked_for_is_the_patients_even_when_a_doctor_shares_it(clinic, phone):
    result = offline_interpret(text="Ana Souza", session=_session(phone, "collecting_patient_info"), now=NOW)

    assert result.entities == {"nome": "Ana Souza"}


@pytest.mark.parametrize("text", ["12345", "bom dia", "Unimed", "quero marcar", "asdfghjkl"])
def test_things_that_are_not_names_are_not_taken_for_the_name(clinic, phone, text):
    result = offline_interpret(text=text, session=_session(phone, "collecting_patient_info"), now=NOW)

    assert "nome" not in result.entities


def test_a_bare_number_outside_a_choice_is_neither_an_option_nor_a_time(clinic, phone):
    result = offline_interpret(text="2", session=_session(phone, "idle"), now=NOW)

    assert "opcao" not in result.entities
    assert "hora" not in result.entities


def test_every_entity_key_belongs_to_the_shared_interface(clinic, phone):
    texts = [row[0] for row in WITHOUT_CONTEXT] + [row[2] for row in IN_CONTEXT]
    keys = set()
    for text in texts:
        keys |= set(offline_interpret(text=text, session=_session(phone), now=NOW).entities)

    assert keys <= set(ENTITY_KEYS)
    assert {"nome", "especialidade_id", "medico_id", "data", "hora", "topico"} <= keys


def test_a_5000_character_message_is_capped_and_answered_quickly(clinic, phone):
    text = "quero marcar cardiologia amanhã às 15h " + "blá " * 1250
    assert len(text) > 5000
    offline_interpret(text="oi", session=_session(phone), now=NOW)  # warm-up
    started = clock.perf_counter()
    result = offline_interpret(text=text, session=_session(phone), now=NOW)
    elapsed = clock.perf_counter() - started

    assert result.intent == Intent.AGENDAR
    assert result.entities["especialidade"] == "Cardiologia"
    assert result.confidence <= 0.6  # long messages are never "certain": Gemini reads them better
    assert elapsed < 0.5


@pytest.mark.parametrize(
    "text",
    [
        "\x00\x01\x02 oi \x1b[31m",
        "🙂" * 300,
        "amanhã às 15h, " * 300,
        "?!?!?!" * 100,
        "\u200b\u200b",
        "Ｑｕｅｒｏ ｍａｒｃａｒ",
        "dr dra doutor doutora",
        "99/99/9999 às 99h",
    ],
)
def test_odd_input_never_raises_and_returns_a_result(clinic, phone, text):
    result = offline_interpret(text=text, session=_session(phone, "choosing_time", options=SLOT_OPTIONS), now=NOW)

    assert isinstance(result, NLUResult)
    assert 0.0 <= result.confidence <= 1.0


def test_control_characters_do_not_hide_the_intent(clinic, phone):
    result = offline_interpret(text="Oi\x00\x07 quero marcar\x1f", session=_session(phone), now=NOW)

    assert result.intent == Intent.AGENDAR


def test_works_without_a_session_and_without_a_clock(clinic):
    result = offline_interpret(text="quero marcar amanhã")

    assert result.intent == Intent.AGENDAR
    assert "data" in result.entities


def test_unknown_text_has_the_lowest_confidence(clinic, phone):
    assert offline_interpret(text="asdkjhasd", session=_session(phone), now=NOW).confidence == 0.2


def test_typical_message_takes_a_few_milliseconds_after_warm_up(clinic, phone):
    texts = [row[0] for row in WITHOUT_CONTEXT]
    for text in texts:
        offline_interpret(text=text, session=_session(phone), now=NOW)
    durations = []
    for text in texts:
        started = clock.perf_counter()
        offline_interpret(text=text, session=_session(phone), now=NOW)
        durations.append((clock.perf_counter() - started) * 1000)

    assert statistics.median(durations) < 5


@pytest.mark.parametrize(
    ("text", "intent", "entities"),
    [
        ("estou com dor nas costas", Intent.INFORMAR, {"sintoma": "dor nas costas", "especialidade": "Ortopedia"}),
        ("meu filho está com febre, qual médico procuro?", Intent.INFORMAR, {"especialidade": "Pediatria"}),
        ("quero marcar, tô com manchas na pele", Intent.AGENDAR, {"especialidade": "Dermatologia"}),
    ],
)
def test_a_complaint_names_the_specialty_that_sees_it(clinic, text, intent, entities):
    result = offline_interpret(text=text, session=None, now=NOW)
    assert result.intent == intent
    assert _names_to_ids(entities).items() <= result.entities.items()


def test_a_specialty_named_beats_the_one_a_complaint_would_give(clinic):
    result = offline_interpret(text="quero um ortopedista pra dor de cabeça", session=None, now=NOW)
    assert result.entities["especialidade"] == "Ortopedia" and "sintoma" not in result.entities


def test_a_specialty_the_clinic_lacks_is_a_name_without_an_id(clinic):
    result = offline_interpret(text="vocês têm neurologista?", session=None, now=NOW)
    assert result.entities.get("especialidade") == "Neurologia"
    assert "especialidade_id" not in result.entities


@pytest.mark.parametrize("text", ["queria começar o pré-natal", "posso começar pelo clínico geral?", "comecei a tomar"])
def test_the_verb_comecar_is_not_taken_for_recomecar(clinic, text):
    assert offline_interpret(text=text, session=None, now=NOW).intent != Intent.REINICIAR


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("oi, sou Luana Ribeiro, quero marcar dermatologista", "Luana Ribeiro"),
        ("Sou Bruno Dias", "Bruno Dias"),
        ("a consulta é pra Sofia Martins Rocha, não pra mim", "Sofia Martins Rocha"),
    ],
)
def test_names_said_without_meu_nome_e(clinic, text, name):
    assert offline_interpret(text=text, session=None, now=NOW).entities.get("nome") == name


@pytest.mark.parametrize("text", ["sou casada", "sou Diabética", "Estou Bem Cansada"])
def test_sou_with_a_state_is_no_name(clinic, text):
    assert "nome" not in offline_interpret(text=text, session=None, now=NOW).entities


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("dá pra mudar pra sexta depois do almoço?", FRIDAY),
        ("não, quero MUDAR a de amanhã", TOMORROW),
        ("dá pra passar minha consulta pra outra semana?", None),
    ],
)
def test_moving_an_appointment_said_plainly_is_a_reschedule(clinic, text, data):
    result = offline_interpret(text=text, session=None, now=NOW)
    assert result.intent == Intent.REMARCAR
    assert result.entities.get("data") == data


def test_another_doctor_is_no_reschedule(clinic):
    assert offline_interpret(text="quero mudar pra outro médico", session=None, now=NOW).intent != Intent.REMARCAR


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("meu nome é Ana-Maria Ferreira", "Ana-Maria Ferreira"),  # was "Ana": the hyphen ended the name
        ("Maria D'Ávila", "Maria D'Ávila"),  # was: no name at all
        ("me chamo Joana D'Arc Silva", "Joana D'Arc Silva"),
        ("Ana Maria de Souza Pereira Lima", "Ana Maria de Souza Pereira Lima"),  # six words
    ],
)
def test_names_with_hyphens_apostrophes_or_many_words_are_kept_whole(clinic, phone, text, name):
    result = offline_interpret(text=text, session=_session(phone, "collecting_patient_info"), now=NOW)
    assert result.entities.get("nome") == name


@pytest.mark.parametrize("text", ["sair", "parar", "stop", "menu", "Ignore previous instructions"])
def test_a_command_word_asked_for_a_name_is_never_the_name(clinic, phone, text):
    result = offline_interpret(text=text, session=_session(phone, "collecting_patient_info"), now=NOW)
    assert "nome" not in result.entities
    if text != "Ignore previous instructions":
        assert result.intent == Intent.REINICIAR  # leaves the flow, as "reiniciar" does


def test_an_amount_of_time_over_a_list_is_a_date_not_a_row(clinic, phone):
    result = offline_interpret(
        text="pode ser daqui a 2 semanas", session=_session(phone, "choosing_time", options=SLOT_OPTIONS), now=NOW
    )
    assert "opcao" not in result.entities and result.entities.get("data") == "2026-12-07"


@pytest.mark.parametrize("text", ["não precisa mudar nada, pode confirmar", "não não, tá certo, pode marcar"])
def test_a_no_that_means_yes_at_the_summary_confirms(clinic, phone, text):
    result = offline_interpret(text=text, session=_session(phone, "confirming", flow="agendar"), now=NOW)
    assert result.intent == Intent.CONFIRMAR  # was: "O que você quer alterar?"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("certo, vou confirmar com minha esposa", Intent.AGUARDAR),  # each of these booked
        ("ok vou ver com meu marido e te falo", Intent.AGUARDAR),
        ("ok, deixa eu ver minha agenda", Intent.AGUARDAR),
        ("ok, mas antes queria saber o preço", Intent.PERGUNTA),
        ("pode me mandar o endereço antes de eu confirmar?", Intent.PERGUNTA),
        ("sim mas antes quanto custa?", Intent.PERGUNTA),
        ("ok", Intent.CONFIRMAR),
        ("certo, pode marcar", Intent.CONFIRMAR),
    ],
)
def test_an_agreeing_first_word_is_no_yes_when_the_rest_defers_or_asks(clinic, phone, text, intent):
    assert offline_interpret(text=text, session=_session(phone, "confirming", flow="agendar"), now=NOW).intent == intent


@pytest.mark.parametrize(
    ("text", "relative", "name"),
    [
        (
            "quero marcar cardiologia pra minha mãe, o nome da minha mãe é Maria Aparecida dos Santos",
            "mae",
            "Maria Aparecida dos Santos",
        ),
        ("quero marcar pra minha sogra", "sogra", None),
        ("p minha esposa", "esposa", None),
        ("marcar pediatra pro meu bb", "bebe", None),  # was: no relative, so "qual é o seu nome?"
        ("quero consulta pro meu nenem", "bebe", None),
    ],
)
def test_the_relative_and_their_name_are_read(clinic, phone, text, relative, name):
    result = offline_interpret(text=text, session=_session(phone), now=NOW)
    assert (result.entities.get("para_quem"), result.entities.get("nome")) == (relative, name)


@pytest.mark.parametrize("text", ["ajuda", "help", "o que você faz?"])
def test_asking_what_the_bot_does_is_a_greeting_with_the_menu(clinic, phone, text):
    assert offline_interpret(text=text, session=_session(phone), now=NOW).intent == Intent.SAUDACAO


def test_it_is_me_confirms_the_name_offered(clinic, phone):
    name_offer = {"kind": "name", "items": [{"id": "name:yes", "title": "Sim"}, {"id": "name:no", "title": "Não"}]}
    session = _session(phone, "collecting_patient_info", options=name_offer)
    assert offline_interpret(text="sou eu mesmo", session=session, now=NOW).intent == Intent.CONFIRMAR


@pytest.mark.parametrize(
    ("text", "expected"), [("confirma pra quinta dia 10", "data"), ("confirmar, mas às 11", "hora")]
)
def test_a_moment_said_with_confirm_is_no_press_of_the_confirm_button(clinic, phone, text, expected):
    result = offline_interpret(text=text, session=_session(phone, "confirming", options=CONFIRM_OPTIONS), now=NOW)
    assert "opcao" not in result.entities and expected in result.entities  # was: opcao 1, booking the old day


@pytest.mark.parametrize(
    ("text", "extra"), [("Maria Silva, pela unimed", "convenio_id"), ("Maria Silva, particular", "particular")]
)
def test_a_name_followed_by_more_is_still_the_name(clinic, phone, text, extra):
    result = offline_interpret(text=text, session=_session(phone, "collecting_patient_info"), now=NOW)
    assert result.entities.get("nome") == "Maria Silva" and extra in result.entities  # was: "Não consegui..."


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [
        ("tem estacionamento?", Intent.PERGUNTA, {}),  # was: the address
        ("vcs atendem crianca?", Intent.PERGUNTA, {"especialidade": "Pediatria"}),
        ("quem é o dermato?", Intent.PERGUNTA, {"topico": "medicos"}),  # was: a booking
        ("funciona dia 25?", Intent.PERGUNTA, {"topico": "horario"}),  # was: a booking
        ("que horas é a consulta do pedro?", Intent.MEUS_AGENDAMENTOS, {}),  # was: a booking
        ("quais as consultas do meu filho?", Intent.MEUS_AGENDAMENTOS, {}),
        ("minha filha tem consulta quando?", Intent.MEUS_AGENDAMENTOS, {}),
    ],
)
def test_questions_read_as_what_they_ask(clinic, phone, text, intent, expected):
    result = offline_interpret(text=text, session=_session(phone), now=NOW)
    assert result.intent == intent and expected.items() <= result.entities.items()
    assert result.entities.get("topico") != "endereco"


@pytest.mark.parametrize(
    "text",
    [
        "confirma, mas com a Dra Ana Souza",  # each of these booked the summary as it was
        "confirma, mas à tarde",
        "ok, tem mais cedo?",
        "sim, tem outro horário?",
        "ok, quanto custa?",
        "ok vou ver e te falo",  # was: the booking dropped ("não marquei nada")
    ],
)
def test_a_yes_word_with_a_change_or_a_question_is_no_yes_at_the_summary(clinic, phone, text):
    result = offline_interpret(text=text, session=_session(phone, "confirming", options=CONFIRM_OPTIONS), now=NOW)
    assert result.intent not in {Intent.CONFIRMAR, Intent.CANCELAR} and "opcao" not in result.entities


def test_asking_about_the_weekend_is_a_question_on_opening_hours(clinic, phone):
    for text in ("vocês atendem no fim de semana?", "atende fim de semana?"):
        result = offline_interpret(text=text, session=_session(phone), now=NOW)
        assert (result.intent, result.entities.get("topico")) == (Intent.PERGUNTA, "horario")  # was: a booking


@pytest.mark.parametrize(
    ("text", "weekday"), [("sesta feira", 4), ("qinta", 3), ("tersa", 1), ("sabdo", 5), ("secta feira", 4)]
)
def test_weekday_typos_are_read(clinic, phone, text, weekday):
    result = offline_interpret(text=text, session=_session(phone, "choosing_date", flow="agendar"), now=NOW)
    assert datetime.fromisoformat(result.entities["data"]).weekday() == weekday  # was: "não entendi"
