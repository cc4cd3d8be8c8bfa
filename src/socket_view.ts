/**
 * What the host knows about client WebSockets, as inspection and metrics see it.
 *
 * Hibernation keeps an instance's sockets open on the host while its worker is gone, so only
 * the host-side socket registry can say which instances are hibernated and how many sockets each
 * holds. That registry implements this interface; until it is wired in, {@linkcode NO_SOCKETS}
 * reports none.
 */

import type { InstanceTarget } from "./instances.ts";

/** Read access to the host-side socket registry. */
export interface SocketView {
  /** Open client sockets of one instance (`instanceKey()` of `instances.ts`). */
  count(key: string): number;
  /** Whether the instance is hibernated: no worker, its sockets held by the host. */
  hibernated(key: string): boolean;
  /** The instances of a class that hold open sockets (live or hibernated). */
  holders(appId: string, className: string): InstanceTarget[];
  /** Server-wide totals. */
  totals(): { sockets: number; hibernated: number };
}

/** The view when no socket registry is wired in. */
export const NO_SOCKETS: SocketView = {
  count: () => 0,
  hibernated: () => false,
  holders: () => [],
  totals: () => ({ sockets: 0, hibernated: 0 }),
};
