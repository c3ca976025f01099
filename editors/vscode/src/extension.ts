// Conductor for VS Code: a thin client over the conductor-lsp language server (PRODUCT.md §4).

import * as fs from "node:fs";
import * as vscode from "vscode";
import {
  CloseAction,
  CloseHandlerResult,
  DidChangeConfigurationNotification,
  ErrorAction,
  ErrorHandler,
  ErrorHandlerResult,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";
import {
  API_KEYS,
  ApiKeySpec,
  ExplicitSettings,
  SERVER_COMMANDS,
  ServerSettings,
  buildServerEnv,
  describeResult,
  envFromSecretStorageKey,
  headingTopic,
  isCancellation,
  resolveServerCommand,
  secretStorageKey,
  settingsRemoved,
  toServerSettings,
  topicFromSelection,
} from "./config";
import { NotificationProgressFeature } from "./progress";

const SUPPORTED_LANGUAGES = ["markdown", "plaintext"];

function isExecutableFile(p: string): boolean {
  try {
    if (!fs.statSync(p).isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function explicitValue<T>(cfg: vscode.WorkspaceConfiguration, key: string): T | undefined {
  const i = cfg.inspect<T>(key);
  if (!i) return undefined;
  return i.workspaceFolderValue ?? i.workspaceValue ?? i.globalValue;
}

export function readExplicitSettings(): ExplicitSettings {
  const cfg = vscode.workspace.getConfiguration("conductor");
  return {
    providers: explicitValue(cfg, "providers"),
    maxSources: explicitValue(cfg, "maxSources"),
    timeout: explicitValue(cfg, "timeout"),
    citationStyle: explicitValue(cfg, "citationStyle"),
    placement: explicitValue(cfg, "placement"),
    llmBackend: explicitValue(cfg, "llm.backend"),
    llmModel: explicitValue(cfg, "llm.model"),
  };
}

type StatusState = "starting" | "ready" | "researching" | "stopped" | "error" | "restricted";

class Conductor implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private readonly output = vscode.window.createOutputChannel("Conductor", { log: true });
  private readonly status = vscode.window.createStatusBarItem("conductor.status", vscode.StatusBarAlignment.Left, 10);
  private readonly disposables: vscode.Disposable[] = [];
  private crashes: number[] = [];
  private lastSent: ServerSettings = {};
  private running = new Map<number, { title: string; cts?: vscode.CancellationTokenSource }>();
  private nextRunId = 1;
  private progressActive = 0;
  private progressTitle: string | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.status.name = "Conductor";
    this.disposables.push(this.output, this.status);
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    if (this.starting) return this.starting;
    this.starting = this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<void> {
    if (!vscode.workspace.isTrusted) {
      this.setStatus("restricted");
      return;
    }
    const cfg = vscode.workspace.getConfiguration("conductor");
    const resolved = resolveServerCommand(
      cfg.get<string>("server.path"),
      process.env.PATH,
      isExecutableFile,
      process.env.HOME,
      vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    );
    if (!resolved.found) {
      this.setStatus("error", "The conductor-lsp binary was not found");
      const msg = resolved.fromSetting
        ? `Conductor: conductor.server.path is "${resolved.command}", which is not an executable file.`
        : "Conductor: cannot find the language server `conductor-lsp` on PATH. Install it (cargo install --path . in the Conductor repository) or set conductor.server.path.";
      this.output.appendLine(`[conductor] ${msg}`);
      void vscode.window.showErrorMessage(msg, "Open Settings", "Show Output").then((choice) => {
        if (choice === "Open Settings") void vscode.commands.executeCommand("workbench.action.openSettings", "conductor.server.path");
        if (choice === "Show Output") this.output.show(true);
      });
      return;
    }

    const keys = await this.readKeys();
    const env = buildServerEnv(process.env, keys);
    const mapped = toServerSettings(readExplicitSettings());
    for (const w of mapped.warnings) this.output.appendLine(`[conductor] setting ignored: ${w}`);
    this.lastSent = mapped.settings;
    this.output.appendLine(
      `[conductor] starting ${resolved.command} --stdio (keys from secret storage: ${
        Object.entries(keys).filter(([, v]) => v).map(([k]) => k).join(", ") || "none"
      })`,
    );

    const serverOptions: ServerOptions = {
      command: resolved.command,
      transport: TransportKind.stdio,
      options: { env },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: SUPPORTED_LANGUAGES.flatMap((language) => [
        { scheme: "file", language },
        { scheme: "untitled", language },
      ]),
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions: mapped.settings,
      errorHandler: this.errorHandler(),
      initializationFailedHandler: (error) => {
        this.output.appendLine(`[conductor] initialization failed: ${String(error)}`);
        void this.showError(`Conductor: the language server failed to initialize: ${String(error)}`);
        return false;
      },
      middleware: {
        executeCommand: async (command, args, next) => {
          if (command === SERVER_COMMANDS.research || command === SERVER_COMMANDS.refresh) {
            if (!this.checkTrust()) return undefined;
            const first = args[0] as { topic?: string } | undefined;
            return this.track(command, first?.topic, () => next(command, args));
          }
          return next(command, args);
        },
      },
    };

    const client = new LanguageClient("conductor", "Conductor", serverOptions, clientOptions);
    client.registerFeature(
      new NotificationProgressFeature(client, {
        onDidChangeActive: (active, title) => {
          this.progressActive = active;
          this.progressTitle = title;
          this.refreshStatus();
        },
      }),
    );
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) this.setStatus("ready");
      else if (e.newState === State.Starting) this.setStatus("starting");
      else if (e.newState === State.Stopped && this.client === client) this.setStatus("stopped");
    });
    this.client = client;
    this.setStatus("starting");
    try {
      await client.start();
      this.refreshStatus();
    } catch (error) {
      this.setStatus("error", String(error));
      this.output.appendLine(`[conductor] failed to start: ${String(error)}`);
      void this.showError(`Conductor: could not start the language server (${resolved.command}): ${String(error)}`);
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    for (const run of this.running.values()) run.cts?.cancel();
    if (client) {
      try {
        if (client.isRunning() || client.state === State.Starting) await client.stop(2000);
      } catch (error) {
        this.output.appendLine(`[conductor] stop: ${String(error)}`);
      }
      await client.dispose().catch(() => undefined);
    }
    this.setStatus("stopped");
  }

  async restart(): Promise<void> {
    this.output.appendLine("[conductor] restarting the language server");
    await this.stop();
    this.crashes = [];
    await this.start();
  }

  scheduleRestart(reason: string): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.output.appendLine(`[conductor] ${reason}`);
      void this.restart();
    }, 250);
  }

  private errorHandler(): ErrorHandler {
    return {
      error: (): ErrorHandlerResult => ({ action: ErrorAction.Continue, handled: true }),
      closed: (): CloseHandlerResult => {
        const now = Date.now();
        this.crashes = this.crashes.filter((t) => now - t < 3 * 60_000);
        this.crashes.push(now);
        this.running.clear();
        this.progressActive = 0;
        if (this.crashes.length <= 4) {
          this.output.appendLine("[conductor] the language server exited unexpectedly; restarting it");
          void vscode.window.showWarningMessage("Conductor: the language server stopped unexpectedly and was restarted.", "Show Output").then((c) => {
            if (c) this.output.show(true);
          });
          return { action: CloseAction.Restart, handled: true };
        }
        this.setStatus("error", "The language server crashed repeatedly");
        void vscode.window
          .showErrorMessage(
            "Conductor: the language server crashed 5 times in 3 minutes and was not restarted. Its last messages are in the output.",
            "Show Output",
            "Restart Server",
          )
          .then((c) => {
            if (c === "Show Output") this.output.show(true);
            if (c === "Restart Server") void this.restart();
          });
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    };
  }

  // ---------------------------------------------------------------- settings and keys

  async readKeys(): Promise<Record<string, string | undefined>> {
    const keys: Record<string, string | undefined> = {};
    for (const spec of API_KEYS) {
      // Never let an unavailable keyring block the server's start.
      keys[spec.env] = await Promise.race([
        Promise.resolve(this.context.secrets.get(secretStorageKey(spec.env))).catch(() => undefined),
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 3000)),
      ]);
    }
    return keys;
  }

  onConfigurationChanged(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration("conductor")) return;
    if (e.affectsConfiguration("conductor.server.path")) {
      this.scheduleRestart("conductor.server.path changed");
      return;
    }
    if (e.affectsConfiguration("conductor.trace")) return; // handled by vscode-languageclient
    const mapped = toServerSettings(readExplicitSettings());
    for (const w of mapped.warnings) this.output.appendLine(`[conductor] setting ignored: ${w}`);
    if (settingsRemoved(this.lastSent, mapped.settings)) {
      // The server cannot "unset" a value; restart it so config.toml and defaults apply again.
      this.scheduleRestart("a Conductor setting was reset");
      return;
    }
    this.lastSent = mapped.settings;
    if (this.client?.isRunning()) {
      void this.client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { conductor: mapped.settings },
      });
    }
  }

  async setApiKey(): Promise<void> {
    const keys = await this.readKeys();
    const pick = await vscode.window.showQuickPick(
      API_KEYS.map((spec) => ({
        label: spec.label,
        description: spec.env,
        detail: keys[spec.env] ? "set (choose to replace or remove it)" : process.env[spec.env] ? "not set here; inherited from the environment" : "not set",
        spec,
      })),
      { title: "Conductor: Set API Key", placeHolder: "Which key?", ignoreFocusOut: true },
    );
    if (!pick) return;
    const spec: ApiKeySpec = pick.spec;
    const value = await vscode.window.showInputBox({
      title: `Conductor: ${spec.label} API key`,
      prompt: `Stored in VS Code's secret storage and given to the server as ${spec.env}. Leave empty to remove the stored key.`,
      password: true,
      ignoreFocusOut: true,
    });
    if (value === undefined) return;
    if (value.trim() === "") {
      await this.context.secrets.delete(secretStorageKey(spec.env));
      void vscode.window.showInformationMessage(`Conductor: removed the ${spec.label} key; the server restarts without it.`);
    } else {
      await this.context.secrets.store(secretStorageKey(spec.env), value.trim());
      void vscode.window.showInformationMessage(`Conductor: saved the ${spec.label} key; the server restarts to use it.`);
    }
    // secrets.onDidChange schedules the restart (also when another window changes a key).
  }

  // ---------------------------------------------------------------- research commands

  private checkTrust(): boolean {
    if (vscode.workspace.isTrusted) return true;
    void vscode.window
      .showWarningMessage(
        "Conductor: research is disabled in Restricted Mode (it sends text to search providers and reads workspace notes). Trust this workspace to use it.",
        "Manage Workspace Trust",
      )
      .then((c) => {
        if (c) void vscode.commands.executeCommand("workbench.trust.manage");
      });
    return false;
  }

  private async ensureClient(): Promise<LanguageClient | undefined> {
    if (!this.checkTrust()) return undefined;
    if (!this.client) await this.start();
    if (this.starting) await this.starting;
    const client = this.client;
    if (!client) return undefined;
    if (!client.isRunning()) {
      try {
        await client.start();
      } catch {
        void this.showError("Conductor: the language server is not running. Use “Conductor: Restart Server” or see the output.");
        return undefined;
      }
    }
    return client;
  }

  private activeNote(): vscode.TextEditor | undefined {
    const editor = vscode.window.activeTextEditor;
    if (!editor || !SUPPORTED_LANGUAGES.includes(editor.document.languageId)) {
      void vscode.window.showInformationMessage("Conductor: open a markdown note first.");
      return undefined;
    }
    return editor;
  }

  /** Runs a server command, with the status bar item and a message about the result. */
  async track<T>(command: string, title: string | undefined, run: (cts: vscode.CancellationTokenSource) => Promise<T>): Promise<T | undefined> {
    const id = this.nextRunId++;
    const cts = new vscode.CancellationTokenSource();
    this.running.set(id, { title: title ?? "", cts });
    this.refreshStatus();
    try {
      const result = await run(cts);
      const msg = describeResult(result, command === SERVER_COMMANDS.refresh ? "refresh" : "research");
      this.output.appendLine(`[conductor] ${command}: ${JSON.stringify(result)}`);
      if (msg.level === "info") void vscode.window.showInformationMessage(msg.text);
      else void vscode.window.showWarningMessage(msg.text);
      return result;
    } catch (error) {
      if (cts.token.isCancellationRequested || isCancellation(error)) {
        this.output.appendLine(`[conductor] ${command}: cancelled`);
        void vscode.window.showInformationMessage("Conductor: research cancelled; the note was not changed.");
        return undefined;
      }
      const text = error instanceof Error ? error.message : String(error);
      this.output.appendLine(`[conductor] ${command} failed: ${text}`);
      void this.showError(`Conductor: ${command === SERVER_COMMANDS.refresh ? "refresh" : "research"} failed: ${text}`);
      return undefined;
    } finally {
      this.running.delete(id);
      cts.dispose();
      this.refreshStatus();
    }
  }

  private async execute(command: string, args: unknown[], title?: string): Promise<unknown> {
    const client = await this.ensureClient();
    if (!client) return undefined;
    return this.track(command, title, (cts) =>
      client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }, cts.token),
    );
  }

  async researchSelection(): Promise<void> {
    const editor = this.activeNote();
    if (!editor) return;
    const doc = editor.document;
    let range: vscode.Range = editor.selection;
    let topic: string | undefined;
    if (editor.selection.isEmpty) {
      const line = doc.lineAt(editor.selection.active.line);
      topic = headingTopic(line.text);
      if (!topic) {
        void vscode.window.showInformationMessage("Conductor: select the topic to research, or put the cursor on a heading.");
        return;
      }
      range = line.range;
    }
    const client = await this.ensureClient();
    if (!client) return;
    const arg: Record<string, unknown> = {
      uri: client.code2ProtocolConverter.asUri(doc.uri),
      range: client.code2ProtocolConverter.asRange(range),
    };
    if (topic) arg.topic = topic;
    await this.execute(SERVER_COMMANDS.research, [arg], topic ?? topicFromSelection(doc.getText(range)));
  }

  async researchTopic(): Promise<void> {
    const editor = this.activeNote();
    if (!editor) return;
    const selected = editor.selection.isEmpty ? "" : topicFromSelection(editor.document.getText(editor.selection), 200);
    const topic = await vscode.window.showInputBox({
      title: "Conductor: Research Topic",
      prompt: "What should Conductor research? The report is inserted below the cursor line (or as conductor.placement says).",
      value: selected,
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() === "" ? "Enter a topic" : undefined),
    });
    if (!topic) return;
    const client = await this.ensureClient();
    if (!client) return;
    const doc = editor.document;
    const range = editor.selection.isEmpty ? doc.lineAt(editor.selection.active.line).range : editor.selection;
    await this.execute(
      SERVER_COMMANDS.research,
      [
        {
          uri: client.code2ProtocolConverter.asUri(doc.uri),
          range: client.code2ProtocolConverter.asRange(range),
          topic: topic.trim(),
        },
      ],
      topic.trim(),
    );
  }

  async refreshReport(): Promise<void> {
    const editor = this.activeNote();
    if (!editor) return;
    const client = await this.ensureClient();
    if (!client) return;
    await this.execute(
      SERVER_COMMANDS.refresh,
      [
        {
          uri: client.code2ProtocolConverter.asUri(editor.document.uri),
          range: client.code2ProtocolConverter.asRange(editor.selection),
        },
      ],
      "refresh",
    );
  }

  async cancelResearch(): Promise<void> {
    const client = this.client;
    if (!client || !client.isRunning()) {
      void vscode.window.showInformationMessage("Conductor: no research is running.");
      return;
    }
    const ours = [...this.running.values()];
    try {
      await client.sendRequest(ExecuteCommandRequest.type, { command: SERVER_COMMANDS.cancel, arguments: [] });
    } catch (error) {
      this.output.appendLine(`[conductor] conductor.cancel failed: ${String(error)}`);
    }
    // Requests this extension sent itself are also cancelled with $/cancelRequest.
    for (const run of ours) run.cts?.cancel();
    if (ours.length === 0 && this.progressActive === 0) {
      void vscode.window.showInformationMessage("Conductor: no research is running.");
    }
  }

  // ---------------------------------------------------------------- status bar

  private setStatus(state: StatusState, detail?: string): void {
    const s = this.status;
    s.backgroundColor = undefined;
    switch (state) {
      case "starting":
        s.text = "$(loading~spin) Conductor";
        s.tooltip = "Conductor: starting the language server";
        s.command = "conductor.showOutput";
        break;
      case "ready":
        s.text = "$(book) Conductor";
        s.tooltip = "Conductor is ready: select a topic and use the lightbulb (Ctrl+.) or “Conductor: Research Selection”. Click for the output.";
        s.command = "conductor.showOutput";
        break;
      case "researching":
        s.text = `$(sync~spin) Conductor: ${detail ?? "researching"}`;
        s.tooltip = "Conductor is researching. Click to cancel.";
        s.command = "conductor.cancelResearch";
        break;
      case "stopped":
        s.text = "$(circle-slash) Conductor";
        s.tooltip = "Conductor: the language server is stopped. Click to restart it.";
        s.command = "conductor.restartServer";
        break;
      case "error":
        s.text = "$(error) Conductor";
        s.tooltip = `Conductor: ${detail ?? "error"}. Click for the output.`;
        s.command = "conductor.showOutput";
        s.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
        break;
      case "restricted":
        s.text = "$(shield) Conductor";
        s.tooltip = "Conductor is disabled in Restricted Mode. Click to manage workspace trust.";
        s.command = "workbench.trust.manage";
        break;
    }
    s.show();
  }

  private refreshStatus(): void {
    if (this.running.size > 0 || this.progressActive > 0) {
      const titles = [...this.running.values()].map((r) => r.title).filter((t) => t);
      const title = this.progressTitle ?? (titles.length > 0 ? `researching “${titles[titles.length - 1]}”` : "researching");
      const n = Math.max(this.running.size, this.progressActive);
      this.setStatus("researching", n > 1 ? `${title} (+${n - 1})` : title);
    } else if (this.client?.isRunning()) {
      this.setStatus("ready");
    }
  }

  private async showError(text: string): Promise<void> {
    const c = await vscode.window.showErrorMessage(text, "Show Output");
    if (c) this.output.show(true);
  }

  showOutput(): void {
    this.output.show(true);
  }

  dispose(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    void this.stop();
    for (const d of this.disposables) d.dispose();
  }
}

let conductor: Conductor | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const c = new Conductor(context);
  conductor = c;
  context.subscriptions.push(
    c,
    vscode.commands.registerCommand("conductor.researchSelection", () => c.researchSelection()),
    vscode.commands.registerCommand("conductor.researchTopic", () => c.researchTopic()),
    vscode.commands.registerCommand("conductor.cancelResearch", () => c.cancelResearch()),
    vscode.commands.registerCommand("conductor.refreshReport", () => c.refreshReport()),
    vscode.commands.registerCommand("conductor.setApiKey", () => c.setApiKey()),
    vscode.commands.registerCommand("conductor.restartServer", () => c.restart()),
    vscode.commands.registerCommand("conductor.showOutput", () => c.showOutput()),
    vscode.workspace.onDidChangeConfiguration((e) => c.onConfigurationChanged(e)),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void c.start()),
    context.secrets.onDidChange((e) => {
      const env = envFromSecretStorageKey(e.key);
      if (env) c.scheduleRestart(`${env} changed in secret storage`);
    }),
  );
  await c.start();
}

export async function deactivate(): Promise<void> {
  await conductor?.stop();
  conductor = undefined;
}
