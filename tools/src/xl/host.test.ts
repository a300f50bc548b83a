/**
 * xl's way to the host: the checks made before anything is sent, and the hypercall connection
 * made in the background (a command that starts with dom0's toolstack does not wait for it; the
 * first hypercall does, and gets a clear error if it failed).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hostLayout } from '@xenlab/xen-public';
import { UserError, connectHost } from './host.ts';

describe('connectHost', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const runDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'xenlab-xl-host-'));
    dirs.push(d);
    return d;
  };

  it('no host in the run directory: a UserError naming it and saying how to start one', async () => {
    const d = runDir();
    await expect(connectHost('xl list', { XENLAB_RUN_DIR: d })).rejects.toThrow(UserError);
    await expect(connectHost('xl list', { XENLAB_RUN_DIR: d })).rejects.toThrow(new RegExp(`no xenlab host is running in ${d}.*npx xenlab start`));
  });

  it('returns before the hypervisor answers; the first hypercall reports an unreachable hypervisor clearly', async () => {
    const d = runDir();
    const L = hostLayout(d);
    mkdirSync(join(L.hypervisorSocket, '..'), { recursive: true });
    // A socket path that exists but nobody listens on (a plain file), and a token.
    writeFileSync(L.hypervisorSocket, '');
    writeFileSync(L.dom0Token, 'not-a-real-token\n');
    const host = await connectHost('xl pause', { XENLAB_RUN_DIR: d });
    const call = host.hc.call('sysctl', 'getdomaininfolist', { first_domain: 0, max_domains: 1 });
    await expect(call).rejects.toThrow(UserError);
    await expect(call).rejects.toThrow(/xl pause: cannot reach the hypervisor at .*is the host still running/);
    host.close();
  });
});
