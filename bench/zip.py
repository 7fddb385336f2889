"""7. Download as zip: the gallery's selection as one zip, memory flat whatever its size.

Three selections of one team's results, each file a sparse file in the bench's media
folder (zeros that cost no disk; the zip reads and checksums every byte all the same):
10 x 4 MiB, 100 x 4 MiB (the most one zip takes) and 5 x 1 GiB (5 GiB: Zip64).
``--quick``: 10 x 1 MiB, 100 x 1 MiB, 3 x 256 MiB.

Each is fetched in a fresh child process (``python -m bench.zip --child SPEC``: Django set
up, signed in with a session cookie, one warm-up zip of one file) through Django's test
client: ``POST generations:bulk_download`` with the ids, the streamed body read to the
end and counted. Before it the child resets its peak (``5 > /proc/self/clear_refs``) and
reads VmRSS; after it, VmHWM: the figure is the growth. Baseline in the same run: what
the zip would cost built whole in memory (Python's ``zipfile`` into ``BytesIO``, the same
files, stored) for the two smaller selections; and for speed, the same child reading the
same files raw (256 KiB reads, no zip).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import common
from bench.common import Row, log

MiB = 1024 * 1024
GiB = 1024 * MiB


def _vm(name: str) -> int:
    for line in open("/proc/self/status"):   # noqa: SIM115 (read at once)
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    """VmHWM back to VmRSS (Linux 4.0+), so the peak measured is the download's own."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def child(spec_path: str) -> None:
    common.setup_django()
    import io
    import zipfile

    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    from generations.models import Media

    spec = json.loads(Path(spec_path).read_text())
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = spec["session"]
    url = reverse("generations:bulk_download")

    def fetch(ids) -> tuple[int, int]:
        response = client.post(url, {"ids": ids})
        assert response.status_code == 200 and response.streaming, response.status_code
        got = sum(len(chunk) for chunk in response.streaming_content)
        return got, int(response["Content-Length"])

    fetch(spec["ids"][:1])  # warm-up: imports, templates, the first queries
    out = {}
    if spec["mode"] == "zip":
        _reset_peak()
        rss_before = _vm("VmRSS")
        started = time.perf_counter()
        got, length = fetch(spec["ids"])
        out = {"bytes": got, "content_length": length, "seconds": time.perf_counter() - started}
    elif spec["mode"] == "in_memory":   # the baseline: the same zip built whole
        files = [m.file for m in Media.objects.filter(generation__public_id__in=spec["ids"])]
        _reset_peak()
        rss_before = _vm("VmRSS")
        started = time.perf_counter()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for i, f in enumerate(files):
                with f.open("rb") as fh, archive.open(f"{i}.mp4", "w", force_zip64=True) as member:
                    while data := fh.read(256 * 1024):
                        member.write(data)
        out = {"bytes": len(buffer.getbuffer()), "seconds": time.perf_counter() - started}
    else:  # "read": the files alone, no zip
        files = [m.file for m in Media.objects.filter(generation__public_id__in=spec["ids"])]
        _reset_peak()
        rss_before = _vm("VmRSS")
        started = time.perf_counter()
        got = 0
        for f in files:
            with f.open("rb") as fh:
                while data := fh.read(256 * 1024):
                    got += len(data)
        out = {"bytes": got, "seconds": time.perf_counter() - started}
    out.update(rss_before=rss_before, hwm_after=_vm("VmHWM"))
    print(json.dumps(out))


def _child(session: str, ids: list[str], mode: str) -> dict:
    import subprocess

    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=common.VAR, delete=False) as fh:
        json.dump({"session": session, "ids": ids, "mode": mode}, fh)
    try:
        out = subprocess.run([common.PY, "-m", "bench.zip", "--child", fh.name], cwd=common.ROOT,
                             env={**os.environ, **common.environment()},
                             capture_output=True, text=True, timeout=1800, check=True)
    finally:
        os.unlink(fh.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _selection(team, owner, name: str, count: int, size: int) -> list[str]:
    """``count`` finished results of ``size`` bytes each (sparse files), their ids."""
    from django.conf import settings
    from django.utils import timezone

    from generations.models import Generation, Kind, Media, Operation, Prompt, Status

    folder = Path(settings.MEDIA_ROOT) / "bench-zip" / name
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(count):
        prompt = Prompt.objects.create(team=team, author=owner, text=f"bench zip {name} {i}")
        g = Generation.objects.create(team=team, author=owner, prompt=prompt, provider="shark",
                                      model="alibaba/wan-2.7", kind=Kind.VIDEO, operation=Operation.TEXT_TO_VIDEO,
                                      status=Status.SUCCEEDED, finished_at=timezone.now(), estimated_cost=0)
        path = folder / f"{i}.mp4"
        with open(path, "wb") as fh:
            fh.truncate(size)
        Media.objects.create(generation=g, kind=Kind.VIDEO, mime_type="video/mp4", bytes=size, sha256="0" * 64,
                             file=str(path.relative_to(settings.MEDIA_ROOT)))
        ids.append(str(g.public_id))
    return ids


def run(sandbox: common.Sandbox, quick: bool = False) -> tuple[list[Row], dict]:
    import shutil

    from django.conf import settings

    team, memberships = common.make_team("zip")
    owner = memberships[0].user
    session = common.session_cookie(owner)
    unit = MiB if quick else 4 * MiB
    sets = {"small": (10, unit), "many": (100, unit), "large": (3, 256 * MiB) if quick else (5, GiB)}
    ids = {name: _selection(team, owner, name, count, size) for name, (count, size) in sets.items()}
    label = {name: f"{count} x {size // MiB} MiB" if size < GiB else f"{count} x {size // GiB} GiB"
             for name, (count, size) in sets.items()}
    try:
        kiln = {name: _child(session, ids[name], "zip") for name in sets}
        memory = {name: _child(session, ids[name], "in_memory") for name in ("small", "many")}
        raw = _child(session, ids["large"], "read")
    finally:
        shutil.rmtree(Path(settings.MEDIA_ROOT) / "bench-zip", ignore_errors=True)
    for name, got in kiln.items():
        log(f"zip {label[name]}: {got}")
        count, size = sets[name]
        assert got["bytes"] == got["content_length"] > count * size, got
    log(f"zip baselines: in memory {memory}, raw read {raw}")

    def growth(r):
        return (r["hwm_after"] - r["rss_before"]) / MiB

    rows = []
    for name in ("small", "many"):
        g, base = growth(kiln[name]), growth(memory[name])
        rows.append(Row("zip", f"peak RSS growth, zip of {label[name]}", f"{g:.1f} MB",
                        f"{base:.0f} MB built in memory", f"{g / base:.3f}", "≤ 16 MB", g <= 16))
    g = growth(kiln["large"])
    zip64 = " (Zip64)" if sets["large"][0] * sets["large"][1] > 4 * GiB else ""
    rows.append(Row("zip", f"peak RSS growth, zip of {label['large']}{zip64}", f"{g:.1f} MB",
                    f"{growth(kiln['small']):.1f} MB for {label['small']}",
                    f"{g - growth(kiln['small']):+.1f} MB", "flat: ≤ +8 MB", g - growth(kiln["small"]) <= 8))
    rate = kiln["large"]["bytes"] / kiln["large"]["seconds"] / MiB
    raw_rate = raw["bytes"] / raw["seconds"] / MiB
    rows.append(Row("zip", f"throughput, zip of {label['large']}", f"{rate:.0f} MB/s",
                    f"{raw_rate:.0f} MB/s reading the files alone", f"{rate / raw_rate:.2f}"))
    details = {"sets": {n: {"count": c, "bytes": s} for n, (c, s) in sets.items()}, "kiln": kiln,
               "in_memory": memory, "read": raw}
    return rows, details


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        sys.exit("usage: python -m bench.zip --child SPEC.json (run by bench/run.py zip)")
