// Unit tests of the extension's own logic (no VS Code needed): node --test out/test/unit/
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import {
  API_KEYS,
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
} from "../../src/config";

describe("toServerSettings (VS Code settings → initializationOptions)", () => {
  it("sends nothing when nothing was set, so config.toml and env keep working", () => {
    assert.deepEqual(toServerSettings({}), { settings: {}, warnings: [] });
  });

  it("maps every camelCase setting to the server's snake_case keys", () => {
    const { settings, warnings } = toServerSettings({
      providers: ["wikipedia", "hackernews"],
      maxSources: 5,
      timeout: 12.5,
      citationStyle: "numbered",
      placement: "end",
      llmBackend: "ollama",
      llmModel: " llama3.2 ",
    });
    assert.deepEqual(warnings, []);
    assert.deepEqual(settings, {
      providers: ["wikipedia", "hackernews"],
      max_sources: 5,
      timeout: 12.5,
      citation_style: "numbered",
      placement: "end",
      llm: { backend: "ollama", model: "llama3.2" },
    });
  });

  it("treats llm backend 'auto', an empty model and an empty provider list as unset", () => {
    assert.deepEqual(toServerSettings({ llmBackend: "auto", llmModel: "", providers: [] }).settings, {});
  });

  it("normalises provider names, drops duplicates and unknown names with a warning", () => {
    const { settings, warnings } = toServerSettings({ providers: ["Wikipedia", "wikipedia", "google", 3] });
    assert.deepEqual(settings.providers, ["wikipedia"]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /google/);
  });

  it("drops invalid values with a warning instead of sending them", () => {
    const { settings, warnings } = toServerSettings({
      maxSources: 0,
      timeout: -1,
      citationStyle: "apa",
      placement: "top",
      llmBackend: "gemini",
      providers: "wikipedia",
    });
    assert.deepEqual(settings, {});
    assert.equal(warnings.length, 6);
  });

  it("rejects fractional maxSources", () => {
    assert.equal(toServerSettings({ maxSources: 2.5 }).settings.max_sources, undefined);
  });

  it("never carries API keys", () => {
    const json = JSON.stringify(toServerSettings({ providers: ["tavily"], llmBackend: "openai" }));
    assert.doesNotMatch(json, /API_KEY|key/i);
  });
});

describe("settingsRemoved", () => {
  it("is true when a key that was sent is no longer set", () => {
    assert.equal(settingsRemoved({ max_sources: 3 }, {}), true);
    assert.equal(settingsRemoved({ llm: { backend: "none", model: "x" } }, { llm: { backend: "none" } }), true);
  });
  it("is false for changed or added values", () => {
    assert.equal(settingsRemoved({ max_sources: 3 }, { max_sources: 4, timeout: 2 }), false);
    assert.equal(settingsRemoved({}, { placement: "end" }), false);
  });
});

describe("buildServerEnv (secret storage → server environment)", () => {
  it("passes every key in SecretStorage as its environment variable", () => {
    const env = buildServerEnv(
      { PATH: "/usr/bin" },
      {
        TAVILY_API_KEY: "tv",
        BRAVE_API_KEY: "br",
        EXA_API_KEY: "ex",
        OPENAI_API_KEY: "oa",
        ANTHROPIC_API_KEY: " an ",
      },
    );
    assert.deepEqual(env, {
      PATH: "/usr/bin",
      TAVILY_API_KEY: "tv",
      BRAVE_API_KEY: "br",
      EXA_API_KEY: "ex",
      OPENAI_API_KEY: "oa",
      ANTHROPIC_API_KEY: "an",
    });
  });

  it("keeps inherited variables, lets a stored key win, and ignores empty or unknown keys", () => {
    const env = buildServerEnv(
      { TAVILY_API_KEY: "from-shell", BRAVE_API_KEY: "shell-brave", HOME: "/root", UNSET: undefined },
      { TAVILY_API_KEY: "stored", BRAVE_API_KEY: "  ", SOMETHING_ELSE: "x" },
    );
    assert.equal(env.TAVILY_API_KEY, "stored");
    assert.equal(env.BRAVE_API_KEY, "shell-brave");
    assert.equal(env.HOME, "/root");
    assert.equal("UNSET" in env, false);
    assert.equal("SOMETHING_ELSE" in env, false);
  });

  it("covers the five contract keys, each with its own secret storage slot", () => {
    assert.deepEqual(
      API_KEYS.map((k) => k.env),
      ["TAVILY_API_KEY", "BRAVE_API_KEY", "EXA_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"],
    );
    for (const k of API_KEYS) assert.equal(envFromSecretStorageKey(secretStorageKey(k.env)), k.env);
    assert.equal(envFromSecretStorageKey("conductor.apiKey.PATH"), undefined);
    assert.equal(envFromSecretStorageKey("other.TAVILY_API_KEY"), undefined);
  });
});

describe("resolveServerCommand", () => {
  const exe = new Set(["/opt/bin/conductor-lsp", "/home/u/bin/conductor-lsp", "/ws/target/debug/conductor-lsp"]);
  const isExe = (p: string) => exe.has(p);

  it("finds conductor-lsp on PATH when the setting is empty", () => {
    assert.deepEqual(resolveServerCommand("", "/usr/bin:/opt/bin", isExe, "/home/u"), {
      command: "/opt/bin/conductor-lsp",
      found: true,
      fromSetting: false,
    });
  });

  it("reports a missing binary", () => {
    assert.deepEqual(resolveServerCommand(undefined, "/usr/bin", isExe, "/home/u"), {
      command: "conductor-lsp",
      found: false,
      fromSetting: false,
    });
  });

  it("expands ~ and resolves relative paths against the workspace", () => {
    assert.equal(resolveServerCommand("~/bin/conductor-lsp", "", isExe, "/home/u").found, true);
    const rel = resolveServerCommand("./target/debug/conductor-lsp", "", isExe, "/home/u", "/ws");
    assert.deepEqual(rel, { command: "/ws/target/debug/conductor-lsp", found: true, fromSetting: true });
    assert.equal(resolveServerCommand("/nope/conductor-lsp", "/opt/bin", isExe, "/home/u").found, false);
  });
});

describe("headingTopic and topicFromSelection", () => {
  it("reads ATX headings", () => {
    assert.equal(headingTopic("## Async runtimes in Rust"), "Async runtimes in Rust");
    assert.equal(headingTopic("# Title #"), "Title");
    assert.equal(headingTopic("   ### spaced"), "spaced");
    assert.equal(headingTopic("####### too deep"), undefined);
    assert.equal(headingTopic("#hashtag"), undefined);
    assert.equal(headingTopic("plain text"), undefined);
    assert.equal(headingTopic("## "), undefined);
  });
  it("makes a selection one short line", () => {
    assert.equal(topicFromSelection("  tokio\n  runtime \t internals "), "tokio runtime internals");
    assert.equal(topicFromSelection("x".repeat(100), 10), "xxxxxxxxx…");
  });
});

describe("describeResult", () => {
  it("reports inserted reports and their source count", () => {
    assert.deepEqual(describeResult({ applied: true, sources: 3, failed: [] }), {
      level: "info",
      text: "Conductor: inserted a report citing 3 sources.",
    });
    assert.equal(describeResult({ applied: true, sources: 1, failed: [] }, "refresh").text, "Conductor: refreshed the report citing 1 source.");
  });
  it("names each failed provider and why", () => {
    const m = describeResult({ applied: true, sources: 2, failed: [{ provider: "brave", error: "rate limited" }] });
    assert.equal(m.level, "warning");
    assert.match(m.text, /brave \(rate limited\)/);
  });
  it("warns when nothing was inserted", () => {
    const m = describeResult({ applied: false, sources: 0, failed: [{ provider: "wikipedia", error: "timed out" }] });
    assert.equal(m.level, "warning");
    assert.match(m.text, /not inserted.*wikipedia \(timed out\)/);
  });
  it("reports a cancelled run as cancelled, not as a failure", () => {
    assert.deepEqual(describeResult({ applied: false, cancelled: true, sources: 0, failed: [] }), {
      level: "info",
      text: "Conductor: research cancelled; the note was not changed.",
    });
  });
  it("copes with an unexpected answer", () => {
    assert.equal(describeResult(null).level, "info");
    assert.equal(describeResult({ applied: "yes" }).level, "info");
  });
});

describe("isCancellation", () => {
  it("recognises LSP RequestCancelled", () => {
    assert.equal(isCancellation({ code: -32800, message: "x" }), true);
    assert.equal(isCancellation(new Error("Request got cancelled")), true);
    assert.equal(isCancellation({ code: -32603, message: "internal" }), false);
    assert.equal(isCancellation(undefined), false);
  });
});
