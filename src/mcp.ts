/**
 * `POST /mcp`: a Model Context Protocol server (Streamable HTTP, stateless, JSON responses)
 * exposing Butterbase's `manage_durable_objects` tool, so an agent configured for the original
 * service can be pointed at dohost unchanged.
 *
 * The tool owns no logic of its own: every action is an in-process request to the control API
 * (`/v1/...`) carrying the caller's `Authorization` header, so authorisation, validation and
 * error bodies are exactly the REST routes'. What this file adds is the original tool's
 * surface: its input schema, its presence checks and the shape of its result texts.
 */

// @ts-types="@modelcontextprotocol/sdk/server/mcp"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
// @ts-types="@modelcontextprotocol/sdk/server/webStandardStreamableHttp"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
// @ts-types="@modelcontextprotocol/sdk/types"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { Hono } from "hono";
import { z } from "zod";
import type { AppStore } from "./apps.ts";
import { controlPrincipal } from "./auth.ts";
import type { Config } from "./config.ts";

/** What the MCP route needs. */
export interface McpDeps {
  adminToken: string;
  apps: AppStore;
  config: Config;
}

/** Answers a control-API request in-process (the main app's `fetch`). */
export type ControlFetch = (request: Request) => Response | Promise<Response>;

/** The tool's name, as the original registers it. */
export const TOOL_NAME = "manage_durable_objects";

/** Largest `/mcp` request body: a 5 MB source, JSON-escaped, plus the envelope. */
const MCP_BODY_LIMIT = 12 * 1024 * 1024;

const ACTIONS = [
  "deploy",
  "list",
  "get",
  "delete",
  "usage",
  "list_env",
  "set_env",
  "delete_env",
] as const;

/**
 * The input schema: one flat object (no per-action union), strict so that a misspelt or
 * invented argument is an error rather than silently dropped, as in the original.
 */
const InputSchema = z.object({
  app_id: z.string().describe("The app's id, e.g. app_default or app_abc123."),
  action: z.enum(ACTIONS).describe("What to do; see the tool description."),
  name: z.string().optional().describe(
    "The class's URL name, lowercase kebab-case (e.g. chat-room). Needed by deploy, get, delete and usage.",
  ),
  code: z.string().optional().describe(
    "deploy only: the TypeScript source, one file exporting exactly one class.",
  ),
  access_mode: z.enum(["public", "authenticated", "service_key"]).optional().describe(
    "deploy only: who may call the class's instances. Defaults to authenticated.",
  ),
  key: z.string().optional().describe("The env var's name. Needed by set_env and delete_env."),
  value: z.string().optional().describe(
    "The env var's value (may be empty). Needed by set_env.",
  ),
}).strict();

type Input = z.infer<typeof InputSchema>;

const DESCRIPTION =
  `Manage the Durable Object (DO) classes of an app on this dohost server: deploy (create or update) a class, list, get or delete classes, read usage, and manage the env vars the app's classes share.

A Durable Object is a stateful actor addressed by a key: each instance id gets one single-threaded object with its own persistent storage (key-value and SQL). Use one when some state belongs to a single room, user, document or agent across many requests (chat rooms, multiplayer games, rate limiters, long-running agents). Stateless work does not need one.

Actions and their arguments:
  deploy      { app_id, action: "deploy", name, code, access_mode? }  create or update a class
  list        { app_id, action: "list" }                               every class of the app, with status
  get         { app_id, action: "get", name }                          one class, including its source
  delete      { app_id, action: "delete", name }                       remove a class; ALL its instances and their storage are deleted (irreversible)
  usage       { app_id, action: "usage", name }                        do_requests and do_cpu_ms of the current UTC month (totals for the whole app)
  list_env    { app_id, action: "list_env" }                           the env var names (values are never returned)
  set_env     { app_id, action: "set_env", key, value }                create or overwrite one env var
  delete_env  { app_id, action: "delete_env", key }                    remove one env var

Deploying:
  - name is the URL name, lowercase kebab-case (chat-room); the class name is read from the code and need not match it.
  - code is a single TypeScript file with exactly one exported class (a named export; export default class is refused). The class implements fetch(request) and may use ctx.storage, alarms and WebSockets; extending DurableObject from "cloudflare:workers" works.
  - Only "cloudflare:workers" may be imported; npm packages are not supported.
  - Limits: 5 classes per app, 5 MB per source, 10 MiB for all of an app's bundles together.
  - Redeploying a name replaces its code and restarts its live instances; their storage is kept. An omitted access_mode resets the class to "authenticated".

Reaching an instance (HTTP and WebSocket), once deployed:
  http://<app-subdomain>.<server domain>:<port>/_do/<name>/<instance-id>
The object receives the full request URL, /_do/... prefix included.

access_mode:
  - "public": anyone.
  - "authenticated" (the default): Authorization: Bearer <a JWT signed HS256 with the app's jwt_secret>.
  - "service_key": Authorization: Bearer <the app's service key, bb_sk_...>.

Env vars are strings shared by every DO class of the app (as properties of env). Keys match ^[A-Z_][A-Z0-9_]*$ and must not start with BUTTERBASE_; values are at most 8 KB. set_env and delete_env restart the app's live instances, so the next request sees the change.

Common errors (the result is the error body, {"error":{"code","message",...}}):
  - RESOURCE_NOT_FOUND: the app_id does not exist or is not yours, or no class has that name.
  - VALIDATION_INVALID_SCHEMA: a bad name, source or env key; the message says which rule failed.
  - REQUEST_ERROR / AUTH_INVALID_API_KEY / AUTH_INVALID_TOKEN: a missing or wrong Authorization header.

Idempotency: deploy, set_env and delete_env are safe to retry; delete cannot be undone.`;

/**
 * The `/mcp` route. Mount with `app.route("/mcp", mcpRoutes(deps, (r) => app.fetch(r)))`.
 *
 * Stateless: every POST gets a fresh server and transport, so nothing outlives the request.
 * A present but invalid `Authorization` header is refused with the REST API's 401 envelope;
 * without one, the protocol handshake works and each tool call returns the REST API's
 * `Authentication required` error, as the original does.
 */
export function mcpRoutes(deps: McpDeps, control: ControlFetch): Hono {
  const route = new Hono();
  route.get("/", () =>
    Response.json({
      jsonrpc: "2.0",
      error: {
        code: -32000,
        message: "Method Not Allowed: server does not support GET SSE stream",
      },
      id: null,
    }, { status: 405, headers: { allow: "POST, DELETE" } }));
  route.on(["POST", "DELETE"], "/", async (c) => {
    const authorization = c.req.header("authorization");
    if (authorization !== undefined) controlPrincipal(authorization, deps);
    const server = toolServer(new ToolContext(deps, control, c.req.raw, authorization));
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
      maxRequestBodySize: MCP_BODY_LIMIT,
    });
    await server.connect(transport);
    try {
      return await transport.handleRequest(c.req.raw);
    } finally {
      await server.close();
    }
  });
  return route;
}

/** An `McpServer` with the one tool, bound to one HTTP request's caller. */
function toolServer(context: ToolContext): McpServer {
  const server = new McpServer({ name: "dohost", version: "0.1.0" });
  server.registerTool(TOOL_NAME, {
    title: "Manage Durable Objects",
    description: DESCRIPTION,
    inputSchema: InputSchema,
    annotations: {
      title: "Manage Durable Objects",
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: true,
    },
  }, (args) => runAction(context, args));
  return server;
}

/** One action. Thrown errors become `isError` results with the error's message as text. */
async function runAction(context: ToolContext, args: Input): Promise<CallToolResult> {
  const app = `/v1/${encodeURIComponent(args.app_id)}/durable-objects`;
  const name = args.name ? encodeURIComponent(args.name) : "";
  const key = args.key ? encodeURIComponent(args.key) : "";
  switch (args.action) {
    case "deploy": {
      if (!args.name) return missing("name", "deploy");
      if (!args.code) return missing("code", "deploy");
      const result = await context.call("POST", app, {
        name: args.name,
        code: args.code,
        access_mode: args.access_mode ?? "authenticated",
      }) as { id?: unknown; name?: unknown; status?: unknown };
      const deployed = String(result.name);
      return text(
        `Deployed Durable Object \`${deployed}\` (id: ${result.id}, status: ${result.status}).\n` +
          `URL: ${context.appOrigin(args.app_id)}/_do/${deployed}/<instance-id>`,
      );
    }
    case "list":
      return pretty(await context.call("GET", app));
    case "get":
      if (!args.name) return missing("name", "get");
      return pretty(await context.call("GET", `${app}/${name}`));
    case "delete":
      if (!args.name) return missing("name", "delete");
      return pretty(await context.call("DELETE", `${app}/${name}`));
    case "usage":
      if (!args.name) return missing("name", "usage");
      return pretty(await context.call("GET", `${app}/${name}/usage`));
    case "list_env":
      return prettyOutcome(await context.send("GET", `${app}/env`));
    case "set_env":
      if (!args.key) return missing("key", "set_env");
      if (args.value === undefined) return missing("value", "set_env");
      return prettyOutcome(await context.send("PUT", `${app}/env/${key}`, { value: args.value }));
    case "delete_env": {
      if (!args.key) return missing("key", "delete_env");
      const outcome = await context.send("DELETE", `${app}/env/${key}`);
      if (outcome.body === undefined) {
        outcome.body = { key: args.key, message: "Environment variable deleted" };
      }
      return prettyOutcome(outcome);
    }
    default: {
      const unknown: never = args.action;
      throw new Error(`Unknown action ${unknown}`);
    }
  }
}

/** A control-API answer: its status and parsed body (`undefined` when empty). */
interface Outcome {
  ok: boolean;
  body: unknown;
}

/** The caller of one `/mcp` request, and how to reach the control API on its behalf. */
class ToolContext {
  #deps: McpDeps;
  #control: ControlFetch;
  #url: URL;
  #authorization: string | undefined;

  constructor(deps: McpDeps, control: ControlFetch, request: Request, authorization?: string) {
    this.#deps = deps;
    this.#control = control;
    this.#url = new URL(request.url);
    this.#authorization = authorization;
  }

  /** Calls the control API; a non-2xx answer throws its body as compact JSON. */
  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const outcome = await this.send(method, path, body);
    if (!outcome.ok) {
      const error = outcome.body ?? {};
      throw new Error(typeof error === "string" ? error : JSON.stringify(error));
    }
    return outcome.body ?? {};
  }

  /** Calls the control API with the caller's `Authorization` header. */
  async send(method: string, path: string, body?: unknown): Promise<Outcome> {
    const headers = new Headers();
    if (this.#authorization !== undefined) headers.set("authorization", this.#authorization);
    if (body !== undefined) headers.set("content-type", "application/json");
    const response = await this.#control(
      new Request(new URL(path, this.#url.origin), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    const raw = await response.text();
    let parsed: unknown = undefined;
    if (raw) {
      try {
        parsed = JSON.parse(raw);
      } catch {
        parsed = raw;
      }
    }
    return { ok: response.ok, body: parsed };
  }

  /** `http://<subdomain>.<domain>[:port]` of `appId`, with the port this request came in on. */
  appOrigin(appId: string): string {
    const subdomain = this.#deps.apps.get(appId)?.subdomain ?? "<app-subdomain>";
    const port = this.#url.port ? `:${this.#url.port}` : "";
    return `${this.#url.protocol}//${subdomain}.${this.#deps.config.domain}${port}`;
  }
}

/** The original's presence-check failure. */
function missing(field: string, action: string): CallToolResult {
  return {
    content: [{ type: "text", text: `Error: "${field}" is required for ${action}.` }],
    isError: true,
  };
}

function text(value: string): CallToolResult {
  return { content: [{ type: "text", text: value }] };
}

function pretty(body: unknown): CallToolResult {
  return text(JSON.stringify(body, null, 2));
}

/** The env actions' shape: the body pretty-printed either way, `isError` when not 2xx. */
function prettyOutcome(outcome: Outcome): CallToolResult {
  const result = pretty(outcome.body ?? {});
  return outcome.ok ? result : { ...result, isError: true };
}
