"""serving.py: servers on loopback start, answer, and are stopped even when the body raises."""
import socket
import sys
import urllib.request

import pytest

from course_utils import serving


def _closed(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_serve_app_answers_and_stops_even_on_error():
    from fastapi import FastAPI

    app = FastAPI()
    app.get("/health")(lambda: {"ok": True})
    with pytest.raises(KeyError):
        with serving.serve_app(app) as url:
            port = int(url.rsplit(":", 1)[1])
            assert urllib.request.urlopen(f"{url}/health").read() == b'{"ok":true}'
            raise KeyError("the body fails")
    assert _closed(port)


def test_run_process_waits_for_health_and_terminates(tmp_path):
    port = serving.free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(tmp_path)]
    with serving.run_process(cmd, port, tmp_path / "log.txt", health_url=f"http://127.0.0.1:{port}/") as proc:
        assert proc.poll() is None
    assert proc.poll() is not None and _closed(port)


def test_a_server_that_dies_at_start_is_reported_with_its_log(tmp_path):
    cmd = [sys.executable, "-c", "import sys; print('bad config: no such collection'); sys.exit(3)"]
    with pytest.raises(RuntimeError, match="(?s)exited with code 3.*bad config"):
        with serving.run_process(cmd, serving.free_port(), tmp_path / "log.txt", timeout=20):
            pass


def test_empty_command_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="command is empty"):
        with serving.run_process([], 1, tmp_path / "log.txt"):
            pass
