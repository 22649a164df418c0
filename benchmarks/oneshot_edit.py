"""`ocaml-ai-ls edit FILE:LINE "instruction"` on a real library, beside aider's one-shot.

The library is lwt at the head of its bundle (`../shared/corpora`, 114 `.ml`/`.mli`
files), copied to a temporary directory. Both tools talk to the same kind of
instant local model (`tests/model_server.py`, OpenAI wire format, streamed), which
answers a SEARCH/REPLACE edit of `src/core/lwt_list.ml` in each tool's own format.
Type-checking is off for ours (`verify.shadows = 0`: lwt's build needs packages this
machine lacks, and aider does not type-check either); everything else is the
default (3 candidates, context budget, metrics recorded).

Per round, in turn: ours cold (no stored index: `$XDG_CACHE_HOME` emptied), ours
again (the second run on the same root), aider cold (`.aider.tags.cache*` removed,
in a git repository as aider expects), aider again. Wall time of the whole command
and the peak RSS of its process tree (`wait4`). Prints medians, and ours / aider
per round. Targets (issue #17): second run <= 0.75 s, <= 0.15x aider, <= 150 MB.

    benchmarks/.cache/aider-venv/bin/python -m pip install aider-chat   # once
    .venv/bin/python -m benchmarks.oneshot_edit [--rounds 5] [--no-aider]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.corpus import clone
from tests.model_server import ScriptedModel

HERE = Path(__file__).resolve().parent
AIDER = HERE / ".cache" / "aider-venv" / "bin" / "aider"
OURS = Path(sys.executable).parent / "ocaml-ai-ls"
TARGET = "src/core/lwt_list.ml"
LINE = 32
INSTRUCTION = "say in a comment that every promise starts at once"
SEARCH = """let iter_p f l =
  let ts = List.rev_map (Lwt.apply f) l in
  Lwt.join ts
"""
REPLACE = """let iter_p f l =
  let ts = List.rev_map (Lwt.apply f) l in
  (* every promise starts at once *)
  Lwt.join ts
"""
OUR_ANSWER = f"{TARGET}\n<<<<<<< SEARCH\n{SEARCH}=======\n{REPLACE}>>>>>>> REPLACE\n"
AIDER_ANSWER = (
    f"{TARGET}\n```ocaml\n<<<<<<< SEARCH\n{SEARCH}=======\n{REPLACE}>>>>>>> REPLACE\n```\n"
)


@dataclass(frozen=True)
class Run:
    seconds: float
    #: user + system CPU of the process tree: what the run costs, whatever else the
    #: machine is doing (wall time is not, on a busy machine)
    cpu: float
    rss_mb: float
    ok: bool


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """Wall time and peak RSS (of the process and the children it waited for)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(out.decode(errors="replace")[-2000:], file=sys.stderr)
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, cpu, usage.ru_maxrss / 1024, proc.returncode == 0)


def export(project: str, into: Path) -> Path:
    repo = clone(project)
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "HEAD"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def git_reset(root: Path) -> None:
    subprocess.run(["git", "-C", str(root), "checkout", "-q", "--", "."], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-aider", action="store_true")
    args = parser.parse_args()
    use_aider = not args.no_aider and AIDER.exists()
    if not use_aider and not args.no_aider:
        print(f"aider: not installed ({AIDER}); see the docstring", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="oneshot-") as tmp_name, ScriptedModel() as ours_model:
        tmp = Path(tmp_name)
        ours_model.set_default(OUR_ANSWER)
        ours_root = export("lwt", tmp / "ours" / "lwt")
        (ours_root / ".ocaml-ai.toml").write_text("[verify]\nshadows = 0\ndiagnostics = false\n")
        cache = tmp / "xdg-cache"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCAML_AI_")}
        env.update(
            OCAML_AI_BASE_URL=ours_model.base_url,
            XDG_CACHE_HOME=str(cache),
            XDG_DATA_HOME=str(tmp / "xdg-data"),
            XDG_STATE_HOME=str(tmp / "xdg-state"),
        )
        ours_cmd = [str(OURS), "edit", f"{TARGET}:{LINE}", INSTRUCTION, "--apply"]
        pristine = (ours_root / TARGET).read_bytes()

        aider_model = ScriptedModel().start()
        aider_model.set_default(AIDER_ANSWER)
        aider_root = export("lwt", tmp / "aider" / "lwt")
        aider_env = dict(env, HOME=str(tmp / "home"))
        (tmp / "home").mkdir()
        git = ["git", "-C", str(aider_root), "-c", "user.email=b@b", "-c", "user.name=b"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "lwt"], check=True)
        aider_cmd = [
            str(AIDER),
            "--message",
            INSTRUCTION,
            "--yes-always",
            "--no-auto-commits",
            "--no-gitignore",
            "--model",
            "openai/scripted-model",
            "--openai-api-base",
            aider_model.base_url,
            "--openai-api-key",
            "none",
            "--edit-format",
            "diff",
            "--no-check-update",
            "--no-show-model-warnings",
            "--no-show-release-notes",
            "--analytics-disable",
            "--no-pretty",
            TARGET,
        ]

        runs: dict[str, list[Run]] = {k: [] for k in ("ours cold", "ours", "aider cold", "aider")}
        for _ in range(args.rounds):
            shutil.rmtree(cache, ignore_errors=True)
            for key in ("ours cold", "ours"):
                (ours_root / TARGET).write_bytes(pristine)
                runs[key].append(timed(ours_cmd, ours_root, env))
            if use_aider:
                for stale in aider_root.glob(".aider.tags.cache*"):
                    shutil.rmtree(stale, ignore_errors=True)
                for key in ("aider cold", "aider"):
                    git_reset(aider_root)
                    runs[key].append(timed(aider_cmd, aider_root, aider_env))
                git_reset(aider_root)
        aider_model.stop()

    print(f"one-shot edit of {TARGET} in lwt (114 files), {args.rounds} rounds, medians")
    print(f"{'':12} {'wall s':>8} {'CPU s':>8} {'RSS MB':>8} {'ok':>6}")
    for key, got in runs.items():
        if got:
            wall = statistics.median(r.seconds for r in got)
            cpu = statistics.median(r.cpu for r in got)
            rss = max(r.rss_mb for r in got)
            ok = f"{sum(r.ok for r in got)}/{len(got)}"
            print(f"{key:12} {wall:8.2f} {cpu:8.2f} {rss:8.0f} {ok:>6}")
    if use_aider:
        for mine, theirs in (("ours cold", "aider cold"), ("ours", "aider")):
            pairs = list(zip(runs[mine], runs[theirs], strict=True))
            wall = statistics.median(a.seconds / b.seconds for a, b in pairs)
            cpu = statistics.median(a.cpu / b.cpu for a, b in pairs)
            print(f"{mine} / {theirs}: wall {wall:.2f}x, CPU {cpu:.2f}x (median per round)")


if __name__ == "__main__":
    main()
