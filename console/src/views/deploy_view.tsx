/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * Deploying a class: paste or upload its file, pick the name and access mode, deploy. A
 * failure shows the server's message and reason; when it names a line and column, the
 * offending line is shown with a marker and "Go to line" selects it in the editor.
 */

import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { type Api, ApiError, classPath } from "../api.ts";
import { errorPosition } from "../format.ts";
import { href } from "../route.ts";
import type { AccessMode, ClassInfo } from "../types.ts";
import { Badge, ErrorBox, PageTitle } from "./ui.tsx";

const MODES: [AccessMode, string][] = [
  ["public", "public: anyone may call it"],
  ["authenticated", "authenticated: a JWT of the app"],
  ["service_key", "service_key: the app's service key"],
];

const NAME_PATTERN = "[a-z][a-z0-9]*(-[a-z0-9]+)*";

/** The deploy form; `name` set means redeploying that class. */
export function DeployView(props: { api: Api; app: string; name: string | null }): JSX.Element {
  const { api, app } = props;
  const [name, setName] = useState(props.name ?? "");
  const [mode, setMode] = useState<AccessMode>("public");
  const [code, setCode] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [deployed, setDeployed] = useState<ClassInfo | null>(null);
  const editor = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (!props.name) return;
    api.get<ClassInfo & { code: string }>(classPath(app, props.name)).then((record) => {
      setCode(record.code);
      setMode(record.access_mode);
    }, setError);
  }, [api, app, props.name]);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setDeployed(null);
    try {
      const path = `/v1/${encodeURIComponent(app)}/durable-objects`;
      setDeployed(await api.json<ClassInfo>("POST", path, { name, code, access_mode: mode }));
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const upload = async (event: Event) => {
    const file = (event.currentTarget as HTMLInputElement).files?.[0];
    if (!file) return;
    setCode(await file.text());
    if (!name) setName(suggestName(file.name));
  };
  const position = error instanceof ApiError ? errorPosition(error.message) : null;
  const goToLine = () => {
    const textarea = editor.current;
    if (!textarea || !position) return;
    const offset = offsetOf(code, position.line, position.column);
    textarea.focus();
    textarea.setSelectionRange(offset, offset + 1);
  };

  return (
    <>
      <PageTitle>{props.name ? `Redeploy ${props.name}` : "Deploy a class"}</PageTitle>
      <form class="stack" onSubmit={submit}>
        <div class="grid2">
          <div class="stack">
            <label for="deploy-name">Name</label>
            <input
              id="deploy-name"
              value={name}
              pattern={NAME_PATTERN}
              required
              aria-describedby="deploy-name-help"
              onInput={(event) => setName(event.currentTarget.value)}
            />
            <small id="deploy-name-help" class="muted">
              Lowercase kebab-case, e.g. <code>chat-room</code>. Instances are at{" "}
              <code>/_do/{name || "<name>"}/&lt;id&gt;</code>.
            </small>
          </div>
          <div class="stack">
            <label for="deploy-mode">Access mode</label>
            <select
              id="deploy-mode"
              value={mode}
              onChange={(event) => setMode(event.currentTarget.value as AccessMode)}
            >
              {MODES.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
            </select>
          </div>
        </div>
        <label for="deploy-file">Upload a class file</label>
        <input id="deploy-file" type="file" accept=".ts,.js,.mjs,.mts" onChange={upload} />
        <label for="deploy-code">Source (one TypeScript file exporting one class)</label>
        <textarea
          id="deploy-code"
          ref={editor}
          class="code"
          rows={18}
          spellcheck={false}
          required
          value={code}
          onInput={(event) => setCode(event.currentTarget.value)}
        />
        <div class="row">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? "Deploying…" : props.name ? "Redeploy" : "Deploy"}
          </button>
          {props.name && (
            <a href={href({ view: "instances", app, name: props.name })}>Back to the class</a>
          )}
        </div>
      </form>
      <ErrorBox error={error} title="Deploy failed" />
      {position && (
        <div class="box" role="region" aria-label="Where the error is">
          <p>
            Line {position.line}, column {position.column}{" "}
            <button type="button" onClick={goToLine}>Go to line</button>
          </p>
          <pre class="excerpt">{excerpt(code, position.line, position.column)}</pre>
        </div>
      )}
      {deployed && (
        <div class="box notice" role="status">
          Deployed <strong>{deployed.name}</strong> <Badge value={deployed.status} /> (class{" "}
          <code>{deployed.class_name}</code>).{" "}
          <a href={href({ view: "instances", app, name: deployed.name })}>Open the class</a>
        </div>
      )}
    </>
  );
}

/** `chat_room.ts` → `chat-room`. */
function suggestName(fileName: string): string {
  return fileName.replace(/\.[^.]+$/, "").toLowerCase().replace(/[^a-z0-9]+/g, "-")
    .replace(/^[^a-z]+|-+$/g, "");
}

/** The offset of a 1-based line and column in `text`. */
function offsetOf(text: string, line: number, column: number): number {
  const lines = text.split("\n");
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += (lines[i]?.length ?? 0) + 1;
  return Math.min(offset + Math.max(column - 1, 0), text.length);
}

/** The lines around `line`, numbered, with a caret under `column`. */
function excerpt(text: string, line: number, column: number): string {
  const lines = text.split("\n");
  const out: string[] = [];
  const width = String(line + 1).length;
  for (let n = Math.max(1, line - 2); n <= Math.min(lines.length, line + 1); n++) {
    out.push(`${n === line ? ">" : " "} ${String(n).padStart(width)} | ${lines[n - 1] ?? ""}`);
    if (n === line) out.push(`  ${" ".repeat(width)} | ${" ".repeat(Math.max(column - 1, 0))}^`);
  }
  return out.join("\n");
}
