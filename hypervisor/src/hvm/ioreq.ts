/**
 * I/O requests to a domain's device model (xen/arch/x86/hvm/ioreq.c, the synchronous protocol of
 * hvm/ioreq.h; fact sheet §9.1). The toolstack gives an HVM domain an ioreq page
 * (HVM_PARAM_IOREQ_PFN, a GFN of the domain) and names the device model's domain
 * (HVM_PARAM_DM_DOMAIN, default 0). The hypervisor then offers one event channel per vCPU to the
 * device model (its number is the slot's `vp_eport`; the device model binds to it).
 *
 *   vCPU exits on port I/O ──> Xen fills slot[vcpu], barrier, state=READY, sends on vp_eport
 *                              vCPU blocks; the pCPU runs someone else
 *   device model: reads the slot (may set INPROCESS), does the I/O, writes `data` for reads,
 *                 state=IORESP_READY, sends on its port ──> reaches Xen, not the guest
 *   Xen: takes `data`, state=NONE, vCPU runnable; its CPU completes the IN with that value
 *
 * Without a device model every port reads all-ones and writes are dropped.
 */
import {
  XenError,
  Gfn,
  HVM_PARAM,
  IOREQ_DATA_IS_PTR,
  IOREQ_DF_BIT,
  IOREQ_DIR_BIT,
  IOREQ_STATE,
  IOREQ_STATE_MASK,
  IOREQ_TYPE,
  DomId,
  ioreq,
  type Mfn,
} from '@xenlab/xen-public';
import type { Domain, Vcpu } from '../domain.ts';
import type { Hypervisor } from '../hypervisor.ts';
import type { IoExit } from '../sched/pcpu.ts';

interface Server {
  dm: DomId;
  pageMfn: Mfn;
  /** vp_eport per vCPU (Xen-consumed ports of the HVM domain). */
  ports: number[];
  /** The I/O each vCPU is waiting on. */
  inflight: (IoExit | undefined)[];
  /** Claimed ranges (inclusive), by kind; none claimed of a kind = the server takes all of it. */
  ranges: { port: [number, number][]; mmio: [number, number][] };
}

const F = ioreq.fields;

/** What the vCPU's CPU needs to finish the access: the value of a read, nothing for a write. */
function completion(io: IoExit, value: number): { value?: number; mmio?: boolean } {
  if (io.mmio) return io.dir === 'in' ? { value, mmio: true } : { mmio: true };
  return io.dir === 'in' && !io.string ? { value } : {};
}

/** Does the server want this access? (Everything of a kind until it claims a range of that kind.) */
function claims(s: Server, io: IoExit): boolean {
  const list = io.mmio ? s.ranges.mmio : s.ranges.port;
  if (list.length === 0) return true;
  return list.some(([lo, hi]) => io.port >= lo && io.port <= hi); // for MMIO `port` is the address
}

export class IoreqServers {
  private readonly servers = new Map<Domain, Server>();
  readonly stats = { sent: 0, completed: 0, unclaimed: 0, badResponses: 0 };

  constructor(private readonly hv: Hypervisor) {}

  has(d: Domain): boolean {
    return this.servers.has(d);
  }

  /** Called when HVM params change: (re)creates the server once the ioreq page is known. */
  configure(d: Domain): void {
    const gfn = d.hvmParams.get(HVM_PARAM.IOREQ_PFN);
    if (gfn === undefined || this.servers.has(d)) return;
    const mfn = d.p2m.lookup(Gfn(gfn));
    if (mfn === undefined) return;
    const dm = DomId(d.hvmParams.get(HVM_PARAM.DM_DOMAIN) ?? 0);
    const ports = d.vcpus.map((v) => this.hv.evtchn.allocXenPort(d, dm, v.id));
    const dv = this.view(mfn);
    ports.forEach((p, i) => dv.setUint32(i * ioreq.size + F.vp_eport.offset, p, true));
    this.servers.set(d, { dm, pageMfn: mfn, ports, inflight: [], ranges: { port: [], mmio: [] } });
    this.hv.log(`d${d.domid}: ioreq server in d${dm}, page gfn ${gfn.toString(16)}, ports ${ports.join(',')}`);
  }

  private view(mfn: Mfn): DataView {
    return new DataView(this.hv.mem.buffer, this.hv.mem.addr(mfn), 4096);
  }

  /** A vCPU exited on I/O: hand it to the device model (or answer all-ones if there is none). */
  send(v: Vcpu, io: IoExit): void {
    if (!io.mmio && !io.string && this.hv.platform.handles(v.domain, io.port)) {
      const value = this.hv.platform.io(v, io);
      v.ioCompletion = value === undefined ? {} : { value };
      return;
    }
    const s = this.servers.get(v.domain);
    if (!s || !claims(s, io)) {
      this.stats.unclaimed++;
      v.ioCompletion = completion(io, io.size === 1 ? 0xff : 0xffff);
      return;
    }
    const dv = this.view(s.pageMfn);
    const base = v.id * ioreq.size;
    const u8 = new Uint8Array(this.hv.mem.buffer, this.hv.mem.addr(s.pageMfn), 4096);
    dv.setBigUint64(base + F.addr.offset, BigInt(io.port), true);
    dv.setBigUint64(base + F.data.offset, BigInt(io.string ? io.addr : io.dir === 'out' ? io.value : 0), true);
    dv.setUint32(base + F.count.offset, io.string ? io.count : 1, true);
    dv.setUint32(base + F.size.offset, io.size, true);
    dv.setUint32(base + F.vp_eport.offset, s.ports[v.id]!, true);
    dv.setUint8(base + F.type.offset, io.mmio ? IOREQ_TYPE.COPY : IOREQ_TYPE.PIO);
    const bits = (io.dir === 'in' ? IOREQ_DIR_BIT : 0) | (io.string ? IOREQ_DATA_IS_PTR : 0) | (io.step < 0 ? IOREQ_DF_BIT : 0);
    // The state is written last, with a sequentially consistent store: the barrier the protocol asks for.
    Atomics.store(u8, base + F.state_bits.offset, bits | IOREQ_STATE.READY);
    s.inflight[v.id] = io;
    v.ioreqPending = true;
    this.hv.vcpuChanged(v);
    this.stats.sent++;
    this.hv.evtchn.sendFromXen(v.domain, s.ports[v.id]!);
  }

  /** The device model signalled one of the Xen-consumed ports of `d`. */
  xenEvent(d: Domain, port: number): void {
    const s = this.servers.get(d);
    if (!s) return;
    const id = s.ports.indexOf(port);
    const v = d.vcpu(id);
    const io = s.inflight[id];
    if (!v || !io || !v.ioreqPending) return;
    const u8 = new Uint8Array(this.hv.mem.buffer, this.hv.mem.addr(s.pageMfn), 4096);
    const base = id * ioreq.size;
    const bits = Atomics.load(u8, base + F.state_bits.offset);
    if ((bits & IOREQ_STATE_MASK) !== IOREQ_STATE.IORESP_READY) {
      this.stats.badResponses++;
      return; // a kick before the answer: keep waiting (the DM must set IORESP_READY first)
    }
    const data = Number(this.view(s.pageMfn).getBigUint64(base + F.data.offset, true) & 0xffffn);
    Atomics.store(u8, base + F.state_bits.offset, bits & ~IOREQ_STATE_MASK);
    s.inflight[id] = undefined;
    v.ioCompletion = completion(io, io.size === 1 ? data & 0xff : data);
    v.ioreqPending = false;
    this.stats.completed++;
    this.hv.vcpuChanged(v);
  }

  /** XEN_DMOP_map_io_range_to_ioreq_server: the device model claims `start`..`end` (inclusive). */
  mapRange(d: Domain, kind: 'port' | 'mmio', start: number, end: number): void {
    const s = this.servers.get(d);
    if (!s) throw new XenError('ENOENT', `d${d.domid} has no ioreq server (HVM_PARAM_IOREQ_PFN is not set)`);
    const list = s.ranges[kind];
    if (list.some(([a, b]) => start <= b && a <= end)) throw new XenError('EEXIST', `${kind} range ${start.toString(16)}-${end.toString(16)} overlaps one already claimed`);
    if (list.length >= 256) throw new XenError('ENOSPC', 'too many io ranges');
    list.push([start, end]);
  }

  /**
   * The device model closed its end of one of `d`'s ioreq channels (or its process died): a vCPU
   * waiting on it would never resume, so the domain crashes — only that domain (issue 7). A domain
   * already shutting down (powered off, being destroyed) is left as it is.
   */
  deviceModelGone(d: Domain): void {
    if (!this.servers.has(d) || d.dying !== 'alive' || d.isShuttingDown) return;
    this.hv.crashDomain(d, 'its device model went away');
  }

  destroy(d: Domain): void {
    this.servers.delete(d);
  }
}
