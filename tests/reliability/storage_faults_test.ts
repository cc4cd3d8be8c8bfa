import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { objectIdFromName } from "../../workers/protocol.ts";
import { fixture } from "../_helpers.ts";
import { type ChildServer, spawnServer, tempDataDir } from "./_child_server.ts";

const CLASS_DIR = ["instances", "app_default", "fault"];

function dbPath(dataDir: string, name: string): string {
  const idHex = objectIdFromName("app_default/fault", name);
  return join(dataDir, ...CLASS_DIR, `${idHex}.sqlite`);
}

async function put(server: ChildServer, id: string, key: string, value: string) {
  return await server.fetch(`/_do/fault/${id}/put?k=${key}`, { method: "POST", body: value });
}

async function get(server: ChildServer, id: string, key: string): Promise<unknown> {
  const res = await server.fetch(`/_do/fault/${id}/get?k=${key}`);
  if (res.status !== 200) assert.fail(`${id}/get answered ${res.status}: ${await res.text()}`);
  return (await res.json() as { value: unknown }).value;
}

/** The rest of the server still works: another instance, health and the control API. */
async function assertServing(server: ChildServer): Promise<void> {
  assert.equal(await get(server, "healthy", "kept"), "safe");
  assert.equal((await server.fetch("/healthz")).status, 200);
  assert.equal((await server.api("GET", "/v1/app_default/durable-objects")).status, 200);
}

/** When `/metrics` exists, the failure shows up under its error code. */
async function assertMetricsCount(server: ChildServer, code: string): Promise<void> {
  const res = await server.fetch("/metrics", {
    headers: { authorization: `Bearer ${server.adminToken}` },
  });
  const text = await res.text();
  if (res.status === 404) return;
  assert.equal(res.status, 200);
  assert.match(text, new RegExp(`dohost_errors_total\\{[^}]*code="${code}"[^}]*\\} [1-9]`));
}

/** Starts a server with written instances, stops it cleanly, and lets `damage` run. */
async function damagedServer(
  dataDir: string,
  damage: (path: (name: string) => string) => void | Promise<void>,
): Promise<ChildServer> {
  {
    await using server = await spawnServer({ dataDir });
    await server.deploy("fault", await fixture("fault_do.ts"));
    for (const id of ["corrupt", "locked", "healthy"]) {
      assert.equal((await put(server, id, "kept", "safe")).status, 200);
    }
    assert.equal((await server.kill("SIGTERM")).code, 0);
  }
  await damage((name) => dbPath(dataDir, name));
  return await spawnServer({ dataDir });
}

/** A request to a damaged instance: a 5xx that names its error code. */
async function assertFailsClearly(
  server: ChildServer,
  id: string,
): Promise<{ status: number; code: string }> {
  const res = await server.fetch(`/_do/fault/${id}/get?k=kept`);
  await res.body?.cancel();
  assert.ok(res.status >= 500, `${id}: a damaged database answered ${res.status}`);
  const code = res.headers.get("x-dohost-error");
  assert.ok(code, `${id}: the response names an error code`);
  return { status: res.status, code };
}

Deno.test("storage faults: a corrupted or locked database fails only its instance, with a logged 5xx", async () => {
  await using dir = await tempDataDir();
  let holder: DatabaseSync | null = null;
  await using server = await damagedServer(dir.path, (path) => {
    const bytes = Deno.readFileSync(path("corrupt"));
    bytes.fill(0x5a, 0, Math.min(bytes.length, 8192));
    Deno.writeFileSync(path("corrupt"), bytes);
    holder = new DatabaseSync(path("locked"));
    holder.exec("PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; DELETE FROM _cf_KV WHERE 0;");
  });
  try {
    // Twice: a failed open must not leave the instance half-started for the next request.
    for (let attempt = 0; attempt < 2; attempt++) {
      const failed = await assertFailsClearly(server, "corrupt");
      assert.deepEqual(failed, { status: 500, code: "STORAGE_CORRUPTED" });
      await assertMetricsCount(server, failed.code);
    }
    const locked = await assertFailsClearly(server, "locked");
    assert.deepEqual(locked, { status: 503, code: "STORAGE_UNAVAILABLE" });
    await assertMetricsCount(server, locked.code);
    await server.waitForLog(/file is not a database.*instance="corrupt"/);
    await server.waitForLog(/database is locked.*instance="locked"/);
    await assertServing(server);
  } finally {
    (holder as DatabaseSync | null)?.close();
  }
  assert.equal(await get(server, "locked", "kept"), "safe", "it recovers once the lock is gone");
});

Deno.test("storage faults: a corrupted database is reported with a storage error code", async () => {
  await using dir = await tempDataDir();
  await using server = await damagedServer(
    dir.path,
    (path) => Deno.writeFileSync(path("corrupt"), new Uint8Array(4096).fill(1)),
  );
  assert.match((await assertFailsClearly(server, "corrupt")).code, /^STORAGE_/);
  await server.waitForLog(/Instance storage failed to open: file is not a database/);
  assert.doesNotMatch(server.logs(), /Class failed to load/);
});

/** Whether this process may mount a tmpfs (Linux, as root with CAP_SYS_ADMIN): tries it. */
function canMountTmpfs(): boolean {
  if (Deno.build.os !== "linux") return false;
  const dir = Deno.makeTempDirSync({ prefix: "dohost-tmpfs-probe-" });
  try {
    const mounted = mount(dir, "1m");
    if (mounted) umount(dir);
    return mounted;
  } finally {
    Deno.removeSync(dir);
  }
}

function mount(dir: string, size: string): boolean {
  const args = ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir];
  try {
    return new Deno.Command("mount", { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false; // no mount(8), or not allowed to run it
  }
}

function remount(dir: string, size: string): void {
  const args = ["-o", `remount,size=${size}`, dir];
  const result = new Deno.Command("mount", { args, stdout: "null", stderr: "null" }).outputSync();
  assert.ok(result.success, `remounting ${dir} failed`);
}

function umount(dir: string): void {
  new Deno.Command("umount", { args: [dir], stdout: "null", stderr: "null" }).outputSync();
}

const TMPFS = canMountTmpfs();

Deno.test({
  name: "storage faults: a full disk fails writes clearly, loses nothing committed, and recovers",
  ignore: !TMPFS, // needs root to mount a small tmpfs under the class's instance directory
  async fn() {
    await using dir = await tempDataDir();
    const classDir = join(dir.path, ...CLASS_DIR);
    await Deno.mkdir(classDir, { recursive: true });
    assert.ok(mount(classDir, "2m"), "mounting the tmpfs failed");
    try {
      await using server = await spawnServer({ dataDir: dir.path });
      await server.deploy("fault", await fixture("fault_do.ts"));
      for (const id of ["victim", "healthy"]) {
        assert.equal((await put(server, id, "kept", "safe")).status, 200);
      }
      const big = "x".repeat(64 * 1024);
      let failed: Response | null = null;
      for (let i = 0; i < 64 && !failed; i++) {
        const res = await put(server, "victim", `fill-${i}`, big);
        await res.body?.cancel();
        if (res.status !== 200) failed = res;
      }
      assert.ok(failed, "writes must start failing once the disk is full");
      assert.equal(failed.status, 507, "a write to a full disk answers 507");
      assert.equal(failed.headers.get("x-dohost-error"), "STORAGE_FULL");
      await server.waitForLog(/database or disk is full/);
      // Use up what the failed write's rollback gave back, so the disk stays full.
      const filler = join(classDir, "filler");
      try {
        await Deno.writeFile(filler, new Uint8Array(4 * 1024 * 1024));
      } catch (error) {
        if (!(error instanceof Error) || !/space/i.test(error.message)) throw error;
      }
      const again = await put(server, "healthy", "more", big);
      await again.body?.cancel();
      assert.equal(again.status, 507, `a write while full answered ${again.status}`);
      assert.equal(again.headers.get("x-dohost-error"), "STORAGE_FULL");
      assert.equal(await get(server, "victim", "kept"), "safe", "committed data is still there");
      assert.equal(await get(server, "healthy", "kept"), "safe");
      assert.equal((await server.fetch("/healthz")).status, 200);

      remount(classDir, "64m");
      const after = await put(server, "victim", "after", "recovered");
      assert.equal(after.status, 200, `a write after space returned answered ${after.status}`);
      assert.equal(await get(server, "victim", "after"), "recovered");
      assert.equal(
        await get(server, "victim", "fill-0"),
        big,
        "writes acknowledged before are kept",
      );
      assert.equal((await server.kill("SIGTERM")).code, 0);
    } finally {
      umount(classDir);
    }
  },
});

Deno.test({
  name: "storage faults: the server survives a full data disk for longer than a usage flush",
  ignore: !TMPFS, // needs root to mount a small tmpfs as the data dir
  async fn() {
    const mountDir = await Deno.makeTempDir({ prefix: "dohost-full-" });
    assert.ok(mount(mountDir, "3m"));
    try {
      await using server = await spawnServer({ dataDir: mountDir });
      await server.deploy("fault", await fixture("fault_do.ts"));
      const big = "x".repeat(64 * 1024);
      for (let i = 0; i < 64; i++) {
        const res = await put(server, "victim", `fill-${i}`, big);
        await res.body?.cancel();
        if (res.status !== 200) break;
      }
      const until = Date.now() + 7_000;
      while (Date.now() < until) {
        assert.equal((await server.fetch("/healthz")).status, 200);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    } finally {
      umount(mountDir);
      await Deno.remove(mountDir, { recursive: true });
    }
  },
});
