"""README.md and .env.example stay true to the code."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def settings_variables() -> set[str]:
    source = (ROOT / "project" / "settings.py").read_text()
    names = set(re.findall(r'env(?:str|bool|int|list|secret|database|oidcproviders|mediastorage)\(\s*"([A-Z_]+)"',
                           source))
    # The variables of one setting read together by its helper (KILN_MEDIA_STORAGE=s3's bucket...).
    helpers = (ROOT / "project" / "env.py").read_text()
    return names | set(re.findall(r'(?:os\.environ\.get|envint)\(\s*"(KILN_S3_[A-Z_]+)"', helpers))


def test_every_settings_variable_is_documented_in_the_readme_and_env_example():
    names = settings_variables()
    assert {"DEBUG", "DATABASE_URL", "FIELD_ENCRYPTION_KEYS", "CELERY_BROKER_URL"} <= names
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    assert not [n for n in names if f"`{n}`" not in readme], "missing from README.md's configuration table"
    assert not [n for n in names if not re.search(rf"^#?{n}=", example, re.M)], "missing from .env.example"


def test_the_env_example_names_no_variable_kiln_does_not_read():
    example = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#?([A-Z_]+)=", example, re.M))
    per_provider = {n for n in names if re.match(r"KILN_OIDC_[A-Z0-9_]+_(ISSUER|CLIENT_ID|CLIENT_SECRET|LABEL|SCOPES|"
                                                 r"AUTH_PARAMS|DOMAINS)$", n)}  # project/env.py, envoidcproviders
    assert names - settings_variables() - per_provider <= {"PORT", "KILN_API_KEY"}


def test_every_dependency_is_explained_in_the_readme():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    section = (ROOT / "README.md").read_text().split("## Dependencies", 1)[1]
    for requirement in requirements:
        name = re.match(r"[A-Za-z0-9_.-]+(\[[a-z0-9,]+\])?", requirement).group(0)
        if name.split("[")[0] == project["name"]:  # an extra made of another of Kiln's own (dev includes s3)
            continue
        assert f"**{name}**" in section, f"{name} is not explained under README.md's Dependencies"
