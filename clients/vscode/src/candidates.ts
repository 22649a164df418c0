/**
 * The extension's logic, free of `vscode`: what it sends to `ocaml-ai-ls`, how it
 * reads the answer of `ocaml-ai.generate`, and what the candidates view shows.
 * Everything here is plain data in, plain data out, so `node --test` checks it
 * without an editor.
 */

export const GENERATE_COMMAND = "ocaml-ai.generate";
export const FEEDBACK_COMMAND = "ocaml-ai.feedback";
/** The server's settings section (`workspace/didChangeConfiguration`, `workspace/configuration`). */
export const SETTINGS_SECTION = "ocaml-ai";
/** The scheme of the virtual documents holding a candidate's new text. */
export const PREVIEW_SCHEME = "ocaml-ai";
/** The server's bounds on the request (`ocaml_ai_ls/request.py`). */
export const MAX_CANDIDATES = 10;
export const MAX_INSTRUCTION_CHARS = 4000;
export const DEFAULT_CANDIDATES = 3;

// ---------------------------------------------------------------------------
// LSP shapes (the few we use; positions are UTF-16 code units, as a JS string's)

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export interface TextEdit {
  range: Range;
  newText: string;
}

export interface TextDocumentEdit {
  textDocument: { uri: string; version: number | null };
  edits: TextEdit[];
}

export interface CreateFile {
  kind: "create";
  uri: string;
}

export interface RenameFile {
  kind: "rename";
  oldUri: string;
  newUri: string;
}

export interface DeleteFile {
  kind: "delete";
  uri: string;
}

export type DocumentChange = TextDocumentEdit | CreateFile | RenameFile | DeleteFile;

export interface WorkspaceEdit {
  changes?: Record<string, TextEdit[]>;
  documentChanges?: DocumentChange[];
}

// ---------------------------------------------------------------------------
// The command's contract (README: "The command `ocaml-ai.generate`")

export type Status = "ok" | "warning" | "parse_error" | "type_error" | "test_failure" | "timeout" | "unverified";

export interface CheckError {
  path: string;
  line: number;
  column: number;
  end_line?: number;
  end_column?: number;
  message: string;
  preexisting?: boolean;
}

export interface Stage {
  name: string;
  status: string;
  ms: number;
}

export interface Verification {
  status: string;
  stages: Stage[];
  errors: CheckError[];
}

export interface Candidate {
  id: string;
  model: string;
  diff: string;
  edit: WorkspaceEdit;
  verification: Verification;
  files: string[];
  round: number;
}

export interface Rejected {
  id: string;
  model: string;
  reason: string;
}

export interface GenerateResult {
  id: string;
  candidates: Candidate[];
  applied: boolean;
  cancelled: boolean;
  error: string | null;
  rejected: Rejected[];
  timings: Record<string, number>;
  arm: string;
  provider: string;
  model: string;
  strategy: string;
}

export interface GenerateArguments {
  uri: string;
  range?: Range;
  instruction: string;
  candidates: number;
  apply: false;
}

export interface FeedbackArguments {
  id: string;
  accepted: boolean;
}

// ---------------------------------------------------------------------------
// Settings and the request

/** Why the instruction cannot be sent, or undefined when it can (for showInputBox). */
export function validateInstruction(text: string): string | undefined {
  const trimmed = text.trim();
  if (!trimmed) {
    return "Say what to change, e.g. “make this tail recursive”.";
  }
  if (trimmed.length > MAX_INSTRUCTION_CHARS) {
    return `The instruction is too long (${trimmed.length} characters, at most ${MAX_INSTRUCTION_CHARS}).`;
  }
  return undefined;
}

/** The `ocamlAi.candidates` setting as the server accepts it: an integer 1..10. */
export function clampCandidates(value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    return DEFAULT_CANDIDATES;
  }
  return Math.min(MAX_CANDIDATES, Math.max(1, Math.round(value)));
}

/** The argument of `ocaml-ai.generate`: nothing is applied by the server, the user picks. */
export function generateArguments(
  uri: string,
  selection: Range | undefined,
  instruction: string,
  candidates: unknown,
): GenerateArguments {
  const problem = validateInstruction(instruction);
  if (problem) {
    throw new Error(problem);
  }
  const args: GenerateArguments = {
    uri,
    instruction: instruction.trim(),
    candidates: clampCandidates(candidates),
    apply: false,
  };
  if (selection) {
    const [start, end] = comparePositions(selection.start, selection.end) <= 0
      ? [selection.start, selection.end]
      : [selection.end, selection.start];
    args.range = {
      start: { line: start.line, character: start.character },
      end: { line: end.line, character: end.character },
    };
  }
  return args;
}

/** The instruction of an `(* ai: ... *)` comment on a line, to prefill the input box. */
export function instructionFromLine(line: string): string | undefined {
  const match = /\(\*\s*ai\s*:\s*(.*?)\s*\*\)/i.exec(line) ?? /\(\*\s*ai\s*:\s*(.*?)\s*$/i.exec(line);
  const text = match?.[1]?.trim();
  return text ? text : undefined;
}

/** The argument of `ocaml-ai.feedback`: the generate result's id, not a candidate's. */
export function feedbackArguments(resultId: string, accepted: boolean): FeedbackArguments {
  return { id: resultId, accepted };
}

/** `ocamlAi.serverCommand` (an array: the program, then its arguments) as a process to run. */
export function serverExecutable(setting: unknown): { command: string; args: string[] } {
  const words = Array.isArray(setting) ? setting : typeof setting === "string" ? [setting] : [];
  if (words.length === 0 || !words.every((w) => typeof w === "string") || !(words[0] as string).trim()) {
    throw new Error(
      'ocamlAi.serverCommand must be a non-empty array of strings, e.g. ["ocaml-ai-ls"]',
    );
  }
  const [command, ...args] = words as string[];
  return { command, args };
}

/** `ocamlAi.settings` as an object (anything else counts as no settings). */
export function settingsObject(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? { ...(value as Record<string, unknown>) }
    : {};
}

/** Whether a `workspace/configuration` item asks for the server's section. */
export function isSettingsSection(section: string | null | undefined): boolean {
  return section === SETTINGS_SECTION || section === "ocamlAi" || section === "ocaml_ai";
}

/** The notification body of `workspace/didChangeConfiguration`. */
export function didChangeConfigurationParams(settings: unknown): {
  settings: Record<string, unknown>;
} {
  return { settings: { [SETTINGS_SECTION]: settingsObject(settings) } };
}

/** What to tell the user when the server would not start. */
export function startFailureMessage(command: string[], error: unknown): string {
  const reason = error instanceof Error ? error.message : String(error);
  return (
    `OCaml AI: could not start the language server \`${command.join(" ")}\` (${reason}). ` +
    "Install it (`pip install ocaml-ai-ls`) or point `ocamlAi.serverCommand` at it."
  );
}

// ---------------------------------------------------------------------------
// Reading the answer

function asObject(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function asString(value: unknown, fallback = ""): string {
  return typeof value === "string" ? value : fallback;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function asVerification(value: unknown): Verification {
  const v = asObject(value);
  return {
    status: asString(v.status, "unverified"),
    stages: asArray(v.stages).map((s) => {
      const o = asObject(s);
      return { name: asString(o.name), status: asString(o.status), ms: Number(o.ms) || 0 };
    }),
    errors: asArray(v.errors).map((e) => {
      const o = asObject(e);
      return {
        path: asString(o.path),
        line: Number(o.line) || 0,
        column: Number(o.column) || 0,
        end_line: Number(o.end_line) || 0,
        end_column: Number(o.end_column) || 0,
        message: asString(o.message),
        preexisting: o.preexisting === true,
      };
    }),
  };
}

/**
 * The answer of `ocaml-ai.generate`, with every field present. A server answer
 * that is not an object at all is an error (a server too old, or another one).
 */
export function parseGenerateResult(value: unknown): GenerateResult {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`unexpected answer from ocaml-ai-ls: ${JSON.stringify(value)?.slice(0, 200)}`);
  }
  const r = value as Record<string, unknown>;
  const candidates = asArray(r.candidates)
    .map((c): Candidate => {
      const o = asObject(c);
      return {
        id: asString(o.id),
        model: asString(o.model),
        diff: asString(o.diff),
        edit: asObject(o.edit) as WorkspaceEdit,
        verification: asVerification(o.verification),
        files: asArray(o.files).filter((f): f is string => typeof f === "string"),
        round: Number(o.round) || 0,
      };
    })
    .filter((c) => editedUris(c.edit).length > 0);
  const timings: Record<string, number> = {};
  for (const [key, ms] of Object.entries(asObject(r.timings))) {
    if (typeof ms === "number") {
      timings[key] = ms;
    }
  }
  return {
    id: asString(r.id),
    candidates,
    applied: r.applied === true,
    cancelled: r.cancelled === true,
    error: typeof r.error === "string" && r.error ? r.error : null,
    rejected: asArray(r.rejected).map((x) => {
      const o = asObject(x);
      return { id: asString(o.id), model: asString(o.model), reason: asString(o.reason) };
    }),
    timings,
    arm: asString(r.arm),
    provider: asString(r.provider),
    model: asString(r.model),
    strategy: asString(r.strategy),
  };
}

export interface UserMessage {
  severity: "error" | "warning" | "info";
  text: string;
}

/**
 * One message for the user about a result, or undefined when the candidates speak
 * for themselves. A result without candidates says why (the model failed, the
 * request was cancelled, or every answer was rejected, with the reasons).
 */
export function resultMessage(result: GenerateResult): UserMessage | undefined {
  if (result.candidates.length > 0) {
    if (result.candidates.every((c) => isFailure(c.verification))) {
      const n = result.candidates.length;
      return {
        severity: "warning",
        text: `OCaml AI: ${n === 1 ? "the candidate does" : `none of the ${n} candidates`} ${
          n === 1 ? "not compile" : "compiles"
        }; look at the errors before applying one.`,
      };
    }
    return undefined;
  }
  if (result.cancelled) {
    return { severity: "info", text: "OCaml AI: cancelled." };
  }
  if (result.error) {
    return { severity: "error", text: `OCaml AI: ${result.error}` };
  }
  if (result.rejected.length > 0) {
    return { severity: "warning", text: `OCaml AI: no usable edit. ${formatRejections(result.rejected)}` };
  }
  return { severity: "warning", text: "OCaml AI: no edit was produced." };
}

/** Why the answers gave no edit, one clause per answer (at most `max`). */
export function formatRejections(rejected: Rejected[], max = 3): string {
  const shown = rejected.slice(0, max).map((r) => {
    const reason = r.reason.trim() || "no reason given";
    return r.model ? `${r.model}: ${reason}` : reason;
  });
  const more = rejected.length > max ? ` (and ${rejected.length - max} more)` : "";
  return shown.join("; ") + more;
}

/** The compiler's errors as `path:line:column: message` lines (at most `max`). */
export function formatErrors(verification: Verification, max = 5): string[] {
  const lines = verification.errors.slice(0, max).map((e) => {
    const where = e.path ? `${e.path}:${e.line}:${e.column}: ` : "";
    const first = e.message.trim().split(/\r?\n/).join(" ");
    return `${where}${first}${e.preexisting ? " (already there before)" : ""}`;
  });
  if (verification.errors.length > max) {
    lines.push(`… and ${verification.errors.length - max} more`);
  }
  return lines;
}

// ---------------------------------------------------------------------------
// Status, ranking, view items

export interface StatusInfo {
  /** Shown in the item's description. */
  label: string;
  /** A codicon id (ThemeIcon). */
  icon: string;
  /** A theme color id for the icon. */
  color: string;
}

const STATUS: Record<Status, StatusInfo> = {
  ok: { label: "verified", icon: "pass", color: "testing.iconPassed" },
  warning: { label: "verified, with warnings", icon: "pass", color: "list.warningForeground" },
  test_failure: { label: "tests fail", icon: "warning", color: "list.warningForeground" },
  timeout: { label: "check timed out", icon: "watch", color: "list.warningForeground" },
  unverified: { label: "unverified", icon: "question", color: "descriptionForeground" },
  type_error: { label: "type error", icon: "error", color: "testing.iconFailed" },
  parse_error: { label: "parse error", icon: "error", color: "testing.iconFailed" },
};

/** The server's order of statuses, best first (`ocaml_ai_ls/verify/result.py`). */
export const RANKED: Status[] = ["ok", "warning", "test_failure", "timeout", "unverified", "type_error", "parse_error"];

export function statusInfo(status: string): StatusInfo {
  return STATUS[status as Status] ?? { label: status || "unknown", icon: "question", color: "descriptionForeground" };
}

function newErrors(v: Verification): CheckError[] {
  return v.errors.filter((e) => !e.preexisting);
}

/** The compiler rejected the change itself (not only errors the project already had). */
export function isFailure(v: Verification): boolean {
  return (v.status === "type_error" || v.status === "parse_error") && newErrors(v).length > 0;
}

/** A candidate whose only errors the project already had counts as unverified, as the server ranks it. */
export function effectiveStatus(v: Verification): string {
  return (v.status === "type_error" || v.status === "parse_error") && !isFailure(v) ? "unverified" : v.status;
}

/**
 * Indices of `candidates`, best first, by the server's rule: status tier, then fewer
 * new errors, then the smaller diff; ties keep the server's order. The server sends
 * them ranked already, so this keeps its order; it only matters for a server that
 * does not rank.
 */
export function rankedOrder(candidates: Candidate[]): number[] {
  const key = (c: Candidate): [number, number, number] => {
    const v = c.verification;
    const tier = RANKED.indexOf(effectiveStatus(v) as Status);
    const stats = diffStats(c.diff);
    return [tier === -1 ? RANKED.length : tier, isFailure(v) ? newErrors(v).length : 0, stats.added + stats.removed];
  };
  const keys = candidates.map(key);
  return candidates
    .map((_, i) => i)
    .sort((a, b) => {
      for (let k = 0; k < 3; k++) {
        if (keys[a][k] !== keys[b][k]) {
          return keys[a][k] - keys[b][k];
        }
      }
      return a - b;
    });
}

export interface FileDiff {
  path: string;
  diff: string;
  added: number;
  removed: number;
  created: boolean;
}

function diffPath(header: string): string {
  const raw = header.slice(4).split("\t")[0].trim();
  return raw.startsWith("a/") || raw.startsWith("b/") ? raw.slice(2) : raw;
}

/**
 * A unified diff split per file, with its added and removed lines counted. Hunks
 * are read by their header's line counts, so a removed line that itself starts
 * with `--` is not taken for a file header.
 */
export function fileDiffs(diff: string): FileDiff[] {
  const files: FileDiff[] = [];
  let current: FileDiff | undefined;
  let oldLeft = 0;
  let newLeft = 0;
  let loose = false; // a hunk header without counts (`@@ @@`): read until the next header
  const lines = diff.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, "");
    const inHunk = oldLeft > 0 || newLeft > 0;
    if (!inHunk && line.startsWith("--- ") && lines[i + 1]?.startsWith("+++ ")) {
      const oldPath = diffPath(line);
      const newPath = diffPath(lines[i + 1].replace(/\r$/, ""));
      current = {
        path: newPath === "/dev/null" ? oldPath : newPath,
        diff: "",
        added: 0,
        removed: 0,
        created: oldPath === "/dev/null",
      };
      files.push(current);
      current.diff += lines[i] + "\n" + lines[i + 1] + "\n";
      i++;
      loose = false;
      continue;
    }
    if (!current) {
      continue;
    }
    if (i < lines.length - 1 || lines[i] !== "") {
      current.diff += lines[i] + "\n";
    }
    if (!inHunk && line.startsWith("@@")) {
      const m = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line);
      if (m) {
        oldLeft = m[1] === undefined ? 1 : Number(m[1]);
        newLeft = m[2] === undefined ? 1 : Number(m[2]);
        loose = false;
      } else {
        loose = true;
      }
      continue;
    }
    if (!inHunk && !loose) {
      continue;
    }
    const tag = line[0];
    if (tag === "+") {
      current.added++;
      newLeft = Math.max(0, newLeft - 1);
    } else if (tag === "-") {
      current.removed++;
      oldLeft = Math.max(0, oldLeft - 1);
    } else if (tag === " " || (line === "" && inHunk)) {
      oldLeft = Math.max(0, oldLeft - 1);
      newLeft = Math.max(0, newLeft - 1);
    }
  }
  return files;
}

/** Lines added and removed by a whole unified diff. */
export function diffStats(diff: string): { added: number; removed: number } {
  return fileDiffs(diff).reduce(
    (acc, f) => ({ added: acc.added + f.added, removed: acc.removed + f.removed }),
    { added: 0, removed: 0 },
  );
}

export interface FileItem {
  uri: string;
  /** The path relative to the workspace root, as the server names it. */
  path: string;
  /** `+N −M`, or `new file`. */
  description: string;
  created: boolean;
  deleted: boolean;
}

export interface CandidateItem {
  /** The candidate's index in `result.candidates`. */
  index: number;
  /** 1 for the best. */
  rank: number;
  label: string;
  description: string;
  tooltip: string;
  icon: string;
  color: string;
  status: string;
  files: FileItem[];
}

function counts(added: number, removed: number): string {
  return `+${added} −${removed}`;
}

/** The files a candidate changes, each with its URI, relative path and line counts. */
export function candidateFiles(candidate: Candidate): FileItem[] {
  const diffs = fileDiffs(candidate.diff);
  const kinds = changeKinds(candidate.edit);
  return editedUris(candidate.edit).map((uri, i) => {
    const decoded = uriPath(uri);
    const path =
      candidate.files.find((rel) => decoded === rel || decoded.endsWith("/" + rel)) ??
      candidate.files[i] ??
      decoded.slice(decoded.lastIndexOf("/") + 1);
    const d = diffs.find((f) => f.path === path);
    const created = kinds.get(uri) === "create" || (d?.created ?? false);
    const deleted = kinds.get(uri) === "delete";
    const description = deleted
      ? "deleted"
      : created
        ? `new file${d ? ", " + counts(d.added, d.removed) : ""}`
        : d
          ? counts(d.added, d.removed)
          : "";
    return { uri, path, description, created, deleted };
  });
}

/** The candidates view's items, best first. */
export function candidateItems(result: GenerateResult): CandidateItem[] {
  return rankedOrder(result.candidates).map((index, i) => candidateItem(result.candidates[index], index, i + 1));
}

export function candidateItem(candidate: Candidate, index: number, rank: number): CandidateItem {
  const v = candidate.verification;
  const status = effectiveStatus(v);
  const info = statusInfo(status);
  const stats = diffStats(candidate.diff);
  const files = candidateFiles(candidate);
  const where = files.length === 1 ? files[0].path : `${files.length} files`;
  const label = `${rank}. ${where}`;
  const parts = [info.label, counts(stats.added, stats.removed)];
  if (candidate.round > 0) {
    parts.push(`repair ${candidate.round}`);
  }
  const description = parts.join(" · ");
  const tooltip = [
    `Candidate ${rank}${candidate.model ? ` from ${candidate.model}` : ""}: ${info.label}` +
      (status !== v.status ? ` (the project already had these errors)` : ""),
    ...(v.stages.length ? [v.stages.map((s) => `${s.name} ${s.status} (${Math.round(s.ms)} ms)`).join(", ")] : []),
    ...files.map((f) => `${f.path} ${f.description}`),
    ...formatErrors(v),
  ].join("\n");
  return { index, rank, label, description, tooltip, icon: info.icon, color: info.color, status, files };
}

// ---------------------------------------------------------------------------
// WorkspaceEdit: which files, which edits, which new text

function isTextDocumentEdit(change: DocumentChange): change is TextDocumentEdit {
  return (change as TextDocumentEdit).textDocument !== undefined;
}

/** The path of a URI, percent-decoded (`file:///a%20b/x.ml` → `/a b/x.ml`). */
export function uriPath(uri: string): string {
  const m = /^[a-z][a-z0-9+.-]*:(?:\/\/[^/]*)?([^?#]*)/i.exec(uri);
  const path = m ? m[1] : uri;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/**
 * A URI in one spelling, so the server's and the editor's can be compared: the
 * path decoded, a Windows drive letter lower-cased (`file:///C%3A/x` = `file:///c:/x`).
 */
export function normalizeUri(uri: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase() ?? "";
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(uri)?.[1] ?? "";
  const path = uriPath(uri).replace(/^\/([A-Za-z]):/, (_, d: string) => `/${d.toLowerCase()}:`);
  return `${scheme}://${authority.toLowerCase()}${path}`;
}

export function sameUri(a: string, b: string): boolean {
  return normalizeUri(a) === normalizeUri(b);
}

/** The URIs an edit touches, each once, in the edit's order. */
export function editedUris(edit: WorkspaceEdit): string[] {
  const seen: string[] = [];
  const add = (uri: string | undefined): void => {
    if (uri && !seen.some((u) => sameUri(u, uri))) {
      seen.push(uri);
    }
  };
  if (Array.isArray(edit.documentChanges)) {
    for (const change of edit.documentChanges) {
      if (isTextDocumentEdit(change)) {
        add(change.textDocument?.uri);
      } else if (change.kind === "rename") {
        add(change.newUri);
      } else {
        add(change.uri);
      }
    }
  } else if (edit.changes && typeof edit.changes === "object") {
    for (const uri of Object.keys(edit.changes)) {
      add(uri);
    }
  }
  return seen;
}

function changeKinds(edit: WorkspaceEdit): Map<string, "create" | "delete" | "rename"> {
  const kinds = new Map<string, "create" | "delete" | "rename">();
  for (const change of edit.documentChanges ?? []) {
    if (!isTextDocumentEdit(change)) {
      kinds.set(change.kind === "rename" ? change.newUri : change.uri, change.kind);
    }
  }
  return kinds;
}

export interface FileEdits {
  edits: TextEdit[];
  created: boolean;
  deleted: boolean;
  /** The document version the edits were made for (null: the file on disk). */
  version: number | null;
}

/** What an edit does to one file: its text edits (in order), created or deleted. */
export function editsFor(edit: WorkspaceEdit, uri: string): FileEdits | undefined {
  let found: FileEdits | undefined;
  const get = (): FileEdits => (found ??= { edits: [], created: false, deleted: false, version: null });
  if (Array.isArray(edit.documentChanges)) {
    for (const change of edit.documentChanges) {
      if (isTextDocumentEdit(change)) {
        if (sameUri(change.textDocument.uri, uri)) {
          const f = get();
          f.edits.push(...(change.edits ?? []));
          f.version = change.textDocument.version ?? null;
        }
      } else if (change.kind === "create" && sameUri(change.uri, uri)) {
        Object.assign(get(), { created: true, deleted: false, edits: [] });
      } else if (change.kind === "delete" && sameUri(change.uri, uri)) {
        Object.assign(get(), { deleted: true, edits: [] });
      }
    }
  } else if (edit.changes) {
    for (const [key, edits] of Object.entries(edit.changes)) {
      if (sameUri(key, uri)) {
        get().edits.push(...edits);
      }
    }
  }
  return found;
}

/**
 * The documents an edit was made for that have changed since: their version in
 * the edit differs from the editor's (`versionOf` gives undefined for a document
 * that is not open). The editor must not apply such an edit.
 */
export function staleDocuments(edit: WorkspaceEdit, versionOf: (uri: string) => number | undefined): string[] {
  const stale: string[] = [];
  for (const change of edit.documentChanges ?? []) {
    if (isTextDocumentEdit(change) && typeof change.textDocument.version === "number") {
      const now = versionOf(change.textDocument.uri);
      if (now !== undefined && now !== change.textDocument.version) {
        stale.push(change.textDocument.uri);
      }
    }
  }
  return stale;
}

/** Offsets where each line starts; lines end at `\n`, `\r\n` or `\r` (LSP). */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 13 /* \r */) {
      if (text.charCodeAt(i + 1) === 10) {
        i++;
      }
      starts.push(i + 1);
    } else if (ch === 10 /* \n */) {
      starts.push(i + 1);
    }
  }
  return starts;
}

/**
 * The offset of an LSP position in `text` (UTF-16 code units, as JS strings count).
 * A character past the line's end means the end of the line (before its line
 * break); a line past the end means the end of the text.
 */
export function offsetAt(text: string, starts: number[], pos: Position): number {
  if (pos.line < 0) {
    return 0;
  }
  if (pos.line >= starts.length) {
    return text.length;
  }
  const start = starts[pos.line];
  let end = pos.line + 1 < starts.length ? starts[pos.line + 1] : text.length;
  if (end > start && text.charCodeAt(end - 1) === 10) {
    end--;
  }
  if (end > start && text.charCodeAt(end - 1) === 13) {
    end--;
  }
  return start + Math.min(Math.max(0, pos.character), end - start);
}

export function comparePositions(a: Position, b: Position): number {
  return a.line !== b.line ? a.line - b.line : a.character - b.character;
}

/**
 * `text` with LSP text edits applied. The edits' ranges refer to the original
 * text (as LSP says); they must not overlap; inserts at the same place keep the
 * edits' order.
 */
export function applyTextEdits(text: string, edits: TextEdit[]): string {
  const starts = lineStarts(text);
  const spans = edits
    .map((e, order) => {
      let start = offsetAt(text, starts, e.range.start);
      let end = offsetAt(text, starts, e.range.end);
      if (end < start) {
        [start, end] = [end, start];
      }
      return { start, end, newText: e.newText ?? "", order };
    })
    .sort((a, b) => a.start - b.start || a.end - b.end || a.order - b.order);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i].start < spans[i - 1].end) {
      throw new Error("overlapping text edits");
    }
  }
  let out = "";
  let at = 0;
  for (const span of spans) {
    out += text.slice(at, span.start) + span.newText;
    at = span.end;
  }
  return out + text.slice(at);
}

/**
 * A file's text after a candidate: `oldText` (what the editor has now, or the file
 * on disk; "" for a new file) with the candidate's edits for `uri` applied.
 * Undefined when the candidate does not touch the file, null when it deletes it.
 */
export function candidateNewText(edit: WorkspaceEdit, uri: string, oldText: string): string | null | undefined {
  const found = editsFor(edit, uri);
  if (!found) {
    return undefined;
  }
  if (found.deleted) {
    return null;
  }
  return applyTextEdits(found.created ? "" : oldText, found.edits);
}

// ---------------------------------------------------------------------------
// The preview documents' URIs: `ocaml-ai:/path/file.ml?result=..&candidate=..&file=..`

export interface PreviewRef {
  result: string;
  candidate: number;
  /** The file's own URI. */
  file: string;
}

export function previewQuery(ref: PreviewRef): string {
  return new URLSearchParams({ result: ref.result, candidate: String(ref.candidate), file: ref.file }).toString();
}

export function parsePreviewQuery(query: string): PreviewRef | undefined {
  const params = new URLSearchParams(query);
  const result = params.get("result");
  const file = params.get("file");
  const candidate = Number(params.get("candidate"));
  if (result === null || !file || !Number.isInteger(candidate) || candidate < 0) {
    return undefined;
  }
  return { result, candidate, file };
}

// ---------------------------------------------------------------------------
// One result's life in the view: choose one, reject some, or dismiss them all

/**
 * The candidates of one generate result while the user decides. The server hears
 * once per result: `accepted: true` when one is applied; `accepted: false` when
 * the last one is rejected, all are dismissed, or a new request replaces them.
 */
export class CandidateSession {
  private readonly remaining: Set<number>;
  private decided = false;

  constructor(readonly result: GenerateResult) {
    this.remaining = new Set(result.candidates.map((_, i) => i));
  }

  get open(): boolean {
    return !this.decided;
  }

  /** The view's items for the candidates still on offer, best first. */
  items(): CandidateItem[] {
    return this.decided ? [] : candidateItems(this.result).filter((item) => this.remaining.has(item.index));
  }

  candidate(index: number): Candidate | undefined {
    return this.decided || !this.remaining.has(index) ? undefined : this.result.candidates[index];
  }

  /** The user applied candidate `index`: the feedback to send. */
  accept(index: number): FeedbackArguments | undefined {
    if (!this.candidate(index)) {
      return undefined;
    }
    this.decided = true;
    return feedbackArguments(this.result.id, true);
  }

  /** The user rejected candidate `index`: feedback once none is left. */
  reject(index: number): FeedbackArguments | undefined {
    if (!this.candidate(index)) {
      return undefined;
    }
    this.remaining.delete(index);
    return this.remaining.size === 0 ? this.dismiss() : undefined;
  }

  /** The user dismissed them all (or asked for new ones). */
  dismiss(): FeedbackArguments | undefined {
    if (this.decided) {
      return undefined;
    }
    this.decided = true;
    return feedbackArguments(this.result.id, false);
  }
}
