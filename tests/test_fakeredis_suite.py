"""fakeredis 2.41's own per-command tests (the bitmap, generic-key and stream modules of its sdist's
test/test_mixins) on Redimo and on fakeredis in one run, through scripts/fakeredis-tests.sh.

A test may fail on Redimo where it passes on fakeredis only if docs/commands.md names it, with its reason,
in the table under "fakeredis's own tests"; and every test named there must still differ."""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

from conftest import ROOT

SECTION = "## fakeredis's own tests"


def documented_differences() -> set[str]:
    text = (ROOT / "docs" / "commands.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(test_\w+)`", section, flags=re.MULTILINE))


def outcomes(report: Path) -> dict[str, dict[str, set[str]]]:
    """{target: {test name without parameters: the outcomes of its variants}}"""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for case in ElementTree.parse(report).iter("testcase"):
        name, _, parameters = case.get("name", "").partition("[")
        target = parameters.split("-")[0].rstrip("]")
        failed = case.find("failure") is not None or case.find("error") is not None
        found[target][name].add("skipped" if case.find("skipped") is not None else
                                "failed" if failed else "passed")
    return found


def test_fakeredis_suite(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    environment = {key: value for key, value in os.environ.items() if key != "AWS_ENDPOINT_URL_DYNAMODB"}
    run = subprocess.run([str(ROOT / "scripts" / "fakeredis-tests.sh"), "-q", f"--junitxml={report}"],
                         cwd=ROOT, env=environment, capture_output=True, text=True, timeout=1500)
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    found = outcomes(report)
    assert len(found["redimo"]) > 200 and found["redimo"].keys() == found["fakeredis"].keys()
    differing = {name for name, redimo in found["redimo"].items()
                 if "failed" in redimo and "failed" not in found["fakeredis"][name]}
    documented = documented_differences()
    assert differing == documented, f"undocumented: {sorted(differing - documented)}; " \
                                    f"documented but no longer differing: {sorted(documented - differing)}"
