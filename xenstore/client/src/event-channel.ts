/**
 * The notification half of a xenstore ring: what an event channel does for Xen's guests. The
 * ring transport only needs "kick the other side" and "run this when kicked", so it takes this
 * small interface; the hypervisor's event channels implement it later, and today two doorbells
 * in shared memory (cross-process) or an in-process pair (tests) do.
 */
import type { Doorbell } from '@xenlab/ring-buffers';

export interface EventChannel {
  /** Kicks the other end (`notify_remote_via_evtchn`). */
  notify(): void;
  /** Runs `handler` after each kick from the other end (kicks may coalesce); returns unbind. */
  bind(handler: () => void): () => void;
}

/** Two connected ends in one process; a kick runs the peer's handler on a later turn. */
export function localEventChannelPair(): [EventChannel, EventChannel] {
  const handlers: [(() => void) | undefined, (() => void) | undefined] = [undefined, undefined];
  const pending = [false, false];
  const end = (me: 0 | 1): EventChannel => {
    const peer = (1 - me) as 0 | 1;
    return {
      notify() {
        if (pending[peer]) return;
        pending[peer] = true;
        setImmediate(() => {
          pending[peer] = false;
          handlers[peer]?.();
        });
      },
      bind(handler) {
        handlers[me] = handler;
        return () => {
          if (handlers[me] === handler) handlers[me] = undefined;
        };
      },
    };
  };
  return [end(0), end(1)];
}

/**
 * One end of an event channel made of two doorbells in shared memory: it waits on `inbound`
 * (without blocking the event loop) and rings `outbound`. Unbinding takes effect within
 * `pollMs` (the bound on each futex sleep).
 *
 * `spinUs` > 0 applies the doorbell's own strategy to an event loop: after handling a kick it
 * watches the bell for that long before going to sleep, because the peer's next kick usually
 * follows within microseconds while a futex wake-up through the libuv pool costs tens. The
 * spin blocks the loop for at most `spinUs` after activity and never while idle.
 */
export function doorbellEventChannel(inbound: Doorbell, outbound: Doorbell, pollMs = 100, spinUs = 0): EventChannel {
  return {
    notify: () => outbound.ring(),
    bind(handler) {
      let bound = true;
      let seen = inbound.seq;
      void (async () => {
        while (bound) {
          let s = await inbound.waitAsync(seen, pollMs);
          while (bound && s !== seen) {
            seen = s;
            handler();
            if (spinUs <= 0) break;
            const end = performance.now() + spinUs / 1000;
            do {
              s = inbound.seq;
            } while (s === seen && performance.now() < end);
          }
        }
      })();
      return () => {
        bound = false;
      };
    },
  };
}
