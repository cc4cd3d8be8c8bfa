/// <reference lib="dom" />
/**
 * Calls to the control API with the signed-in token. Failures become {@linkcode ApiError}
 * carrying the server's error envelope, so views can show the message, reason and remedy.
 */

/** A failed call: the server's `{"error":{…}}` envelope, or a network failure (status 0). */
export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  readonly code: string;
  readonly reason: string | null;
  readonly remediation: string | null;

  constructor(
    status: number,
    error: { code?: string; message?: string; reason?: string; remediation?: string },
  ) {
    super(error.message ?? `Request failed with status ${status}`);
    this.status = status;
    this.code = error.code ?? "HTTP_ERROR";
    this.reason = error.reason ?? null;
    this.remediation = error.remediation ?? null;
  }
}

/** The control-API client of one signed-in session. */
export class Api {
  readonly token: string;
  readonly #onUnauthorized: () => void;

  constructor(token: string, onUnauthorized: () => void) {
    this.token = token;
    this.#onUnauthorized = onUnauthorized;
  }

  /** Sends a JSON request and returns the parsed JSON answer. */
  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "content-type": "application/json" };
    }
    const response = await this.raw(path, init);
    return await response.json() as T;
  }

  /** `GET` returning JSON. */
  get<T>(path: string): Promise<T> {
    return this.json<T>("GET", path);
  }

  /**
   * Sends a request with the token and returns the response when it succeeded; otherwise
   * throws {@linkcode ApiError}. A 401 also signs the session out.
   */
  async raw(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${this.token}`);
    let response: Response;
    try {
      response = await fetch(path, { ...init, headers });
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") throw error;
      throw new ApiError(0, { message: `The server did not answer (${String(error)})` });
    }
    if (response.ok) return response;
    const failure = await errorOf(response);
    if (response.status === 401) this.#onUnauthorized();
    throw failure;
  }
}

async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const parsed = JSON.parse(text) as { error?: Record<string, string> };
    if (parsed.error) return new ApiError(response.status, parsed.error);
  } catch {
    // not the JSON envelope
  }
  return new ApiError(response.status, { message: text || response.statusText });
}

/** The path of a class's routes. */
export function classPath(appId: string, name: string): string {
  return `/v1/${encodeURIComponent(appId)}/durable-objects/${encodeURIComponent(name)}`;
}

/** The path of an instance's routes. */
export function instancePath(appId: string, name: string, id: string): string {
  return `${classPath(appId, name)}/instances/${encodeURIComponent(id)}`;
}
