import threading

import pytest
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db import connection

from api_gateway.models import ConversationSession, ConversationState
from api_gateway.services.session_cache import SessionConflict, session_key, session_manager

pytestmark = pytest.mark.django_db(transaction=False)


def test_unknown_phone_creates_the_row_and_fills_the_cache(phone):
    session = session_manager.get_or_start(phone=phone)
    assert ConversationSession.objects.filter(phone_number=phone).count() == 1
    assert caches["default"].get(session_key(phone))["id"] == session.pk


def test_cache_hit_costs_zero_database_queries(phone, django_assert_num_queries):
    session_manager.get_or_start(phone=phone)
    with django_assert_num_queries(0):
        session = session_manager.get_or_start(phone=phone)
    assert session.phone_number == phone
    assert session._state.adding is False


def test_cache_miss_reloads_session_from_database_with_one_query(phone, django_assert_num_queries):
    created = session_manager.get_or_start(phone=phone)
    created.patient_name = "Maria"
    session_manager.save(session=created)
    caches["default"].delete(session_key(phone))  # evicted; the token counter stays warm
    with django_assert_num_queries(1):
        session = session_manager.get_or_start(phone=phone)
    assert session.patient_name == "Maria"


@pytest.mark.parametrize("cached", ["not a dict", {"id": 1, "phone_number": "x"}])
def test_a_cached_copy_missing_fields_is_read_from_the_database_instead(phone, cached):
    """A copy cached before a deploy added a field (or garbage) must not fail the turn: it is a miss."""
    created = session_manager.get_or_start(phone=phone)
    created.patient_name = "Maria"
    session_manager.save(session=created)
    if isinstance(cached, dict):
        cached = {k: v for k, v in caches["default"].get(session_key(phone)).items() if k != "preferred_from"}
    caches["default"].set(session_key(phone), cached)
    session = session_manager.get_or_start(phone=phone)
    assert session.patient_name == "Maria" and session.preferred_from is None
    assert "preferred_from" in caches["default"].get(session_key(phone))  # rewritten whole


def test_save_is_one_update_and_writes_through_to_the_cache(phone, django_assert_num_queries):
    session = session_manager.get_or_start(phone=phone)
    session_manager.get_or_start(phone=phone)  # warm the token counter used for the timeout
    session.current_state = ConversationState.SELECTING_SPECIALTY
    with django_assert_num_queries(1):
        session_manager.save(session=session)
    cached = caches["default"].get(session_key(phone))
    assert cached["current_state"] == "selecting_specialty"
    assert ConversationSession.objects.get(phone_number=phone).current_state == "selecting_specialty"


def test_conversation_resumes_exactly_after_a_cache_flush(phone):
    import datetime as dt

    session = session_manager.get_or_start(phone=phone)
    session.current_state = ConversationState.CHOOSING_TIME
    session.previous_state = ConversationState.CHOOSING_DATE
    session.preferred_date = dt.date(2030, 1, 7)
    session.last_options = {"kind": "slot", "items": [{"id": "2030-01-07T09:00"}]}
    session_manager.save(session=session)
    for alias in ("default", "strict"):
        caches[alias].clear()
    resumed = session_manager.get_or_start(phone=phone)
    assert resumed.current_state == "choosing_time"
    assert resumed.previous_state == "choosing_date"
    assert resumed.preferred_date == dt.date(2030, 1, 7)
    assert resumed.last_options == session.last_options
    assert resumed.version == session.version


def test_stale_copy_cannot_overwrite_a_newer_save(phone):
    first = session_manager.get_or_start(phone=phone)
    stale = ConversationSession.objects.get(pk=first.pk)
    first.patient_name = "Ana"
    session_manager.save(session=first)
    stale.patient_name = "Beto"
    with pytest.raises(SessionConflict):
        session_manager.save(session=stale)
    assert ConversationSession.objects.get(pk=first.pk).patient_name == "Ana"
    # The conflict drops the cached copy, so the next read comes from the database.
    assert caches["default"].get(session_key(phone)) is None


def test_invalid_state_is_rejected(phone):
    session = session_manager.get_or_start(phone=phone)
    session.current_state = "dancing"
    with pytest.raises(ValueError, match="invalid conversation state"):
        session_manager.save(session=session)
    with pytest.raises(ValidationError):
        session.full_clean()


def test_reset_clears_slots_but_keeps_the_confirmed_name(phone):
    session = session_manager.get_or_start(phone=phone)
    session.patient_name, session.name_confirmed = "Ana", True
    session.current_state = ConversationState.CONFIRMING
    session.flow = "agendar"
    session_manager.save(session=session)
    session_manager.reset(session=session)
    fresh = ConversationSession.objects.get(phone_number=phone)
    assert (fresh.current_state, fresh.flow, fresh.patient_name, fresh.name_confirmed) == ("idle", "", "Ana", True)


@pytest.mark.django_db(transaction=True)
def test_lock_serialises_turns_of_one_phone(phone):
    session_manager.get_or_start(phone=phone)
    inside, overlaps = [], []

    def turn():
        with session_manager.lock(phone):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(1)
            session = session_manager.get_or_start(phone=phone)
            session.failed_attempts += 1
            session_manager.save(session=session)
            inside.pop()
        connection.close()

    threads = [threading.Thread(target=turn) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []
    assert ConversationSession.objects.get(phone_number=phone).failed_attempts == 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_lock_falls_back_to_the_database_when_redis_is_down(phone, settings):
    """Conversations go on during a Redis outage: turns of one phone are then serialised by PostgreSQL."""
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.REDIS_URL = dead
    settings.CACHES = {
        alias: {**conf, "BACKEND": "django_redis.cache.RedisCache", "LOCATION": dead,
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2,
                            "IGNORE_EXCEPTIONS": alias == "default"}}
        for alias, conf in settings.CACHES.items()
    }  # fmt: skip
    inside, overlaps, done = [], [], []

    def turn():
        with session_manager.lock(phone, wait_seconds=10):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(1)
            threading.Event().wait(0.05)
            inside.pop()
            done.append(1)
        connection.close()

    threads = [threading.Thread(target=turn) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 5 and overlaps == []
