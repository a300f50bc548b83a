/**
 * The one msgpackr codec for xenlab's own protocols (hypercalls from a process to the
 * hypervisor, toolstack requests from xl): frames are a 4-byte big-endian length followed by one
 * msgpack value, so each decodes on its own. Every request carries `id`, echoed in its reply.
 * msgpackr is imported here and nowhere else (CONVENTIONS.md, "One wire module per protocol").
 */
import { Packr } from 'msgpackr';
import { connect, type Socket } from 'node:net';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/** Largest frame body accepted; a peer sending more is broken or hostile and is disconnected. */
export const MAX_FRAME_BYTES = 16 << 20;

export class WireError extends Error {
  override name = 'WireError';
}

export function encodeFrame(msg: unknown): Buffer {
  const body = packr.pack(msg);
  if (body.length > MAX_FRAME_BYTES) throw new WireError(`frame of ${body.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

export function decodeBody(body: Uint8Array): unknown {
  return packr.unpack(body);
}

/** Reassembles frames from a byte stream. `push` returns every complete message so far. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): unknown[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: unknown[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len > MAX_FRAME_BYTES) throw new WireError(`frame length ${len} exceeds ${MAX_FRAME_BYTES}`);
      if (this.buf.length < 4 + len) break;
      const body = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      try {
        out.push(packr.unpack(body));
      } catch (e) {
        throw new WireError(`undecodable frame: ${(e as Error).message}`);
      }
    }
    return out;
  }
}

/** Calls `onMessage` for each frame read from `socket`; a framing error destroys the socket. */
export function readFrames(socket: Socket, onMessage: (msg: unknown) => void): void {
  const dec = new FrameDecoder();
  socket.on('data', (chunk: Buffer) => {
    let msgs: unknown[];
    try {
      msgs = dec.push(chunk);
    } catch (e) {
      socket.destroy(e as Error);
      return;
    }
    for (const m of msgs) onMessage(m);
  });
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  /** performance.now() after which the request times out. */
  deadline: number;
}

/**
 * A request/reply connection over frames: `request(body)` sends `{ id, ...body }` and resolves
 * with the reply carrying the same id. Replies may arrive out of order.
 */
export class WireConnection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: Error | undefined;
  /** One sweep timer for all deadlines (a timer per request costs more than the request). */
  private sweeper: NodeJS.Timeout | undefined;
  /** Messages that are not replies (no id, or an unknown id): events pushed by the peer. */
  onEvent: ((msg: unknown) => void) | undefined;

  constructor(
    readonly socket: Socket,
    private readonly timeoutMs = 10_000,
  ) {
    readFrames(socket, (m) => this.onMessage(m));
    const fail = (e?: Error) => {
      this.closedError ??= e ?? new WireError('connection closed');
      for (const p of this.pending.values()) p.reject(this.closedError);
      this.pending.clear();
      if (this.sweeper) clearInterval(this.sweeper);
    };
    socket.on('error', fail);
    socket.on('close', () => fail());
  }

  static connect(path: string, timeoutMs = 10_000): Promise<WireConnection> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      const onErr = (e: Error) => reject(e);
      s.once('error', onErr);
      s.once('connect', () => {
        s.off('error', onErr);
        resolve(new WireConnection(s, timeoutMs));
      });
    });
  }

  request<R = unknown>(body: Record<string, unknown>): Promise<R> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      const deadline = this.timeoutMs > 0 ? performance.now() + this.timeoutMs : Infinity;
      if (this.timeoutMs > 0 && !this.sweeper) {
        this.sweeper = setInterval(() => this.sweep(), Math.min(this.timeoutMs, 250));
        this.sweeper.unref();
      }
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, deadline });
      this.socket.write(encodeFrame({ ...body, id }));
    });
  }

  private sweep(): void {
    const t = performance.now();
    for (const [id, p] of this.pending) {
      if (p.deadline > t) continue;
      this.pending.delete(id);
      p.reject(new WireError(`no reply to request ${id} within ${this.timeoutMs} ms`));
    }
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.socket.end();
    this.socket.destroy();
  }

  private onMessage(m: unknown): void {
    const id = (m as { id?: unknown } | null)?.id;
    const p = typeof id === 'number' ? this.pending.get(id) : undefined;
    if (!p) {
      this.onEvent?.(m);
      return;
    }
    this.pending.delete(id as number);
    p.resolve(m);
  }
}
