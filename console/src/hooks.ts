/// <reference lib="dom" />
/**
 * Loading data in views: one hook that runs a loader, keeps its result or error, ignores
 * answers that arrive after the inputs changed, and can be rerun.
 */

import { useCallback, useEffect, useRef, useState } from "preact/hooks";

/** The state of a load. */
export interface Loaded<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` now and whenever `inputs` change. */
export function useLoad<T>(load: () => Promise<T>, inputs: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: unknown; loading: boolean }>({
    data: null,
    error: null,
    loading: true,
  });
  const run = useRef(0);
  const reload = useCallback(() => {
    const current = ++run.current;
    setState((old) => ({ ...old, loading: true }));
    load().then(
      (data) => current === run.current && setState({ data, error: null, loading: false }),
      (error) => current === run.current && setState((old) => ({ ...old, error, loading: false })),
    );
  }, inputs);
  useEffect(() => {
    reload();
    return () => {
      run.current++;
    };
  }, [reload]);
  return { ...state, reload };
}

/** Calls `tick` every `ms` while the component is shown. */
export function useInterval(tick: () => void, ms: number): void {
  const latest = useRef(tick);
  latest.current = tick;
  useEffect(() => {
    const timer = setInterval(() => latest.current(), ms);
    return () => clearInterval(timer);
  }, [ms]);
}
