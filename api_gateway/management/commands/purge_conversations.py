"""`manage.py purge_conversations --older-than-days N --yes` (LGPD retention).

Deletes old messages and sessions idle since then (with their cache keys); appointments stay.
Exit codes: 0 ok (also when there was nothing to purge: it is meant for a schedule); 2 usage.
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from api_gateway.services import cache_inspect, privacy
from core.exceptions import ValidationFailed


class Command(BaseCommand):
    help = "Apaga mensagens antigas e sessões inativas (e suas chaves de cache). Agendamentos são mantidos."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=int, required=True, dest="days")
        parser.add_argument("--yes", action="store_true", help="Apaga de fato; sem isto só mostra o que apagaria.")
        parser.add_argument("--json", action="store_true", help="Saída em JSON, para scripts.")

    def handle(self, *args, **options):
        try:
            result = privacy.conversations_purge(older_than_days=options["days"], dry_run=not options["yes"])
        except ValidationFailed as exc:
            raise CommandError(exc.message, returncode=2) from exc
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "dry_run": result.dry_run,
                        "cutoff": result.cutoff.isoformat(),
                        "messages": result.messages,
                        "sessions": result.sessions,
                        "cache_keys": result.cache_keys,
                    }
                )
            )
            return
        cutoff = timezone.localtime(result.cutoff).strftime("%d/%m/%Y %H:%M")
        if result.dry_run:
            self.stdout.write(
                f"Apagaria {result.messages} mensagem(ns) anteriores a {cutoff} e {result.sessions} sessão(ões) "
                "inativa(s). Agendamentos não são tocados. Repita com --yes para apagar."
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Apagadas {result.messages} mensagem(ns) anteriores a {cutoff}, {result.sessions} sessão(ões) "
                    f"inativa(s) e {result.cache_keys} chave(s) de cache. Agendamentos mantidos."
                )
            )
            if cache_inspect.cache_is_process_local():
                self.stdout.write(self.style.WARNING(cache_inspect.PROCESS_LOCAL_ERASE_NOTE))
