/**
 * THE dispatch table: every hypercall and sub-op a process may make, named as in Xen's public
 * headers (xen/include/public/*.h), each a handler from (caller, untrusted argument) to result.
 * TypeScript checks it covers every entry of `HypercallTable` in @xenlab/xen-public, so this
 * table answers "what can a domain ask the hypervisor to do?".
 */
import {
  DOMID_SELF,
  GNTST,
  Gfn,
  TRAP_SLOT_MAX_VCPUS,
  HVM_NR_PARAMS,
  HVM_PARAM,
  RUNSTATE,
  XEN_SCHEDULER,
  XEN_SYSCTL_CSCHED,
  XEN_SYSCTL_PHYSCAP,
  XEN_SYSCTL_SCHEDOP,
  XEN_DOMCTL_SCHEDOP,
  XEN_VCPUAFFINITY,
  XENMEM_resource,
  XenError,
  type HcRet,
  type HypercallNameT,
  type HypercallTable,
  type Mfn,
  type SubOp,
} from '@xenlab/xen-public';
import { arr, int, intArr, obj, optInt, str, u16, u32 } from './args.ts';
import type { Domain } from './domain.ts';
import type { Hypervisor } from './hypervisor.ts';
import { decreaseReservation, populatePhysmap } from './mm/memory.ts';
import type { CreditScheduler } from './sched/credit.ts';
import type { X86RunnerBase } from './x86-runner.ts';

/** What one connection created, released when it closes (like closing gntdev / evtchn fds). */
export interface ConnResources {
  handles: Set<number>;
  ports: Set<number>;
  /** Frames mapped with acquire_resource (each holds a frame reference). */
  foreign: Mfn[];
  /**
   * Byte address of this connection's own doorbell, for connections other than the domain's
   * owner: ports it binds ring this one (see EvtchnTable.bells). Absent: the domain's doorbell.
   */
  bell?: number;
}

export interface CallContext {
  hv: Hypervisor;
  caller: Domain;
  /** The vCPU the call is made on; a process's calls count as vCPU 0. */
  vcpu: number;
  conn: ConnResources;
  /** Issues the set-up credential for a domain's processes. */
  issueToken(domid: number): string;
  /** The credit scheduler, when the host runs one (sched parameters, idle times). */
  credit?: CreditScheduler;
  /** The x86 CPU that runs built domains' vCPUs, when the host has one. */
  x86?: X86RunnerBase;
}

const CONTEXT_REGS = ['cs', 'ip', 'ss', 'sp', 'ds', 'es', 'flags', 'ax', 'bx', 'cx', 'dx', 'si', 'di', 'bp'] as const;

/** A handler answers at once, or (a counter mark waiting for running slices to end) with a promise. */
type Handler<H extends HypercallNameT, C extends SubOp<H>> = (ctx: CallContext, arg: unknown) => HcRet<H, C> | Promise<HcRet<H, C>>;
export type DispatchTable = { [H in HypercallNameT]: { [C in SubOp<H>]: Handler<H, C> } };

const priv = (ctx: CallContext): void => ctx.hv.requirePrivileged(ctx.caller);
const target = (ctx: CallContext, domid: unknown): Domain => ctx.hv.lookupDomain(ctx.caller, u16(domid, 'domid'));
/** domctl/sysctl target: privileged caller, live domain. */
function ctlDomain(ctx: CallContext, domid: unknown): Domain {
  priv(ctx);
  const d = ctx.hv.domains.get(u16(domid, 'domain'));
  if (!d || d.dying !== 'alive') throw new XenError('ESRCH', `no domain ${String(domid)}`);
  return d;
}
function vcpuOf(d: Domain, id: unknown): Domain['vcpus'][number] {
  const n = u32(id, 'vcpu');
  const v = d.vcpu(n);
  if (!v) throw new XenError(n >= d.maxVcpus ? 'EINVAL' : 'ENOENT', `d${d.domid} has no vcpu ${n}`);
  return v;
}
function cpumap(ctx: CallContext, x: unknown, what: string): number[] {
  const cpus = intArr(x, what, 4096);
  for (const c of cpus) if (c >= ctx.hv.nrPcpus) throw new XenError('EINVAL', `${what}: no pCPU ${c}`);
  return [...new Set(cpus)].sort((a, b) => a - b);
}
const allCpus = (ctx: CallContext): number[] => Array.from({ length: ctx.hv.nrPcpus }, (_, i) => i);

export const hypercalls: DispatchTable = {
  set_trap_table: {
    set_trap_table: (ctx, a) => {
      const vectors = arr(a, 'trap table', 256).map((e, i) => int(obj(e, `trap_info[${i}]`).vector, 'vector', 0, 255));
      ctx.caller.trapVectors = [...new Set(vectors)].sort((x, y) => x - y);
      return 0;
    },
    xenlab_trap_slot: (ctx, a) => {
      const gfn = int(obj(a).gfn, 'gfn', -1, 0xfffff);
      if (gfn === -1) {
        ctx.caller.trapSlotAddr = undefined;
        return 0;
      }
      // A frame of the caller's own RAM (validated here, once: workers only ever use this address).
      const mfn = ctx.caller.p2m.lookup(Gfn(gfn));
      if (mfn === undefined) throw new XenError('EINVAL', `gfn ${gfn} is not RAM of d${ctx.caller.domid}`);
      if (ctx.caller.vcpus.length > TRAP_SLOT_MAX_VCPUS) throw new XenError('EINVAL', `a trap-slot page serves at most ${TRAP_SLOT_MAX_VCPUS} vCPUs`);
      ctx.caller.trapSlotAddr = mfn * 4096;
      return 0;
    },
  },

  set_timer_op: {
    set_timer_op: (ctx, a) => {
      ctx.hv.setTimer(ctx.caller, int(obj(a).timeout_ns, 'timeout_ns'));
      return 0;
    },
  },

  dm_op: {
    set_isa_irq_level: (ctx, a) => {
      const o = obj(a);
      const d = ctlDomain(ctx, o.domid);
      if (!d.isHvm) throw new XenError('EINVAL', `d${d.domid} is not an HVM domain`);
      ctx.hv.platform.setIsaIrqLevel(d, int(o.isa_irq, 'isa_irq', 0, 15), int(o.level, 'level', 0, 1) === 1);
      return 0;
    },
    map_io_range_to_ioreq_server: (ctx, a) => {
      const o = obj(a);
      const d = ctlDomain(ctx, o.domid);
      if (u32(o.id, 'id') !== 0) throw new XenError('ENOENT', `d${d.domid} has no ioreq server ${String(o.id)}`);
      const type = u32(o.type, 'type');
      if (type !== 0 && type !== 1) throw new XenError('EOPNOTSUPP', `io range type ${type}`);
      const start = int(o.start, 'start', 0, type === 0 ? 0xffff : 0xffffffff);
      const end = int(o.end, 'end', start, type === 0 ? 0xffff : 0xffffffff);
      ctx.hv.ioreq.mapRange(d, type === 0 ? 'port' : 'mmio', start, end);
      return 0;
    },
  },

  iret: {
    iret: (ctx, a) => {
      const o = obj(a);
      const v = vcpuOf(ctx.caller, o.vcpu);
      if (!ctx.x86) throw new XenError('ENOSYS', 'this host has no x86 CPU attached');
      const f = obj(o.frame, 'frame');
      const regs: Record<string, number> = {};
      for (const k of CONTEXT_REGS) if (f[k] !== undefined) regs[k] = int(f[k], k, 0, 0xffff);
      if (!v.trapPending) {
        // A trap the pCPU worker parked in the trap slot: the kernel can see PARKED and answer
        // before the worker's slice has come back here. Keep the answer for parkTrap.
        if (ctx.caller.trapSlotAddr !== undefined && v.earlyIret === undefined) {
          v.earlyIret = regs;
          return 0;
        }
        throw new XenError('EINVAL', `vCPU ${v.id} is not in a trap`);
      }
      ctx.x86.setContext(v, regs);
      v.trapPending = false;
      ctx.hv.vcpuChanged(v);
      return 0;
    },
  },

  memory_op: {
    increase_reservation: (ctx, a) => populatePhysmap(ctx.hv, ctx.caller, reservation(a)),
    populate_physmap: (ctx, a) => populatePhysmap(ctx.hv, ctx.caller, reservation(a)),
    decrease_reservation: (ctx, a) => decreaseReservation(ctx.hv, ctx.caller, reservation(a)),
    current_reservation: (ctx, a) => target(ctx, obj(a).domid).totPages,
    maximum_reservation: (ctx, a) => target(ctx, obj(a).domid).maxPages,
    maximum_ram_page: (ctx) => ctx.hv.frames.totalFrames - 1,
    acquire_resource: (ctx, a) => {
      const o = obj(a);
      priv(ctx);
      const d = target(ctx, o.domid);
      const type = u32(o.type, 'type');
      const first = u32(o.frame, 'frame');
      const nr = int(o.nr_frames, 'nr_frames', 1, 64);
      if (type !== XENMEM_resource.grant_table || u32(o.id, 'id') !== 0) throw new XenError('EOPNOTSUPP', `resource type ${type}`);
      if (first + nr > d.gnttab.maxFrames) throw new XenError('EINVAL', 'beyond the grant table limit');
      if (ctx.hv.gnttab.setupTable(ctx.caller, d.domid, first + nr).status !== GNTST.okay) {
        throw new XenError('ENOMEM', 'cannot grow the grant table');
      }
      const frames = d.gnttab.frames.slice(first, first + nr);
      for (const m of frames) {
        ctx.hv.frames.get(m);
        ctx.conn.foreign.push(m);
      }
      return { frame_list: frames };
    },
  },

  grant_table_op: {
    setup_table: (ctx, a) => {
      const o = obj(a);
      return ctx.hv.gnttab.setupTable(ctx.caller, u16(o.dom, 'dom'), u32(o.nr_frames, 'nr_frames'));
    },
    query_size: (ctx, a) => ctx.hv.gnttab.querySize(ctx.caller, u16(obj(a).dom, 'dom')),
    map_grant_ref: (ctx, a) =>
      arr(a, 'map ops', 4096).map((e, i) => {
        const o = obj(e, `op[${i}]`);
        const r = ctx.hv.gnttab.mapOne(ctx.caller, { flags: u32(o.flags, 'flags'), ref: int(o.ref, 'ref', -(2 ** 31), 2 ** 32), dom: u16(o.dom, 'dom') });
        if (r.status === GNTST.okay) ctx.conn.handles.add(r.handle);
        return r;
      }),
    unmap_grant_ref: (ctx, a) =>
      arr(a, 'unmap ops', 4096).map((e, i) => {
        const o = obj(e, `op[${i}]`);
        const handle = int(o.handle, 'handle', 0, 0xffffffff);
        const status = ctx.hv.gnttab.unmapOne(ctx.caller, handle, optInt(o.dev_bus_addr, 'dev_bus_addr', 0));
        if (status === GNTST.okay) ctx.conn.handles.delete(handle);
        return { status };
      }),
    copy: (ctx, a) =>
      arr(a, 'copy ops', 4096).map((e, i) => {
        const o = obj(e, `op[${i}]`);
        const ptr = (p: unknown) => {
          const q = obj(p, 'copy pointer');
          return {
            ref: q.ref === undefined ? undefined : int(q.ref, 'ref'),
            gmfn: q.gmfn === undefined ? undefined : int(q.gmfn, 'gmfn'),
            domid: u16(q.domid, 'domid'),
            offset: u16(q.offset, 'offset'),
          };
        };
        return { status: ctx.hv.gnttab.copyOne(ctx.caller, { source: ptr(o.source), dest: ptr(o.dest), len: u16(o.len, 'len'), flags: u16(o.flags, 'flags') }) };
      }),
    get_version: (ctx, a) => {
      target(ctx, obj(a).dom);
      return { version: 1 };
    },
    set_version: (_ctx, a) => {
      const v = u32(obj(a).version, 'version');
      if (v !== 1) throw new XenError('EINVAL', 'only grant table v1 is supported');
      return { version: 1 };
    },
  },

  event_channel_op: {
    alloc_unbound: (ctx, a) => {
      const o = obj(a);
      const port = ctx.hv.evtchn.allocUnbound(ctx.caller, u16(o.dom, 'dom'), u16(o.remote_dom, 'remote_dom'), ctx.conn.bell);
      if (o.dom === DOMID_SELF || o.dom === ctx.caller.domid) ctx.conn.ports.add(port);
      return { port };
    },
    bind_interdomain: (ctx, a) => {
      const o = obj(a);
      const r = ctx.hv.evtchn.bindInterdomain(ctx.caller, u16(o.remote_dom, 'remote_dom'), u32(o.remote_port, 'remote_port'), ctx.conn.bell);
      ctx.conn.ports.add(r.localPort);
      return { local_port: r.localPort, notify: r.notify };
    },
    bind_virq: (ctx, a) => {
      const o = obj(a);
      const port = ctx.hv.evtchn.bindVirq(ctx.caller, u32(o.virq, 'virq'), u32(o.vcpu, 'vcpu'), ctx.conn.bell);
      ctx.conn.ports.add(port);
      return { port };
    },
    bind_ipi: (ctx, a) => {
      const port = ctx.hv.evtchn.bindIpi(ctx.caller, u32(obj(a).vcpu, 'vcpu'), ctx.conn.bell);
      ctx.conn.ports.add(port);
      return { port };
    },
    bind_vcpu: (ctx, a) => {
      const o = obj(a);
      ctx.hv.evtchn.bindVcpu(ctx.caller, u32(o.port, 'port'), u32(o.vcpu, 'vcpu'));
      return 0;
    },
    close: (ctx, a) => {
      const port = u32(obj(a).port, 'port');
      ctx.hv.evtchn.close(ctx.caller, port);
      ctx.conn.ports.delete(port);
      return 0;
    },
    send: (ctx, a) => {
      ctx.hv.evtchn.send(ctx.caller, u32(obj(a).port, 'port'));
      return 0;
    },
    status: (ctx, a) => {
      const o = obj(a);
      const dom = u16(o.dom, 'dom');
      const port = u32(o.port, 'port');
      const st = ctx.hv.evtchn.status(ctx.caller, dom, port);
      const own = dom === DOMID_SELF || dom === ctx.caller.domid;
      return own && st.status === 2 ? { ...st, notify: ctx.hv.evtchn.notifyInfo(ctx.caller, port) } : st;
    },
    unmask: (ctx, a) => {
      ctx.hv.evtchn.unmask(ctx.caller, u32(obj(a).port, 'port'));
      return 0;
    },
    reset: (ctx, a) => {
      ctx.hv.evtchn.reset(ctx.caller, u16(obj(a).dom, 'dom'));
      return 0;
    },
  },

  sched_op: {
    yield: (ctx) => {
      const v = ctx.caller.vcpu(ctx.vcpu);
      if (v) ctx.hv.sched.yield(v);
      return 0;
    },
    block: (ctx) => {
      const v = ctx.caller.vcpu(ctx.vcpu);
      if (v && !v.external) ctx.hv.blockVcpu(v);
      return 0;
    },
    shutdown: (ctx, a) => {
      ctx.hv.shutdownDomain(ctx.caller, int(obj(a).reason, 'reason', 0, 255));
      return 0;
    },
    remote_shutdown: (ctx, a) => {
      const o = obj(a);
      ctx.hv.shutdownDomain(ctlDomain(ctx, o.domain_id), int(o.reason, 'reason', 0, 255));
      return 0;
    },
    shutdown_code: (ctx, a) => {
      const reason = int(obj(a).reason, 'reason', 0, 255);
      if (!ctx.caller.isShuttingDown) ctx.caller.shutdownCode = reason;
      return 0;
    },
  },

  vcpu_op: {
    up: (ctx, a) => {
      const v = vcpuOf(ctx.caller, obj(a).vcpuid);
      v.online = true;
      ctx.hv.vcpuChanged(v);
      return 0;
    },
    down: (ctx, a) => {
      const v = vcpuOf(ctx.caller, obj(a).vcpuid);
      v.online = false;
      ctx.hv.vcpuChanged(v);
      return 0;
    },
    is_up: (ctx, a) => (vcpuOf(ctx.caller, obj(a).vcpuid).online ? 1 : 0),
    get_runstate_info: (ctx, a) => {
      const v = vcpuOf(ctx.caller, obj(a).vcpuid);
      const now = ctx.hv.now();
      return { state: RUNSTATE[v.runstate], state_entry_time: v.runstateEntry, time: v.runstateTimes(now) };
    },
  },

  domctl: {
    createdomain: (ctx, a) => {
      priv(ctx);
      const o = obj(a);
      const d = ctx.hv.createDomain({
        domain: optInt(o.domain, 'domain', 0, 0, 0xffff),
        ssidref: optInt(o.ssidref, 'ssidref', 0, 0, 0xffffffff),
        handle: o.handle === undefined ? undefined : str(o.handle, 'handle', 32),
        flags: optInt(o.flags, 'flags', 0, 0, 0xffffffff),
        max_vcpus: int(o.max_vcpus, 'max_vcpus', 0, 0xffffffff),
        max_evtchn_port: optInt(o.max_evtchn_port, 'max_evtchn_port', 0, 0, 0xffffffff),
        max_grant_frames: optInt(o.max_grant_frames, 'max_grant_frames', 0, -(2 ** 31), 2 ** 31 - 1),
        max_maptrack_frames: optInt(o.max_maptrack_frames, 'max_maptrack_frames', 0, -(2 ** 31), 2 ** 31 - 1),
      });
      return { domain: d.domid, token: ctx.issueToken(d.domid) };
    },
    destroydomain: (ctx, a) => {
      priv(ctx);
      const domid = u16(obj(a).domain, 'domain');
      const d = ctx.hv.domains.get(domid);
      if (!d) throw new XenError('ESRCH', `no domain ${domid}`);
      if (d === ctx.caller) throw new XenError('EINVAL', 'a domain cannot destroy itself');
      ctx.hv.destroyDomain(d);
      ctx.x86?.forget(d);
      return 0;
    },
    pausedomain: (ctx, a) => {
      const d = ctlDomain(ctx, obj(a).domain);
      if (d === ctx.caller) throw new XenError('EINVAL', 'a domain cannot pause itself');
      ctx.hv.pauseDomain(d);
      return 0;
    },
    unpausedomain: (ctx, a) => {
      ctx.hv.unpauseDomain(ctlDomain(ctx, obj(a).domain));
      return 0;
    },
    getdomaininfo: (ctx, a) => {
      priv(ctx);
      return ctx.hv.getDomainInfo(u16(obj(a).domain, 'domain'));
    },
    getmemlist: (ctx, a) => {
      const o = obj(a);
      const d = ctlDomain(ctx, o.domain);
      const max = int(o.max_pfns, 'max_pfns', 0, 1 << 24);
      const gfns = [...d.p2m.entries()].sort((x, y) => x[0] - y[0]).slice(0, max);
      // `gfns` (xenlab's addition) says which guest frame each MFN backs, so a device model can map an HVM guest with holes.
      return { mfns: gfns.map(([, m]) => m), gfns: gfns.map(([g]) => g) };
    },
    max_mem: (ctx, a) => {
      const o = obj(a);
      const d = ctlDomain(ctx, o.domain);
      d.maxPages = Math.floor(int(o.max_memkb, 'max_memkb') / 4);
      return 0;
    },
    max_vcpus: (ctx, a) => {
      const o = obj(a);
      const d = ctlDomain(ctx, o.domain);
      const max = u32(o.max, 'max');
      if (max !== d.vcpus.length) throw new XenError('EINVAL', 'the vCPU count is fixed at createdomain');
      return 0;
    },
    setvcpuaffinity: (ctx, a) => {
      const o = obj(a);
      const d = ctlDomain(ctx, o.domain);
      const v = vcpuOf(d, o.vcpu);
      const flags = u32(o.flags, 'flags');
      if (!(flags & (XEN_VCPUAFFINITY.HARD | XEN_VCPUAFFINITY.SOFT))) throw new XenError('EINVAL', 'no affinity given');
      if (flags & XEN_VCPUAFFINITY.HARD) {
        const hard = cpumap(ctx, o.cpumap_hard, 'cpumap_hard');
        if (hard.length === 0) throw new XenError('EINVAL', 'empty hard affinity');
        v.hardAffinity = hard.length === ctx.hv.nrPcpus ? null : hard;
      }
      if (flags & XEN_VCPUAFFINITY.SOFT) {
        const soft = cpumap(ctx, o.cpumap_soft, 'cpumap_soft');
        v.softAffinity = soft.length === ctx.hv.nrPcpus ? null : soft;
      }
      if (v.external) v.placeExternal(ctx.hv.nrPcpus); // dom0's vCPUs: not the scheduler's
      ctx.hv.sched.adjust(d);
      return 0;
    },
    getvcpuaffinity: (ctx, a) => {
      const o = obj(a);
      const v = vcpuOf(ctlDomain(ctx, o.domain), o.vcpu);
      return { cpumap_hard: v.hardAffinity ?? allCpus(ctx), cpumap_soft: v.softAffinity ?? allCpus(ctx) };
    },
    getvcpuinfo: (ctx, a) => {
      const o = obj(a);
      const v = vcpuOf(ctlDomain(ctx, o.domain), o.vcpu);
      const t = v.runstateTimes(ctx.hv.now());
      return {
        online: v.online ? 1 : 0,
        blocked: v.blocked ? 1 : 0,
        running: v.runstate === 'running' ? 1 : 0,
        cpu_time: t[RUNSTATE.running]!,
        cpu: Math.max(0, v.pcpu),
      };
    },
    scheduler_op: (ctx, a) => {
      const o = obj(a);
      const d = ctlDomain(ctx, o.domain);
      if (u32(o.sched_id, 'sched_id') !== XEN_SCHEDULER.CREDIT) throw new XenError('EINVAL', 'this host runs the credit scheduler');
      const cmd = u32(o.cmd, 'cmd');
      if (cmd === XEN_DOMCTL_SCHEDOP.putinfo) {
        const weight = optInt(o.weight, 'weight', 0, 0, 0xffff);
        const cap = optInt(o.cap, 'cap', 0xffff, 0, 0xffff);
        if (cap !== 0xffff && cap > 100 * ctx.hv.nrPcpus) throw new XenError('EINVAL', `cap ${cap} exceeds ${100 * ctx.hv.nrPcpus}`);
        if (weight !== 0) d.weight = weight;
        if (cap !== 0xffff) d.cap = cap;
        ctx.hv.sched.adjust(d);
      } else if (cmd !== XEN_DOMCTL_SCHEDOP.getinfo) throw new XenError('EINVAL', `scheduler_op cmd ${cmd}`);
      return { weight: d.weight, cap: d.cap };
    },
    setvcpucontext: (ctx, a) => {
      const o = obj(a);
      const v = vcpuOf(ctlDomain(ctx, o.domain), o.vcpu);
      if (!ctx.x86) throw new XenError('ENOSYS', 'this host has no x86 CPU attached');
      const c = obj(o.ctx, 'ctx');
      const regs: Record<string, number> = {};
      for (const k of CONTEXT_REGS) if (c[k] !== undefined) regs[k] = int(c[k], k, 0, 0xffff);
      ctx.x86.setContext(v, regs);
      v.online = true;
      ctx.hv.vcpuChanged(v);
      return 0;
    },
    getvcpucontext: (ctx, a) => {
      const o = obj(a);
      const v = vcpuOf(ctlDomain(ctx, o.domain), o.vcpu);
      if (!ctx.x86) throw new XenError('ENOSYS', 'this host has no x86 CPU attached');
      const st = ctx.x86.getContext(v);
      return { cs: st.cs, ip: st.ip, ss: st.ss, sp: st.sp, ds: st.ds, es: st.es, flags: st.flags, ax: st.ax, bx: st.bx, cx: st.cx, dx: st.dx, si: st.si, di: st.di, bp: st.bp, halted: st.halted };
    },
    xenlab_counters_mark: (ctx, a) => {
      const o = obj(a);
      const id = u16(o.domain, 'domain');
      const d = id === DOMID_SELF || id === ctx.caller.domid ? ctx.caller : ctlDomain(ctx, id);
      const done = ctx.hv.markCounters(d, str(o.label, 'label', 32), counterRecord(o.extra));
      return done ? done.then(() => 0 as const) : 0;
    },
    setdomainhandle: (ctx, a) => {
      const o = obj(a);
      const d = ctlDomain(ctx, o.domain);
      const h = str(o.handle, 'handle', 32);
      if (!/^[0-9a-f]{32}$/i.test(h)) throw new XenError('EINVAL', 'handle must be 32 hex digits');
      d.handle = h.toLowerCase();
      return 0;
    },
  },

  sysctl: {
    readconsole: (ctx, a) => {
      priv(ctx);
      const o = a === null || a === undefined ? {} : obj(a);
      return ctx.hv.console.read({
        index: o.incremental ? optInt(o.index, 'index', 0) : undefined,
        count: o.count === undefined ? undefined : int(o.count, 'count'),
        clear: !!o.clear,
      });
    },
    physinfo: (ctx) => {
      priv(ctx);
      const n = ctx.hv.nrPcpus;
      return {
        threads_per_core: 1,
        cores_per_socket: n,
        nr_cpus: n,
        max_cpu_id: n - 1,
        nr_nodes: 1,
        max_node_id: 0,
        cpu_khz: 1_000_000,
        capabilities: XEN_SYSCTL_PHYSCAP.pv | XEN_SYSCTL_PHYSCAP.hvm | XEN_SYSCTL_PHYSCAP.gnttab_v1,
        total_pages: ctx.hv.frames.totalFrames,
        free_pages: ctx.hv.frames.freeFrames,
        scrub_pages: 0,
        outstanding_pages: 0,
        max_mfn: ctx.hv.frames.totalFrames - 1,
        hw_cap: [0, 0, 0, 0, 0, 0, 0, 0],
      };
    },
    sched_id: (ctx) => {
      priv(ctx);
      return { sched_id: XEN_SCHEDULER.CREDIT };
    },
    getdomaininfolist: (ctx, a) => {
      priv(ctx);
      const o = obj(a);
      const first = u16(o.first_domain, 'first_domain');
      const max = int(o.max_domains, 'max_domains', 0, 0x7ff0);
      return [...ctx.hv.domains.values()]
        .filter((d) => d.domid >= first)
        .sort((x, y) => x.domid - y.domid)
        .slice(0, max)
        .map((d) => ctx.hv.domainInfo(d));
    },
    getcpuinfo: (ctx, a) => {
      priv(ctx);
      const max = int(obj(a).max_cpus, 'max_cpus', 0, 4096);
      const now = ctx.hv.now();
      return { idletime: Array.from({ length: Math.min(max, ctx.hv.nrPcpus) }, (_, c) => ctx.credit?.idleTime(c, now) ?? now) };
    },
    scheduler_op: (ctx, a) => {
      priv(ctx);
      const o = obj(a);
      if (u32(o.cpupool_id, 'cpupool_id') !== 0) throw new XenError('ESRCH', 'only cpupool 0 exists');
      if (u32(o.sched_id, 'sched_id') !== XEN_SCHEDULER.CREDIT) throw new XenError('EINVAL', 'this host runs the credit scheduler');
      const s = ctx.credit;
      if (!s) throw new XenError('ENOSYS', 'no scheduler');
      if (u32(o.cmd, 'cmd') === XEN_SYSCTL_SCHEDOP.putinfo) {
        const tslice = optInt(o.tslice_ms, 'tslice_ms', s.tsliceMs, XEN_SYSCTL_CSCHED.TSLICE_MIN, XEN_SYSCTL_CSCHED.TSLICE_MAX);
        const rl = optInt(o.ratelimit_us, 'ratelimit_us', s.ratelimitUs, 0, XEN_SYSCTL_CSCHED.RATELIMIT_MAX_US);
        if (rl !== 0 && rl < XEN_SYSCTL_CSCHED.RATELIMIT_MIN_US) throw new XenError('EINVAL', 'ratelimit below 100us');
        if (rl > tslice * 1000) throw new XenError('EINVAL', 'ratelimit exceeds the time slice');
        s.tsliceMs = tslice;
        s.ratelimitUs = rl;
      }
      return { tslice_ms: s.tsliceMs, ratelimit_us: s.ratelimitUs, vcpu_migr_delay_us: 0 };
    },
    xenlab_domain_counters: (ctx, a) => {
      priv(ctx);
      return ctx.hv.domainCounters(u16(obj(a).domain, 'domain'));
    },
  },

  console_io: {
    write: (ctx, a) => {
      const text = str(obj(a).text, 'text', 16384);
      const prefix = ctx.caller.domid === 0 ? '' : `(d${ctx.caller.domid}) `;
      for (const line of text.split('\n').filter((l) => l.length > 0)) ctx.hv.console.write(`${prefix}${line}\n`);
      return 0;
    },
    read: (ctx, a) => {
      priv(ctx);
      return { text: ctx.hv.console.read({ count: int(obj(a).count, 'count') }).text };
    },
  },

  hvm_op: {
    set_param: (ctx, a) => {
      const o = obj(a);
      const d = target(ctx, o.domid);
      const index = int(o.index, 'index', 0, HVM_NR_PARAMS - 1);
      // Only the callback IRQ is the guest's to set; the rest (ioreq pages, device-model
      // domain, store/console rings) are the toolstack's.
      if (index !== HVM_PARAM.CALLBACK_IRQ) priv(ctx);
      if (!d.isHvm) throw new XenError('EINVAL', `d${d.domid} is not an HVM domain`);
      d.hvmParams.set(index, int(o.value, 'value'));
      ctx.hv.ioreq.configure(d);
      return 0;
    },
    get_param: (ctx, a) => {
      const o = obj(a);
      const d = target(ctx, o.domid);
      const index = int(o.index, 'index', 0, HVM_NR_PARAMS - 1);
      if (!d.isHvm) throw new XenError('EINVAL', `d${d.domid} is not an HVM domain`);
      return { value: d.hvmParams.get(index) ?? 0 };
    },
  },
};

/** A mark's `extra`: at most 256 counters, short names, non-negative finite numbers. */
function counterRecord(x: unknown): Record<string, number> {
  if (x === undefined || x === null) return {};
  const o = obj(x, 'extra');
  const keys = Object.keys(o);
  if (keys.length > 256) throw new XenError('EINVAL', 'extra has more than 256 counters');
  const out = Object.create(null) as Record<string, number>;
  for (const k of keys) {
    const v = o[k];
    if (k.length > 64 || typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new XenError('EINVAL', `extra.${k.slice(0, 64)} must be a non-negative number`);
    out[k] = v;
  }
  return out;
}

function reservation(a: unknown) {
  const o = obj(a);
  return {
    domid: u16(o.domid, 'domid'),
    extent_start: intArr(o.extent_start, 'extent_start'),
    extent_order: optInt(o.extent_order, 'extent_order', 0, 0, 63),
    mem_flags: optInt(o.mem_flags, 'mem_flags', 0, 0, 0xffffffff),
  };
}

/** The counter name of each sub-op, made once (not a new string per call). */
const countKeys: Record<string, Record<string, string>> = {};

/** Looks up and runs one hypercall; unknown hypercalls and sub-ops are ENOSYS, as in Xen. */
export function dispatch(ctx: CallContext, hypercall: unknown, cmd: unknown, arg: unknown): unknown {
  if (typeof hypercall !== 'string' || !Object.prototype.hasOwnProperty.call(hypercalls, hypercall)) {
    throw new XenError('ENOSYS', `no hypercall ${String(hypercall)}`);
  }
  const table = hypercalls[hypercall as HypercallNameT] as Record<string, (c: CallContext, a: unknown) => unknown>;
  if (typeof cmd !== 'string' || !Object.prototype.hasOwnProperty.call(table, cmd)) {
    throw new XenError('ENOSYS', `no ${hypercall} sub-op ${String(cmd)}`);
  }
  ctx.caller.count(((countKeys[hypercall] ??= {})[cmd] ??= `hypercall.${hypercall}.${cmd}`));
  return table[cmd]!(ctx, arg);
}

/** Type-level check that the table covers HypercallTable exactly (no extra hypercalls). */
type _Exact = keyof DispatchTable extends keyof HypercallTable ? (keyof HypercallTable extends keyof DispatchTable ? true : never) : never;
export const _exact: _Exact = true;
