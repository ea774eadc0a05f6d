"""Complaints and missing specialties against a clinic's specialty list (pure functions, no database)."""

import pytest

from rag_agent.symptoms import Complaint, complaint_find, missing_specialty_find

DEMO = [
    {"id": 1, "nome": "Cardiologia"},
    {"id": 2, "nome": "Dermatologia"},
    {"id": 3, "nome": "Pediatria"},
    {"id": 4, "nome": "Ortopedia"},
    {"id": 5, "nome": "Ginecologia"},
    {"id": 6, "nome": "Clínica Geral"},
    {"id": 7, "nome": "Oftalmologia"},
]


@pytest.mark.parametrize(
    ("text", "complaint", "specialty"),
    [
        ("estou com dor nas costas faz uma semana", "dor nas costas", "Ortopedia"),
        ("Torci o tornozelo jogando bola", "torci o tornozelo", "Ortopedia"),
        ("apareceram umas manchas na pele", "manchas na pele", "Dermatologia"),
        ("tenho sentido palpitações", "palpitações", "Cardiologia"),
        ("minha vista está embaçada", "vista está embaçada", "Oftalmologia"),
        ("preciso fazer o preventivo", "preventivo", "Ginecologia"),
        # no Neurologia here: the general practitioner is the first stop
        ("muita dor de cabeça", "dor de cabeça", "Clínica Geral"),
        ("estou gripado", "gripe", "Clínica Geral"),  # said back as a noun
        # a child's ordinary complaint goes to the paediatrician; a specific one does not
        ("meu filho está com febre", "febre", "Pediatria"),
        ("minha filha precisa trocar os óculos", "trocar os óculos", "Oftalmologia"),
        ("meu filho de 30 anos ta com febre", "febre", "Clínica Geral"),  # no child
        # as patients write them (found by a probe)
        ("meu joelho ta doendo mt", "joelho ta doendo", "Ortopedia"),
        ("dor nas costa", "dor nas costa", "Ortopedia"),
        ("manchas vermelhas no corpo", "manchas vermelhas no corpo", "Dermatologia"),
        ("coceira nos olhos", "coceira nos olhos", "Oftalmologia"),
        ("meu olho ta mt vermelho e coçando", "olho ta mt vermelho", "Oftalmologia"),
        ("corrimento e coceira lá embaixo", "corrimento", "Ginecologia"),
        ("engoli uma espinha de peixe", "espinha de peixe", "Clínica Geral"),
        ("meu coracao ta disparado desde cedo", "coracao ta disparado", "Cardiologia"),
        ("estou grávida de 2 meses", "gravidez", "Ginecologia"),
        # a third probe's misses
        ("meu joelho, tá doendo muito", "joelho, tá doendo", "Ortopedia"),
        ("minha mão tá doendo", "mão tá doendo", "Ortopedia"),
        ("dor na sola do pé", "dor na sola do pé", "Ortopedia"),
        ("meu cabelo tá caindo muito", "cabelo tá caindo", "Dermatologia"),
        ("queria fazer exame de vista", "exame de vista", "Oftalmologia"),
        ("quero colocar DIU", "diu", "Ginecologia"),
        ("caroço no seio", "caroço no seio", "Ginecologia"),
        ("sangue na urina", "sangue na urina", "Clínica Geral"),
    ],
)
def test_a_complaint_goes_to_the_clinics_specialty_that_sees_it(text, complaint, specialty):
    found = complaint_find(text, DEMO)
    assert found == Complaint(complaint, next(sp["id"] for sp in DEMO if sp["nome"] == specialty), specialty)


def test_the_most_specific_specialty_wins_when_the_clinic_has_it():
    with_neuro = [*DEMO, {"id": 8, "nome": "Neurologia"}]
    assert complaint_find("muita dor de cabeça", with_neuro).specialty == "Neurologia"


def test_a_complaint_no_specialty_of_the_clinic_sees_is_named_with_the_one_that_would():
    assert complaint_find("estou com dor de dente", DEMO) == Complaint("dor de dente", None, "Odontologia")
    # not the paediatrician either: a child's tooth is still a dentist's
    assert complaint_find("minha filha de 6 anos ta com dor de dente", DEMO).specialty == "Odontologia"
    no_general = [sp for sp in DEMO if sp["nome"] != "Clínica Geral"]
    assert complaint_find("dor de cabeça", no_general) == Complaint("dor de cabeça", None, "Neurologia")


@pytest.mark.parametrize("text", ["quero marcar uma consulta", "quanto custa?", "meu nome é Ana Costa", ""])
def test_ordinary_sentences_name_no_complaint(text):
    assert complaint_find(text, DEMO) is None


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("vocês têm neurologista?", "Neurologia"),
        ("preciso de um dentista", "Odontologia"),
        ("quero marcar com o psicólogo", "Psicologia"),
        ("tem otorrino?", "Otorrinolaringologia"),
        ("preciso de um proctologista", "Coloproctologia"),
    ],
)
def test_a_specialty_the_clinic_lacks_is_named(text, missing):
    assert missing_specialty_find(text, DEMO) == missing


def test_a_specialty_the_clinic_has_is_not_missing():
    assert missing_specialty_find("tem neurologista?", [*DEMO, {"id": 8, "nome": "Neurologia"}]) is None
    assert missing_specialty_find("quero marcar cardiologista", DEMO) is None
