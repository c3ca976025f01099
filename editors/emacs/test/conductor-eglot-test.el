;;; conductor-eglot-test.el --- batch test: Emacs + eglot drive conductor-lsp  -*- lexical-binding: t -*-
;; Run by editors/emacs/test/run.sh:  emacs --batch -l conductor-eglot-test.el
;; (Debian's Emacs 28 + elpa-eglot 1.9; do not pass -Q: Debian's site-start puts elpa-* on the load path.)
;; Env: CONDUCTOR_BIN, CONDUCTOR_TEST_DIR, CONDUCTOR_TEST_RESULTS.
(require 'eglot)
(require 'cl-lib)
(require 'json)

(defvar ct-results nil)
(defun ct-log (fmt &rest args) (princ (concat (apply #'format fmt args) "\n")))
(defmacro ct-test (name &rest body)
  `(let ((t0 (float-time)))
     (condition-case err
         (progn ,@body
                (push (list :name ,name :ok t) ct-results)
                (ct-log "PASS %s (%d ms)" ,name (round (* 1000 (- (float-time) t0)))))
       (error (push (list :name ,name :ok nil :error (format "%S" err)) ct-results)
              (ct-log "FAIL %s: %S" ,name err)))))
(defun ct-check (cond fmt &rest args) (unless cond (error "%s" (apply #'format fmt args))))

(setq eglot-confirm-server-initiated-edits nil)
(setq jsonrpc-default-request-timeout 30)
(add-to-list 'eglot-server-programs `(text-mode . (,(getenv "CONDUCTOR_BIN") "--stdio")))

(defconst ct-note (expand-file-name "note.md" (getenv "CONDUCTOR_TEST_DIR")))
(with-temp-file ct-note
  (insert "# Design notes\n\nAsync runtimes in Rust\n\n## Next section\n\nThe end.\n"))
(find-file ct-note)
(text-mode)
(defvar ct-server nil)

(ct-test "eglot connects to conductor-lsp"
  (apply #'eglot (eglot--guess-contact))
  (setq ct-server (eglot-current-server))
  (ct-check ct-server "no server")
  (ct-check (eglot--server-capable :codeActionProvider) "no codeActionProvider")
  (ct-check (eglot--server-capable :hoverProvider) "no hoverProvider"))

(ct-test "code action “Research …” on a region inserts the report under it"
  (goto-char (point-min)) (forward-line 2)
  (let* ((beg (point)) (end (line-end-position))
         (actions (eglot-code-actions beg end))
         (action (cl-find-if (lambda (a) (string-prefix-p "Research “Async runtimes in Rust”" (plist-get a :title))) actions)))
    (ct-check action "no Research action among %S" (mapcar (lambda (a) (plist-get a :title)) actions))
    (let* ((cmd (or (plist-get action :command) action))
           (answer (eglot-execute-command ct-server (intern (plist-get cmd :command)) (plist-get cmd :arguments))))
      (ct-log "  answer: %S" answer)
      (ct-check (eq (plist-get answer :applied) t) "not applied: %S" answer)))
  (let* ((text (buffer-substring-no-properties (point-min) (point-max)))
         (lines (split-string text "\n"))
         (i-topic (cl-position "Async runtimes in Rust" lines :test #'equal))
         (i-report (cl-position-if (lambda (l) (string-match-p "Conductor Report" l)) lines))
         (i-next (cl-position "## Next section" lines :test #'equal)))
    (ct-log "  buffer:\n%s" text)
    (ct-check (and i-topic i-report i-next (= i-topic 2) (< i-topic i-report) (< i-report i-next))
              "report not under the topic")
    (ct-check (string-match-p (regexp-quote "[Tokio 1.0 released](https://tokio.rs/blog/2020-12-tokio-1-0)")
                              (replace-regexp-in-string "\\\\" "" text))
              "no citation line")))

(ct-test "hover on a cited URL shows the source's title"
  (goto-char (point-min))
  (ct-check (search-forward "https://tokio.rs/blog" nil t) "no cited URL")
  (backward-char 5)
  ;; eglot sends didChange from an idle timer; flush it before a raw request, as its own commands do.
  (eglot--signal-textDocument/didChange)
  (let* ((hover (jsonrpc-request ct-server :textDocument/hover (eglot--TextDocumentPositionParams)))
         (contents (plist-get hover :contents))
         (value (if (stringp contents) contents (plist-get contents :value))))
    (ct-log "  hover: %S" value)
    (ct-check (and value (string-match-p "Tokio 1.0 released" value)) "hover has no title: %S" hover)))

(ignore-errors (eglot-shutdown ct-server))
(let ((passed (cl-count-if (lambda (r) (plist-get r :ok)) ct-results))
      (failed (cl-count-if-not (lambda (r) (plist-get r :ok)) ct-results)))
  (with-temp-file (getenv "CONDUCTOR_TEST_RESULTS")
    (insert (format "%d %d\n" passed failed))))
(kill-emacs 0)
;;; conductor-eglot-test.el ends here
