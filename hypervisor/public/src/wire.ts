/**
 * The one msgpackr codec for xenlab's own protocols (hypercalls from a process to the
 * hypervisor, toolstack requests from xl): frames are a 4-byte big-endian length followed by one
 * msgpack value, so each decodes on its own. Every request carries `id`, echoed in its reply.
 * msgpackr is imported here and nowhere else (CONVENTIONS.md, "One wire module per protocol").
 */
import { Packr, RESERVE_START_SPACE } from 'msgpackr';
import { connect, type Socket } from 'node:net';

/**
 * `copyBuffers`: a decoded binary field is a copy, never a view of the receive buffer, which
 * `FrameDecoder` reuses for the next frames.
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, copyBuffers: true });

/** Largest frame body accepted; a peer sending more is broken or hostile and is disconnected. */
export const MAX_FRAME_BYTES = 16 << 20;

export class WireError extends Error {
  override name = 'WireError';
}

/**
 * One frame: msgpackr packs `msg` after 4 reserved bytes of its own output buffer, which then
 * take the length (no second buffer, no copy). The result is a view of msgpackr's buffer that
 * later packs never overwrite, so it may sit in a socket's write queue.
 */
export function encodeFrame(msg: unknown): Buffer {
  const out = packr.pack(msg, RESERVE_START_SPACE | 4);
  const len = out.length - 4;
  if (len > MAX_FRAME_BYTES) throw new WireError(`frame of ${len} bytes exceeds ${MAX_FRAME_BYTES}`);
  out.writeUInt32BE(len, 0);
  return out;
}

const DECODER_BYTES = 16 << 10;
/** msgpackr reads `start`/`end` once at the beginning of each unpack: one object serves all. */
const unpackRange = { start: 0, end: 0 };

/**
 * Reassembles frames from a byte stream. `push` returns every complete message so far. Bytes
 * are gathered in one receive buffer that is reused (grown only for a frame that needs it), and
 * frames are decoded in place: no buffer, view or DataView per chunk or frame.
 */
export class FrameDecoder {
  private buf = Buffer.allocUnsafe(DECODER_BYTES);
  /** Unconsumed bytes are buf[start, end). */
  private start = 0;
  private end = 0;

  push(chunk: Buffer): unknown[] {
    this.append(chunk);
    const out: unknown[] = [];
    const buf = this.buf;
    while (this.end - this.start >= 4) {
      const len = buf.readUInt32BE(this.start);
      if (len > MAX_FRAME_BYTES) throw new WireError(`frame length ${len} exceeds ${MAX_FRAME_BYTES}`);
      if (this.end - this.start < 4 + len) break;
      const body = this.start + 4;
      this.start = body + len;
      try {
        unpackRange.start = body;
        unpackRange.end = body + len;
        out.push(packr.unpack(buf, unpackRange));
      } catch (e) {
        throw new WireError(`undecodable frame: ${(e as Error).message}`);
      }
    }
    if (this.start === this.end) {
      this.start = this.end = 0;
      if (this.buf.length > DECODER_BYTES) this.buf = Buffer.allocUnsafe(DECODER_BYTES); // after a big frame
    }
    return out;
  }

  private append(chunk: Buffer): void {
    if (this.end + chunk.length > this.buf.length) {
      const live = this.end - this.start;
      const need = live + chunk.length;
      const into = need <= this.buf.length ? this.buf : Buffer.allocUnsafe(Math.max(need, 2 * this.buf.length));
      this.buf.copy(into, 0, this.start, this.end);
      this.buf = into;
      this.start = 0;
      this.end = live;
    }
    chunk.copy(this.buf, this.end);
    this.end += chunk.length;
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
  /** Turns the reply into the result (a throw rejects), in the same turn. */
  map: ((reply: unknown) => unknown) | undefined;
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

  /**
   * Sends `{ ...body, id }`; resolves with the reply, or with `map(reply)` if given (one promise
   * per request however the caller post-processes the reply).
   */
  request<R = unknown>(body: Record<string, unknown>, map?: (reply: unknown) => R): Promise<R> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      const deadline = this.timeoutMs > 0 ? performance.now() + this.timeoutMs : Infinity;
      if (this.timeoutMs > 0 && !this.sweeper) {
        this.sweeper = setInterval(() => this.sweep(), Math.min(this.timeoutMs, 250));
        this.sweeper.unref();
      }
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, deadline, map });
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
    if (!p.map) {
      p.resolve(m);
      return;
    }
    let v: unknown;
    try {
      v = p.map(m);
    } catch (e) {
      p.reject(e as Error);
      return;
    }
    p.resolve(v);
  }
}
