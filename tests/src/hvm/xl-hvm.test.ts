/**
 * HVM guests through the user's commands (issue 7): `xl create` of an xl.cfg with
 * `type = "hvm"` on a booted host goes to dom0's toolstack service, which dispatches to the HVM
 * builder (dom0/src/toolstack/hvm-builder.ts) and starts one qemu-dm process; COM1 is the
 * guest's console (`serial = "pty"`). Checked: console output, APM power-off handled by the
 * toolstack's on_poweroff, `xl destroy` of a running guest, and that nothing is left behind (no
 * domain, no qemu-dm, no xenstore node, no event channel of its ioreq server in dom0). Every wait
 * is bounded; the host is always stopped.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HypercallClient } from '@xenlab/xen-public';
import { expectNoDom0ChannelTo, pidAlive, repoRoot, startTestHost, until, type TestHost } from '../testing/xl-host.ts';

const root = repoRoot;
let host: TestHost;
let dir: string;
let hc: HypercallClient;
const tool = (name: string, ...args: string[]) => host.tool(name, ...args);
const xl = (...args: string[]) => host.xl(...args);
const domidOf = (name: string) => host.domidOf(name);

beforeAll(async () => {
  host = await startTestHost('xenlab-hvm-xl-', ['--pcpus', '2', '--memory', '32', '--dom0-memory', '8']);
  ({ dir, hc } = host);
}, 60_000);

afterAll(async () => {
  await host?.stop();
}, 60_000);

/** A 4 MiB disk with `image` at LBA 0 and a known pattern after it (as the PV suite's disks). */
function hvmConfig(name: string, image: Uint8Array, o: { type?: 'hvm' | 'pv'; extra?: string[] } = {}): string {
  const disk = join(dir, `${name}.img`);
  const bytes = new Uint8Array(4 << 20);
  for (let i = 0; i < bytes.length; i++) bytes[i] = ((i >> 9) * 7 + (i & 511) * 3) & 0xff;
  bytes.set(image, 0);
  writeFileSync(disk, bytes);
  const cfg = join(dir, `${name}.cfg`);
  const type = o.type ?? 'hvm';
  const vdev = type === 'hvm' ? 'hda' : 'xvda';
  const lines = [`name = "${name}"`, `type = "${type}"`, 'memory = 4', `disk = [ 'format=raw, vdev=${vdev}, access=rw, target=${disk}' ]`, 'on_poweroff = "destroy"'];
  if (type === 'hvm') lines.push('boot = "c"', 'serial = "pty"');
  writeFileSync(cfg, [...lines, ...(o.extra ?? []), ''].join('\n'));
  return cfg;
}

/** diskex's report: from its first line (DISKEX ...) to DONE, line endings normalised. */
const report = (text: string) => {
  const at = text.indexOf('DISKEX');
  return at < 0 ? '' : text.slice(at).replace(/\r\n/g, '\n').split('\n').filter((l) => l).join('\n');
};

/** No domain, no qemu-dm, no xenstore node, no dom0 event channel to it. */
async function expectNoTrace(domid: number, dmPid: number): Promise<void> {
  await until(`d${domid} gone`, 15_000, async () => !(await hc.call('sysctl', 'getdomaininfolist', { first_domain: domid, max_domains: 1 })).some((d) => d.domain === domid));
  await until(`qemu-dm ${dmPid} gone`, 10_000, () => !pidAlive(dmPid));
  expect(await tool('xenstore-ls', '/local/domain')).not.toMatch(new RegExp(`^${domid} = `, 'm'));
  expect(await tool('xenstore-ls', '/local/domain/0')).not.toMatch(new RegExp(`^ *device-model = [^\\n]*\\n +${domid} = `, 'm'));
  expect(await tool('xenstore-read', `/local/domain/0/device-model/${domid}/state`).catch(() => 'absent')).toBe('absent');
  await expectNoDom0ChannelTo(hc, domid);
  expect(existsSync(join(dir, 'qemu-dm', String(domid)))).toBe(false);
}

describe('xl create type = "hvm"', () => {
  it('hello: COM1 on the console, APM power-off, on_poweroff=destroy leaves nothing', async () => {
    const cfg = hvmConfig('hello-hvm', new Uint8Array(readFileSync(join(root, 'guests/hello.bin'))));
    await xl('create', '-p', cfg); // paused: hello powers off within a second once it runs
    const domid = (await domidOf('hello-hvm'))!;
    expect(domid).toBeGreaterThan(0);
    const dmPid = Number(await tool('xenstore-read', `/local/domain/${domid}/image/device-model-pid`));
    expect(pidAlive(dmPid)).toBe(true);
    expect(await tool('xenstore-read', `/local/domain/0/device-model/${domid}/state`)).toMatch(/^running/);
    await xl('unpause', String(domid));
    const log = join(dir, 'logs', `console-d${domid}.log`);
    await until('hello on COM1', 60_000, () => existsSync(log) && readFileSync(log, 'utf8').includes('Hello from a xenlab guest!'));
    await expectNoTrace(domid, dmPid);
  }, 90_000);

  it('diskex booted from disk prints exactly what the same disk prints as a PV guest; the images end up identical', async () => {
    const program = new Uint8Array(readFileSync(join(root, 'guests/diskex.bin')));
    const hvmCfg = hvmConfig('diskex-hvm', program);
    const pvCfg = hvmConfig('diskex-pv', program, { type: 'pv' });
    await xl('create', '-p', hvmCfg); // paused until the PV guest exists too: both run side by side
    const hvmId = (await domidOf('diskex-hvm'))!;
    const hvmDm = Number(await tool('xenstore-read', `/local/domain/${hvmId}/image/device-model-pid`));
    await xl('create', pvCfg);
    await xl('unpause', String(hvmId));
    const hvmLog = join(dir, 'logs', `console-d${hvmId}.log`);
    const pvLog = join(dir, 'logs', 'console', 'guest-diskex-pv.log');
    const read = (p: string) => (existsSync(p) ? readFileSync(p, 'latin1') : '');
    await until('diskex DONE under HVM and PV', 120_000, () => /^DONE/m.test(read(hvmLog)) && /^DONE/m.test(read(pvLog)));
    const hvm = report(read(hvmLog));
    expect(hvm).toMatch(/^DISKEX/);
    expect(hvm).toMatch(/\nDONE$/);
    expect(hvm).toBe(report(read(pvLog)));
    await expectNoTrace(hvmId, hvmDm);
    await until('the PV guest gone', 15_000, async () => (await domidOf('diskex-pv')) === undefined);
    expect(Buffer.compare(readFileSync(join(dir, 'diskex-hvm.img')), readFileSync(join(dir, 'diskex-pv.img')))).toBe(0);
  }, 150_000);

  it('qemu-dm killed: only its guest crashes (on_crash = "preserve" keeps it), xl destroy still works', async () => {
    const a = hvmConfig('keep-hvm', new Uint8Array(512).fill(0x90));
    const b = hvmConfig('victim-hvm', new Uint8Array(512).fill(0x90), { extra: ['on_crash = "preserve"'] });
    await xl('create', a);
    await xl('create', b);
    const aId = (await domidOf('keep-hvm'))!;
    const bId = (await domidOf('victim-hvm'))!;
    const aDm = Number(await tool('xenstore-read', `/local/domain/${aId}/image/device-model-pid`));
    const bDm = Number(await tool('xenstore-read', `/local/domain/${bId}/image/device-model-pid`));
    const logOf = (d: number) => join(dir, 'logs', `console-d${d}.log`);
    await until('both BIOSes halted with their message', 60_000, () => [aId, bId].every((d) => existsSync(logOf(d)) && readFileSync(logOf(d), 'latin1').includes('55AA')));
    process.kill(bDm, 'SIGKILL');
    await until('the victim crashed', 15_000, async () => new RegExp(`^victim-hvm +${bId} .* -+c-+ `, 'm').test(await xl('list')) || new RegExp(`^victim-hvm +${bId} +\\S+ +\\S+ +\\S*c`, 'm').test(await xl('list')));
    expect(await xl('dmesg')).toMatch(new RegExp(`d${bId}: shutdown \\(crash\\): its device model went away`));
    expect(await xl('list')).toMatch(new RegExp(`^keep-hvm +${aId} .*-b----|^keep-hvm +${aId} .*r-----`, 'm'));
    expect(pidAlive(aDm)).toBe(true);
    await xl('destroy', String(bId));
    await expectNoTrace(bId, bDm);
    await xl('destroy', String(aId));
    await expectNoTrace(aId, aDm);
  }, 120_000);

  it('a running HVM guest: xl console shows its COM1, xl destroy ends it and its qemu-dm', async () => {
    const sector = new Uint8Array(512).fill(0x90); // no 55AA: the BIOS prints a message and halts
    const cfg = hvmConfig('nosig-hvm', sector);
    await xl('create', cfg);
    const domid = (await domidOf('nosig-hvm'))!;
    const dmPid = Number(await tool('xenstore-read', `/local/domain/${domid}/image/device-model-pid`));
    // attach the way `xl console --replay` does: the domain's console/tty socket, replay byte first
    const tty = (await tool('xenstore-read', `/local/domain/${domid}/console/tty`)).trim();
    let seen = '';
    const sock = connect(tty);
    sock.on('data', (d) => (seen += d.toString('latin1')));
    await new Promise<void>((r, j) => sock.once('connect', () => r()).once('error', j));
    sock.write(Buffer.from([0x12]));
    await until('the BIOS message on xl console', 60_000, () => seen.includes('No bootable disk: the boot sector has no 55AA signature.'));
    expect(await xl('list')).toMatch(new RegExp(`^nosig-hvm +${domid} `, 'm'));
    await xl('destroy', String(domid));
    sock.destroy();
    await expectNoTrace(domid, dmPid);
  }, 90_000);
});
