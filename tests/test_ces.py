"""The Code Evaluation Service with the real dune: `ces serve` over HTTP as a real
process, `ces check` from the command line, and the diff → files step."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocaml_ai_ls.verify.diffs import BadDiff, files_to_check
from ocaml_ai_ls.verify.engine import CheckEngine

PROJECT = {
    "dune-project": "(lang dune 2.9)\n",
    "lib/dune": "(library (name calc))\n",
    "lib/calc.ml": "let double x = 2 * x\n\nlet half x = x / 2\n",
    "test/dune": "(test (name t) (libraries calc))\n",
    "test/t.ml": "let () = assert (Calc.double 21 = 42)\n",
}

GOOD = (
    "--- a/lib/calc.ml\n"
    "+++ b/lib/calc.ml\n"
    "@@ -1,3 +1,3 @@\n"
    "-let double x = 2 * x\n"
    "+let double x = x + x\n"
    " \n"
    " let half x = x / 2\n"
)

TYPE_ERROR = (
    "diff --git a/lib/calc.ml b/lib/calc.ml\n"
    "--- a/lib/calc.ml\n"
    "+++ b/lib/calc.ml\n"
    "@@ -1,3 +1,3 @@\n"
    " let double x = 2 * x\n"
    " \n"
    "-let half x = x / 2\n"
    '+let half x = x /. "2"\n'
)


def write_project(root: Path) -> Path:
    for rel, text in PROJECT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@dataclass
class Service:
    proc: subprocess.Popen[str]
    url: str
    root: Path
    digest: str
    cache: Path
    stderr: Path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ocaml_ai_ls", "ces", *args]


def env_with_cache(cache: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(cache)}


@contextlib.contextmanager
def serving(root: Path, base: Path, *args: str) -> Iterator[Service]:
    """A real `ces serve ARGS` process on the project at `root` (its cache and stderr
    under `base`)."""
    digest = tree_digest(root)
    cache, stderr = base / "cache", base / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            cli("serve", "--root", str(root), *args, "--port", "0"),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env_with_cache(cache),
        )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    out = proc.stdout
    threading.Thread(target=lambda: lines.put(out.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=60)
        assert line.startswith("ces: serving http://127.0.0.1:"), (line, stderr.read_text())
        yield Service(proc, line.split()[-1], root, digest, cache, stderr)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("ces")
    with serving(write_project(base / "calc"), base, "--workers", "2") as running:
        yield running


@pytest.fixture(scope="module")
def client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=60) as c:
        yield c


def check(client: httpx.Client, body: Any) -> httpx.Response:
    return client.post("/check", json=body)


def test_health_says_the_workers_are_warm(client: httpx.Client) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "workers": 2, "warm": True, "queued": 0}


def test_answers_are_the_json_clients_already_parse_byte_for_byte(service: Service) -> None:
    """`json.dumps` with its default separators, as the former http.server wrote it."""
    r = httpx.get(f"{service.url}/health")
    assert r.content == b'{"status": "ok", "workers": 2, "warm": true, "queued": 0}'
    assert r.headers["content-type"] == "application/json"


def test_healthz_is_ok_once_warm(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_metrics_count_the_checks_and_their_latency(client: httpx.Client) -> None:
    before = client.get("/metrics").json()
    assert check(client, {"diff": GOOD}).json()["status"] == "ok"
    assert check(client, {"diff": "just some prose"}).status_code == 400
    after = client.get("/metrics").json()
    assert after["checks"] == before["checks"] + 2
    assert after["statuses"]["ok"] == before["statuses"].get("ok", 0) + 1
    assert after["statuses"]["http 400"] == before["statuses"].get("http 400", 0) + 1
    assert after["queued"] == 0 and after["capacity"] == 64 and after["workers"] == 2
    assert after["latency_ms"]["p50"] > 0
    assert after["latency_ms"]["p95"] >= after["latency_ms"]["p50"]


def test_a_good_diff_is_ok(client: httpx.Client) -> None:
    r = check(client, {"diff": GOOD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["errors"] == []
    assert [s["name"] for s in body["stages"]] == ["parse", "check"]


def test_a_type_error_is_located(client: httpx.Client) -> None:
    r = check(client, {"diff": TYPE_ERROR})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "type_error"
    [error] = body["errors"]
    assert (error["path"], error["line"], error["column"]) == ("lib/calc.ml", 3, 19)
    assert "float" in error["message"]


def test_tests_run_when_asked(client: httpx.Client) -> None:
    breaks_test = GOOD.replace("+let double x = x + x", "+let double x = 3 * x")
    r = check(client, {"diff": breaks_test, "tests": True})
    assert r.json()["status"] == "test_failure"
    assert check(client, {"diff": breaks_test}).json()["status"] == "ok"  # default: no tests


def test_a_list_of_files(client: httpx.Client) -> None:
    files = [
        {"path": "lib/calc.ml", "text": "let double x = x * 2\n\nlet half x = x / 2\n"},
        {"path": "lib/extra.ml", "text": "let quadruple x = Calc.double (Calc.double x)\n"},
    ]
    r = check(client, {"diff": files})
    assert r.json()["status"] == "type_error"  # a library module cannot name its own library
    files[1]["text"] = "let quadruple x = x * 4\n"
    new_test = "@@ @@\n-let () = assert (Calc.double 21 = 42)\n+let () = assert (Calc.half 4 = 2)\n"
    files.append({"path": "test/t.ml", "diff": new_test})
    r = check(client, {"diff": files, "tests": True})
    assert r.json().get("status") == "ok", r.text


def test_search_replace_blocks_are_accepted(client: httpx.Client) -> None:
    answer = "lib/calc.ml\n<<<<<<< SEARCH\nlet half x = x / 2\n=======\nlet half x = x / 2.\n>>>>>>> REPLACE\n"
    r = check(client, {"diff": answer})
    assert r.json()["status"] == "type_error"


def test_a_syntax_error_is_a_parse_error(client: httpx.Client) -> None:
    r = check(client, {"diff": [{"path": "lib/calc.ml", "text": "let double x = (2 * x\n"}]})
    body = r.json()
    assert body["status"] == "parse_error"
    assert body["errors"][0]["path"] == "lib/calc.ml"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"tests": true}', 'no "diff"'),
        (b'{"diff": 3}', "not a number"),
        (b'{"diff": {"path": "lib/calc.ml"}}', "not an object"),
        (b'{"diff": ""}', "empty"),
        (b'{"diff": "just some prose"}', "no edit found"),
        (b'{"diff": [], "tests": true}', "no files"),
        (b'{"diff": "x", "tests": "yes"}', '"tests"'),
        (b'{"diff": [{"text": "let x = 1"}]}', "path"),
        (b'{"diff": [{"path": "lib/calc.ml", "text": 3}]}', "string or null"),
        (b'{"diff": [{"path": "lib/gone.ml", "text": null}]}', "no such file"),
        (b'{"diff": [{"path": "../x.ml", "text": "let x = 1"}]}', "'..'"),
        (b'{"diff": [{"path": "/etc/x.ml", "text": "let x = 1"}]}', "absolute"),
        (b'{"diff": [{"path": "_build/default/x.ml", "text": ""}]}', "build"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_malformed_bodies_get_400_with_the_reason(
    client: httpx.Client, body: bytes, reason: str
) -> None:
    r = client.post("/check", content=body)
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"]


@pytest.mark.parametrize(
    ("diff", "reason"),
    [
        (GOOD.replace("-let double x = 2 * x", "-let double x = 3 * x"), "closest lines 1-3"),
        (GOOD.replace("lib/calc.ml", "../calc.ml"), "'..'"),
        (
            GOOD.replace("a/lib/calc.ml", "/tmp/calc.ml").replace("b/lib/calc.ml", "/tmp/calc.ml"),
            "absolute",
        ),
        ("@@ -1 +1 @@\n-let double x = 2 * x\n+let double x = x\n", "names no file"),
        (
            "--- a/lib/none.ml\n+++ b/lib/none.ml\n@@ -1 +1 @@\n-let a = 1\n+let a = 2\n",
            "not found",
        ),
    ],
)
def test_diffs_that_do_not_apply_get_400_with_the_hint(
    client: httpx.Client, diff: str, reason: str
) -> None:
    r = check(client, {"diff": diff})
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"]


def raw_request(url: str, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are (httpx would fix the headers) and read one response
    (the server closes the connection after it)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    header, _, payload = data.partition(b"\r\n\r\n")
    return int(header.split()[1]), payload


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("Content-Length: 6000000\r\n", "at most 5000000"),
        ("", "Content-Length is required"),
        ("Transfer-Encoding: chunked\r\n", "chunked"),
    ],
)
def test_bad_lengths_get_400_without_reading_the_body(
    service: Service, headers: str, reason: str
) -> None:
    status, payload = raw_request(
        service.url, f"POST /check HTTP/1.1\r\nHost: x\r\n{headers}", b'{"diff": "'
    )
    assert status == 400 and reason in json.loads(payload)["error"]


@pytest.mark.parametrize("length", ["nope", "-1"])
def test_unparsable_lengths_get_400_from_the_http_layer(service: Service, length: str) -> None:
    """A request the HTTP parser cannot frame is answered (400) and the connection
    closed, before it reaches the app."""
    status, _ = raw_request(
        service.url, f"POST /check HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
    )
    assert status == 400


def test_unknown_paths_and_wrong_methods(client: httpx.Client) -> None:
    assert client.get("/nope").status_code == 404
    assert client.post("/health", json={}).status_code == 405
    r = client.get("/check")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert client.put("/check", json={"diff": GOOD}).status_code == 405


def test_concurrent_requests_do_not_interfere(client: httpx.Client) -> None:
    diffs = [GOOD, TYPE_ERROR] * 3
    with ThreadPoolExecutor(len(diffs)) as threads:
        results = list(threads.map(lambda d: check(client, {"diff": d}).json()["status"], diffs))
    assert results == ["ok", "type_error"] * 3


def test_ces_check_prints_one_line_per_diff_file(service: Service, tmp_path: Path) -> None:
    """Beside the running service, on the same root and cache: it takes other shadows."""
    (tmp_path / "good.diff").write_text(GOOD)
    (tmp_path / "bad.diff").write_text(TYPE_ERROR)
    (tmp_path / "stale.diff").write_text(GOOD.replace("2 * x", "9 * x"))
    files = [str(tmp_path / n) for n in ("good.diff", "bad.diff", "stale.diff")]
    done = subprocess.run(
        cli("check", "--root", str(service.root), *files),
        capture_output=True,
        text=True,
        env=env_with_cache(service.cache),
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["file"] for line in lines] == files
    assert lines[0]["verification"]["status"] == "ok"
    assert lines[1]["verification"]["status"] == "type_error"
    assert lines[1]["verification"]["errors"][0]["line"] == 3
    assert "not found" in lines[2]["error"]
    only_good = subprocess.run(
        cli("check", "--root", str(service.root), "-"),
        input=GOOD,
        capture_output=True,
        text=True,
        env=env_with_cache(service.cache),
        timeout=60,
    )
    assert only_good.returncode == 0, only_good.stderr
    assert json.loads(only_good.stdout)["verification"]["status"] == "ok"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--root", "{tmp}", "x.diff"], "no dune-project"),
        (["check", "--root", "{tmp}/nowhere", "x.diff"], "not a directory"),
        (["check", "--root", "{project}", "{tmp}/missing.diff"], "cannot read"),
        (["check", "--root", "{project}", "--workers", "0", "x.diff"], "--workers"),
        (["check", "--root", "{project}", "--profile", "dev;rm", "x.diff"], "--profile"),
        (["serve", "--root", "{project}", "--port", "70000"], "--port"),
        (["serve", "--root", "{project}", "--port", "0", "--queue", "0"], "--queue"),
        (["check", "x.diff"], "--root"),
        ([], "serve,check"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    project = write_project(tmp_path / "p")
    args = [a.format(tmp=tmp_path, project=project) for a in args]
    done = subprocess.run(
        cli(*args), capture_output=True, text=True, env=env_with_cache(tmp_path / "c"), timeout=30
    )
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_the_users_tree_is_unchanged(service: Service) -> None:
    assert tree_digest(service.root) == service.digest
    assert not (service.root / "_build").exists()


def test_sigterm_lets_the_check_under_way_answer_and_exits_0(
    service: Service, client: httpx.Client
) -> None:
    """Last: it ends the module's service."""
    slow_test = "let () = let t = Sys.time () in while Sys.time () -. t < 1.0 do () done\n"
    body = {"diff": [{"path": "test/t.ml", "text": slow_test}], "tests": True}
    with ThreadPoolExecutor(1) as threads:
        answer = threads.submit(check, client, body)
        deadline = time.monotonic() + 10
        while client.get("/health").json()["queued"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not answer.done()  # the check is under way (its test runs for 1 s)
        service.proc.send_signal(signal.SIGTERM)
        r = answer.result(30)
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text
    assert service.proc.wait(30) == 0
    assert "stopping" in service.stderr.read_text()
    assert tree_digest(service.root) == service.digest


# -- without HTTP --------------------------------------------------------------------


def test_the_engine_resyncs_when_the_disk_changes(tmp_path: Path) -> None:
    root = write_project(tmp_path / "calc")
    engine = CheckEngine(root, 1, 60, cache=tmp_path / "cache")
    try:
        assert engine.warm(lambda done, total: None)
        assert engine.check({}, False).status == "ok"
        (root / "lib/calc.ml").write_text('let double x = x + "x"\n')  # the user edits a file
        result = engine.check({"test/t.ml": "let () = ()\n"}, False)
        assert result.status == "type_error" and result.errors[0].path == "lib/calc.ml"
    finally:
        engine.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "calc")


def test_unified_diffs_may_create_and_delete_files(root: Path) -> None:
    diff = (
        "--- a/test/t.ml\n+++ /dev/null\n@@ -1 +0,0 @@\n-let () = assert (Calc.double 21 = 42)\n"
        "--- /dev/null\n+++ b/lib/extra.ml\n@@ -0,0 +1 @@\n+let x = 1\n" + GOOD
    )
    files = files_to_check(diff, root)
    assert files == {
        "test/t.ml": None,
        "lib/extra.ml": "let x = 1\n",
        "lib/calc.ml": "let double x = x + x\n\nlet half x = x / 2\n",
    }


def test_a_crlf_diff_with_drifted_numbers_applies(root: Path) -> None:
    diff = GOOD.replace("@@ -1,3 +1,3 @@", "@@ -7,3 +7,3 @@").replace("\n", "\r\n")
    assert files_to_check(diff, root)["lib/calc.ml"].startswith("let double x = x + x")  # type: ignore[union-attr]


def test_an_item_diff_may_only_change_its_own_file(root: Path) -> None:
    with pytest.raises(BadDiff, match=r"also changes lib/calc\.ml"):
        files_to_check([{"path": "test/t.ml", "diff": GOOD}], root)
    with pytest.raises(BadDiff, match="listed twice"):
        files_to_check(
            [{"path": "lib/calc.ml", "text": ""}, {"path": "./lib/calc.ml", "text": ""}], root
        )
    with pytest.raises(BadDiff, match="exactly one of"):
        files_to_check([{"path": "lib/calc.ml"}], root)


def test_a_symlink_out_of_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.ml").write_text("let x = 1\n")
    (root / "lib" / "out").symlink_to(outside)
    with pytest.raises(BadDiff, match="outside the project"):
        files_to_check([{"path": "lib/out/x.ml", "text": "let x = 2\n"}], root)
