"""``nox -s serve`` hands SIGINT and SIGTERM sent to nox alone on to the server, and keeps the
server out of the terminal's process group (so a Ctrl-C reaches the server once, through nox).

The server here is a small stand-in that records the signal it got; the real one stops on
either (see tests/system/test_server_process.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support import ROOT

#: A "server": writes its pid and process group, then waits for a signal and records it.
SERVER = textwrap.dedent(
    """
    import os, signal, sys, time
    out = sys.argv[1]
    def stop(signum, frame):
        open(out + ".signal", "w").write(signal.Signals(signum).name)
        sys.exit(0)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    open(out + ".pid", "w").write(f"{os.getpid()} {os.getpgrp()}")
    time.sleep(60)
    """
)

#: nox's side: the noxfile's runner, as the serve session calls it.
NOX = textwrap.dedent(
    """
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("noxfile", sys.argv[1])
    noxfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(noxfile)
    code = noxfile.run_forwarding_signals([sys.executable, "-c", sys.argv[2], sys.argv[3]], {})
    print("exit", code, flush=True)
    """
)


def _wait_for(path: Path, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path.name} never appeared")


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_nox_alone_stops_the_server_through_it(
    tmp_path: Path, sent: signal.Signals
) -> None:
    out = tmp_path / "server"
    nox = subprocess.Popen(
        [sys.executable, "-c", NOX, str(ROOT / "noxfile.py"), SERVER, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # nox's own group, standing for the terminal's
    )
    try:
        server_pid, server_group = map(int, _wait_for(out.with_suffix(".pid")).split())
        assert server_group != os.getpgid(nox.pid)  # a Ctrl-C to nox's group misses it
        nox.send_signal(sent)  # to nox alone
        assert _wait_for(out.with_suffix(".signal")) == sent.name
        stdout, _ = nox.communicate(timeout=20)
    finally:
        if nox.poll() is None:
            nox.kill()
    assert nox.returncode == 0
    assert stdout.split() == ["exit", "0"]
    with pytest.raises(ProcessLookupError):
        os.kill(server_pid, 0)
