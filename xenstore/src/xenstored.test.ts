/**
 * xenstored over its unix socket and as guest connections: the wire format byte for byte, the
 * operations, permissions, watches, transactions, domains and quotas.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XsType, encodeHeader, decodeHeader } from '@xenlab/xen-public';
import { DomainClient, RawClient, startDaemon, type Daemon } from './testing/harness.ts';

const T = XsType;
let d: Daemon;
let c: RawClient;

beforeEach(async () => {
  d = await startDaemon();
  c = await RawClient.open(d.path);
});
afterEach(async () => {
  c.close();
  await d.stop();
});

describe('wire format', () => {
  it('echoes type, req_id and tx_id; READ has no trailing NUL; WRITE takes an unterminated value', async () => {
    const w = await c.req(T.WRITE, '/a/b\0hello', 0, 77);
    expect([w.type, w.reqId, w.txId, w.text]).toEqual([T.WRITE, 77, 0, 'OK\0']);
    const r = await c.req(T.READ, '/a/b\0', 0, 0xdeadbeef);
    expect([r.type, r.reqId, r.text]).toEqual([T.READ, 0xdeadbeef, 'hello']);
    const parent = await c.req(T.READ, '/a\0');
    expect(parent.text).toBe('');
  });

  it('encodes the 16-byte little-endian header', () => {
    const h = encodeHeader({ type: 2, reqId: 0x01020304, txId: 5, len: 6 });
    expect([...h]).toEqual([2, 0, 0, 0, 4, 3, 2, 1, 5, 0, 0, 0, 6, 0, 0, 0]);
    expect(decodeHeader(h)).toEqual({ type: 2, reqId: 0x01020304, txId: 5, len: 6 });
  });

  it('answers errors with XS_ERROR and the Xen name', async () => {
    const r = await c.req(T.READ, '/nope\0', 0, 9);
    expect([r.type, r.reqId, r.text]).toEqual([T.ERROR, 9, 'ENOENT\0']);
  });

  it('lists directories, GET_DOMAIN_PATH and DIRECTORY_PART', async () => {
    for (const k of ['x', 'y', 'z']) await c.req(T.WRITE, `/d/${k}\0v`);
    expect((await c.req(T.DIRECTORY, '/d\0')).text).toBe('x\0y\0z\0');
    expect((await c.req(T.DIRECTORY, '/d/x\0')).text).toBe('');
    expect((await c.req(T.GET_DOMAIN_PATH, '7\0')).text).toBe('/local/domain/7\0');
    const part = (await c.req(T.DIRECTORY_PART, '/d\x000\0')).text.split('\0');
    expect(part.slice(1)).toEqual(['x', 'y', 'z', '', '']);
    const tail = (await c.req(T.DIRECTORY_PART, '/d\x004\0')).text.split('\0');
    expect(tail.slice(1)).toEqual(['z', '', '']);
    const past = (await c.req(T.DIRECTORY_PART, '/d\x00100\0')).text;
    expect(past.endsWith('\0\0')).toBe(true);
  });

  it('splits a large DIRECTORY_PART into chunks that reassemble', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `child-number-${i}`);
    c.sendRaw(Buffer.concat(names.map((n) => Buffer.from(encodeMsg(T.MKDIR, `/big/${n}\0`)))));
    for (let i = 0; i < names.length; i++) expect((await c.reply()).type).toBe(T.MKDIR);
    expect((await c.req(T.DIRECTORY, '/big\0')).error).toBe('E2BIG');
    const got: string[] = [];
    let off = 0;
    for (let i = 0; i < 10; i++) {
      const parts = (await c.req(T.DIRECTORY_PART, `/big\0${off}\0`)).text.split('\0');
      const body = parts.slice(1);
      const done = body.length >= 2 && body[body.length - 1] === '' && body[body.length - 2] === '';
      const chunk = body.filter((x) => x !== '');
      got.push(...chunk);
      off += chunk.reduce((n, s) => n + s.length + 1, 0);
      if (done) break;
    }
    expect(got).toEqual(names);
  });

  it('MKDIR leaves an existing node alone; RM removes children, tolerates a missing node, not a missing parent', async () => {
    await c.req(T.WRITE, '/m\0v');
    expect((await c.req(T.MKDIR, '/m\0')).text).toBe('OK\0');
    expect((await c.req(T.READ, '/m\0')).text).toBe('v');
    await c.req(T.WRITE, '/m/a/b\0x');
    expect((await c.req(T.RM, '/m\0')).text).toBe('OK\0');
    expect((await c.req(T.READ, '/m/a/b\0')).error).toBe('ENOENT');
    expect((await c.req(T.RM, '/m\0')).text).toBe('OK\0');
    expect((await c.req(T.RM, '/m/q/r\0')).error).toBe('ENOENT');
    expect((await c.req(T.RM, '/\0')).error).toBe('EINVAL');
  });

  it('refuses writes on the read-only socket', async () => {
    const ro = await RawClient.open(d.roPath);
    await c.req(T.WRITE, '/r\0v');
    expect((await ro.req(T.READ, '/r\0')).text).toBe('v');
    expect((await ro.req(T.WRITE, '/r\0w')).error).toBe('EROFS');
    expect((await ro.req(T.RM, '/r\0')).error).toBe('EROFS');
    ro.close();
  });
});

describe('permissions', () => {
  it('follows owner-first lists, inheritance, and relative paths for guests', async () => {
    const g5 = new DomainClient(d.xs, 5);
    const g6 = new DomainClient(d.xs, 6);
    await c.req(T.MKDIR, '/local/domain/5\0');
    expect((await c.req(T.SET_PERMS, '/local/domain/5\0n0\0r5\0')).text).toBe('OK\0');
    expect((await c.req(T.GET_PERMS, '/local/domain/5\0')).text).toBe('n0\0r5\0');
    // Guest 5 may read but not write its directory; guest 6 may not even read.
    expect((await g5.req(T.READ, '/local/domain/5\0')).text).toBe('');
    expect((await g5.req(T.WRITE, 'x\0v')).error).toBe('EACCES');
    expect((await g6.req(T.READ, '/local/domain/5\0')).error).toBe('EACCES');
    expect((await g6.req(T.READ, '/local/domain/5/missing\0')).error).toBe('EACCES');
    // dom0 hands guest 5 a writable subtree; what 5 creates there it owns.
    await c.req(T.MKDIR, '/local/domain/5/data\0');
    await c.req(T.SET_PERMS, '/local/domain/5/data\0n0\0b5\0');
    expect((await g5.req(T.WRITE, 'data/k/v\0val')).text).toBe('OK\0');
    expect((await c.req(T.READ, '/local/domain/5/data/k/v\0')).text).toBe('val');
    expect((await c.req(T.GET_PERMS, '/local/domain/5/data/k\0')).text).toBe('n5\0b5\0');
    // The owner may change permissions but not give the node away.
    expect((await g5.req(T.SET_PERMS, 'data/k\0n5\0r6\0')).text).toBe('OK\0');
    expect((await g6.req(T.READ, '/local/domain/5/data/k\0')).text).toBe('');
    expect((await g6.req(T.WRITE, '/local/domain/5/data/k\0x')).error).toBe('EACCES');
    expect((await g5.req(T.SET_PERMS, 'data/k\0n6\0')).error).toBe('EPERM');
    expect((await g6.req(T.SET_PERMS, '/local/domain/5/data/k\0n6\0')).error).toBe('EACCES');
    // Unprivileged callers may not use privileged operations.
    for (const [t, p] of [
      [T.INTRODUCE, '9\x001\x002\0'],
      [T.RELEASE, '9\0'],
      [T.IS_DOMAIN_INTRODUCED, '9\0'],
      [T.SET_TARGET, '9\x005\0'],
      [T.RESUME, '9\0'],
      [T.CONTROL, 'check\0'],
    ] as const) {
      expect((await g5.req(t, p)).error).toBe('EACCES');
    }
  });

  it('gives a SET_TARGET domain access to its target', async () => {
    await c.req(T.MKDIR, '/local/domain/8\0');
    await c.req(T.SET_PERMS, '/local/domain/8\0n8\0');
    await c.req(T.INTRODUCE, '9\x001\x003\0');
    const dm = new DomainClient(d.xs, 9);
    d.xs.domains.get(9)!.conn = dm.conn;
    expect((await dm.req(T.READ, '/local/domain/8\0')).error).toBe('EACCES');
    expect((await c.req(T.SET_TARGET, '9\x008\0')).text).toBe('OK\0');
    expect((await dm.req(T.WRITE, '/local/domain/8/dm\0x')).text).toBe('OK\0');
  });
});

describe('watches', () => {
  it('fires on registration, for descendants, echoing the token', async () => {
    expect((await c.req(T.WATCH, '/w\0tok\0')).text).toBe('OK\0');
    expect(await c.event()).toEqual(['/w', 'tok']);
    await c.req(T.WRITE, '/w/a/b\0x');
    expect(await c.event()).toEqual(['/w/a/b', 'tok']);
    await c.req(T.WRITE, '/other\0x');
    await c.req(T.WRITE, '/w\0y');
    expect(await c.event()).toEqual(['/w', 'tok']);
    expect((await c.req(T.WATCH, '/w\0tok\0')).error).toBe('EEXIST');
    expect((await c.req(T.UNWATCH, '/w\0tok\0')).text).toBe('OK\0');
    expect((await c.req(T.UNWATCH, '/w\0tok\0')).error).toBe('ENOENT');
    await c.req(T.WRITE, '/w\0z');
    await c.req(T.READ, '/w\0');
    expect(c.events).toHaveLength(0);
  });

  it('reaches watches below a removed node with their own path', async () => {
    await c.req(T.WRITE, '/r/a/b\0x');
    await c.req(T.WATCH, '/r/a/b\0deep\0');
    await c.event();
    await c.req(T.RM, '/r\0');
    expect(await c.event()).toEqual(['/r/a/b', 'deep']);
  });

  it('gives relative watches relative paths and hides events a guest may not read', async () => {
    await c.req(T.MKDIR, '/local/domain/5\0');
    await c.req(T.SET_PERMS, '/local/domain/5\0n5\0');
    const g5 = new DomainClient(d.xs, 5);
    const g6 = new DomainClient(d.xs, 6);
    expect((await g5.req(T.WATCH, 'device\0t5\0')).text).toBe('OK\0');
    expect(await g5.event()).toEqual(['device', 't5']);
    expect((await g6.req(T.WATCH, '/local/domain/5\0t6\0')).text).toBe('OK\0');
    expect(await g6.event()).toEqual(['/local/domain/5', 't6']);
    await c.req(T.WRITE, '/local/domain/5/device/vbd\0x');
    expect(await g5.event()).toEqual(['device/vbd', 't5']);
    await g6.req(T.GET_DOMAIN_PATH, '6\0');
    expect(g6.events).toHaveLength(0);
  });

  it('fires @introduceDomain and @releaseDomain for privileged watchers, others only if granted', async () => {
    const g5 = new DomainClient(d.xs, 5);
    await c.req(T.WATCH, '@introduceDomain\0intro\0');
    await c.req(T.WATCH, '@releaseDomain\0rel\0');
    await g5.req(T.WATCH, '@releaseDomain\0g\0');
    expect(await c.event()).toEqual(['@introduceDomain', 'intro']);
    expect(await c.event()).toEqual(['@releaseDomain', 'rel']);
    await g5.event();
    expect((await c.req(T.IS_DOMAIN_INTRODUCED, '3\0')).text).toBe('F\0');
    expect((await c.req(T.INTRODUCE, '3\0-1234\x007\0')).text).toBe('OK\0');
    expect(await c.event()).toEqual(['@introduceDomain', 'intro']);
    expect((await c.req(T.IS_DOMAIN_INTRODUCED, '3\0')).text).toBe('T\0');
    expect((await c.req(T.INTRODUCE, '3\x0099\x007\0')).error).toBe('EEXIST');
    expect((await c.req(T.RESUME, '3\0')).text).toBe('OK\0');
    await c.req(T.SET_PERMS, '@releaseDomain\0n0\0r5\0');
    expect((await c.req(T.GET_PERMS, '@releaseDomain\0')).text).toBe('n0\0r5\0');
    expect((await c.req(T.RELEASE, '3\0')).text).toBe('OK\0');
    expect(await c.event()).toEqual(['@releaseDomain', 'rel']);
    expect(await g5.event()).toEqual(['@releaseDomain', 'g']);
    expect((await c.req(T.RELEASE, '3\0')).error).toBe('ENOENT');
    expect((await c.req(T.READ, '@releaseDomain\0')).error).toBe('EINVAL');
  });

  it('fires @releaseDomain once per shutdown until RESUME re-arms it', async () => {
    await c.req(T.INTRODUCE, '4\x001\x002\x00');
    await c.req(T.WATCH, '@releaseDomain\x00r\x00');
    await c.event();
    d.xs.domainShutdown(4);
    d.xs.domainShutdown(4);
    expect(await c.event()).toEqual(['@releaseDomain', 'r']);
    await c.req(T.READ, '/local\x00');
    expect(c.events).toHaveLength(0);
    expect((await c.req(T.RESUME, '4\x00')).text).toBe('OK\x00');
    d.xs.domainShutdown(4);
    expect(await c.event()).toEqual(['@releaseDomain', 'r']);
    expect((await c.req(T.IS_DOMAIN_INTRODUCED, '0\x00')).text).toBe('T\x00');
    expect((await c.req(T.RESUME, '9\x00')).error).toBe('ENOENT');
  });

  it('RESET_WATCHES drops the caller\'s watches and transactions', async () => {
    await c.req(T.WATCH, '/x\0t\0');
    await c.event();
    const tx = Number((await c.req(T.TRANSACTION_START, '\0')).text.split('\0')[0]);
    expect((await c.req(T.RESET_WATCHES, '\0')).text).toBe('OK\0');
    await c.req(T.WRITE, '/x\0v');
    expect((await c.req(T.READ, '/x\0', tx)).error).toBe('ENOENT');
    expect(c.events).toHaveLength(0);
  });
});

describe('transactions', () => {
  async function start(cl: { req: RawClient['req'] } = c): Promise<number> {
    const r = await cl.req(T.TRANSACTION_START, '\0');
    expect(r.type).toBe(T.TRANSACTION_START);
    const id = Number(r.text.replace(/\0$/, ''));
    expect(id).toBeGreaterThan(0);
    return id;
  }

  it('reads a snapshot, sees its own writes, and commits them atomically with watches', async () => {
    await c.req(T.WRITE, '/t/a\x001');
    const other = await RawClient.open(d.path);
    await other.req(T.WATCH, '/t\0w\0');
    await other.event();
    const tx = await start();
    expect((await c.req(T.READ, '/t/a\0', tx)).text).toBe('1');
    expect((await c.req(T.WRITE, '/t/b\x002', tx)).text).toBe('OK\0');
    expect((await c.req(T.READ, '/t/b\0', tx)).text).toBe('2');
    expect((await c.req(T.READ, '/t/b\0')).error).toBe('ENOENT');
    await other.req(T.WRITE, '/unrelated\0x');
    expect(other.events).toHaveLength(0);
    const end = await c.req(T.TRANSACTION_END, 'T\0', tx);
    expect([end.type, end.txId, end.text]).toEqual([T.TRANSACTION_END, tx, 'OK\0']);
    expect((await c.req(T.READ, '/t/b\0')).text).toBe('2');
    expect(await other.event()).toEqual(['/t/b', 'w']);
    other.close();
  });

  it('fails the commit with EAGAIN when something it read changed, and discards on abort', async () => {
    await c.req(T.WRITE, '/c\x000');
    const tx = await start();
    await c.req(T.READ, '/c\0', tx);
    await c.req(T.WRITE, '/c/x\x001', tx);
    await c.req(T.WRITE, '/c\0changed');
    expect((await c.req(T.TRANSACTION_END, 'T\0', tx)).error).toBe('EAGAIN');
    expect((await c.req(T.READ, '/c/x\0')).error).toBe('ENOENT');
    expect((await c.req(T.TRANSACTION_END, 'T\0', tx)).error).toBe('ENOENT');
    const tx2 = await start();
    await c.req(T.WRITE, '/c/y\x001', tx2);
    expect((await c.req(T.TRANSACTION_END, 'F\0', tx2)).text).toBe('OK\0');
    expect((await c.req(T.READ, '/c/y\0')).error).toBe('ENOENT');
  });

  it('does not conflict on unrelated changes, and orders concurrent increments', async () => {
    await c.req(T.WRITE, '/n\x000');
    const clients = await Promise.all([0, 1, 2, 3].map(() => RawClient.open(d.path)));
    let conflicts = 0;
    await Promise.all(
      clients.map(async (cl) => {
        for (let i = 0; i < 10; i++) {
          for (;;) {
            const tx = await start(cl);
            const v = Number((await cl.req(T.READ, '/n\0', tx)).text);
            await cl.req(T.WRITE, `/n\0${v + 1}`, tx);
            const r = await cl.req(T.TRANSACTION_END, 'T\0', tx);
            if (!r.error) break;
            expect(r.error).toBe('EAGAIN');
            conflicts++;
          }
        }
      }),
    );
    expect((await c.req(T.READ, '/n\0')).text).toBe('40');
    expect(conflicts).toBe(d.xs.stats.conflicts);
    const tx = await start();
    await c.req(T.READ, '/n\0', tx);
    await clients[0]!.req(T.WRITE, '/elsewhere\0x');
    expect((await c.req(T.TRANSACTION_END, 'T\0', tx)).text).toBe('OK\0');
    for (const cl of clients) cl.close();
  });

  it('keeps snapshots isolated from value updates made while they are open', async () => {
    await c.req(T.WRITE, '/iso/v\x001');
    const tx = await start();
    expect((await c.req(T.READ, '/iso/v\x00', tx)).text).toBe('1');
    const other = await RawClient.open(d.path);
    await other.req(T.WRITE, '/iso/v\x002');
    await other.req(T.WRITE, '/iso/v\x003');
    expect((await c.req(T.READ, '/iso/v\x00', tx)).text).toBe('1');
    expect((await c.req(T.TRANSACTION_END, 'T\x00', tx)).error).toBe('EAGAIN');
    expect(d.xs.store.liveTransactions.size).toBe(0);
    await other.req(T.WRITE, '/iso/v\x004');
    const tx2 = await start();
    expect((await c.req(T.READ, '/iso/v\x00', tx2)).text).toBe('4');
    await other.req(T.WRITE, '/iso/v\x005');
    expect((await c.req(T.READ, '/iso/v\x00', tx2)).text).toBe('4');
    other.close();
    await c.req(T.RESET_WATCHES, '\x00');
    expect(d.xs.store.liveTransactions.size).toBe(0);
  });

  it('rejects unknown ids, nesting and bad end arguments', async () => {
    expect((await c.req(T.READ, '/\0', 4242)).error).toBe('ENOENT');
    expect((await c.req(T.WRITE, '/q\0v', 4242)).error).toBe('ENOENT');
    expect((await c.req(T.TRANSACTION_END, 'T\0', 0)).error).toBe('ENOENT');
    const tx = await start();
    expect((await c.req(T.TRANSACTION_START, '\0', tx)).error).toBe('EBUSY');
    expect((await c.req(T.TRANSACTION_END, 'X\0', tx)).error).toBe('EINVAL');
    expect((await c.req(T.TRANSACTION_END, 'F\0', tx)).text).toBe('OK\0');
  });
});

describe('quotas (unprivileged domains)', () => {
  async function guest(domid: number): Promise<DomainClient> {
    await c.req(T.MKDIR, `/local/domain/${domid}\0`);
    await c.req(T.SET_PERMS, `/local/domain/${domid}\0n${domid}\0`);
    return new DomainClient(d.xs, domid);
  }

  it('limits nodes, entry size, path length and permission entries', async () => {
    d.xs.quotas.maxNodes = 20;
    const g = await guest(5);
    let err: string | undefined;
    for (let i = 0; i < 30 && !err; i++) err = (await g.req(T.WRITE, `k${i}\0v`)).error;
    expect(err).toBe('ENOSPC');
    expect(d.xs.store.ownedBy(5)).toBeLessThanOrEqual(20);
    await g.req(T.RM, 'k0\0');
    expect((await g.req(T.WRITE, 'again\0v')).text).toBe('OK\0');
    expect((await g.req(T.WRITE, `big\0${'x'.repeat(2049)}`)).error).toBe('ENOSPC');
    expect((await c.req(T.WRITE, `/big\0${'x'.repeat(4000)}`)).text).toBe('OK\0');
    expect((await g.req(T.READ, `${'p/'.repeat(600)}x\0`)).error).toBe('EINVAL');
    expect((await g.req(T.SET_PERMS, 'again\0n5\0r1\0r2\0r3\0r4\0r6\0')).error).toBe('ENOSPC');
    // Another guest and dom0 are unaffected.
    const g6 = await guest(6);
    expect((await g6.req(T.WRITE, 'fine\0v')).text).toBe('OK\0');
    expect((await c.req(T.CONTROL, 'check\0')).text).toBe('OK\0');
  });

  it('limits watches (E2BIG) and transactions (ENOSPC)', async () => {
    const g = await guest(5);
    let err: string | undefined;
    for (let i = 0; i < 200 && !err; i++) {
      const r = await g.req(T.WATCH, `w${i}\0t\0`);
      err = r.error;
      if (!err) await g.event();
    }
    expect(err).toBe('E2BIG');
    expect(g.conn.watches.size).toBe(128);
    const ids: number[] = [];
    err = undefined;
    for (let i = 0; i < 20 && !err; i++) {
      const r = await g.req(T.TRANSACTION_START, '\0');
      err = r.error;
      if (!err) ids.push(Number(r.text.replace('\0', '')));
    }
    expect(err).toBe('ENOSPC');
    expect(ids).toHaveLength(10);
  });

  it('stops serving a guest that does not read its replies, and drops its excess events', async () => {
    const g = await guest(5);
    g.readable = false;
    for (let i = 0; i < 100; i++) g.send(T.GET_DOMAIN_PATH, '5\0');
    await Promise.resolve();
    expect(g.conn.deferred.length).toBe(100 - d.xs.quotas.maxOutstanding);
    // dom0 is served meanwhile.
    expect((await c.req(T.READ, '/local\0')).text).toBe('');
    g.drain();
    for (let i = 0; i < 100; i++) await g.reply();
    expect(g.conn.deferred.length).toBe(0);

    await g.req(T.WATCH, 'ev\0t\0');
    await g.event();
    g.readable = false;
    for (let i = 0; i < 400; i++) await c.req(T.WRITE, `/local/domain/5/ev\0${i}`);
    expect(g.conn.stats.eventsDropped).toBeGreaterThan(0);
    expect(g.conn.stats.eventsSent).toBeLessThanOrEqual(d.xs.quotas.maxQueuedEvents + 1);
  });
});

describe('CONTROL', () => {
  it('dumps the tree, reports and sets quotas, checks counts', async () => {
    await c.req(T.WRITE, '/ctl/a\x00v');
    await c.req(T.SET_PERMS, '/ctl/a\x00n0\x00r4\x00');
    expect((await c.req(T.CONTROL, 'tree\x00/ctl\x00')).text).toBe('/ctl = "" (n0)\n/ctl/a = "v" (n0,r4)\n\x00');
    expect((await c.req(T.CONTROL, 'quota-set\x00maxWatches\x007\x00')).text).toBe('OK\x00');
    expect((await c.req(T.CONTROL, 'quota\x00')).text).toContain('maxWatches 7\n');
    const g = new DomainClient(d.xs, 4);
    for (let i = 0; i < 7; i++) expect((await g.req(T.WATCH, `/ctl/w${i}\x00t\x00`)).text).toBe('OK\x00');
    expect((await g.req(T.WATCH, '/ctl/w8\x00t\x00')).error).toBe('E2BIG');
    expect((await c.req(T.CONTROL, 'quota\x004\x00')).text).toMatch(/^domain 4: nodes 0\/1000 watches 7\/7 /);
    expect((await c.req(T.CONTROL, 'check\x00')).text).toBe('OK\x00');
    expect((await c.req(T.CONTROL, 'quota-set\x00bogus\x001\x00')).error).toBe('EINVAL');
  });
});

function encodeMsg(type: number, payload: string): Uint8Array {
  const body = Buffer.from(payload);
  const out = new Uint8Array(16 + body.length);
  encodeHeader({ type, reqId: 0, txId: 0, len: body.length }, out);
  out.set(body, 16);
  return out;
}
