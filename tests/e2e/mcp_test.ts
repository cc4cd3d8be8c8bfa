import assert from "node:assert/strict";
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/streamableHttp"
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { fixture, startServer, type TestServer } from "../_helpers.ts";

const TOOL = "manage_durable_objects";

/** An MCP client of `server`'s `/mcp`, sending `Authorization: Bearer <token>` unless null. */
async function connect(
  server: TestServer,
  token: string | null = server.adminToken,
): Promise<Client & AsyncDisposable> {
  const headers: Record<string, string> = token === null
    ? {}
    : { authorization: `Bearer ${token}` };
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers },
  });
  const client = new Client({ name: "dohost-test", version: "1.0.0" });
  await client.connect(transport);
  return Object.assign(client, { [Symbol.asyncDispose]: () => client.close() });
}

/** Calls the tool and returns its single text and `isError`. */
async function call(
  client: Client,
  args: Record<string, unknown>,
): Promise<{ text: string; isError: boolean }> {
  const result = await client.callTool({ name: TOOL, arguments: args });
  const content = result.content as Array<{ type: string; text: string }>;
  assert.equal(content.length, 1);
  assert.equal(content[0]?.type, "text");
  return { text: content[0]?.text ?? "", isError: result.isError === true };
}

/** The REST answer's body text for the same operation, for comparison. */
async function rest(
  server: TestServer,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<unknown> {
  return await (await server.api(method, path, body, token)).json();
}

Deno.test("mcp: initialize and tools/list show manage_durable_objects with the original's schema", async () => {
  await using server = await startServer();
  await using client = await connect(server);
  assert.ok(client.getServerCapabilities()?.tools);
  const { tools } = await client.listTools();
  assert.equal(tools.length, 1);
  const tool = tools[0];
  assert.ok(tool);
  assert.equal(tool.name, TOOL);
  assert.equal(tool.title, "Manage Durable Objects");
  assert.deepEqual(tool.annotations, {
    title: "Manage Durable Objects",
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: true,
  });
  assert.match(tool.description ?? "", /\/_do\/<name>\/<instance-id>/);
  const schema = tool.inputSchema as {
    type: string;
    required: string[];
    additionalProperties: boolean;
    properties: Record<string, { type: string; enum?: string[] }>;
  };
  assert.equal(schema.type, "object");
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(schema.required, ["app_id", "action"]);
  assert.deepEqual(Object.keys(schema.properties).sort(), [
    "access_mode",
    "action",
    "app_id",
    "code",
    "key",
    "name",
    "value",
  ]);
  assert.deepEqual(schema.properties.action?.enum, [
    "deploy",
    "list",
    "get",
    "delete",
    "usage",
    "list_env",
    "set_env",
    "delete_env",
  ]);
  assert.deepEqual(schema.properties.access_mode?.enum, ["public", "authenticated", "service_key"]);
  for (const field of ["app_id", "name", "code", "key", "value"]) {
    assert.equal(schema.properties[field]?.type, "string", field);
  }
});

Deno.test("mcp: deploy, list, get, usage and delete answer like the REST routes", async () => {
  await using server = await startServer();
  await using client = await connect(server);
  const code = await fixture("counter.ts");

  const deployed = await call(client, {
    app_id: "app_default",
    action: "deploy",
    name: "counter",
    code,
  });
  assert.equal(deployed.isError, false);
  const port = new URL(server.url).port;
  const sentence = deployed.text.match(
    /^Deployed Durable Object `counter` \(id: ([0-9a-f-]{36}), status: READY\)\.\nURL: (.*)$/,
  );
  assert.ok(sentence, deployed.text);
  assert.equal(sentence[2], `http://default.localhost:${port}/_do/counter/<instance-id>`);

  // access_mode defaults to authenticated, as in the original; get shows the stored row.
  const got = await call(client, { app_id: "app_default", action: "get", name: "counter" });
  assert.equal(got.isError, false);
  const row = JSON.parse(got.text);
  assert.equal(row.id, sentence[1]);
  assert.equal(row.access_mode, "authenticated");
  assert.equal(row.code, code);
  assert.equal(
    got.text,
    JSON.stringify(await rest(server, "GET", "/v1/app_default/durable-objects/counter"), null, 2),
  );

  // The URL of the deploy text reaches the class once it is public.
  const again = await call(client, {
    app_id: "app_default",
    action: "deploy",
    name: "counter",
    code,
    access_mode: "public",
  });
  assert.equal(again.isError, false);
  const url = sentence[2].replace("<instance-id>", "lobby");
  const hit = await server.server.handler(
    new Request(url, { method: "POST", headers: { host: new URL(url).host } }),
  );
  assert.equal(hit.status, 200);
  assert.equal((await hit.json()).value, 1);

  const list = await call(client, { app_id: "app_default", action: "list" });
  assert.equal(list.isError, false);
  assert.equal(
    list.text,
    JSON.stringify(await rest(server, "GET", "/v1/app_default/durable-objects"), null, 2),
  );
  assert.equal(JSON.parse(list.text).durable_objects[0].access_mode, "public");

  const usage = await call(client, { app_id: "app_default", action: "usage", name: "counter" });
  assert.equal(usage.isError, false);
  assert.equal(
    usage.text,
    JSON.stringify(
      await rest(server, "GET", "/v1/app_default/durable-objects/counter/usage"),
      null,
      2,
    ),
  );
  assert.ok(JSON.parse(usage.text).do_requests >= 1);

  const deleted = await call(client, { app_id: "app_default", action: "delete", name: "counter" });
  assert.deepEqual(deleted, {
    text: JSON.stringify({ deleted: true, name: "counter" }, null, 2),
    isError: false,
  });
  assert.deepEqual(
    JSON.parse((await call(client, { app_id: "app_default", action: "list" })).text),
    {
      durable_objects: [],
    },
  );
});

Deno.test("mcp: deploy, list, get, delete and usage errors are the REST error body as compact JSON", async () => {
  await using server = await startServer();
  await using client = await connect(server);
  const base = "/v1/app_default/durable-objects";
  const code = await fixture("counter.ts");

  const badName = await call(client, {
    app_id: "app_default",
    action: "deploy",
    name: "Bad_Name",
    code,
  });
  const expected = await rest(server, "POST", base, {
    name: "Bad_Name",
    code,
    access_mode: "authenticated",
  });
  assert.deepEqual(badName, { text: JSON.stringify(expected), isError: true });
  assert.equal((expected as { error: { code: string } }).error.code, "VALIDATION_INVALID_SCHEMA");

  const noClass = await call(client, { app_id: "app_default", action: "get", name: "ghost" });
  assert.deepEqual(noClass, {
    text: JSON.stringify(await rest(server, "GET", `${base}/ghost`)),
    isError: true,
  });
  assert.equal(JSON.parse(noClass.text).error.message, "Durable Object not found");

  const noDelete = await call(client, { app_id: "app_default", action: "delete", name: "ghost" });
  assert.equal(noDelete.isError, true);
  assert.equal(JSON.parse(noDelete.text).error.message, "DO not found");

  for (const action of ["list", "usage"]) {
    const noApp = await call(client, { app_id: "app_nope", action, name: "x" });
    assert.deepEqual(noApp, {
      text: JSON.stringify(await rest(server, "GET", "/v1/app_nope/durable-objects")),
      isError: true,
    });
    assert.equal(JSON.parse(noApp.text).error.message, "App not found");
  }
});

Deno.test("mcp: env actions answer pretty JSON, errors included, flagged with isError", async () => {
  await using server = await startServer();
  await using client = await connect(server);
  const env = (args: Record<string, unknown>) => call(client, { app_id: "app_default", ...args });

  assert.deepEqual(await env({ action: "list_env" }), {
    text: JSON.stringify({ keys: [] }, null, 2),
    isError: false,
  });
  // An empty value is a value.
  assert.deepEqual(await env({ action: "set_env", key: "GREETING", value: "" }), {
    text: JSON.stringify({ key: "GREETING", redeployed: false }, null, 2),
    isError: false,
  });
  assert.deepEqual(JSON.parse((await env({ action: "list_env" })).text), { keys: ["GREETING"] });

  const badKey = await env({ action: "set_env", key: "bad-key", value: "x" });
  const expected = await rest(server, "PUT", "/v1/app_default/durable-objects/env/bad-key", {
    value: "x",
  });
  assert.deepEqual(badKey, { text: JSON.stringify(expected, null, 2), isError: true });
  assert.equal((expected as { error: { code: string } }).error.code, "VALIDATION_INVALID_SCHEMA");

  assert.deepEqual(await env({ action: "delete_env", key: "GREETING" }), {
    text: JSON.stringify({ deleted: true, key: "GREETING", redeployed: false }, null, 2),
    isError: false,
  });
  assert.deepEqual(JSON.parse((await env({ action: "list_env" })).text), { keys: [] });

  const noApp = await call(client, { app_id: "app_nope", action: "list_env" });
  assert.deepEqual(noApp, {
    text: JSON.stringify(await rest(server, "GET", "/v1/app_nope/durable-objects/env"), null, 2),
    isError: true,
  });
});

Deno.test("mcp: missing required arguments give the original's error texts", async () => {
  await using server = await startServer();
  await using client = await connect(server);
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ action: "deploy", code: "x" }, '"name" is required for deploy.'],
    [{ action: "deploy", name: "", code: "x" }, '"name" is required for deploy.'],
    [{ action: "deploy", name: "counter" }, '"code" is required for deploy.'],
    [{ action: "deploy", name: "counter", code: "" }, '"code" is required for deploy.'],
    [{ action: "get" }, '"name" is required for get.'],
    [{ action: "delete", name: "" }, '"name" is required for delete.'],
    [{ action: "usage" }, '"name" is required for usage.'],
    [{ action: "set_env", value: "v" }, '"key" is required for set_env.'],
    [{ action: "set_env", key: "", value: "v" }, '"key" is required for set_env.'],
    [{ action: "set_env", key: "K" }, '"value" is required for set_env.'],
    [{ action: "delete_env" }, '"key" is required for delete_env.'],
  ];
  for (const [args, message] of cases) {
    assert.deepEqual(await call(client, { app_id: "app_default", ...args }), {
      text: `Error: ${message}`,
      isError: true,
    });
  }
  // Nothing was created by the refused calls.
  assert.deepEqual(
    JSON.parse((await call(client, { app_id: "app_default", action: "list" })).text),
    {
      durable_objects: [],
    },
  );
});

Deno.test("mcp: arguments that break the schema are refused with the SDK's validation error", async () => {
  await using server = await startServer();
  await using client = await connect(server);
  const prefix =
    "MCP error -32602: Input validation error: Invalid arguments for tool manage_durable_objects: ";
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ app_id: "app_default", action: "list", instance_id: "x" }, /instance_id/],
    [{ app_id: "app_default", action: "restart" }, /action/],
    [{ action: "list" }, /app_id/],
    [
      { app_id: "app_default", action: "deploy", name: "a", code: "x", access_mode: "open" },
      /access_mode/,
    ],
    [{ app_id: "app_default", action: "set_env", key: "K", value: 1 }, /value/],
  ];
  for (const [args, detail] of cases) {
    const result = await call(client, args);
    assert.equal(result.isError, true);
    assert.ok(result.text.startsWith(prefix), result.text);
    assert.match(result.text.slice(prefix.length), detail);
  }
});

Deno.test("mcp: without Authorization the handshake works and every call is the REST 401 body", async () => {
  await using server = await startServer();
  await using client = await connect(server, null);
  assert.equal((await client.listTools()).tools[0]?.name, TOOL);
  const anonymous = await (await server.fetch("/v1/app_default/durable-objects")).json();
  assert.equal(anonymous.error.message, "Authentication required");
  assert.deepEqual(await call(client, { app_id: "app_default", action: "list" }), {
    text: JSON.stringify(anonymous),
    isError: true,
  });
  const env = await call(client, { app_id: "app_default", action: "list_env" });
  assert.deepEqual(env, { text: JSON.stringify(anonymous, null, 2), isError: true });
});

Deno.test("mcp: an invalid token is refused with the REST API's 401", async () => {
  await using server = await startServer();
  for (const token of ["bb_sk_not_a_key", "wrong-admin-token"]) {
    await assert.rejects(connect(server, token), (error: unknown) => {
      assert.ok(error instanceof StreamableHTTPError);
      assert.equal(error.code, 401);
      return true;
    });
  }
  const res = await server.fetch("/mcp", {
    method: "POST",
    headers: { authorization: "Bearer bb_sk_not_a_key", "content-type": "application/json" },
    body: "{}",
  });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error.code, "AUTH_INVALID_API_KEY");
});

Deno.test("mcp: an app's service key manages its own app and no other", async () => {
  await using server = await startServer();
  const created = await rest(server, "POST", "/v1/apps", { name: "shop" }) as {
    app_id: string;
    service_key: string;
  };
  await using client = await connect(server, created.service_key);
  const own = await call(client, {
    app_id: created.app_id,
    action: "deploy",
    name: "counter",
    code: await fixture("counter.ts"),
    access_mode: "public",
  });
  assert.equal(own.isError, false);
  assert.match(
    own.text,
    new RegExp(`URL: http://shop\\.localhost:\\d+/_do/counter/<instance-id>$`),
  );
  assert.equal(
    JSON.parse((await call(client, { app_id: created.app_id, action: "list" })).text)
      .durable_objects.length,
    1,
  );

  const other = await call(client, { app_id: "app_default", action: "list" });
  assert.equal(other.isError, true);
  assert.equal(JSON.parse(other.text).error.message, "App not found");
  const otherEnv = await call(client, {
    app_id: "app_default",
    action: "set_env",
    key: "K",
    value: "v",
  });
  assert.equal(otherEnv.isError, true);
  assert.equal(JSON.parse(otherEnv.text).error.code, "RESOURCE_NOT_FOUND");
  assert.deepEqual(await rest(server, "GET", "/v1/app_default/durable-objects/env"), { keys: [] });
});

Deno.test("mcp: GET /mcp is 405 (no standalone SSE stream)", async () => {
  await using server = await startServer();
  const res = await server.fetch("/mcp", { headers: { accept: "text/event-stream" } });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get("allow"), "POST, DELETE");
  assert.equal((await res.json()).error.code, -32000);
});
