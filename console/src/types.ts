/// <reference lib="dom" />
/**
 * The shapes of the control-API answers the console reads (see the README's tables).
 */

/** `GET /v1/apps` row. */
export interface AppInfo {
  app_id: string;
  name: string;
  subdomain: string;
  service_key_prefix: string | null;
  created_at: string;
}

/** `GET /v1/:appId/durable-objects` row. */
export interface ClassInfo {
  id: string;
  name: string;
  class_name: string | null;
  status: "READY" | "ERROR";
  access_mode: AccessMode;
  last_deployed_at: string | null;
  error_message: string | null;
}

/** The access modes a class can have. */
export type AccessMode = "public" | "authenticated" | "service_key";

/** Request and CPU figures of one period. */
export interface Figures {
  requests: number;
  cpu_ms: number;
  ws_messages_in: number;
  ws_messages_out: number;
}

/** Month and all-time figures of a class or instance. */
export interface UsageRow {
  name: string | null;
  month: Figures;
  total: Figures;
  storage_bytes: number;
}

/** `GET …/usage`. */
export interface UsageReport {
  period: string;
  class: UsageRow;
  classes: UsageRow[];
  instances: (UsageRow & { id: string })[];
}

/** `GET …/instances` row. */
export interface InstanceInfo {
  id: string;
  name: string | null;
  state: "live" | "hibernated" | "stopped";
  storage_bytes: number;
  alarm: string | null;
  sockets: number;
  last_active: string | null;
}

/** One KV entry of `GET …/storage`. */
export interface KvItem {
  key: string;
  type: string;
  value: unknown;
  size: number;
}

/** `GET …/storage`. */
export interface KvPage {
  items: KvItem[];
  next: string | null;
}

/** `POST …/sql`. */
export interface SqlResult {
  columns: string[];
  rows: Record<string, unknown>[];
  truncated: boolean;
}

/** One line of object output from `GET …/logs`. */
export interface LogEntry {
  seq: number;
  time: string;
  level: string;
  app: string;
  class: string;
  instance: string;
  message: string;
}
