"""pytest fixtures for the latchd black-box suite (helpers live in harness.py). Each fixture
stops, by pid, every process it started; a daemon that died during a test fails that test."""

import os
import signal
import subprocess
import time

import pytest

from harness import Latchd, Origin, Nginx, repeating_file

# Daemons stopped at the end of a test: SIGTERM is sent at teardown, the exit is awaited in the
# background of the run (latchd may take a moment to drain), and checked at the end of the
# session: one that does not exit within 20 s, or exits non-zero, fails the run.
_STOPPING = []


def _reap(block=False):
    import signal as _signal
    problems = []
    for item in list(_STOPPING):
        nodeid, d, t0 = item
        try:
            rc = d.proc.wait(max(0.0, t0 + 20 - time.monotonic()) if block else 0)
        except subprocess.TimeoutExpired:
            if time.monotonic() - t0 < 20:
                continue
            os.kill(d.pid, _signal.SIGKILL)
            d.proc.wait(5)
            problems.append(f"{nodeid}: latchd {d.pid} did not exit within 20 s of SIGTERM")
            _STOPPING.remove(item)
            continue
        _STOPPING.remove(item)
        d.close_files()
        if rc != 0:
            problems.append(f"{nodeid}: latchd {d.pid} exited with status {rc} after SIGTERM\n"
                            f"--- stderr tail:\n{d.stderr()[-2000:]}")
    return problems


_LATE_PROBLEMS = []


@pytest.fixture
def latchd(tmp_path, request):
    """Factory: latchd(config, **kw) starts a daemon (see harness.Latchd). At teardown each is
    checked alive (a daemon that died during the test fails it) and sent SIGTERM."""
    started = []

    def start(config, name="latchd", wait=True, **kw):
        d = Latchd(tmp_path / f"{name}{len(started)}", config, **kw)
        started.append(d)
        return d.start(wait=wait)

    yield start
    problems = []
    for d in started:
        if d.proc is None:
            continue
        if not d.stopped_by_test and not d.alive():
            problems.append(f"latchd {d.pid} died during the test (status {d.proc.returncode})"
                            f"\n--- stderr:\n{d.stderr()[-3000:]}")
        if d.alive():
            d.stopped_by_test = True
            d.signal(signal.SIGTERM)
            _STOPPING.append((request.node.nodeid, d, time.monotonic()))
    _LATE_PROBLEMS.extend(_reap())
    if problems:
        if getattr(request.node, "_failed", False):
            print("\n".join(problems))  # shown with the test's own failure
        else:
            pytest.fail("\n".join(problems))


def pytest_sessionfinish(session, exitstatus):
    _LATE_PROBLEMS.extend(_reap(block=True))
    if _LATE_PROBLEMS:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        msg = "latchd shutdown problems:\n" + "\n".join(_LATE_PROBLEMS)
        if tr:
            tr.write_line(msg, red=True)
        else:
            print(msg)
        session.exitstatus = 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        item._failed = True


@pytest.fixture
def origin_factory():
    made = []

    def make(**kw):
        o = Origin(**kw)
        made.append(o)
        return o

    yield make
    for o in made:
        o.close()


@pytest.fixture
def origin(origin_factory):
    return origin_factory()


@pytest.fixture
def nginx_factory(tmp_path):
    made = []

    def make(server_block):
        n = Nginx(tmp_path / f"nginx{len(made)}", server_block)
        made.append(n)
        return n

    yield make
    for n in made:
        n.stop()


@pytest.fixture(scope="session")
def big_file(tmp_path_factory):
    """A 1 GiB file with a non-aligned pattern, shared by the big upload and download."""
    d = tmp_path_factory.mktemp("big")
    p = d / "big.bin"
    sha = repeating_file(p, 1 << 30)
    yield p, sha
    try:
        p.unlink()
    except OSError:
        pass


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory, request):
    return tmp_path_factory.mktemp(request.module.__name__.replace("test_", ""))



# --------------------------------------------------------------------------------------------
# a timeout on every test (no pytest-timeout in Debian's python3-pytest): SIGALRM in the main
# thread fails the test; @pytest.mark.timeout(seconds) overrides the default.

DEFAULT_TEST_TIMEOUT = 90


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): fail the test after this long")
    config.addinivalue_line("markers", "serial: a load test that takes the machine's cores; run "
                            "in the Makefile's serial pytest invocation, not beside other tests")


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _test_timeout(request):
    import signal as _signal
    m = request.node.get_closest_marker("timeout")
    seconds = int(m.args[0]) if m else DEFAULT_TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise TestTimeout(f"test exceeded {seconds}s")

    old = _signal.signal(_signal.SIGALRM, on_alarm)
    _signal.alarm(seconds)
    yield
    _signal.alarm(0)
    _signal.signal(_signal.SIGALRM, old)
