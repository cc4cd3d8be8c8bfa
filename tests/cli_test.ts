import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../src/cli/commands.ts";
import { classNameOf, located } from "../src/cli/deploy.ts";
import type { CliIo } from "../src/cli/io.ts";
import { clientConfig } from "../src/config.ts";
import { getJson, startServer, type TestServer } from "./_helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

/** A CliIo that records output and lets a test wait for a line. */
class Recorder {
  readonly lines: { stream: "out" | "err"; text: string }[] = [];
  readonly controller = new AbortController();
  #waiters: (() => void)[] = [];
  readonly io: CliIo;

  constructor(env: Record<string, string | undefined> = {}) {
    const push = (stream: "out" | "err") => (text: string) => {
      this.lines.push({ stream, text });
      for (const wake of this.#waiters.splice(0)) wake();
    };
    this.io = { out: push("out"), err: push("err"), env, signal: this.controller.signal };
  }

  get out(): string {
    return this.lines.filter((line) => line.stream === "out").map((line) => line.text).join("\n");
  }

  get err(): string {
    return this.lines.filter((line) => line.stream === "err").map((line) => line.text).join("\n");
  }

  /** Resolves with the first line (from `from` on) matching `pattern`. */
  async waitFor(pattern: RegExp, from = 0): Promise<string> {
    while (true) {
      const found = this.lines.slice(from).find((line) => pattern.test(line.text));
      if (found) return found.text;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}

async function cli(server: TestServer, ...args: string[]): Promise<[number, Recorder]> {
  const recorder = new Recorder({ DOHOST_ADMIN_TOKEN: server.adminToken });
  const code = await runCli([...args, "--url", server.url], recorder.io);
  return [code, recorder];
}

Deno.test("dohost --help documents the serve flags and lists the commands", async () => {
  const recorder = new Recorder();
  assert.equal(await runCli(["--help"], recorder.io), 0);
  for (const text of ["--port", "--data-dir", "--metrics-public", "Commands"]) {
    assert.ok(recorder.out.includes(text), text);
  }
  for (const command of ["serve", "dev", "deploy", "apps", "classes", "env", "instances"]) {
    assert.match(recorder.out, new RegExp(`^  ${command} `, "m"));
  }
  assert.match(recorder.out, /^ {2}logs /m);
  assert.match(recorder.out, /^ {2}backup /m);
});

Deno.test("every command answers --help with its usage, and an unknown command exits 2", async () => {
  const commands = ["serve", "dev", "deploy", "apps", "classes", "env", "instances", "logs"];
  for (const command of [...commands, "backup"]) {
    const recorder = new Recorder();
    assert.equal(await runCli([command, "--help"], recorder.io), 0, command);
    assert.match(recorder.out, /Usage: /, command);
  }
  const unknown = new Recorder();
  assert.equal(await runCli(["frobnicate"], unknown.io), 2);
  assert.match(unknown.err, /Unknown command "frobnicate"/);
  const badFlag = new Recorder({ DOHOST_ADMIN_TOKEN: "t" });
  assert.equal(await runCli(["apps", "--nope"], badFlag.io), 2);
  assert.match(badFlag.err, /Usage: dohost apps/);
});

Deno.test("classNameOf() and located() name classes and error positions like a compiler", () => {
  assert.equal(classNameOf("examples/chat-room.ts"), "chat-room");
  assert.equal(classNameOf("ChatRoom.ts"), "chat-room");
  assert.equal(classNameOf("/x/conformance_do.ts"), "conformance-do");
  assert.equal(
    located("a.ts", "Syntax error at line 3, column 7: Expected ;"),
    "a.ts:3:7: error: Syntax error at line 3, column 7: Expected ;",
  );
  assert.equal(located("a.ts", "No class"), "a.ts: error: No class");
});

Deno.test("clientConfig() takes --url, then DOHOST_URL, then the default, and the env token", () => {
  assert.deepEqual(clientConfig("http://h:1/", { DOHOST_ADMIN_TOKEN: "t" }), {
    url: "http://h:1",
    token: "t",
  });
  assert.equal(
    clientConfig(undefined, { DOHOST_URL: "http://e:2", DOHOST_ADMIN_TOKEN: "t" }).url,
    "http://e:2",
  );
  assert.equal(clientConfig(undefined, { DOHOST_ADMIN_TOKEN: "t" }).url, "http://127.0.0.1:8787");
  assert.throws(() => clientConfig("not a url", {}), /Invalid --url/);
});

Deno.test("deploy, classes, apps and env talk to a server, readable or --json", async () => {
  await using server = await startServer();
  const [code, deployed] = await cli(
    server,
    "deploy",
    join(FIXTURES, "counter.ts"),
    "--access-mode",
    "public",
  );
  assert.equal(code, 0, deployed.err);
  assert.match(deployed.out, /^deployed .*counter\.ts as "counter" \(class Counter, public\)/);
  assert.equal((await getJson(server, "/_do/counter/a", { method: "POST" })).status, 200);

  const [, listed] = await cli(server, "classes");
  assert.match(listed.out, /^NAME +CLASS +STATUS/);
  assert.match(listed.out, /^counter +Counter +READY +public/m);
  const [, json] = await cli(server, "classes", "--json");
  assert.equal(JSON.parse(json.out).durable_objects[0].name, "counter");

  const [, apps] = await cli(server, "apps", "create", "shop");
  assert.match(apps.out, /^created app app_\w+ \(subdomain shop\)/);
  const [, appList] = await cli(server, "apps", "--json");
  assert.deepEqual(
    JSON.parse(appList.out).apps.map((app: { name: string }) => app.name).sort(),
    ["default", "shop"].sort(),
  );

  assert.equal((await cli(server, "env", "set", "GREETING", "hi"))[0], 0);
  const [, keys] = await cli(server, "env", "list");
  assert.equal(keys.out, "GREETING");
  assert.equal((await cli(server, "env", "delete", "GREETING"))[0], 0);
  assert.equal((await cli(server, "env", "list"))[1].out, "");

  const [missingCode, missing] = await cli(server, "classes", "show", "nope");
  assert.equal(missingCode, 1);
  assert.match(missing.err, /^error: Durable Object not found \(RESOURCE_NOT_FOUND\)/);
});

Deno.test("deploy prints a syntax error as file:line:column and exits 1", async () => {
  await using server = await startServer();
  const dir = await Deno.makeTempDir({ prefix: "dohost-cli-" });
  try {
    const file = join(dir, "broken.ts");
    await Deno.writeTextFile(file, "export class Broken {\n  fetch() {\n    return 1 +;\n  }\n}\n");
    const [code, recorder] = await cli(server, "deploy", file);
    assert.equal(code, 1);
    assert.match(recorder.err, new RegExp(`^${file}:3:\\d+: error: Syntax error at line 3`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("instances, logs and backup commands inspect a running server", async () => {
  await using server = await startServer();
  const root = await Deno.makeTempDir({ prefix: "dohost-cli-" });
  const follower = new Recorder({ DOHOST_ADMIN_TOKEN: server.adminToken });
  try {
    const file = join(FIXTURES, "inspect_do.ts");
    assert.equal((await cli(server, "deploy", file, "--access-mode", "public"))[0], 0);
    await getJson(server, "/_do/inspect-do/lobby/fill?n=2", { method: "POST" });
    await getJson(server, "/_do/inspect-do/lobby/sql?body=note", { method: "POST" });
    await getJson(server, "/_do/inspect-do/lobby/log?m=cli", { method: "POST" });

    const [, list] = await cli(server, "instances", "inspect-do");
    assert.match(list.out, /^NAME +STATE +BYTES/);
    assert.match(list.out, /^lobby +live +\d+/m);
    const [, storage] = await cli(
      server,
      "instances",
      "storage",
      "inspect-do",
      "lobby",
      "--limit",
      "1",
    );
    assert.equal(storage.out, "big (bigint) = 12345678901234567890n");
    assert.equal(storage.err, 'more: --start "item:000"');
    const [, sql] = await cli(
      server,
      "instances",
      "sql",
      "inspect-do",
      "lobby",
      "SELECT body FROM notes WHERE id = ?",
      "1",
    );
    assert.deepEqual(sql.out.split("\n"), ["body", "note"]);
    const [writeCode, write] = await cli(
      server,
      "instances",
      "sql",
      "inspect-do",
      "lobby",
      "DELETE FROM notes",
    );
    assert.equal(writeCode, 1);
    assert.match(write.err, /READ_ONLY/);

    const exported = join(root, "lobby.sqlite");
    assert.equal(
      (await cli(server, "instances", "export", "inspect-do", "lobby", "-o", exported))[0],
      0,
    );
    const [importCode] = await cli(server, "instances", "import", "inspect-do", "copy", exported);
    assert.equal(importCode, 0);
    assert.deepEqual(
      (await getJson(server, "/_do/inspect-do/copy/get?k=user", { method: "POST" })).body,
      {
        name: "ada",
        tags: ["x", "y"],
      },
    );
    assert.equal((await cli(server, "instances", "delete", "inspect-do", "copy"))[0], 0);
    const [, after] = await cli(server, "instances", "inspect-do", "--json");
    assert.deepEqual(JSON.parse(after.out).instances.map((row: { name: string }) => row.name), [
      "lobby",
    ]);

    const [, logs] = await cli(server, "logs", "inspect-do");
    assert.match(logs.out, /INFO +lobby: hello cli\n.* WARN +lobby: careful$/);

    const following = runCli(
      ["logs", "inspect-do", "-f", "-n", "0", "--url", server.url],
      follower.io,
    );
    await getJson(server, "/_do/inspect-do/lobby/log?m=live", { method: "POST" });
    const exited = following.then((code) => `logs -f exited ${code}: ${follower.err}`);
    const line = await Promise.race([follower.waitFor(/hello live/), exited]);
    assert.match(line, /INFO +lobby: hello live/);
    follower.controller.abort();
    assert.equal(await following, 0);

    const backupDir = join(root, "backup");
    const [backupCode, backup] = await cli(server, "backup", backupDir);
    assert.equal(backupCode, 0, backup.err);
    assert.match(backup.out, new RegExp(`^backed up \\d+ files \\(\\d+ bytes\\) to ${backupDir}$`));
    assert.ok((await Deno.stat(join(backupDir, "meta.sqlite"))).isFile);
  } finally {
    follower.controller.abort(); // an open stream would hold the server's shutdown
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("dev deploys a directory, redeploys changed files and prints errors with positions", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dohost-dev-src-" });
  const recorder = new Recorder({ DOHOST_ADMIN_TOKEN: "dev-token" });
  try {
    const counter = await Deno.readTextFile(join(FIXTURES, "counter.ts"));
    await Deno.writeTextFile(join(dir, "counter.ts"), counter);
    const running = runCli(["dev", dir, "--port", "0"], recorder.io);
    const url = (await recorder.waitFor(/^dohost dev server on /)).split(" ")[4] ?? "";
    await recorder.waitFor(/^watching /);
    assert.match(recorder.out, /deployed .*counter\.ts as "counter" \(class Counter, public\)/);
    const first = await fetch(`${url}/_do/counter/x`, { method: "POST" });
    assert.deepEqual((await first.json()).value, 1);

    let mark = recorder.lines.length;
    await Deno.writeTextFile(join(dir, "counter.ts"), "export class Counter {\n  x = ;\n}\n");
    const error = await recorder.waitFor(/error/, mark);
    assert.match(error, /counter\.ts:2:\d+: error: Syntax error at line 2/);

    mark = recorder.lines.length;
    await Deno.writeTextFile(join(dir, "counter.ts"), counter.replace("+ 1", "+ 10"));
    await recorder.waitFor(/^deployed /, mark);
    const second = await fetch(`${url}/_do/counter/x`, { method: "POST" });
    assert.equal((await second.json()).value, 11, "storage kept, new code running");

    recorder.controller.abort();
    assert.equal(await running, 0);
  } finally {
    recorder.controller.abort();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task start --help still documents the serve flags", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "start", "--help"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.match(text, /--port/);
  assert.match(text, /--idle-timeout/);
});
