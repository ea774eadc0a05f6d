import pytest

from rag_agent.demo import generate_large_clinic
from rag_agent.matching import normalize
from rag_agent.selectors import convenio_find, doctor_find, exam_find, mentions_find, specialty_find

pytestmark = pytest.mark.django_db


def test_normalize_drops_case_accents_and_punctuation():
    assert normalize("  Dra. Ana SOUZA, Clínica Geral! ") == "dra ana souza clinica geral"
    assert normalize("Raio-X de tórax") == "raio x de torax"


@pytest.mark.parametrize(
    ("finder", "query", "expected"),
    [
        (specialty_find, "cardio", "Cardiologia"),
        (specialty_find, "cardiologista", "Cardiologia"),
        (specialty_find, "cardiolgia", "Cardiologia"),
        (specialty_find, "CARDIOLOGIA", "Cardiologia"),
        (specialty_find, "pediatra", "Pediatria"),
        (specialty_find, "ortopedista", "Ortopedia"),
        (specialty_find, "dermato", "Dermatologia"),
        (specialty_find, "ginecologista", "Ginecologia"),
        (specialty_find, "clinico geral", "Clínica Geral"),
        (specialty_find, "clínica geral", "Clínica Geral"),
        (specialty_find, "oftalmo", "Oftalmologia"),
        (specialty_find, "oculista", "Oftalmologia"),
        (doctor_find, "dra ana", "Dra. Ana Souza"),
        (doctor_find, "ana souza", "Dra. Ana Souza"),
        (doctor_find, "Ana", "Dra. Ana Souza"),
        (doctor_find, "dr carlos", "Dr. Carlos Mendes"),
        (doctor_find, "doutor gustavo", "Dr. Gustavo Pereira"),
        (doctor_find, "helena costta", "Dra. Helena Costa"),
        (convenio_find, "unimed", "Unimed"),
        (convenio_find, "unimede", "Unimed"),
        (convenio_find, "bradesco", "Bradesco Saúde"),
        (convenio_find, "sul america", "SulAmérica"),
        (convenio_find, "sulamerica", "SulAmérica"),
        (exam_find, "hemograma", "Hemograma completo"),
        (exam_find, "glicemia", "Glicemia em jejum"),
        (exam_find, "ultrassom", "Ultrassonografia abdominal"),
        (exam_find, "eletro", "Eletrocardiograma"),
        (exam_find, "raio x", "Raio-X de tórax"),
    ],
)
def test_find_resolves_typos_accents_and_partial_names(clinic, finder, query, expected):
    matches = finder(query)
    assert matches, f"nothing found for {query!r}"
    assert matches[0].name == expected
    assert 0 < matches[0].score <= 100


@pytest.mark.parametrize(
    ("finder", "query"),
    [
        (specialty_find, "bom dia"),
        (specialty_find, "medico"),
        (doctor_find, "Carlos Eduardo"),
        (doctor_find, "dra"),
        (convenio_find, "mil"),
        (convenio_find, "hapvida"),  # inactive plans are not offered
        (exam_find, "consulta"),
    ],
)
def test_find_returns_nothing_for_unrelated_or_inactive_names(clinic, finder, query):
    assert finder(query) == []


def test_find_results_are_best_first_and_respect_the_limit(clinic):
    matches = convenio_find("saude")
    assert [m.name for m in matches] == ["Bradesco Saúde", "Porto Seguro Saúde"]
    assert matches[0].score > matches[1].score
    assert [m.name for m in convenio_find("saude", limit=1)] == ["Bradesco Saúde"]


def test_find_ignores_bare_titles_and_single_letters(clinic):
    assert doctor_find("dr") == []
    assert doctor_find("a") == []


def test_doctor_find_can_be_restricted_to_a_specialty(demo):
    assert [m.name for m in doctor_find("carlos", especialidade_id=demo.cardiologia.id)] == ["Dr. Carlos Mendes"]
    assert doctor_find("carlos", especialidade_id=demo.ortopedia.id) == []


def _names(found: dict) -> dict[str, list[str]]:
    return {kind: [m.name for m in matches] for kind, matches in found.items()}


def test_mentions_in_a_booking_sentence_find_specialty_and_doctor_but_not_the_patient(clinic):
    found = _names(mentions_find("quero marcar cardiologia com a dra. Ana amanhã às 14h, meu nome é João Silva"))
    assert found == {"especialidade": ["Cardiologia"], "medico": ["Dra. Ana Souza"], "convenio": [], "exame": []}


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("aceita unimed?", "convenio", ["Unimed"]),
        ("vocês aceitam bradesco saúde ou porto seguro?", "convenio", ["Bradesco Saúde", "Porto Seguro Saúde"]),
        ("quanto custa o hemograma?", "exame", ["Hemograma completo"]),
        ("preciso fazer um raio-x de tórax e um eletro", "exame", ["Eletrocardiograma", "Raio-X de tórax"]),
        ("tem ortopedista que aceita sul america?", "especialidade", ["Ortopedia"]),
        ("quero consulta com oculista", "especialidade", ["Oftalmologia"]),
        ("consulta com o dr carlos mendes", "medico", ["Dr. Carlos Mendes"]),
        ("pode ser com a Ana Souza", "medico", ["Dra. Ana Souza"]),
        ("dra helena por favor", "medico", ["Dra. Helena Costa"]),
        ("quero ver o cardiolgista", "especialidade", ["Cardiologia"]),
    ],
)
def test_mentions_find_names_inside_free_sentences(clinic, text, kind, expected):
    assert sorted(_names(mentions_find(text))[kind]) == sorted(expected)


@pytest.mark.parametrize(
    "text",
    [
        "quero marcar uma consulta amanhã",
        "bom dia, tudo bem?",
        "meu nome é Carlos Eduardo",
        "sou a Ana, tenho consulta marcada",
        "qual o endereço da clínica?",
        "custa mil reais?",
        "preciso de um exame de sangue",
        "obrigado, até logo",
    ],
)
def test_mentions_find_nothing_in_ordinary_sentences(clinic, text):
    assert mentions_find(text) == {"especialidade": [], "medico": [], "convenio": [], "exame": []}


def test_mentions_still_find_the_right_names_in_a_200_doctor_clinic(clinic):
    # Speed is measured by bench/clinic_scale.py (a timed unit test would only be flaky on a shared machine).
    generate_large_clinic()
    found = _names(mentions_find("quero marcar cardiologia com a dra. Ana amanhã, meu nome é João Silva"))
    assert found["especialidade"] == ["Cardiologia"]
    assert found["medico"] == ["Dra. Ana Souza"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("quanto custa o raio x?", "Raio-X de tórax"),  # aliases of names with a stopword ("de") were never applied
        ("faz exame de glicose?", "Glicemia em jejum"),
        ("preciso de jejum pro colesterol?", "Colesterol total e frações"),
        ("faz exame de tireoide?", "TSH"),
    ],
)
def test_every_alias_of_a_catalogue_name_is_a_mention_of_it(clinic, text, expected):
    assert _names(mentions_find(text))["exame"] == [expected]
