/**
 * End to end, PV guests through real processes (issue 6): boot a host in a temporary run
 * directory, `xl create` guests from the shipped configs, check their console output, their disk
 * effects (checksums of the image), `xl list`, shutdown/reboot/destroy and the on_* actions, and
 * that a destroyed domain leaves no process, no xenstore node, no grant mapping (the domain is
 * not even a zombie) and no event channel behind. Every wait is bounded; the host and the
 * temporary directory are always torn down.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HypercallClient, SHUTDOWN, XEN_DOMINF, type DomainInfo } from '@xenlab/xen-public';
import { binPath, expectNoDom0ChannelTo, pidAlive, repoRoot, startTestHost, until, type TestHost } from '../testing/xl-host.ts';
import { diskexPattern, diskexSum, parseDiskexOutput } from '../../../guests/src/pv-guest-harness.ts';

const root = repoRoot;
const guests = join(root, 'guests');
const bin = binPath;
let host: TestHost;
let dir: string;
let env: NodeJS.ProcessEnv;
let hc: HypercallClient;

const tool = (name: string, ...args: string[]) => host.tool(name, ...args);
const xl = (...args: string[]) => host.xl(...args);
const domidOf = (name: string) => host.domidOf(name);

const domains = (): Promise<DomainInfo[]> => hc.call('sysctl', 'getdomaininfolist', { first_domain: 0, max_domains: 100 });
/** Nothing of `domid` remains: hypervisor, xenstore, dom0's event channels, shim process. */
async function expectNoTrace(domid: number, shimPid?: number): Promise<void> {
  // A grant mapping of any of its frames would keep it as a zombie in this list.
  await until(`d${domid} gone from the hypervisor`, 10_000, async () => !(await domains()).some((d) => d.domain === domid));
  const ls = await tool('xenstore-ls', '/local/domain');
  expect(ls).not.toMatch(new RegExp(`^${domid} = `, 'm'));
  expect(await tool('xenstore-ls', '/local/domain/0/backend')).not.toMatch(new RegExp(`^ +${domid} = `, 'm'));
  expect(await tool('xenstore-ls', '/libxl')).not.toMatch(new RegExp(`^${domid} = `, 'm'));
  await expectNoDom0ChannelTo(hc, domid);
  if (shimPid !== undefined) await until(`shim ${shimPid} gone`, 5000, async () => !pidAlive(shimPid));
}

const shimPid = async (domid: number): Promise<number> => Number(readFileSync(join(dir, 'dom0/domains', String(domid), 'shim.pid'), 'utf8'));

beforeAll(async () => {
  host = await startTestHost('xenlab-pv-', ['--pcpus', '2', '--memory', '64', '--dom0-memory', '16']);
  ({ dir, env, hc } = host);
}, 60_000);

afterAll(async () => {
  await host?.stop();
}, 60_000);

describe('PV guests through xl, the toolstack, the shim and the backends', () => {
  it('xl create -c hello: console output from the first byte, then poweroff destroys it without a trace', async () => {
    const out = await xl('create', '-c', join(guests, 'hello.cfg'));
    expect(out).toBe('Hello from a xenlab guest!\r\n');
    expect(readFileSync(join(dir, 'logs/console/guest-hello.log'), 'latin1')).toBe('Hello from a xenlab guest!\r\n');
    const dmesg = await xl('dmesg');
    const domid = Number(/d(\d+) 'hello' created/.exec(dmesg)![1]);
    expect(dmesg).toMatch(new RegExp(`d${domid} 'hello' poweroff: on_poweroff=destroy`));
    await expectNoTrace(domid);
    // Its INT 10h calls went through the shim's trap slot (no socket bounce on the way).
    const c = (await hc.call('sysctl', 'xenlab_domain_counters', { domain: domid })).counters;
    const bounces = Object.entries(c).filter(([k]) => /^trap\.int[0-9a-f]{2}$/.test(k)).reduce((n, [, v]) => n + v, 0);
    expect(c['trap.int10']).toBeGreaterThanOrEqual(27);
    expect(c['trap.slot']).toBe(bounces);
  });

  it('the spare shim, started ahead, connects to the hypervisor and maps machine memory while it waits, and the next create uses it', async () => {
    const socket = join(dir, 'hypervisor/socket');
    const mmPath = hc.info.machine_memory;
    const spare = await until('a spare shim waiting with the host\'s paths', 15_000, () => {
      for (const e of readdirSync('/proc')) {
        if (!/^\d+$/.test(e)) continue;
        let cmd: string[];
        try {
          cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
        } catch {
          continue;
        }
        const w = cmd.indexOf('--wait');
        if (w >= 0 && cmd[w + 1] === '--hypervisor' && cmd[w + 2] === socket && cmd[w + 4] === mmPath) return Number(e);
      }
      return undefined;
    });
    // Mapped already (the mapping shows in its address space) before any create names it.
    await until('the spare has mapped machine memory', 5000, () => readFileSync(`/proc/${spare}/maps`, 'utf8').includes(mmPath));
    await xl('create', '-p', join(guests, 'hello.cfg'));
    const domid = (await domidOf('hello'))!;
    expect(await shimPid(domid)).toBe(spare);
    await xl('destroy', String(domid));
    await expectNoTrace(domid, spare);
  });

  it('diskex through blkfront and blkback: checksums match the image, writes are on disk', async () => {
    const img = join(dir, 'scratch.img');
    // Something recognisable at LBA 0..127 so the read sums mean something.
    const seed = new Uint8Array(128 * 512).map((_, i) => (i * 7 + 3) & 0xff);
    writeFileSync(img, seed);
    truncateSync(img, 4 << 20);
    const out = await xl('create', '-c', join(guests, 'diskex.cfg'), `kernel="${join(guests, 'diskex.bin')}"`, `disk=['format=raw, vdev=xvda, access=rw, target=${img}']`);
    const r = parseDiskexOutput(out);
    expect(r.has('DONE')).toBe(true);
    const disk = readFileSync(img);
    const sec = (lba: number, n: number) => disk.subarray(lba * 512, (lba + n) * 512);
    const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
    expect(r.get('READ02')!.SUM).toBe(hex(diskexSum(seed.subarray(0, 512))));
    expect(r.get('READ42')!.SUM).toBe(hex(diskexSum(seed.subarray(64 * 512, 72 * 512))));
    expect(Buffer.compare(sec(64, 8), Buffer.from(diskexPattern(8, 0x5a)))).toBe(0);
    expect(Buffer.compare(sec(72, 2), Buffer.from(diskexPattern(2, 0xa5)))).toBe(0);
    expect(r.get('WRITE43')!.SUM).toBe(hex(diskexSum(sec(64, 8))));
    expect(r.get('VERIFY42')).toMatchObject({ CF: '00', OK: 'true' });
    expect(r.get('BIG42')!.SUM).toBe(hex(diskexSum(sec(0, 127))));
    expect(r.get('PAST42')).toMatchObject({ CF: '01', AH: '04' });
  });

  it('without a kernel the shim boots the first disk\'s boot sector through blkfront (like pvgrub)', async () => {
    const img = join(dir, 'boot.img');
    copyFileSync(join(guests, 'diskex.bin'), img);
    truncateSync(img, 4 << 20);
    const out = await xl('create', '-c', join(guests, 'diskex-boot.cfg'), `disk=['${img},raw,xvda,rw']`);
    const r = parseDiskexOutput(out);
    expect(r.get('DISKEX')).toMatchObject({ DRIVE: '80' });
    expect(r.get('VERIFY42')).toMatchObject({ CF: '00', OK: 'true' });
    expect(r.has('DONE')).toBe(true);
  });

  it('xl list, console input, shutdown -w, reboot (on_reboot=restart) and destroy', async () => {
    await xl('create', join(guests, 'echo.cfg'), 'on_reboot="restart"');
    const d1 = await until('echo listed', 10_000, () => domidOf('echo'));
    expect(await xl('list', 'echo')).toMatch(new RegExp(`^echo +${d1} +4 +1 +[-rb]{2}---- +\\d+\\.\\d$`, 'm'));
    const bl = await xl('block-list', 'echo');
    expect(bl.split('\n')[0]).toMatch(/^Vdev +BE +handle +state +evt-ch +ring-ref +BE-path/);

    // reboot: the toolstack destroys it and creates it again from the same config.
    const pid1 = await shimPid(d1);
    await xl('reboot', 'echo');
    const d2 = await until('echo restarted', 15_000, async () => {
      const id = await domidOf('echo');
      return id !== undefined && id !== d1 ? id : undefined;
    });
    await expectNoTrace(d1, pid1);

    // Console input reaches INT 16h; the guest echoes the line and powers off (on_poweroff=destroy).
    const child = spawn(process.execPath, [bin('xl'), 'console', 'echo'], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (b: Buffer) => (text += b.toString('latin1')));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    // Buffered in the pipe until xl has attached (it reads stdin only once connected).
    child.stdin.write('ok\r');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000))]);
    if (code === 'timeout') child.kill('SIGKILL');
    expect(code).toBe(0);
    expect(text).toMatch(/LINE=ok/);
    await expectNoTrace(d2);

    // shutdown -w on a fresh one waits until it is gone.
    await xl('create', join(guests, 'echo.cfg'));
    const d3 = await until('echo listed', 10_000, () => domidOf('echo'));
    await xl('shutdown', '-w', 'echo');
    await expectNoTrace(d3);

    // destroy of a running guest.
    await xl('create', join(guests, 'echo.cfg'));
    const d4 = await until('echo listed', 10_000, () => domidOf('echo'));
    const pid4 = await shimPid(d4);
    await xl('destroy', 'echo');
    await expectNoTrace(d4, pid4);
  }, 90_000);

  it('killing the shim of a guest with a connected vbd crashes the domain; on_crash=preserve keeps it, destroy then cleans up', async () => {
    const img = join(dir, 'crash.img');
    writeFileSync(img, '');
    truncateSync(img, 4 << 20);
    await xl('create', join(guests, 'echo.cfg'), 'name="crashy"', 'on_crash="preserve"', `disk=['${img},raw,xvda,rw']`);
    const d = await until('crashy listed', 10_000, () => domidOf('crashy'));
    expect(await tool('xenstore-read', `/local/domain/0/backend/vbd/${d}/51712/state`)).toBe('4\n');
    // The primary console's backend directory, as libxl writes it, connected to dom0's console backend.
    const cbe = `/local/domain/0/backend/console/${d}/0`;
    expect(await tool('xenstore-read', `/local/domain/${d}/console/backend`)).toBe(`${cbe}\n`);
    expect(await tool('xenstore-read', `${cbe}/frontend`)).toBe(`/local/domain/${d}/console\n`);
    expect(await tool('xenstore-read', `${cbe}/state`)).toBe('4\n');
    expect(await tool('xenstore-read', `${cbe}/tty`)).toBe(await tool('xenstore-read', `/local/domain/${d}/console/tty`));
    process.kill(await shimPid(d), 'SIGKILL');
    const info = await until('crash seen', 10_000, async () => (await domains()).find((x) => x.domain === d && x.flags & XEN_DOMINF.shutdown));
    expect((info.flags >>> 16) & 0xff).toBe(SHUTDOWN.crash);
    expect(await xl('list', 'crashy')).toMatch(/---sc-/);
    await until('on_crash applied', 5000, async () => (await xl('dmesg')).includes(`d${d} 'crashy' crash: on_crash=preserve`));
    await xl('destroy', 'crashy');
    await expectNoTrace(d);
  }, 60_000);

  it('the shim killed mid-I/O: on_crash=destroy cleans up its devices; xl destroy of a wedged guest', async () => {
    // A guest reading sector 1 with INT 13h AH=02h in a loop, so a request is always on its way.
    const reader = join(dir, 'reader.bin');
    writeFileSync(reader, Uint8Array.of(0xb8, 0x01, 0x02, 0xb9, 0x01, 0x00, 0xba, 0x80, 0x00, 0xbb, 0x00, 0x10, 0xcd, 0x13, 0xeb, 0xf0));
    const img = join(dir, 'busy.img');
    writeFileSync(img, '');
    truncateSync(img, 1 << 20);
    await xl('create', join(guests, 'hello.cfg'), 'name="crash2"', `kernel="${reader}"`, `disk=['${img},raw,xvda,rw']`);
    const d = await until('crash2 listed', 10_000, () => domidOf('crash2'));
    await until('crash2 reading', 10_000, async () => (await xl('list', 'crash2')).match(/^crash2 +\d+ +\d+ +\d+ +\S+ +(\d+\.\d)$/m)?.[1] !== '0.0');
    // Persistent grants were negotiated, so blkback holds mappings of the guest's pool pages when
    // the shim dies: teardown must release them (a leftover mapping would leave a zombie).
    expect(await tool('xenstore-read', `/local/domain/${d}/device/vbd/51712/feature-persistent`)).toBe('1\n');
    expect(await tool('xenstore-read', `/local/domain/0/backend/vbd/${d}/51712/feature-persistent`)).toBe('1\n');
    const pid = await shimPid(d);
    process.kill(pid, 'SIGKILL');
    await expectNoTrace(d, pid);
    expect(await xl('dmesg')).toMatch(new RegExp(`d${d} 'crash2' crash: on_crash=destroy`));

    // Wedged: a guest spinning forever (jmp $) whose kernel process is stopped, so nothing
    // answers control/shutdown; xl destroy still works.
    const spin = join(dir, 'spin.bin');
    writeFileSync(spin, Uint8Array.of(0xeb, 0xfe));
    copyFileSync(join(guests, 'hello.cfg'), join(dir, 'wedged.cfg'));
    await xl('create', join(dir, 'wedged.cfg'), 'name="wedged"', `kernel="${spin}"`);
    const w = await until('wedged listed', 10_000, () => domidOf('wedged'));
    const wp = await shimPid(w);
    process.kill(wp, 'SIGSTOP');
    await xl('shutdown', 'wedged');
    expect(await domidOf('wedged')).toBe(w);
    await xl('destroy', 'wedged');
    await expectNoTrace(w, wp);
  }, 60_000);

  it('HLT blocks the vCPU until the next event: the BIOS timer tick wakes it; an idle guest is blocked, not spinning', async () => {
    // sti; hlt; mov ah,0Eh; mov al,'W'; int 10h; APM connect + power off
    const woke = join(dir, 'hlt.bin');
    writeFileSync(woke, Uint8Array.of(0xfb, 0xf4, 0xb4, 0x0e, 0xb0, 0x57, 0xcd, 0x10, 0xb8, 0x01, 0x53, 0x31, 0xdb, 0xcd, 0x15, 0xb8, 0x07, 0x53, 0xbb, 0x01, 0x00, 0xb9, 0x03, 0x00, 0xcd, 0x15, 0xf4, 0xeb, 0xfd));
    expect(await xl('create', '-c', join(guests, 'hello.cfg'), 'name="hlt"', `kernel="${woke}"`)).toBe('W');
    // sti; hlt; jmp back: between ticks the vCPU is blocked.
    const idle = join(dir, 'idle.bin');
    writeFileSync(idle, Uint8Array.of(0xfb, 0xf4, 0xeb, 0xfd));
    await xl('create', join(guests, 'hello.cfg'), 'name="idle"', `kernel="${idle}"`);
    const d = await until('idle listed', 10_000, () => domidOf('idle'));
    await until('idle guest blocked', 10_000, async () => /^idle +\d+ +4 +1 +-b---- /m.test(await xl('list', 'idle')));
    const t = (await hc.call('domctl', 'getdomaininfo', { domain: d })).cpu_time;
    expect(t).toBeLessThan(2e9);
    await xl('destroy', 'idle');
    await expectNoTrace(d);
  }, 40_000);

  it('a create that fails, or whose xl dies midway, leaves no half-built domain', async () => {
    const before = (await domains()).map((d) => d.domain);
    const e = await xl('create', join(guests, 'echo.cfg'), `disk=['${join(dir, 'nope.img')},raw,xvda,rw']`).then(() => '', (x: { stderr: string }) => x.stderr);
    expect(e).toMatch(/disk 'xvda': file .*nope\.img not found/);

    // xl killed while dom0 builds the domain: the toolstack notices the closed socket and rolls back
    // at once. The disk is a directory, so blkback cannot open it and the shim would wait 15 s
    // for its vbd: the create is certainly still under way when xl dies.
    const child = spawn(process.execPath, [bin('xl'), 'create', join(guests, 'echo.cfg'), 'name="orphan"', `disk=['${dir},raw,xvda,rw']`], { env, stdio: 'ignore' });
    const d = await until('orphan domain being built', 20_000, async () => (await domains()).find((x) => !before.includes(x.domain))?.domain);
    await until('its vbd offered', 10_000, async () => (await tool('xenstore-ls', '/local/domain/0/backend/vbd')).includes(`${d} = `));
    child.kill('SIGKILL');
    const t0 = Date.now();
    await expectNoTrace(d);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await xl('list')).not.toMatch(/^orphan /m);
  }, 40_000);

  it('config errors name the file, line and key', async () => {
    const bad = join(dir, 'bad.cfg');
    writeFileSync(bad, 'name = "bad"\nmemory = "lots"\n');
    const e = await xl('create', bad).then(() => undefined, (x: { stderr: string }) => x.stderr);
    expect(e).toMatch(/bad\.cfg.*line 2.*memory/);
  });
});
