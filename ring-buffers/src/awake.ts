/**
 * Keeps a process's event loop looking instead of sleeping for a while, when an answer is due
 * soon (a PV trap bounced to the kernel shim, the shim's `iret` on its way back): a pending
 * `setImmediate` makes libuv poll its sockets and message ports with a zero timeout, so what
 * arrives meanwhile is handled in the same turn, with no wake-up of a sleeping thread (~45 µs
 * here, and a bounce crosses four of them). Each look first yields the core (`sched_yield`), so
 * a peer runnable on the same core runs at once. Bounded: the window closes `us` after the last
 * `extend`; nothing runs while it is closed.
 */
import { schedYield } from './futex.ts';

/**
 * Looks once per turn of the event loop until `done()` (resolves true) or until `open()` says
 * the window has closed (resolves false); before each further look it yields the core
 * (`sched_yield`) so a peer runnable on this core runs at once. One promise per window, not per
 * look (a look is ~1 µs; a promise per look fed the GC). The one shape of xenlab's bounded
 * polling: `AwakeWindow` below, `DomainEvents`' adaptive window, the shim's trap-slot wait,
 * blkback's poll of `req_prod`.
 */
export function lookEachTurn(done: () => boolean, open: () => boolean, onLook?: () => void): Promise<boolean> {
  return new Promise((resolve) => {
    const look = (): void => {
      if (done()) return resolve(true);
      if (!open()) return resolve(false);
      onLook?.();
      schedYield();
      setImmediate(look);
    };
    setImmediate(look);
  });
}

export class AwakeWindow {
  private until = 0;
  private running = false;
  /** Looks made (turns of the event loop kept awake), for counters and tests. */
  looks = 0;

  /** `defaultUs`: how long `extend()` keeps the loop awake (0: never). */
  constructor(readonly defaultUs: number) {}

  /** Stays awake at least `us` more microseconds from now. */
  extend(us = this.defaultUs): void {
    if (!(us > 0)) return;
    const t = performance.now() + us / 1000;
    if (t > this.until) this.until = t;
    if (!this.running) {
      this.running = true;
      void lookEachTurn(this.never, this.isOpen, this.counted).then(this.closed);
    }
  }

  /** Closes the window now (a process going away). */
  close(): void {
    this.until = 0;
  }

  get open(): boolean {
    return this.running;
  }

  private readonly never = (): boolean => false;
  private readonly isOpen = (): boolean => performance.now() < this.until;
  private readonly counted = (): void => void this.looks++;
  private readonly closed = (): void => void (this.running = false);
}

/** A µs setting from the environment: a number in 0..10 000, else `fallback`. */
export function envMicros(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  return Number.isFinite(v) && v >= 0 ? Math.min(v, 10_000) : fallback;
}
