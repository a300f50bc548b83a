/**
 * `npx xenstored` as a real process: a guest in this process talks to it over a ring page in
 * shared memory with doorbells (the cross-process ring transport), dom0 over the socket; then
 * SIGTERM shuts it down cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestRingFile, XenstoreClient } from '@xenlab/xenstore-client';
import { within } from './testing/harness.ts';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'xenstored.mjs');

let dir: string;
let daemon: ChildProcess;
let stderr = '';
let exited: Promise<number | null>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenstored-proc-'));
  daemon = spawn(process.execPath, [BIN, '--socket', join(dir, 'socket'), '--ro-socket', join(dir, 'socket_ro'), '--ring-dir', dir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  exited = new Promise((resolve) => daemon.on('exit', (code) => resolve(code)));
  await within(
    new Promise<void>((resolve, reject) => {
      daemon.stderr!.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (stderr.includes('listening on')) resolve();
      });
      daemon.on('exit', () => reject(new Error(`xenstored exited early: ${stderr}`)));
    }),
    20_000,
    'xenstored to listen',
  );
});

afterAll(async () => {
  if (daemon.exitCode === null) daemon.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('xenstored process', () => {
  it('serves a guest over a shared-memory ring page with doorbells', async () => {
    const dom0 = await XenstoreClient.connect(join(dir, 'socket'));
    const file = GuestRingFile.create(join(dir, 'domain-5.xsring'));
    const guest = XenstoreClient.overRing(file.ring, file.guestEventChannel());
    try {
      await dom0.mkdir('/local/domain/5');
      await dom0.setPerms('/local/domain/5', ['n5']);
      const intro = await dom0.watch('@introduceDomain');
      await intro.next(5000);
      await dom0.introduceDomain(5, 0x1234, 3);
      expect(await intro.next(5000)).toEqual({ path: '@introduceDomain', token: intro.token });
      expect(file.ring.serverFeatures).toBe(3);

      await guest.write('name', 'guest5');
      expect(await dom0.readString('/local/domain/5/name')).toBe('guest5');
      const w = await guest.watch('control/shutdown');
      expect((await w.next(5000))?.path).toBe('control/shutdown');
      await dom0.write('/local/domain/5/control/shutdown', 'poweroff');
      expect((await w.next(5000))?.path).toBe('control/shutdown');
      expect(await guest.readString('control/shutdown')).toBe('poweroff');
      const big = 'b'.repeat(2000); // under the 2048-byte entry quota, over the 1024-byte ring
      await guest.write('data/big', big);
      expect(await guest.readString('data/big')).toBe(big);
      const many = await Promise.all(Array.from({ length: 100 }, (_, i) => guest.write(`data/k${i}`, String(i)).then(() => guest.readString(`data/k${i}`))));
      expect(many).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
      expect(await guest.read('/local/domain/0').catch((e: { code: string }) => e.code)).toBe('EACCES');
      await w.close();
      // After RELEASE the daemon no longer serves the ring (a guest request would go unanswered).
      await dom0.releaseDomain(5);
      expect(await dom0.isDomainIntroduced(5)).toBe(false);
    } finally {
      guest.close();
      dom0.close();
      setTimeout(() => file.close(), 300).unref();
    }
  });

  it('refuses changes on the read-only socket', async () => {
    const ro = await XenstoreClient.connect(join(dir, 'socket_ro'));
    expect(await ro.readString('/local/domain/5/name')).toBe('guest5');
    expect(await ro.write('/x', 'y').catch((e: { code: string }) => e.code)).toBe('EROFS');
    ro.close();
  });

  it('shuts down cleanly on SIGTERM and removes its sockets', async () => {
    daemon.kill('SIGTERM');
    expect(await within(exited, 10_000, 'xenstored to exit')).toBe(0);
    expect(stderr).toContain('SIGTERM: shutting down');
    expect(existsSync(join(dir, 'socket'))).toBe(false);
    expect(existsSync(join(dir, 'socket_ro'))).toBe(false);
  });
});
