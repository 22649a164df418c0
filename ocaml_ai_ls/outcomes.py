"""Did the user keep the edit? Outcomes of generations for the metrics store.

Clients may say so with the command `ocaml-ai.feedback {id, accepted}`. Where
they never do, the server looks: an edit it offered (code action resolved by
the editor) counts as applied once its added lines appear in the document; an
applied edit counts as accepted if those lines are still there when the document
is next saved or closed, and as rejected if they are gone (undone). An offered
edit never applied by the time the document closes counts as not applied.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: Watched generations at most (the oldest are forgotten).
MAX_WATCHED = 200
#: Reports (request id, applied, accepted); None: not known or unchanged.
Report = Callable[[str, bool | None, bool | None], None]


@dataclass
class _Watch:
    uri: str
    #: Lines the edit adds (stripped, non-blank), or, for a pure deletion, removes.
    lines: tuple[str, ...]
    deletion: bool
    applied: bool


def changed_lines(diff: str, rel: str) -> tuple[tuple[str, ...], bool]:
    """The lines a unified diff adds to `rel` (or removes, when it adds none)."""
    added: list[str] = []
    removed: list[str] = []
    current = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            path = line[4:].split("\t")[0].strip()
            current = path[2:] if path.startswith("b/") else path
        elif line.startswith("--- "):
            continue
        elif current == rel and line.startswith("+") and line[1:].strip():
            added.append(line[1:].strip())
        elif current == rel and line.startswith("-") and line[1:].strip():
            removed.append(line[1:].strip())
    return (tuple(added), False) if added else (tuple(removed), True)


def _present(lines: tuple[str, ...], deletion: bool, text: str) -> bool:
    """Whether the document shows the edit: its added lines are all there (or, for a
    deletion, its removed lines are all gone)."""
    have = {line.strip() for line in text.splitlines()}
    if deletion:
        return not any(line in have for line in lines)
    return all(line in have for line in lines)


class OutcomeTracker:
    """The generations whose outcome is not known yet, by request id."""

    def __init__(self, report: Report) -> None:
        self._report = report
        self._watched: OrderedDict[str, _Watch] = OrderedDict()

    def watch(self, request_id: str, uri: str, diff: str, rel: str, applied: bool) -> None:
        """Follow the edit of `rel` (the document at `uri`) a generation produced."""
        lines, deletion = changed_lines(diff, rel)
        if not lines:
            return
        self._watched[request_id] = _Watch(uri, lines, deletion, applied)
        while len(self._watched) > MAX_WATCHED:
            self._watched.popitem(last=False)

    def watching(self, uri: str, offered_only: bool = False) -> bool:
        """Whether some generation's outcome is looked for in this document (one whose
        edit was offered and has not shown yet, with `offered_only`)."""
        return any(
            w.uri == uri and not (offered_only and w.applied) for w in self._watched.values()
        )

    def changed(self, uri: str, text: str) -> None:
        """A document changed: an offered edit that now shows in it was applied."""
        for request_id, w in self._watched.items():
            if w.uri == uri and not w.applied and _present(w.lines, w.deletion, text):
                w.applied = True
                self._report(request_id, True, None)

    def settled(self, uri: str, text: str | None, closed: bool) -> None:
        """A document was saved (or closed): applied edits still there are accepted,
        undone ones rejected; at close, edits never applied are not applied."""
        for request_id, w in list(self._watched.items()):
            if w.uri != uri:
                continue
            if w.applied and text is not None:
                self._report(request_id, None, _present(w.lines, w.deletion, text))
                del self._watched[request_id]
            elif closed:
                self._report(request_id, False, None)
                del self._watched[request_id]

    def feedback(self, request_id: str) -> None:
        """The client said it itself: stop guessing for this generation."""
        self._watched.pop(request_id, None)
