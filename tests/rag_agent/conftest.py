import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from rag_agent.models import Convenio, Especialidade, Medico

SAO_PAULO = timezone.get_default_timezone()


def next_weekday(weekday: int, *, after: dt.date | None = None, weeks_ahead: int = 1) -> dt.date:
    """A date on `weekday` at least `weeks_ahead` weeks after `after` (default: today in São Paulo)."""
    start = (after or timezone.localdate()) + dt.timedelta(weeks=weeks_ahead)
    return start + dt.timedelta(days=(weekday - start.weekday()) % 7)


def at(day: dt.date, hhmm: str) -> dt.datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(hours, minutes), tzinfo=SAO_PAULO)


@pytest.fixture
def demo(clinic):
    """Handles on the demo rows the tests talk about."""

    class Demo:
        ana = Medico.objects.get(nome="Dra. Ana Souza")
        carlos = Medico.objects.get(nome="Dr. Carlos Mendes")
        gustavo = Medico.objects.get(nome="Dr. Gustavo Pereira")
        igor = Medico.objects.get(nome="Dr. Igor Santos")
        cardiologia = Especialidade.objects.get(nome="Cardiologia")
        ortopedia = Especialidade.objects.get(nome="Ortopedia")
        clinica_geral = Especialidade.objects.get(nome="Clínica Geral")
        unimed = Convenio.objects.get(nome="Unimed")
        amil = Convenio.objects.get(nome="Amil")
        hapvida = Convenio.objects.get(nome="Hapvida")

    return Demo


@pytest.fixture
def staff_client(client, settings):
    """The admin, logged in as a superuser of the reception."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
    user = get_user_model().objects.create_superuser("recepcao", "recepcao@example.com", "senha-forte-123")
    client.force_login(user)
    return client
