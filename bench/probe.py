"""6. Probing a video bomb: peak memory of ``mediafiles.process_video`` on the report's file.

The file: a 1.7 MB Motion JPEG ``.mov`` of 12000x12000 pixels
(``generations.sandbox.media.mjpeg_mov``). Decoding its first frame to look at its size
took a gunicorn worker from 74 MB to 2,094 MB before the 400. The baseline, in the same
run: probing an ordinary result, a 2 s 1280x720 H.264 MP4 (poster frame and all). Each
is probed in a fresh child process (``python -m bench.probe --child FILE``: PyAV loaded,
VmHWM read, the probe, VmHWM again); the figure is how much its peak resident memory
grew. Three runs each, the largest growth counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from bench import common
from bench.common import Row, log

MB = 1024 * 1024


def _peak() -> int:
    for line in open("/proc/self/status"):   # noqa: SIM115 (read at once)
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def child(path: str) -> None:
    import av  # noqa: F401 (loaded before the baseline: the figure is the probe, not the library)

    from generations import mediafiles

    before = _peak()
    try:
        processed = mediafiles.process_video(path)
        answer = f"accepted {processed.width}x{processed.height}"
    except mediafiles.MediaRejected as exc:
        answer = str(exc)
    print(json.dumps({"answer": answer, "grew": _peak() - before, "before": before}))


def _probe(path: str) -> dict:
    out = subprocess.run([common.PY, "-m", "bench.probe", "--child", path], cwd=common.ROOT,
                         env={**os.environ, **common.environment()},
                         capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(sandbox: common.Sandbox, quick: bool = False) -> tuple[list[Row], dict]:
    from generations.sandbox import media

    with tempfile.TemporaryDirectory(prefix="kiln-bench-probe-") as tmp:
        bomb, normal = os.path.join(tmp, "bomb.mov"), os.path.join(tmp, "normal.mp4")
        with open(bomb, "wb") as fh:
            fh.write(media.mjpeg_mov(12000))
        with open(normal, "wb") as fh:
            fh.write(media.video_bytes(1280, 720, "bench", seconds=2.0))
        bombs, normals = [], []
        for _ in range(1 if quick else 3):
            bombs.append(_probe(bomb))
            normals.append(_probe(normal))
            log(f"probe: bomb {bombs[-1]}, normal {normals[-1]}")
        size = os.path.getsize(bomb)
    assert all("at most 8192x8192" in r["answer"] for r in bombs), bombs
    assert all(r["answer"].startswith("accepted") for r in normals), normals
    grew, baseline = max(r["grew"] for r in bombs) / MB, max(r["grew"] for r in normals) / MB
    ratio = grew / baseline if baseline else float("inf")
    details = {"bomb_bytes": size, "bomb": bombs, "normal": normals, "bomb_growth_mb": grew,
               "normal_growth_mb": baseline}
    return [
        Row("probe", f"peak RSS growth probing a {size / MB:.1f} MB 12000x12000 MJPEG .mov", f"{grew:.1f} MB",
            f"{baseline:.1f} MB probing a 1280x720 H.264 MP4", f"{ratio:.2f}", "≤ 1.00 (was 1,931 MB)", ratio <= 1.0),
    ], details


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        sys.exit("usage: python -m bench.probe --child FILE (run by bench/run.py probe)")
