"""Days the clinic is closed although the doctors' weekly hours say otherwise: public holidays.

The calendar comes from the `holidays` package (national holidays, plus a state's when CLINIC_HOLIDAYS names one,
e.g. "BR-SP"), so nobody keeps a list of dates, Good Friday included. A holiday has no slots: it is left out of
every free-slot list and a booking on it is refused. Clinics that open on holidays set CLINIC_HOLIDAYS="".
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
