"""Settings helpers fail loudly, naming the variable, on a bad value."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from project.env import envbool, envdatabase, envint, envlist, envsecret


def test_envbool_reads_the_usual_spellings(monkeypatch):
    for raw, expected in [("1", True), ("true", True), ("YES", True), ("on", True),
                          ("0", False), ("false", False), ("no", False), ("", False)]:
        monkeypatch.setenv("KILN_FLAG", raw)
        assert envbool("KILN_FLAG") is expected
    monkeypatch.delenv("KILN_FLAG")
    assert envbool("KILN_FLAG", True) is True


def test_a_bad_debug_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DEBUG") as excinfo:
        envbool("DEBUG")
    assert "'maybe'" in str(excinfo.value)


def test_a_non_integer_names_the_variable(monkeypatch):
    monkeypatch.setenv("KILN_POLL_BATCH", "lots")
    with pytest.raises(ImproperlyConfigured, match="KILN_POLL_BATCH must be an integer"):
        envint("KILN_POLL_BATCH", 200)


def test_an_integer_below_its_minimum_is_refused(monkeypatch):
    monkeypatch.setenv("KILN_POLL_CONCURRENCY", "0")
    with pytest.raises(ImproperlyConfigured, match="KILN_POLL_CONCURRENCY must be at least 1"):
        envint("KILN_POLL_CONCURRENCY", 32, minimum=1)


def test_an_unset_integer_takes_its_default(monkeypatch):
    monkeypatch.delenv("KILN_POLL_BATCH", raising=False)
    assert envint("KILN_POLL_BATCH", 200) == 200


def test_a_database_url_of_an_unknown_kind_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/kiln")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL must be a postgres:// or sqlite:// URL"):
        envdatabase("DATABASE_URL", tmp_path / "db.sqlite3")


def test_a_postgres_url_without_a_database_name_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL must name a database"):
        envdatabase("DATABASE_URL", tmp_path / "db.sqlite3")


def test_a_postgres_url_becomes_django_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://kiln:s%40cret@db.internal:6543/kiln?sslmode=require")
    config = envdatabase("DATABASE_URL", tmp_path / "db.sqlite3")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("kiln", "kiln", "s@cret")
    assert (config["HOST"], config["PORT"]) == ("db.internal", "6543")
    assert config["OPTIONS"] == {"sslmode": "require", "connect_timeout": "5"}


def test_a_postgres_url_may_set_its_own_connect_timeout(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://kiln@db.internal/kiln?connect_timeout=12")
    assert envdatabase("DATABASE_URL", tmp_path / "db.sqlite3")["OPTIONS"] == {"connect_timeout": "12"}


def test_no_database_url_means_sqlite_under_var(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = envdatabase("DATABASE_URL", tmp_path / "kiln.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == tmp_path / "kiln.sqlite3"


def test_a_short_secret_key_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "too-short")
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be at least 32 characters"):
        envsecret("SECRET_KEY", tmp_path / "secret_key")


def test_a_missing_secret_key_is_generated_once_and_kept(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    path = tmp_path / "var" / "secret_key"
    first = envsecret("SECRET_KEY", path)
    assert len(first) >= 50
    assert envsecret("SECRET_KEY", path) == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_lists_are_split_on_commas_and_trimmed(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", " kiln.example.com , ,127.0.0.1")
    assert envlist("ALLOWED_HOSTS") == ["kiln.example.com", "127.0.0.1"]
