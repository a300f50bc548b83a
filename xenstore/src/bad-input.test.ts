/**
 * Hostile and broken input: every malformed request gets Xen's error reply or, where Xen drops
 * the connection, a dropped connection; the daemon never crashes and other clients' data stays
 * intact. Ends with a bounded fuzz run of random and mutated frames.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XsType, encodeHeader, encodeMessage } from '@xenlab/xen-public';
import { XenstoreClient, XenstoreRing, localEventChannelPair } from '@xenlab/xenstore-client';
import { RingConnection } from './ring-connection.ts';
import { DomainClient, RawClient, startDaemon, type Daemon } from './testing/harness.ts';

const T = XsType;
let d: Daemon;
let c: RawClient;

beforeEach(async () => {
  d = await startDaemon();
  c = await RawClient.open(d.path);
  await c.req(T.WRITE, '/victim/data\0precious');
});
afterEach(async () => {
  c.close();
  await d.stop();
});

function header(type: number, len: number, txId = 0): Uint8Array {
  return encodeHeader({ type, reqId: 1, txId, len });
}

async function victimIntact(): Promise<void> {
  const fresh = await RawClient.open(d.path);
  expect((await fresh.req(T.READ, '/victim/data\0')).text).toBe('precious');
  expect((await fresh.req(T.CONTROL, 'check\0')).text).toBe('OK\0');
  fresh.close();
}

describe('malformed frames', () => {
  it('drops a client announcing a payload over 4096 bytes, and only that client', async () => {
    const bad = await RawClient.open(d.path);
    bad.sendRaw(header(T.WRITE, 4097));
    await bad.waitClosed();
    const big = await c.req(T.WRITE, `/max\0${'v'.repeat(4096 - 5)}`);
    expect(big.text).toBe('OK\0');
    await victimIntact();
  });

  it('answers unknown and server-only operation numbers with ENOSYS', async () => {
    for (const t of [20, 23, 24, 99, 0xffff, 0xffffffff, T.WATCH_EVENT, T.ERROR]) {
      expect((await c.req(t, '/x\0')).error).toBe('ENOSYS');
    }
  });

  it('rejects missing NULs and wrong argument counts with EINVAL', async () => {
    expect((await c.req(T.READ, '/victim/data')).error).toBe('EINVAL');
    expect((await c.req(T.READ, '/victim\0data\0')).error).toBe('EINVAL');
    expect((await c.req(T.READ, '')).error).toBe('EINVAL');
    expect((await c.req(T.WRITE, '/no-nul-anywhere')).error).toBe('EINVAL');
    expect((await c.req(T.WATCH, '/w\0')).error).toBe('EINVAL');
    expect((await c.req(T.WATCH, '/w\0t\0extra\0')).error).toBe('EINVAL');
    expect((await c.req(T.SET_PERMS, '/victim\0')).error).toBe('EINVAL');
    expect((await c.req(T.SET_PERMS, '/victim\0x5\0')).error).toBe('EINVAL');
    expect((await c.req(T.SET_PERMS, '/victim\0r99999999\0')).error).toBe('EINVAL');
    expect((await c.req(T.INTRODUCE, '1\x002\0')).error).toBe('EINVAL');
    expect((await c.req(T.INTRODUCE, 'one\x002\x003\0')).error).toBe('EINVAL');
    expect((await c.req(T.GET_DOMAIN_PATH, '-1\0')).error).toBe('EINVAL');
    expect((await c.req(T.DIRECTORY_PART, '/victim\0abc\0')).error).toBe('EINVAL');
    expect((await c.req(T.CONTROL, 'no-such-command\0')).error).toBe('EINVAL');
    await victimIntact();
  });

  it('rejects bad paths: characters, .., double and trailing slashes, length', async () => {
    for (const p of ['/a//b', '/a/', '/a b', '/a/../victim', '..', '/a/.', '/ä', '/a\tb', '@other', '/a\x7f', `/${'x'.repeat(3072)}`]) {
      expect((await c.req(T.WRITE, `${p}\0v`)).error, p).toBe('EINVAL');
      expect((await c.req(T.READ, `${p}\0`)).error, p).toBe('EINVAL');
    }
    expect((await c.req(T.READ, Buffer.from([0x2f, 0xff, 0xfe, 0]))).error).toBe('EINVAL');
    await victimIntact();
  });

  it('handles frames split at every byte and many frames in one write', async () => {
    const frames = Buffer.concat([encodeMessage(T.WRITE, 1, 0, '/s/a\0one'), encodeMessage(T.READ, 2, 0, '/s/a\0')]);
    for (const b of frames) c.sendRaw(Uint8Array.of(b));
    expect((await c.reply()).reqId).toBe(1);
    const r = await c.reply();
    expect([r.reqId, Buffer.from(r.payload).toString()]).toEqual([2, 'one']);
    const many = Buffer.concat(Array.from({ length: 500 }, (_, i) => encodeMessage(T.READ, i, 0, '/s/a\0')));
    c.sendRaw(many);
    for (let i = 0; i < 500; i++) expect((await c.reply()).reqId).toBe(i);
  });

  it('refuses requests on transactions that do not exist (or belong to someone else)', async () => {
    const other = await RawClient.open(d.path);
    const tx = Number((await other.req(T.TRANSACTION_START, '\0')).text.replace('\0', ''));
    expect((await c.req(T.WRITE, '/victim/data\0stolen', tx + 1000)).error).toBe('ENOENT');
    expect((await c.req(T.READ, '/victim/data\0', 0xffffffff)).error).toBe('ENOENT');
    other.close();
    await victimIntact();
  });

  it('keeps a guest flooding watches and requests inside its quotas', async () => {
    const g = new DomainClient(d.xs, 11);
    const flood = Buffer.concat(Array.from({ length: 400 }, (_, i) => encodeMessage(T.WATCH, 0, 0, `/victim/w${i}\0t\0`)));
    g.readable = false;
    g.sendRaw(flood);
    expect(g.conn.deferred.length).toBeGreaterThan(300);
    g.drain();
    const errors = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const m = await g.reply();
      if (m.type === T.ERROR) {
        const name = Buffer.from(m.payload).toString().replace('\0', '');
        errors.set(name, (errors.get(name) ?? 0) + 1);
      }
    }
    expect(g.conn.watches.size).toBe(128);
    expect(errors.get('E2BIG')).toBe(400 - 128);
    expect((await g.req(T.WRITE, '/victim/data\0mine')).error).toBe('EACCES');
    await victimIntact();
  });
});

/** A small deterministic PRNG so a failing fuzz run can be replayed from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

describe('fuzz', () => {
  it('survives random and mutated frames for a bounded time, then answers correctly', async () => {
    const seed = Number(process.env.XENSTORE_FUZZ_SEED ?? Date.now() % 1e9);
    const rand = rng(seed);
    const pick = <X>(xs: readonly X[]): X => xs[Math.floor(rand() * xs.length)]!;
    const paths = ['/fuzz', '/fuzz/a', '/fuzz/a/b', 'rel', 'rel/x', '@introduceDomain', '@releaseDomain', '/victim', '/victim/data', '/', '/local/domain/12'];
    const valid = (): Buffer => {
      const p = pick(paths);
      const ops: Array<[number, string]> = [
        [T.READ, `${p}\0`],
        [T.WRITE, `${p}\0${'v'.repeat(Math.floor(rand() * 50))}`],
        [T.MKDIR, `${p}\0`],
        [T.RM, `${p}\0`],
        [T.DIRECTORY, `${p}\0`],
        [T.DIRECTORY_PART, `${p}\0${Math.floor(rand() * 10)}\0`],
        [T.GET_PERMS, `${p}\0`],
        [T.SET_PERMS, `${p}\0n12\0r0\0`],
        [T.WATCH, `${p}\0tok${Math.floor(rand() * 5)}\0`],
        [T.UNWATCH, `${p}\0tok${Math.floor(rand() * 5)}\0`],
        [T.TRANSACTION_START, '\0'],
        [T.TRANSACTION_END, pick(['T\0', 'F\0', 'X\0', ''])],
        [T.GET_DOMAIN_PATH, `${Math.floor(rand() * 70000)}\0`],
        [T.RESET_WATCHES, '\0'],
        [T.INTRODUCE, `${Math.floor(rand() * 30)}\0${Math.floor(rand() * 1e6)}\0${Math.floor(rand() * 10)}\0`],
        [T.RELEASE, `${Math.floor(rand() * 30)}\0`],
        [T.CONTROL, pick(['check\0', 'quota\0', 'tree\0', 'stats\0', 'bogus\0'])],
      ];
      const [t, payload] = pick(ops);
      return Buffer.from(encodeMessage(t, Math.floor(rand() * 2 ** 32), pick([0, 0, 0, 1, 2, Math.floor(rand() * 2 ** 32)]), payload));
    };
    const mutate = (b: Buffer): Buffer => {
      const m = Buffer.from(b);
      const n = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < n; i++) {
        // Mostly the payload: a broken header usually just ends the connection.
        const at = rand() < 0.9 && m.length > 16 ? 16 + Math.floor(rand() * (m.length - 16)) : Math.floor(rand() * m.length);
        switch (Math.floor(rand() * 4)) {
          case 0:
            m[at] = Math.floor(rand() * 256);
            break;
          case 1:
            m[at] = 0;
            break;
          case 2:
            m[at] = pick([0x2f, 0x2e, 0x40, 0x20]);
            break;
          default:
            // Keep the header's length honest half of the time so the payload mutation is reached.
            if (at >= 16) m.writeUInt32LE(m.length - 16, 12);
        }
      }
      return m;
    };
    const random = (): Buffer => {
      const len = Math.floor(rand() * 64);
      const b = Buffer.alloc(16 + len);
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
      b.writeUInt32LE(rand() < 0.95 ? len : Math.floor(rand() * 2 ** 32), 12);
      if (rand() < 0.7) b.writeUInt32LE(Math.floor(rand() * 25), 0);
      return b;
    };

    let guests = [12, 13].map((id) => new DomainClient(d.xs, id));
    let sockets = await Promise.all([0, 1].map(() => RawClient.open(d.path)));
    const deadline = Date.now() + 3000;
    let frames = 0;
    let drops = 0;
    while (Date.now() < deadline) {
      for (let i = 0; i < 50; i++) {
        const r = rand();
        const frame = r < 0.5 ? valid() : r < 0.85 ? mutate(valid()) : random();
        frames++;
        if (rand() < 0.5) {
          const g = pick(guests);
          g.sendRaw(frame);
          if (rand() < 0.1) g.readable = !g.readable;
          if (g.readable) g.drain();
        } else {
          const s = pick(sockets);
          // Socket clients are privileged: keep them off the victim subtree so any change there
          // would be a real corruption.
          if (!frame.includes('/victim')) s.sendRaw(frame);
        }
      }
      await new Promise((r) => setImmediate(r));
      const alive = sockets.filter((s) => !s.closed);
      drops += sockets.length - alive.length;
      sockets = [...alive, ...(await Promise.all(Array.from({ length: 2 - alive.length }, () => RawClient.open(d.path))))];
      for (const s of sockets) if (s.pendingReplies > 1000) while (s.pendingReplies) await s.reply();
      for (const g of guests) while (g.pendingReplies) await g.reply();
      drops += guests.filter((g) => g.closed).length;
      guests = guests.map((g) => (g.closed ? new DomainClient(d.xs, g.conn.domid) : g));
    }
    for (const s of sockets) s.close();
    const unexpected = d.logs.filter((l) => l.includes(' failed: '));
    expect(unexpected, `seed ${seed}`).toEqual([]);
    await victimIntact();
    expect((await c.req(T.WRITE, '/after\0fuzz')).text).toBe('OK\0');
    expect((await c.req(T.READ, '/after\0')).text).toBe('fuzz');
    expect(frames).toBeGreaterThan(1000);
    console.log(`fuzz: seed ${seed}, ${frames} frames, ${drops} dropped connections, ${d.xs.stats.requests} requests served`);
  });
});

describe('ring fuzz', () => {
  it('survives a guest scribbling on its whole ring page, and serves a well-behaved guest meanwhile', async () => {
    const seed = Number(process.env.XENSTORE_FUZZ_SEED ?? Date.now() % 1e9);
    const rand = rng(seed);
    await c.req(T.MKDIR, '/local/domain/21\x00');
    await c.req(T.SET_PERMS, '/local/domain/21\x00n21\x00');
    // The hostile guest: its page is scribbled on directly.
    const evil = new ArrayBuffer(4096);
    const [evilGuest, evilServer] = localEventChannelPair();
    let evilConn = new RingConnection(d.xs, 20, new XenstoreRing(evil), evilServer);
    let evilRequests = 0;
    let reattached = 0;
    const bytes = new Uint8Array(evil);
    const words = new Uint32Array(evil, 0, 2076 / 4);
    // The honest guest.
    const page = new ArrayBuffer(4096);
    const [goodGuest, goodServer] = localEventChannelPair();
    new RingConnection(d.xs, 21, new XenstoreRing(page), goodServer);
    const good = XenstoreClient.overRing(new XenstoreRing(page), goodGuest);
    const frames = [
      encodeMessage(T.WRITE, 1, 0, '/victim/data\x00pwned'),
      encodeMessage(T.WRITE, 2, 0, 'mine\x00x'),
      encodeMessage(T.WATCH, 3, 0, '/\x00t\x00'),
      encodeMessage(T.READ, 4, 0, '/victim/data\x00'),
    ];
    const deadline = Date.now() + 1500;
    let honest = 0;
    let scribbles = 0;
    while (Date.now() < deadline) {
      for (let i = 0; i < 20; i++) {
        scribbles++;
        const r = rand();
        if (r < 0.3) words[512 + Math.floor(rand() * 7)] = Math.floor(rand() * 2 ** 32);
        else if (r < 0.45) words[512 + Math.floor(rand() * 4)] = (words[512 + Math.floor(rand() * 4)]! + Math.floor(rand() * 2048)) >>> 0;
        else if (r < 0.55) words[517] = Math.floor(rand() * 3); // connection
        else if (r < 0.6) words[518] = 0; // clear the error field, as a confused guest might
        else if (r < 0.8) {
          const f = frames[Math.floor(rand() * frames.length)]!;
          const prod = words[513]!;
          for (let k = 0; k < f.length; k++) bytes[(prod + k) & 1023] = f[k]!;
          words[513] = (prod + f.length) >>> 0;
        } else bytes[Math.floor(rand() * 2048)] = Math.floor(rand() * 256);
        evilGuest.notify();
      }
      if (evilConn.conn.closed) {
        // A protocol error dropped it: attach afresh, as a re-introduction would.
        evilRequests += evilConn.conn.stats.requests;
        reattached++;
        words[518] = 0;
        evilConn = new RingConnection(d.xs, 20, new XenstoreRing(evil), evilServer);
      }
      await good.write(`k${honest % 10}`, String(honest));
      expect(await good.readString(`k${honest % 10}`)).toBe(String(honest));
      honest++;
    }
    good.close();
    evilRequests += evilConn.conn.stats.requests;
    expect(evilRequests, 'the hostile guest was served at all').toBeGreaterThan(100);
    expect(d.logs.filter((l) => l.includes('failed')), `seed ${seed}`).toEqual([]);
    await victimIntact();
    expect(honest).toBeGreaterThan(10);
    console.log(`ring fuzz: seed ${seed}, ${scribbles} scribbles, ${evilRequests} hostile requests served, ${reattached} re-attachments, ${honest} honest round trips`);
  });
});
