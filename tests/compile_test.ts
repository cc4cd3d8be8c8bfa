/**
 * The single-binary smoke test: `deno task compile`, then the binary serves, deploys and
 * answers like `deno task start`. `deno compile` needs Deno's runtime (`denort`): from
 * `DENORT_BIN`, or downloaded once into `$DENO_DIR/dl/`. Where neither is there the test is
 * skipped, and its name says why (README, "Single binary").
 */

import assert from "node:assert/strict";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const BINARY = join(ROOT, "dist", "dohost");
const TOKEN = "compile-smoke-token";

/** Null when a runtime is available, else why the smoke test cannot run. */
async function missingRuntime(): Promise<string | null> {
  if (Deno.permissions.querySync({ name: "run" }).state !== "granted") {
    return "it needs --allow-run (deno task test grants it)";
  }
  const given = Deno.env.get("DENORT_BIN");
  if (given) {
    return await exists(given) ? null : `DENORT_BIN points at "${given}", which does not exist`;
  }
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  const denoDir = JSON.parse(new TextDecoder().decode(info.stdout)).denoDir as string;
  const cached = join(
    denoDir,
    "dl",
    "release",
    `v${Deno.version.deno}`,
    `denort-${Deno.build.target}.zip`,
  );
  if (await exists(cached)) return null;
  return `Deno's runtime (denort) is not here: set DENORT_BIN or put it in ${cached}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function run(args: string[], env: Record<string, string> = {}): Promise<string> {
  const output = await new Deno.Command(BINARY, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(output.stdout);
  assert.equal(
    output.code,
    0,
    `dohost ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`,
  );
  return text;
}

const missing = await missingRuntime();

Deno.test({
  name: missing === null
    ? "deno task compile builds dist/dohost, which serves and runs commands like deno task start"
    : `deno task compile smoke test (skipped: ${missing})`,
  ignore: missing !== null,
  sanitizeResources: false,
  async fn() {
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
    assert.match(await run(["--help"]), /--port/);

    const dataDir = await Deno.makeTempDir({ prefix: "dohost-compiled-" });
    const server = new Deno.Command(BINARY, {
      args: ["--port", "0", "--data-dir", dataDir],
      env: { DOHOST_ADMIN_TOKEN: TOKEN },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      let seen = "";
      while (!/listening on (http:\S+)/.test(seen)) {
        const chunk = await lines.read();
        if (chunk.done) throw new Error(`the binary exited before listening: ${seen}`);
        seen += chunk.value;
      }
      const url = /listening on (http:\S+)/.exec(seen)?.[1] ?? "";
      const env = { DOHOST_ADMIN_TOKEN: TOKEN };
      const counter = join(ROOT, "tests", "fixtures", "counter.ts");
      const deployed = await run(["deploy", counter, "--access-mode", "public", "--url", url], env);
      assert.match(deployed, /^deployed .* as "counter"/);
      const res = await fetch(`${url}/_do/counter/smoke`, { method: "POST" });
      assert.equal((await res.json()).value, 1);
      const listed = JSON.parse(await run(["instances", "counter", "--json", "--url", url], env));
      assert.deepEqual(listed.instances.map((row: { name: string }) => row.name), ["smoke"]);
    } finally {
      server.kill("SIGTERM");
      const status = await server.status;
      await lines.cancel().catch(() => {});
      await Deno.remove(dataDir, { recursive: true });
      assert.equal(status.code, 0, "SIGTERM is a graceful exit");
    }
  },
});
