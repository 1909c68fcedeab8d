"""The design's import boundaries, checked in fresh interpreters: the API never loads lxml or
the conversion engine, the worker never loads Flask."""

from __future__ import annotations

import subprocess
import sys

from testkit import REPO


def loaded_after(code: str, env: dict[str, str]) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return set(done.stdout.split())


def test_api_loads_neither_lxml_nor_the_engine_nor_the_worker(stack):
    modules = loaded_after(
        "from api import create_app\n"
        "client = create_app().test_client()\n"
        "assert client.post('/jobs?format=csv', data=b'<a>1</a>',"
        " content_type='application/xml').status_code == 202\n", stack.env)
    assert "flask" in modules
    assert not {m for m in modules if m == "lxml" or m.startswith(("lxml.", "worker"))}
    assert "converter.engine" not in modules


def test_worker_does_not_load_flask(stack):
    modules = loaded_after("import worker.app, worker.tasks, worker.runner\n", stack.env)
    assert "celery" in modules
    assert not {m for m in modules if m == "flask" or m.startswith(("flask.", "api"))}
