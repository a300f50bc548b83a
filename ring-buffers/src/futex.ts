/**
 * futex(2) on a 32-bit word of shared memory, for sleeping until another process changes it.
 * The word must live in a SharedMemory mapping for a cross-process wake to reach it.
 */
import { addon } from './native.ts';

export type FutexWaitResult = 'ok' | 'not-equal' | 'timed-out';
const RESULTS: readonly FutexWaitResult[] = ['ok', 'not-equal', 'timed-out'];

/** Sleeps while `view[index] === expected`, at most `timeoutMs` (negative or Infinity: no limit). */
export function futexWait(view: Int32Array, index: number, expected: number, timeoutMs = -1): FutexWaitResult {
  return RESULTS[addon().futexWait(view, index, expected | 0, toTimeout(timeoutMs))]!;
}

/** The same wait on a libuv pool thread: the event loop keeps running. */
export async function futexWaitAsync(
  view: Int32Array,
  index: number,
  expected: number,
  timeoutMs = -1,
): Promise<FutexWaitResult> {
  return RESULTS[await addon().futexWaitAsync(view, index, expected | 0, toTimeout(timeoutMs))]!;
}

/** Wakes up to `count` sleepers (0 or less: all). Returns how many were woken. */
export function futexWake(view: Int32Array, index: number, count = 0): number {
  return addon().futexWake(view, index, count);
}

function toTimeout(ms: number): number {
  return Number.isFinite(ms) && ms >= 0 ? ms : -1;
}

/**
 * sched_yield(2): lets another runnable thread on this core go first. A poller calls it between
 * looks at shared memory, so polling never keeps a peer on the same core from running.
 */
export function schedYield(): void {
  addon().schedYield();
}
