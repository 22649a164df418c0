;;; ocaml-ai-test.el --- Headless scenarios for clients/emacs/ocaml-ai.el  -*- lexical-binding: t; -*-

;;; Commentary:

;; Run by tests/test_emacs.py as
;;   emacs --batch -l ocaml-ai-test.el -f ocaml-ai-test-run
;; with $OCAML_AI_EMACS_TEST naming a JSON file of parameters:
;;   scenario  "code-action", "chat" or "stock"
;;   package   path of ocaml-ai.el
;;   command   the server's command line (a list of strings)
;;   settings  initializationOptions
;;   file      the OCaml file to visit
;;   line      1-based line to put point on (chat: the code the instruction is about)
;;   switch    true: eglot is not pointed at ocaml-ai-ls, `ocaml-ai-eglot' starts it
;;   title     (code-action) the code action to choose (the result has the
;;             messages shown meanwhile)
;;   instruction (chat) what to type in the interaction buffer
;;   apply     (chat) true: apply the first candidate
;;   reject    (chat) true: reject the generation (C-c C-k)
;;   out       directory for the chat buffer saved with `write-file'
;;   tuareg    (stock) true: a stand-in tuareg-mode is installed first
;;   result    where to write the result (JSON)
;; Each scenario is bounded (`with-timeout'); any failure prints why, with the
;; server's stderr and the tail of eglot's events buffer, and exits with status 1.

;;; Code:

(require 'cl-lib)
(require 'json)
(require 'subr-x)

(defvar ocaml-ai-test--params nil "The parameters of the run (a plist).")
(defvar ocaml-ai-test--result nil "The result so far (a plist written as JSON).")
(defconst ocaml-ai-test--deadline 60 "Seconds a whole scenario may take.")
(defvar ocaml-ai-test--messages nil "What the scenario showed in the echo area, newest first.")

(defun ocaml-ai-test--param (key)
  "The parameter KEY."
  (plist-get ocaml-ai-test--params key))

(defun ocaml-ai-test--put (key value)
  "Record VALUE under KEY in the result."
  (setq ocaml-ai-test--result (plist-put ocaml-ai-test--result key value)))

(defun ocaml-ai-test--dump-server ()
  "Print what eglot saw of the server, for a failure's report."
  (dolist (buf (buffer-list))
    (when (string-match-p "\\*EGLOT.*\\(stderr\\|events\\)\\*" (buffer-name buf))
      (with-current-buffer buf
        (message "--- %s (tail)\n%s" (buffer-name)
                 (buffer-substring-no-properties
                  (max (point-min) (- (point-max) 6000)) (point-max)))))))

(defun ocaml-ai-test--fail (fmt &rest args)
  "Print FMT with ARGS and the server's side, then exit with status 1."
  (message "FAIL: %s" (apply #'format fmt args))
  (ignore-errors (ocaml-ai-test--dump-server))
  (kill-emacs 1))

(defun ocaml-ai-test--check (condition fmt &rest args)
  "Fail with FMT and ARGS unless CONDITION."
  (unless condition (apply #'ocaml-ai-test--fail fmt args)))

(defun ocaml-ai-test--wait (predicate seconds what)
  "Process output until PREDICATE holds; fail after SECONDS waiting for WHAT."
  (let ((deadline (+ (float-time) seconds)))
    (while (not (funcall predicate))
      (when (> (float-time) deadline)
        (ocaml-ai-test--fail "timed out after %s s waiting for %s" seconds what))
      (accept-process-output nil 0.05))))

(define-derived-mode ocaml-ai-test-mode prog-mode "OCaml-test"
  "Stands in for tuareg-mode, which the test machine does not have.")

(defun ocaml-ai-test--setup ()
  "Load eglot and the package, and configure them as a user would."
  (unless (require 'eglot nil t)
    (package-initialize)
    (require 'eglot))
  (load (ocaml-ai-test--param :package) nil t)
  (setq ocaml-ai-command (append (ocaml-ai-test--param :command) nil)
        ocaml-ai-initialization-options (ocaml-ai-test--param :settings)
        ocaml-ai-major-modes '(ocaml-ai-test-mode)
        ocaml-ai-eglot-by-default (not (ocaml-ai-test--param :switch))
        ocaml-ai-request-timeout 45
        eglot-confirm-server-initiated-edits nil
        eglot-sync-connect t
        eglot-connect-timeout 30
        eglot-autoreconnect nil
        ;; the example project is not under version control
        project-find-functions '(ocaml-ai-project-find-dune))
  (add-to-list 'auto-mode-alist '("\\.mli?\\'" . ocaml-ai-test-mode))
  (ocaml-ai-setup))

(defun ocaml-ai-test--visit ()
  "Visit the OCaml file with eglot managing it; return its buffer."
  (find-file (ocaml-ai-test--param :file))
  (ocaml-ai-test--check (eq major-mode 'ocaml-ai-test-mode) "major mode is %s" major-mode)
  (if (not (ocaml-ai-test--param :switch))
      (apply #'eglot (eglot--guess-contact)) ; M-x eglot
    ;; eglot knows no server for the mode: `ocaml-ai-eglot' brings its own
    (ocaml-ai-test--check (null (eglot--lookup-mode major-mode))
                          "eglot-server-programs has an entry for %s" major-mode)
    (ocaml-ai-eglot))
  (ocaml-ai-test--wait (lambda () (bound-and-true-p eglot--managed-mode)) 30
                       "eglot to manage the buffer")
  (let ((server (eglot-current-server)))
    (ocaml-ai-test--check server "no eglot server for %s" (buffer-name))
    (ocaml-ai-test--put :server_class (symbol-name (eieio-object-class-name server)))
    (ocaml-ai-test--put :request_timeout jsonrpc-default-request-timeout))
  (goto-char (point-min))
  (forward-line (1- (ocaml-ai-test--param :line)))
  (current-buffer))

(defun ocaml-ai-test--shutdown ()
  "Shut the servers down politely, so the server flushes its metrics."
  (dolist (server (cl-loop for servers being the hash-values of eglot--servers-by-project
                           append servers))
    (eglot-shutdown server nil 10)))

(defun ocaml-ai-test--record-message (format-string &rest args)
  "Keep what `message' shows (FORMAT-STRING with ARGS), as the user would see it."
  (when format-string
    (push (or (ignore-errors (apply #'format-message format-string args)) format-string)
          ocaml-ai-test--messages)))

(defun ocaml-ai-test--code-action ()
  "List the code actions on the instruction comment, then choose one as a user does."
  (advice-add 'message :before #'ocaml-ai-test--record-message)
  (let* ((source (ocaml-ai-test--visit))
         (title (ocaml-ai-test--param :title))
         (actions (eglot-code-actions (point) (point)))
         (titles (mapcar (lambda (a) (plist-get a :title)) actions)))
    (ocaml-ai-test--put :offered (vconcat titles))
    (ocaml-ai-test--check (member title titles) "%S not among the actions %S" title titles)
    ;; eglot's own UI path: `eglot-code-actions' called interactively, with the
    ;; choice made in the minibuffer (the batch session has no menus).
    (let ((last-nonmenu-event ?\r))
      (cl-letf (((symbol-function 'completing-read)
                 (lambda (_prompt collection &rest _)
                   (ocaml-ai-test--check (assoc title collection)
                                         "%S not offered in the menu" title)
                   title)))
        (eglot-code-actions (point) (point) nil t)))
    (advice-remove 'message #'ocaml-ai-test--record-message)
    (ocaml-ai-test--put :messages (vconcat (reverse ocaml-ai-test--messages)))
    (with-current-buffer source
      (ocaml-ai-test--put :text (buffer-substring-no-properties (point-min) (point-max))))))

;; The chat scenario: `ocaml-ai-chat' from the target, an instruction typed at the
;; end of the interaction buffer, C-c C-c, then C-c C-k (with `reject') or C-c C-a
;; on the first candidate (with `apply').
(defun ocaml-ai-test--chat ()
  "Ask in the interaction buffer; maybe apply the first candidate."
  (let* ((source (ocaml-ai-test--visit))
         (target (progn (back-to-indentation) (point)))
         (before (buffer-string))
         (chat (progn
                 ;; opened from the first line, then (before any instruction is
                 ;; sent) from the target: the label follows
                 (goto-char (point-min))
                 (ocaml-ai-chat)
                 (set-buffer source)
                 (goto-char target)
                 (ocaml-ai-chat))))
    (with-current-buffer chat
      (ocaml-ai-test--check ocaml-ai-chat-mode "the chat buffer is not in ocaml-ai-chat-mode")
      (goto-char (point-max))
      (insert (ocaml-ai-test--param :instruction))
      (ocaml-ai-chat-send)
      (ocaml-ai-test--check (= ocaml-ai--pending 1) "no request pending after C-c C-c")
      (ocaml-ai-test--wait (lambda () (= ocaml-ai--pending 0)) 45 "the candidates")
      ;; the user may save the buffer (a file of its own), then go on using it
      (write-file (expand-file-name "chat.md" (ocaml-ai-test--param :out)))
      (ocaml-ai-test--put :chat (buffer-substring-no-properties (point-min) (point-max)))
      (ocaml-ai-test--put :generation ocaml-ai--last-generation)
      (when (ocaml-ai-test--param :reject)
        (goto-char (point-max))         ; no candidate here: the last generation
        (ocaml-ai-chat-reject))
      (when (ocaml-ai-test--param :apply)
        ;; the user edits the buffer; text yanked back has lost its properties
        (goto-char (point-min))
        (insert "My notes.\n\n")
        (set-text-properties (point-min) (point-max) nil)
        (goto-char (point-min))
        (ocaml-ai-test--check (re-search-forward "^### 1\\. " nil t)
                              "no candidate heading in:\n%s" (buffer-string))
        (forward-line 3)                ; inside the diff
        (ocaml-ai-chat-apply)
        (ocaml-ai-test--put :chat_after
                            (buffer-substring-no-properties (point-min) (point-max)))))
    (with-current-buffer source
      (let ((after (buffer-substring-no-properties (point-min) (point-max))))
        (when (ocaml-ai-test--param :apply)
          (ocaml-ai-test--check (not (equal after before)) "the source buffer did not change"))
        (ocaml-ai-test--put :text after)))))

;; The stock scenario: Emacs as Debian installs it (no OCaml mode), the package
;; loaded and set up with its defaults and `eglot-ensure' on the mode's hook, as
;; the README says; visiting the file starts eglot with the real server.
(defun ocaml-ai-test--stock-setup ()
  "Load eglot and the package with its defaults (no stand-in mode of ours)."
  (unless (require 'eglot nil t)
    (package-initialize)
    (require 'eglot))
  (ocaml-ai-test--put :tuareg_before (if (fboundp 'tuareg-mode) t :false))
  (when (eq (ocaml-ai-test--param :tuareg) t)
    ;; what installing tuareg gives: its mode, and .ml files opened in it
    (define-derived-mode tuareg-mode prog-mode "Tuareg" "A stand-in for tuareg.")
    (add-to-list 'auto-mode-alist '("\\.mli?\\'" . tuareg-mode)))
  (load (ocaml-ai-test--param :package) nil t)
  (setq ocaml-ai-command (append (ocaml-ai-test--param :command) nil)
        ocaml-ai-initialization-options (ocaml-ai-test--param :settings)
        eglot-sync-connect t
        eglot-connect-timeout 30
        eglot-autoreconnect nil
        project-find-functions '(ocaml-ai-project-find-dune))
  (ocaml-ai-setup)
  (add-hook 'ocaml-ai-ocaml-mode-hook #'eglot-ensure)
  (add-hook 'tuareg-mode-hook #'eglot-ensure))

(defun ocaml-ai-test--stock ()
  "Visit the file as a user does; eglot starts on the next command loop."
  (find-file (ocaml-ai-test--param :file))
  (ocaml-ai-test--put :mode (symbol-name major-mode))
  (ocaml-ai-test--put :registered
                      (if (rassq 'ocaml-ai-ocaml-mode auto-mode-alist) t :false))
  (ocaml-ai-test--put :comment (vector comment-start comment-end))
  (ocaml-ai-test--put :in_comment
                      (save-excursion
                        (goto-char (point-min))
                        (search-forward "(*")
                        (if (nth 4 (syntax-ppss)) t :false)))
  (run-hooks 'post-command-hook)        ; the command loop, after `find-file'
  (ocaml-ai-test--wait (lambda () (bound-and-true-p eglot--managed-mode)) 30
                       "eglot to manage the buffer")
  (let ((server (eglot-current-server)))
    (ocaml-ai-test--put :server_class (symbol-name (eieio-object-class-name server)))
    (goto-char (point-min))
    (forward-line (1- (ocaml-ai-test--param :line)))
    (ocaml-ai-test--put :offered
                        (vconcat (mapcar (lambda (a) (plist-get a :title))
                                         (eglot-code-actions (point) (point)))))))

(defun ocaml-ai-test-run ()
  "Run the scenario of $OCAML_AI_EMACS_TEST and write its result."
  (setq ocaml-ai-test--params
        (json-parse-string
         (with-temp-buffer
           (insert-file-contents (getenv "OCAML_AI_EMACS_TEST"))
           (buffer-string))
         :object-type 'plist :array-type 'list))
  (condition-case err
      (with-timeout (ocaml-ai-test--deadline
                     (ocaml-ai-test--fail "scenario took more than %s s"
                                          ocaml-ai-test--deadline))
        (if (equal (ocaml-ai-test--param :scenario) "stock")
            (ocaml-ai-test--stock-setup)
          (ocaml-ai-test--setup))
        (pcase (ocaml-ai-test--param :scenario)
          ("code-action" (ocaml-ai-test--code-action))
          ("chat" (ocaml-ai-test--chat))
          ("stock" (ocaml-ai-test--stock))
          (other (ocaml-ai-test--fail "unknown scenario %S" other)))
        (ocaml-ai-test--shutdown))
    (error (ocaml-ai-test--fail "%s" (error-message-string err))))
  (with-temp-file (ocaml-ai-test--param :result)
    (insert (json-serialize ocaml-ai-test--result)))
  (kill-emacs 0))

;;; ocaml-ai-test.el ends here
