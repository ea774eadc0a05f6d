"""Portuguese dates and times, against the reference time of REFERENCE.md: Monday 2026-11-23 10:00 (São Paulo)."""

import threading
import time as clock
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from api_gateway.services.nlu import dates
from api_gateway.services.nlu.dates import DateTimeHint, dates_extract

SP = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SP)  # a Monday

# (phrase, date, time, periodo). The first ten rows are the measured table of REFERENCE.md.
TABLE = [
    ("amanhã às 15h", date(2026, 11, 24), time(15, 0), None),
    ("segunda que vem", date(2026, 11, 30), None, None),
    ("próxima segunda", date(2026, 11, 30), None, None),
    ("dia 15", date(2026, 12, 15), None, None),
    ("15/12", date(2026, 12, 15), None, None),
    ("14h30", None, time(14, 30), None),
    ("depois de amanhã", date(2026, 11, 25), None, None),
    ("na sexta às 10h", date(2026, 11, 27), time(10, 0), None),
    ("pode ser às 2 da tarde", None, time(14, 0), None),
    ("9h", None, time(9, 0), None),
    ("dia 26/11 às 10h30", date(2026, 11, 26), time(10, 30), None),
    # More phrases patients write.
    ("quinta", date(2026, 11, 26), None, None),
    ("sábado que vem", date(2026, 11, 28), None, None),
    ("sabado que vem as 10h", date(2026, 11, 28), time(10, 0), None),
    ("hoje", date(2026, 11, 23), None, None),
    ("amanha", date(2026, 11, 24), None, None),
    ("AMANHÃ ÀS 15H", date(2026, 11, 24), time(15, 0), None),
    ("semana que vem", date(2026, 11, 30), None, None),
    ("de manhã", None, None, "manha"),
    ("à tarde", None, None, "tarde"),
    ("hoje à noite", date(2026, 11, 23), None, "noite"),
    ("quinta de manhã", date(2026, 11, 26), None, "manha"),
    ("terca de manha", date(2026, 11, 24), None, "manha"),
    ("às 2", None, time(14, 0), None),
    ("às 6", None, time(18, 0), None),
    ("hoje às 9h", date(2026, 11, 23), time(9, 0), None),
    ("às 8 da noite", None, time(20, 0), None),
    ("10hrs", None, time(10, 0), None),
    ("meio dia", None, time(12, 0), None),
    ("amanha as 10 e meia", date(2026, 11, 24), time(10, 30), None),
    ("terça 9:30", date(2026, 11, 24), time(9, 30), None),
    ("10/11", date(2026, 11, 10), None, None),  # gone by 13 days ago: kept, so the patient is told (not 2027)
    ("10/08", date(2027, 8, 10), None, None),  # months ago: next year's
    ("1/1/2027", date(2027, 1, 1), None, None),
    ("2026-12-01", date(2026, 12, 1), None, None),
    ("daqui a 3 dias", date(2026, 11, 26), None, None),
    ("dia primeiro", date(2026, 12, 1), None, None),
    ("1º de dezembro", date(2026, 12, 1), None, None),
    ("5 de dezembro", date(2026, 12, 5), None, None),
    ("mês que vem", date(2026, 12, 1), None, None),
    ("na verdade prefiro quinta", date(2026, 11, 26), None, None),
    (
        "quero marcar cardiologia com a dra. Ana amanhã às 14h, meu nome é João Silva",
        date(2026, 11, 24),
        time(14),
        None,
    ),
    # Approximate hours and parts of the day.
    ("amanhã cedo", date(2026, 11, 24), None, "manha"),
    ("quinta bem cedinho", date(2026, 11, 26), None, "manha"),
    ("no final da manhã", None, None, "manha"),
    ("no comecinho da tarde", None, None, "tarde"),
    ("depois do almoço", None, None, "tarde"),
    ("lá pelas 10", None, time(10, 0), None),
    ("quinta lá pras 4 da tarde", date(2026, 11, 26), time(16, 0), None),
    ("umas 15h", None, time(15, 0), None),
    ("tipo 9:30", None, time(9, 30), None),
    # A weekday beside a day of the month: the day is the date (Duckling looked for a Friday the 4th: in 2027).
    ("sexta dia 4 de manhã", date(2026, 12, 4), None, "manha"),
    ("quinta, dia 4", date(2026, 12, 4), None, None),
    ("sexta 10h", date(2026, 11, 27), time(10, 0), None),
    # Things that look like dates or times and are not.
    ("o mais cedo possível", None, None, None),  # the earliest slot, not the morning
    ("umas 3 consultas", None, None, None),
    ("dor nas costas faz uma semana", None, None, None),  # since when it hurts, not when to come
    ("febre desde ontem", None, None, None),
    ("dor de estômago desde cedo", None, None, None),
    ("boa tarde", None, None, None),
    ("bom dia, tudo bem?", None, None, None),
    ("pode ser a segunda opção", None, None, None),
    ("consulta de 1 hora", None, None, None),
    ("31/02", None, None, None),
    ("R$ 200", None, None, None),
    ("quero marcar uma consulta", None, None, None),
]


@pytest.mark.parametrize(("phrase", "expected_date", "expected_time", "expected_period"), TABLE)
def test_phrase_resolves_to_clinic_local_date_time_and_period(phrase, expected_date, expected_time, expected_period):
    hint = dates_extract(phrase, now=NOW)

    assert (hint.date, hint.time, hint.periodo) == (expected_date, expected_time, expected_period)


def test_a_week_or_a_month_says_so_in_the_grain():
    assert dates_extract("semana que vem", now=NOW).grain == "week"
    assert dates_extract("mês que vem", now=NOW).grain == "from"  # from its first day on (see below)
    assert dates_extract("semana que vem de tarde", now=NOW).grain == "week"  # an interval for Duckling
    assert dates_extract("segunda de tarde", now=NOW).grain == "day"
    assert dates_extract("quinta", now=NOW).grain == "day"


@pytest.mark.parametrize("phrase", ["10/08", "01/01", "23/11", "quinta", "dia 5"])
def test_no_date_is_in_the_past_unless_the_patient_named_a_recent_one(phrase):
    hint = dates_extract(phrase, now=NOW)

    assert hint.date is not None
    assert hint.date >= NOW.date()


@pytest.mark.parametrize(
    ("phrase", "expected", "weekday_said", "invalid"),
    [
        ("qua 25 9h", date(2026, 11, 25), None, None),  # was: the coming Wednesday, the 25th dropped
        ("quarta 16 às 9h", date(2026, 12, 16), None, None),
        ("seg 30", date(2026, 11, 30), None, None),
        ("sexta dia 26", date(2026, 11, 26), 4, None),  # the 26th is a Thursday: taken, and flagged
        ("dia 30/02", None, None, "30/02"),  # was: 30/11
        ("31 de novembro", None, None, "31/11"),
        ("dia 20/11", date(2026, 11, 20), None, None),  # three days ago: the engine says it went by
    ],
)
def test_a_day_of_the_month_beside_a_weekday_or_impossible_is_read_as_said(phrase, expected, weekday_said, invalid):
    hint = dates_extract(phrase, now=NOW)
    assert (hint.date, hint.weekday_said, hint.invalid) == (expected, weekday_said, invalid)


@pytest.mark.parametrize(
    ("phrase", "expected_date", "expected_time"),
    [
        ("quarta, não, quinta", date(2026, 11, 26), None),  # was: Wednesday, the first said
        ("quinta às 10, quer dizer 11", date(2026, 11, 26), time(11, 0)),
        ("dia 15, não, dia 17", date(2026, 12, 17), None),
        ("terça às 9, não, quinta", date(2026, 11, 26), time(9, 0)),
        ("terça às 9 não, às 10", date(2026, 11, 24), time(10, 0)),
        ("quinta, melhor terça", date(2026, 11, 24), None),
    ],
)
def test_a_correction_in_the_message_replaces_what_it_corrects(phrase, expected_date, expected_time):
    hint = dates_extract(phrase, now=NOW)
    assert (hint.date, hint.time) == (expected_date, expected_time)


def test_a_day_number_is_no_hour_when_a_time_is_expected():
    assert dates_extract("dia 15", now=NOW, expect_time=True).time is None  # was: 15:00


def test_today_by_number_is_today_not_next_year():
    assert dates_extract("23/11", now=NOW).date == date(2026, 11, 23)


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [("10", time(10, 0)), ("2", time(14, 0)), ("às 10", time(10, 0)), ("8 30", time(8, 30)), ("7", time(7, 0))],
)
def test_a_bare_number_is_a_clinic_hour_when_a_time_was_asked(phrase, expected):
    assert dates_extract(phrase, now=NOW, expect_time=True).time == expected


def test_a_bare_number_is_not_a_time_when_no_time_was_asked():
    assert dates_extract("10", now=NOW).time is None


def test_a_morning_hour_said_in_the_evening_is_still_the_morning_hour():
    evening = datetime(2026, 11, 23, 20, 30, tzinfo=SP)

    assert dates_extract("amanhã 9h", now=evening) == DateTimeHint(
        date=date(2026, 11, 24), time=time(9, 0), grain="day", spans=dates_extract("amanhã 9h", now=evening).spans
    )


@pytest.mark.parametrize("phrase", ["segunda 10h", "segunda de manhã", "o das 13:40 de segunda", "segunda às 18h"])
def test_todays_weekday_with_a_time_is_next_week_as_the_bare_weekday_is(phrase):
    # Monday evening: "segunda 10h" is next Monday (today's 10:00 is gone, and today is "hoje").
    evening = datetime(2026, 11, 23, 19, 0, tzinfo=SP)
    assert dates_extract(phrase, now=evening).date == date(2026, 11, 30)
    assert dates_extract("segunda", now=evening).date == date(2026, 11, 30)


def test_today_said_as_today_stays_today():
    assert dates_extract("hoje segunda às 15h", now=NOW).date == date(2026, 11, 23)
    assert dates_extract("terça 10h", now=NOW).date == date(2026, 11, 24)


def test_reference_time_in_utc_is_read_in_clinic_local_time():
    # 02:00 UTC on the 24th is still 23:00 on Monday the 23rd in São Paulo: "amanhã" is the 24th.
    late_utc = datetime(2026, 11, 24, 2, 0, tzinfo=ZoneInfo("UTC"))

    assert dates_extract("amanhã", now=late_utc).date == date(2026, 11, 24)


def test_spans_point_at_the_date_words_of_the_original_text():
    text = "😀 Quero às 15h do dia 26/11, obrigado"
    hint = dates_extract(text, now=NOW)

    covered = "".join(text[start:end] for start, end in hint.spans)
    assert "15h" in covered
    assert "26/11" in covered
    assert "obrigado" not in covered


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\x00\x01\x02", "😀" * 50, "a" * 5000, "amanhã às 15h " * 400, "??//::--", "99/99/9999", "dia 99"],
)
def test_odd_input_never_raises(text):
    assert isinstance(dates_extract(text, now=NOW), DateTimeHint)


def test_long_input_is_capped_before_parsing():
    started = clock.perf_counter()
    hint = dates_extract("blá " * 2000 + "amanhã", now=NOW)

    assert hint.date is None  # the date lies past the analysed prefix
    assert clock.perf_counter() - started < 1.0


def test_duckling_is_initialised_once_even_from_concurrent_threads(monkeypatch):
    monkeypatch.setattr(dates, "_duckling", None)
    results, states = [], []

    def work():
        results.append(dates_extract("amanhã às 15h", now=NOW))
        states.append(id(dates._duckling_state()))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(states)) == 1
    assert {(r.date, r.time) for r in results} == {(date(2026, 11, 24), time(15, 0))}


def test_a_phrase_takes_a_few_milliseconds_after_warm_up():
    dates_extract("amanhã às 15h", now=NOW)
    phrases = [row[0] for row in TABLE]
    started = clock.perf_counter()
    for phrase in phrases:
        dates_extract(phrase, now=NOW)
    per_phrase_ms = (clock.perf_counter() - started) * 1000 / len(phrases)

    assert per_phrase_ms < 10


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("vocês abrem no natal?", date(2026, 12, 25)),
        ("funciona na véspera de natal?", date(2026, 12, 24)),
        ("e no ano novo?", date(2027, 1, 1)),
        ("no feriado de finados", date(2027, 11, 2)),  # 2 Nov 2026 has passed
        ("sou de Natal", None),  # the city
    ],
)
def test_a_fixed_holiday_by_name_is_its_next_date(phrase, expected):
    assert dates_extract(phrase, now=NOW).date == expected


@pytest.mark.parametrize(
    ("phrase", "after", "before"),
    [
        ("depois das 10h", time(10, 0), None),  # said at 19h: not 22:00 "à noite"
        ("a partir das 17h", time(17, 0), None),
        ("dps das 5", time(17, 0), None),  # clinic hours
        ("antes das 10h", None, time(10, 0)),
        ("entre 9 e 11", time(9, 0), time(11, 0)),
        ("entre 14h e 16h30", time(14, 0), time(16, 30)),
        ("depois de 2 dias", None, None),
        ("a partir do dia 10", None, None),
    ],
)
def test_bounds_on_the_time_of_day_are_bounds_not_times(phrase, after, before):
    hint = dates_extract(phrase, now=datetime(2026, 11, 23, 19, 0, tzinfo=SP))
    assert (hint.after, hint.before, hint.time, hint.periodo) == (after, before, None, None)


def test_a_day_with_a_bound_keeps_both():
    hint = dates_extract("quinta depois das 17h", now=NOW)
    assert (hint.date, hint.after) == (date(2026, 11, 26), time(17, 0))
    assert dates_extract("antes do almoço", now=NOW).periodo == "manha"


@pytest.mark.parametrize(
    ("phrase", "expected_date", "expected_period"),
    [
        ("segunda não, quarta", date(2026, 11, 25), None),  # Monday ruled out, Wednesday wanted
        ("a sexta não serve, pode ser quinta?", date(2026, 11, 26), None),
        ("qualquer dia menos segunda", None, None),
        ("nem segunda nem quarta", None, None),
        ("de manhã não posso", None, "tarde"),
        ("de manhã não, só à tarde", None, "tarde"),
        ("ela só pode na parte da tarde porque de manhã ela faz hidroginástica", None, "tarde"),
        ("segunda de manhã", date(2026, 11, 30), "manha"),
        ("amanhã não posso, pode ser quinta?", date(2026, 11, 26), None),
        ("não posso amanhã", None, None),
        ("segunda e terça não posso", None, None),
        ("hoje não dá, amanhã sim", date(2026, 11, 24), None),
    ],
)
def test_a_day_or_period_ruled_out_is_not_the_one_wanted(phrase, expected_date, expected_period):
    hint = dates_extract(phrase, now=NOW)
    assert (hint.date, hint.periodo) == (expected_date, expected_period)


@pytest.mark.parametrize(
    ("phrase", "expected", "span"),
    [
        ("seg", date(2026, 11, 30), (0, 3)),  # was: "não entendi" at the slot list
        ("qua 9h", date(2026, 11, 25), (0, 6)),
        ("sex de manhã", date(2026, 11, 27), (0, 12)),
        ("quero ter uma consulta", None, None),  # "ter" is a verb unless it opens the message
    ],
)
def test_a_weekday_abbreviation_opening_a_short_message_is_that_day(phrase, expected, span):
    hint = dates_extract(phrase, now=NOW)
    assert hint.date == expected
    assert (hint.spans[0] if hint.spans else None) == span  # offsets of the text as written


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("quinta às 3 da manhã", time(3, 0)),  # was 15:00: booked in the afternoon without a word
        ("quinta às 3 da tarde", time(15, 0)),
        ("amanhã às 9 da manhã", time(9, 0)),
    ],
)
def test_a_period_right_after_the_hour_decides_its_reading(phrase, expected):
    assert dates_extract(phrase, now=datetime(2026, 11, 23, 19, 0, tzinfo=SP), expect_time=True).time == expected


@pytest.mark.parametrize(
    ("phrase", "ruled_out"),
    [
        ("qualquer dia menos segunda", (0,)),
        ("sexta não posso", (4,)),
        ("segunda e terça não dá", (0, 1)),
        ("quinta", ()),
    ],
)
def test_the_weekdays_ruled_out_are_reported(phrase, ruled_out):
    assert tuple(sorted(dates_extract(phrase, now=NOW).ruled_out)) == ruled_out


@pytest.mark.parametrize(
    ("phrase", "expected_date", "expected_time", "periodo"),
    [
        ("quarta 10", date(2026, 11, 25), time(10, 0), None),  # was: Wednesday, the hour lost
        ("segunda 15", date(2026, 11, 30), time(15, 0), None),
        ("prefiro quinta, é melhor que sexta", date(2026, 11, 26), None, None),  # was: "melhor" a correction
        ("não posso sexta, quinta sim", date(2026, 11, 26), None, None),  # was: both ruled out
        ("quarta de manhã, não, à tarde", date(2026, 11, 25), None, "tarde"),
        ("dia 10, não, 11", date(2026, 12, 11), None, None),
    ],
)
def test_hours_after_weekdays_and_corrections_of_periods_and_days(phrase, expected_date, expected_time, periodo):
    hint = dates_extract(phrase, now=NOW)
    assert (hint.date, hint.time, hint.periodo) == (expected_date, expected_time, periodo)


@pytest.mark.parametrize("phrase", ["mesmo dia 9:30", "dia 8:30", "dia 9h"])
def test_dia_before_a_clock_time_is_no_day_of_the_month(phrase):
    hint = dates_extract(phrase, now=NOW)
    assert hint.date is None and hint.time is not None  # was: the 9th / the 8th


@pytest.mark.parametrize("phrase", ["me consultava com ele ano passado", "semana passada fui aí"])
def test_the_past_the_patient_tells_about_is_no_date(phrase):
    assert dates_extract(phrase, now=NOW).date is None  # was: today


@pytest.mark.parametrize(
    ("phrase", "expected_date", "expected_time"),
    [
        ("15.30", None, time(15, 30)),  # was 15:00: the dot is how many write the minutes
        ("às 8.30", None, time(8, 30)),
        ("segunda 14.30", date(2026, 11, 30), time(14, 30)),  # was: the 14th
        ("amanhã às 12h", date(2026, 11, 24), time(12, 0)),  # was: midnight (the "manha" of "amanha")
        ("dia 28 do mês que vem", date(2026, 12, 28), None),  # was: 28 November, this month
        ("dia 30 do próximo mês às 9h", date(2026, 12, 30), time(9, 0)),
    ],
)
def test_dotted_clock_times_and_a_day_of_next_month(phrase, expected_date, expected_time):
    hint = dates_extract(phrase, now=NOW)
    assert (hint.date, hint.time) == (expected_date, expected_time)


@pytest.mark.parametrize("phrase", ["febre de 38.5", "custa 15.50 reais"])
def test_decimals_are_no_clock_times(phrase):
    assert dates_extract(phrase, now=NOW).time is None


@pytest.mark.parametrize(
    ("phrase", "first_day"),
    [
        ("depois do natal", date(2026, 12, 26)),
        ("a partir do dia 30", date(2026, 11, 30)),
        ("depois do dia 30", date(2026, 12, 1)),
        ("a partir de 02/12", date(2026, 12, 2)),
        ("mês que vem", date(2026, 12, 1)),
        ("em janeiro", date(2027, 1, 1)),
    ],
)
def test_a_first_day_is_no_single_day(phrase, first_day):
    hint = dates_extract(phrase, now=NOW)  # was: that day only, so the nearest slots included earlier days
    assert (hint.date, hint.grain) == (first_day, "from")


@pytest.mark.parametrize("phrase", ["depois de amanhã", "depois das 15 no dia 30", "dia 30"])
def test_after_a_time_or_the_day_after_tomorrow_is_still_a_day(phrase):
    assert dates_extract(phrase, now=NOW).grain == "day"


def test_this_weekday_said_on_that_weekday_is_today():
    assert dates_extract("nessa segunda às 15h", now=NOW).date == NOW.date()
    assert dates_extract("segunda às 15h", now=NOW).date == date(2026, 11, 30)  # a bare weekday: next week's


@pytest.mark.parametrize("phrase", ["das 9 às 12", "entre 9 e 12", "das 9h até 12h"])
def test_a_window_from_one_hour_to_another(phrase):
    hint = dates_extract(phrase, now=NOW)  # "das 9 às 12" was read as 12:00
    assert (hint.after, hint.before, hint.time) == (time(9, 0), time(12, 0), None)


# --- ninth session: the turn of the year ------------------------------------------------------------------------
DEC_21 = datetime(2026, 12, 21, 10, 0, tzinfo=SP)  # a Monday, four days before Christmas
DEC_26 = datetime(2026, 12, 26, 10, 0, tzinfo=SP)
JAN_2 = datetime(2027, 1, 2, 10, 0, tzinfo=SP)


@pytest.mark.parametrize(
    ("phrase", "now", "first_day", "grain"),
    [
        # "ano que vem" was 1 January as a day: a holiday, so the nearest slots were 31 December
        ("só pro ano que vem", DEC_21, date(2027, 1, 1), "from"),
        ("ano q vem", DEC_21, date(2027, 1, 1), "from"),
        ("no próximo ano", DEC_21, date(2027, 1, 1), "from"),
        ("passando o ano novo", DEC_21, date(2027, 1, 2), "from"),
        ("depois das festas", DEC_21, date(2027, 1, 2), "from"),
        ("no começo do ano", DEC_21, date(2027, 1, 1), "from"),
        # "depois do natal" said after Christmas was December 2027, beyond the agenda
        ("depois do natal", DEC_26, date(2026, 12, 26), "from"),
        ("depois do ano novo", JAN_2, date(2027, 1, 2), "from"),
        # the last day or week of the year was today
        ("último dia do ano", DEC_21, date(2026, 12, 31), "day"),
        ("na última semana do ano", DEC_21, date(2026, 12, 28), "week"),
        # "segunda quinzena de janeiro" was Monday 28/12
        ("segunda quinzena de janeiro", DEC_21, date(2027, 1, 16), "from"),
        ("primeira quinzena de fevereiro", DEC_21, date(2027, 2, 1), "from"),
        ("primeiro dia útil do ano", DEC_21, date(2027, 1, 4), "day"),
    ],
)
def test_phrases_of_the_turn_of_the_year(phrase, now, first_day, grain):
    hint = dates_extract(phrase, now=now)
    assert (hint.date, hint.grain) == (first_day, grain)


@pytest.mark.parametrize("phrase", ["31/12", "dia 26/12"])
def test_a_date_just_gone_by_across_new_year_is_in_the_past(phrase):
    assert dates_extract(phrase, now=JAN_2).date == date(2026, 12, int(phrase[-5:-3]))  # was: December 2027
