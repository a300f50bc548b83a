/**
 * End to end: boot a real host (hypervisor -> dom0 -> xenstored) in a temporary run directory,
 * use xl against it, create and destroy domains through the privileged hypercall interface, kill
 * a domain's process and see the hypervisor clean up. Every wait is bounded; the host and the
 * temporary directory are always torn down.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOMID_SELF, EVTCHNSTAT, HypercallClient, SHUTDOWN, XEN_DOMINF, hostLayout } from '@xenlab/xen-public';
import { SharedMemory } from '@xenlab/ring-buffers';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = (n: string) => join(root, 'node_modules/.bin', n);
let dir: string;
let env: NodeJS.ProcessEnv;
let hc: HypercallClient;
const children: ChildProcess[] = [];

const tool = async (name: string, ...args: string[]) => (await run(process.execPath, [bin(name), ...args], { env, timeout: 30_000 })).stdout;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenlab-e2e-'));
  // Keep crashed domains for inspection (xl's default would destroy them; see hvm-ioreq.test.ts).
  env = { ...process.env, XENLAB_RUN_DIR: dir, XENLAB_ON_CRASH: 'preserve' };
  await tool('xenlab', 'start', '--pcpus', '2', '--memory', '64', '--dom0-memory', '16');
  const L = hostLayout(dir);
  hc = await HypercallClient.connect(L.hypervisorSocket, readFileSync(L.dom0Token, 'utf8').trim());
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  hc?.close();
  try {
    await tool('xenlab', 'stop');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('a xenlab host', () => {
  it('boots and lists Domain-0 in xl layout', async () => {
    const out = await tool('xl', 'list');
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe('Name                                        ID   Mem VCPUs\tState\tTime(s)');
    expect(lines[1]).toMatch(/^Domain-0 {32} {5}0 {4}16 {5}2 {5}r----- +\d+\.\d$/);
    expect(await tool('xenlab', 'status')).toMatch(/hypervisor {2}pid \d+, 2 pCPUs, 64 MiB/);
    expect(await tool('xl', 'dmesg')).toMatch(/dom0: xenstored on /);
  });

  it('creates, pauses and destroys domains through the privileged interface', async () => {
    const { domain } = await hc.call('domctl', 'createdomain', { max_vcpus: 1 });
    await hc.call('domctl', 'max_mem', { domain, max_memkb: 4096 });
    expect(await tool('xl', 'list', String(domain))).toMatch(new RegExp(`^\\(null\\) +${domain} +0 +1 +--p--- +0\\.0$`, 'm'));
    await tool('xl', 'unpause', String(domain));
    await tool('xl', 'sched-credit', '-d', String(domain), '-w', '512', '-c', '50');
    expect(await tool('xl', 'sched-credit', '-d', String(domain))).toMatch(new RegExp(`\\(null\\) +${domain} +512 +50$`, 'm'));
    await tool('xl', 'vcpu-pin', String(domain), '0', '1');
    expect(await tool('xl', 'vcpu-list', String(domain))).toMatch(/ 1 \/ all$/m);
    const free = (await hc.call('sysctl', 'physinfo', null)).free_pages;
    await hc.call('domctl', 'destroydomain', { domain });
    expect((await hc.call('sysctl', 'physinfo', null)).free_pages).toBeGreaterThan(free);
    expect(await tool('xl', 'list')).not.toMatch(new RegExp(`^\\S+ +${domain} `, 'm'));
  });

  it("cleans up after a domain's process is killed; other domains carry on", async () => {
    const { domain, token } = await hc.call('domctl', 'createdomain', { max_vcpus: 1 });
    await hc.call('domctl', 'max_mem', { domain, max_memkb: 1024 });
    await hc.call('domctl', 'unpausedomain', { domain });
    const { port } = await hc.call('event_channel_op', 'alloc_unbound', { dom: DOMID_SELF, remote_dom: domain });
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/domu-process.ts', import.meta.url)), hostLayout(dir).hypervisorSocket, token, String(port)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('domU process did not get ready within 20 s')), 20_000);
      child.stdout!.on('data', (b: Buffer) => {
        if (b.toString().startsWith('ready')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.once('exit', (c) => reject(new Error(`domU process exited early (${c})`)));
    });
    expect((await hc.call('event_channel_op', 'status', { dom: DOMID_SELF, port })).status).toBe(EVTCHNSTAT.interdomain);
    expect(await hc.call('memory_op', 'current_reservation', { domid: domain })).toBe(2);

    child.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    let info = await hc.call('domctl', 'getdomaininfo', { domain });
    while (!(info.flags & XEN_DOMINF.shutdown)) {
      if (Date.now() > deadline) throw new Error('the hypervisor did not notice the dead process within 10 s');
      await new Promise((r) => setTimeout(r, 50));
      info = await hc.call('domctl', 'getdomaininfo', { domain });
    }
    expect((info.flags >> 16) & 0xff).toBe(SHUTDOWN.crash);
    expect(await tool('xl', 'list', String(domain))).toMatch(/---sc-/);
    expect((await hc.call('event_channel_op', 'status', { dom: DOMID_SELF, port })).status).toBe(EVTCHNSTAT.unbound);
    expect(await tool('xl', 'dmesg')).toMatch(new RegExp(`d${domain}: shutdown \\(crash\\)`));
    await hc.call('domctl', 'destroydomain', { domain });
    const d0 = await hc.call('domctl', 'getdomaininfo', { domain: 0 });
    expect(d0.domain).toBe(0);
    expect(d0.flags & XEN_DOMINF.shutdown).toBe(0);
  }, 40_000);

  it('builds a domain that runs x86 code on a pCPU; a wild guest crashes only itself', async () => {
    const L = hostLayout(dir);
    const mm = SharedMemory.open(L.machineMemory);
    const build = async (code: number[]) => {
      const { domain } = await hc.call('domctl', 'createdomain', { max_vcpus: 1 });
      await hc.call('domctl', 'max_mem', { domain, max_memkb: 64 });
      await hc.call('memory_op', 'populate_physmap', { domid: domain, extent_start: [0, 1] });
      // The domain builder writes the image through machine memory, as libxc does via privcmd.
      const { mfns } = await hc.call('domctl', 'getmemlist', { domain, max_pfns: 2 });
      new Uint8Array(mm.buffer, mfns[1]! * 4096, 4096).set(code);
      await hc.call('domctl', 'setvcpucontext', { domain, vcpu: 0, ctx: { cs: 0, ip: 0x1000, ds: 0, ss: 0, sp: 0xfffe } });
      await hc.call('domctl', 'unpausedomain', { domain });
      return domain;
    };
    const text = [...new TextEncoder().encode('hello from x86\n')];
    const at = 0x1000 + 12;
    const hello = await build([0xbe, at & 0xff, at >> 8, 0xb9, text.length, 0, 0xba, 0xe9, 0x00, 0xf3, 0x6e, 0xf4, ...text]);
    const wild = await build([0xea, 0x00, 0x00, 0x00, 0xf0]);
    const deadline = Date.now() + 10_000;
    let dmesg = '';
    while (!(dmesg.includes(`(d${hello}) hello from x86`) && dmesg.includes(`d${wild}: shutdown (crash)`))) {
      if (Date.now() > deadline) throw new Error(`guests did not run within 10 s; dmesg:\n${dmesg}`);
      await new Promise((r) => setTimeout(r, 50));
      dmesg = (await hc.call('sysctl', 'readconsole', {})).text;
    }
    const list = await tool('xl', 'list');
    expect(list).toMatch(new RegExp(`^\\(null\\) +${hello} +0 +1 +-b---- `, 'm'));
    expect(list).toMatch(new RegExp(`^\\(null\\) +${wild} +0 +1 +---sc- `, 'm'));
    expect((await hc.call('domctl', 'getvcpucontext', { domain: hello, vcpu: 0 })).halted).toBe(true);
    for (const domain of [hello, wild]) await hc.call('domctl', 'destroydomain', { domain });
    mm.close();
  }, 30_000);

  it('refuses bad hypercalls with Xen errors and keeps serving', async () => {
    await expect(hc.call('domctl', 'destroydomain', { domain: 4000 })).rejects.toMatchObject({ errno: 'ESRCH' });
    await expect(hc.call('event_channel_op', 'bind_interdomain', { remote_dom: 0, remote_port: 99999 })).rejects.toMatchObject({ errno: 'EINVAL' });
    expect((await hc.call('sysctl', 'physinfo', null)).nr_cpus).toBe(2);
  });
});
