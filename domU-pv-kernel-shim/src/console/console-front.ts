/**
 * The guest's PV console (the role of Mini-OS's console/xencons_ring.c), over the
 * `xencons_interface` page the toolstack set up (io/console.h; its frame and port come from
 * start_info). The shim writes the guest's INT 10h output into `out` and reads `in` for INT 16h.
 * This side owns `out_prod` and `in_cons`; the backend's indices are read once per pass and
 * checked, so a broken backend cannot make the shim loop or read outside the page. Output that
 * does not fit waits (bounded) and goes out when the backend has made room.
 */
import { XENCONS_IN_BYTES, XENCONS_OUT_BYTES, xenconsInterface } from '@xenlab/ring-buffers';

const IN_CONS = xenconsInterface.offsetOf('inCons') / 4;
const IN_PROD = xenconsInterface.offsetOf('inProd') / 4;
const OUT_CONS = xenconsInterface.offsetOf('outCons') / 4;
const OUT_PROD = xenconsInterface.offsetOf('outProd') / 4;

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
  private readonly idx: Uint32Array;
  private readonly inRing: Uint8Array;
  private readonly outRing: Uint8Array;
  private pending: number[] = [];

  constructor(
    buffer: ArrayBuffer,
    offset: number,
    private readonly notify: () => void,
    /** Input bytes for the guest (to the INT 16h keyboard queue). */
    private readonly onInput: (bytes: Uint8Array) => void = () => {},
    private readonly maxPending = 65536,
  ) {
    this.idx = new Uint32Array(buffer, offset, xenconsInterface.size / 4);
    this.inRing = new Uint8Array(buffer, offset + xenconsInterface.offsetOf('in'), XENCONS_IN_BYTES);
    this.outRing = new Uint8Array(buffer, offset + xenconsInterface.offsetOf('out'), XENCONS_OUT_BYTES);
  }

  /** The `ConsoleSink` the INT 10h service writes to. */
  write(bytes: Uint8Array): void {
    const room = this.maxPending - this.pending.length;
    if (bytes.length > room) this.counters.outputDropped += bytes.length - room;
    for (let i = 0; i < Math.min(room, bytes.length); i++) this.pending.push(bytes[i]!);
    if (this.flush() > 0) this.kickBackend();
  }

  /** Bytes written but not yet in the ring. */
  get backlog(): number {
    return this.pending.length;
  }

  /** The console event channel fired: take input, push waiting output. */
  kick(): void {
    const got = this.readInput();
    const sent = this.flush();
    if (got > 0 || sent > 0) this.kickBackend();
  }

  private flush(): number {
    if (this.pending.length === 0) return 0;
    const cons = Atomics.load(this.idx, OUT_CONS);
    let prod = Atomics.load(this.idx, OUT_PROD);
    const used = (prod - cons) >>> 0;
    if (used > XENCONS_OUT_BYTES) {
      this.counters.badIndex++;
      return 0;
    }
    const n = Math.min(XENCONS_OUT_BYTES - used, this.pending.length);
    for (let i = 0; i < n; i++) this.outRing[(prod + i) & (XENCONS_OUT_BYTES - 1)] = this.pending[i]!;
    prod = (prod + n) >>> 0;
    Atomics.store(this.idx, OUT_PROD, prod);
    this.pending = this.pending.slice(n);
    this.counters.bytesOut += n;
    return n;
  }

  private readInput(): number {
    const cons = Atomics.load(this.idx, IN_CONS);
    const prod = Atomics.load(this.idx, IN_PROD);
    const n = (prod - cons) >>> 0;
    if (n === 0) return 0;
    if (n > XENCONS_IN_BYTES) {
      this.counters.badIndex++;
      Atomics.store(this.idx, IN_CONS, prod);
      return 0;
    }
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = this.inRing[(cons + i) & (XENCONS_IN_BYTES - 1)]!;
    Atomics.store(this.idx, IN_CONS, prod);
    this.counters.bytesIn += n;
    this.onInput(bytes);
    return n;
  }

  private kickBackend(): void {
    this.counters.notificationsSent++;
    this.notify();
  }
}
