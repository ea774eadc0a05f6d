"""`manage.py tokens [--days N]`: daily Gemini token use, calls and cost, from the per-message record.

Works on every backend: the figures come from the database; the cache only adds today's fast counter.
Exit codes: 0 ok; 2 usage.
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from api_gateway.services import cache_inspect
from core.exceptions import ValidationFailed


class Command(BaseCommand):
    help = "Uso diário de tokens do Gemini, chamadas, custo estimado, modo economia e orçamento restante."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=7, help="Quantos dias, contando hoje (padrão: 7).")
        parser.add_argument("--json", action="store_true", help="Saída em JSON, para scripts.")

    def handle(self, *args, **options):
        try:
            report = cache_inspect.token_usage_report(days=options["days"])
        except ValidationFailed as exc:
            raise CommandError(exc.message, returncode=2) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2))
            return
        self.stdout.write(f"{'data':<12}{'entrada':>12}{'saída':>12}{'total':>12}{'chamadas':>10}{'custo US$':>12}")
        for day in [*report["days"], {"date": "total", **report["totals"]}]:
            self.stdout.write(
                f"{day['date']:<12}{day['input_tokens']:>12}{day['output_tokens']:>12}{day['total_tokens']:>12}"
                f"{day['calls']:>10}{day['estimated_cost_usd']:>12.4f}"
            )
        today = report["today"]
        counter = "ausente" if today["counter_cache"] is None else today["counter_cache"]
        self.stdout.write(
            f"Hoje: {today['used']} de {today['limit']} tokens ({today['ratio']:.1%}); restam {today['remaining']}. "
            f"Banco: {today['used_database']}; contador no cache: {counter}."
        )
        if today["exhausted"]:
            mode = self.style.ERROR("orçamento esgotado (só NLU offline)")
        elif today["economy_mode"]:
            mode = self.style.WARNING("modo economia LIGADO")
        else:
            mode = "modo economia desligado"
        self.stdout.write(f"Situação: {mode} (limiar {today['economy_threshold']:.0%}).")
