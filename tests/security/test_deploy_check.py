"""Django's deployment checklist passes with production settings."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DEBUG": "0",
    "KILN_HTTPS": "1",
    "SECRET_KEY": "x" * 20 + "production-secret-that-is-long-enough-0123456789",
    "ALLOWED_HOSTS": "kiln.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://kiln.example.com",
    "FIELD_ENCRYPTION_KEYS": "3q2-kmn8Rr8wm0dpDd6XU2Vz6m8J9w5H2HcWnXjQq0c=",
}


def run_manage(*args, env_overrides):
    # A clean production environment: nothing the test run itself set (e2e tests set
    # DJANGO_ALLOW_ASYNC_UNSAFE for Playwright, which production must never have).
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL")}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_deploy_checklist_is_clean_with_production_settings(tmp_path):
    result = run_manage("check", "--deploy", "--fail-level", "WARNING",
                        env_overrides={**PRODUCTION_ENV, "KILN_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_checklist_flags_a_server_left_on_plain_http(tmp_path):
    result = run_manage("check", "--deploy", "--fail-level", "WARNING",
                        env_overrides={**PRODUCTION_ENV, "KILN_HTTPS": "0", "KILN_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS" in result.stdout + result.stderr


def test_a_malformed_setting_stops_the_app_naming_the_variable(tmp_path):
    result = run_manage("check", env_overrides={"DEBUG": "maybe", "KILN_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr
