/**
 * The guest's PV console (the role of Mini-OS's console/xencons_ring.c), over the
 * `xencons_interface` page the toolstack set up (io/console.h; its frame and port come from
 * start_info). The shim writes the guest's INT 10h output into `out` and reads `in` for INT 16h.
 * This side owns `out_prod` and `in_cons`; the backend's indices are read once per pass and
 * checked, so a broken backend cannot make the shim loop or read outside the page. Output that
 * does not fit waits (bounded) and goes out when the backend has made room.
 */
import { BAD_INDEX, ByteRing, XENCONS_IN_BYTES, XENCONS_OUT_BYTES, xenconsInterface as L } from '@xenlab/ring-buffers';

export interface ConsoleFrontCounters {
  bytesOut: number;
  bytesIn: number;
  notificationsSent: number;
  /** Output bytes dropped because the pending buffer was full (a backend that stopped reading). */
  outputDropped: number;
  badIndex: number;
}

export class ConsoleFront {
  readonly counters: ConsoleFrontCounters = { bytesOut: 0, bytesIn: 0, notificationsSent: 0, outputDropped: 0, badIndex: 0 };
  /** Guest to backend: we produce. */
  private readonly out: ByteRing;
  /** Backend to guest: we consume. */
  private readonly in: ByteRing;
  /** Output waiting for room in `out`, as chunks (the first may be partly sent). */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;

  constructor(
    buffer: ArrayBuffer,
    offset: number,
    private readonly notify: () => void,
    /** Input bytes for the guest (to the INT 16h keyboard queue). */
    private readonly onInput: (bytes: Uint8Array) => void = () => {},
    private readonly maxPending = 65536,
  ) {
    const at = (f: Parameters<typeof L.offsetOf>[0]) => offset + L.offsetOf(f);
    this.out = new ByteRing(buffer, at('out'), XENCONS_OUT_BYTES, at('outCons'), at('outProd'));
    this.in = new ByteRing(buffer, at('in'), XENCONS_IN_BYTES, at('inCons'), at('inProd'));
  }

  /** The `ConsoleSink` the INT 10h service writes to. */
  write(bytes: Uint8Array): void {
    const room = this.maxPending - this.pendingBytes;
    const take = Math.min(room, bytes.length);
    if (take < bytes.length) this.counters.outputDropped += bytes.length - take;
    if (take > 0) {
      this.pending.push(bytes.slice(0, take));
      this.pendingBytes += take;
    }
    if (this.flush() > 0) this.kickBackend();
  }

  /** Bytes written but not yet in the ring. */
  get backlog(): number {
    return this.pendingBytes;
  }

  /** The console event channel fired: take input, push waiting output. */
  kick(): void {
    const got = this.readInput();
    const sent = this.flush();
    if (got > 0 || sent > 0) this.kickBackend();
  }

  private flush(): number {
    let sent = 0;
    while (this.pending.length > 0) {
      const chunk = this.pending[0]!;
      const n = this.out.write(chunk);
      if (n === BAD_INDEX) {
        this.counters.badIndex++;
        break;
      }
      if (n === 0) break;
      sent += n;
      if (n === chunk.length) this.pending.shift();
      else this.pending[0] = chunk.subarray(n);
    }
    this.pendingBytes -= sent;
    this.counters.bytesOut += sent;
    return sent;
  }

  private readInput(): number {
    const bytes = this.in.read();
    if (bytes === null) {
      this.counters.badIndex++;
      this.in.skipToProducer();
      return 0;
    }
    if (bytes.length === 0) return 0;
    this.counters.bytesIn += bytes.length;
    this.onInput(bytes);
    return bytes.length;
  }

  private kickBackend(): void {
    this.counters.notificationsSent++;
    this.notify();
  }
}
