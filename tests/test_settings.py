"""Production start-up refuses to run without its secrets, with a message a person can act on."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _django_setup(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    unset = {"DEBUG", "SECRET_KEY", "WHATSAPP_APP_SECRET", "HANDOFF_NOTIFY_EMAILS", "EMAIL_HOST"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_overrides)
    code = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'core.settings'); django.setup()"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_missing_secret_key_stops_production_start_up():
    result = _django_setup({"WHATSAPP_APP_SECRET": "x"})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_missing_app_secret_stops_production_start_up():
    result = _django_setup({"SECRET_KEY": "k" * 50})
    assert result.returncode != 0
    assert "WHATSAPP_APP_SECRET is not set" in result.stderr


def test_handoff_emails_without_a_mail_server_stop_production_start_up():
    result = _django_setup({"SECRET_KEY": "k" * 50, "WHATSAPP_APP_SECRET": "s", "HANDOFF_NOTIFY_EMAILS": "a@b.example"})
    assert result.returncode != 0
    assert "HANDOFF_NOTIFY_EMAILS is set but EMAIL_HOST is not" in result.stderr


PRODUCTION = {"SECRET_KEY": "k" * 50, "WHATSAPP_APP_SECRET": "s"}


@pytest.mark.parametrize(
    "env", [{"DEBUG": "1"}, PRODUCTION, {**PRODUCTION, "HANDOFF_NOTIFY_EMAILS": "a@b.example", "EMAIL_HOST": "smtp"}]
)
def test_debug_or_complete_production_settings_start(env):
    result = _django_setup(env)
    assert result.returncode == 0, result.stderr
