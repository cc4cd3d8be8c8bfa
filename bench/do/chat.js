// Benchmark class `chat`: a room on the WebSocket Hibernation API. Each message a socket sends
// is broadcast to every socket of the room, the sender included. A plain GET answers the number
// of connected sockets.
import { DurableObject } from "cloudflare:workers";

export class Chat extends DurableObject {
  fetch(request) {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response(String(this.ctx.getWebSockets().length));
    }
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  webSocketMessage(_sender, message) {
    for (const socket of this.ctx.getWebSockets()) {
      try {
        socket.send(message);
      } catch {
        // the socket is closing; it will not get this message
      }
    }
  }

  webSocketClose(socket, code) {
    try {
      socket.close(code === 1005 || code === 1006 ? 1000 : code, "closed");
    } catch {
      // already closed
    }
  }
}
