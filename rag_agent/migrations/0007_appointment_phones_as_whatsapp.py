"""Phones the staff typed before the admin normalised them ("(11) 98765-4321") become what WhatsApp writes
("5511987654321"), so the patient finds those appointments in the chat and answers their reminders. Digits-only
values are left alone: the bot stored them as WhatsApp sent them. Anonymised rows ("anonimizado-<id>") and values
that cannot be a phone are kept."""

from django.db import migrations

from core.phones import whatsapp_number


def forwards(apps, schema_editor):
    Agendamento = apps.get_model("rag_agent", "Agendamento")
    for pk, phone in Agendamento.objects.exclude(paciente_telefone__regex=r"^[0-9]+$").values_list(
        "pk", "paciente_telefone"
    ):
        if phone.startswith("anonimizado-"):
            continue
        number = whatsapp_number(phone)
        if number is not None:
            Agendamento.objects.filter(pk=pk).update(paciente_telefone=number)


class Migration(migrations.Migration):
    dependencies = [("rag_agent", "0006_appointment_length")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
