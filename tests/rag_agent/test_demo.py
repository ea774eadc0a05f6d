from io import StringIO

import pytest
from django.core.management import call_command

from rag_agent.demo import generate_large_clinic, seed_demo_clinic
from rag_agent.models import ClinicaInfo, Convenio, Especialidade, Exame, HorarioTrabalho, Medico

pytestmark = pytest.mark.django_db

MODELS = (ClinicaInfo, Especialidade, Convenio, Medico, HorarioTrabalho, Exame)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_demo_clinic_has_the_agreed_rows():
    info = seed_demo_clinic()
    assert info.nome == "Clínica Vida Saudável"
    assert _counts() == {
        "ClinicaInfo": 1,
        "Especialidade": 7,
        "Convenio": 6,
        "Medico": 10,
        "HorarioTrabalho": 36,
        "Exame": 10,
    }
    assert list(Convenio.objects.filter(ativo=False).values_list("nome", flat=True)) == ["Hapvida"]
    igor = Medico.objects.get(nome="Dr. Igor Santos")
    assert igor.duracao_consulta_minutos == 20
    assert set(igor.convenios.values_list("nome", flat=True)) == set(
        Convenio.objects.filter(ativo=True).values_list("nome", flat=True)
    )
    juliana = Medico.objects.get(nome="Dra. Juliana Martins")
    assert set(juliana.especialidades.values_list("nome", flat=True)) == {"Clínica Geral", "Dermatologia"}


def test_seeding_twice_keeps_the_same_rows_and_restores_edited_values():
    seed_demo_clinic()
    before = _counts()
    Medico.objects.filter(nome="Dra. Ana Souza").update(preco_consulta=1)
    HorarioTrabalho.objects.filter(medico__nome="Dra. Ana Souza").delete()
    seed_demo_clinic()
    assert _counts() == before
    ana = Medico.objects.get(nome="Dra. Ana Souza")
    assert str(ana.preco_consulta) == "350.00"
    assert ana.horarios.count() == 6


def test_seed_clinic_command_run_twice_prints_and_does_not_duplicate():
    first, second = StringIO(), StringIO()
    call_command("seed_clinic", stdout=first)
    counts = _counts()
    call_command("seed_clinic", stdout=second)
    assert _counts() == counts
    assert "Clínica Vida Saudável" in second.getvalue()
    assert "10 médicos" in second.getvalue()


def test_large_clinic_is_generated_beside_the_demo_and_is_idempotent():
    seed_demo_clinic()
    generate_large_clinic(doctors=30, specialties=5)
    counts = _counts()
    generate_large_clinic(doctors=30, specialties=5)
    assert _counts() == counts
    assert counts["Medico"] == 40
    assert counts["Especialidade"] == 12
    assert Medico.objects.filter(especialidades=None).count() == 0
