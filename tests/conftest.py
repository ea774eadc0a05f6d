import os

import pytest
from django.conf import settings
from django.core.cache import caches

from core import redis_breaker

# Fixtures of the local fake servers (fake_gemini, ...), usable in any test without an import.
pytest_plugins = ["tests.fakes.gemini_server"]

ON_POSTGRES = settings.IS_POSTGRES
ON_REDIS = bool(settings.REDIS_URL)


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: run with DATABASE_URL=postgres://... (CI does)")
    skip_redis = pytest.mark.skip(reason="needs Redis: run with REDIS_URL=redis://... (CI does)")
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not ON_REDIS:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def _clean_caches():
    """Each test starts with empty caches (on Redis this flushes the test database number) and closed Redis
    breakers (a test that made Redis time out must not leave the next one failing fast)."""
    redis_breaker.breaker_reset()
    for alias in ("default", "strict"):
        caches[alias].clear()
    yield


@pytest.fixture(autouse=True)
def _no_outside_world(settings):
    """Tests never reach Meta or Google: credentials are blank unless a test points them at a local fake."""
    settings.GEMINI_API_KEY = ""
    settings.WHATSAPP_ACCESS_TOKEN = ""
    settings.WHATSAPP_APP_SECRET = "test-app-secret"
    settings.WHATSAPP_VERIFY_TOKEN = "test-verify-token"
    settings.WHATSAPP_PHONE_NUMBER_ID = "100200300"
    settings.WHATSAPP_BUSINESS_NUMBER = "5511900000000"
    settings.HANDOFF_NOTIFY_EMAILS = []  # tests/api_gateway/test_handoff_email.py points it at a local SMTP server
    settings.API_KEYS = ["test-api-key"]  # REST calls send it (tests/api_gateway/test_rest_api.py AUTH)
    # Tests reason about "next Monday" whatever day CI runs: a holiday must not take those slots away. The
    # holiday tests turn the calendar on themselves.
    settings.CLINIC_HOLIDAYS = ""
    settings.AXES_ENABLED = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
    yield


@pytest.fixture
def phone() -> str:
    return "5511999990001"


def pytest_report_header(config):
    database = "postgresql" if ON_POSTGRES else "sqlite"
    return f"stack: database={database} cache={'redis' if ON_REDIS else 'locmem'} (pid {os.getpid()})"


@pytest.fixture
def clinic(db):
    """The demo clinic of `manage.py seed_clinic` (rag_agent/demo.py)."""
    from rag_agent.demo import seed_demo_clinic

    return seed_demo_clinic()
