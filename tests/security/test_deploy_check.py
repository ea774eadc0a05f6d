"""`manage.py check --deploy` with production-like settings, as a subprocess (settings are read at import)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _production_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DEBUG", "DATABASE_URL", "REDIS_URL"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "core.settings",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "WHATSAPP_APP_SECRET": secrets.token_hex(16),
            "ALLOWED_HOSTS": "clinica.example.com.br",
            "CSRF_TRUSTED_ORIGINS": "https://clinica.example.com.br",
        }
    )
    return env


def test_deploy_check_with_production_settings_reports_no_warning():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_production_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output and "ERRORS" not in output, output
    assert "no issues" in output


def test_production_start_refuses_a_missing_secret_key():
    env = _production_env()
    del env["SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
