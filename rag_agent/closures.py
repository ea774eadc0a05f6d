"""Days the clinic is closed although the doctors' weekly hours say otherwise: public holidays, and the agenda
blocks the staff enter (a doctor's holidays or congress, the clinic's recess; rag_agent.models.BloqueioAgenda).

The calendar comes from the `holidays` package (national holidays, plus a state's when CLINIC_HOLIDAYS names one,
e.g. "BR-SP"), so nobody keeps a list of dates, Good Friday included. A holiday has no slots: it is left out of
every free-slot list and a booking on it is refused. Clinics that open on holidays set CLINIC_HOLIDAYS="".
A block works the same way for the times it covers.
"""

import datetime as dt
from functools import lru_cache

import holidays
from django.conf import settings


@lru_cache(maxsize=16)
def _calendar(spec: str, year: int) -> dict[dt.date, str]:
    if not spec:
        return {}
    country, _, subdiv = spec.partition("-")
    return dict(holidays.country_holidays(country, subdiv=subdiv or None, years=year, language="pt_BR"))


def holiday_name(day: dt.date) -> str | None:
    """The holiday's name ("Natal") when the clinic is closed on `day`, else None."""
    return _calendar(settings.CLINIC_HOLIDAYS, day.year).get(day)


# -- agenda blocks (rag_agent.models.BloqueioAgenda) -------------------------------------------------------------------
# A block travels as a dict (cached inside the doctor's detail): {"clinica": bool, "de": "YYYY-MM-DD",
# "ate": "YYYY-MM-DD", "das": "HH:MM" | None, "as": "HH:MM" | None}. Without hours it takes whole days.


def block_period(block: dict) -> str:
    """ "de 21/12 a 05/01", "em 24/12", "em 24/12 das 12:00 às 18:00" (years only when they differ)."""
    first, last = dt.date.fromisoformat(block["de"]), dt.date.fromisoformat(block["ate"])
    fmt = "%d/%m" if first.year == last.year else "%d/%m/%Y"
    days = f"em {first:{fmt}}" if first == last else f"de {first:{fmt}} a {last:{fmt}}"
    if block["das"]:
        hours = f"das {block['das']} às {block['as']}"
        return f"{days} {hours}" if first == last else f"{days}, {hours}"
    return days


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def blocks_on(blocks: list[dict], day: dt.date) -> list[dict]:
    """The blocks that take some part of `day`."""
    iso = day.isoformat()
    return [b for b in blocks if b["de"] <= iso <= b["ate"]]


def block_over(blocks: list[dict], day: dt.date, start: dt.time, minutes: int) -> dict | None:
    """The block, if any, that a consultation of `minutes` starting at `start` on `day` would fall into."""
    begin = start.hour * 60 + start.minute
    for block in blocks_on(blocks, day):
        if not block["das"] or (_minutes(block["das"]) < begin + minutes and begin < _minutes(block["as"])):
            return block
    return None


def whole_day_block(blocks: list[dict], day: dt.date) -> dict | None:
    """The block that takes all of `day`, if any (a clinic-wide one first: "a clínica não abre")."""
    whole = [b for b in blocks_on(blocks, day) if not b["das"]]
    return next((b for b in whole if b["clinica"]), whole[0] if whole else None)


def periods_ahead(blocks: list[dict], until: dt.date, *, limit: int = 3) -> list[str]:
    """How the first `limit` blocks that start by `until` (the booking horizon) are said: ["de 21/12 a 05/01", ...]."""
    return [block_period(b) for b in blocks if b["de"] <= until.isoformat()][:limit]
