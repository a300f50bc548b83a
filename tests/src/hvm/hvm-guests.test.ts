/**
 * HVM guests end to end (issue 7), across real processes: a host (hypervisor with pCPU threads,
 * dom0, xenstored), the HVM builder (dom0/src/toolstack/hvm-builder.ts, run here in the test
 * process as the toolstack would run it in dom0) and one qemu-dm process per guest. The guests are
 * the shipped, unmodified images booted from a disk by the virtual BIOS; their COM1 is read from
 * qemu-dm's console socket and log. Every wait is bounded; the host is always stopped.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HypercallClient, XEN_DOMINF, hostLayout } from '@xenlab/xen-public';
import { XenstoreClient } from '@xenlab/xenstore-client';
import { createHvmDomain, destroyHvmDomain, hvmPaths, type HvmBuilderEnv } from '@xenlab/dom0';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const GUESTS = join(root, 'guests');
let dir: string;
let env: NodeJS.ProcessEnv;
let hc: HypercallClient;
let xs: XenstoreClient;
let b: HvmBuilderEnv;
const xenlab = async (...args: string[]) => (await run(process.execPath, [join(root, 'node_modules/.bin/xenlab'), ...args], { env, timeout: 30_000 })).stdout;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenlab-e2e-hvm-'));
  env = { ...process.env, XENLAB_RUN_DIR: dir };
  await xenlab('start', '--pcpus', '2', '--memory', '32', '--dom0-memory', '4');
  const L = hostLayout(dir);
  hc = await HypercallClient.connect(L.hypervisorSocket, readFileSync(L.dom0Token, 'utf8').trim());
  xs = await XenstoreClient.connect(L.xenstoredSocket);
  b = { hc, xs, runDir: dir };
}, 60_000);

afterAll(async () => {
  xs?.close();
  hc?.close();
  try {
    await xenlab('stop');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

/** A 4 MiB disk with `program` at LBA 0 and diskex's known pattern everywhere else. */
function makeDisk(name: string, program: Uint8Array): { path: string; bytes: Uint8Array } {
  const sectors = 8192;
  const bytes = new Uint8Array(sectors * 512);
  for (let s = 0; s < sectors; s++) for (let i = 0; i < 512; i++) bytes[s * 512 + i] = (s * 7 + i * 3) & 0xff;
  bytes.set(program, 0);
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, bytes };
}

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const consoleLog = (domid: number) => {
  const p = join(hostLayout(dir).logDir, `console-d${domid}.log`);
  return existsSync(p) ? readFileSync(p, 'utf8') : '';
};
const dmesg = async () => (await hc.call('sysctl', 'readconsole', {})).text;
const domainExists = async (domid: number) => (await hc.call('sysctl', 'getdomaininfolist', { first_domain: domid, max_domains: 1 })).some((d) => d.domain === domid);

/** Nothing of the guest is left: no domain, no qemu-dm, no xenstore nodes, no files. */
async function expectNothingLeft(domid: number, pid: number | undefined): Promise<void> {
  expect(await domainExists(domid)).toBe(false);
  if (pid !== undefined) expect(() => process.kill(pid, 0)).toThrow();
  expect(await xs.tryRead(`/local/domain/0/device-model/${domid}/state`)).toBeUndefined();
  expect(await xs.exists(`/local/domain/${domid}`)).toBe(false);
  expect(existsSync(hvmPaths(dir, domid).dmDir)).toBe(false);
  // the ioreq server went with the domain: its event channels in dom0 are closed
  expect(readdirSync(join(dir, 'qemu-dm')).includes(String(domid))).toBe(false);
}

/** diskex's checksum: sum = rol(sum, 1) + w over little-endian words, mod 2^16. */
function diskexSum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum = ((((sum << 1) | (sum >>> 15)) & 0xffff) + (bytes[i]! | (bytes[i + 1]! << 8))) & 0xffff;
  return sum;
}
/** What diskex writes (guests/diskex.asm): v = seed, +13 per byte, +81 more per sector. */
function diskexPattern(sectors: number, seed: number): Uint8Array {
  const out = new Uint8Array(sectors * 512);
  let v = seed;
  for (let s = 0; s < sectors; s++) {
    for (let i = 0; i < 512; i++) {
      out[s * 512 + i] = v;
      v = (v + 13) & 0xff;
    }
    v = (v + 81) & 0xff;
  }
  return out;
}
const hex = (n: number, w: number) => n.toString(16).toUpperCase().padStart(w, '0');

describe('HVM guests: BIOS, ioreqs served by a qemu-dm process, APM power-off', () => {
  it('diskex boots from its disk and prints what the PV path prints; the disk changes as expected; nothing is left after power-off', async () => {
    const program = new Uint8Array(readFileSync(join(GUESTS, 'diskex.bin')));
    const disk = makeDisk('diskex.img', program);
    const t0 = Date.now();
    const g = await createHvmDomain(b, { name: 'diskex-hvm', memoryMiB: 4, vcpus: 1, disks: [{ path: disk.path, readOnly: false }], boot: 'c', serial: ['pty'] });
    expect(await xs.tryRead(`/local/domain/0/device-model/${g.domid}/state`)).toBe('running');
    expect(await xs.tryRead(`/local/domain/${g.domid}/serial/0/tty`)).toBe(join(dir, 'qemu-dm', String(g.domid), 'serial'));
    const out = await until('diskex DONE on COM1', 90_000, () => (consoleLog(g.domid).includes('DONE') ? consoleLog(g.domid) : undefined));
    // APM power-off → PM1a → qemu-dm → remote_shutdown(poweroff) → dom0 destroys (on_poweroff=destroy)
    await until('domain gone after power-off', 15_000, async () => !(await domainExists(g.domid)));
    const pid = g.qemuDm.pid;
    await until('qemu-dm exits when its domain is gone', 10_000, () => g.qemuDm.exitCode !== null || g.qemuDm.signalCode !== null);
    expect(g.qemuDm.exitCode).toBe(0);
    // qemu-dm's counters (written as it exits): it saw only the ranges it claimed, the data moved in rep ioreqs
    const st = JSON.parse(readFileSync(join(dir, 'qemu-dm', String(g.domid), 'stats.json'), 'utf8'));
    expect(st.devices.unassigned).toBeUndefined();
    expect(st.exits.pioRep).toBeGreaterThan(100);
    expect(st.ata.sectorsRead).toBeGreaterThan(127);
    expect(st.ioreq.malformed).toBe(0);
    expect(await dmesg()).toMatch(new RegExp(`d${g.domid}: shutdown \\(poweroff\\)`));
    await destroyHvmDomain(b, g.domid, g.qemuDm); // the toolstack's part of the clean-up
    await expectNothingLeft(g.domid, pid);

    // The report, after the BIOS's banner: the same lines the PV path pins (guests/src/guests.test.ts).
    const report = out.split('Booting from hard disk...\r\n')[1] ?? '';
    const lines = new Map(report.split(/\r?\n/).filter((l) => l).map((l) => {
      const [name, ...kv] = l.split(' ');
      return [name!, Object.fromEntries(kv.map((p) => (p.includes('=') ? p.split('=') : [p, 'true'])))] as const;
    }));
    const expected = disk.bytes.slice();
    const at = (lba: number, n: number, bytes: Uint8Array = expected) => bytes.subarray(lba * 512, (lba + n) * 512);
    const before64 = diskexSum(at(64, 8, disk.bytes));
    const p43 = diskexPattern(8, 0x5a);
    const p03 = diskexPattern(2, 0xa5);
    expected.set(p43, 64 * 512);
    expected.set(p03, 72 * 512);
    const ok = { CF: '00', AH: '00' };
    expect(lines.get('EXT41')).toEqual({ ...ok, AH: '21', BX: 'AA55', CX: '0001' });
    expect(lines.get('GEOM08')).toEqual({ ...ok, CYL: '0008', HEADS: '10', SPT: '3F', DRIVES: '01' });
    expect(lines.get('TYPE15')).toEqual({ CF: '00', AH: '03', SECTORS: '00002000' });
    expect(lines.get('PARAM48')).toEqual({ ...ok, SECTORS: '00002000', BPS: '0200' });
    expect(lines.get('READ02')).toEqual({ LBA: '00000000', N: '01', ...ok, SUM: hex(diskexSum(at(0, 1, disk.bytes)), 4) });
    expect(lines.get('READ42')).toEqual({ LBA: '00000040', N: '08', ...ok, SUM: hex(before64, 4) });
    expect(lines.get('WRITE43')).toEqual({ LBA: '00000040', N: '08', ...ok, SUM: hex(diskexSum(p43), 4) });
    expect(lines.get('VERIFY42')).toEqual({ LBA: '00000040', N: '08', ...ok, SUM: hex(diskexSum(p43), 4), OK: 'true' });
    expect(lines.get('WRITE03')).toEqual({ LBA: '00000048', N: '02', ...ok, SUM: hex(diskexSum(p03), 4) });
    expect(lines.get('BIG42')).toEqual({ LBA: '00000000', N: '7F', ...ok, SUM: hex(diskexSum(at(0, 127)), 4) });
    expect(lines.get('PAST42')).toEqual({ LBA: '00002000', N: '01', CF: '01', AH: '04' });
    expect(lines.get('STATUS01')).toEqual({ AH: '04' });
    expect(lines.has('DONE')).toBe(true);
    // the image on disk: exactly the two written ranges changed
    expect(Buffer.compare(readFileSync(disk.path), Buffer.from(expected))).toBe(0);
    if (process.env.SHOW_TIMING) console.log(`diskex HVM: ${Date.now() - t0} ms`);
  }, 120_000);

  it('hello prints on COM1 to an attached console client and powers off through APM', async () => {
    const disk = makeDisk('hello.img', new Uint8Array(readFileSync(join(GUESTS, 'hello.bin'))));
    const g = await createHvmDomain(b, { name: 'hello-hvm', memoryMiB: 4, vcpus: 1, disks: [{ path: disk.path, readOnly: true }], serial: ['pty'] }, { paused: true });
    // attach like `xl console` before the guest runs: the socket named in xenstore
    const tty = (await xs.tryRead(`/local/domain/${g.domid}/serial/0/tty`))!;
    let seen = '';
    const sock = connect(tty);
    sock.on('data', (d) => (seen += d.toString('latin1')));
    await new Promise<void>((r, j) => sock.once('connect', () => r()).once('error', j));
    await hc.call('domctl', 'unpausedomain', { domain: g.domid });
    await until('hello on the console socket', 60_000, () => seen.includes('Hello from a xenlab guest!'));
    await until('domain gone after power-off', 15_000, async () => !(await domainExists(g.domid)));
    sock.destroy();
    expect(await dmesg()).toMatch(new RegExp(`d${g.domid}: shutdown \\(poweroff\\)`));
    expect(consoleLog(g.domid)).toContain('Hello from a xenlab guest!');
    await destroyHvmDomain(b, g.domid, g.qemuDm);
    await expectNothingLeft(g.domid, g.qemuDm.pid);
  }, 90_000);

  it('a disk without 55AA: the BIOS says so and halts; killing one qemu-dm crashes only its guest; destroy still works', async () => {
    const blank = makeDisk('blank.img', new Uint8Array(512).fill(0x90));
    const a = await createHvmDomain(b, { name: 'nosig-a', memoryMiB: 4, vcpus: 1, disks: [{ path: blank.path, readOnly: true }], serial: ['pty'] });
    const c = await createHvmDomain(b, { name: 'nosig-b', memoryMiB: 4, vcpus: 1, disks: [{ path: blank.path, readOnly: true }], serial: ['pty'] });
    for (const g of [a, c]) await until(`d${g.domid} BIOS message`, 60_000, () => consoleLog(g.domid).includes('No bootable disk: the boot sector has no 55AA signature.'));
    const info = async (d: number) => (await hc.call('sysctl', 'getdomaininfolist', { first_domain: d, max_domains: 1 }))[0]!;
    expect((await info(a.domid)).flags & XEN_DOMINF.shutdown).toBe(0); // halted, not shut down

    c.qemuDm.kill('SIGKILL');
    await until('only the guest of the killed qemu-dm crashed', 15_000, async () => (await dmesg()).match(new RegExp(`d${c.domid}: shutdown \\(crash\\): its device model went away`)));
    const ai = await info(a.domid);
    expect(ai.domain).toBe(a.domid);
    expect(ai.flags & XEN_DOMINF.shutdown).toBe(0);
    expect(a.qemuDm.exitCode).toBe(null);
    await destroyHvmDomain(b, c.domid, c.qemuDm); // dom0 may have reaped it already (on_crash=destroy): still fine
    await destroyHvmDomain(b, a.domid, a.qemuDm);
    await expectNothingLeft(c.domid, c.qemuDm.pid);
    await expectNothingLeft(a.domid, a.qemuDm.pid);
  }, 120_000);
});
