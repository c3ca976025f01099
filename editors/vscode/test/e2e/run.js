// End-to-end test of the Conductor extension in a real VS Code (code-server 4.100.3 = VS Code 1.100.3)
// driven by Debian's headless Chromium through playwright-core, against the real conductor-lsp and
// loopback providers. Called by scripts/ci.sh; can be run alone:
//   CONDUCTOR_BIN=... CODE_SERVER=.../code-server VSIX=conductor.vsix node test/e2e/run.js
// Writes a screenshot of each step to $SCREENSHOTS (default <repo>/target/e2e-screenshots) and a
// JSON summary to $E2E_RESULTS. Exit status 0 only when every check passed.
"use strict";
const { chromium } = require("playwright-core");
const cp = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const HERE = __dirname;
const EXT_DIR = path.resolve(HERE, "../..");
const REPO = path.resolve(EXT_DIR, "../..");
const BIN = path.resolve(process.env.CONDUCTOR_BIN || path.join(REPO, "target/debug/conductor-lsp"));
const CODE_SERVER = process.env.CODE_SERVER;
const VSIX = path.resolve(process.env.VSIX || path.join(EXT_DIR, "conductor.vsix"));
const SHOTS = path.resolve(process.env.SCREENSHOTS || path.join(REPO, "target/e2e-screenshots"));
const SLOW = Number(process.env.CONDUCTOR_TEST_SLOW || 8);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const RESULTS = process.env.E2E_RESULTS;

const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const results = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let onFailure = async () => {};
let stepNo = 0;
async function step(name, fn) {
  const start = Date.now();
  stepNo += 1;
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - start });
    log(`PASS ${name} (${Date.now() - start} ms)`);
    return true;
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - start, error: String(e && e.stack ? e.stack : e) });
    log(`FAIL ${name} (${Date.now() - start} ms)\n${e && e.stack ? e.stack : e}`);
    await onFailure(`step${stepNo}`).catch(() => {});
    return false;
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

function httpGet(url) {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("error", () => resolve(0));
    req.setTimeout(2000, () => {
      req.destroy();
      resolve(0);
    });
  });
}

async function waitFor(pred, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

const NOTE = [
  "# Design notes",
  "",
  "Async runtimes in Rust",
  "",
  "## Next section",
  "",
  "A slow topic that will be cancelled",
  "",
  "The end.",
  "",
].join("\n");

async function main() {
  check(fs.existsSync(BIN), `server binary ${BIN} not found`);
  check(CODE_SERVER && fs.existsSync(CODE_SERVER), `code-server not found (CODE_SERVER=${CODE_SERVER})`);
  check(fs.existsSync(VSIX), `${VSIX} not found (run vsce package first)`);
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const f of fs.readdirSync(SHOTS)) if (f.startsWith("vscode-")) fs.rmSync(path.join(SHOTS, f));

  const work = fs.mkdtempSync(path.join(os.tmpdir(), "conductor-vscode-e2e-"));
  const ws = path.join(work, "ws");
  const ud = path.join(work, "ud");
  const ext = path.join(work, "ext");
  for (const d of [ws, path.join(ud, "User"), ext, path.join(work, "cache"), path.join(work, "config")]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(ws, "note.md"), NOTE);
  fs.writeFileSync(
    path.join(ud, "User", "settings.json"),
    JSON.stringify(
      {
        "conductor.server.path": BIN,
        "conductor.trace.server": "messages",
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "extensions.autoCheckUpdates": false,
        "extensions.autoUpdate": false,
        "extensions.ignoreRecommendations": true,
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": false,
        "workbench.enableExperiments": false,
        "workbench.secondarySideBar.defaultVisibility": "hidden",
        "chat.commandCenter.enabled": false,
        "security.workspace.trust.enabled": false,
        "editor.hover.delay": 200,
        "editor.minimap.enabled": false,
        "editor.wordWrap": "on",
        "files.autoSave": "off",
        "markdown.validate.enabled": false,
      },
      null,
      2,
    ),
  );
  const cfg = path.join(work, "code-server.yaml");
  fs.writeFileSync(cfg, "auth: none\ncert: false\n");

  // Loopback providers.
  const portFile = path.join(work, "loopback.port");
  const loop = cp.spawn(
    "python3",
    [path.join(EXT_DIR, "../testing/loopback_providers.py"), "--port", "0", "--port-file", portFile, "--log", path.join(work, "loopback.log"), "--slow", String(SLOW)],
    { stdio: "ignore" },
  );
  const loopPort = await waitFor(() => fs.existsSync(portFile) && fs.readFileSync(portFile, "utf8").trim(), 5000, "the loopback server");

  // Hermetic environment for code-server, its extension host and the conductor-lsp it spawns.
  const env = { ...process.env };
  for (const v of [
    "TAVILY_API_KEY", "BRAVE_API_KEY", "BRAVE_SEARCH_API_KEY", "EXA_API_KEY", "SEARXNG_URL", "SEARX_URL",
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OLLAMA_HOST",
    "CONDUCTOR_LLM_MODEL", "CONDUCTOR_MAX_SOURCES", "CONDUCTOR_TIMEOUT", "VSCODE_IPC_HOOK_CLI",
  ]) delete env[v];
  Object.assign(env, {
    CONDUCTOR_PROVIDERS: "wikipedia,hackernews",
    CONDUCTOR_WIKIPEDIA_BASE_URL: `http://127.0.0.1:${loopPort}`,
    CONDUCTOR_HACKERNEWS_BASE_URL: `http://127.0.0.1:${loopPort}`,
    CONDUCTOR_LLM: "none",
    // The fake results carry public URLs: never read them.
    CONDUCTOR_READ: "0",
    CONDUCTOR_CACHE_DIR: path.join(work, "cache"),
    CONDUCTOR_LOG: env.CONDUCTOR_LOG || "info",
    XDG_CONFIG_HOME: path.join(work, "config"),
    XDG_CACHE_HOME: path.join(work, "xdg-cache"),
    XDG_DATA_HOME: path.join(work, "xdg-data"),
  });

  let cs;
  let browser;
  try {
    await step("the .vsix installs into code-server", async () => {
      const out = cp.execFileSync(CODE_SERVER, ["--config", cfg, "--user-data-dir", ud, "--extensions-dir", ext, "--install-extension", VSIX], {
        env,
        encoding: "utf8",
        timeout: 60000,
      });
      check(/successfully installed/i.test(out), `install output: ${out}`);
    });

    const port = await freePort();
    const csLog = fs.openSync(path.join(work, "code-server.log"), "w");
    cs = cp.spawn(
      CODE_SERVER,
      [
        "--config", cfg, "--bind-addr", `127.0.0.1:${port}`, "--auth", "none",
        "--user-data-dir", ud, "--extensions-dir", ext,
        "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust", "--disable-getting-started-override",
        ws,
      ],
      { env, stdio: ["ignore", csLog, csLog], detached: true },
    );
    await waitFor(async () => (await httpGet(`http://127.0.0.1:${port}/healthz`)) === 200, 60000, "code-server /healthz");
    log(`code-server up on ${port}`);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
      env: { ...process.env, XDG_CONFIG_HOME: path.join(work, "browser-config"), XDG_CACHE_HOME: path.join(work, "browser-cache") },
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on("pageerror", (e) => log("pageerror", String(e).slice(0, 200)));
    const shot = async (name) => {
      await page.screenshot({ path: path.join(SHOTS, `vscode-${name}.png`) });
    };
    onFailure = async (tag) => {
      await page.screenshot({ path: path.join(SHOTS, `vscode-FAILED-${tag}.png`) });
      fs.writeFileSync(path.join(SHOTS, `vscode-FAILED-${tag}.html`), await page.content());
    };
    const editorText = async () =>
      (await page.locator(".monaco-editor .view-lines").first().innerText()).replace(/\u00a0/g, " ");
    // Selects the first occurrence of `text` with the Find widget (Ctrl+F, Enter, Escape keeps the match selected).
    const selectText = async (text) => {
      await page.keyboard.press("Control+Home");
      await page.keyboard.press("Control+F");
      await page.waitForSelector(".find-widget.visible textarea, .find-widget.visible input", { timeout: 10000 });
      await page.keyboard.press("Control+A");
      await page.keyboard.type(text);
      await sleep(300);
      await page.keyboard.press("Enter");
      await sleep(200);
      await page.keyboard.press("Escape");
      await sleep(200);
    };
    const notePath = path.join(ws, "note.md");
    // Saves the editor (Ctrl+S) and returns the note's text as written to disk.
    const savedNote = async () => {
      await page.keyboard.press("Control+S");
      await sleep(700);
      return fs.readFileSync(notePath, "utf8");
    };
    // Ctrl+. until the server's code action shows (the server may still be starting).
    const openCodeActions = async (title) => {
      const item = page.locator(".action-widget").getByText(title).first();
      await waitFor(async () => {
        await page.keyboard.press("Control+.");
        try {
          await item.waitFor({ timeout: 3000 });
          return true;
        } catch {
          await page.keyboard.press("Escape");
          return false;
        }
      }, 45000, `the code action ${title}`);
      return item;
    };
    // Picks an entry of the open code action menu with the keyboard, as a user would (arrows, Enter);
    // the menu's pointer block swallows synthetic clicks.
    const pickCodeAction = async (title) => {
      for (let i = 0; i < 20; i++) {
        const focused = page.locator(".action-widget .monaco-list-row.focused");
        const label = (await focused.count()) ? await focused.first().getAttribute("aria-label") : "";
        if (label && title.test(label)) {
          await page.keyboard.press("Enter");
          return;
        }
        await page.keyboard.press("ArrowDown");
        await sleep(100);
      }
      throw new Error(`could not focus the code action ${title}`);
    };
    const notification = (re) => page.locator(".notifications-toasts, .notifications-center").getByText(re).first();

    const opened = await step("VS Code opens the note and the extension starts conductor-lsp", async () => {
      await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`, { waitUntil: "domcontentloaded" });
      await page.waitForSelector(".monaco-workbench", { timeout: 60000 });
      await sleep(2000);
      // Quick Open (Ctrl+P) the note; retry if Enter came before the file list.
      await waitFor(async () => {
        await page.keyboard.press("Control+P");
        await page.waitForSelector(".quick-input-widget input", { timeout: 15000 });
        await page.keyboard.type("note.md");
        await page.locator(".quick-input-list .monaco-list-row").filter({ hasText: "note.md" }).first().waitFor({ timeout: 10000 }).catch(() => {});
        await sleep(300);
        await page.keyboard.press("Enter");
        const ok = await page.waitForSelector(".monaco-editor .view-lines", { timeout: 5000 }).then(() => true, () => false);
        if (!ok) await page.keyboard.press("Escape");
        return ok;
      }, 45000, "the note to open");
      await waitFor(async () => (await editorText()).includes("Async runtimes in Rust"), 15000, "the note in the editor");
      await page.locator(".statusbar").getByText("Conductor").first().waitFor({ timeout: 30000 });
      await shot("01-note-open");
    });
    if (!opened) throw new Error("the note did not open in VS Code; later steps skipped");

    await step("selecting a topic offers “Research …” in the code actions; picking it inserts the report under the topic", async () => {
      await page.locator(".monaco-editor .view-line").first().click();
      await selectText("Async runtimes in Rust");
      await openCodeActions(/Research “Async runtimes in Rust”/);
      await shot("02-code-action-menu");
      await pickCodeAction(/Research “Async runtimes in Rust”/);
      await waitFor(async () => (await editorText()).includes("Conductor Report"), 30000, "the report in the editor");
      await sleep(500);
      await page.keyboard.press("Escape");
      await shot("03-report-inserted");
      const text = await savedNote();
      log("note after research:\n" + text);
      const lines = text.split("\n");
      const iTopic = lines.indexOf("Async runtimes in Rust");
      const iReport = lines.findIndex((l) => l.includes("Conductor Report"));
      const iNext = lines.indexOf("## Next section");
      check(iTopic === 2, `the topic line moved or changed:\n${text}`);
      check(iReport > iTopic && iNext > iReport, `the report is not under the topic:\n${text}`);
      check(lines[iReport].includes("Async runtimes in Rust"), `the report title does not name the topic: ${lines[iReport]}`);
      const body = lines.slice(iReport, iNext).map((l) => l.replace(/\\/g, ""));
      check(body.some((l) => l.includes("[Tokio 1.0 released](https://tokio.rs/blog/2020-12-tokio-1-0)")), `no citation line for the HN source:\n${text}`);
      check(body.some((l) => l.includes("Tokio (software)") && l.includes("wikipedia.org")), `no Wikipedia source:\n${text}`);
      check((text.match(/The end\./g) || []).length === 1, "the text after the report was lost or duplicated");
      check(text.startsWith(NOTE.split("\n").slice(0, 3).join("\n")), "the text before the report changed");
    });

    await step("hovering a citation shows the source's title", async () => {
      await page.keyboard.press("Escape");
      const url = page.locator(".monaco-editor .view-line span").filter({ hasText: /tokio\.rs\/blog/ }).last();
      await url.waitFor({ timeout: 10000 });
      const hover = page.locator(".monaco-hover, .monaco-resizable-hover, .hover-widget").getByText(/Tokio 1\.0 released/).first();
      let shown = false;
      const box = await url.boundingBox();
      if (box) {
        await page.mouse.move(box.x + Math.min(20, box.width / 2), box.y + box.height / 2);
        await sleep(150);
        await page.mouse.move(box.x + Math.min(24, box.width / 2), box.y + box.height / 2);
        shown = await hover.waitFor({ timeout: 6000 }).then(() => true, () => false);
      }
      if (!shown) {
        // Keyboard path: put the cursor on the URL, then Ctrl+K Ctrl+I (editor.action.showHover).
        await url.click();
        await page.keyboard.press("Control+K");
        await page.keyboard.press("Control+I");
        await hover.waitFor({ timeout: 10000 });
      }
      await sleep(300);
      await shot("04-citation-hover");
      const hoverText = await page.locator(".monaco-hover, .monaco-resizable-hover, .hover-widget").filter({ hasText: /Tokio 1\.0 released/ }).first().innerText();
      log("hover:", JSON.stringify(hoverText.slice(0, 300)));
      check(/Tokio 1\.0 released/.test(hoverText), `hover text: ${hoverText}`);
      check(/tokio\.rs/.test(hoverText), `hover has no URL: ${hoverText}`);
      await page.keyboard.press("Escape");
      await page.mouse.move(5, 5);
    });

    await step("“Conductor: Cancel Research” stops a slow run and leaves the note unchanged", async () => {
      await page.locator(".monaco-editor .view-line").first().click();
      const before = await savedNote();
      await selectText("A slow topic that will be cancelled");
      await openCodeActions(/Research “A slow topic that will be cancelled”/);
      await pickCodeAction(/Research “A slow topic that will be cancelled”/);
      const started = Date.now();
      // The server's progress shows as a notification (with a Cancel button) and in the status bar.
      await page.locator(".statusbar").getByText(/Conductor: (Research|researching)/).first().waitFor({ timeout: 10000 });
      await notification(/Research(ing)? “/).waitFor({ timeout: 10000 }).catch(() => log("no progress notification seen"));
      await sleep(1000);
      await shot("05-slow-research-running");
      await page.keyboard.press("F1");
      await page.waitForSelector(".quick-input-widget input", { timeout: 10000 });
      await page.keyboard.type("Conductor: Cancel Research");
      await page.locator(".quick-input-widget").getByText("Cancel Research").first().waitFor({ timeout: 10000 });
      await page.keyboard.press("Enter");
      await notification(/research cancelled/i).waitFor({ timeout: 5000 });
      await page.locator(".statusbar").getByText(/Conductor: (Research|researching)/).first().waitFor({ state: "detached", timeout: 5000 }).catch(() => {});
      await shot("06-research-cancelled");
      const remaining = SLOW * 1000 - (Date.now() - started) + 2500;
      if (remaining > 0) await sleep(remaining);
      await page.keyboard.press("Escape");
      const after = await savedNote();
      await shot("07-note-unchanged-after-cancel");
      check(after === before, `the note changed after cancelling:\n--- before\n${before}\n--- after\n${after}`);
      check(!(await page.locator(".statusbar").getByText(/Conductor: (Research|researching)/).count()), "status bar still says researching");
    });

    await step("the progress notification's Cancel button stops a slow run and leaves the note unchanged", async () => {
      await page.locator(".monaco-editor .view-line").first().click();
      const before = await savedNote();
      await selectText("A slow topic that will be cancelled");
      await openCodeActions(/Research “A slow topic that will be cancelled”/);
      await pickCodeAction(/Research “A slow topic that will be cancelled”/);
      const started = Date.now();
      const toast = page.locator(".notifications-toasts .notification-toast").filter({ hasText: /Research(ing)? “/ }).first();
      await toast.waitFor({ timeout: 10000 });
      await sleep(800);
      await shot("08-progress-notification-with-cancel");
      await toast.getByRole("button", { name: "Cancel" }).click();
      // The server answers the cancelled command with RequestCancelled or with { applied: false }.
      await notification(/research cancelled/i).waitFor({ timeout: 5000 });
      await shot("09-cancelled-from-notification");
      const remaining = SLOW * 1000 - (Date.now() - started) + 2500;
      if (remaining > 0) await sleep(remaining);
      await page.keyboard.press("Escape");
      const after = await savedNote();
      check(after === before, `the note changed after cancelling:\n--- before\n${before}\n--- after\n${after}`);
    });

    const runCommand = async (title) => {
      await page.keyboard.press("F1");
      await page.waitForSelector(".quick-input-widget input", { timeout: 10000 });
      await page.keyboard.type(title);
      await page.locator(".quick-input-widget .monaco-list-row").filter({ hasText: title.replace(/^Conductor: /, "") }).first().waitFor({ timeout: 10000 });
      await page.keyboard.press("Enter");
    };

    await step("“Conductor: Research Topic…” researches a typed topic under the cursor line", async () => {
      await page.locator(".monaco-editor .view-line").first().click();
      await selectText("The end.");
      await page.keyboard.press("End");
      await runCommand("Conductor: Research Topic…");
      await page.locator(".quick-input-widget").getByText(/What should Conductor research/).first().waitFor({ timeout: 10000 });
      await page.keyboard.type("Tokio scheduler");
      await page.keyboard.press("Enter");
      await notification(/inserted a report citing \d+ source/).waitFor({ timeout: 30000 });
      await shot("10-research-topic");
      const text = await savedNote();
      const lines = text.split("\n");
      const iEnd = lines.indexOf("The end.");
      const iReport = lines.findIndex((l) => l.includes("Conductor Report") && l.includes("Tokio scheduler"));
      check(iEnd >= 0 && iReport > iEnd, `the typed topic's report is not under the cursor line:\n${text}`);
    });

    await step("“Conductor: Refresh Report” refreshes the report under the cursor in place", async () => {
      await page.locator(".monaco-editor .view-line").first().click();
      const before = await savedNote();
      const count = (t) => t.split("\n").filter((l) => l.includes("Conductor Report")).length;
      await selectText("Tokio 1.0 released");
      await runCommand("Conductor: Refresh Report");
      await notification(/refreshed the report|Conductor: refresh/).waitFor({ timeout: 30000 });
      await shot("11-refresh-report");
      const after = await savedNote();
      check(count(after) === count(before), `refresh changed the number of reports:\n${after}`);
      check(after.split("\n").slice(0, 3).join("\n") === before.split("\n").slice(0, 3).join("\n"), "refresh changed the text before the report");
      check(after.includes("## Next section") && after.includes("The end."), "refresh lost the user's text");
    });

    await step("“Conductor: Set API Key…” hands the key to a restarted server as TAVILY_API_KEY, not to settings.json", async () => {
      const fakeKey = "tvly-e2e-fake-key-123";
      await page.keyboard.press("F1");
      await page.waitForSelector(".quick-input-widget input", { timeout: 10000 });
      await page.keyboard.type("Conductor: Set API Key");
      await page.locator(".quick-input-widget").getByText("Set API Key").first().waitFor({ timeout: 10000 });
      await page.keyboard.press("Enter");
      await page.locator(".quick-input-widget").getByText("TAVILY_API_KEY").first().waitFor({ timeout: 10000 });
      await page.keyboard.type("Tavily");
      await sleep(300);
      await page.keyboard.press("Enter");
      await page.locator(".quick-input-widget").getByText(/secret storage/).first().waitFor({ timeout: 10000 });
      await page.keyboard.type(fakeKey);
      await shot("12-set-api-key");
      await page.keyboard.press("Enter");
      await notification(/saved the Tavily key/).waitFor({ timeout: 10000 });
      // The restarted server process carries the key in its environment.
      const serverWithKey = () => {
        for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
          try {
            const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
            if (!cmd.includes(BIN) || !cmd.includes("--stdio")) continue;
            const environ = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
            if (environ.includes(`TAVILY_API_KEY=${fakeKey}`)) return pid;
          } catch {
            /* process gone */
          }
        }
        return undefined;
      };
      const pid = await waitFor(async () => serverWithKey(), 20000, "a conductor-lsp process with TAVILY_API_KEY");
      log(`conductor-lsp pid ${pid} has TAVILY_API_KEY from secret storage`);
      await shot("13-key-saved-server-restarted");
      const settings = fs.readFileSync(path.join(ud, "User", "settings.json"), "utf8");
      check(!settings.includes(fakeKey), "the key was written to settings.json");
      // The restarted server still answers: the research code action is offered again.
      await page.keyboard.press("Escape");
      await page.locator(".monaco-editor .view-line").first().click();
      await selectText("A slow topic that will be cancelled");
      await openCodeActions(/Research “A slow topic that will be cancelled”/);
      await page.keyboard.press("Escape");
    });

    await step("a missing server binary is reported clearly", async () => {
      // Point conductor.server.path at nothing, through the Settings editor like a user.
      await page.keyboard.press("F1");
      await page.waitForSelector(".quick-input-widget input", { timeout: 10000 });
      await page.keyboard.type("Preferences: Open User Settings");
      await page.locator(".quick-input-widget").getByText(/^Preferences: Open User Settings$/).first().waitFor({ timeout: 10000 });
      await page.locator(".quick-input-widget").getByText(/^Preferences: Open User Settings$/).first().click();
      await page.waitForSelector(".settings-editor", { timeout: 15000 });
      await sleep(800);
      await page.keyboard.type("conductor.server.path");
      await sleep(800);
      // A machine-overridable setting: code-server lists it under the "Remote" tab.
      if (!(await page.locator(".settings-editor .setting-item-contents").filter({ hasText: /Server: Path/ }).count())) {
        await page.locator(".settings-editor .settings-tabs-widget").getByText(/^Remote/).first().click();
        await sleep(800);
      }
      const input = page.locator(".settings-editor .setting-item-contents").filter({ hasText: /Server: Path/ }).locator("input, textarea").first();
      await input.waitFor({ timeout: 15000 });
      await input.fill(path.join(work, "no-such-conductor-lsp"));
      await input.press("Tab");
      await notification(/not an executable file/).waitFor({ timeout: 20000 });
      await sleep(500);
      await shot("14-missing-binary-message");
      check(await page.locator(".statusbar").getByText("Conductor").count(), "no status bar item");
    });
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (cs && cs.pid) {
      try {
        process.kill(-cs.pid, "SIGTERM");
      } catch {
        /* already gone */
      }
    }
    try {
      loop.kill("SIGTERM");
    } catch {
      /* already gone */
    }
    // Keep the server's log for a person to read.
    const logs = [];
    const walk = (d) => {
      for (const e of fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }) : []) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/Conductor\.log$/.test(e.name)) logs.push(p);
      }
    };
    walk(path.join(ud, "logs"));
    for (const l of logs) fs.copyFileSync(l, path.join(SHOTS, "vscode-conductor-output.log"));
    if (fs.existsSync(path.join(work, "code-server.log"))) fs.copyFileSync(path.join(work, "code-server.log"), path.join(SHOTS, "vscode-code-server.log"));
    if (process.env.KEEP_TEST_DIR !== "1") fs.rmSync(work, { recursive: true, force: true });
    else log(`kept ${work}`);
  }
}

main()
  .catch((e) => {
    results.push({ name: "e2e setup", ok: false, error: String(e && e.stack ? e.stack : e) });
    log(`FAIL e2e setup: ${e && e.stack ? e.stack : e}`);
  })
  .finally(() => {
    const passed = results.filter((r) => r.ok).length;
    const failed = results.length - passed;
    if (RESULTS) fs.writeFileSync(RESULTS, JSON.stringify({ passed, failed, results }, null, 2));
    log(`e2e: ${passed} passed, ${failed} failed; screenshots in ${SHOTS}`);
    process.exit(failed === 0 && passed > 0 ? 0 : 1);
  });
