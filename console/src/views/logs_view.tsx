/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * Live logs of a class, or of one of its instances: the recent lines, then each new one as it
 * arrives (the server-sent-event stream of `…/logs?follow=1`, reconnecting if it drops), with
 * the activity chart above.
 */

import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { type Api, classPath } from "../api.ts";
import { readEvents } from "../sse.ts";
import type { LogEntry } from "../types.ts";
import { ActivityChart } from "./activity_chart.tsx";
import { ErrorBox } from "./ui.tsx";

const MAX_LINES = 1000;
const BACKLOG = 200;
const RETRY_MS = 2000;

/** The logs tab; `instance` (a name or id) narrows it to one instance. */
export function LogsView(
  props: { api: Api; app: string; name: string; instance: string | null },
): JSX.Element {
  const { api, app, name } = props;
  const [lines, setLines] = useState<LogEntry[]>([]);
  const [filter, setFilter] = useState(props.instance ?? "");
  const [following, setFollowing] = useState(true);
  const [status, setStatus] = useState("connecting");
  const [error, setError] = useState<unknown>(null);
  const list = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const abort = new AbortController();
    let lastSeq = 0;
    const connect = async () => {
      while (!abort.signal.aborted) {
        try {
          const response = await api.raw(
            `${classPath(app, name)}/logs?follow=1&limit=${BACKLOG}`,
            { signal: abort.signal },
          );
          setStatus("following");
          setError(null);
          await readEvents(response, (event) => {
            if (event.event !== "log") return;
            const entry = JSON.parse(event.data) as LogEntry;
            if (entry.seq <= lastSeq) return;
            lastSeq = entry.seq;
            setLines((old) => [...old.slice(-(MAX_LINES - 1)), entry]);
          });
        } catch (failure) {
          if (abort.signal.aborted) return;
          setError(failure);
        }
        if (abort.signal.aborted) return;
        setStatus("reconnecting");
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    };
    connect();
    return () => abort.abort();
  }, [api, app, name]);

  const needle = filter.trim();
  const shown = needle
    ? lines.filter((line) => line.instance === needle || line.instance.startsWith(needle))
    : lines;

  useEffect(() => {
    const element = list.current;
    if (following && element) element.scrollTop = element.scrollHeight;
  }, [shown.length, following]);

  return (
    <section aria-label="Logs">
      <ActivityChart api={api} app={app} name={name} instance={needle || null} />
      <div class="row filters">
        <label for="log-instance">Instance</label>
        <input
          id="log-instance"
          type="search"
          placeholder="all instances"
          value={filter}
          onInput={(event) => setFilter(event.currentTarget.value)}
        />
        <label class="check">
          <input
            type="checkbox"
            checked={following}
            onChange={(event) => setFollowing(event.currentTarget.checked)}
          />{" "}
          Scroll to new lines
        </label>
        <button type="button" onClick={() => setLines([])}>Clear</button>
        <span class="muted small" role="status">Stream: {status}</span>
      </div>
      <ErrorBox error={error} title="Log stream" />
      <div class="logs" ref={list} role="log" aria-label={`Log lines of ${name}`} tabIndex={0}>
        <ol>
          {shown.length === 0 && <li class="muted">No log lines yet.</li>}
          {shown.map((line) => (
            <li key={line.seq} class={`log-${line.level}`}>
              <time dateTime={line.time}>{new Date(line.time).toLocaleTimeString()}</time>{" "}
              <span class="level">{line.level}</span>{" "}
              <span class="instance">{short(line.instance)}</span>{" "}
              <span class="message">{line.message}</span>
            </li>
          ))}
        </ol>
      </div>
    </section>
  );
}

function short(instance: string): string {
  return /^[0-9a-f]{64}$/.test(instance) ? `${instance.slice(0, 12)}…` : instance;
}
