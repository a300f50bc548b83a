import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DOMID_SELF,
  EVTCHNSTAT,
  GNTMAP,
  GNTST,
  GrantFrame,
  Gfn,
  DomId,
  HypercallClient,
  SHUTDOWN,
  WireConnection,
  XEN_DOMINF,
  XenError,
} from '@xenlab/xen-public';
import { HypercallServer } from './hypercall-server.ts';
import { makeHost } from './test-helpers.ts';
import type { Hypervisor } from './hypervisor.ts';

let dir: string;
let hv: Hypervisor;
let server: HypercallServer;
let dom0Token: string;
const clients: HypercallClient[] = [];
const sock = () => join(dir, 'hv.sock');
const connect = async (token: string, owner = false) => {
  const c = await HypercallClient.connect(sock(), token, { owner, timeoutMs: 5000 });
  clients.push(c);
  return c;
};
const waitFor = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenlab-hc-'));
  ({ hv } = makeHost(1024));
  server = new HypercallServer(hv, { socketPath: sock(), machineMemoryPath: join(dir, 'mem') });
  dom0Token = server.issueToken(0);
  await server.listen();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('hypercall server', () => {
  it('refuses connections without a valid token', async () => {
    await expect(HypercallClient.connect(sock(), 'nope')).rejects.toMatchObject({ errno: 'EACCES' });
    // hypercalls before set-up are refused too
    const raw = await WireConnection.connect(sock());
    const r = await raw.request<{ ok: boolean; errno: string }>({ hypercall: 'sysctl', cmd: 'physinfo', arg: null });
    expect(r).toMatchObject({ ok: false, errno: 'EACCES' });
    raw.close();
  });

  it('dom0 builds a domain; the domU connection is bound to the domU and unprivileged', async () => {
    const d0 = await connect(dom0Token);
    expect(d0.info).toMatchObject({ domid: 0, privileged: true });
    const { domain, token } = await d0.call('domctl', 'createdomain', { max_vcpus: 2 });
    await d0.call('domctl', 'max_mem', { domain, max_memkb: 1024 });
    const info = await d0.call('domctl', 'getdomaininfo', { domain });
    expect(info.domain).toBe(domain);
    expect(info.flags & XEN_DOMINF.paused).toBeTruthy();
    expect(info.max_pages).toBe(256);

    const du = await connect(token, true);
    expect(du.info).toMatchObject({ domid: domain, privileged: false });
    const pop = await du.call('memory_op', 'populate_physmap', { domid: DOMID_SELF, extent_start: [0, 1, 2] });
    expect(pop.nr_done).toBe(3);
    expect(await d0.call('memory_op', 'current_reservation', { domid: domain })).toBe(3);
    // privileged operations are refused with Xen's errors
    await expect(du.call('domctl', 'getdomaininfo', { domain: 0 })).rejects.toMatchObject({ errno: 'EPERM' });
    await expect(du.call('domctl', 'createdomain', { max_vcpus: 1 })).rejects.toMatchObject({ errno: 'EPERM' });
    await expect(du.call('memory_op', 'populate_physmap', { domid: 0, extent_start: [99] })).rejects.toMatchObject({ errno: 'EPERM' });
    // a message field cannot make it someone else
    const st = await du.call('event_channel_op', 'alloc_unbound', { dom: DOMID_SELF, remote_dom: 0 });
    expect((await d0.call('event_channel_op', 'status', { dom: domain, port: st.port })).status).toBe(EVTCHNSTAT.unbound);
  });

  it('bad arguments and unknown calls get errnos, never a crash', async () => {
    const d0 = await connect(dom0Token);
    const call = (h: string, c: string, a: unknown) => (d0.call as (h: string, c: string, a: unknown) => Promise<unknown>)(h, c, a);
    await expect(call('no_such', 'x', null)).rejects.toMatchObject({ errno: 'ENOSYS' });
    await expect(call('memory_op', 'no_such', null)).rejects.toMatchObject({ errno: 'ENOSYS' });
    await expect(call('memory_op', 'populate_physmap', null)).rejects.toMatchObject({ errno: 'EFAULT' });
    await expect(call('memory_op', 'populate_physmap', { domid: 'x', extent_start: [] })).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(call('event_channel_op', 'send', { port: -1 })).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(call('domctl', 'createdomain', { max_vcpus: 1e9 })).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(call('domctl', 'pausedomain', { domain: 4242 })).rejects.toMatchObject({ errno: 'ESRCH' });
    await expect(call('grant_table_op', 'map_grant_ref', [{ flags: GNTMAP.host_map, ref: 5, dom: 4242 }])).resolves.toEqual([
      { status: GNTST.bad_domain, handle: 0xffffffff, dev_bus_addr: 0 },
    ]);
    await expect(call('domctl', 'scheduler_op', { domain: 0, sched_id: 5, cmd: 0, cap: 5000 })).rejects.toMatchObject({ errno: 'EINVAL' });
    expect(server.stats.internalErrors).toBe(0);
    // the server still works
    expect((await d0.call('sysctl', 'physinfo', null)).nr_cpus).toBe(1);
  });

  it("a domain's process dying crashes it and releases its grants and ports; a tool's only its own", async () => {
    const d0 = await connect(dom0Token);
    const { domain, token } = await d0.call('domctl', 'createdomain', { max_vcpus: 1 });
    await d0.call('domctl', 'max_mem', { domain, max_memkb: 64 });
    await d0.call('domctl', 'unpausedomain', { domain });
    const du = await connect(token, true);
    await du.call('memory_op', 'populate_physmap', { domid: DOMID_SELF, extent_start: [0] });
    // dom0 grants its page to the domU; the domU maps it
    await d0.call('memory_op', 'populate_physmap', { domid: DOMID_SELF, extent_start: [0] });
    const d0dom = hv.domains.get(0)!;
    new GrantFrame(hv.mem.buffer, hv.mem.addr(d0dom.gnttab.frames[0]!)).grant(8, DomId(domain), Gfn(0), false);
    const [m] = await du.call('grant_table_op', 'map_grant_ref', [{ flags: GNTMAP.host_map, ref: 8, dom: 0 }]);
    expect(m!.status).toBe(GNTST.okay);
    const p0 = (await d0.call('event_channel_op', 'alloc_unbound', { dom: DOMID_SELF, remote_dom: domain })).port;
    await du.call('event_channel_op', 'bind_interdomain', { remote_dom: 0, remote_port: p0 });
    expect((await d0.call('event_channel_op', 'status', { dom: DOMID_SELF, port: p0 })).status).toBe(EVTCHNSTAT.interdomain);

    clients.splice(clients.indexOf(du), 1);
    du.close(); // "kill" the domain's process
    await waitFor(() => hv.domains.get(domain)!.isShuttingDown);
    const info = await d0.call('domctl', 'getdomaininfo', { domain });
    expect(info.flags & XEN_DOMINF.shutdown).toBeTruthy();
    expect((info.flags >> 16) & 0xff).toBe(SHUTDOWN.crash);
    expect((await d0.call('event_channel_op', 'status', { dom: DOMID_SELF, port: p0 })).status).toBe(EVTCHNSTAT.unbound);
    expect(new GrantFrame(hv.mem.buffer, hv.mem.addr(d0dom.gnttab.frames[0]!)).endAccess(8)).toBe(true);
    // the toolstack destroys it; all its frames return
    const free = hv.frames.freeFrames;
    await d0.call('domctl', 'destroydomain', { domain });
    expect(hv.domains.has(domain)).toBe(false);
    expect(hv.frames.freeFrames).toBeGreaterThan(free);
    // dom0 is untouched
    expect((await d0.call('domctl', 'getdomaininfo', { domain: 0 })).flags & XEN_DOMINF.shutdown).toBe(0);

    // a non-owner (tool) connection closing releases only its own ports
    const tool = await connect(dom0Token);
    const tp = (await tool.call('event_channel_op', 'bind_ipi', { vcpu: 0 })).port;
    const keep = (await d0.call('event_channel_op', 'bind_ipi', { vcpu: 0 })).port;
    tool.close();
    await waitFor(() => d0dom.evtchn.get(tp) === undefined);
    expect(d0dom.evtchn.get(keep)).toBeDefined();
    expect(d0dom.isShuttingDown).toBe(false);
  });

  it('only one owner per domain', async () => {
    const d0 = await connect(dom0Token);
    const { token } = await d0.call('domctl', 'createdomain', { max_vcpus: 1 });
    await connect(token, true);
    await expect(HypercallClient.connect(sock(), token, { owner: true })).rejects.toBeInstanceOf(XenError);
  });
});

describe('hypercall arguments through the wire', () => {
  it('optional fields: createdomain with every field, populate with an order, credit weight/cap', async () => {
    const d0 = await connect(dom0Token);
    const { domain } = await d0.call('domctl', 'createdomain', {
      domain: 77, ssidref: 0, flags: 0, max_vcpus: 2, max_evtchn_port: 63, max_grant_frames: 4, max_maptrack_frames: 8, handle: 'ab'.repeat(16),
    });
    expect(domain).toBe(77);
    expect((await d0.call('domctl', 'getdomaininfo', { domain })).handle).toBe('ab'.repeat(16));
    expect((await d0.call('grant_table_op', 'query_size', { dom: domain })).max_nr_frames).toBe(4);
    await d0.call('domctl', 'max_mem', { domain, max_memkb: 64 });
    expect((await d0.call('memory_op', 'populate_physmap', { domid: domain, extent_start: [0, 4, 8], extent_order: 2, mem_flags: 0 })).nr_done).toBe(3);
    expect(await d0.call('memory_op', 'current_reservation', { domid: domain })).toBe(12);
    const sched = { domain, sched_id: 5, cmd: 0 };
    expect(await d0.call('domctl', 'scheduler_op', { ...sched, weight: 512, cap: 50 })).toEqual({ weight: 512, cap: 50 });
    expect(await d0.call('domctl', 'scheduler_op', { ...sched, weight: 0, cap: 0xffff })).toEqual({ weight: 512, cap: 50 });
    await expect(d0.call('domctl', 'scheduler_op', { ...sched, weight: 70000 })).rejects.toMatchObject({ errno: 'EINVAL' });
    // this test host runs no scheduler
    await expect(d0.call('sysctl', 'scheduler_op', { cpupool_id: 0, sched_id: 5, cmd: 1 })).rejects.toMatchObject({ errno: 'ENOSYS' });
  });
});

describe('per-connection doorbells', () => {
  it("rings only the doorbell of the connection that bound a port, like Xen's per-fd evtchn delivery", async () => {
    const dom0 = hv.domains.get(0)!;
    const domainBell = hv.mem.addr(dom0.evtchnPageMfn);
    const a = await connect(dom0Token);
    const b = await connect(dom0Token);
    // Each non-owner connection has its own 64-byte doorbell, not the domain's.
    expect(new Set([a.info.doorbell_addr, b.info.doorbell_addr, domainBell]).size).toBe(3);
    expect(a.info.doorbell_addr % 64).toBe(0);

    const rung: Array<{ port: number | undefined; bell: number }> = [];
    hv.onEventPending = (d, _vcpu, port) => rung.push({ port, bell: port === undefined ? -1 : hv.evtchn.bellOf(d, port) });
    const { port: pa } = await a.call('event_channel_op', 'bind_ipi', { vcpu: 0 });
    const { port: pb } = await b.call('event_channel_op', 'bind_ipi', { vcpu: 0 });
    await a.call('event_channel_op', 'send', { port: pa });
    await b.call('event_channel_op', 'send', { port: pb });
    expect(rung.filter((r) => r.port === pa).map((r) => r.bell)).toEqual([a.info.doorbell_addr]);
    expect(rung.filter((r) => r.port === pb).map((r) => r.bell)).toEqual([b.info.doorbell_addr]);

    // A peer's fast-path descriptor names the binder's doorbell too.
    const { domain, token } = await a.call('domctl', 'createdomain', { max_vcpus: 1 });
    const { port: unbound } = await a.call('event_channel_op', 'alloc_unbound', { dom: DOMID_SELF, remote_dom: domain });
    const guest = await connect(token, true);
    const { notify } = await guest.call('event_channel_op', 'bind_interdomain', { remote_dom: 0, remote_port: unbound });
    expect(notify.doorbell_addr).toBe(a.info.doorbell_addr);
    // The guest's own process is its domain's owner: it keeps the domain's doorbell.
    expect(guest.info.doorbell_addr).toBe(hv.mem.addr(hv.domains.get(domain)!.evtchnPageMfn));

    // A closed connection's doorbell goes back to the pool and is handed out again.
    const freed = b.info.doorbell_addr;
    b.close();
    await waitFor(() => !hv.domains.get(0)!.evtchn.get(pb));
    const c = await connect(dom0Token);
    expect(c.info.doorbell_addr).toBe(freed);
  });
});
