/**
 * How a pCPU worker waits, inside a slice, for an answer another process posts in shared memory
 * and announces by ringing a doorbell: the PV kernel's answer in its trap slot (pcpu-thread.ts)
 * and qemu-dm's answer to an ioreq (hvm/ioreq-fast.ts). It looks at `answered()` in a tight loop
 * for `spinUs` (an answer often comes within microseconds, and a sleep/wake-up costs ~45 µs
 * here), then for `yieldUs` more with `sched_yield` before each look (the processes that must
 * answer need the host's cores, and get this one whenever they are runnable on it), then sleeps
 * on the doorbell in naps of at most `napMs` until `waitUs` have passed since it began or
 * `giveUp()` says stop (the scheduler wants the pCPU back). Bounded either way.
 *
 * `seen` is the doorbell's sequence read before the request was posted, so an answer rung
 * between the post and the first sleep is never slept through.
 */
import { schedYield, type Doorbell } from '@xenlab/ring-buffers';

export interface AnswerWait {
  spinUs: number;
  /** After the spin, keep looking this long but yield the core (sched_yield) before each look. */
  yieldUs?: number;
  waitUs: number;
  /** Longest single sleep, ms (a doorbell several peers share: re-check now and then). */
  napMs: number;
}

/** True when `answered()` became true within the wait; false when it ran out or gave up. */
export function waitForAnswer(answered: () => boolean, bell: Doorbell, seen: number, w: AnswerWait, giveUp: () => boolean): boolean {
  const t0 = performance.now();
  const spinEnd = t0 + w.spinUs / 1000;
  const yieldEnd = spinEnd + (w.yieldUs ?? 0) / 1000;
  const end = t0 + w.waitUs / 1000;
  for (let i = 0; ; i++) {
    if (answered()) return true;
    if ((i & 63) !== 0) continue;
    const now = performance.now();
    if (now < spinEnd) continue;
    if (now >= end || giveUp()) return answered();
    if (now < yieldEnd) {
      schedYield();
      i = -1; // look again at once after each yield
      continue;
    }
    bell.wait(seen, Math.min(w.napMs, end - now), 0);
    seen = bell.seq;
  }
}
