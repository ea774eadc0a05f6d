"""Dates and times in conversational Brazilian Portuguese, resolved to clinic-local values.

Duckling (pyduckling-native-phihos) does the heavy lifting; it was measured far better than dateparser on
patient phrasing (see docs/decisions.md). This module adds what Duckling misses or gets wrong for a clinic:
numeric dd/mm[/yyyy] dates, "daqui a N dias", "dia primeiro", hours read inside clinic hours ("9h" said at 10:00
is 09:00, not 21:00; "às 2" is 14:00), ordinal options that are not weekdays ("a segunda opção"), greetings that
are not periods ("boa tarde"), and "sábado que vem" meaning the coming Saturday.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

CLINIC_TZ = ZoneInfo("America/Sao_Paulo")
# A clock hour written without am/pm ("9h", "às 2") is read inside these hours when one reading fits.
CLINIC_FIRST_HOUR = 7
CLINIC_LAST_HOUR = 19
MAX_TEXT_LENGTH = 2000


@dataclass(frozen=True)
class DateTimeHint:
    date: date | None = None
    time: time | None = None
    periodo: str | None = None  # "manha" | "tarde" | "noite"
    # How precise the date is: "day", or "week"/"month" when the patient named only a week or a month
    # ("semana que vem" gives that week's Monday).
    grain: str | None = None
    # Bounds on the time of day: "depois das 17h" (after, inclusive), "antes das 10h" (before, exclusive),
    # "entre 9 e 11" (both). A bound is not a wanted time: `time` stays None for it.
    after: time | None = None
    before: time | None = None
    # The weekday the patient named beside a day of the month that falls on another one ("sexta dia 10" when the
    # 10th is a Thursday): the day of the month is taken, and the caller says which weekday it is.
    weekday_said: int | None = None
    # A date that does not exist, as the patient wrote it ("30/02", "31 de novembro"): no date is taken for it.
    invalid: str | None = None
    # Weekdays the patient ruled out ("qualquer dia menos segunda", "sexta não posso"); 0 = Monday.
    ruled_out: tuple[int, ...] = ()
    # Character spans of the input that were read as dates/times, so callers can ignore them elsewhere.
    spans: tuple[tuple[int, int], ...] = ()


def fold(text: str) -> str:
    """Lower-case and strip accents character by character, so offsets stay valid on the original text."""
    out = []
    for char in text:
        lowered = char.lower()
        if len(lowered) != 1:
            lowered = char
        base = unicodedata.normalize("NFD", lowered)[0]
        if unicodedata.category(char) == "Cc" or char in "\u2028\u2029":
            base = " "
        out.append(base)
    return "".join(out)


# --- Duckling, initialised once per process --------------------------------------------------------------------

_duckling_lock = threading.Lock()
_duckling: dict | None = None


def _duckling_state() -> dict | None:
    global _duckling
    if _duckling is not None:
        return _duckling
    with _duckling_lock:
        if _duckling is None:
            try:
                import duckling

                duckling.init()
                tzdb = duckling.load_time_zones("/usr/share/zoneinfo")
                lang = duckling.parse_lang("PT")
                locale = duckling.parse_locale("PT_BR", duckling.default_locale_lang(lang))
                _duckling = {
                    "module": duckling,
                    "tzdb": tzdb,
                    "locale": locale,
                    "dims": duckling.parse_dimensions(["time"]),
                }
            except Exception:  # noqa: BLE001 - without Duckling the regex layer still answers the common cases
                logger.exception("duckling unavailable; dates fall back to the regex layer only")
                _duckling = {}
    return _duckling or None


def _duckling_parse(text: str, now: datetime) -> list[dict]:
    """Duckling over short windows of the text, with offsets mapped back onto the whole text.

    Duckling's cost grows exponentially with the number of time words it can compose in one input (measured:
    "amanhã às 15h, " four times takes 64 s), so it never sees more than a few time words at once, nor more than
    a few windows per message.
    """
    state = _duckling_state()
    if not state or not text.strip():
        return []
    module = state["module"]
    try:
        ref = module.parse_ref_time(state["tzdb"], "America/Sao_Paulo", int(now.timestamp()))
        context = module.Context(ref, state["locale"])
        found = []
        for start, end in _windows(text):
            for entity in module.parse(text[start:end], context, state["dims"], False):
                entity["start"] = entity.get("start", 0) + start
                entity["end"] = entity.get("end", 0) + start
                found.append(entity)
        return found
    except Exception:  # noqa: BLE001 - a parser failure must never break a turn
        logger.exception("duckling failed on a message of %d chars", len(text))
        return []


# Words Duckling can build a time from; a window holds at most DUCKLING_MAX_TRIGGERS of them.
_TRIGGER = re.compile(
    r"\d+|\b(?:hoje|amanha|ontem|segunda|terca|quarta|quinta|sexta|sabado|domingo|manha|tarde|noite|madrugada|meio"
    r"|meia|semana|mes|ano|proxim[oa]|passad[oa]|depois|antes|uma|duas|tres|quatro|cinco|seis|sete|oito|nove|dez"
    r"|onze|doze|janeiro|fevereiro|marco|abril|maio|junho|julho|agosto|setembro|outubro|novembro|dezembro)\b"
)
_CLAUSE_BREAK = re.compile(r"[.,;!?\n]+")
DUCKLING_MAX_TRIGGERS = 3
DUCKLING_MAX_WINDOWS = 8
DUCKLING_CONTEXT_CHARS = 30


def _windows(text: str) -> list[tuple[int, int]]:
    windows: list[tuple[int, int]] = []
    clause_start = 0
    for clause_end in [m.start() for m in _CLAUSE_BREAK.finditer(text)] + [len(text)]:
        triggers = [m.start() for m in _TRIGGER.finditer(text, clause_start, clause_end)]
        starts = [clause_start] + triggers[DUCKLING_MAX_TRIGGERS::DUCKLING_MAX_TRIGGERS]
        ends = starts[1:] + [clause_end]
        for start, end in zip(starts, ends, strict=True):
            inside = list(_TRIGGER.finditer(text, start, end))
            if inside:
                # Duckling's cost also grows with length: keep only some context around the time words.
                first = max(start, inside[0].start() - DUCKLING_CONTEXT_CHARS)
                last = min(end, inside[-1].end() + DUCKLING_CONTEXT_CHARS)
                while first > start and not text[first - 1].isspace():
                    first -= 1
                while last < end and not text[last].isspace():
                    last += 1
                windows.append((first, last))
                if len(windows) >= DUCKLING_MAX_WINDOWS:
                    return windows
        clause_start = min(clause_end + 1, len(text))
    return windows


# --- The regex layer (runs on folded text) -----------------------------------------------------------------------

_WEEKDAYS = {"segunda": 0, "terca": 1, "quarta": 2, "quinta": 3, "sexta": 4, "sabado": 5, "domingo": 6}
_WEEKDAY_NAMES = "|".join(_WEEKDAYS)  # for patterns: "segunda|terca|..."
_MONTHS = {
    "janeiro": 1,
    "fevereiro": 2,
    "marco": 3,
    "abril": 4,
    "maio": 5,
    "junho": 6,
    "julho": 7,
    "agosto": 8,
    "setembro": 9,
    "outubro": 10,
    "novembro": 11,
    "dezembro": 12,
}
_ORDINAL = r"(?:primeir|segund|terceir|quart|quint|sext|setim|oitav|non|decim|ultim)[oa]s?"
_NOT_DATES = re.compile(
    # Things Duckling would read as a weekday or a time but that are not: ordinals of options, greetings,
    # durations, and money.
    rf"\b(?:(?:o|a|os|as|pela|pelo|na|no)\s+)?{_ORDINAL}\s+(?:opcao|opcoes|alternativa|horario|data|dia da lista"
    rf"|da lista|op\b|medic[oa]|dr[a]?\b|doutor[a]?|especialidade|vez|consulta)"
    r"|\b(?:bom\s+dia|boa\s+tarde|boa\s+noite|bom\s+final\s+de\s+semana|bom\s+fim\s+de\s+semana|boa\s+semana)\b"
    r"|\b(?:de|por|durante|ha|faz)\s+\d{1,2}\s*(?:horas?|hrs?|h)\b(?!\s*\d)"
    r"|r\$\s*\d[\d.,]*"
    # Since when a complaint started ("dor nas costas faz uma semana", "febre desde ontem") is no wanted date.
    r"|(?<!daqui )\b(?:faz|ha)\s+(?:uma?|\d+|dois|duas|tres|alguns|algumas|uns|umas|mais\s+de\s+uma?)\s+"
    r"(?:dias?|semanas?|meses|mes|anos?)(?:\s+(?:ja|atras))?\b"
    r"|\bdesde\s+(?:ontem|anteontem|cedo|hoje|o\s+fim\s+de\s+semana|a\s+semana\s+passada|semana\s+passada"
    r"|o\s+mes\s+passado|segunda|terca|quarta|quinta|sexta|sabado|domingo)\b"
    # The past the patient tells about ("me consultava com ele ano passado") is no date to book.
    r"|\b(?:(?:no|o|ate\s+o)\s+)?(?:ano|mes)\s+(?:passado|retrasado)\b|\b(?:na\s+)?semana\s+passada\b"
)
_ISO_DATE = re.compile(r"(?<![\d/-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d/-])")
_NUMERIC_DATE = re.compile(r"(?<![\d/-])(\d{1,2})\s*[/-]\s*(\d{1,2})(?:\s*[/-]\s*(\d{4}|\d{2}))?(?![\d/])")
_DAY_MONTH_NAME = re.compile(
    r"\b(?:dia\s+)?(\d{1,2}|primeiro)\s*(?:º|o|°)?\s+de\s+(" + "|".join(_MONTHS) + r")(?:\s+de\s+(\d{4}))?\b"
)
_DAY_NEXT_MONTH = re.compile(
    r"\bdia\s+(\d{1,2}|primeiro)\s+d[oe]\s+(?:mes\s+que\s+vem|proximo\s+mes|outro\s+mes|mes\s+seguinte)\b"
)
_DIA_PRIMEIRO = re.compile(r"\bdia\s+(?:primeiro|1o|1º|1°)\b")
_RELATIVE_DAYS = re.compile(
    r"\b(?:daqui\s+a|daqui|em|dentro\s+de)\s+(\d{1,2}|um|uma|dois|duas|tres)\s+(dias?|semanas?)\b"
)
# "sexta dia 10", "qua 23 9h": the day of the month is what the patient looks at; Duckling looks for a Friday the
# 10th (months away, or next year), or drops the number. Without "dia" the number may be an hour ("quarta 10"):
# it is a day when a time follows, when that day is that weekday, or when it cannot be a clinic hour.
_WEEKDAY_AND_DAY = re.compile(
    rf"\b({_WEEKDAY_NAMES})(?:-feira)?\s*,?\s+(dia\s+)?(\d{{1,2}})\b"
    r"(?!\s*(?:[/:h]|horas?\b|hrs?\b|e\s+meia|d[ae]\s+(?:manha|tarde|noite|madrugada)))"
)
_DOTTED_CLOCK = re.compile(
    r"(?<![\d.,])([01]?\d|2[0-3])\.([0-5]\d)(?![\d.,])(?!\s*(?:reais|real|kg|g|mg|ml|cm|m|graus|anos|%))"
)
_DIA_BEFORE_CLOCK = re.compile(r"\bdia\s+(?=\d{1,2}\s*(?::\d{2}|h\b|h\d|hs\b|hrs?\b))")
_CLOCK_NEXT = re.compile(r"^\s*,?\s*(?:as\s+|a\s+)?\d{1,2}\s*(?:h|:\d\d|horas?\b)")
# "quarta, não, quinta", "às 10, quer dizer 11", "terça... opa, quinta": what follows the last correction wins.
_CORRECTION = re.compile(
    r"(?:[,.;]+\s*|\s+)(?:nao|n)\s*[,.;]+\s*|\b(?:quer dizer|ou melhor|opa|alias|digo|corrigindo)\b[,:]?\s*"
    r"|[,.;]+\s*melhor\b[,:]?\s*"
)
# "fim de semana": Duckling's Friday-18h-to-Monday interval read as an evening; for a clinic it is the Saturday
_WEEKEND = re.compile(r"\b(?:fim|final)\s+de\s+semana\b")
_DAYS_IN_PAST_KEPT = 60  # "30/11" said on 2 December is a date gone by, not next year's
# A day or a part of the day the patient rules out: "segunda não, quarta", "menos segunda", "de manhã não posso".
_ONE_DAY = rf"(?:(?:{_WEEKDAY_NAMES})(?:-feira)?|hoje|amanha|dia\s+\d{{1,2}})"
_DAY_WORD = rf"{_ONE_DAY}(?:\s*(?:,|e|nem|ou)\s*{_ONE_DAY})*"  # "segunda e terça não posso"
_DAY_WORD_AFTER_NO = rf"{_ONE_DAY}(?:\s*(?:e|nem|ou)\s*{_ONE_DAY})*"  # "não posso sexta, quinta sim": Friday only
_NO_AFTER = r"\s+(?:eu\s+)?(?:nao|n)(?=\s*[,.;!]|\s*$|\s+(?:posso|consigo|da|rola|quero|pode|vai|vou|serve|tenho))"
_NO_BEFORE = (
    r"\b(?:menos|exceto|tirando|nem|nao\s+pode\s+ser|nao\s+posso|nao\s+consigo|nao\s+da|nao\s+quero"
    r"|nao\s+vai\s+dar)\s+(?:na\s+|no\s+|de\s+|a\s+|o\s+|pela\s+|as\s+|aos\s+)?"
)
_NEGATED_DAY = re.compile(rf"\b{_DAY_WORD}{_NO_AFTER}|{_NO_BEFORE}{_DAY_WORD_AFTER_NO}\b")
# Weekdays the patient can choose between: "terça ou quinta", "só posso segunda e quarta". Every other weekday is
# ruled out, so the list shows those days. With "e" only after "só": "cancela as de terça e quinta" names two.
_WEEKDAY_ARTICLE = r"(?:(?:na|no|nas|nos|a|as|aos)\s+)?"
_ONE_WEEKDAY = rf"{_WEEKDAY_ARTICLE}(?:{_WEEKDAY_NAMES})s?(?:-feiras?)?"
_EITHER_DAY = re.compile(
    rf"\b{_ONE_WEEKDAY}(?:\s*,\s*{_ONE_WEEKDAY})*\s+ou\s+{_ONE_WEEKDAY}\b"
    rf"|\b(?:so|somente|apenas)\s+(?:(?:posso|consigo|da|pode\s+ser)\s+)?{_ONE_WEEKDAY}"
    rf"(?:\s*,\s*{_ONE_WEEKDAY})*\s+(?:e|ou)\s+{_ONE_WEEKDAY}\b"
)
_NEGATED_PERIOD = re.compile(rf"\b(?:de\s+|pela\s+|na\s+|a\s+)?(manha|tarde){_NO_AFTER}|{_NO_BEFORE}(manha|tarde)\b")
_ONLY_PERIOD = re.compile(
    r"\bso\s+(?:(?:pode|posso|podemos|consigo|consegue|da|dá)\s+)?(?:ir\s+)?"
    r"(?:na\s+parte\s+da|no\s+periodo\s+da|a|de|pela|na)\s+(manha|tarde|noite)\b"
)
_WEEKDAY_ABBREVIATIONS = {name[:3]: name for name in _WEEKDAYS}  # "seg" -> "segunda", ... "dom" -> "domingo"
_WEEKDAY_ABBREVIATION = re.compile(r"^\s*(seg|ter|qua|qui|sex|sab|dom)\.?(?![a-z])")
_CLOCK = (
    r"(\d{1,2})(?:\s*h\s*(\d{2})|:(\d{2}))?\s*(?:h|hs|hrs|horas?)?(?![\d/])"
    r"(?!\s*(?:dias?|semanas?|mes|meses|anos?|min))"  # "depois de 2 dias" is no hour
)
_BOUND_AFTER = re.compile(r"\b(?:depois|dps|apos|a\s+partir|partir)\s+(?:d[aeo]s?\s+|as\s+)*" + _CLOCK)
_BOUND_BEFORE = re.compile(r"\b(?:antes|ate)\s+(?:d[aeo]s?\s+|as\s+)*" + _CLOCK)
# "entre 9 e 12", "das 9 às 12": a window
_BOUND_BETWEEN = re.compile(
    r"\b(?:entre\s+(?:as\s+)?" + _CLOCK + r"\s+e|das\s+" + _CLOCK + r"\s+(?:as|a|ate))\s+(?:as\s+)?" + _CLOCK
)


def _bound(hour: str, minutes_h: str | None, minutes_colon: str | None) -> time | None:
    return _clock_reading(int(hour), int(minutes_h or minutes_colon or 0))


def _clock_reading(hour: int, minute: int) -> time | None:
    """An hour said without a period: its reading inside clinic hours ("às 3" is 15:00), None if no clock time."""
    if hour > 23 or minute > 59:
        return None
    readings = [time(hour, minute)] + ([time(hour + 12, minute)] if hour < 12 else [])
    return _clinic_hour(readings, time(hour, minute))


# Fixed-date holidays by name ("vocês abrem no natal?"), only after a preposition: "sou de Natal" is a city.
_HOLIDAY_DAYS = {
    "vespera de natal": (12, 24),
    "natal": (12, 25),
    "reveillon": (12, 31),
    "ano novo": (1, 1),
    "tiradentes": (4, 21),
    "dia do trabalho": (5, 1),
    "dia do trabalhador": (5, 1),
    "independencia": (9, 7),
    "dia das criancas": (10, 12),
    "nossa senhora aparecida": (10, 12),
    "finados": (11, 2),
    "proclamacao da republica": (11, 15),
    "consciencia negra": (11, 20),
}
_HOLIDAY_WORDS = re.compile(
    r"\b(?:no|na|do|da|pro|pra|ate o|feriado de|feriado do|feriado da|dia de|semana do|semana de)\s+("
    + "|".join(sorted(_HOLIDAY_DAYS, key=len, reverse=True))
    + r")\b|\b(vespera de natal)\b"
)
_WEEKDAY_NEXT = re.compile(
    r"\b(?:(?:n[oa]\s+)?(?:proxim[oa]|outr[oa])\s+(segunda|terca|quarta|quinta|sexta|sabado|domingo)(?:-feira)?"
    r"|(segunda|terca|quarta|quinta|sexta|sabado|domingo)(?:-feira)?\s+que\s+vem)\b"
)
# "a partir do dia 20", "depois do natal", "após o feriado de ano novo": a first day, not that day. Not "depois de
# amanhã" (a day) nor "depois das 17h" (a time).
_FROM_DATE = re.compile(
    r"\b(a\s+partir|depois|apos)\s+(?:d[oa]s?|de|o)\s+(?=dia\s+\d|\d{1,2}\s*/\s*\d"
    r"|feriado|natal|vespera|ano\s+novo|reveillon|carnaval|" + "|".join(_MONTHS) + r"|proxim[oa]|mes|semana)"
)
# The turn of the year, which Duckling reads as 1 January (a holiday) or not at all.
_NEXT_YEAR = re.compile(r"\b(?:ano\s+(?:que|q)\s+vem|proximo\s+ano|ano\s+seguinte)\b")
_START_OF_YEAR = re.compile(r"\b(?:comeco|inicio|inicinho|comecinho)\s+do\s+ano\b")
_AFTER_NEW_YEAR = re.compile(
    r"\b(?:passando|depois|apos|dps)\s+(?:d?[oa]s?\s+)?(?:ano\s+novo|reveillon|reveion|festas|virada)\b"
)
_LAST_DAY_OF_YEAR = re.compile(r"\bultimo\s+dia\s+do\s+ano\b")
_END_OF_YEAR = re.compile(r"\b(?:ultima\s+semana|fim|final)\s+do\s+ano\b")
_FIRST_WORKDAY_OF_YEAR = re.compile(r"\bprimeiro\s+dia\s+util\s+do\s+ano\b")
_FORTNIGHT = re.compile(
    r"\b(primeira|segunda|1a|2a)\s+quinzena\s+(?:de|do\s+mes\s+de)\s+(" + "|".join(_MONTHS) + r")\b"
)
_THIS_WEEKDAY = re.compile(rf"\b(?:nessa|nesta|essa|esta|hoje|hj)\s+({_WEEKDAY_NAMES})(?:-feira)?\b")
_OTHER_DATE_WORDS = re.compile(r"\b(?:semana|mes|dia\s+\d{1,2}|\d+\s+de\s+[a-z]+|depois|ontem|outr[oa])\b")
_DATE_WORDS = re.compile(
    r"\b(?:hoje|amanha|depois\s+de\s+amanha|segunda|terca|quarta|quinta|sexta|sabado|domingo|semana|mes|dia\s+\d{1,2}"
    r"|\d{1,2}\s*(?:º|o)?\s+de\s+(?:" + "|".join(_MONTHS) + r")|" + "|".join(_MONTHS) + r"|proxim[oa]|que\s+vem)\b"
)
_PERIODS = (
    (
        re.compile(
            r"\b(?:de|pela|na|a|as|durante\s+a|parte\s+da|periodo\s+da|fim\s+da|final\s+da|inicio\s+da"
            r"|comeco\s+da|comecinho\s+da)\s+manha\b|^\s*manha\s*$|\bmanhazinha\b"
            r"|(?<!mais )(?<!mais bem )\b(?:bem\s+)?(?:cedo|cedinho)\b"  # "amanhã cedo"; "o mais cedo" is the earliest
            r"|\bantes\s+do\s+almoco\b"
        ),
        "manha",
    ),
    (
        re.compile(
            r"\b(?:de|pela|na|a|as|durante\s+a|parte\s+da|periodo\s+da|fim\s+da|final\s+da|finalzinho\s+da"
            r"|inicio\s+da|comeco\s+da|comecinho\s+da)\s+tarde\b|^\s*tarde\s*$|\b(?:depois|apos)\s+do\s+almoco\b"
        ),
        "tarde",
    ),
    (
        re.compile(r"\b(?:de|pela|na|a|as|durante\s+a|parte\s+da|periodo\s+da|inicio\s+da)\s+noite\b|^\s*noite\s*$"),
        "noite",
    ),
)
_PERIOD_WORD = re.compile(r"\b(?:manha|tarde|noite|madrugada|meio)\b")  # not the "manha" of "amanha"
# "lá pelas 10", "umas 10h", "tipo 15h": an approximate hour is the hour (rewritten to "as 10", same length).
_ABOUT_HOUR = re.compile(
    r"\b(?:la\s+pel[ao]s|la\s+pr[ao]s|perto\s+d[ao]s)\s+(?=\d{1,2}\b|\d{1,2}\s*h)"
    # "umas"/"tipo" only before something that is clearly an hour ("umas 3 consultas" is no time)
    r"|\b(?:umas|tipo)\s+(?=\d{1,2}(?:\s*(?:h|hs|horas?)\b|:\d{2}|\s*$|\s*[,.!?]|\s+d[ae]\s+(?:manha|tarde|noite)))"
)
# "o das 9", "aquele das 10": "das" before an hour that ends the phrase ("das 9 às 12" is a range, kept)
_OF_HOUR = re.compile(r"(?<![a-z])das(?=\s+\d{1,2}(?:\s*(?:h|hs|horas?))?\s*(?:$|[,.!?;]))")
_HOURS_SUFFIX = re.compile(r"(?<=\d)\s?(?:hrs|hr|hs)\b")
_BARE_HOUR = re.compile(r"^\D{0,12}?\b(\d{1,2})(?:\s*[:h\s]\s*(\d{2}))?\s*(?:h|hs|hrs?|horas?)?\s*[.!]?$")
_SMALL_NUMBERS = {"um": 1, "uma": 1, "dois": 2, "duas": 2, "tres": 3}


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _next_occurrence(day: int, month: int, today: date, year: int | None = None) -> date | None:
    """The next (today or later) valid date with that day and month; an explicit past year is moved forward."""
    years = [year] if year and year >= today.year else []
    years += [today.year, today.year + 1, today.year + 2]
    for candidate_year in years:
        try:
            candidate = date(candidate_year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return None


def _next_day_of_month(day: int, today: date) -> date | None:
    """The next (today or later) date with that day of the month, within three months ("dia 31" skips short ones)."""
    year, month = today.year, today.month
    for _ in range(3):
        try:
            candidate = date(year, month, day)
        except ValueError:
            candidate = None
        if candidate is not None and candidate >= today:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def _clinic_hour(candidates: list[time], fallback: time) -> time:
    """Pick the reading of an ambiguous clock hour that falls inside clinic hours, preferring the earliest."""
    inside = sorted(t for t in candidates if CLINIC_FIRST_HOUR <= t.hour <= CLINIC_LAST_HOUR)
    return inside[0] if inside else fallback


def _time_in_clinic_hours(moment: time, span_text: str) -> time:
    """Duckling reads "9h" said at 10:00 as 21:00 (the next 9 o'clock); a patient means 09:00.

    An hour is ambiguous when the patient wrote neither a 13-23 hour nor a period ("da tarde"); then the
    reading inside clinic hours wins.
    """
    if _PERIOD_WORD.search(span_text):
        return moment
    if moment.hour >= 13 and str(moment.hour) in re.findall(r"\d+", span_text):
        return moment
    other = moment.replace(hour=(moment.hour + 12) % 24)
    return _clinic_hour([moment, other], moment)


_DAY_IN_SPAN = re.compile(r"\b(?:hoje|amanha|segunda|terca|quarta|quinta|sexta|sabado|domingo|dia)\b|\d")


def _interval_grain(span_text: str) -> str:
    """ "semana que vem de tarde" is still a week (Duckling gives an interval); "segunda de tarde" is a day."""
    if _DAY_IN_SPAN.search(span_text):
        return "day"
    if re.search(r"\bsemana\b", span_text):
        return "week"
    return "month" if re.search(r"\bmes\b", span_text) else "day"


def _not_today_by_weekday(day: date, span_text: str, today: date) -> date:
    """ "terça 10h" said on a Tuesday is next Tuesday, as a bare "terça" is: today is "hoje"."""
    names = [name for name, number in _WEEKDAYS.items() if number == day.weekday()]
    if day == today and names and re.search(rf"\b{names[0]}\b", span_text) and not re.search(r"\bhoje\b", span_text):
        return day + timedelta(days=7)
    return day


def _period_of_hour(hour: int) -> str:
    if hour < 12:
        return "manha"
    if hour < 18:
        return "tarde"
    return "noite"


def _parse_iso(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value).astimezone(CLINIC_TZ)
    except (TypeError, ValueError):
        return None


def dates_extract(text: str, *, now: datetime, expect_time: bool = False) -> DateTimeHint:
    """The date, time and period a patient's message mentions, in clinic-local terms; never raises.

    `expect_time` says the bot just asked for a time, so a bare number ("10", "às 2") is an hour.
    A dd/mm that went by months ago means next year's; one that went by in the last weeks is kept (the caller
    says it has passed: nobody means the same day a year ahead). A time given without a
    day leaves `date` None (the caller keeps the day already chosen).
    """
    try:
        return _corrected(text or "", now=now, expect_time=expect_time)
    except Exception:  # noqa: BLE001 - a date we cannot read is no date, not a failed turn
        logger.exception("dates_extract failed on a message of %d chars", len(text or ""))
        return DateTimeHint()


def _corrected(text: str, *, now: datetime, expect_time: bool) -> DateTimeHint:
    """The message read whole, unless the patient corrected a date or time in it: then what the correction says
    replaces what it corrects, and the rest of the first reading stays ("terça às 9, não, quinta" is Thursday 9h)."""
    text = text[:MAX_TEXT_LENGTH]
    whole = _extract(text, now=now, expect_time=expect_time)
    markers = list(_CORRECTION.finditer(fold(text)))
    if not markers or not (whole.date or whole.time):
        return whole
    cut = markers[-1]
    head = _extract(text[: cut.start()], now=now, expect_time=expect_time)
    tail = _extract(text[cut.end() :], now=now, expect_time=expect_time or head.time is not None)
    bare_day = re.fullmatch(r"\W*(?:dia\s+)?(\d{1,2})\W*", fold(text[cut.end() :]))
    if bare_day and head.date and head.grain == "day" and not (head.time or tail.date or tail.time):
        # "dia 10, não, 11": a day for a day
        day = _next_day_of_month(int(bare_day.group(1)), now.astimezone(CLINIC_TZ).date())
        tail = DateTimeHint(date=day, grain="day") if day else tail
    if not (tail.date or tail.time or tail.periodo):
        return whole
    dated = tail if tail.date else head
    return DateTimeHint(
        date=dated.date,
        time=tail.time or (None if tail.periodo else head.time),  # "às 9, não, à tarde": the period replaces it
        periodo=tail.periodo or head.periodo,
        grain=dated.grain,
        after=tail.after or head.after,
        before=tail.before or head.before,
        spans=tuple(sorted({*whole.spans, *head.spans, *((a + cut.end(), b + cut.end()) for a, b in tail.spans)})),
        weekday_said=dated.weekday_said,
        invalid=tail.invalid or head.invalid,
        ruled_out=tuple({*head.ruled_out, *tail.ruled_out}),
    )


def _extract(text: str, *, now: datetime, expect_time: bool) -> DateTimeHint:
    text = text[:MAX_TEXT_LENGTH]
    folded = fold(text)
    now_local = now.astimezone(CLINIC_TZ)
    today = now_local.date()
    found_date: date | None = None
    grain: str | None = None
    found_time: time | None = None
    periodo: str | None = None
    weekday_said: int | None = None
    invalid: str | None = None
    spans: list[tuple[int, int]] = []
    work = folded

    for match in _NOT_DATES.finditer(work):
        work = _blank(work, match.start(), match.end())
    # "seg", "qua 9h", "sex de manhã": a weekday abbreviation that opens a short message ("ter" alone is a verb
    # elsewhere, so only at the start). Rewritten at the same length would not fit: padded after the word.
    shift = None  # (end of the abbreviation in the text, end of the full word in `work`)
    abbreviation = _WEEKDAY_ABBREVIATION.match(work)
    if abbreviation and len(work.split()) <= 4:
        full = _WEEKDAY_ABBREVIATIONS[abbreviation.group(1)]
        shift = (abbreviation.end(), len(full))
        work = full + work[abbreviation.end() :]

    ruled_out_period = None
    for match in _NEGATED_PERIOD.finditer(work):
        ruled_out_period = match.group(1) or match.group(2)
        spans.append(match.span())
        work = _blank(work, *match.span())
    ruled_out: list[int] = []
    for match in _NEGATED_DAY.finditer(work):
        ruled_out += [_WEEKDAYS[w] for w in re.findall(_WEEKDAY_NAMES, match[0])]
        spans.append(match.span())
        work = _blank(work, *match.span())
    for match in _EITHER_DAY.finditer(work):  # "terça ou quinta": the other weekdays are ruled out
        named = {_WEEKDAYS[w] for w in re.findall(_WEEKDAY_NAMES, match[0])}
        ruled_out += [day for day in range(7) if day not in named]
        spans.append(match.span())
        work = _blank(work, *match.span())

    work = _DOTTED_CLOCK.sub(r"\1:\2", work)  # "15.30" is 15:30 (same length), not 15h and a stray 30
    work = _DIA_BEFORE_CLOCK.sub(lambda m: " " * len(m.group(0)), work)  # "mesmo dia 9:30": an hour, not the 9th
    work = _ABOUT_HOUR.sub(lambda m: " " * (len(m.group(0)) - 3) + "as ", work)
    work = _OF_HOUR.sub(" as", work)  # "o das 9": the one at 9 (same length)
    # Duckling knows "10h" and "10hs" but not "10hrs"; same-length rewrite keeps offsets valid.
    work = _HOURS_SUFFIX.sub(lambda m: "h" + " " * (len(m.group(0)) - 1), work)

    for match in _ISO_DATE.finditer(work):
        year, month, day = (int(g) for g in match.groups())
        candidate = _next_occurrence(day, month, today, year) if 1 <= month <= 12 else None
        if candidate and found_date is None:
            found_date, grain = candidate, "day"
        spans.append(match.span())
        work = _blank(work, *match.span())

    # Numeric and named-month dates first: Duckling misses "15/12" and splits "dia 26/11" into "dia 26".
    for pattern in (_NUMERIC_DATE, _DAY_MONTH_NAME):
        for match in pattern.finditer(work):
            day_text, month_text, year_text = match.groups()
            day = 1 if day_text == "primeiro" else int(day_text)
            month = _MONTHS[month_text] if month_text in _MONTHS else int(month_text)
            year = None
            if year_text:
                year = int(year_text) + (2000 if len(year_text) == 2 else 0)
            candidate = _next_occurrence(day, month, today, year) if 1 <= month <= 12 else None
            gone = _recently_gone(day, month, today) if year is None else None
            if gone and gone != today:
                candidate = gone  # said the caller: "essa data já passou", not a booking a year ahead
            if candidate is None and 1 <= month <= 12 and 1 <= day <= 31 and invalid is None:
                invalid = f"{day:02d}/{month:02d}"  # "30/02": said so, never moved to another day
            if candidate and found_date is None:
                found_date, grain = candidate, "day"
            if candidate or invalid:
                start = match.start()
                # "dia 26/11": keep "dia" out of Duckling too, or it reads "dia" + the next number.
                prefix = re.search(r"\bdia\s+$", work[:start])
                if prefix:
                    start = prefix.start()
                spans.append((start, match.end()))
                work = _blank(work, start, match.end())

    match = _DAY_NEXT_MONTH.search(work)
    if match:
        day = 1 if match.group(1) == "primeiro" else int(match.group(1))
        year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        candidate = _this_year(day, month, date(year, 1, 1))
        if candidate is None and invalid is None:
            invalid = f"{day:02d}/{month:02d}"  # "dia 31 do mês que vem" in a 30-day month
        if candidate and found_date is None:
            found_date, grain = candidate, "day"
        spans.append(match.span())
        work = _blank(work, *match.span())

    match = _WEEKDAY_AND_DAY.search(work)
    if match:
        weekday, said_dia, day = _WEEKDAYS[match.group(1)], bool(match.group(2)), int(match.group(3))
        candidate = _next_day_of_month(day, today) if 1 <= day <= 31 else None
        clock_next = bool(_CLOCK_NEXT.match(work[match.end() :]))
        if candidate and (said_dia or clock_next or candidate.weekday() == weekday or not 7 <= day <= 20):
            if found_date is None:
                found_date, grain = candidate, "day"
                weekday_said = weekday if candidate.weekday() != weekday else None
            spans.append(match.span())
            work = _blank(work, *match.span())
        elif not said_dia and found_time is None:  # "quarta 10", "segunda 15": that weekday at that hour
            found_time = _clock_reading(day, 0)
            spans.append(match.span(3))
            work = _blank(work, *match.span(3))

    match = _DIA_PRIMEIRO.search(work)
    if match:
        if found_date is None:
            found_date = today if today.day == 1 else (today.replace(day=28) + timedelta(days=4)).replace(day=1)
            grain = "day"
        spans.append(match.span())
        work = _blank(work, *match.span())

    match = _RELATIVE_DAYS.search(work)
    if match:
        amount_text, unit = match.groups()
        amount = _SMALL_NUMBERS.get(amount_text) or int(amount_text)
        if found_date is None:
            found_date = today + timedelta(days=amount * (7 if unit.startswith("semana") else 1))
            grain = "day"
        spans.append(match.span())
        work = _blank(work, *match.span())

    after = before = None
    match = _BOUND_BETWEEN.search(work)
    if match:
        groups = match.groups()
        first = groups[:3] if groups[0] is not None else groups[3:6]  # "entre X e" or "das X às"
        after, before = _bound(*first), _bound(*groups[6:])
        spans.append(match.span())
        work = _blank(work, *match.span())
    for pattern in (_BOUND_AFTER, _BOUND_BEFORE):
        match = pattern.search(work)
        if match:
            if pattern is _BOUND_AFTER:
                after = after or _bound(*match.groups())
            else:
                before = before or _bound(*match.groups())
            spans.append(match.span())
            work = _blank(work, *match.span())
    if after and before and after >= before:  # "depois das 2 e antes das 11" read as 14:00 .. 11:00
        after = before = None

    match = _WEEKEND.search(work)
    if match:
        if found_date is None:
            found_date, grain = today + timedelta(days=(5 - today.weekday()) % 7), "day"
        spans.append(match.span())
        work = _blank(work, *match.span())

    turn_of_year = _turn_of_the_year(work, today)
    if turn_of_year:
        (first_day, year_grain), span = turn_of_year
        if found_date is None:
            found_date, grain = first_day, year_grain
        spans.append(span)
        work = _blank(work, *span)

    match = _HOLIDAY_WORDS.search(work)
    if match:
        month, day = _HOLIDAY_DAYS[match.group(1) or match.group(2)]
        if found_date is None:
            found_date, grain = _next_occurrence(day, month, today), "day"
            gone = _recently_gone(day, month, today)
            if gone and _FROM_DATE.search(folded):  # "depois do natal" on the 26th: from now, not next December
                found_date = gone
        spans.append(match.span())
        work = _blank(work, *match.span())

    match = _THIS_WEEKDAY.search(work)
    if match and _WEEKDAYS[match.group(1)] == today.weekday():
        # "nessa sexta" said on a Friday is today; a bare "sexta" is next week's (see `_not_today_by_weekday`)
        if found_date is None:
            found_date, grain = today, "day"
        spans.append(match.span())
        work = _blank(work, *match.span())

    match = _WEEKDAY_NEXT.search(work)
    if match and not _OTHER_DATE_WORDS.search(work[match.end() : match.end() + 25]):
        # "sábado que vem" said on a Monday is this coming Saturday (Duckling says the one after); the same day
        # of the week as today ("segunda que vem" on a Monday) is a week ahead.
        weekday = _WEEKDAYS[match.group(1) or match.group(2)]
        if found_date is None:
            found_date = today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)
            grain = "day"
        spans.append(match.span())
        # Blank only the weekday words, so a time that follows ("sábado que vem às 10h") is still parsed.
        work = _blank(work, *match.span())

    for entity in _duckling_parse(work, now_local):
        start, end = entity.get("start", 0), entity.get("end", 0)
        span_text = work[start:end]
        value = entity.get("value") or {}
        spans.append((start, end))
        if value.get("type") == "interval":
            start_dt = _parse_iso((value.get("from") or {}).get("value", ""))
            end_dt = _parse_iso((value.get("to") or {}).get("value", ""))
            anchor = start_dt or end_dt
            if anchor is None:
                continue
            if _DATE_WORDS.search(span_text) and found_date is None:
                found_date, grain = (
                    _not_today_by_weekday(max(anchor.date(), today), span_text, today),
                    _interval_grain(span_text),
                )
            if periodo is None and start_dt is not None and start_dt.time() != time(0):  # not a span of days
                periodo = _period_of_hour(start_dt.hour)
            continue
        moment = _parse_iso(value.get("value", ""))
        if moment is None:
            continue
        value_grain = value.get("grain", "day")
        if value_grain in ("hour", "minute", "second"):
            if value_grain == "second":
                continue  # "agora": not a slot the patient asks for
            if found_time is None:
                # "às 3 da manhã": the period may sit just outside Duckling's span, and it decides the reading
                said_period = re.match(r"\s*(?:da|de|pela)\s+(manha|madrugada|tarde|noite)\b", work[end : end + 24])
                if said_period:
                    morning = said_period.group(1) in {"manha", "madrugada"}
                    found_time = moment.time().replace(hour=moment.hour % 12 + (0 if morning else 12))
                else:
                    found_time = _time_in_clinic_hours(moment.time(), span_text)
            if found_date is None and _DATE_WORDS.search(span_text):
                found_date, grain = _not_today_by_weekday(moment.date(), span_text, today), "day"
        elif found_date is None:
            found_date = max(moment.date(), today)
            grain = value_grain if value_grain in ("week", "month") else "day"

    only = _ONLY_PERIOD.search(work)
    if only:  # "só pode à tarde porque de manhã ela faz hidroginástica": the "só" wins over the other period
        periodo = only.group(1)
    if periodo is None:
        for pattern, name in _PERIODS:
            if pattern.search(work):
                periodo = name
                break
    if periodo is None and ruled_out_period:  # "de manhã não posso": the clinic's other part of the day
        periodo = "tarde" if ruled_out_period == "manha" else "manha"

    if found_time is None and expect_time and not re.search(r"\bdia\s+\d", work):  # "dia 15" is no 15:00
        match = _BARE_HOUR.match(work.strip())
        if match:
            found_time = _clock_reading(int(match.group(1)), int(match.group(2) or 0))

    opening = _FROM_DATE.search(folded)
    if found_date and grain in ("day", "month") and opening:
        # "a partir do dia 20", "depois do natal", "mês que vem": any day from then on, never an earlier one
        if opening.group(1) != "a partir" and grain == "day":
            found_date += timedelta(days=1)  # "depois do natal" is the 26th on
        grain = "from"
    elif found_date and grain == "month":
        grain = "from"  # "em janeiro", "mês que vem": from its first day on
    if found_date and grain == "from":
        found_date = max(found_date, today)  # "depois do natal" said on the 27th: from today

    if shift:  # spans back to the caller's text offsets
        text_end, work_end = shift

        def back(offset: int) -> int:
            return min(offset, text_end) if offset <= work_end else offset - (work_end - text_end)

        spans = [(back(a), back(b)) for a, b in spans]
    return DateTimeHint(
        date=found_date,
        time=found_time,
        periodo=periodo,
        grain=grain,
        after=after,
        before=before,
        spans=tuple(sorted(spans)),
        weekday_said=weekday_said,
        invalid=invalid,
        ruled_out=tuple(ruled_out),
    )


def _recently_gone(day: int, month: int, today: date) -> date | None:
    """That day and month within the last _DAYS_IN_PAST_KEPT days (today included), this year or, in January,
    last year ("31/12" said on 2 January), or None."""
    for year in (today.year, today.year - 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if 0 <= (today - candidate).days <= _DAYS_IN_PAST_KEPT:
            return candidate
    return None


def _turn_of_the_year(work: str, today: date) -> tuple[tuple[date, str], tuple[int, int]] | None:
    """((first day, grain), span) for the phrases of the turn of the year, or None."""
    # New Year's Day ahead: next year's from the second half of a year on, this year's in its first half.
    new_year = date(today.year + 1 if today.month >= 7 else today.year, 1, 1)
    match = _NEXT_YEAR.search(work)
    if match:
        return (date(today.year + 1, 1, 1), "from"), match.span()
    match = _START_OF_YEAR.search(work)
    if match:
        return (new_year, "from"), match.span()
    match = _AFTER_NEW_YEAR.search(work)
    if match:
        return (new_year + timedelta(days=1), "from"), match.span()
    match = _FIRST_WORKDAY_OF_YEAR.search(work)
    if match:
        day = date(today.year + 1, 1, 2)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        return (day, "day"), match.span()
    match = _LAST_DAY_OF_YEAR.search(work)
    if match:
        return (date(today.year, 12, 31), "day"), match.span()
    match = _END_OF_YEAR.search(work)
    if match:
        last = date(today.year, 12, 31)
        return (max(last - timedelta(days=last.weekday()), today), "week"), match.span()
    match = _FORTNIGHT.search(work)
    if match:
        month = _MONTHS[match.group(2)]
        year = today.year if month >= today.month else today.year + 1
        first = date(year, month, 1 if match.group(1) in {"primeira", "1a"} else 16)
        return (first, "from"), match.span()
    return None


def _this_year(day: int, month: int, today: date) -> date | None:
    try:
        return date(today.year, month, day)
    except ValueError:
        return None
