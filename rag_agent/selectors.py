"""Reads of clinic data. The catalogue and doctor entries are cached; matching works on the cached catalogue."""

import bisect
import contextlib
import contextvars
import datetime as dt
import threading
import uuid
from collections.abc import Iterator

from django.conf import settings
from django.db.models import F, Prefetch, Q
from django.utils import timezone

from core.metrics import cache_event
from core.phones import phone_forms
from rag_agent.cache import CLINIC_DATA_KEY, CLINIC_VERSION_KEY, clinic_cache, doctor_key
from rag_agent.closures import block_over, holiday_name
from rag_agent.matching import Match, MatchIndex
from rag_agent.models import (
    Agendamento,
    BloqueioAgenda,
    ClinicaInfo,
    Convenio,
    Especialidade,
    Exame,
    HorarioTrabalho,
    ListaEspera,
    Medico,
)
from rag_agent.symptoms import Complaint, complaint_find, missing_plan_find, missing_specialty_find

__all__ = [
    "Complaint",
    "Match",
    "appointment_overlapping_for_patient",
    "appointments_in_block",
    "appointments_to_remind",
    "appointments_upcoming_for_phone",
    "blocks_for_doctor",
    "catalog_snapshot",
    "clinic_catalog",
    "complaint_specialty_find",
    "convenio_find",
    "doctor_detail",
    "doctor_find",
    "doctor_list",
    "exam_find",
    "match_index",
    "mentions_find",
    "slot_is_free",
    "slot_list_free",
    "slot_overlaps_booking",
    "specialty_missing_find",
    "slots_nearest",
    "specialty_find",
]

OPEN_STATUSES = (Agendamento.Status.AGENDADO, Agendamento.Status.CONFIRMADO)


def _cache_timeout() -> int:
    from api_gateway.services.token_monitor import token_monitor

    try:
        return token_monitor.get_cache_timeout()
    except Exception:  # noqa: BLE001 - a budget read failure must not stop answering; use the shortest timeout
        return 15 * 60


def _clinic_info_dict() -> dict:
    info = ClinicaInfo.objects.order_by("pk").first()
    fields = ("nome", "endereco", "telefone", "email", "horario_funcionamento", "politicas", "cancelamento_horas")
    if info is None:
        return {**{f: "" for f in ("id", *fields)}, "cancelamento_horas": 0}
    return {"id": info.pk, **{f: getattr(info, f) for f in fields}}


def _catalog_from_database() -> dict:
    active_specialties = Especialidade.objects.filter(ativa=True)
    active_plans = Convenio.objects.filter(ativo=True)
    doctors = (
        Medico.objects.filter(ativo=True)
        .prefetch_related(
            Prefetch("especialidades", queryset=active_specialties.only("id")),
            Prefetch("convenios", queryset=active_plans.only("id")),
        )
        .order_by("nome")
    )
    return {
        # Changes whenever the catalogue is rebuilt, so derived data (the match index) can be memoized on it.
        "versao": uuid.uuid4().hex,
        "clinica": _clinic_info_dict(),
        "especialidades": [
            {"id": e.id, "nome": e.nome, "descricao": e.descricao} for e in active_specialties.order_by("nome")
        ],
        "convenios": [{"id": c.id, "nome": c.nome} for c in active_plans.order_by("nome")],
        "medicos": [
            {
                "id": m.id,
                "nome": m.nome,
                "crm": m.crm,
                "especialidade_ids": sorted(e.id for e in m.especialidades.all()),
                "convenio_ids": sorted(c.id for c in m.convenios.all()),
                "preco_consulta": str(m.preco_consulta),
                "duracao_consulta_minutos": m.duracao_consulta_minutos,
                "bio": m.bio,
            }
            for m in doctors
        ],
        "exames": [
            {"id": x.id, "nome": x.nome, "descricao": x.descricao, "preco": str(x.preco), "preparo": x.preparo}
            for x in Exame.objects.filter(ativo=True).order_by("nome")
        ],
        # The clinic-wide agenda blocks still to come (recess, a municipal holiday): "vocês abrem dia 24?"
        "fechamentos": _blocks_upcoming(Q(medico__isnull=True)),
    }


_snapshot: contextvars.ContextVar[dict | None] = contextvars.ContextVar("clinic_catalog_snapshot", default=None)


@contextlib.contextmanager
def catalog_snapshot() -> Iterator[None]:
    """Within the block, every clinic_catalog() call returns the same catalogue: at most one cache read per
    conversation turn instead of one per lookup, and a turn that sees one consistent version of the clinic."""
    if _snapshot.get() is not None:
        yield
        return
    token = _snapshot.set(clinic_catalog())
    try:
        yield
    finally:
        _snapshot.reset(token)


# This process's last catalogue, reused while the cache's version key still names it: a turn then reads a few bytes
# instead of fetching and unpickling the whole catalogue (33 KB for 200 doctors, the top cost of a large clinic's
# turn). Shared across threads and turns, so callers must treat the catalogue as read-only (they all do).
_catalog_memo: tuple[str, dict] | None = None


def clinic_catalog() -> dict:
    """Everything active the bot may talk about, as plain JSON-able data (cache-aside at `gemini_clinic_data`).

    `gemini_clinic_version` holds the `versao` of the cached catalogue. Both are written together when the
    catalogue is rebuilt and deleted together by every invalidation (`clinic_cache_invalidate`, `cache clear`), so
    while the version key names this process's memo, the memo is what the cache holds."""
    global _catalog_memo
    snapshot = _snapshot.get()
    if snapshot is not None:
        return snapshot
    cache = clinic_cache()
    memo = _catalog_memo
    version = cache.get(CLINIC_VERSION_KEY)
    if memo is not None and version is not None and memo[0] == version:
        cache_event("clinic", "hit")
        return memo[1]
    catalog = cache.get(CLINIC_DATA_KEY)
    if catalog is not None:
        cache_event("clinic", "hit")
    else:
        cache_event("clinic", "miss")
        catalog = _catalog_from_database()
        cache.set_many({CLINIC_DATA_KEY: catalog, CLINIC_VERSION_KEY: catalog["versao"]}, timeout=_cache_timeout())
    # Without a version key (evicted, or an invalidation raced this read) the memo is stored but never trusted.
    _catalog_memo = (catalog["versao"], catalog)
    return catalog


def doctor_detail(doctor_id: int) -> dict | None:
    """One doctor (active or not) with specialty and plan names and weekly hours (cached at `gemini_doctor_{id}`)."""
    cache = clinic_cache()
    key = doctor_key(doctor_id)
    detail = cache.get(key)
    if detail is not None:
        cache_event("doctor", "hit")
        return detail
    cache_event("doctor", "miss")
    medico = (
        Medico.objects.filter(pk=doctor_id)
        .prefetch_related(
            Prefetch("especialidades", queryset=Especialidade.objects.order_by("nome")),
            Prefetch("convenios", queryset=Convenio.objects.order_by("nome")),
            Prefetch("horarios", queryset=HorarioTrabalho.objects.order_by("dia_semana", "hora_inicio")),
        )
        .first()
    )
    if medico is None:
        return None
    detail = {
        "id": medico.id,
        "nome": medico.nome,
        "crm": medico.crm,
        "ativo": medico.ativo,
        "bio": medico.bio,
        "preco_consulta": str(medico.preco_consulta),
        "duracao_consulta_minutos": medico.duracao_consulta_minutos,
        "especialidade_ids": [e.id for e in medico.especialidades.all() if e.ativa],
        "especialidades": [e.nome for e in medico.especialidades.all() if e.ativa],
        "convenio_ids": [c.id for c in medico.convenios.all() if c.ativo],
        "convenios": [c.nome for c in medico.convenios.all() if c.ativo],
        "horarios": [
            {"dia_semana": h.dia_semana, "inicio": f"{h.hora_inicio:%H:%M}", "fim": f"{h.hora_fim:%H:%M}"}
            for h in medico.horarios.all()
        ],
        "bloqueios": blocks_for_doctor(medico.id),
    }
    cache.set(key, detail, timeout=_cache_timeout())
    return detail


def blocks_for_doctor(doctor_id: int, *, since: dt.date | None = None) -> list[dict]:
    """The doctor's agenda blocks and the clinic-wide ones that end on or after `since` (default: today), as
    dicts (rag_agent.closures). Every change to a block drops the cached doctor entries (rag_agent.signals)."""
    return _blocks_upcoming(Q(medico_id=doctor_id) | Q(medico__isnull=True), since=since)


def _blocks_upcoming(whose: Q, *, since: dt.date | None = None) -> list[dict]:
    rows = BloqueioAgenda.objects.filter(whose, data_fim__gte=since or timezone.localdate())
    # Whole days first on both databases (SQLite sorts NULL first, PostgreSQL last).
    return [b.as_dict() for b in rows.order_by("data_inicio", F("hora_inicio").asc(nulls_first=True), "pk")]


# -- matching ---------------------------------------------------------------------------------------------------------

_index_lock = threading.Lock()
_index_memo: dict[str, MatchIndex] = {}


def match_index(catalog: dict | None = None) -> MatchIndex:
    """The normalized candidates for the current catalogue, built once per catalogue version in this process."""
    catalog = catalog if catalog is not None else clinic_catalog()
    version = catalog.get("versao", "")
    index = _index_memo.get(version)
    if index is None:
        index = MatchIndex(catalog)
        with _index_lock:
            _index_memo.clear()  # only the current version is useful
            _index_memo[version] = index
    return index


def specialty_find(query: str, *, limit: int = 3) -> list[Match]:
    return match_index().find("especialidade", query, limit=limit)


def doctor_find(query: str, *, especialidade_id: int | None = None, limit: int = 3) -> list[Match]:
    catalog = clinic_catalog()
    allowed = None
    if especialidade_id is not None:
        allowed = {m["id"] for m in catalog["medicos"] if especialidade_id in m["especialidade_ids"]}
    return match_index(catalog).find("medico", query, limit=limit, allowed_ids=allowed)


def doctor_by_first_name(word: str) -> Match | None:
    return match_index().doctor_by_first_name(word)


def convenio_find(query: str, *, limit: int = 3) -> list[Match]:
    return match_index().find("convenio", query, limit=limit)


def exam_find(query: str, *, limit: int = 3) -> list[Match]:
    return match_index().find("exame", query, limit=limit)


def mentions_find(text: str) -> dict[str, list[Match]]:
    """Names mentioned inside a free sentence, by kind ("especialidade", "medico", "convenio", "exame").

    The rules that keep ordinary sentences free of false positives are in rag_agent.matching's docstring.
    """
    return match_index().mentions(text)


def complaint_specialty_find(text: str) -> Complaint | None:
    """A common complaint in a free sentence ("dor nas costas") and the clinic's specialty that sees it."""
    return complaint_find(text, clinic_catalog()["especialidades"])


def specialty_missing_find(text: str) -> str | None:
    """A specialty named in a free sentence that the clinic does not have ("neurologista" -> "Neurologia")."""
    return missing_specialty_find(text, clinic_catalog()["especialidades"])


def plan_missing_find(text: str) -> str | None:
    """A health plan named in a free sentence that the clinic does not take ("hapvida" -> "Hapvida")."""
    return missing_plan_find(text, clinic_catalog()["convenios"])


def doctor_list(*, especialidade_id: int | None = None, convenio_id: int | None = None) -> list[dict]:
    return [
        m
        for m in clinic_catalog()["medicos"]
        if (especialidade_id is None or especialidade_id in m["especialidade_ids"])
        and (convenio_id is None or convenio_id in m["convenio_ids"])
    ]


# -- free slots -------------------------------------------------------------------------------------------------------


def _clinic_tz():
    return timezone.get_default_timezone()


def _parse_hhmm(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


def doctor_grid(detail: dict, day: dt.date) -> list[dt.time]:
    """Start times of a doctor's slots on a day: steps of the consultation length that end by the shift end; none
    on a holiday the clinic is closed, none that would fall into an agenda block (rag_agent.closures)."""
    if holiday_name(day):
        return []
    minutes = detail["duracao_consulta_minutos"]
    step = dt.timedelta(minutes=minutes)
    times: list[dt.time] = []
    for shift in detail["horarios"]:
        if shift["dia_semana"] != day.weekday():
            continue
        cursor = dt.datetime.combine(day, _parse_hhmm(shift["inicio"]))
        end = dt.datetime.combine(day, _parse_hhmm(shift["fim"]))
        while cursor + step <= end:
            times.append(cursor.time())
            cursor += step
    blocks = detail.get("bloqueios") or []  # .get: a doctor entry cached before blocks existed
    times = [t for t in times if not block_over(blocks, day, t, minutes)]
    return sorted(set(times))


def _minute_of_day(time: dt.time) -> int:
    return time.hour * 60 + time.minute


def _booked(medico_id: int, first: dt.date, last: dt.date, *, exclude_id: int | None = None) -> dict:
    """The doctor's booked consultations per day, as (start, end) minutes of the day (cancelled ones are free)."""
    taken = Agendamento.objects.filter(medico_id=medico_id, data__gte=first, data__lte=last).exclude(
        status=Agendamento.Status.CANCELADO
    )
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    booked: dict[dt.date, list[tuple[int, int]]] = {}
    rows = taken.values_list("data", "hora", "duracao_minutos", "medico__duracao_consulta_minutos")
    for day, time, own, doctors in rows:
        start = _minute_of_day(time)
        booked.setdefault(day, []).append((start, start + (own or doctors)))
    return booked


def _free_on_grid(grid: list[dt.time], booked: list[tuple[int, int]], minutes: int) -> list[dt.time]:
    """The grid times whose consultation of `minutes` overlaps none of the day's bookings. A booking blocks every
    slot it overlaps, not only the one starting at its minute: one made before the doctor's length changed, or
    entered off the grid, still keeps its time. Each booking marks its range of the sorted grid (bisect)."""
    if not booked:
        return grid
    starts = [_minute_of_day(t) for t in grid]
    blocked: set[int] = set()
    for start, end in booked:  # a slot at g overlaps [start, end) when start - minutes < g < end
        blocked.update(range(bisect.bisect_right(starts, start - minutes), bisect.bisect_left(starts, end)))
    return [t for i, t in enumerate(grid) if i not in blocked]


def slot_overlaps_booking(
    *, medico_id: int, data: dt.date, hora: dt.time, minutes: int, exclude_id: int | None = None
) -> bool:
    """Whether a consultation of `minutes` at that time would overlap one the doctor already has that day."""
    start = _minute_of_day(hora)
    booked = _booked(medico_id, data, data, exclude_id=exclude_id).get(data, [])
    return any(other_start < start + minutes and start < other_end for other_start, other_end in booked)


def slot_list_free(
    *,
    medico_id: int,
    start: dt.date,
    days: int = 14,
    limit: int | None = None,
    now: dt.datetime | None = None,
    exclude_agendamento_id: int | None = None,
) -> list[dt.datetime]:
    """Free slots (aware, America/Sao_Paulo) of an active doctor from `start` for `days` days, starting at least
    BOOKING_MIN_NOTICE_MINUTES after now and no later than the booking horizon (BOOKING_HORIZON_DAYS)."""
    now = now or timezone.now()
    days = min(days, (booking_last_day(now) - start).days + 1)  # a slot the booking would refuse is never offered
    detail = doctor_detail(medico_id)
    if detail is None or not detail["ativo"] or not detail["horarios"] or days <= 0:
        return []
    earliest = now + dt.timedelta(minutes=settings.BOOKING_MIN_NOTICE_MINUTES)
    tz = _clinic_tz()
    last = start + dt.timedelta(days=days - 1)
    booked = _booked(medico_id, start, last, exclude_id=exclude_agendamento_id)
    free: list[dt.datetime] = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        for time in _free_on_grid(doctor_grid(detail, day), booked.get(day, []), detail["duracao_consulta_minutos"]):
            when = dt.datetime.combine(day, time, tzinfo=tz)
            if when > now and when >= earliest:
                free.append(when)
                if limit is not None and len(free) >= limit:
                    return free
    return free


def booking_last_day(now: dt.datetime | None = None) -> dt.date:
    """The last day the agenda is open for booking (BOOKING_HORIZON_DAYS from today): "em 1000 anos" is no date."""
    today = timezone.localtime(now or timezone.now(), _clinic_tz()).date()
    return today + dt.timedelta(days=settings.BOOKING_HORIZON_DAYS)


def slot_is_free(*, medico_id: int, when: dt.datetime, now: dt.datetime | None = None) -> bool:
    local = timezone.localtime(when, _clinic_tz()) if timezone.is_aware(when) else when.replace(tzinfo=_clinic_tz())
    return local in slot_list_free(medico_id=medico_id, start=local.date(), days=1, now=now)


def slots_nearest(
    *, medico_id: int, wanted: dt.datetime, limit: int = 3, now: dt.datetime | None = None
) -> list[dt.datetime]:
    """Free slots closest to `wanted`: that day's by distance in time first, then the other days nearest first
    (a day before as well as after: "sábado" with a Thursday/Friday doctor is best answered by Friday; the day
    after wins a tie)."""
    tz = _clinic_tz()
    wanted = timezone.localtime(wanted, tz) if timezone.is_aware(wanted) else wanted.replace(tzinfo=tz)
    today = timezone.localtime(now or timezone.now(), tz).date()
    start = max(today, wanted.date() - dt.timedelta(days=6))
    days = (wanted.date() - start).days + settings.SLOT_SEARCH_DAYS
    free = slot_list_free(medico_id=medico_id, start=start, days=days, now=now)
    same_day = sorted((s for s in free if s.date() == wanted.date()), key=lambda s: (abs(s - wanted), s))
    other_days = sorted(
        {s.date() for s in free} - {wanted.date()}, key=lambda d: (abs((d - wanted.date()).days), d < wanted.date())
    )
    nearest = same_day + [s for d in other_days for s in free if s.date() == d]
    return nearest[:limit]


def appointment_overlapping_for_patient(
    *, phone: str, name: str, data: dt.date, hora: dt.time, minutes: int, exclude_id: int | None = None
) -> Agendamento | None:
    """An open appointment of the same person (phone and name) that overlaps [hora, hora + minutes) on that day.

    One person cannot sit in two consultations at once; a parent booking two children at the same time (same
    phone, other names) is allowed."""
    start = dt.datetime.combine(data, hora)
    end = start + dt.timedelta(minutes=minutes)
    wanted = " ".join((name or "").casefold().split())
    same_day = (
        Agendamento.objects.filter(paciente_telefone__in=phone_forms(phone), data=data, status__in=OPEN_STATUSES)
        .exclude(pk=exclude_id)
        .select_related("medico")
    )
    for other in same_day:
        if " ".join(other.paciente_nome.casefold().split()) != wanted:
            continue
        other_start = dt.datetime.combine(data, other.hora)
        if other_start < end and start < other_start + dt.timedelta(minutes=other.minutes):
            return other
    return None


def _not_started(now: dt.datetime | None = None) -> Q:
    """Appointments starting now or later (clinic time)."""
    local = timezone.localtime(now or timezone.now(), _clinic_tz())
    return Q(data__gt=local.date()) | Q(data=local.date(), hora__gte=local.time().replace(microsecond=0))


def appointments_upcoming_for_phone(phone: str, *, now: dt.datetime | None = None) -> list[Agendamento]:
    return list(
        Agendamento.objects.filter(paciente_telefone__in=phone_forms(phone), status__in=OPEN_STATUSES)
        .filter(_not_started(now))
        .select_related("medico", "especialidade", "convenio")
        .order_by("data", "hora")
    )


def appointment_for_phone(phone: str, appointment_id: int) -> Agendamento | None:
    """One of this phone's appointments, whatever its status or date."""
    return Agendamento.objects.filter(pk=appointment_id, paciente_telefone__in=phone_forms(phone)).first()


def plan_last_used(phone: str, name: str) -> int | None:
    """The plan of this patient's most recent appointment made from this phone (None: private, or none yet)."""
    last = (
        Agendamento.objects.filter(paciente_telefone__in=phone_forms(phone), paciente_nome__iexact=name)
        .order_by("-criado_em")
        .values_list("convenio_id", flat=True)
        .first()
    )
    return last


def appointments_to_remind(
    *, earliest: dt.datetime, latest: dt.datetime, changed_before: dt.datetime
) -> list[Agendamento]:
    """Appointments still "agendado" with an active doctor that start in [earliest, latest], were booked (or last
    moved) before `changed_before` and have had no reminder yet, soonest first."""
    tz = _clinic_tz()
    first, last = timezone.localtime(earliest, tz), timezone.localtime(latest, tz)
    candidates = (
        Agendamento.objects.filter(
            status=Agendamento.Status.AGENDADO,
            medico__ativo=True,  # a deactivated doctor's appointments are the staff's to move, not to confirm
            lembrete_enviado_em__isnull=True,
            atualizado_em__lt=changed_before,
            data__range=(first.date(), last.date()),
        )
        .select_related("medico")
        .order_by("data", "hora")
    )
    due = [a for a in candidates if first <= timezone.make_aware(dt.datetime.combine(a.data, a.hora), tz) <= last]
    # One inside an agenda block is the staff's to move (the doctor is away): "confirm your presence" would mislead.
    blocks = list(BloqueioAgenda.objects.filter(data_inicio__lte=last.date(), data_fim__gte=first.date()))
    return [a for a in due if not _in_blocks(a, blocks)]


def _in_blocks(appointment: Agendamento, blocks: list[BloqueioAgenda]) -> bool:
    mine = [b.as_dict() for b in blocks if b.medico_id in (None, appointment.medico_id)]
    return block_over(mine, appointment.data, appointment.hora, appointment.minutes) is not None


def appointments_blocked_untold(*, now: dt.datetime | None = None) -> list[Agendamento]:
    """The open appointments still to start that an agenda block now covers and whose patient has not been told
    (`aviso_bloqueio_em` empty), soonest first."""
    today = timezone.localtime(now or timezone.now(), _clinic_tz()).date()
    blocks = list(BloqueioAgenda.objects.filter(data_fim__gte=today))
    if not blocks:
        return []
    within = Q()
    for block in blocks:  # the dates (and the doctor) of some block: the database narrows, _in_blocks decides
        days = Q(data__range=(block.data_inicio, block.data_fim))
        within |= days if block.medico_id is None else days & Q(medico_id=block.medico_id)
    rows = Agendamento.objects.filter(
        within, _not_started(now), status__in=OPEN_STATUSES, aviso_bloqueio_em__isnull=True
    ).select_related("medico")
    return [a for a in rows.order_by("data", "hora") if _in_blocks(a, blocks)]


def appointments_in_block(block: BloqueioAgenda) -> list[Agendamento]:
    """The open appointments still to start that fall into `block` (the staff must move or cancel them)."""
    rows = Agendamento.objects.filter(
        _not_started(),
        status__in=OPEN_STATUSES,
        data__gte=block.data_inicio,
        data__lte=block.data_fim,
    )
    if block.medico_id is not None:
        rows = rows.filter(medico_id=block.medico_id)
    return [a for a in rows.select_related("medico").order_by("data", "hora") if _in_blocks(a, [block])]


def waitlist_to_tell(*, now: dt.datetime, told_before: dt.datetime, max_notices: int) -> dict[int, list[ListaEspera]]:
    """The patients waiting for a free time whom a notice may reach now (never told, or last told before
    `told_before` and fewer than `max_notices` times), by active doctor, first in line first."""
    entries = (
        ListaEspera.objects.filter(situacao__in=ListaEspera.OPEN, expira_em__gte=now, avisos__lt=max_notices)
        .filter(Q(avisado_em__isnull=True) | Q(avisado_em__lt=told_before))
        .filter(medico__ativo=True)
    )
    waiting: dict[int, list[ListaEspera]] = {}
    for entry in entries.select_related("medico").order_by("criado_em", "pk"):
        waiting.setdefault(entry.medico_id, []).append(entry)
    return waiting


def waitlist_told_since(medico_id: int, since: dt.datetime) -> int:
    """How many of the doctor's waiting patients were told of a free time since `since` (and have not booked)."""
    return ListaEspera.objects.filter(
        medico_id=medico_id, situacao=ListaEspera.Situacao.AVISADO, avisado_em__gte=since
    ).count()


def waitlist_entry_told(entry_id: int) -> bool:
    """Whether the entry is still open with its patient told of a free time (the notice may still go out)."""
    return ListaEspera.objects.filter(pk=entry_id, situacao=ListaEspera.Situacao.AVISADO).exists()


def waitlist_open_for_phone(phone: str) -> list[ListaEspera]:
    """The waitlists of doctors still seeing patients that the patient is on (waiting, or told of a time they have
    not booked yet), oldest first."""
    entries = ListaEspera.objects.filter(
        paciente_telefone__in=phone_forms(phone), situacao__in=ListaEspera.OPEN, medico__ativo=True
    )
    return list(entries.select_related("medico").order_by("criado_em", "pk"))
