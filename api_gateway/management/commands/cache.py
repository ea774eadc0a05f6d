"""`manage.py cache stats|keys|show|clear|warm`: what the cache holds, beside the database.

Exit codes: 0 ok; 1 error or nothing found; 2 usage; 3 the cache lives inside the server process (LocMem).
"""

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from api_gateway.services import cache_inspect
from core.exceptions import ApplicationError, ValidationFailed
from core.logging import mask_phone

EXIT_ERROR, EXIT_USAGE, EXIT_PROCESS_LOCAL = 1, 2, 3
SHOW_WHAT = ("session", "tokens", "clinic", "doctor", "idempotency")
SHOW_NEEDS_ARGUMENT = {"session": "PHONE", "doctor": "NAME", "idempotency": "KEY"}


def _ttl_text(ttl: int | None) -> str:
    return "sem expiração" if ttl is None else f"{ttl}s"


class Command(BaseCommand):
    help = "Inspeciona e limpa o cache (sessões, clínica, médicos, tokens, idempotência)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="stats|keys|show|clear|warm")

        def add(name: str, help_text: str):
            p = sub.add_parser(name, help=help_text)
            p.add_argument("--json", action="store_true", help="Saída em JSON, para scripts.")
            return p

        add("stats", "Backend, chaves por família, hits/misses e memória do Redis.")
        keys = add("keys", "Nomes das chaves com o TTL restante (SCAN).")
        keys.add_argument("--family", help=f"Uma de: {', '.join(cache_inspect.FAMILIES)}.")
        keys.add_argument("--pattern", help="Padrão glob sobre o nome da chave, ex.: 'gemini_session_5511*'.")
        keys.add_argument("--limit", type=int, default=100)
        show = add("show", "O valor em cache ao lado do que o banco de dados guarda.")
        show.add_argument("what", choices=SHOW_WHAT)
        show.add_argument("argument", nargs="?", help="PHONE, DATE (AAAA-MM-DD), NAME ou KEY.")
        clear = add("clear", "Remove uma família (ou 'all') e/ou as chaves de um telefone.")
        clear.add_argument("--family", help=f"Uma de: {', '.join(cache_inspect.FAMILIES)}, ou 'all'.")
        clear.add_argument("--phone")
        clear.add_argument("--yes", action="store_true", help="Remove de fato; sem isto só mostra o que removeria.")
        add("warm", "Pré-carrega o catálogo da clínica.")

    def handle(self, *args, **options):
        action = options["action"]
        if cache_inspect.cache_is_process_local():
            message = (
                cache_inspect.WARM_PROCESS_LOCAL_MESSAGE if action == "warm" else cache_inspect.PROCESS_LOCAL_MESSAGE
            )
            raise CommandError(message, returncode=EXIT_PROCESS_LOCAL)
        try:
            getattr(self, f"_{action}")(options)
        except ValidationFailed as exc:
            raise CommandError(exc.message, returncode=EXIT_USAGE) from exc
        except ApplicationError as exc:
            raise CommandError(exc.message, returncode=EXIT_ERROR) from exc

    def _emit_json(self, data) -> None:
        self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2))

    # --- actions ------------------------------------------------------------------------------------------
    def _stats(self, options) -> None:
        stats = cache_inspect.cache_stats()
        if options["json"]:
            return self._emit_json(stats)
        self.stdout.write(f"Backend: {stats['backend']} (prefixo '{stats['key_prefix']}')")
        for name, family in stats["families"].items():
            self.stdout.write(f"  {name:<12} {family['keys']:>7} chaves   {family['pattern']}")
        self.stdout.write(f"  {'outras':<12} {stats['other_keys']:>7} chaves   (travas, deduplicação)")
        redis = stats["redis"]
        if redis:
            self.stdout.write(
                f"Redis {redis['redis_version']}: memória {redis['used_memory_human']}, "
                f"hits {redis['keyspace_hits']}, misses {redis['keyspace_misses']} (servidor, desde o início), "
                f"chaves despejadas {redis['evicted_keys']}, AOF {'ligado' if redis['aof_enabled'] else 'desligado'}"
            )
        else:
            self.stdout.write("Redis: INFO indisponível.")

    def _keys(self, options) -> None:
        if options["limit"] < 1:
            raise ValidationFailed("--limit precisa ser 1 ou mais.")
        keys = cache_inspect.cache_key_list(
            family=options["family"], pattern=options["pattern"], limit=options["limit"]
        )
        if options["json"]:
            return self._emit_json([{"key": k.name, "family": k.family, "ttl": k.ttl} for k in keys])
        for key in keys:
            self.stdout.write(f"{key.name}  [{key.family}]  {_ttl_text(key.ttl)}")
        self.stdout.write(f"{len(keys)} chave(s){' (limite atingido)' if len(keys) >= options['limit'] else ''}.")

    def _show(self, options) -> None:
        what, argument = options["what"], options["argument"]
        if what in SHOW_NEEDS_ARGUMENT and not argument:
            raise ValidationFailed(f"Uso: cache show {what} {SHOW_NEEDS_ARGUMENT[what]}")
        if what == "session":
            data = cache_inspect.cache_show_session(phone=argument)
        elif what == "tokens":
            try:
                day = dt.date.fromisoformat(argument) if argument else None
            except ValueError as exc:
                raise ValidationFailed("Data inválida: use AAAA-MM-DD.") from exc
            data = cache_inspect.cache_show_tokens(day=day)
        elif what == "clinic":
            data = cache_inspect.cache_show_clinic()
        elif what == "doctor":
            data = cache_inspect.cache_show_doctor(name=argument)
        else:
            data = cache_inspect.cache_show_idempotency(key=argument)
        if options["json"]:
            self._emit_json(data)
        else:
            self._show_text(what, data)
        if not data["found"]:
            raise CommandError("Nada encontrado no cache nem no banco de dados.", returncode=EXIT_ERROR)

    def _show_text(self, what: str, data: dict) -> None:
        def dump(value) -> str:
            return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)

        entries = data["doctors"] if what == "doctor" else [data]
        for entry in entries:
            self.stdout.write(f"Chave: {entry['key']}  (TTL {_ttl_text(entry['ttl'])})")
            self.stdout.write("Cache:" + (" (ausente)" if entry["cache"] is None else ""))
            if entry["cache"] is not None:
                self.stdout.write(dump(entry["cache"]))
            self.stdout.write("Banco de dados:" + (" (nada)" if entry["database"] is None else ""))
            if entry["database"] is not None:
                self.stdout.write(dump(entry["database"]))
            if entry.get("stale"):
                self.stdout.write(
                    self.style.WARNING(f"DESATUALIZADO: o cache difere do banco em: {', '.join(entry['differences'])}")
                )

    def _clear(self, options) -> None:
        result = cache_inspect.cache_clear(family=options["family"], phone=options["phone"], dry_run=not options["yes"])
        target = ", ".join(result.families) or "sessions, idempotency"
        if options["phone"]:
            target += f" do telefone {mask_phone(options['phone'])}"
        if options["json"]:
            return self._emit_json(
                {
                    "dry_run": result.dry_run,
                    "families": result.families,
                    "keys": len(result.keys),
                    "removed": result.removed,
                }
            )
        if result.dry_run:
            self.stdout.write(f"Removeria {len(result.keys)} chave(s) de {target}. Repita com --yes para remover.")
        else:
            self.stdout.write(self.style.SUCCESS(f"{result.removed} chave(s) removida(s) de {target}."))

    def _warm(self, options) -> None:
        counts = cache_inspect.cache_warm()
        if options["json"]:
            return self._emit_json(counts)
        self.stdout.write(
            self.style.SUCCESS(
                f"Catálogo pré-carregado: {counts['clinic']} chave da clínica, {counts['doctors']} de médicos."
            )
        )
