/**
 * Round-trip measurements between two processes over a shared file, for the ring benchmark:
 * a raw shared-memory spin, a raw futex, and the doorbell (peer spinning or asleep).
 *
 * File layout: doorbell ping->pong at 0, pong->ping at 64; raw words at 128 and 192 (each on its
 * own cache line). The pong side runs as a child: `tsx ping-pong.ts <file> <mode> <count>`.
 */
import { SharedMemory } from '../shared-memory.ts';
import { Doorbell } from '../doorbell.ts';
import { futexWait, futexWake } from '../futex.ts';

export type PingMode = 'spin' | 'futex' | 'bell-awake' | 'bell-asleep';
export const PING_FILE_BYTES = 4096;
const RAW_TO_PONG = 128 / 4;
const RAW_TO_PING = 192 / 4;

/** Waits for words[i] to differ from `old` by spinning, giving up after `deadline` (ms, performance.now). */
function spinUntilChanged(words: Int32Array, i: number, old: number, deadline: number): number {
  for (;;) {
    for (let k = 0; k < 1024; k++) {
      const v = Atomics.load(words, i);
      if (v !== old) return v;
    }
    if (performance.now() > deadline) throw new Error('ping-pong: peer stopped answering');
  }
}

function futexUntilChanged(words: Int32Array, i: number, old: number, deadline: number): number {
  for (;;) {
    const v = Atomics.load(words, i);
    if (v !== old) return v;
    const left = deadline - performance.now();
    if (left <= 0) throw new Error('ping-pong: peer stopped answering');
    futexWait(words, i, old, left);
  }
}

/** One side of the exchange: `ping` sends first. Returns elapsed ms for `count` round trips. */
export function pingPong(
  shm: SharedMemory,
  mode: PingMode,
  count: number,
  ping: boolean,
  timeoutMs = 30_000,
  /** Called once the starting values are read: only then may the peer start. */
  ready?: () => void,
): number {
  const words = new Int32Array(shm.buffer);
  const out = new Doorbell(shm.buffer, ping ? 0 : 64);
  const inb = new Doorbell(shm.buffer, ping ? 64 : 0);
  const rawOut = ping ? RAW_TO_PONG : RAW_TO_PING;
  const rawIn = ping ? RAW_TO_PING : RAW_TO_PONG;
  const deadline = performance.now() + timeoutMs;
  const spinUs = mode === 'bell-asleep' ? 0 : Doorbell.defaultSpinUs;
  let seen = inb.seq;
  let last = Atomics.load(words, rawIn);
  ready?.();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    if (!ping) {
      if (mode === 'spin') last = spinUntilChanged(words, rawIn, last, deadline);
      else if (mode === 'futex') last = futexUntilChanged(words, rawIn, last, deadline);
      else {
        const s = inb.wait(seen, Math.max(1, deadline - performance.now()), spinUs);
        if (s === seen) throw new Error('ping-pong: peer stopped ringing');
        seen = s;
      }
    }
    if (mode === 'spin') Atomics.add(words, rawOut, 1);
    else if (mode === 'futex') {
      Atomics.add(words, rawOut, 1);
      futexWake(words, rawOut, 1);
    } else out.ring();
    if (ping) {
      if (mode === 'spin') last = spinUntilChanged(words, rawIn, last, deadline);
      else if (mode === 'futex') last = futexUntilChanged(words, rawIn, last, deadline);
      else {
        const s = inb.wait(seen, Math.max(1, deadline - performance.now()), spinUs);
        if (s === seen) throw new Error('ping-pong: peer stopped ringing');
        seen = s;
      }
    }
  }
  return performance.now() - t0;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [file, mode, count] = process.argv.slice(2);
  const shm = SharedMemory.open(file!);
  try {
    pingPong(shm, mode as PingMode, Number(count), false, 30_000, () => process.stdout.write('ready\n'));
    process.exit(0);
  } catch (e) {
    console.error((e as Error).message);
    process.exit(1);
  }
}
