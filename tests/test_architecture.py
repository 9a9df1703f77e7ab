"""The code's shape, checked so that the next change cannot quietly undo it.

- Apps import one way (DESIGN.md): the layers contract in .importlinter.
- No module cycle anywhere, function-level imports included: a cycle hidden by an
  import inside a function is still a cycle for whoever changes either module.
- Jobs are entry points: only the cron table and other jobs modules import them;
  everything else names a job by its dotted path (waplatform.queues).
- Every job named by a dotted path in the code exists.
"""

import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("waplatform", "tenants", "pooling", "messaging", "agents", "operations", "inbox", "mirror")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*APPS, include_external_packages=False, cache_dir=None)


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_apps_import_one_way():
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_no_module_cycles(graph):
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle(graph):
    graph.add_import(importer="tenants.models", imported="tenants.services")
    graph.add_import(importer="tenants.services", imported="tenants.models")
    assert ["tenants.models", "tenants.services"] in _cycles(graph)


def test_only_the_cron_table_and_jobs_import_jobs(graph):
    jobs_modules = {m for m in graph.modules if m.endswith(".jobs")}
    importers = {
        (importer, jobs)
        for jobs in jobs_modules
        for importer in graph.find_modules_that_directly_import(jobs)
        if importer != "waplatform.cron" and not importer.endswith(".jobs")
    }
    assert importers == set()


JOB_PATH = re.compile(r"""["']((?:%s)\.jobs\.[a-z_]+)["']""" % "|".join(APPS))


def test_every_named_job_exists():
    named = {
        match
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        for match in JOB_PATH.findall(path.read_text())
    }
    assert named, "no job named by path: the pattern no longer matches how jobs are enqueued"
    missing = sorted(p for p in named if not callable(getattr(import_module(p.rsplit(".", 1)[0]), p.rsplit(".", 1)[1], None)))
    assert missing == []
