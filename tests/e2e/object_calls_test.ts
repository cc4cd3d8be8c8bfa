/**
 * Calls between objects through `env` namespace bindings: ids, `stub.fetch()`, JS RPC with
 * structured clone, error propagation with Cloudflare's flags, and the call-depth limit.
 * The fixtures: `member` objects call the `hub` registry; `plain` does not extend
 * DurableObject.
 */

import assert from "node:assert/strict";
import { objectIdFromName } from "../../workers/protocol.ts";
import { fixture, getJson, startServer, type TestServer } from "../_helpers.ts";

const M = "/_do/member";

async function body(server: TestServer, path: string): Promise<unknown> {
  const { status, body } = await getJson(server, path);
  assert.equal(status, 200, `${path}: ${JSON.stringify(body)}`);
  return body;
}

/** What the fixture reports about a caught error (null: the property is not set). */
function caught(fields: {
  name: string;
  message: string;
  isTypeError?: boolean;
  remote?: boolean | null;
  retryable?: boolean | null;
  overloaded?: boolean | null;
  durableObjectReset?: boolean | null;
}) {
  return {
    error: {
      isTypeError: false,
      remote: null,
      retryable: null,
      overloaded: null,
      durableObjectReset: null,
      ...fields,
    },
  };
}

function missingMethod(name: string) {
  return caught({
    name: "TypeError",
    message: `The RPC receiver does not implement the method "${name}".`,
    isTypeError: true,
    remote: true,
  });
}

const CASES: [string, (server: TestServer) => Promise<void>][] = [];

CASES.push(["registry pattern: many objects report into one over RPC", async (s) => {
  const members = ["m0", "m1", "m2", "m3", "m4", "m5"];
  const joins = await Promise.all(
    members.map((m, i) => body(s, `${M}/${m}/join?at=${1000 * (i + 1)}`)),
  ) as { accepted: string; count: number }[];
  assert.deepEqual(joins.map((j) => j.accepted), members);
  assert.ok(joins.every((j) => j.count >= 1 && j.count <= members.length));
  const reports = await body(s, `${M}/m0/reports`);
  assert.deepEqual(
    reports,
    members.map((member, i) => ({
      member,
      ok: true,
      at: new Date(1000 * (i + 1)).toISOString(),
    })),
  );
}]);

CASES.push(["RPC arguments and results are structured clones (Date, Map, Set, …)", async (s) => {
  assert.deepEqual(await body(s, `${M}/types/types`), {
    types: [
      "[object Date]",
      "[object Map]",
      "[object Set]",
      "[object Uint8Array]",
      "[object BigInt]",
      "[object Undefined]",
      "[object Null]",
    ],
    back: [true, true, true, true, true, true, true],
  });
}]);

CASES.push(["errors thrown by an RPC method keep name and message and are remote", async (s) => {
  assert.deepEqual(
    await body(s, `${M}/err/error?kind=type`),
    caught({ name: "TypeError", message: "bad type", isTypeError: true, remote: true }),
  );
  assert.deepEqual(
    await body(s, `${M}/err/error?kind=named`),
    caught({ name: "NamedError", message: "custom", remote: true }),
  );
  assert.deepEqual(
    await body(s, `${M}/err/error?kind=plain`),
    caught({ name: "Error", message: "plain failure", remote: true }),
  );
}]);

CASES.push([
  "a target that resets gives durableObjectReset; a bcw timeout overloaded",
  async (s) => {
    assert.deepEqual(
      await body(s, `${M}/rst/reset?hub=resetting`),
      caught({
        name: "Error",
        message: "hub aborted",
        retryable: true,
        durableObjectReset: true,
      }),
    );
    assert.deepEqual(
      await body(s, `${M}/ovl/overloaded?hub=hanging`),
      caught({
        name: "Error",
        message: "A call to blockConcurrencyWhile() in a Durable Object waited for too long. " +
          "The call was canceled and the Durable Object was reset.",
        overloaded: true,
        durableObjectReset: true,
      }),
    );
  },
]);

CASES.push(["RPC refuses unknown methods, fields and reserved names", async (s) => {
  assert.deepEqual(await body(s, `${M}/miss/missing`), {
    nope: missingMethod("nope"),
    field: missingMethod("field"),
    ctor: missingMethod("constructor"),
  });
}]);

CASES.push(["uncloneable RPC results and arguments throw DataCloneError", async (s) => {
  const result = await body(s, `${M}/clone/unclonable`) as Record<
    string,
    { error: { name: string; remote: boolean | null } }
  >;
  assert.equal(result.result?.error.name, "DataCloneError");
  assert.equal(result.result?.error.remote, true);
  assert.equal(result.argument?.error.name, "DataCloneError");
  assert.equal(result.argument?.error.remote, null, "thrown by the caller, not the target");
}]);

CASES.push(["a call loop stops at the call-depth limit with a clear error", async (s) => {
  const result = await body(s, `${M}/loop/loop`) as { error: { message: string } };
  assert.match(result.error.message, /^Subrequest depth limit exceeded\./);
}]);

CASES.push(["stub.fetch() sends a request to the object and returns its response", async (s) => {
  assert.deepEqual(await body(s, `${M}/f/fetch-hub`), {
    status: 201,
    hub: "yes",
    body: {
      url: "https://hub.example/path?x=1",
      method: "POST",
      body: "hi",
      header: "1",
      name: "main",
    },
  });
  assert.deepEqual(await body(s, `${M}/f/fetch-request`), {
    url: "https://hub.example/req",
    method: "PUT",
    body: "r",
    header: null,
    name: "main",
  });
  assert.deepEqual(
    await body(s, `${M}/f/fetch-throw`),
    caught({ name: "RangeError", message: "fetch failed on purpose", remote: true }),
  );
}]);

CASES.push([
  "newUniqueId() ids round-trip through idFromString; the object has no name",
  async (s) => {
    const result = await body(s, `${M}/u/unique`) as {
      name: null;
      roundTrip: boolean;
      who: { name: string | null; id: string };
      sameId: boolean;
      distinct: boolean;
    };
    assert.equal(result.name, null);
    assert.equal(result.roundTrip, true);
    assert.equal(result.who.name, null);
    assert.equal(result.sameId, true);
    assert.equal(result.distinct, true);
  },
]);

CASES.push(["idFromName() matches the data plane's ids; bad ids are refused", async (s) => {
  assert.deepEqual(await body(s, `${M}/ids/ids`), {
    fromName: objectIdFromName("app_default/hub", "main"),
    nameKept: "main",
    stubName: "main",
    notHex: caught({
      name: "TypeError",
      message: "Invalid Durable Object ID: must be 64 hex digits",
      isTypeError: true,
    }),
    otherNamespace: caught({
      name: "TypeError",
      message: "Durable Object ID is not valid for this namespace.",
      isTypeError: true,
    }),
    getOther: caught({
      name: "TypeError",
      message: "Durable Object ID is not valid for this namespace.",
      isTypeError: true,
    }),
  });
  const direct = await getJson(s, "/_do/hub/main");
  assert.equal(direct.status, 201);
  assert.equal((direct.body as { name: string }).name, "main", "the data plane's object");
}]);

CASES.push(["an object can call itself through its own namespace", async (s) => {
  assert.equal(await body(s, `${M}/me/self`), "pong from me");
}]);

CASES.push(["RPC needs `extends DurableObject`; fetch() works on any class", async (s) => {
  assert.deepEqual(await body(s, `${M}/p/plain`), {
    rpc: caught({
      name: "TypeError",
      message: "The receiving Durable Object does not support RPC, because its class was not " +
        "declared with `extends DurableObject`. In order to enable RPC, make sure your class " +
        "extends the special class `DurableObject`, which can be imported from the module " +
        '"cloudflare:workers".',
      isTypeError: true,
      remote: true,
    }),
    fetch: "plain",
  });
}]);

Deno.test("object calls: env namespaces, stubs and JS RPC through real instance workers", async (t) => {
  await using server = await startServer({ flags: ["--block-timeout-ms", "500"] });
  await server.deploy("hub", await fixture("hub_do.ts"));
  await server.deploy("member", await fixture("member_do.ts"));
  await server.deploy("plain", await fixture("plain_do.ts"));
  for (const [name, run] of CASES) await t.step(name, () => run(server));
});
