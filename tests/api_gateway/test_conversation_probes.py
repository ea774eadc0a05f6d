"""Dialogues from a probe of the offline NLU with real patient phrasing (eighth session): each test is a message
that went wrong before, driven through the conversation service with the reference clock of the dialogue tests
(the next Monday at 10:00)."""

import pytest

from api_gateway.services import texts as T
from api_gateway.services.nlu.offline import offline_interpret
from api_gateway.services.nlu.types import Intent
from rag_agent.models import Agendamento
from tests.api_gateway.test_conversation_dialogues import Patient, _reach_confirmation_with_ana_on_wednesday

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(clinic):
    return Patient("5511999990001")


@pytest.mark.parametrize("said", ["falou", "tchau", "flw"])
def test_goodbye_slang_at_the_summary_neither_books_nor_drops_it(patient, said):
    _reach_confirmation_with_ana_on_wednesday(patient)
    patient.says(said)  # was: "Tudo bem, não marquei nada", the booking dropped
    assert patient.text == T.LATER_CONFIRMING
    assert patient.state == "confirming"
    patient.says("sim")
    assert Agendamento.objects.filter(paciente_telefone=patient.phone).count() == 1


@pytest.mark.parametrize("said", ["fui mordido por um cachorro", "fui no médico ontem e ele pediu exames"])
def test_a_sentence_starting_with_fui_is_no_goodbye(said):
    assert offline_interpret(text=said).intent != Intent.DESPEDIDA


@pytest.mark.parametrize("said", ["fui", "bom, fui!"])
def test_fui_alone_is_a_goodbye(said):
    assert offline_interpret(text=said).intent == Intent.DESPEDIDA
