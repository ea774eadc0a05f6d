"""The emergency rule on its own: which messages it warns about and which it leaves alone."""

import pytest

from api_gateway.services.safety import MEDICAL, SELF_HARM, emergency_kind


@pytest.mark.parametrize(
    "text",
    [
        "Estou com uma dor forte no peito",
        "minha mãe tá com falta de ar",
        "não consigo respirar direito",
        "acho que meu pai está tendo um AVC, a boca ficou torta",
        "meu filho desmaiou agora",
        "ela está convulsionando!!",
        "sangramento que não para depois da cirurgia",
        "meu filho tomou veneno de rato, intoxicado",
        "fui picada de escorpião",
        "garganta fechando depois do remédio",
        "tive um infarto em 2019 e estou com dor no peito agora",  # a history, but it is happening now
        "DOR NO PEITO",
        "to sem ar",
    ],
)
def test_warning_signs_are_medical_emergencies(text):
    assert emergency_kind(text) == MEDICAL


@pytest.mark.parametrize(
    "text",
    [
        "quero me matar",
        "não quero mais viver",
        "ando pensando em suicídio",
        "vontade de morrer",
        "vou acabar com a minha vida",
    ],
)
def test_thoughts_of_self_harm(text):
    assert emergency_kind(text) == SELF_HARM


@pytest.mark.parametrize(
    "text",
    [
        "quero marcar uma consulta com cardiologista",
        "quanto custa a consulta?",
        "tive um infarto em 2019, preciso de acompanhamento com cardiologista",
        "meu pai teve AVC ano passado e quer marcar retorno",
        "a sala tem ar condicionado? fico sem ar condicionado em casa",
        "vocês atendem Unimed?",
        "",
        "   ",
        "dor nas costas",
    ],
)
def test_ordinary_messages_and_histories_are_not_emergencies(text):
    assert emergency_kind(text) is None
