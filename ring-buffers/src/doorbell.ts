/**
 * The doorbell: xenlab's notification primitive between two processes sharing memory, standing
 * in for the kick an event channel delivers (see ../README.md, "The doorbell").
 *
 * Waking a sleeping process on the other core costs ~45 µs here; seeing a shared cache line
 * change costs ~0.1 µs. So a waiter first spins for a bounded time (it never spins without
 * bound: the machine has two cores), then sleeps on a futex; and a ringer makes the wake
 * system call only when someone has announced that it sleeps.
 *
 * Shared layout, 64 bytes (one cache line, so it never shares a line with ring data):
 *   word 0  seq       bumped by every ring(); waiters wait for it to differ from what they saw
 *   word 1  sleepers  how many waiters are in (or entering) futex sleep
 *
 * Lost-wake-up freedom: ring() does seq++ then reads sleepers; a waiter does sleepers++ then
 * re-reads seq, and the futex sleeps only while seq still equals the value it saw. Both pairs
 * are sequentially consistent atomics, so at least one side sees the other's write.
 */
import { futexWait, futexWaitAsync, futexWake } from './futex.ts';

const SEQ = 0;
const SLEEPERS = 1;

export interface DoorbellCounters {
  rings: number;
  /** ring() calls that made the wake system call (a peer was asleep). */
  wakeSyscalls: number;
  /** wait() calls that found the sequence already moved. */
  immediate: number;
  /** wait() calls satisfied while spinning. */
  spinHits: number;
  /** wait() calls that went to sleep. */
  sleeps: number;
}

export class Doorbell {
  static readonly BYTES = 64;
  /** Default spin before sleeping: about one sleep/wake-up's cost on this machine. */
  static defaultSpinUs = 50;

  private readonly words: Int32Array;
  readonly counters: DoorbellCounters = { rings: 0, wakeSyscalls: 0, immediate: 0, spinHits: 0, sleeps: 0 };

  constructor(buffer: ArrayBuffer, byteOffset: number) {
    if (byteOffset % Doorbell.BYTES !== 0) {
      throw new RangeError(`Doorbell: offset ${byteOffset} must be 64-byte aligned`);
    }
    if (byteOffset < 0 || byteOffset + Doorbell.BYTES > buffer.byteLength) {
      throw new RangeError(`Doorbell: offset ${byteOffset} is outside the ${buffer.byteLength}-byte buffer`);
    }
    this.words = new Int32Array(buffer, byteOffset, Doorbell.BYTES / 4);
  }

  /** Zeroes a doorbell in shared memory; done once by whoever sets the page up. */
  static init(buffer: ArrayBuffer, byteOffset: number): Doorbell {
    new Uint8Array(buffer, byteOffset, Doorbell.BYTES).fill(0);
    return new Doorbell(buffer, byteOffset);
  }

  get seq(): number {
    return Atomics.load(this.words, SEQ);
  }

  /** Is a waiter asleep (or about to sleep) on this doorbell? */
  get sleeping(): boolean {
    return Atomics.load(this.words, SLEEPERS) !== 0;
  }

  ring(): void {
    this.counters.rings++;
    Atomics.add(this.words, SEQ, 1);
    if (Atomics.load(this.words, SLEEPERS) !== 0) {
      this.counters.wakeSyscalls++;
      futexWake(this.words, SEQ, 0);
    }
  }

  /**
   * Blocks until `seq` differs from `seen` or `timeoutMs` passes (negative: no limit), spinning
   * for at most `spinUs` first. Returns the sequence number now (equal to `seen` on timeout).
   */
  wait(seen: number, timeoutMs = -1, spinUs = Doorbell.defaultSpinUs): number {
    const w = this.words;
    let s = Atomics.load(w, SEQ);
    if (s !== seen) {
      this.counters.immediate++;
      return s;
    }
    const start = performance.now();
    if (spinUs > 0) {
      const spinEnd = start + spinUs / 1000;
      for (;;) {
        for (let i = 0; i < 128; i++) {
          s = Atomics.load(w, SEQ);
          if (s !== seen) {
            this.counters.spinHits++;
            return s;
          }
        }
        if (performance.now() >= spinEnd) break;
      }
    }
    this.counters.sleeps++;
    Atomics.add(w, SLEEPERS, 1);
    try {
      for (;;) {
        s = Atomics.load(w, SEQ);
        if (s !== seen) return s;
        let remaining = -1;
        if (timeoutMs >= 0) {
          remaining = timeoutMs - (performance.now() - start);
          if (remaining <= 0) return s;
        }
        futexWait(w, SEQ, seen, remaining);
      }
    } finally {
      Atomics.sub(w, SLEEPERS, 1);
    }
  }

  /**
   * The same wait for an event-loop process: no spinning (it would stall the loop); the futex
   * sleep runs on a libuv pool thread. Give a timeout (or ring the bell) so a process can exit.
   */
  async waitAsync(seen: number, timeoutMs = -1): Promise<number> {
    const w = this.words;
    let s = Atomics.load(w, SEQ);
    if (s !== seen) {
      this.counters.immediate++;
      return s;
    }
    const start = performance.now();
    this.counters.sleeps++;
    Atomics.add(w, SLEEPERS, 1);
    try {
      for (;;) {
        s = Atomics.load(w, SEQ);
        if (s !== seen) return s;
        let remaining = -1;
        if (timeoutMs >= 0) {
          remaining = timeoutMs - (performance.now() - start);
          if (remaining <= 0) return s;
        }
        await futexWaitAsync(w, SEQ, seen, remaining);
      }
    } finally {
      Atomics.sub(w, SLEEPERS, 1);
    }
  }
}
