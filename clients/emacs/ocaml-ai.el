;;; ocaml-ai.el --- Compiler-checked AI edits for OCaml via ocaml-ai-ls and eglot  -*- lexical-binding: t; -*-

;; Author: ocaml-ai-ls contributors
;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1") (eglot "1.9"))
;; Keywords: languages, tools, convenience
;; SPDX-License-Identifier: MIT

;; This file is not part of GNU Emacs.

;;; Commentary:

;; Emacs glue for `ocaml-ai-ls', a language server that turns a terse
;; instruction ("make this tail recursive") into a small edit of an
;; OCaml project, checked by the compiler before you see it.
;;
;; Setup (see README.md beside this file for the whole story):
;;
;;   (require 'ocaml-ai)
;;   (ocaml-ai-setup)          ; eglot runs ocaml-ai-ls for OCaml buffers
;;
;; Then `M-x eglot' in an OCaml buffer.  Stock Emacs has no OCaml major
;; mode: install tuareg (Debian: elpa-tuareg); without one, `ocaml-ai-setup'
;; opens .ml and .mli files in `ocaml-ai-ocaml-mode', a minimal mode of
;; this package.  Two ways to ask for an edit:
;;
;; - Write a comment (* ai: make rectangle areas non-negative *) above
;;   or inside a definition and run `M-x eglot-code-actions' on it: the
;;   action "AI: make rectangle areas non-negative" asks the model and
;;   applies the edit, removing the comment.
;;
;; - `M-x ocaml-ai-chat' opens a Markdown interaction buffer tied to
;;   the code at point (or the region).  Type an instruction at its end
;;   and press C-c C-c: the candidates come back below it, each as a
;;   heading with its verification status and files, and a fenced
;;   ```diff block.  C-c C-a on a candidate applies it to your buffers
;;   (and tells the server you accepted it); C-c C-k rejects the
;;   generation.  It is an ordinary buffer: edit it, copy from it, save
;;   it with C-x C-w.
;;
;; eglot lets one server manage a major mode in a project, so pointing
;; eglot at ocaml-ai-ls means ocamllsp does not run for those buffers
;; through eglot.  lsp-mode runs add-on servers beside the main one:
;; `ocaml-ai-setup' also registers ocaml-ai-ls with lsp-mode (as an
;; add-on) when lsp-mode is loaded; the interaction buffer needs eglot.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'eglot)
(require 'jsonrpc)
(require 'project)
(require 'seq)

(defgroup ocaml-ai nil
  "AI-generated, compiler-checked edits for OCaml (ocaml-ai-ls)."
  :group 'tools
  :prefix "ocaml-ai-")

(defcustom ocaml-ai-command '("ocaml-ai-ls")
  "Program and arguments that serve LSP on stdio for ocaml-ai."
  :type '(repeat string))

(defcustom ocaml-ai-major-modes
  '(tuareg-mode caml-mode ocaml-ts-mode neocaml-mode ocaml-ai-ocaml-mode)
  "Major modes whose buffers `ocaml-ai-setup' gives to ocaml-ai-ls in eglot."
  :type '(repeat symbol))

(defconst ocaml-ai-ocaml-modes '(tuareg-mode caml-mode ocaml-ts-mode neocaml-mode)
  "OCaml major modes of other packages.
With none of them, `ocaml-ai-setup' opens .ml and .mli files in
`ocaml-ai-ocaml-mode'.")

(defcustom ocaml-ai-eglot-by-default t
  "Whether `ocaml-ai-setup' makes eglot start ocaml-ai-ls for OCaml buffers.
eglot runs one server per major mode and project.  t: `M-x eglot'
starts ocaml-ai-ls instead of ocamllsp.  nil: `M-x eglot' keeps
starting ocamllsp, and `M-x ocaml-ai-eglot' switches one project
to ocaml-ai-ls."
  :type 'boolean)

(defcustom ocaml-ai-initialization-options nil
  "Settings sent to the server as LSP initializationOptions.
A plist in the shape of `.ocaml-ai.toml', e.g.
  (:generate (:candidates 3) :model (:model \"qwen2.5-coder:7b\"))
nil sends an empty object: the project's `.ocaml-ai.toml' decides."
  :type '(plist :value-type sexp))

(defcustom ocaml-ai-candidates 3
  "Candidates the interaction buffer asks for per instruction (1-10)."
  :type 'integer)

(defcustom ocaml-ai-request-timeout 300
  "Seconds a generation may take before Emacs gives up waiting.
It applies to requests of ocaml-ai buffers (code actions run the
model) and to the interaction buffer."
  :type 'number)

;;;; eglot: the server class and its registration

(defclass ocaml-ai-eglot-server (eglot-lsp-server) ()
  :documentation "An eglot connection to ocaml-ai-ls.")

(cl-defmethod eglot-initialization-options ((_server ocaml-ai-eglot-server))
  "The user's `ocaml-ai-initialization-options', as a JSON object."
  (or ocaml-ai-initialization-options (make-hash-table)))

(defun ocaml-ai--eglot-contact (&optional _interactive)
  "Return the eglot contact of ocaml-ai-ls (read when a server is started)."
  (cons 'ocaml-ai-eglot-server ocaml-ai-command))

(defun ocaml-ai--eglot-modes (modes)
  "MODES, a list of major modes, as a key of `eglot-server-programs'."
  (mapcar (lambda (mode) (list mode :language-id "ocaml")) modes))

(defun ocaml-ai--our-entry-p (entry)
  "Non-nil if ENTRY of `eglot-server-programs' is the one we add."
  (eq (cdr-safe entry) #'ocaml-ai--eglot-contact))

(defun ocaml-ai--server-p (server)
  "Non-nil if SERVER, an eglot connection, is an ocaml-ai-ls."
  (and server
       (or (cl-typep server 'ocaml-ai-eglot-server)
           (let* ((caps (eglot--capabilities server))
                  (commands (plist-get (plist-get caps :executeCommandProvider)
                                       :commands)))
             (and (seq-find (lambda (c) (equal c "ocaml-ai.generate")) commands)
                  t)))))

(defun ocaml-ai--managed-hook ()
  "Let requests of an ocaml-ai buffer wait for the model.
eglot waits 10 s for a reply; choosing an AI code action runs the
model and the compiler, which takes longer.  Run from
`eglot-managed-mode-hook'."
  (if (and (bound-and-true-p eglot--managed-mode)
           (ocaml-ai--server-p (eglot-current-server)))
      (setq-local jsonrpc-default-request-timeout ocaml-ai-request-timeout)
    (kill-local-variable 'jsonrpc-default-request-timeout)))

(declare-function make-lsp-client "ext:lsp-mode" (&rest args))
(declare-function lsp-stdio-connection "ext:lsp-mode" (command &optional test-command))
(declare-function lsp-register-client "ext:lsp-mode" (client))

(defun ocaml-ai--lsp-register ()
  "Register ocaml-ai-ls with lsp-mode as an add-on server for OCaml modes."
  (lsp-register-client
   (make-lsp-client
    :new-connection (lsp-stdio-connection (lambda () ocaml-ai-command))
    :major-modes ocaml-ai-major-modes
    :add-on? t
    :priority -2
    :server-id 'ocaml-ai-ls
    :initialization-options (lambda () ocaml-ai-initialization-options))))

;;;; A minimal OCaml mode, for an Emacs without one

(defvar ocaml-ai-ocaml-mode-syntax-table
  (let ((table (make-syntax-table)))
    ;; (* comments *), nested as OCaml nests them
    (modify-syntax-entry ?\( "()1n" table)
    (modify-syntax-entry ?\) ")(4n" table)
    (modify-syntax-entry ?* ". 23n" table)
    (modify-syntax-entry ?\" "\"" table)
    (modify-syntax-entry ?\\ "\\" table)
    ;; part of names: foo_bar, x', M.x is two names
    (modify-syntax-entry ?_ "_" table)
    (modify-syntax-entry ?' "_" table)
    (dolist (c '(?+ ?- ?= ?< ?> ?| ?& ?@ ?^ ?! ?? ?~ ?% ?/ ?: ?. ?, ?\;))
      (modify-syntax-entry c "." table))
    table)
  "Syntax of `ocaml-ai-ocaml-mode': OCaml's comments, strings and names.")

(defconst ocaml-ai-ocaml-keywords
  '("and" "as" "assert" "begin" "class" "constraint" "do" "done" "downto" "else"
    "end" "exception" "external" "for" "fun" "function" "functor" "if" "in"
    "include" "inherit" "initializer" "lazy" "let" "match" "method" "module"
    "mutable" "new" "nonrec" "object" "of" "open" "private" "rec" "sig" "struct"
    "then" "to" "try" "type" "val" "virtual" "when" "while" "with")
  "OCaml's keywords, for `ocaml-ai-ocaml-mode''s highlighting.")

(defvar ocaml-ai-ocaml-font-lock-keywords
  `((,(regexp-opt ocaml-ai-ocaml-keywords 'symbols) . font-lock-keyword-face)
    ("\\_<\\(?:let\\|and\\)\\(?:[ \t]+rec\\)?[ \t]+\\([a-z_][A-Za-z0-9_']*\\)"
     1 font-lock-function-name-face)
    ("\\_<[A-Z][A-Za-z0-9_']*" . font-lock-type-face))
  "Highlighting of `ocaml-ai-ocaml-mode': keywords, defined names, modules.")

;;;###autoload
(define-derived-mode ocaml-ai-ocaml-mode prog-mode "OCaml"
  "A minimal major mode for OCaml, for an Emacs without one (stock Emacs).
So that eglot can serve .ml and .mli files.  It knows
comments, strings and keywords; indentation keeps the previous line's.
`ocaml-ai-setup' opens OCaml files in it only when none of
`ocaml-ai-ocaml-modes' is installed: tuareg (Debian's elpa-tuareg,
or `package-install' tuareg) is the one to use."
  :syntax-table ocaml-ai-ocaml-mode-syntax-table
  (setq-local comment-start "(* ")
  (setq-local comment-end " *)")
  (setq-local comment-start-skip "(\\*+[ \t]*")
  (setq-local comment-end-skip "[ \t]*\\*+)")
  (setq-local indent-line-function #'indent-relative)
  (setq-local font-lock-defaults '(ocaml-ai-ocaml-font-lock-keywords)))

(defun ocaml-ai--ocaml-mode-installed-p ()
  "Non-nil when an OCaml major mode is there (maybe autoloaded).
One of `ocaml-ai-ocaml-modes', or any mode `auto-mode-alist' already
gives .ml files other than stock Emacs' `lisp-mode'."
  (let ((mode (assoc-default "x.ml" auto-mode-alist #'string-match)))
    (or (seq-some #'fboundp ocaml-ai-ocaml-modes)
        (and mode (not (memq mode '(lisp-mode ocaml-ai-ocaml-mode)))))))

(defun ocaml-ai--register-ocaml-mode ()
  "Open .ml and .mli files in `ocaml-ai-ocaml-mode' without an OCaml mode.
In front of `auto-mode-alist': stock Emacs opens .ml files in `lisp-mode'."
  (unless (ocaml-ai--ocaml-mode-installed-p)
    (add-to-list 'auto-mode-alist '("\\.mli?\\'" . ocaml-ai-ocaml-mode))))

;;;###autoload
(defun ocaml-ai-setup ()
  "Set eglot (and lsp-mode, once loaded) up for ocaml-ai-ls.
With `ocaml-ai-eglot-by-default', put an entry for the modes of
`ocaml-ai-major-modes' in front of `eglot-server-programs', so that
eglot starts ocaml-ai-ls instead of ocamllsp for them.  Make eglot
wait for generations in buffers served by ocaml-ai-ls.  Once
lsp-mode is loaded, register ocaml-ai-ls with it as an add-on server.
Without an OCaml major mode (stock Emacs), open .ml and .mli files in
`ocaml-ai-ocaml-mode', which eglot serves with ocaml-ai-ls."
  (interactive)
  (ocaml-ai--register-ocaml-mode)
  (setq eglot-server-programs
        (cl-remove-if #'ocaml-ai--our-entry-p eglot-server-programs))
  (when ocaml-ai-eglot-by-default
    (push (cons (ocaml-ai--eglot-modes ocaml-ai-major-modes) #'ocaml-ai--eglot-contact)
          eglot-server-programs))
  (unless ocaml-ai-eglot-by-default
    ;; our own mode has no other server: ocaml-ai-ls serves it whatever the default
    (push (cons (ocaml-ai--eglot-modes '(ocaml-ai-ocaml-mode)) #'ocaml-ai--eglot-contact)
          eglot-server-programs))
  (add-hook 'eglot-managed-mode-hook #'ocaml-ai--managed-hook)
  (with-eval-after-load 'lsp-mode (ocaml-ai--lsp-register)))

;;;###autoload
(defun ocaml-ai-eglot ()
  "Serve the current buffer's mode in its project with ocaml-ai-ls, through eglot.
Whatever `eglot-server-programs' says: a server eglot already runs
there (ocamllsp, say) is shut down.  `M-x eglot' brings it back."
  (interactive)
  (add-hook 'eglot-managed-mode-hook #'ocaml-ai--managed-hook)
  (let ((eglot-server-programs
         (cons (cons (ocaml-ai--eglot-modes
                      (cons major-mode (remq major-mode ocaml-ai-major-modes)))
                     #'ocaml-ai--eglot-contact)
               eglot-server-programs)))
    (apply #'eglot (eglot--guess-contact))))

;;;###autoload
(defun ocaml-ai-project-find-dune (dir)
  "A `project-find-functions' entry: the directory above DIR with a dune-project.
For projects outside version control, whose root eglot would
otherwise guess as the file's own directory:
  (add-hook \\='project-find-functions #\\='ocaml-ai-project-find-dune 50)"
  (when-let ((root (locate-dominating-file dir "dune-project")))
    (cons 'transient (file-name-as-directory (expand-file-name root)))))

;;;; Talking to the server

(defun ocaml-ai--server-or-lose (buffer)
  "The ocaml-ai-ls eglot connection of BUFFER, or a `user-error'."
  (with-current-buffer buffer
    (let ((server (eglot-current-server)))
      (cond
       ((null server)
        (user-error "%s is not managed by eglot: M-x eglot there first (see `ocaml-ai-setup')"
                    (buffer-name)))
       ((not (ocaml-ai--server-p server))
        (user-error "The eglot server of %s is not ocaml-ai-ls (see `ocaml-ai-setup')"
                    (buffer-name)))
       ((not (jsonrpc-running-p server))
        (user-error "The ocaml-ai-ls of %s is not running: M-x eglot-reconnect"
                    (buffer-name)))
       (t server)))))

(defun ocaml-ai--sync-buffer (buffer)
  "Send the edits of BUFFER not yet sent to its server, before a request."
  (with-current-buffer buffer
    (when (fboundp 'eglot--signal-textDocument/didChange)
      (eglot--signal-textDocument/didChange))))

(defun ocaml-ai--execute (server command argument &rest args)
  "Send COMMAND with one ARGUMENT to SERVER asynchronously.
ARGS are keyword arguments of `jsonrpc-async-request'."
  (apply #'jsonrpc-async-request server :workspace/executeCommand
         (list :command command :arguments (vector argument))
         args))

(defun ocaml-ai--apply-edit (server edit)
  "Apply the LSP WorkspaceEdit EDIT from SERVER as eglot does a code action's."
  (if (fboundp 'eglot-execute)
      ;; eglot >= 1.15: the public way, honouring `eglot-confirm-server-edits'.
      (eglot-execute server (list :title "ocaml-ai candidate" :edit edit))
    ;; eglot 1.9 - 1.14: (WEDIT &optional CONFIRM).
    (let ((apply-edit 'eglot--apply-workspace-edit))
      (funcall apply-edit edit))))

;;;; The interaction buffer

(defvar-local ocaml-ai--source nil
  "The source buffer the interaction buffer works on.")
(defvar-local ocaml-ai--beg nil
  "Marker in the source buffer: start of the code the instruction is about.")
(defvar-local ocaml-ai--end nil
  "Marker in the source buffer: its end (equal to the start: a position).")
(defvar-local ocaml-ai--root nil
  "Root directory of the project of the interaction buffer.")
(defvar-local ocaml-ai--input nil
  "Marker: the user's instruction is the text from here to the end.")
(defvar-local ocaml-ai--label nil
  "Markers (START . END) of the target's label shown since the last send.")
(defvar-local ocaml-ai--candidates nil
  "Alist (NUMBER . PLIST) of the candidates shown in the buffer.
PLIST has :edit, :generation, :source and :end (a marker after the
candidate's diff).")
(defvar-local ocaml-ai--counter 0
  "Number of the last candidate shown.")
(defvar-local ocaml-ai--pending 0
  "Requests sent from this buffer and not answered yet.")
(defvar-local ocaml-ai--last-generation nil
  "Id of the last generation answered in this buffer.")

(dolist (var '(ocaml-ai--source ocaml-ai--beg ocaml-ai--end ocaml-ai--root
               ocaml-ai--input ocaml-ai--label ocaml-ai--candidates ocaml-ai--counter
               ocaml-ai--pending ocaml-ai--last-generation))
  ;; Survive a change of major mode, e.g. when the buffer is saved as .md.
  (put var 'permanent-local t))

(defvar ocaml-ai-chat-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "C-c C-c") #'ocaml-ai-chat-send)
    (define-key map (kbd "C-c C-a") #'ocaml-ai-chat-apply)
    (define-key map (kbd "C-c C-k") #'ocaml-ai-chat-reject)
    (define-key map (kbd "C-c C-j") #'ocaml-ai-chat-goto-source)
    map)
  "Keys of `ocaml-ai-chat-mode'.")

(define-minor-mode ocaml-ai-chat-mode
  "Minor mode of the ocaml-ai interaction buffer.
Type an instruction at the end of the buffer, then:
\\{ocaml-ai-chat-mode-map}"
  :lighter " AI"
  :keymap ocaml-ai-chat-mode-map)
(put 'ocaml-ai-chat-mode 'permanent-local t)

(defun ocaml-ai--project-root (buffer server)
  "The project root of BUFFER managed by SERVER."
  (with-current-buffer buffer
    (let ((project (or (ignore-errors (eglot--project server)) (project-current))))
      (file-name-as-directory
       (expand-file-name (if project (project-root project) default-directory))))))

(defun ocaml-ai--chat-buffer (root)
  "The interaction buffer of the project at ROOT, made if need be."
  (or (seq-find (lambda (buf)
                  (and (equal (buffer-local-value 'ocaml-ai--root buf) root)
                       (buffer-local-value 'ocaml-ai-chat-mode buf)))
                (buffer-list))
      (let ((buf (generate-new-buffer
                  (format "*ocaml-ai: %s*"
                          (file-name-nondirectory (directory-file-name root))))))
        (with-current-buffer buf
          (if (fboundp 'markdown-mode) (markdown-mode) (text-mode))
          (ocaml-ai-chat-mode 1)
          (setq default-directory root
                ocaml-ai--root root)
          (insert (format "# ocaml-ai: %s\n\n" (abbreviate-file-name root))
                  (substitute-command-keys
                   "<!-- Write an instruction at the end of this buffer and press \
\\[ocaml-ai-chat-send]:\n     it is sent for the code named in bold above it.\n     \
\\[ocaml-ai-chat-apply] on a candidate applies it; \\[ocaml-ai-chat-reject] \
rejects the last answer. -->\n\n"))
          (setq ocaml-ai--input (point-marker)))
        buf)))

(defun ocaml-ai--location (buffer beg end root)
  "A \"path:line\" label for BEG..END in BUFFER, its path relative to ROOT."
  (with-current-buffer buffer
    (let ((first (line-number-at-pos beg t))
          (last (line-number-at-pos (max beg (1- end)) t)))
      (format "%s:%s"
              (if buffer-file-name (file-relative-name buffer-file-name root) (buffer-name))
              (if (< first last) (format "%d-%d" first last) first)))))

;;;###autoload
(defun ocaml-ai-chat ()
  "Open the ocaml-ai interaction buffer for the code at point or the region.
The buffer, `*ocaml-ai: PROJECT*', is in Markdown.  Write an
instruction at its end and press \\<ocaml-ai-chat-mode-map>\\[ocaml-ai-chat-send]."
  (interactive)
  (let* ((source (current-buffer))
         (server (ocaml-ai--server-or-lose source))
         (root (ocaml-ai--project-root source server))
         (beg (copy-marker (if (use-region-p) (region-beginning) (point))))
         (end (copy-marker (if (use-region-p) (region-end) (point)) t))
         (chat (ocaml-ai--chat-buffer root))
         (label (ocaml-ai--location source beg end root)))
    (with-current-buffer chat
      (setq ocaml-ai--source source
            ocaml-ai--beg beg
            ocaml-ai--end end)
      (ocaml-ai--label-target (format "**%s**\n\n" label))
      (goto-char (point-max)))
    (pop-to-buffer chat)
    chat))

(defun ocaml-ai--label-target (text)
  "Show TEXT, the label of the target, above the instruction being written.
A label shown since the last instruction was sent is replaced."
  (let ((inhibit-read-only t))
    (save-excursion
      (if ocaml-ai--label
          (progn
            (goto-char (car ocaml-ai--label))
            (delete-region (car ocaml-ai--label) (cdr ocaml-ai--label))
            (insert text)
            (set-marker (cdr ocaml-ai--label) (point)))
        (goto-char ocaml-ai--input)
        (unless (bolp) (insert "\n"))
        (let ((start (point-marker)))
          (insert text)
          (setq ocaml-ai--label (cons start (point-marker)))))
      (when (< ocaml-ai--input (cdr ocaml-ai--label))
        (set-marker ocaml-ai--input (cdr ocaml-ai--label))))))

(defun ocaml-ai--fence (text)
  "A backtick fence longer than any run of backticks in TEXT."
  (let ((longest 2) (start 0))
    (while (string-match "`+" text start)
      (setq longest (max longest (- (match-end 0) (match-beginning 0)))
            start (match-end 0)))
    (make-string (1+ longest) ?`)))

(defun ocaml-ai--insert-candidate (candidate rank total generation source)
  "Insert CANDIDATE (RANK of TOTAL) of GENERATION for SOURCE at point."
  (let* ((number (cl-incf ocaml-ai--counter))
         (verification (plist-get candidate :verification))
         (status (or (plist-get verification :status) "unverified"))
         (files (mapconcat #'identity (append (plist-get candidate :files) nil) ", "))
         (diff (or (plist-get candidate :diff) ""))
         (fence (ocaml-ai--fence diff))
         (start (point)))
    (insert (format "### %d. %s · %s (rank %d of %d)\n\n" number status files rank total))
    (let ((errors (append (plist-get verification :errors) nil)))
      (dolist (err (seq-take errors 5))
        (insert (format "- `%s:%s:%s`: %s%s\n"
                        (plist-get err :path) (plist-get err :line)
                        (plist-get err :column)
                        (replace-regexp-in-string "\n" " " (or (plist-get err :message) ""))
                        (if (eq (plist-get err :preexisting) t) " (already there)" ""))))
      (when errors (insert "\n")))
    (insert fence "diff\n" diff (if (string-suffix-p "\n" diff) "" "\n") fence "\n")
    (let ((end (point-marker)))
      (insert "\n")
      (put-text-property start end 'ocaml-ai-candidate number)
      (push (cons number (list :edit (plist-get candidate :edit)
                               :generation generation
                               :source source
                               :end end))
            ocaml-ai--candidates))))

(defun ocaml-ai--insert-result (result label source)
  "Insert the generate RESULT for LABEL in SOURCE at point."
  (let* ((candidates (append (plist-get result :candidates) nil))
         (rejected (append (plist-get result :rejected) nil))
         (generation (plist-get result :id))
         (total (plist-get (plist-get result :timings) :total_ms))
         (rank 0))
    (setq ocaml-ai--last-generation generation)
    (insert (format "_%s: %d candidate%s%s%s_\n\n"
                    label (length candidates) (if (= (length candidates) 1) "" "s")
                    (let ((model (plist-get result :model)))
                      (if (and (stringp model) (not (string-empty-p model)))
                          (format " from %s" model) ""))
                    (if (numberp total) (format ", %.1f s" (/ total 1000.0)) "")))
    (dolist (candidate candidates)
      (ocaml-ai--insert-candidate candidate (cl-incf rank) (length candidates)
                                  generation source))
    (when (eq (plist-get result :cancelled) t)
      (insert "**Cancelled.**\n\n"))
    (let ((err (plist-get result :error)))
      (when (and (stringp err) (not (string-empty-p err)))
        (insert (format "**No usable edit:** %s\n\n" err))))
    (dolist (r rejected)
      (insert (format "- rejected (%s): %s\n" (plist-get r :model)
                      (replace-regexp-in-string "\n" " " (or (plist-get r :reason) "")))))
    (when rejected (insert "\n"))))

(defun ocaml-ai--finish (chat placeholder fill)
  "Replace PLACEHOLDER (start . end markers) in CHAT by the text FILL puts in."
  (when (buffer-live-p chat)
    (with-current-buffer chat
      (cl-decf ocaml-ai--pending)
      (let ((inhibit-read-only t)
            (at-end (= (point) (point-max))))
        (save-excursion
          (goto-char (car placeholder))
          (delete-region (car placeholder) (cdr placeholder))
          (funcall fill)
          (when (< ocaml-ai--input (point))
            (set-marker ocaml-ai--input (point))))
        (when at-end (goto-char (point-max)))))))

(defun ocaml-ai-chat-send ()
  "Send the instruction at the end of the buffer as `ocaml-ai.generate'.
It is about the code the buffer was opened from (`ocaml-ai-chat').
The candidates are inserted below it when they come."
  (interactive)
  (unless ocaml-ai-chat-mode
    (user-error "Not an ocaml-ai interaction buffer (M-x ocaml-ai-chat)"))
  (unless (buffer-live-p ocaml-ai--source)
    (user-error "The source buffer is gone: M-x ocaml-ai-chat from the code"))
  (let* ((instruction (string-trim (buffer-substring-no-properties
                                    ocaml-ai--input (point-max))))
         (source ocaml-ai--source)
         (server (ocaml-ai--server-or-lose source))
         (chat (current-buffer))
         (label (ocaml-ai--location source ocaml-ai--beg ocaml-ai--end ocaml-ai--root))
         (argument
          (with-current-buffer source
            (list :uri (plist-get (eglot--TextDocumentIdentifier) :uri)
                  :range (list :start (eglot--pos-to-lsp-position ocaml-ai--beg)
                               :end (eglot--pos-to-lsp-position ocaml-ai--end))
                  :instruction instruction
                  :candidates ocaml-ai-candidates
                  :apply :json-false)))
         placeholder)
    (when (string-empty-p instruction)
      (user-error "Write an instruction at the end of the buffer first"))
    (ocaml-ai--sync-buffer source)
    (goto-char (point-max))
    (unless (bolp) (insert "\n"))
    (insert "\n")
    (let ((start (point-marker)))
      (insert "_Generating…_\n\n")
      (setq placeholder (cons start (point-marker))))
    (set-marker ocaml-ai--input (point))
    (setq ocaml-ai--label nil)
    (cl-incf ocaml-ai--pending)
    (ocaml-ai--execute
     server "ocaml-ai.generate" argument
     :timeout ocaml-ai-request-timeout
     :success-fn
     (lambda (result)
       (ocaml-ai--finish chat placeholder
                         (lambda () (ocaml-ai--insert-result result label source))))
     :error-fn
     (lambda (err)
       (ocaml-ai--finish chat placeholder
                         (lambda ()
                           (insert (format "**Error:** %s\n\n"
                                           (or (plist-get err :message) err))))))
     :timeout-fn
     (lambda ()
       (ocaml-ai--finish chat placeholder
                         (lambda ()
                           (insert (format "**No answer** after %s s.\n\n"
                                           ocaml-ai-request-timeout))))))
    (message "ocaml-ai: asking for %s..." label)))

(defun ocaml-ai--candidate-at (pos)
  "The number of the candidate at POS, from its text or the heading above.
POS is on a candidate from its heading to the end of its diff."
  (or (get-text-property pos 'ocaml-ai-candidate)
      (save-excursion
        (goto-char pos)
        (end-of-line)
        (when (re-search-backward "^### \\([0-9]+\\)\\. " nil t)
          (let* ((number (string-to-number (match-string 1)))
                 (candidate (cdr (assq number ocaml-ai--candidates))))
            (and (or (null candidate) (<= pos (plist-get candidate :end)))
                 number))))))

(defun ocaml-ai--feedback (server generation accepted)
  "Tell SERVER whether the user ACCEPTED the edit of GENERATION."
  (condition-case err
      (jsonrpc-request server :workspace/executeCommand
                       (list :command "ocaml-ai.feedback"
                             :arguments (vector (list :id generation
                                                      :accepted (if accepted t :json-false))))
                       :timeout 10)
    (error (message "ocaml-ai: feedback not sent: %s" (error-message-string err)))))

(defun ocaml-ai--note (candidate text)
  "Insert TEXT after the diff of CANDIDATE (its plist)."
  (let ((end (plist-get candidate :end))
        (inhibit-read-only t))
    (save-excursion
      (goto-char end)
      (insert "\n" text "\n"))))

(defun ocaml-ai-chat-apply (&optional pos)
  "Apply the candidate at POS (default: point) to the source buffers.
Tells the server that the user accepted the generation's edit."
  (interactive)
  (let* ((number (or (ocaml-ai--candidate-at (or pos (point)))
                     (user-error "No candidate here: move to a \"### N.\" heading or its diff")))
         (candidate (or (cdr (assq number ocaml-ai--candidates))
                        (user-error "Candidate %d is not known to this buffer" number)))
         (source (plist-get candidate :source))
         (server (ocaml-ai--server-or-lose
                  (if (buffer-live-p source) source
                    (user-error "The source buffer of candidate %d is gone" number))))
         (edit (plist-get candidate :edit)))
    (condition-case err
        (with-current-buffer source
          (ocaml-ai--apply-edit server edit))
      (error
       (ocaml-ai--note candidate (format "_Not applied: %s_" (error-message-string err)))
       (user-error "Candidate %d not applied: %s" number (error-message-string err))))
    (ocaml-ai--note candidate "_Applied._")
    (ocaml-ai--feedback server (plist-get candidate :generation) t)
    (message "ocaml-ai: applied candidate %d" number)))

(defun ocaml-ai-chat-reject (&optional pos)
  "Tell the server that no candidate of the generation at POS is wanted.
Without a candidate at POS (default: point), the last generation."
  (interactive)
  (let* ((number (ocaml-ai--candidate-at (or pos (point))))
         (candidate (and number (cdr (assq number ocaml-ai--candidates))))
         (generation (if candidate (plist-get candidate :generation)
                       ocaml-ai--last-generation))
         (source (if candidate (plist-get candidate :source) ocaml-ai--source)))
    (unless (and generation (buffer-live-p source))
      (user-error "No generation to reject here"))
    (ocaml-ai--feedback (ocaml-ai--server-or-lose source) generation nil)
    (message "ocaml-ai: rejected")))

(defun ocaml-ai-chat-goto-source ()
  "Show the source buffer at the code the instructions are about."
  (interactive)
  (unless (buffer-live-p ocaml-ai--source)
    (user-error "The source buffer is gone"))
  (let ((pos (marker-position ocaml-ai--beg)))
    (pop-to-buffer ocaml-ai--source)
    (goto-char pos)))

(provide 'ocaml-ai)
;;; ocaml-ai.el ends here
