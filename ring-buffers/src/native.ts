/**
 * Loads the native shared-memory addon (ring-buffers/native/shm.c): mmap of a file as an
 * ArrayBuffer and futex wait/wake on a 32-bit word of it. Built by `npm install`.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export interface ShmAddon {
  map(fd: number, length: number, offset: number, writable: boolean): ArrayBuffer;
  unmap(buffer: ArrayBuffer): void;
  /** 0 = woken, 1 = the word did not hold `expected`, 2 = timed out. A negative timeout waits forever. */
  futexWait(view: Int32Array, index: number, expected: number, timeoutMs: number): 0 | 1 | 2;
  futexWake(view: Int32Array, index: number, count: number): number;
  futexWaitAsync(view: Int32Array, index: number, expected: number, timeoutMs: number): Promise<0 | 1 | 2>;
  schedYield(): void;
  /**
   * One preadv(2)/pwritev(2) between file `fd` at byte `position` and `count` ranges of `buffer`,
   * given as (byteOffset, length) pairs in `iov`; returns the bytes moved (short at end of file).
   * Throws RangeError for a range outside the buffer, an errno error for a failed call.
   */
  preadv(fd: number, buffer: ArrayBufferLike, iov: Float64Array, count: number, position: number): number;
  pwritev(fd: number, buffer: ArrayBufferLike, iov: Float64Array, count: number, position: number): number;
}

const here = dirname(fileURLToPath(import.meta.url));
const addonPath = join(here, '..', 'native', 'build', 'Release', 'xenlab_shm.node');

let loaded: ShmAddon | undefined;

/**
 * The addon, loaded on first use: code that only imports layouts or the ring logic (a xenstore
 * client on a unix socket, say) never needs it built.
 */
export function addon(): ShmAddon {
  return (loaded ??= load());
}

function load(): ShmAddon {
  try {
    return createRequire(import.meta.url)(addonPath) as ShmAddon;
  } catch (e) {
    throw new Error(
      `xenlab: the shared-memory addon is not built (${addonPath}): ${(e as Error).message}. ` +
        'Run `npm install` (or `npm run build:native`) at the repository root.',
    );
  }
}
