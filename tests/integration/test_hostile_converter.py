"""The full-size hostile corpus (testkit/hostile.py), every shape in every format, in one child
process under the default limits: each converts or fails with a limit's code within seconds,
and the child's peak RSS (its own VmHWM at the end: getrusage's ru_maxrss would count the
pytest process it was forked from, which Linux carries over exec) stays under 150 MB."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from testkit import REPO

BOUND_KIB = 150 * 1024
CODES = {"TOO_MANY_ATTRIBUTES", "ATTRIBUTE_DEFAULTS_LIMIT", "TOO_MANY_NAMES",
         "TOO_MANY_COLUMNS", "VALUE_TOO_LARGE", "OUTPUT_TOO_LARGE"}

_CHILD = textwrap.dedent("""
    import json, os, sys, tempfile, time
    from converter import ConversionError, convert
    from testkit.hostile import SHAPES
    for name, make in SHAPES.items():
        data = make()
        for fmt in ("json", "yaml", "jsonl", "csv", "text"):
            started = time.monotonic()
            with tempfile.TemporaryFile() as source, tempfile.TemporaryFile() as out:
                source.write(data)
                source.seek(0)
                try:
                    convert(source, out, fmt)
                    code = None
                except ConversionError as error:
                    code = error.code
            print(json.dumps([name, fmt, code, time.monotonic() - started]), flush=True)
    from testkit.service import vm_hwm_kib
    print(vm_hwm_kib(os.getpid()))
""")


def test_every_hostile_shape_in_every_format_is_fast_and_under_150_mb():
    done = subprocess.run([sys.executable, "-c", _CHILD], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=True)
    *lines, peak = done.stdout.splitlines()
    peak_kib = int(peak)
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 15 * 5
    for name, fmt, code, seconds in rows:
        assert code is None or code in CODES, (name, fmt, code)
        assert seconds < 20, (name, fmt, seconds)
    assert peak_kib < BOUND_KIB, f"peak RSS {peak_kib // 1024} MB"
