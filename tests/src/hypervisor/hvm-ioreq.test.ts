/**
 * End to end across processes: a real host runs an HVM guest on a pCPU thread; this test process
 * plays its device model in dom0 — it maps the guest's ioreq page through machine memory, binds
 * the per-vCPU event channel the hypervisor offered, answers the guest's port reads, and drives
 * an ISA interrupt line with dm_op. Bounded waits; the host is always stopped.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HVM_PARAM,
  HypercallClient,
  IOREQ_DIR_BIT,
  IOREQ_STATE,
  IOREQ_STATE_MASK,
  SharedInfoPage,
  XEN_DOMCTL_CDF,
  hostLayout,
  ioreq,
} from '@xenlab/xen-public';
import { SharedMemory } from '@xenlab/ring-buffers';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));
let dir: string;
let env: NodeJS.ProcessEnv;
let hc: HypercallClient;
const xenlab = async (...args: string[]) => (await run(process.execPath, [join(root, 'node_modules/.bin/xenlab'), ...args], { env, timeout: 30_000 })).stdout;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenlab-e2e-ioreq-'));
  env = { ...process.env, XENLAB_RUN_DIR: dir };
  await xenlab('start', '--pcpus', '2', '--memory', '32', '--dom0-memory', '8');
  const L = hostLayout(dir);
  hc = await HypercallClient.connect(L.hypervisorSocket, readFileSync(L.dom0Token, 'utf8').trim());
}, 60_000);

afterAll(async () => {
  hc?.close();
  try {
    await xenlab('stop');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('dom0 applies on_crash=destroy (the default)', () => {
  it('a guest that crashes is destroyed by dom0 and its frames return to the pool', async () => {
    const free0 = (await hc.call('sysctl', 'physinfo', null)).free_pages;
    const { domain } = await hc.call('domctl', 'createdomain', { max_vcpus: 1 });
    await hc.call('domctl', 'max_mem', { domain, max_memkb: 64 });
    await hc.call('memory_op', 'populate_physmap', { domid: domain, extent_start: [0, 1, 2, 3] });
    const { mfns } = await hc.call('domctl', 'getmemlist', { domain, max_pfns: 2 });
    const mm = SharedMemory.open(hostLayout(dir).machineMemory);
    new Uint8Array(mm.buffer, mfns[1]! * 4096, 4096).set([0xea, 0x00, 0x00, 0x00, 0xf0]); // jmp far into no RAM
    mm.close();
    await hc.call('domctl', 'setvcpucontext', { domain, vcpu: 0, ctx: { cs: 0, ip: 0x1000 } });
    await hc.call('domctl', 'unpausedomain', { domain });
    const deadline = Date.now() + 15_000;
    for (;;) {
      const list = await hc.call('sysctl', 'getdomaininfolist', { first_domain: domain, max_domains: 1 });
      if (!list.some((d) => d.domain === domain)) break;
      if (Date.now() > deadline) throw new Error('dom0 did not destroy the crashed domain within 15 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const dmesg = (await hc.call('sysctl', 'readconsole', {})).text;
    expect(dmesg).toMatch(new RegExp(`d${domain}: shutdown \\(crash\\)`));
    expect(dmesg).toMatch(new RegExp(`dom0: d${domain} crash: destroyed`));
    expect((await hc.call('sysctl', 'physinfo', null)).free_pages).toBe(free0);
  }, 30_000);
});

describe('an HVM guest and its device model in another process', () => {
  it('port reads go out as ioreqs and come back with the device model’s answers', async () => {
    const IOREQ_GFN = 0x10;
    const { domain } = await hc.call('domctl', 'createdomain', { max_vcpus: 1, flags: XEN_DOMCTL_CDF.hvm });
    await hc.call('domctl', 'max_mem', { domain, max_memkb: 64 });
    await hc.call('memory_op', 'populate_physmap', { domid: domain, extent_start: [0, 1, IOREQ_GFN] });
    const { mfns } = await hc.call('domctl', 'getmemlist', { domain, max_pfns: 3 });
    const mm = SharedMemory.open(hostLayout(dir).machineMemory);
    // in al,71h; out 0E9h,al; in al,71h; out 0E9h,al; mov al,0Ah; out 0E9h,al; hlt
    new Uint8Array(mm.buffer, mfns[1]! * 4096, 4096).set([0xe4, 0x71, 0xe6, 0xe9, 0xe4, 0x71, 0xe6, 0xe9, 0xb0, 0x0a, 0xe6, 0xe9, 0xf4]);
    await hc.call('hvm_op', 'set_param', { domid: domain, index: HVM_PARAM.DM_DOMAIN, value: 0 });
    await hc.call('hvm_op', 'set_param', { domid: domain, index: HVM_PARAM.IOREQ_PFN, value: IOREQ_GFN });
    const page = new DataView(mm.buffer, mfns[2]! * 4096, 4096);
    const u8 = new Uint8Array(mm.buffer, mfns[2]! * 4096, 4096);
    const F = ioreq.fields;
    const vpEport = page.getUint32(F.vp_eport.offset, true);
    const { local_port } = await hc.call('event_channel_op', 'bind_interdomain', { remote_dom: domain, remote_port: vpEport });
    const si = new SharedInfoPage(mm.buffer, hc.info.shared_info_frame * 4096);
    si.consume([local_port]);

    await hc.call('domctl', 'setvcpucontext', { domain, vcpu: 0, ctx: { cs: 0, ip: 0x1000, ds: 0 } });
    await hc.call('domctl', 'unpausedomain', { domain });
    const answers = [0x4f, 0x4b]; // 'O', 'K'
    const seen: number[] = [];
    const deadline = Date.now() + 15_000;
    let dmesg = '';
    while (!dmesg.includes(`(d${domain}) OK`)) {
      if (Date.now() > deadline) throw new Error(`no OK within 15 s; served ${seen.length}; dmesg:\n${dmesg}`);
      // dom0 is several processes: consume only our own port (dom0's reaper consumes its own).
      if (si.consume([local_port]).length) {
        const bits = Atomics.load(u8, F.state_bits.offset);
        if ((bits & IOREQ_STATE_MASK) === IOREQ_STATE.READY) {
          Atomics.store(u8, F.state_bits.offset, (bits & ~IOREQ_STATE_MASK) | IOREQ_STATE.INPROCESS);
          seen.push(Number(page.getBigUint64(F.addr.offset, true)));
          expect(bits & IOREQ_DIR_BIT).toBeTruthy();
          page.setBigUint64(F.data.offset, BigInt(answers[seen.length - 1] ?? 0x3f), true);
          Atomics.store(u8, F.state_bits.offset, (bits & ~IOREQ_STATE_MASK) | IOREQ_STATE.IORESP_READY);
          await hc.call('event_channel_op', 'send', { port: local_port });
        }
      }
      await new Promise((r) => setTimeout(r, 2));
      dmesg = (await hc.call('sysctl', 'readconsole', {})).text;
    }
    expect(seen).toEqual([0x71, 0x71]);
    // the device model may raise ISA lines of its guest; others may not
    await hc.call('dm_op', 'set_isa_irq_level', { domid: domain, isa_irq: 14, level: 1 });
    await expect(hc.call('dm_op', 'set_isa_irq_level', { domid: domain, isa_irq: 16, level: 1 })).rejects.toMatchObject({ errno: 'EINVAL' });
    await hc.call('domctl', 'destroydomain', { domain });
    mm.close();
  }, 40_000);
});
