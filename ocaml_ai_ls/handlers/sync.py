"""Documents and files as they change: open buffers, saves, closes and watched files
keep the index, the shadows and the outcome tracker in step."""

from __future__ import annotations

from lsprotocol import types

from ..session import Session
from ..source_text import read_source
from ..uris import uri_to_path
from ..workspace import find_root
from . import diagnostics


def did_open(session: Session, params: types.DidOpenTextDocumentParams) -> None:
    doc = session.documents.open(params.text_document)
    path = uri_to_path(doc.uri)
    if path is not None and doc.kind is not None:
        session.index_for(find_root(path, session.folders)).update_document(doc)


def did_change(session: Session, params: types.DidChangeTextDocumentParams) -> None:
    doc = session.documents.change(params)
    held = session.index_holding(params.text_document.uri)
    if doc is not None and held is not None:
        held[1].update_document(doc)
    session.changed(params.text_document.uri)
    if doc is not None and session.outcomes.watching(doc.uri, offered_only=True):
        session.outcomes.changed(doc.uri, doc.text)


def did_save(session: Session, params: types.DidSaveTextDocumentParams) -> None:
    doc = session.documents.get(params.text_document.uri)
    held = session.index_holding(params.text_document.uri)
    if held is not None:
        path, index = held
        if doc is not None:
            index.update_document(doc)
        else:
            index.changed(path)
    session.changed(params.text_document.uri)
    if session.outcomes.watching(params.text_document.uri):
        text = _current_text(session, params.text_document.uri)
        session.outcomes.settled(params.text_document.uri, text, closed=False)
    saved = uri_to_path(params.text_document.uri)
    if saved is not None:
        diagnostics.check_soon(session, find_root(saved, session.folders))


def did_close(session: Session, params: types.DidCloseTextDocumentParams) -> None:
    if session.outcomes.watching(params.text_document.uri):
        text = _current_text(session, params.text_document.uri)
        session.outcomes.settled(params.text_document.uri, text, closed=True)
    session.documents.close(params.text_document.uri)
    held = session.index_holding(params.text_document.uri)
    if held is not None:
        held[1].changed(held[0])  # the disk's text counts again
    session.changed(params.text_document.uri)


def did_change_watched_files(session: Session, params: types.DidChangeWatchedFilesParams) -> None:
    for event in params.changes:
        held = session.index_holding(event.uri)
        if session.documents.get(event.uri) is not None:
            continue  # an open buffer is fresher than the disk
        session.changed(event.uri)
        if held is None:
            continue
        path, index = held
        if event.type == types.FileChangeType.Deleted:
            index.removed(path)
        else:
            index.changed(path)


def _current_text(session: Session, uri: str) -> str | None:
    """The document's text as the editor has it (the buffer, else the disk)."""
    doc = session.documents.get(uri)
    if doc is not None:
        return doc.text
    path = uri_to_path(uri)
    try:
        return read_source(path) if path is not None else None
    except OSError:
        return None
