/**
 * Secrets at rest: env values and app JWT secrets are sealed with the master key
 * (`DOHOST_MASTER_KEY` or `<data-dir>/master_key`), are never returned or logged, and a start
 * with a different key refuses to serve.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { SignJWT } from "jose";
import { loadConfig } from "../../src/config.ts";
import type { Logger } from "../../src/log.ts";
import { createServer } from "../../src/server.ts";
import { fixture, startServer } from "../_helpers.ts";

const ENV_VALUE = "sk_live_do-not-leak-0123456789";

async function rawMeta(dataDir: string): Promise<string> {
  const path = join(dataDir, "meta.sqlite");
  let text = "";
  for (const file of [path, `${path}-wal`]) {
    const bytes = await Deno.readFile(file).catch(() => new Uint8Array());
    text += new TextDecoder("latin1").decode(bytes);
  }
  return text;
}

Deno.test("env values and JWT secrets are sealed at rest and still served after a restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "dohost-secrets-" });
  try {
    let demo: { app_id: string; jwt_secret: string };
    {
      await using server = await startServer({ dataDir });
      demo = await (await server.api("POST", "/v1/apps", { name: "demo" })).json();
      const set = await server.api("PUT", `/v1/${demo.app_id}/durable-objects/env/API_TOKEN`, {
        value: ENV_VALUE,
      });
      assert.equal(set.status, 200);
      await set.body?.cancel();
      const deployed = await server.api("POST", `/v1/${demo.app_id}/durable-objects`, {
        name: "conf",
        code: await fixture("conformance_do.ts"),
        access_mode: "authenticated",
      });
      assert.equal((await deployed.json()).status, "READY");
      const listed = await server.api("GET", `/v1/${demo.app_id}/durable-objects/env`);
      assert.deepEqual(await listed.json(), { keys: ["API_TOKEN"] }, "values are never returned");
      await server.stop();
      const raw = await rawMeta(dataDir);
      assert.equal(raw.includes(ENV_VALUE), false, "env value stored in clear");
      assert.equal(raw.includes(demo.jwt_secret), false, "JWT secret stored in clear");
      assert.ok(raw.includes("enc:v1:"));
      const keyFile = await Deno.stat(join(dataDir, "master_key"));
      assert.equal((keyFile.mode ?? 0) & 0o777, 0o600);
    }
    // The same data dir (and key file) opens the same secrets.
    await using server = await startServer({ dataDir });
    const token = await new SignJWT({ sub: "u" }).setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode(demo.jwt_secret));
    const env = await server.server.handler(
      new Request("http://demo.localhost/_do/conf/x/env", {
        headers: { authorization: `Bearer ${token}` },
      }),
    );
    assert.equal(env.status, 200, "the JWT secret still verifies tokens");
    assert.equal((await env.json()).API_TOKEN, ENV_VALUE, "the object sees the clear value");
    const apps = await (await server.api("GET", "/v1/apps")).json();
    assert.equal(JSON.stringify(apps).includes(demo.jwt_secret), false);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a different DOHOST_MASTER_KEY refuses to open the data dir; secrets never reach the log", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "dohost-masterkey-" });
  const lines: string[] = [];
  const logger: Logger = {
    log(level, message, fields) {
      lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
    },
  };
  const start = (masterKey: string) => {
    const config = loadConfig(["--port", "0", "--data-dir", dataDir, "--log-level", "debug"], {
      DOHOST_ADMIN_TOKEN: "admin-token-for-tests",
      DOHOST_MASTER_KEY: masterKey,
    });
    if (!config) throw new Error("unreachable");
    return createServer(config, logger);
  };
  try {
    const server = await start("first master key, long enough");
    const put = await server.handler(
      new Request("http://localhost/v1/app_default/durable-objects/env/API_TOKEN", {
        method: "PUT",
        headers: { authorization: "Bearer admin-token-for-tests" },
        body: JSON.stringify({ value: ENV_VALUE }),
      }),
    );
    assert.equal(put.status, 200);
    await put.body?.cancel();
    await server.close();
    assert.equal(await Deno.stat(join(dataDir, "master_key")).catch(() => null), null);
    await assert.rejects(start("another master key, also long"), /master key differs/);
    await assert.rejects(start("short"), /at least 16 characters/);
    const reopened = await start("first master key, long enough");
    await reopened.close();
    assert.equal(lines.some((line) => line.includes(ENV_VALUE)), false);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
