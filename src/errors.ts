/**
 * Errors a client can cause, and the JSON envelope they are answered with.
 *
 * The envelope is Butterbase's `{"error":{"code","message","remediation"}}`. `code` keeps the
 * public code the original service sends (so existing clients keep working); `reason` adds
 * the specific cause (`NO_EXPORTED_CLASS`, `INVALID_NAME`, …) so clients can tell causes apart.
 */

import type { StorageFaultCode } from "../workers/protocol.ts";

/** Public error codes and their HTTP status. */
export const ERROR_STATUS = {
  REQUEST_ERROR: 400,
  VALIDATION_INVALID_SCHEMA: 400,
  AUTH_INVALID_TOKEN: 401,
  AUTH_INVALID_API_KEY: 401,
  AUTH_REQUIRED: 401,
  AUTH_FORBIDDEN: 403,
  RESOURCE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
} as const;

/** One of the public error codes. */
export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * The data-plane status of each storage fault (`x-dohost-error`), where the instance itself is
 * not to blame: a locked or unreadable database may work on a retry (503), a corrupt one will
 * not (500), and 507 Insufficient Storage says a write did not fit, on the disk or under
 * `--max-storage-bytes`.
 */
export const STORAGE_FAULT_STATUS: Record<StorageFaultCode, number> = {
  STORAGE_UNAVAILABLE: 503,
  STORAGE_CORRUPTED: 500,
  STORAGE_FULL: 507,
  STORAGE_LIMIT_EXCEEDED: 507,
};

/** Options for {@linkcode ServerError}. */
export interface ServerErrorOptions {
  remediation?: string;
  reason?: string;
  status?: number;
}

const DEFAULT_REMEDIATION = "Check your request parameters and retry.";

/** An error a client caused; answered as the JSON envelope with a 4xx status. */
export class ServerError extends Error {
  override name = "ServerError";
  readonly code: ErrorCode;
  readonly status: number;
  readonly remediation: string;
  readonly reason: string | undefined;

  constructor(code: ErrorCode, message: string, options: ServerErrorOptions = {}) {
    super(message);
    this.code = code;
    this.status = options.status ?? ERROR_STATUS[code];
    this.remediation = options.remediation ?? DEFAULT_REMEDIATION;
    this.reason = options.reason;
  }

  /** The JSON body of the envelope. */
  toJSON(): { error: Record<string, string> } {
    const error: Record<string, string> = {
      code: this.code,
      message: this.message,
      remediation: this.remediation,
    };
    if (this.reason) error.reason = this.reason;
    return { error };
  }
}

/** Answers `error` as the JSON envelope. */
export function errorResponse(error: ServerError): Response {
  return Response.json(error.toJSON(), { status: error.status });
}
