/**
 * `dohost deploy <file.ts>`: uploads one class file. The class name defaults to the file name
 * in kebab-case (`ChatRoom.ts`, `chat_room.ts` → `chat-room`). A failed deploy prints the
 * server's message with the file, line and column, as compilers do (`file.ts:3:7: …`).
 */

import { basename, extname } from "node:path";
import { type ApiClient, ApiError, appPath } from "./client.ts";
import { APP_FLAG, clientCommand } from "./client_command.ts";
import { COMMON_OPTIONS, printJson, UsageError } from "./io.ts";

/** The answer of a deploy, as the control API gives it. */
export interface DeployResult {
  name: string;
  status: string;
  class_name: string | null;
  access_mode: string;
  error_message?: string | null;
}

/** How one file's deploy went: its class name and the result or the failure, printable. */
export interface DeployOutcome {
  name: string;
  ok: boolean;
  /** One line: `deployed …` or `file:line:col: error: …`. */
  line: string;
  result: DeployResult | null;
}

/** The class name a file deploys as. */
export function classNameOf(file: string): string {
  return basename(file, extname(file))
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .replace(/[_\s.]+/g, "-")
    .toLowerCase();
}

/** Deploys `file` and describes the outcome; API failures are outcomes, not exceptions. */
export async function deployFile(
  client: ApiClient,
  file: string,
  options: { app: string; name?: string; accessMode?: string },
): Promise<DeployOutcome> {
  const name = options.name ?? classNameOf(file);
  const code = await Deno.readTextFile(file);
  const body: Record<string, string> = { name, code };
  if (options.accessMode) body.access_mode = options.accessMode;
  try {
    const result = await client.json(
      "POST",
      `${appPath(options.app)}/durable-objects`,
      body,
    ) as DeployResult;
    if (result.status === "READY") {
      const line = `deployed ${file} as "${name}" (class ${result.class_name}, ` +
        `${result.access_mode}) to ${options.app}`;
      return { name, ok: true, line, result };
    }
    const message = result.error_message ?? `status ${result.status}`;
    return { name, ok: false, line: located(file, message), result };
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const tag = error.reason ? ` (${error.reason})` : "";
    return { name, ok: false, line: located(file, error.message + tag), result: null };
  }
}

/** `file:line:col: error: message` when the message names a position, else `file: error: …`. */
export function located(file: string, message: string): string {
  const at = /line (\d+), column (\d+)/.exec(message);
  return at ? `${file}:${at[1]}:${at[2]}: error: ${message}` : `${file}: error: ${message}`;
}

/** `dohost deploy`. */
export const deployCommand = clientCommand({
  name: "deploy",
  summary: "Deploy a class file",
  usage: `Usage: dohost deploy <file.ts> [--name <name>] [--app <app_id>] [--access-mode <mode>]

Deploys one TypeScript file exporting one Durable Object class.`,
  options: {
    ...COMMON_OPTIONS,
    app: { type: "string" },
    name: { type: "string" },
    "access-mode": { type: "string" },
  } as const,
  flags: [
    ["--name", "Class name (default: the file name in kebab-case)"],
    APP_FLAG,
    ["--access-mode", "public, authenticated (the server's default) or service_key"],
  ],
  async run({ values, positionals, io, client }) {
    const [file, ...extra] = positionals;
    if (!file || extra.length) throw new UsageError("expected exactly one file");
    const outcome = await deployFile(client(), file, {
      app: values.app ?? "app_default",
      name: values.name,
      accessMode: values["access-mode"],
    });
    if (values.json && outcome.result) printJson(io, outcome.result);
    else if (outcome.ok) io.out(outcome.line);
    else io.err(outcome.line);
    return outcome.ok ? 0 : 1;
  },
});
