import datetime as dt

import pytest
from django.core.cache import caches

from api_gateway.services.token_monitor import token_monitor
from core.metrics import cache_tally
from rag_agent.cache import CLINIC_DATA_KEY, CLINIC_VERSION_KEY, clinic_cache_invalidate, doctor_key
from rag_agent.models import Agendamento, Especialidade, Medico
from rag_agent.selectors import (
    appointments_upcoming_for_phone,
    clinic_catalog,
    doctor_detail,
    doctor_list,
    slot_is_free,
    slot_list_free,
    slots_nearest,
)
from rag_agent.services import SlotUnavailable, appointment_book
from tests.rag_agent.conftest import at, next_weekday

pytestmark = pytest.mark.django_db

# A fixed week far from today, so `now` is always explicit: Monday 2031-03-03 ... Sunday 2031-03-09.
MONDAY = dt.date(2031, 3, 3)
TUESDAY, WEDNESDAY = MONDAY + dt.timedelta(days=1), MONDAY + dt.timedelta(days=2)
SATURDAY, SUNDAY = MONDAY + dt.timedelta(days=5), MONDAY + dt.timedelta(days=6)
LONG_BEFORE = at(dt.date(2031, 1, 1), "00:00")


def _book(medico, day, hhmm, *, status=Agendamento.Status.AGENDADO, phone="5511988887777", especialidade=None):
    return Agendamento.objects.create(
        medico=medico,
        especialidade=especialidade or medico.especialidades.first(),
        paciente_nome="Paciente Teste",
        paciente_telefone=phone,
        data=day,
        hora=dt.time.fromisoformat(hhmm),
        status=status,
    )


def _hhmm(slots: list[dt.datetime]) -> list[str]:
    return [f"{s:%H:%M}" for s in slots]


# -- catalogue ---------------------------------------------------------------------------------------------------


def test_catalogue_holds_only_active_rows_as_plain_data(demo):
    catalog = clinic_catalog()
    assert catalog["clinica"]["nome"] == "Clínica Vida Saudável"
    assert "24 horas" in catalog["clinica"]["politicas"]
    assert len(catalog["especialidades"]) == 7
    assert "Hapvida" not in {c["nome"] for c in catalog["convenios"]}
    ana = next(m for m in catalog["medicos"] if m["id"] == demo.ana.id)
    assert ana["preco_consulta"] == "350.00"
    assert ana["crm"] == "CRM/SP 123456"
    assert ana["especialidade_ids"] == [demo.cardiologia.id]
    assert demo.unimed.id in ana["convenio_ids"]
    assert {"id", "nome", "descricao", "preco", "preparo"} <= set(catalog["exames"][0])


def test_catalogue_leaves_out_inactive_doctors_and_inactive_specialties(demo):
    Medico.objects.filter(pk=demo.carlos.pk).update(ativo=False)
    Especialidade.objects.filter(pk=demo.clinica_geral.pk).update(ativa=False)
    clinic_cache_invalidate()  # .update() sends no signals
    catalog = clinic_catalog()
    assert demo.carlos.id not in {m["id"] for m in catalog["medicos"]}
    igor = next(m for m in catalog["medicos"] if m["id"] == demo.igor.id)
    assert igor["especialidade_ids"] == []
    assert "Clínica Geral" not in {e["nome"] for e in catalog["especialidades"]}


def test_cold_catalogue_costs_a_fixed_number_of_queries_and_warm_costs_none(clinic, django_assert_num_queries):
    token_monitor.tokens_used_today()  # the cache timeout reads the token counter; keep it out of the count
    # info, specialties, plans, doctors + 2 prefetches, exams, clinic closures: independent of the number of doctors
    with django_assert_num_queries(8):
        cold = clinic_catalog()
    hits_before = cache_tally().get(("clinic", "hit"), 0)
    with django_assert_num_queries(0):
        warm = clinic_catalog()
    assert warm == cold
    assert cache_tally()[("clinic", "hit")] == hits_before + 1
    assert caches["default"].get(CLINIC_DATA_KEY) == cold


def test_a_warm_catalogue_is_reused_from_this_process_while_the_version_key_names_it(clinic):
    cold = clinic_catalog()
    assert caches["default"].get(CLINIC_VERSION_KEY) == cold["versao"]
    # Another value under the data key with the same version: only a fetch of the data key would return it.
    caches["default"].set(CLINIC_DATA_KEY, {**cold, "clinica": {**cold["clinica"], "nome": "fetched again"}})

    assert clinic_catalog()["clinica"]["nome"] == cold["clinica"]["nome"]

    caches["default"].delete(CLINIC_VERSION_KEY)  # evicted: the memo is no longer trusted
    assert clinic_catalog()["clinica"]["nome"] == "fetched again"


def test_every_invalidation_path_makes_the_next_read_see_the_database(demo):
    from api_gateway.services.cache_inspect import cache_clear

    clinic_catalog()
    Medico.objects.filter(pk=demo.carlos.pk).update(ativo=False)  # no signal: the memo and the cache are stale
    assert demo.carlos.id in {m["id"] for m in clinic_catalog()["medicos"]}

    cache_clear(family="clinic")  # what an operator runs after changing data behind Django's back
    assert demo.carlos.id not in {m["id"] for m in clinic_catalog()["medicos"]}

    demo.carlos.ativo = True
    demo.carlos.save()  # the admin path: signals invalidate
    assert demo.carlos.id in {m["id"] for m in clinic_catalog()["medicos"]}


def test_doctor_detail_has_names_and_weekly_hours_and_is_cached(demo, django_assert_num_queries):
    detail = doctor_detail(demo.ana.id)
    assert detail["especialidades"] == ["Cardiologia"]
    assert set(detail["convenios"]) == {"Unimed", "Bradesco Saúde", "SulAmérica"}
    assert {"dia_semana": 0, "inicio": "08:00", "fim": "12:00"} in detail["horarios"]
    assert {"dia_semana": 4, "inicio": "14:00", "fim": "18:00"} in detail["horarios"]
    assert len(detail["horarios"]) == 6
    assert caches["default"].get(doctor_key(demo.ana.id)) == detail
    with django_assert_num_queries(0):
        assert doctor_detail(demo.ana.id) == detail
    assert doctor_detail(999_999) is None


def test_doctor_list_filters_by_specialty_and_plan_without_queries_when_warm(demo, django_assert_num_queries):
    clinic_catalog()
    with django_assert_num_queries(0):
        cardiologists = doctor_list(especialidade_id=demo.cardiologia.id)
        cardiologists_unimed = doctor_list(especialidade_id=demo.cardiologia.id, convenio_id=demo.unimed.id)
        amil = doctor_list(convenio_id=demo.amil.id)
    assert {m["nome"] for m in cardiologists} == {"Dra. Ana Souza", "Dr. Carlos Mendes"}
    assert [m["nome"] for m in cardiologists_unimed] == ["Dra. Ana Souza"]
    assert {m["nome"] for m in amil} == {
        "Dr. Carlos Mendes",
        "Dra. Beatriz Lima",
        "Dr. Daniel Rocha",
        "Dra. Helena Costa",
        "Dr. Igor Santos",
    }


# -- free slots --------------------------------------------------------------------------------------------------


def test_slots_follow_the_shifts_in_steps_of_the_consultation_length(demo):
    slots = slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=1, now=LONG_BEFORE)
    assert _hhmm(slots) == [
        *("08:00", "08:30", "09:00", "09:30", "10:00", "10:30", "11:00", "11:30"),
        *("14:00", "14:30", "15:00", "15:30", "16:00", "16:30", "17:00", "17:30"),
    ]
    assert all(s.tzinfo is not None and s.utcoffset() == dt.timedelta(hours=-3) for s in slots)
    assert slot_list_free(medico_id=demo.ana.id, start=TUESDAY, days=1, now=LONG_BEFORE) == []


def test_a_40_minute_doctor_gets_a_last_slot_that_ends_exactly_at_the_shift_end(demo):
    slots = slot_list_free(medico_id=demo.gustavo.id, start=TUESDAY, days=1, now=LONG_BEFORE)
    assert _hhmm(slots) == ["13:00", "13:40", "14:20", "15:00", "15:40", "16:20", "17:00", "17:40", "18:20"]


def test_slots_span_several_days_and_stop_at_the_limit(demo):
    week = slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=7, now=LONG_BEFORE)
    assert {s.date() for s in week} == {MONDAY, WEDNESDAY, MONDAY + dt.timedelta(days=4)}
    assert len(week) == 48
    assert week == sorted(week)
    assert slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=7, limit=3, now=LONG_BEFORE) == week[:3]


def test_past_times_of_today_are_excluded_using_sao_paulo_time(demo, settings):
    settings.BOOKING_MIN_NOTICE_MINUTES = 0
    now_sp = at(MONDAY, "10:05")
    now_utc = now_sp.astimezone(dt.UTC)  # 13:05 UTC is the same instant
    for now in (now_sp, now_utc):
        slots = slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=1, now=now)
        assert _hhmm(slots)[:2] == ["10:30", "11:00"]
    on_the_dot = slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=1, now=at(MONDAY, "10:00"))
    assert _hhmm(on_the_dot)[0] == "10:30"  # strictly after now


def test_slots_sooner_than_the_minimum_notice_are_not_offered(demo, settings):
    settings.BOOKING_MIN_NOTICE_MINUTES = 60
    slots = slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=1, now=at(MONDAY, "10:05"))
    assert _hhmm(slots)[:2] == ["11:30", "14:00"]  # 10:30 and 11:00 start within the hour: nobody gets there
    on_the_dot = slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=1, now=at(MONDAY, "10:00"))
    assert _hhmm(on_the_dot)[0] == "11:00"  # exactly the notice away is still bookable


def test_booked_slots_are_excluded_and_cancelled_ones_are_free_again(demo, django_assert_num_queries):
    booked = _book(demo.ana, MONDAY, "08:30")
    _book(demo.ana, MONDAY, "09:00", status=Agendamento.Status.CANCELADO)
    _book(demo.carlos, MONDAY, "08:00")  # another doctor's appointment changes nothing for Ana
    doctor_detail(demo.ana.id)
    with django_assert_num_queries(1):  # warm doctor entry: only the appointments query
        slots = _hhmm(slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=1, now=LONG_BEFORE))
    assert "08:30" not in slots
    assert "09:00" in slots
    assert "08:00" in slots
    booked.status = Agendamento.Status.CANCELADO
    booked.save()
    assert "08:30" in _hhmm(slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=1, now=LONG_BEFORE))


def test_inactive_doctor_has_no_slots(demo):
    demo.ana.ativo = False
    demo.ana.save()
    assert slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=7, now=LONG_BEFORE) == []


def test_slot_is_free_checks_grid_bookings_and_time(demo):
    _book(demo.ana, MONDAY, "09:00")
    assert slot_is_free(medico_id=demo.ana.id, when=at(MONDAY, "08:30"), now=LONG_BEFORE)
    assert not slot_is_free(medico_id=demo.ana.id, when=at(MONDAY, "09:00"), now=LONG_BEFORE)
    assert not slot_is_free(medico_id=demo.ana.id, when=at(MONDAY, "08:15"), now=LONG_BEFORE)  # off the grid
    assert not slot_is_free(medico_id=demo.ana.id, when=at(MONDAY, "12:30"), now=LONG_BEFORE)  # lunch
    assert not slot_is_free(medico_id=demo.ana.id, when=at(SUNDAY, "08:30"), now=LONG_BEFORE)
    assert not slot_is_free(medico_id=demo.ana.id, when=at(MONDAY, "08:30"), now=at(MONDAY, "09:00"))
    # the same instant written in UTC
    assert slot_is_free(medico_id=demo.ana.id, when=at(MONDAY, "08:30").astimezone(dt.UTC), now=LONG_BEFORE)


def test_nearest_slots_prefer_the_same_day_by_distance_in_time(demo):
    nearest = slots_nearest(medico_id=demo.ana.id, wanted=at(MONDAY, "12:30"), now=LONG_BEFORE)
    assert _hhmm(nearest) == ["11:30", "11:00", "14:00"]
    assert {s.date() for s in nearest} == {MONDAY}


def test_nearest_slots_move_to_the_following_days_when_the_day_has_none(demo):
    nearest = slots_nearest(medico_id=demo.ana.id, wanted=at(TUESDAY, "10:00"), limit=2, now=LONG_BEFORE)
    assert [(s.date(), f"{s:%H:%M}") for s in nearest] == [(WEDNESDAY, "08:00"), (WEDNESDAY, "08:30")]


def test_nearest_slots_look_back_to_a_closer_day_before(demo):
    saturday = WEDNESDAY + dt.timedelta(days=3)
    nearest = slots_nearest(medico_id=demo.ana.id, wanted=at(saturday, "10:00"), limit=1, now=LONG_BEFORE)
    assert nearest[0].date() == saturday - dt.timedelta(days=1)  # Friday, not the Monday after (was)


def test_nearest_slots_continue_on_the_next_working_day_when_the_day_is_full(demo):
    nearest = slots_nearest(medico_id=demo.ana.id, wanted=at(MONDAY, "17:30"), limit=3, now=LONG_BEFORE)
    assert [(s.date(), f"{s:%H:%M}") for s in nearest] == [
        (MONDAY, "17:30"),
        (MONDAY, "17:00"),
        (MONDAY, "16:30"),
    ]
    for hhmm in ("14:00", "14:30", "15:00", "15:30", "16:00", "16:30", "17:00", "17:30"):
        _book(demo.ana, MONDAY, hhmm)
    for hhmm in ("08:00", "08:30", "09:00", "09:30", "10:00", "10:30", "11:00", "11:30"):
        _book(demo.ana, MONDAY, hhmm)
    nearest = slots_nearest(medico_id=demo.ana.id, wanted=at(MONDAY, "17:30"), limit=2, now=LONG_BEFORE)
    assert [(s.date(), f"{s:%H:%M}") for s in nearest] == [(WEDNESDAY, "08:00"), (WEDNESDAY, "08:30")]


def test_upcoming_appointments_for_a_phone_skip_past_and_cancelled_ones(demo, django_assert_num_queries):
    phone = "5511977776666"
    now = at(MONDAY, "10:00")
    _book(demo.ana, MONDAY, "09:30", phone=phone)  # already past at 10:00
    later_today = _book(demo.ana, MONDAY, "10:30", phone=phone)
    _book(demo.ana, MONDAY, "11:00", phone=phone, status=Agendamento.Status.CANCELADO)
    next_week = _book(demo.carlos, TUESDAY + dt.timedelta(days=7), "08:00", phone=phone)
    _book(demo.ana, WEDNESDAY, "08:00", phone="5511900000001")  # someone else
    with django_assert_num_queries(1):
        upcoming = appointments_upcoming_for_phone(phone, now=now)
        names = [a.medico.nome for a in upcoming]  # select_related: no extra queries
    assert [a.pk for a in upcoming] == [later_today.pk, next_week.pk]
    assert names == ["Dra. Ana Souza", "Dr. Carlos Mendes"]


def test_catalog_snapshot_reads_the_cache_once_for_a_whole_turn(clinic, monkeypatch):
    from rag_agent import selectors
    from rag_agent.cache import clinic_cache

    selectors.clinic_catalog()  # warm
    reads = []
    cache = clinic_cache()
    original_get = cache.get
    monkeypatch.setattr(cache, "get", lambda *a, **k: reads.append(a[0]) or original_get(*a, **k))
    with selectors.catalog_snapshot():
        first = selectors.clinic_catalog()
        selectors.doctor_list(especialidade_id=first["especialidades"][0]["id"])
        selectors.mentions_find("quero cardiologia com a dra ana pela unimed")
        assert selectors.clinic_catalog() is first
    assert reads == [CLINIC_VERSION_KEY]  # warm: only the small version key, never the whole catalogue


def test_a_booking_blocks_every_slot_it_overlaps_once_the_consultation_length_changes(demo):
    # Booked at 08:30 while Ana's consultations took 30 minutes; now they take 40: 08:30–09:10 is taken.
    Agendamento.objects.create(medico=demo.ana, especialidade=demo.cardiologia, paciente_nome="Maria Oliveira",
                               paciente_telefone="5511987654321", data=MONDAY, hora=dt.time(8, 30))  # fmt: skip
    demo.ana.duracao_consulta_minutos = 40
    demo.ana.save()  # the admin's save: the cached doctor is dropped

    morning = [
        t for t in _hhmm(slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=1, now=LONG_BEFORE)) if t < "12"
    ]

    assert morning == ["09:20", "10:00", "10:40", "11:20"]  # 08:00 and 08:40 overlap the booking


def test_the_booking_refuses_a_slot_that_overlaps_an_earlier_booking(demo):
    monday = next_weekday(0)
    Agendamento.objects.create(medico=demo.ana, especialidade=demo.cardiologia, paciente_nome="Maria Oliveira",
                               paciente_telefone="5511987654321", data=monday, hora=dt.time(8, 30))  # fmt: skip
    demo.ana.duracao_consulta_minutos = 40
    demo.ana.save()

    with pytest.raises(SlotUnavailable):
        appointment_book(medico_id=demo.ana.id, especialidade_id=demo.cardiologia.id, convenio_id=None,
                         paciente_nome="Pedro Lima", paciente_telefone="5511912345678", data=monday,
                         hora=dt.time(8, 40))  # fmt: skip


def test_a_booking_keeps_its_own_length_when_the_doctor_shortens_hers(demo):
    demo.ana.duracao_consulta_minutos = 60
    demo.ana.save()
    Agendamento.objects.create(medico=demo.ana, especialidade=demo.cardiologia, paciente_nome="Maria Oliveira",
                               paciente_telefone="5511987654321", data=MONDAY, hora=dt.time(9, 0))  # fmt: skip
    demo.ana.duracao_consulta_minutos = 30
    demo.ana.save()

    slots = _hhmm(slot_list_free(medico_id=demo.ana.id, start=MONDAY, days=1, now=LONG_BEFORE))

    assert "09:00" not in slots and "09:30" not in slots and "10:00" in slots  # booked 09:00–10:00
