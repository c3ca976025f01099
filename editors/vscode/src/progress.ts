// Shows the server's work-done progress (window/workDoneProgress/create) as a notification with a
// Cancel button. vscode-languageclient's built-in handler only shows it in the status bar, without
// a way to cancel; this feature is registered after the built-in one, so its handler wins.

import * as vscode from "vscode";
import {
  BaseLanguageClient,
  ClientCapabilities,
  FeatureState,
  ProgressToken,
  StaticFeature,
  WorkDoneProgress,
  WorkDoneProgressBegin,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  WorkDoneProgressReport,
} from "vscode-languageclient/node";

export interface ProgressListener {
  onDidChangeActive(active: number, title: string | undefined): void;
}

class NotificationProgress {
  private reporter: vscode.Progress<{ message?: string; increment?: number }> | undefined;
  private pending: (WorkDoneProgressBegin | WorkDoneProgressReport)[] = [];
  private lastPercentage = 0;
  private finished = false;
  private resolveDone!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));
  private readonly subscription: vscode.Disposable;
  title: string | undefined;

  constructor(
    private readonly client: BaseLanguageClient,
    private readonly token: ProgressToken,
    private readonly onEnd: (part: NotificationProgress) => void,
    private readonly onBegin: (part: NotificationProgress) => void,
  ) {
    this.subscription = client.onProgress(WorkDoneProgress.type, token, (value) => {
      switch (value.kind) {
        case "begin":
          this.begin(value);
          break;
        case "report":
          this.report(value);
          break;
        case "end":
          this.end();
          break;
      }
    });
  }

  private begin(params: WorkDoneProgressBegin): void {
    if (this.finished) return;
    this.title = params.title;
    this.onBegin(this);
    this.pending.push(params);
    void vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `Conductor: ${params.title}`,
        cancellable: params.cancellable === true,
      },
      (progress, cancellation) => {
        this.reporter = progress;
        for (const p of this.pending) this.apply(p);
        this.pending = [];
        cancellation.onCancellationRequested(() => {
          void this.client.sendNotification(WorkDoneProgressCancelNotification.type, { token: this.token });
        });
        return this.done;
      },
    );
  }

  private report(params: WorkDoneProgressReport): void {
    if (this.reporter) this.apply(params);
    else this.pending.push(params);
  }

  private apply(params: WorkDoneProgressBegin | WorkDoneProgressReport): void {
    let increment: number | undefined;
    if (typeof params.percentage === "number") {
      increment = Math.max(0, params.percentage - this.lastPercentage);
      this.lastPercentage = Math.max(this.lastPercentage, params.percentage);
    }
    this.reporter?.report({ message: params.message, increment });
  }

  end(): void {
    if (this.finished) return;
    this.finished = true;
    this.subscription.dispose();
    this.resolveDone();
    this.onEnd(this);
  }
}

export class NotificationProgressFeature implements StaticFeature {
  private readonly parts = new Set<NotificationProgress>();
  private readonly begun = new Set<NotificationProgress>();

  constructor(
    private readonly client: BaseLanguageClient,
    private readonly listener: ProgressListener,
  ) {}

  fillClientCapabilities(capabilities: ClientCapabilities): void {
    capabilities.window = capabilities.window ?? {};
    capabilities.window.workDoneProgress = true;
  }

  getState(): FeatureState {
    return { kind: "static" };
  }

  initialize(): void {
    this.client.onRequest(WorkDoneProgressCreateRequest.type, (params) => {
      const part = new NotificationProgress(
        this.client,
        params.token,
        (p) => {
          this.parts.delete(p);
          this.begun.delete(p);
          this.changed();
        },
        (p) => {
          this.begun.add(p);
          this.changed();
        },
      );
      this.parts.add(part);
    });
  }

  private changed(): void {
    const last = [...this.begun].pop();
    this.listener.onDidChangeActive(this.begun.size, last?.title);
  }

  clear(): void {
    for (const part of [...this.parts]) part.end();
    this.parts.clear();
    this.begun.clear();
    this.changed();
  }
}
