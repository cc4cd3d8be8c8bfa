/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * Small shared pieces: page titles that take focus on navigation, error and notice boxes,
 * status badges and a confirmation dialog built on `<dialog>` (which traps focus itself).
 */

import type { ComponentChildren, JSX } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { ApiError } from "../api.ts";

/** The page heading; focused when the view opens so screen readers announce it. */
export function PageTitle(props: { children: ComponentChildren }): JSX.Element {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return <h1 ref={ref} tabIndex={-1}>{props.children}</h1>;
}

/** An error from a call, with the server's reason and remedy. */
export function ErrorBox(props: { error: unknown; title?: string }): JSX.Element | null {
  const { error } = props;
  if (!error) return null;
  const api = error instanceof ApiError ? error : null;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div class="box error" role="alert">
      <strong>{props.title ?? "Error"}:</strong> {message}
      {api?.reason && <span class="tag">{api.reason}</span>}
      {api?.remediation && <p class="muted">{api.remediation}</p>}
    </div>
  );
}

/** A status badge (`READY`, `ERROR`, `live`, …). */
export function Badge(props: { value: string }): JSX.Element {
  return <span class={`badge badge-${props.value.toLowerCase()}`}>{props.value}</span>;
}

/** A modal confirmation: `message` says what will happen, `confirm` names the action. */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  children: ComponentChildren;
  confirm: string;
  busy?: boolean;
  error?: unknown;
  onConfirm: () => void;
  onCancel: () => void;
}): JSX.Element {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  }, [props.open]);
  return (
    <dialog
      ref={ref}
      aria-labelledby="confirm-title"
      onCancel={(event) => {
        event.preventDefault();
        props.onCancel();
      }}
    >
      <h2 id="confirm-title">{props.title}</h2>
      <div>{props.children}</div>
      <ErrorBox error={props.error} />
      <div class="actions">
        <button type="button" onClick={props.onCancel}>Cancel</button>
        <button type="button" class="danger" disabled={props.busy} onClick={props.onConfirm}>
          {props.busy ? "Working…" : props.confirm}
        </button>
      </div>
    </dialog>
  );
}

/** "Loading…" for screen readers and eyes, while `loading`. */
export function Loading(props: { loading: boolean }): JSX.Element | null {
  return props.loading ? <p class="muted" role="status">Loading…</p> : null;
}
