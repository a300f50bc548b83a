/**
 * The client library against xenstored: over the unix socket, and as a guest over a xenstore
 * ring page in one process (the cross-process ring test is ring-cross-process.test.ts), plus a
 * hostile guest scribbling on its ring indices.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XsType, encodeMessage } from '@xenlab/xen-public';
import { XENSTORE_CONNECTION, XENSTORE_ERROR, xenstoreDomainInterface } from '@xenlab/ring-buffers';
import { XenstoreClient, XenstoreError, XenstoreRing, localEventChannelPair, type EventChannel } from '@xenlab/xenstore-client';
import { RingConnection } from './ring-connection.ts';
import { RawClient, startDaemon, within, type Daemon } from './testing/harness.ts';

let d: Daemon;
let c: XenstoreClient;
beforeEach(async () => {
  d = await startDaemon();
  c = await XenstoreClient.connect(d.path);
});
afterEach(async () => {
  c.close();
  await d.stop();
});

describe('client over the unix socket', () => {
  it('reads, writes, lists, removes and reports Xen errors', async () => {
    await c.write('/cl/a', 'one');
    await c.write('/cl/b', Uint8Array.of(0, 1, 2, 255));
    await c.mkdir('/cl/dir');
    expect(await c.readString('/cl/a')).toBe('one');
    expect([...(await c.read('/cl/b'))]).toEqual([0, 1, 2, 255]);
    expect(await c.directory('/cl')).toEqual(['a', 'b', 'dir']);
    expect(await c.tryRead('/cl/none')).toBeUndefined();
    expect(await c.exists('/cl/dir')).toBe(true);
    await c.rm('/cl/dir');
    expect(await c.exists('/cl/dir')).toBe(false);
    const err = await c.read('/cl/none').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XenstoreError);
    expect((err as XenstoreError).code).toBe('ENOENT');
    expect((err as XenstoreError).errno).toBe(2);
    expect((err as Error).message).toContain('/cl/none');
    await c.setPerms('/cl/a', ['n0', { id: 5, read: true, write: false }]);
    expect(await c.getPerms('/cl/a')).toEqual([
      { id: 0, read: false, write: false },
      { id: 5, read: true, write: false },
    ]);
    expect(await c.getDomainPath(3)).toBe('/local/domain/3');
    expect(await c.control('check')).toBe('OK');
    expect(await c.isDomainIntroduced(7)).toBe(false);
  });

  it('streams watch events and unwatches on close', async () => {
    const w = await c.watch('/wc');
    expect(await w.next(5000)).toEqual({ path: '/wc', token: w.token });
    const seen: string[] = [];
    const consumer = (async () => {
      for await (const ev of w) {
        seen.push(ev.path);
        if (seen.length === 2) break;
      }
    })();
    await c.write('/wc/x', '1');
    await c.rm('/wc');
    await within(consumer, 5000, 'two watch events');
    expect(seen).toEqual(['/wc/x', '/wc']);
    expect([...d.xs.connections].reduce((n, k) => n + k.watches.size, 0)).toBe(0);
  });

  it('retries transactions on EAGAIN until they commit', async () => {
    await c.write('/counter', '0');
    const others = await Promise.all([0, 1, 2].map(() => XenstoreClient.connect(d.path)));
    await Promise.all(
      others.map(async (o) => {
        for (let i = 0; i < 15; i++) {
          await o.transaction(async (tx) => {
            const v = Number(await tx.readString('/counter'));
            await tx.write('/counter', String(v + 1));
          });
        }
      }),
    );
    expect(await c.readString('/counter')).toBe('45');
    expect(d.xs.stats.conflicts).toBeGreaterThan(0);
    // A body that throws aborts its transaction.
    await expect(
      c.transaction(async (tx) => {
        await tx.write('/counter', 'never');
        throw new Error('body failed');
      }),
    ).rejects.toThrow('body failed');
    expect(await c.readString('/counter')).toBe('45');
    for (const o of others) o.close();
  });

  it('rejects pending requests when the daemon goes away', async () => {
    const p = c.read('/x').catch((e: Error) => e.message);
    d.xs.close();
    expect(await p).toMatch(/xenstored/);
  });
});

/** A guest page and event channel wired to the in-process daemon as domain `domid`. */
function guestRing(domid: number): { ring: XenstoreRing; guestEvt: EventChannel; server: RingConnection; buffer: ArrayBuffer } {
  const buffer = new ArrayBuffer(4096);
  const ring = new XenstoreRing(buffer);
  const [guestEvt, serverEvt] = localEventChannelPair();
  const server = new RingConnection(d.xs, domid, new XenstoreRing(buffer), serverEvt);
  return { ring, guestEvt, server, buffer };
}

describe('client over the xenstore ring page', () => {
  it('serves a guest: relative paths, large values across the ring wrap, watches, pipelining', async () => {
    await c.mkdir('/local/domain/5');
    await c.setPerms('/local/domain/5', ['n5']);
    const g = guestRing(5);
    expect(g.ring.serverFeatures).toBe(3);
    const guest = XenstoreClient.overRing(g.ring, g.guestEvt);
    await guest.write('name', 'guest5');
    expect(await c.readString('/local/domain/5/name')).toBe('guest5');
    const big = 'x'.repeat(2000);
    for (let i = 0; i < 5; i++) {
      await guest.write(`big${i}`, big + i);
      expect(await guest.readString(`big${i}`)).toBe(big + i);
    }
    const w = await guest.watch('device');
    expect(await w.next(5000)).toEqual({ path: 'device', token: w.token });
    await c.write('/local/domain/5/device/vbd/768/state', '1');
    expect(await w.next(5000)).toEqual({ path: 'device/vbd/768/state', token: w.token });
    // More requests in flight than the ring holds and than the outstanding quota allows.
    const reads = await Promise.all(Array.from({ length: 300 }, (_, i) => guest.readString(`big${i % 5}`)));
    expect(reads.every((r, i) => r === big + (i % 5))).toBe(true);
    // A missing node under a parent the guest may not read is EACCES, not ENOENT.
    expect(await guest.read('/local/domain/0').catch((e: XenstoreError) => e.code)).toBe('EACCES');
    await w.close();
    guest.close();
  });

  it('stops serving a guest that corrupts its indices, sets the error field, and recovers on RECONNECT', async () => {
    await c.mkdir('/local/domain/6');
    await c.setPerms('/local/domain/6', ['n6']);
    const g = guestRing(6);
    const view = new DataView(g.buffer);
    const reqProd = xenstoreDomainInterface.fields.reqProd.offset;
    view.setUint32(reqProd, view.getUint32(reqProd, true) + 5000, true);
    g.guestEvt.notify();
    await within(
      (async () => {
        while (g.ring.error === 0) await new Promise((r) => setImmediate(r));
      })(),
      5000,
      'the error field',
    );
    expect(g.ring.error).toBe(XENSTORE_ERROR.RINGIDX);
    // The daemon still serves everyone else.
    expect(await c.getDomainPath(1)).toBe('/local/domain/1');
    // The guest asks for a fresh start and is served again.
    g.ring.connection = XENSTORE_CONNECTION.RECONNECT;
    g.guestEvt.notify();
    await within(
      (async () => {
        while (g.ring.connection !== XENSTORE_CONNECTION.CONNECTED) await new Promise((r) => setImmediate(r));
      })(),
      5000,
      'reconnection',
    );
    expect(g.ring.error).toBe(0);
    const guest = XenstoreClient.overRing(g.ring, g.guestEvt);
    await guest.write('ok', 'yes');
    expect(await c.readString('/local/domain/6/ok')).toBe('yes');
    guest.close();
  });

  it('marks a frame over the payload limit as a protocol error', async () => {
    const g = guestRing(7);
    const frame = encodeMessage(XsType.READ, 0, 0, 'x\0');
    new DataView(frame.buffer).setUint32(12, 5000, true);
    g.ring.writeRequest(frame);
    g.guestEvt.notify();
    await within(
      (async () => {
        while (g.ring.error === 0) await new Promise((r) => setImmediate(r));
      })(),
      5000,
      'the error field',
    );
    expect(g.ring.error).toBe(XENSTORE_ERROR.PROTO);
    const raw = await RawClient.open(d.path);
    expect((await raw.req(XsType.READ, '/local\0')).type).toBe(XsType.READ);
    raw.close();
  });
});
