"""The documented shell loop over ``exports/manifest.csv`` (docs/adapters.md) hands every
``credit ingest`` a file that exists, a known format and a valid firm ID: the manifest is
plain ``\\n``-terminated CSV that ``IFS=, read`` splits cleanly."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from credit.adapters import FORMATS
from credit.adapters.describe import render_markdown
from credit.records import ID_PATTERN
from credit.simulator import simulate
from credit.simulator.exports import write_exports


def _documented_loop() -> str:
    doc = render_markdown()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", doc, re.S) if "manifest" in b)
    loop = block[block.index("tail -n +2") :]
    assert "while IFS=, read -r file fmt firm" in loop, loop
    return loop


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_documented_loop_gets_clean_arguments_from_the_manifest(tmp_path: Path) -> None:
    frames = dict(simulate(firms=6, start="2024-01", months=3, seed=2).frames())
    paths = write_exports(frames, tmp_path / "world", list(FORMATS), None)
    assert b"\r" not in paths["manifest"].read_bytes()
    # `credit` stands in as a shell function that prints the arguments it was given
    script = "credit() { printf '%s\\x1f' \"$@\"; printf '\\n'; }\n" + _documented_loop()
    out = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    calls = [line.split("\x1f")[:-1] for line in out.splitlines()]
    assert len(calls) == len(paths["manifest"].read_text().splitlines()) - 1 > 6
    for args in calls:
        assert args[0] == "ingest"
        assert (tmp_path / args[1]).is_file(), args
        opts = dict(zip(args[2::2], args[3::2], strict=True))
        assert opts["--format"] in FORMATS, args
        assert re.fullmatch(ID_PATTERN, opts["--firm"]), args
        assert opts["--fx"] == "world/fx.csv"
