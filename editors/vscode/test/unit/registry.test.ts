// The extension's provider lists against the server's registry, as `conductor-lsp providers --format json`
// prints it, so they cannot drift: config.ts (PROVIDERS, API_KEYS) and package.json (the settings enum).
// The binary is CONDUCTOR_BIN, else <repo>/target/debug/conductor-lsp (cargo build first).
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { API_KEYS, PROVIDERS } from "../../src/config";

// Compiled to out/test/unit/: the extension is three levels up, the repository two more.
const EXT = path.resolve(__dirname, "../../..");
const REPO = path.resolve(EXT, "../..");

interface RegistryRow {
  name: string;
  aliases: string[];
  needs: "key" | "url" | "nothing" | "folder";
  keyed: boolean;
  env: string[];
  default: "if_configured" | "if_none_configured" | "if_named";
  configured: boolean;
  used: boolean;
  detail: string;
}

let rows: RegistryRow[] = [];
let scratch = "";

before(() => {
  const bin = process.env.CONDUCTOR_BIN || path.join(REPO, "target", "debug", "conductor-lsp");
  assert.ok(fs.existsSync(bin), `no server binary at ${bin}: run \`cargo build\` or set CONDUCTOR_BIN`);
  // A clean environment and config folder: what the registry says does not depend on them.
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "conductor-registry-"));
  const out = execFileSync(bin, ["providers", "--format", "json"], {
    cwd: scratch,
    env: { PATH: process.env.PATH ?? "", HOME: scratch, XDG_CONFIG_HOME: scratch },
    encoding: "utf8",
  });
  rows = (JSON.parse(out) as { providers: RegistryRow[] }).providers;
  assert.ok(rows.length > 0, "the server lists no provider");
});

after(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

describe("provider lists match the server's registry (conductor-lsp providers --format json)", () => {
  it("config.ts PROVIDERS are the registry's names, in its order", () => {
    assert.deepEqual([...PROVIDERS], rows.map((r) => r.name));
  });

  it("package.json's conductor.providers enum is the registry's names, in its order", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(EXT, "package.json"), "utf8"));
    const setting = pkg.contributes.configuration.properties["conductor.providers"];
    assert.deepEqual(setting.items.enum, rows.map((r) => r.name));
    // Its description names the default choice's free providers.
    for (const r of rows.filter((r) => r.default === "if_none_configured")) {
      assert.match(setting.markdownDescription, new RegExp(`\\b${r.name}\\b`), `${r.name} missing from the description`);
    }
  });

  it("Set API Key… offers exactly the keyed providers' keys, by their documented names", () => {
    const keyed = rows.filter((r) => r.keyed).map((r) => r.env[0]);
    assert.deepEqual(API_KEYS.filter((k) => k.kind === "provider").map((k) => k.env), keyed);
  });
});
