/**
 * The data plane's front door: host → app resolution, access modes (checked before any
 * instance is woken), header hygiene, and instance names that are odd or hostile.
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { SignJWT } from "jose";
import { fixture, startServer, type TestServer } from "../_helpers.ts";

interface DemoApp {
  app_id: string;
  subdomain: string;
  service_key: string;
  jwt_secret: string;
}

/** A server with app "demo" holding the conformance class as pub, svc and auth. */
async function demoServer(): Promise<{ server: TestServer; demo: DemoApp; other: DemoApp }> {
  const server = await startServer();
  try {
    const demo = await (await server.api("POST", "/v1/apps", { name: "demo" })).json();
    const other = await (await server.api("POST", "/v1/apps", { name: "other" })).json();
    const code = await fixture("conformance_do.ts");
    for (
      const [name, mode] of [["pub", "public"], ["svc", "service_key"], ["auth", "authenticated"]]
    ) {
      const res = await server.api("POST", `/v1/${demo.app_id}/durable-objects`, {
        name,
        code,
        access_mode: mode,
      });
      assert.equal((await res.json()).status, "READY");
    }
    return { server, demo, other };
  } catch (error) {
    await server[Symbol.asyncDispose]();
    throw error;
  }
}

/** An in-process request; the URL's host picks the app (fetch() would rewrite Host). */
async function hit(
  server: TestServer,
  url: string,
  init?: RequestInit,
): Promise<{ status: number; text: string; type: string | null }> {
  const res = await server.server.handler(new Request(url, init));
  return { status: res.status, text: await res.text(), type: res.headers.get("content-type") };
}

function bearer(token: string): RequestInit {
  return { headers: { authorization: `Bearer ${token}` } };
}

function jwt(): SignJWT {
  return new SignJWT({ sub: "user-1" }).setProtectedHeader({ alg: "HS256" });
}

function key(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

function base64url(value: unknown): string {
  return btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function liveNames(server: TestServer): string[] {
  return [...server.server.deps.instances.live].map((item) => item.target.record.name);
}

const UNAUTHORIZED = { status: 401, text: "unauthorized", type: "text/plain;charset=UTF-8" };

Deno.test("data plane access, host resolution and instance names", async (t) => {
  const { server, demo, other } = await demoServer();
  await using _ = server;
  await server.deploy("only-default", await fixture("counter.ts"));

  await t.step("access mode public: anyone reaches the instance", async () => {
    const res = await hit(server, "http://demo.localhost/_do/pub/x/mem");
    assert.deepEqual([res.status, res.text], [200, "1"]);
  });

  await t.step(
    "access mode service_key: only the app's own key passes, before any instance wakes",
    async () => {
      const url = "http://demo.localhost/_do/svc/x/mem";
      const refused: (RequestInit | undefined)[] = [
        undefined,
        bearer("bb_sk_wrong"),
        bearer(other.service_key),
        bearer(server.adminToken),
        { headers: { authorization: `bearer ${demo.service_key}` } },
        { headers: { authorization: demo.service_key } },
        bearer(`${demo.service_key}x`),
      ];
      for (const init of refused) {
        assert.deepEqual(await hit(server, url, init), UNAUTHORIZED, JSON.stringify(init));
      }
      assert.ok(!liveNames(server).includes("svc"), "refused requests woke no instance");
      const ok = await hit(server, url, bearer(demo.service_key));
      assert.deepEqual([ok.status, ok.text], [200, "1"]);
      assert.ok(liveNames(server).includes("svc"));
      // ?token= is not a way in for plain HTTP.
      const query = await hit(server, `${url}?token=${demo.service_key}`);
      assert.deepEqual(query, UNAUTHORIZED);
    },
  );

  await t.step(
    "access mode authenticated: an HS256 JWT signed with the app's secret passes",
    async () => {
      const url = "http://demo.localhost/_do/auth/x/mem";
      const secret = key(demo.jwt_secret);
      const now = Math.floor(Date.now() / 1000);

      const good = await jwt().setIssuedAt().setExpirationTime("5m").sign(secret);
      const ok = await hit(server, url, bearer(good));
      assert.deepEqual([ok.status, ok.text], [200, "1"]);
      const noExp = await jwt().sign(secret);
      assert.equal((await hit(server, url, bearer(noExp))).status, 200);

      const refused: [string, string | null][] = [
        ["missing", null],
        ["expired", await jwt().setExpirationTime(now - 60).sign(secret)],
        ["not yet valid", await jwt().setNotBefore(now + 3600).sign(secret)],
        ["wrong secret", await jwt().sign(key("not-the-secret"))],
        ["other app", await jwt().sign(key(other.jwt_secret))],
        ["alg none", `${base64url({ alg: "none", typ: "JWT" })}.${base64url({ sub: "x" })}.`],
        ["malformed", "abc.def"],
        ["garbage", "not a jwt"],
        ["tampered", good.replace(/\.([^.]+)\./, `.${base64url({ sub: "admin" })}.`)],
        ["service key", demo.service_key],
      ];
      for (const [label, token] of refused) {
        const res = await hit(server, url, token === null ? undefined : bearer(token));
        assert.deepEqual(res, UNAUTHORIZED, label);
      }
    },
  );

  await t.step(
    "host resolution: <subdomain>.<domain> picks the app, other hosts app_default",
    async () => {
      // "pub" exists only in demo; "only-default" only in app_default.
      for (
        const host of ["demo.localhost", "DEMO.localhost", "demo.localhost:8787", "demo.localhost."]
      ) {
        const res = await hit(server, `http://${host}/_do/pub/h/id`);
        assert.equal(res.status, 200, host);
        assert.equal(JSON.parse(res.text).name, "h");
        assert.equal((await hit(server, `http://${host}/_do/only-default/h`)).text, "unknown DO");
      }
      for (
        const host of [
          "localhost",
          "localhost:8787",
          "127.0.0.1",
          "127.0.0.1:9999",
          "[::1]:8787",
          "example.com",
          "default.localhost",
        ]
      ) {
        const res = await hit(server, `http://${host}/_do/only-default/h`);
        assert.deepEqual([res.status, res.text], [200, '{"value":0}'], host);
        assert.equal((await hit(server, `http://${host}/_do/pub/h/id`)).text, "unknown DO", host);
      }
      assert.deepEqual(await hit(server, "http://x.localhost/_do/pub/h/id"), {
        status: 404,
        text: 'No app for subdomain "x"',
        type: "text/plain;charset=UTF-8",
      });
      // Over a real socket the Host header decides.
      const res = await fetch(`${server.url}/_do/only-default/h`);
      assert.deepEqual(await res.json(), { value: 0 });
    },
  );

  await t.step(
    "the object receives the original URL, method and body, without x-dohost-* headers",
    async () => {
      const url = "http://demo.localhost/_do/pub/req/request?q=1&r=%20";
      const res = await hit(server, url, { method: "POST", body: "payload" });
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.text), { url, method: "POST", body: "payload" });

      const headers = await hit(server, "http://demo.localhost/_do/pub/req/headers", {
        headers: {
          "x-dohost-app": "app_evil",
          "X-DoHost-Internal-Caller": "do:admin",
          "x-custom": "kept",
          authorization: "Bearer whatever",
        },
      });
      const seen = new Map(JSON.parse(headers.text) as [string, string][]);
      assert.equal(seen.get("x-custom"), "kept");
      assert.equal(
        seen.get("authorization"),
        "Bearer whatever",
        "the caller's header is passed on",
      );
      assert.deepEqual([...seen.keys()].filter((name) => name.startsWith("x-dohost-")), []);
    },
  );

  await t.step(
    "instance names: odd ids work, decode consistently and never escape the data dir",
    async () => {
      const idOf = async (segment: string) => {
        const res = await hit(server, `http://demo.localhost/_do/pub/${segment}/id`);
        assert.equal(res.status, 200, `${segment}: ${res.text}`);
        return JSON.parse(res.text) as { name: string; hex: string };
      };
      const cases: [string, string][] = [
        ["a%20b", "a b"],
        ["%E2%9C%93", "✓"],
        ["✓", "✓"],
        ["..%2F..%2F..%2Fetc%2Fpasswd", "../../../etc/passwd"],
        ["%2F", "/"],
        ["a..b", "a..b"],
        ["..%5C..%5Cwin", "..\\..\\win"],
        ["%00", "\0"],
        ["%61", "a"],
      ];
      const hexes = new Map<string, string>();
      for (const [segment, name] of cases) {
        const id = await idOf(segment);
        assert.equal(id.name, name, segment);
        assert.match(id.hex, /^[0-9a-f]{64}$/);
        if (hexes.has(name)) {
          assert.equal(
            hexes.get(name),
            id.hex,
            `${segment} decodes like ${name}`,
          );
        }
        hexes.set(name, id.hex);
      }
      assert.equal((await idOf("a")).hex, hexes.get("a"), "%61 and a are the same instance");
      assert.equal(new Set(hexes.values()).size, hexes.size);

      // Every instance file is <instances>/<app>/<class>/<64 hex>.sqlite[-wal|-shm].
      const root = join(server.dataDir, "instances");
      const files: string[] = [];
      const walk = async (dir: string) => {
        for await (const entry of Deno.readDir(dir)) {
          const path = join(dir, entry.name);
          if (entry.isDirectory) await walk(path);
          else files.push(relative(root, path));
        }
      };
      await walk(root);
      assert.ok(files.length >= hexes.size);
      for (const file of files) {
        assert.match(file, /^app_[a-z0-9_]+\/[a-z0-9-]+\/[0-9a-f]{64}\.sqlite(-wal|-shm)?$/, file);
      }
    },
  );

  await t.step(
    "instance names: bad percent-encoding is a plain-text 400 and a 10 KB id is refused",
    async () => {
      for (const segment of ["%zz", "%E0%A4%A", "%", "a%2"]) {
        const res = await hit(server, `http://demo.localhost/_do/pub/${segment}/id`);
        assert.equal(res.status, 400, segment);
        assert.equal(res.text, "invalid instance id: bad percent-encoding");
        assert.equal(res.type, "text/plain;charset=UTF-8");
      }
      const long = await hit(server, `http://demo.localhost/_do/pub/${"x".repeat(10_240)}/id`);
      assert.ok(long.status >= 400 && long.status < 500, `status ${long.status}`);
      const overHttp = await fetch(`${server.url}/_do/only-default/${"y".repeat(10_240)}`);
      await overHttp.body?.cancel();
      assert.ok(overHttp.status >= 400 && overHttp.status < 500, `status ${overHttp.status}`);
    },
  );
});
