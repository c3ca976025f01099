// Pure logic of the extension: no `vscode` import here, so it is unit-tested with node's test runner.

import * as path from "node:path";

/**
 * Provider names the server knows, in the order of its registry (src/providers/registry.rs). Checked
 * against `conductor-lsp providers --format json` by test/unit/registry.test.ts.
 */
export const PROVIDERS = [
  "tavily",
  "brave",
  "exa",
  "searxng",
  "wikipedia",
  "hackernews",
  "arxiv",
  "notes",
] as const;
export type Provider = (typeof PROVIDERS)[number];

export const CITATION_STYLES = ["links", "numbered", "footnotes"] as const;
export const PLACEMENTS = ["below", "replace", "end"] as const;
export const LLM_BACKENDS = ["openai", "anthropic", "ollama", "none"] as const;

/** Commands the server implements (workspace/executeCommand). */
export const SERVER_COMMANDS = {
  research: "conductor.research",
  refresh: "conductor.refresh",
  cancel: "conductor.cancel",
} as const;

/** A secret the user can store with "Conductor: Set API Key…". */
export interface ApiKeySpec {
  /** Environment variable the server reads. */
  env: string;
  label: string;
  kind: "provider" | "llm";
}

/** The providers' keys are those of the server's registry (checked by test/unit/registry.test.ts). */
export const API_KEYS: readonly ApiKeySpec[] = [
  { env: "TAVILY_API_KEY", label: "Tavily", kind: "provider" },
  { env: "BRAVE_API_KEY", label: "Brave Search", kind: "provider" },
  { env: "EXA_API_KEY", label: "Exa", kind: "provider" },
  { env: "OPENAI_API_KEY", label: "OpenAI (LLM)", kind: "llm" },
  { env: "ANTHROPIC_API_KEY", label: "Anthropic (LLM)", kind: "llm" },
];

/** Key under which an API key is kept in VS Code's SecretStorage. */
export function secretStorageKey(env: string): string {
  return `conductor.apiKey.${env}`;
}

/** The API key env var a SecretStorage key belongs to, or undefined if it is not one of ours. */
export function envFromSecretStorageKey(key: string): string | undefined {
  const prefix = "conductor.apiKey.";
  if (!key.startsWith(prefix)) return undefined;
  const env = key.slice(prefix.length);
  return API_KEYS.some((k) => k.env === env) ? env : undefined;
}

/**
 * The environment of the server process: the extension host's environment plus the API keys
 * kept in SecretStorage (a stored key wins over an inherited variable). Keys never go into
 * settings or initializationOptions, only into this environment.
 */
export function buildServerEnv(
  base: Readonly<Record<string, string | undefined>>,
  keys: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(base)) {
    if (value !== undefined) env[name] = value;
  }
  for (const spec of API_KEYS) {
    const value = keys[spec.env]?.trim();
    if (value) env[spec.env] = value;
  }
  return env;
}

/** Values the user set explicitly (user, workspace or folder scope), in VS Code's camelCase shape. */
export interface ExplicitSettings {
  providers?: unknown;
  maxSources?: unknown;
  timeout?: unknown;
  citationStyle?: unknown;
  placement?: unknown;
  llmBackend?: unknown;
  llmModel?: unknown;
}

/** The server's settings schema, snake_case, as sent in initializationOptions and didChangeConfiguration. */
export interface ServerSettings {
  providers?: string[];
  max_sources?: number;
  timeout?: number;
  citation_style?: string;
  placement?: string;
  llm?: { backend?: string; model?: string };
}

export interface MappedSettings {
  settings: ServerSettings;
  /** Human-readable problems with values that were dropped. */
  warnings: string[];
}

function oneOf<T extends string>(allowed: readonly T[], value: unknown): value is T {
  return typeof value === "string" && (allowed as readonly string[]).includes(value);
}

/**
 * Maps the settings the user set explicitly to the server's snake_case schema. Settings left at
 * their default are not sent, so `$XDG_CONFIG_HOME/conductor/config.toml` and environment
 * variables keep working. Invalid values are dropped with a warning.
 */
export function toServerSettings(s: ExplicitSettings): MappedSettings {
  const settings: ServerSettings = {};
  const warnings: string[] = [];
  if (s.providers !== undefined) {
    if (Array.isArray(s.providers)) {
      const names = s.providers.map((p) => (typeof p === "string" ? p.trim().toLowerCase() : p));
      const bad = names.filter((p) => !oneOf(PROVIDERS, p));
      if (bad.length > 0) warnings.push(`conductor.providers: unknown provider(s) ${bad.map((b) => JSON.stringify(b)).join(", ")}`);
      const good = [...new Set(names.filter((p): p is Provider => oneOf(PROVIDERS, p)))];
      // An empty list means "the server's default choice": send nothing.
      if (good.length > 0) settings.providers = good;
    } else {
      warnings.push("conductor.providers: expected a list of provider names");
    }
  }
  if (s.maxSources !== undefined) {
    if (typeof s.maxSources === "number" && Number.isInteger(s.maxSources) && s.maxSources >= 1) {
      settings.max_sources = s.maxSources;
    } else {
      warnings.push("conductor.maxSources: expected a whole number of at least 1");
    }
  }
  if (s.timeout !== undefined) {
    if (typeof s.timeout === "number" && Number.isFinite(s.timeout) && s.timeout > 0) {
      settings.timeout = s.timeout;
    } else {
      warnings.push("conductor.timeout: expected a positive number of seconds");
    }
  }
  if (s.citationStyle !== undefined) {
    if (oneOf(CITATION_STYLES, s.citationStyle)) settings.citation_style = s.citationStyle;
    else warnings.push(`conductor.citationStyle: expected one of ${CITATION_STYLES.join(", ")}`);
  }
  if (s.placement !== undefined) {
    if (oneOf(PLACEMENTS, s.placement)) settings.placement = s.placement;
    else warnings.push(`conductor.placement: expected one of ${PLACEMENTS.join(", ")}`);
  }
  const llm: { backend?: string; model?: string } = {};
  if (s.llmBackend !== undefined && s.llmBackend !== "auto") {
    if (oneOf(LLM_BACKENDS, s.llmBackend)) llm.backend = s.llmBackend;
    else warnings.push(`conductor.llm.backend: expected one of auto, ${LLM_BACKENDS.join(", ")}`);
  }
  if (s.llmModel !== undefined) {
    if (typeof s.llmModel === "string") {
      if (s.llmModel.trim() !== "") llm.model = s.llmModel.trim();
    } else {
      warnings.push("conductor.llm.model: expected a string");
    }
  }
  if (llm.backend !== undefined || llm.model !== undefined) settings.llm = llm;
  return { settings, warnings };
}

/** True when a key sent before is no longer set (the server must restart to fall back to its defaults). */
export function settingsRemoved(before: ServerSettings, after: ServerSettings): boolean {
  for (const key of Object.keys(before) as (keyof ServerSettings)[]) {
    if (after[key] === undefined) return true;
  }
  if (before.llm && after.llm) {
    if (before.llm.backend !== undefined && after.llm.backend === undefined) return true;
    if (before.llm.model !== undefined && after.llm.model === undefined) return true;
  }
  return false;
}

export const DEFAULT_SERVER_COMMAND = "conductor-lsp";

export interface ResolvedCommand {
  /** What to spawn (absolute when found). */
  command: string;
  found: boolean;
  /** Whether the user configured conductor.server.path. */
  fromSetting: boolean;
}

/**
 * Resolves `conductor.server.path` (empty: `conductor-lsp` on PATH). `~` is expanded; a bare name is
 * searched on PATH; a relative path with a slash is taken relative to `cwd`.
 */
export function resolveServerCommand(
  setting: string | undefined,
  envPath: string | undefined,
  isExecutable: (p: string) => boolean,
  home: string | undefined,
  cwd?: string,
): ResolvedCommand {
  let configured = (setting ?? "").trim();
  const fromSetting = configured !== "";
  if (!fromSetting) configured = DEFAULT_SERVER_COMMAND;
  if (home && (configured === "~" || configured.startsWith("~/"))) {
    configured = path.join(home, configured.slice(1));
  }
  if (configured.includes("/") || configured.includes(path.sep)) {
    const full = path.isAbsolute(configured) || !cwd ? configured : path.resolve(cwd, configured);
    return { command: full, found: isExecutable(full), fromSetting };
  }
  for (const dir of (envPath ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, configured);
    if (isExecutable(candidate)) return { command: candidate, found: true, fromSetting };
  }
  return { command: configured, found: false, fromSetting };
}

/** The text of an ATX markdown heading (`## Topic ##` → `Topic`), or undefined. */
export function headingTopic(line: string): string | undefined {
  const m = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line);
  if (!m) return undefined;
  const text = m[1].trim();
  return text === "" ? undefined : text;
}

/** A selection made single-line and trimmed, as the title of a research run. */
export function topicFromSelection(text: string, max = 80): string {
  const single = text.replace(/\s+/g, " ").trim();
  return single.length > max ? `${single.slice(0, max - 1)}…` : single;
}

export interface ResearchResult {
  applied: boolean;
  sources: number;
  failed: { provider: string; error: string }[];
  /** Set by the server when the run was cancelled (nothing was inserted). */
  cancelled?: boolean;
}

export function isResearchResult(value: unknown): value is ResearchResult {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.applied === "boolean" && typeof v.sources === "number" && (v.failed === undefined || Array.isArray(v.failed));
}

export interface UserMessage {
  level: "info" | "warning" | "error";
  text: string;
}

/** What to tell the user after `conductor.research` / `conductor.refresh` answered. */
export function describeResult(value: unknown, what: "research" | "refresh" = "research"): UserMessage {
  if (!isResearchResult(value)) {
    return { level: "info", text: what === "refresh" ? "Conductor: report refreshed." : "Conductor: research finished." };
  }
  const failed = (value.failed ?? [])
    .filter((f) => f && typeof f === "object")
    .map((f) => `${String(f.provider)} (${String(f.error)})`);
  const sources = `${value.sources} source${value.sources === 1 ? "" : "s"}`;
  if (value.cancelled === true && !value.applied) {
    return { level: "info", text: "Conductor: research cancelled; the note was not changed." };
  }
  if (!value.applied) {
    const why = value.sources === 0 && failed.length > 0 ? ` Every provider failed: ${failed.join("; ")}.` : "";
    return { level: "warning", text: `Conductor: the report was not inserted (${sources}).${why}` };
  }
  const verb = what === "refresh" ? "refreshed the report" : "inserted a report";
  if (failed.length > 0) {
    return { level: "warning", text: `Conductor: ${verb} citing ${sources}; failed: ${failed.join("; ")}.` };
  }
  return { level: "info", text: `Conductor: ${verb} citing ${sources}.` };
}

/** The JSON-RPC code of a cancelled request (LSP RequestCancelled). */
export const REQUEST_CANCELLED = -32800;

export function isCancellation(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const e = error as { code?: unknown; message?: unknown };
  return e.code === REQUEST_CANCELLED || (typeof e.message === "string" && /cancel/i.test(e.message));
}
