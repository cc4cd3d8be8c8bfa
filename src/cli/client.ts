/**
 * The client commands' connection to a dohost server: the control API with a bearer token,
 * answers parsed as JSON, and the error envelope turned into an {@linkcode ApiError} the
 * commands print the same way.
 */

import { clientConfig, ConfigError } from "../config.ts";
import type { CliIo } from "./io.ts";
import { UsageError } from "./io.ts";

/** A failed API call, from the server's error envelope (or a connection failure). */
export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  readonly code: string;
  readonly reason: string | undefined;
  readonly remediation: string | undefined;

  constructor(
    status: number,
    error: { code: string; message: string; reason?: string; remediation?: string },
  ) {
    super(error.message);
    this.status = status;
    this.code = error.code;
    this.reason = error.reason;
    this.remediation = error.remediation;
  }
}

/** How requests are sent: `fetch`, or a server's handler called in-process (`dev`). */
export type Transport = (request: Request) => Promise<Response>;

/** A control-API client. */
export class ApiClient {
  readonly url: string;
  readonly #token: string;
  readonly #transport: Transport;

  constructor(url: string, token: string, transport: Transport = fetch) {
    this.url = url;
    this.#token = token;
    this.#transport = transport;
  }

  /** Sends a JSON request and returns the parsed answer; failures throw {@linkcode ApiError}. */
  async json(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await this.send(method, path, {
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
    return await response.json();
  }

  /** Sends a request; a non-2xx answer throws {@linkcode ApiError}. */
  async send(
    method: string,
    path: string,
    init: { body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const request = new Request(`${this.url}${path}`, {
      method,
      body: init.body,
      signal: init.signal,
      headers: { ...init.headers, authorization: `Bearer ${this.#token}` },
    });
    let response: Response;
    try {
      response = await this.#transport(request);
    } catch (error) {
      if (init.signal?.aborted) throw error;
      const detail = error instanceof Error ? error.message : String(error);
      throw new ApiError(0, {
        code: "CONNECTION_FAILED",
        message: `Cannot reach the server at ${this.url}: ${detail}`,
        remediation: "Start it with `deno task start`, or pass --url / set DOHOST_URL.",
      });
    }
    if (response.ok) return response;
    const text = await response.text();
    let envelope: unknown = null;
    try {
      envelope = JSON.parse(text);
    } catch {
      // not the JSON envelope: report the text
    }
    const error = (envelope as { error?: unknown } | null)?.error;
    if (error && typeof error === "object" && "message" in error && "code" in error) {
      throw new ApiError(response.status, error as ConstructorParameters<typeof ApiError>[1]);
    }
    throw new ApiError(response.status, { code: `HTTP_${response.status}`, message: text });
  }
}

/** The client for `--url` and the environment; a missing token is a {@linkcode UsageError}. */
export function clientFor(url: string | undefined, io: CliIo): ApiClient {
  let config;
  try {
    config = clientConfig(url, io.env);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  if (!config.token) {
    throw new UsageError(
      "No token: set DOHOST_ADMIN_TOKEN (the admin token or an app's service key), or run the " +
        "command where ./data/admin_token is",
    );
  }
  return new ApiClient(config.url, config.token);
}

/** Prints an {@linkcode ApiError} as `error: message (code/reason)` plus the remediation. */
export function printApiError(io: CliIo, error: ApiError): void {
  const tag = error.reason ? `${error.code}/${error.reason}` : error.code;
  io.err(`error: ${error.message} (${tag})`);
  if (error.remediation) io.err(`  ${error.remediation}`);
}

/** `/v1/<app>` with the app id encoded. */
export function appPath(app: string): string {
  return `/v1/${encodeURIComponent(app)}`;
}
