import { DurableObject } from "cloudflare:workers";

interface ChatMessage {
  user: string;
  text: string;
  at: number;
}

const HISTORY = 200;

/**
 * A chat room per instance id (/_do/chat-room/<room>). HTTP: GET returns the history, POST
 * {user, text} appends a message and broadcasts it. WebSocket: connect to the same URL; the
 * room sends {type:"init", messages} and then every message as it arrives. Uses the
 * Hibernation API, so an idle room costs nothing while its sockets stay open.
 */
export class ChatRoom extends DurableObject {
  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade") === "websocket") {
      const pair = new WebSocketPair();
      this.ctx.acceptWebSocket(pair[1]);
      pair[1].send(JSON.stringify({ type: "init", messages: await this.#history() }));
      return new Response(null, { status: 101, webSocket: pair[0] });
    }
    if (request.method === "POST") {
      const body = await request.json() as Partial<ChatMessage>;
      if (typeof body.user !== "string" || typeof body.text !== "string") {
        return new Response("expected {user, text}", { status: 400 });
      }
      const message = await this.#append({ user: body.user, text: body.text, at: Date.now() });
      return Response.json(message);
    }
    return Response.json(await this.#history());
  }

  async webSocketMessage(_ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    if (typeof raw !== "string") return;
    let parsed: Partial<ChatMessage>;
    try {
      parsed = JSON.parse(raw);
    } catch {
      return;
    }
    if (typeof parsed.text !== "string") return;
    await this.#append({
      user: String(parsed.user ?? "anonymous"),
      text: parsed.text,
      at: Date.now(),
    });
  }

  webSocketClose(ws: WebSocket, code: number, reason: string): void {
    // 1005/1006 describe a close without a code; they cannot be sent back.
    ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
  }

  async #history(): Promise<ChatMessage[]> {
    return (await this.ctx.storage.get<ChatMessage[]>("messages")) ?? [];
  }

  async #append(message: ChatMessage): Promise<ChatMessage> {
    const messages = [...(await this.#history()), message].slice(-HISTORY);
    await this.ctx.storage.put("messages", messages);
    const frame = JSON.stringify({ type: "message", message });
    for (const peer of this.ctx.getWebSockets()) {
      try {
        peer.send(frame);
      } catch {
        // a closing socket: skip it
      }
    }
    return message;
  }
}
