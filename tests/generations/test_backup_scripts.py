"""docs/deploy/kiln-backup.sh and kiln-restore.sh before they touch anything: what they hand to
pg_dump, pg_restore and rclone. Stand-ins on PATH record each call (its arguments, as `ps` would
show them to every user of the host, and its PGPASSWORD); the real run is test_backup_restore.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

SCRIPTS = Path(django_settings.BASE_DIR) / "docs" / "deploy"
URL = "postgres://kiln:s3cret%2Fpw@db.example:5432/kiln?sslmode=require&conn_max_age=60"


@pytest.fixture
def tools(tmp_path):
    """pg_dump, pg_restore and rclone that write one line per call to calls.log and succeed."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name in ("pg_dump", "pg_restore", "rclone"):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name} $* PGPASSWORD=${{PGPASSWORD:-}}" >> "{log}"\n'
                        'for a; do case $a in --file=*) : > "${a#--file=}";; esac; done\n')
        tool.chmod(0o755)
    (tmp_path / "src").mkdir()
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path), "PYTHON": sys.executable,
           "DATABASE_URL": URL, "KILN_S3_BUCKET": "kiln-media", "KILN_S3_ACCESS_KEY_ID": "AKIA",
           "KILN_S3_SECRET_ACCESS_KEY": "shh"}
    return env, log


def _run(script: str, arg: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / script), str(arg)], env=env, capture_output=True, text=True, timeout=60,
                          cwd=arg.parent)


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_the_database_password_is_not_on_pg_dumps_command_line_but_in_its_environment(tools, tmp_path):
    env, log = tools
    _run("kiln-backup.sh", tmp_path / "dest", env)
    dump = next(call for call in _calls(log) if call.startswith("pg_dump "))
    args, password = dump.split(" PGPASSWORD=")
    assert "s3cret" not in args
    assert "postgres://kiln@db.example:5432/kiln?sslmode=require" in args
    assert password == "s3cret/pw"


@pytest.mark.parametrize("missing", ["DATABASE_URL", "KILN_S3_BUCKET"])
@pytest.mark.parametrize("script", ["kiln-backup.sh", "kiln-restore.sh"])
def test_a_missing_setting_stops_the_script_before_it_runs_anything(tools, tmp_path, script, missing):
    """Not pg_dump/pg_restore on libpq's default database, nor rclone on the current folder."""
    env, log = tools
    del env[missing]
    done = _run(script, tmp_path / ("dest" if script == "kiln-backup.sh" else "src"), env)
    assert done.returncode != 0
    assert f"{missing} is not set" in done.stderr
    assert _calls(log) == []
    assert not (tmp_path / "dest" / "kiln.dump").exists()


def test_the_backup_is_readable_by_its_owner_only(tools, tmp_path):
    """The dump holds every member's password hash, sessions and the (encrypted) provider keys."""
    env, _ = tools
    done = subprocess.run(["sh", "-c", f'umask 022; exec "{SCRIPTS / "kiln-backup.sh"}" "{tmp_path / "dest"}"'],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dest").stat().st_mode & 0o077 == 0
    assert (tmp_path / "dest" / "kiln.dump").stat().st_mode & 0o077 == 0
