/**
 * The "OCaml AI candidates" view: a thin TreeDataProvider over a CandidateSession.
 * A candidate's children are the files it changes; selecting either opens the
 * diff preview; apply and reject are inline actions on a candidate.
 */

import * as vscode from "vscode";

import { CandidateItem, CandidateSession, FileItem } from "./candidates";

export const VIEW_ID = "ocamlAi.candidates";
export const PREVIEW_COMMAND = "ocamlAi.preview";

export type Node =
  | { kind: "candidate"; resultId: string; item: CandidateItem }
  | { kind: "file"; resultId: string; item: CandidateItem; file: FileItem };

export class CandidatesProvider implements vscode.TreeDataProvider<Node> {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private current: CandidateSession | undefined;
  private nodes: Node[] = [];

  get session(): CandidateSession | undefined {
    return this.current;
  }

  /** Show a session's candidates (or none); returns the first node, for reveal. */
  show(session: CandidateSession | undefined): Node | undefined {
    this.current = session;
    this.refresh();
    return this.nodes[0];
  }

  refresh(): void {
    const session = this.current;
    this.nodes = session?.open
      ? session.items().map((item) => ({ kind: "candidate", resultId: session.result.id, item }))
      : [];
    void vscode.commands.executeCommand("setContext", "ocamlAi.hasCandidates", this.nodes.length > 0);
    this.changed.fire(undefined);
  }

  getChildren(node?: Node): Node[] {
    if (!node) {
      return this.nodes;
    }
    if (node.kind === "candidate" && node.item.files.length > 1) {
      return node.item.files.map((file) => ({ kind: "file", resultId: node.resultId, item: node.item, file }));
    }
    return [];
  }

  getParent(node: Node): Node | undefined {
    return node.kind === "file" ? this.nodes.find((n) => n.item.index === node.item.index) : undefined;
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === "candidate") {
      const { item } = node;
      const several = item.files.length > 1;
      const tree = new vscode.TreeItem(
        item.label,
        several
          ? item.rank === 1
            ? vscode.TreeItemCollapsibleState.Expanded
            : vscode.TreeItemCollapsibleState.Collapsed
          : vscode.TreeItemCollapsibleState.None,
      );
      tree.id = `${node.resultId}/${item.index}`;
      tree.description = item.description;
      tree.tooltip = item.tooltip;
      tree.iconPath = new vscode.ThemeIcon(item.icon, new vscode.ThemeColor(item.color));
      tree.contextValue = "candidate";
      const first = item.files[0];
      if (first) {
        tree.command = { command: PREVIEW_COMMAND, title: "Preview", arguments: [node, first.uri] };
      }
      return tree;
    }
    const { file } = node;
    const tree = new vscode.TreeItem(file.path, vscode.TreeItemCollapsibleState.None);
    tree.id = `${node.resultId}/${node.item.index}/${file.uri}`;
    tree.description = file.description;
    tree.resourceUri = vscode.Uri.parse(file.uri);
    tree.contextValue = "candidateFile";
    tree.command = { command: PREVIEW_COMMAND, title: "Preview", arguments: [node, file.uri] };
    return tree;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
