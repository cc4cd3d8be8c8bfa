/**
 * The object's side of its WebSockets: the standard `accept()` API and the Hibernation API.
 *
 * The client sockets live on the host; here each socket is a stand-in whose `send`/`close`
 * become `ws-send`/`ws-close` messages and whose events arrive as `ws-message`/`ws-close`.
 */

import type { WireSocketAccept } from "./protocol.ts";

/** Socket state the object owns; the WebSocket issue fills in the whole API. */
export class WebSocketHub {
  /** The socket a 101 response hands to the client, if the response carries one. */
  takeResponseSocket(_response: Response): WireSocketAccept | undefined {
    return undefined;
  }

  /** Whether any socket keeps the object from hibernating. */
  get count(): number {
    return 0;
  }
}
