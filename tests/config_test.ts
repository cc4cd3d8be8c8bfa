import assert from "node:assert/strict";
import { type Config, ConfigError, loadConfig, usage } from "../src/config.ts";

/** Asserts the listed fields (other helpers' flags may add more fields to Config). */
function assertFields(config: Config | null, expected: Partial<Config>): void {
  assert.ok(config, "loadConfig returned a config");
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual(config[key as keyof Config], value, key);
  }
}

Deno.test("loadConfig() gives the documented defaults", () => {
  assertFields(loadConfig([], {}), {
    port: 8787,
    hostname: "127.0.0.1",
    dataDir: "./data",
    domain: "localhost",
    idleTimeoutSec: 70,
    hibernateAfterSec: 10,
    maxKeyBytes: 2048,
    maxValueBytes: 131072,
    cpuLimitMs: 30000,
    memoryLimitMb: 128,
    maxServerMemoryMb: "auto",
    maxInstances: 1000,
    maxBodyBytes: 104857600,
    logFormat: "text",
    logLevel: "info",
    adminToken: undefined,
  });
});

Deno.test("loadConfig() reads every flag and DOHOST_ADMIN_TOKEN", () => {
  const config = loadConfig([
    "--port",
    "9000",
    "--hostname",
    "0.0.0.0",
    "--data-dir",
    "/tmp/x",
    "--domain",
    "Example.COM",
    "--idle-timeout",
    "5",
    "--hibernate-after",
    "3",
    "--max-key-bytes",
    "4096",
    "--max-value-bytes",
    "2097152",
    "--cpu-limit-ms",
    "500",
    "--memory-limit-mb",
    "64",
    "--max-server-memory-mb",
    "4096",
    "--max-instances",
    "7",
    "--max-body-bytes",
    "1000",
    "--log-format",
    "json",
    "--log-level",
    "debug",
  ], { DOHOST_ADMIN_TOKEN: "secret" });
  assertFields(config, {
    port: 9000,
    hostname: "0.0.0.0",
    dataDir: "/tmp/x",
    domain: "example.com",
    idleTimeoutSec: 5,
    hibernateAfterSec: 3,
    maxKeyBytes: 4096,
    maxValueBytes: 2097152,
    cpuLimitMs: 500,
    memoryLimitMb: 64,
    maxServerMemoryMb: 4096,
    maxInstances: 7,
    maxBodyBytes: 1000,
    logFormat: "json",
    logLevel: "debug",
    adminToken: "secret",
  });
});

Deno.test("loadConfig() accepts --flag=value and treats an empty DOHOST_ADMIN_TOKEN as unset", () => {
  const config = loadConfig(["--port=0", "--domain=dohost.test"], { DOHOST_ADMIN_TOKEN: "" });
  assert.equal(config?.port, 0);
  assert.equal(config?.domain, "dohost.test");
  assert.equal(config?.adminToken, undefined);
});

Deno.test("loadConfig() turns the server memory guard off with --max-server-memory-mb 0", () => {
  assert.equal(loadConfig(["--max-server-memory-mb", "0"], {})?.maxServerMemoryMb, 0);
});

Deno.test("loadConfig() returns null for --help", () => {
  assert.equal(loadConfig(["--help"], {}), null);
  assert.equal(loadConfig(["--port", "1", "--help"], {}), null);
});

Deno.test("loadConfig() rejects bad values with a ConfigError naming the flag", () => {
  const cases: [string[], RegExp][] = [
    [["--port", "abc"], /^Invalid --port "abc": expected an integer >= 0$/],
    [["--port", "-1"], /--port/],
    [["--port", "65536"], /^Invalid --port "65536": expected at most 65535$/],
    [["--port", "1.5"], /--port/],
    [["--port", ""], /^Invalid --port "": expected an integer >= 0$/],
    [["--port", " 80"], /--port/],
    [["--idle-timeout", "0"], /^Invalid --idle-timeout "0": expected an integer >= 1$/],
    [["--hibernate-after", "x"], /--hibernate-after/],
    [["--max-key-bytes", "0"], /--max-key-bytes/],
    [["--max-value-bytes", ""], /--max-value-bytes/],
    [["--cpu-limit-ms", "5"], /^Invalid --cpu-limit-ms "5": expected an integer >= 10$/],
    [["--memory-limit-mb", "8"], /--memory-limit-mb/],
    [
      ["--max-server-memory-mb", "32"],
      /^Invalid --max-server-memory-mb "32": expected auto, 0 or >= 64$/,
    ],
    [["--max-server-memory-mb", "lots"], /--max-server-memory-mb "lots": expected auto, 0/],
    [["--max-instances", "0"], /--max-instances/],
    [["--max-body-bytes", "1e3x"], /--max-body-bytes/],
    [["--log-format", "xml"], /^Invalid --log-format "xml": expected text or json$/],
    [["--log-level", "trace"], /^Invalid --log-level "trace": expected debug, info, warn/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => loadConfig(args, {}), (error: unknown) => {
      assert.ok(error instanceof ConfigError, `${args.join(" ")} threw ${error}`);
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("loadConfig() rejects unknown flags, positionals and flags without a value", () => {
  for (const args of [["--nope"], ["serve"], ["--port"]]) {
    assert.throws(() => loadConfig(args, {}), ConfigError, args.join(" "));
  }
});

Deno.test("usage() documents every flag with its default", () => {
  const text = usage();
  for (
    const flag of [
      "--port",
      "--hostname",
      "--data-dir",
      "--domain",
      "--idle-timeout",
      "--max-key-bytes",
      "--max-value-bytes",
      "--help",
      "DOHOST_ADMIN_TOKEN",
    ]
  ) {
    assert.ok(text.includes(flag), `usage mentions ${flag}`);
  }
  assert.match(text, /--port\s+.*\(default: 8787\)/);
  assert.match(text, /--data-dir\s+.*\(default: \.\/data\)/);
});
