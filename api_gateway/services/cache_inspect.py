"""What the cache holds, beside what the database holds: the one place behind `manage.py cache`, `manage.py
tokens` and the admin's "Cache e orçamento" page.

Both cache aliases share one store (the same Redis database and key prefix, or the same LocMem location), so
every read here goes through the "strict" alias: on Redis its errors raise, and an outage is reported as such
instead of looking like an empty cache.
LocMemCache is private to one process: the functions work there too, but only the server process (the admin
page) sees the keys the bot wrote.
"""

import datetime as dt
import fnmatch
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import caches
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from api_gateway.models import ConversationMessage, ConversationSession
from api_gateway.services import idempotency
from api_gateway.services.session_cache import SESSION_KEY_PREFIX, session_key
from api_gateway.services.token_monitor import (
    TOKENS_KEY_PREFIX,
    BudgetStatus,
    local_day_bounds,
    token_monitor,
    tokens_key,
)
from core import metrics
from core.exceptions import ServiceUnavailable, ValidationFailed
from core.logging import mask_phone
from rag_agent.cache import CLINIC_DATA_KEY, CLINIC_KEYS_PATTERN, DOCTOR_KEY_PREFIX

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_PREFIX = idempotency.KEY_PREFIX

PROCESS_LOCAL_MESSAGE = (
    "O cache em uso é o LocMemCache, que vive dentro do processo do servidor: um comando de terminal roda em "
    "outro processo e não enxerga as chaves do bot. Use a página do admin em /admin/cache/ (Cache e orçamento), "
    "que roda dentro do servidor, ou configure REDIS_URL."
)
WARM_PROCESS_LOCAL_MESSAGE = (
    "O cache em uso é o LocMemCache, que vive dentro do processo do servidor: pré-carregar o catálogo a partir "
    "deste comando só encheria a memória deste comando, que termina em seguida. Use o botão 'Pré-carregar "
    "catálogo' em /admin/cache/, ou deixe o servidor carregá-lo na primeira leitura."
)
PROCESS_LOCAL_ERASE_NOTE = (
    "Atenção: com LocMemCache, a cópia em cache das sessões apagadas fica no processo do servidor até expirar "
    "(15 a 60 min). Para apagá-la já, use 'Limpar telefone' em /admin/cache/ ou reinicie o servidor."
)
REDIS_UNAVAILABLE_MESSAGE = "O Redis não respondeu: não foi possível ler o cache. Verifique REDIS_URL e o servidor."
UNKNOWN_FAMILY_MESSAGE = "Família de cache desconhecida: {family}. Use uma destas: {choices}."
CLEAR_NEEDS_TARGET_MESSAGE = "Diga o que limpar: --family (uma família ou 'all') e/ou --phone."


@dataclass(frozen=True)
class Family:
    name: str
    pattern: str  # glob over the unprefixed key names
    label: str
    tally: str  # the family name used by core.metrics.cache_event


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("sessions", f"{SESSION_KEY_PREFIX}*", "Sessões de conversa", "session"),
        Family("clinic", CLINIC_KEYS_PATTERN, "Catálogo da clínica", "clinic"),
        Family("doctors", f"{DOCTOR_KEY_PREFIX}*", "Médicos", "doctor"),
        Family("tokens", f"{TOKENS_KEY_PREFIX}*", "Contador de tokens", "tokens"),
        Family("idempotency", f"{IDEMPOTENCY_KEY_PREFIX}*", "Idempotência (API REST)", "idempotency"),
    )
}
_FAMILY_ALIASES = {"session": "sessions", "doctor": "doctors", "token": "tokens", "idem": "idempotency"}


@dataclass(frozen=True)
class CacheKey:
    name: str
    family: str  # a FAMILIES name, or "other" (locks, dedupe keys)
    ttl: int | None  # seconds left; None = no expiry


@dataclass
class ClearResult:
    keys: list[str]
    dry_run: bool
    removed: int = 0
    families: list[str] = field(default_factory=list)


def _cache():
    return caches["strict"]


def cache_is_process_local() -> bool:
    return not settings.REDIS_URL


def family_resolve(*, name: str) -> Family:
    key = _FAMILY_ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in FAMILIES:
        raise ValidationFailed(UNKNOWN_FAMILY_MESSAGE.format(family=name, choices=", ".join(FAMILIES)))
    return FAMILIES[key]


def family_of(key: str) -> str:
    for family in FAMILIES.values():
        if fnmatch.fnmatchcase(key, family.pattern):
            return family.name
    return "other"


def phone_normalize(phone: str) -> str:
    return re.sub(r"\D", "", phone or "")


def to_jsonable(value: object) -> object:
    """Cached values hold dates, decimals and times: render them as the JSON a person and a script can read."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=repr))


# --- key iteration --------------------------------------------------------------------------------------------
def _iter_names(pattern: str) -> Iterator[str]:
    cache = _cache()
    if hasattr(cache, "iter_keys"):  # django-redis: SCAN with the key prefix handled, never KEYS
        try:
            yield from cache.iter_keys(pattern, itersize=500)
        except Exception as exc:  # noqa: BLE001 - redis-py raises several connection error types
            raise ServiceUnavailable(REDIS_UNAVAILABLE_MESSAGE) from exc
        return
    # LocMemCache: walk the process's private store; made keys are "{KEY_PREFIX}:{version}:{key}".
    now = time.time()
    with cache._lock:
        items = [(made, cache._expire_info.get(made)) for made in list(cache._cache)]
    for made, expires in items:
        if expires is not None and expires <= now:
            continue
        parts = made.split(":", 2)
        if len(parts) == 3 and parts[0] == cache.key_prefix and fnmatch.fnmatchcase(parts[2], pattern):
            yield parts[2]


def _cache_ttl(key: str) -> int | None:
    """Seconds left before the key expires; None when it never expires or is absent."""
    cache = _cache()
    if hasattr(cache, "ttl"):
        try:
            return cache.ttl(key)
        except Exception as exc:  # noqa: BLE001
            raise ServiceUnavailable(REDIS_UNAVAILABLE_MESSAGE) from exc
    expires = cache._expire_info.get(cache.make_and_validate_key(key))
    return None if expires is None else max(0, int(expires - time.time()))


def cache_key_list(*, family: str | None = None, pattern: str | None = None, limit: int | None = 100) -> list[CacheKey]:
    glob = pattern or (family_resolve(name=family).pattern if family else "*")
    wanted = family_resolve(name=family).name if family else None
    found: list[str] = []
    for name in _iter_names(glob):
        if wanted and family_of(name) != wanted:
            continue
        found.append(name)
        if limit and len(found) >= limit:
            break
    return [CacheKey(name=name, family=family_of(name), ttl=_cache_ttl(name)) for name in sorted(found)]


def _cache_get(key: str) -> object:
    try:
        return _cache().get(key)
    except Exception as exc:  # noqa: BLE001
        raise ServiceUnavailable(REDIS_UNAVAILABLE_MESSAGE) from exc


# --- stats ----------------------------------------------------------------------------------------------------
def _redis_info() -> dict | None:
    from django_redis import get_redis_connection

    try:
        client = get_redis_connection("strict")
        info = client.info()
    except Exception:  # noqa: BLE001 - stats are best effort; the key counts above already raised if Redis is down
        logger.warning("redis INFO unavailable")
        return None
    return {
        "redis_version": info.get("redis_version"),
        "used_memory_human": info.get("used_memory_human"),
        "used_memory_bytes": info.get("used_memory"),
        "maxmemory_bytes": info.get("maxmemory"),
        "maxmemory_policy": info.get("maxmemory_policy"),
        "keyspace_hits": info.get("keyspace_hits"),
        "keyspace_misses": info.get("keyspace_misses"),
        "evicted_keys": info.get("evicted_keys"),
        "aof_enabled": bool(info.get("aof_enabled")),
        "uptime_seconds": info.get("uptime_in_seconds"),
    }


def cache_stats() -> dict:
    """Backend, keys per family, hits/misses and (on Redis) server memory, in one pass over the keys."""
    counts = {name: 0 for name in FAMILIES} | {"other": 0}
    for name in _iter_names("*"):
        counts[family_of(name)] += 1
    tally = metrics.cache_tally()
    process = {
        f.name: {"hits": tally.get((f.tally, "hit"), 0), "misses": tally.get((f.tally, "miss"), 0)}
        for f in FAMILIES.values()
    }
    for name in FAMILIES:
        metrics.CACHE_SIZE.labels(name, settings.CACHE_BACKEND_NAME).set(counts[name])
    return {
        "backend": settings.CACHE_BACKEND_NAME,
        "process_local": cache_is_process_local(),
        "key_prefix": settings.CACHE_KEY_PREFIX,
        "families": {
            name: {"label": f.label, "pattern": f.pattern, "keys": counts[name]} for name, f in FAMILIES.items()
        },
        "other_keys": counts["other"],
        "process_hits_misses": process,
        "redis": _redis_info() if not cache_is_process_local() else None,
    }


# --- show: cache beside database ------------------------------------------------------------------------------
def _session_row(phone: str) -> dict | None:
    from api_gateway.services.session_cache import _ATTNAMES

    row = ConversationSession.objects.filter(phone_number=phone).values(*_ATTNAMES).first()
    return to_jsonable(row) if row is not None else None


def cache_show_session(*, phone: str) -> dict:
    phone = phone_normalize(phone)
    key = session_key(phone)
    cached = _cache_get(key)
    cached_json = to_jsonable(cached) if cached is not None else None
    database = _session_row(phone)
    differences = []
    if cached_json is not None and database is not None:
        differences = sorted(k for k in database if cached_json.get(k) != database[k])
    return {
        "key": key,
        "ttl": _cache_ttl(key) if cached is not None else None,
        "cache": cached_json,
        "database": database,
        "differences": differences,
        "stale": bool(differences),
        "found": cached is not None or database is not None,
    }


def cache_show_tokens(*, day: dt.date | None = None) -> dict:
    day = day or timezone.localdate()
    key = tokens_key(day)
    cached = _cache_get(key)
    database = token_monitor.tokens_from_database(day)
    return {
        "key": key,
        "ttl": _cache_ttl(key) if cached is not None else None,
        "cache": cached,
        "database": database,
        "differences": ["total"] if cached is not None and int(cached) != database else [],
        "stale": cached is not None and int(cached) != database,
        "found": True,
    }


def _catalog_summary(catalog: dict) -> dict:
    return {
        "clinica": (catalog.get("clinica") or {}).get("nome"),
        "medicos": sorted(m.get("id") for m in catalog.get("medicos", [])),
        "especialidades": sorted(e.get("id") for e in catalog.get("especialidades", [])),
        "convenios": sorted(c.get("id") for c in catalog.get("convenios", [])),
        "exames": sorted(x.get("id") for x in catalog.get("exames", [])),
    }


def cache_show_clinic() -> dict:
    """The cached catalogue, and which active rows the database has (by id), so a stale catalogue shows."""
    from rag_agent.models import ClinicaInfo, Convenio, Especialidade, Exame, Medico

    cached = _cache_get(CLINIC_DATA_KEY)
    info = ClinicaInfo.objects.order_by("pk").first()
    database = {
        "clinica": info.nome if info else None,
        "medicos": sorted(Medico.objects.filter(ativo=True).values_list("pk", flat=True)),
        "especialidades": sorted(Especialidade.objects.filter(ativa=True).values_list("pk", flat=True)),
        "convenios": sorted(Convenio.objects.filter(ativo=True).values_list("pk", flat=True)),
        "exames": sorted(Exame.objects.filter(ativo=True).values_list("pk", flat=True)),
    }
    differences = []
    if isinstance(cached, dict):
        summary = _catalog_summary(cached)
        differences = sorted(k for k in database if summary.get(k) != database[k])
    return {
        "key": CLINIC_DATA_KEY,
        "ttl": _cache_ttl(CLINIC_DATA_KEY) if cached is not None else None,
        "cache": to_jsonable(cached) if cached is not None else None,
        "database": database,
        "differences": differences,
        "stale": bool(differences),
        "found": cached is not None or info is not None,
    }


def cache_show_doctor(*, name: str) -> dict:
    from rag_agent.models import Medico

    doctors = (
        Medico.objects.filter(nome__icontains=name.strip())
        .prefetch_related("especialidades", "convenios", "horarios")
        .order_by("nome")[:5]
    )
    entries = []
    for doctor in doctors:
        key = f"{DOCTOR_KEY_PREFIX}{doctor.pk}"
        cached = _cache_get(key)
        entries.append(
            {
                "key": key,
                "ttl": _cache_ttl(key) if cached is not None else None,
                "cache": to_jsonable(cached) if cached is not None else None,
                "database": to_jsonable(
                    {
                        "id": doctor.pk,
                        "nome": doctor.nome,
                        "crm": doctor.crm,
                        "ativo": doctor.ativo,
                        "preco_consulta": doctor.preco_consulta,
                        "duracao_consulta_minutos": doctor.duracao_consulta_minutos,
                        "especialidades": [e.nome for e in doctor.especialidades.all()],
                        "convenios": [c.nome for c in doctor.convenios.all()],
                        "horarios": [str(h) for h in doctor.horarios.all()],
                    }
                ),
            }
        )
    return {"query": name, "doctors": entries, "found": bool(entries)}


def idempotency_cache_keys(*, key: str) -> list[str]:
    """Where an entry may live: the cache key itself, the key of a client's Idempotency-Key value, or a bare hash."""
    key = key.strip()
    if key.startswith(IDEMPOTENCY_KEY_PREFIX):
        return [key]
    candidates = [idempotency.cache_key(key)]
    if re.fullmatch(r"[0-9a-f]{64}", key):
        candidates.append(f"{IDEMPOTENCY_KEY_PREFIX}{key}")
    return candidates


def cache_show_idempotency(*, key: str) -> dict:
    candidates = idempotency_cache_keys(key=key)
    cache_key, cached = candidates[0], None
    for candidate in candidates:
        cached = _cache_get(candidate)
        if cached is not None:
            cache_key = candidate
            break
    database = None
    phone = cached.get("phone") if isinstance(cached, dict) else None
    if phone:
        # Results live only in the cache; the session of the same phone shows whether the turn reached the DB.
        session = ConversationSession.objects.filter(phone_number=phone).first()
        database = {
            "session_exists": session is not None,
            "current_state": session.current_state if session else None,
            "last_activity": session.last_activity.isoformat() if session else None,
            "messages": session.messages.count() if session else 0,
        }
    return {
        "key": cache_key,
        "ttl": _cache_ttl(cache_key) if cached is not None else None,
        "cache": to_jsonable(cached) if cached is not None else None,
        "database": database,
        "differences": [],
        "stale": False,
        "found": cached is not None,
    }


# --- clear / warm ---------------------------------------------------------------------------------------------
def cache_clear_phones(
    *, phones: set[str], families: tuple[str, ...] = ("sessions", "idempotency"), dry_run: bool = False
) -> list[str]:
    """Finds, and unless `dry_run` removes, these phones' session keys and REST idempotency results; returns the
    keys. Idempotency results go through `idempotency.idempotency_clear`, which also clears this process's
    in-process fallback (and only this process's: see there)."""
    phones = {phone_normalize(p) for p in phones if phone_normalize(p)}
    keys: list[str] = []
    if "sessions" in families:
        keys += [session_key(p) for p in sorted(phones) if _cache_get(session_key(p)) is not None]
        if not dry_run:
            cache_delete_keys(keys=keys)
    if "idempotency" in families:
        try:
            keys += idempotency.idempotency_clear(phones=phones, dry_run=dry_run)
        except Exception as exc:  # noqa: BLE001 - the cache could not be listed or written
            raise ServiceUnavailable(REDIS_UNAVAILABLE_MESSAGE) from exc
    return keys


def cache_delete_keys(*, keys: list[str]) -> int:
    cache = _cache()
    try:
        for start in range(0, len(keys), 500):
            cache.delete_many(keys[start : start + 500])
    except Exception as exc:  # noqa: BLE001
        raise ServiceUnavailable(REDIS_UNAVAILABLE_MESSAGE) from exc
    return len(keys)


def cache_clear(*, family: str | None = None, phone: str | None = None, dry_run: bool = False) -> ClearResult:
    """Remove one family ('all' for every family), or one phone's keys (within a family when both are given)."""
    if not family and not phone:
        raise ValidationFailed(CLEAR_NEEDS_TARGET_MESSAGE)
    names = list(FAMILIES) if family == "all" else [family_resolve(name=family).name] if family else []
    if phone:
        families = tuple(names) or ("sessions", "idempotency")
        keys = cache_clear_phones(phones={phone}, families=families, dry_run=dry_run)
    else:
        keys = [k.name for name in names for k in cache_key_list(family=name, limit=None)]
        if not dry_run:
            cache_delete_keys(keys=keys)
    result = ClearResult(keys=keys, dry_run=dry_run, removed=0 if dry_run else len(keys), families=names)
    if dry_run:
        return result
    logger.info(
        "[CACHE CLEARED] families=%s phone=%s keys=%d",
        ",".join(names) or "sessions,idempotency",
        mask_phone(phone) if phone else "-",
        result.removed,
    )
    return result


def cache_warm() -> dict:
    """Preload the clinic catalogue and each active doctor (the rag_agent selectors build and cache them)."""
    from rag_agent.selectors import clinic_catalog, doctor_detail

    for doctor in clinic_catalog().get("medicos", []):
        doctor_detail(doctor["id"])
    counts = {name: len(cache_key_list(family=name, limit=None)) for name in ("clinic", "doctors")}
    logger.info("[CACHE WARMED] clinic=%d doctors=%d", counts["clinic"], counts["doctors"])
    return counts


# --- tokens ---------------------------------------------------------------------------------------------------
def token_usage_report(*, days: int = 7) -> dict:
    """Daily token use from the durable per-message record, and today's budget as the bot sees it."""
    if days < 1:
        raise ValidationFailed("--days precisa ser 1 ou mais.")
    tz = timezone.get_default_timezone()
    today = timezone.localdate()
    first = today - dt.timedelta(days=days - 1)
    start, _ = local_day_bounds(first)
    _, end = local_day_bounds(today)
    rows = (
        ConversationMessage.objects.filter(timestamp__gte=start, timestamp__lt=end)
        .annotate(day=TruncDate("timestamp", tzinfo=tz))
        .values("day")
        .annotate(i=Sum("input_tokens"), o=Sum("output_tokens"), calls=Count("id", filter=Q(nlu_source="gemini")))
    )
    by_day = {row["day"]: row for row in rows}
    daily = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        row = by_day.get(day, {})
        i, o = row.get("i") or 0, row.get("o") or 0
        daily.append(
            {
                "date": day.isoformat(),
                "input_tokens": i,
                "output_tokens": o,
                "total_tokens": i + o,
                "calls": row.get("calls") or 0,
                "estimated_cost_usd": round(token_monitor.estimate_cost(input_tokens=i, output_tokens=o), 6),
            }
        )
    today_db = daily[-1]["total_tokens"]
    try:
        counter = caches["strict"].get(tokens_key(today))
    except Exception:  # noqa: BLE001 - the report still stands on the database
        counter = None
    counter = int(counter) if counter is not None else None
    # The bot decides on the counter when it exists and rebuilds it from the database when it does not.
    status = BudgetStatus(used=counter if counter is not None else today_db, limit=settings.GEMINI_DAILY_TOKEN_LIMIT)
    totals = {key: sum(d[key] for d in daily) for key in ("input_tokens", "output_tokens", "total_tokens", "calls")} | {
        "estimated_cost_usd": round(sum(d["estimated_cost_usd"] for d in daily), 6)
    }
    return {
        "days": daily,
        "totals": totals,
        "today": {
            "date": today.isoformat(),
            "used_database": today_db,
            "counter_cache": counter,
            "used": status.used,
            "limit": status.limit,
            "remaining": status.remaining,
            "ratio": round(status.ratio, 4),
            "economy_mode": status.economy,
            "exhausted": status.exhausted,
            "economy_threshold": settings.GEMINI_ECONOMY_THRESHOLD,
            "cache_timeout_seconds": token_monitor.get_cache_timeout(status),
        },
        "prices_usd_per_mtok": {
            "input": settings.GEMINI_PRICE_INPUT_PER_MTOK,
            "output": settings.GEMINI_PRICE_OUTPUT_PER_MTOK,
        },
    }
