"""`manage.py forget_patient PHONE --yes` (LGPD erasure request).

Erases the patient's sessions, messages and cache keys (session and REST idempotency results) and anonymises
their appointments. Exit codes: 0 erased; 1 nothing found for that phone, or an error; 2 usage.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from api_gateway.services import cache_inspect, privacy
from core.exceptions import ApplicationError, ValidationFailed
from core.logging import mask_phone


class Command(BaseCommand):
    help = "Apaga sessões, mensagens e chaves de cache de um paciente e anonimiza seus agendamentos."

    def add_arguments(self, parser):
        parser.add_argument("phone", help="Telefone com DDI e DDD; qualquer formatação é aceita.")
        parser.add_argument("--yes", action="store_true", help="Apaga de fato; sem isto só mostra o que apagaria.")
        parser.add_argument("--json", action="store_true", help="Saída em JSON, para scripts.")

    def handle(self, *args, **options):
        try:
            result = privacy.patient_forget(phone=options["phone"], dry_run=not options["yes"])
        except ValidationFailed as exc:
            raise CommandError(exc.message, returncode=2) from exc
        except ApplicationError as exc:
            raise CommandError(exc.message, returncode=1) from exc
        masked = ", ".join(mask_phone(p) for p in result.phones)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "dry_run": result.dry_run,
                        "phones": [mask_phone(p) for p in result.phones],
                        "sessions": result.sessions,
                        "messages": result.messages,
                        "appointments": result.appointments,
                        "waitlist": result.waitlist,
                        "cache_keys": len(result.cache_keys),
                    }
                )
            )
        elif result.dry_run:
            self.stdout.write(
                f"Para {masked}: apagaria {result.sessions} sessão(ões), {result.messages} mensagem(ns), "
                f"{result.waitlist} lugar(es) em lista de espera e {len(result.cache_keys)} chave(s) de cache, "
                f"e anonimizaria {result.appointments} agendamento(s). "
                "Repita com --yes para apagar."
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Para {masked}: apagadas {result.sessions} sessão(ões), {result.messages} mensagem(ns), "
                    f"{result.waitlist} lugar(es) em lista de espera e {len(result.cache_keys)} chave(s) de cache; "
                    f"{result.appointments} agendamento(s) anonimizado(s)."
                )
            )
        if cache_inspect.cache_is_process_local() and not result.dry_run:
            self.stdout.write(self.style.WARNING(cache_inspect.PROCESS_LOCAL_ERASE_NOTE))
        if not result.found_anything:
            raise CommandError(f"Nada encontrado para {masked}.", returncode=1)
