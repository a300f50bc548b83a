/**
 * Event channels, 2-level ABI (xen/common/event_channel.c and event_2l.c): per-domain port
 * tables, the EVTCHNOP operations, and delivery into the domain's shared_info page, which lives in
 * machine memory with Xen's layout so the guest-side process reads the same bits Xen would set.
 *
 * Delivery between processes: when a port becomes pending and the bound vCPU's upcall is newly
 * raised, the hypervisor "kicks" the domain (wakes its vCPU, rings its doorbell). For a bound
 * interdomain channel the hypervisor also hands each end an `EvtchnNotify` so the sending process
 * can set the bits and ring the far end's doorbell itself, with no hypervisor round trip; the
 * hypervisor keeps a per-port generation word in the sender's own event page that it changes
 * whenever the channel is closed or re-targeted, and senders check it before using the fast path
 * (see docs/hypervisor.md, "Event delivery").
 */
import {
  DOMID_SELF,
  EVTCHNSTAT,
  EVTCHN_2L_NR_CHANNELS,
  MarkResult,
  NR_VIRQS,
  Port,
  VIRQ_PER_VCPU,
  XenError,
  type DomId,
  type EvtchnNotify,
  type EvtchnStatusResult,
} from '@xenlab/xen-public';
import type { Domain } from './domain.ts';
import type { Hypervisor } from './hypervisor.ts';

/**
 * `xen: true` marks a port of a domain whose events the hypervisor itself consumes (Xen's
 * "consumer" ports, here the ioreq channels between Xen and a device model): the guest cannot
 * use it, and a send from the far end reaches the hypervisor instead of the guest.
 */
export type Channel =
  | { state: 'closed' }
  | { state: 'unbound'; vcpu: number; remoteDom: DomId; xen?: true }
  | { state: 'interdomain'; vcpu: number; remoteDom: DomId; remotePort: Port; xen?: true }
  | { state: 'virq'; vcpu: number; virq: number }
  | { state: 'ipi'; vcpu: number };
export type OpenChannel = Exclude<Channel, { state: 'closed' }>;
/** Is this a port whose events the hypervisor consumes? */
export const isXenPort = (c: OpenChannel | undefined): boolean => !!c && 'xen' in c && c.xen === true;

/** Ports whose generation word fits in the event page after the 64-byte doorbell. */
export const FAST_PATH_PORTS = (4096 - 64) / 4;
export const EVTCHN_PAGE_DOORBELL_OFFSET = 0;
export const evtchnPageGenOffset = (port: number): number => 64 + 4 * port;

export class EvtchnTable {
  readonly ports: Channel[] = [{ state: 'closed' }];
  /** virqToPort[vcpu][virq], 0 when unbound. */
  readonly virqToPort: number[][] = [];
  /**
   * Ports bound through a connection other than the domain's owner (xenstored, qemu-dm or a tool
   * acting for dom0): port -> byte address of that connection's doorbell. Their events ring only
   * that doorbell, as Xen delivers a port's events only to the /dev/xen/evtchn handle that bound
   * it; every other port rings the domain's own doorbell.
   */
  readonly bells = new Map<number, number>();

  constructor(readonly maxPort: number) {}

  get(port: number): OpenChannel | undefined {
    if (!Number.isInteger(port) || port <= 0 || port >= this.ports.length) return undefined;
    const c = this.ports[port]!;
    return c.state === 'closed' ? undefined : c;
  }

  /** The lowest free port (port 0 is reserved), or undefined if the table is full. */
  allocPort(): number | undefined {
    for (let p = 1; p < this.ports.length; p++) if (this.ports[p]!.state === 'closed') return p;
    if (this.ports.length > this.maxPort) return undefined;
    this.ports.push({ state: 'closed' });
    return this.ports.length - 1;
  }

  usedPorts(): number[] {
    const out: number[] = [];
    for (let p = 1; p < this.ports.length; p++) if (this.ports[p]!.state !== 'closed') out.push(p);
    return out;
  }
}

export class EventChannels {
  private generation = 1;

  constructor(private readonly hv: Hypervisor) {}

  init(d: Domain): void {
    const maxPort = Math.min(Math.max(1, d.maxEvtchnPort), EVTCHN_2L_NR_CHANNELS - 1);
    d.evtchn = new EvtchnTable(maxPort);
  }

  private local(d: Domain, port: number, allowXen = false): OpenChannel {
    const c = d.evtchn.get(port);
    if (!c) throw new XenError('EINVAL', `d${d.domid} port ${port} is not in use`);
    if (!allowXen && isXenPort(c)) throw new XenError('EINVAL', `d${d.domid} port ${port} belongs to Xen`);
    return c;
  }

  /** A port of `d` that Xen consumes, offered to `remoteDom` (e.g. an ioreq channel to the DM). */
  allocXenPort(d: Domain, remoteDom: DomId, vcpu = 0): Port {
    const port = this.newPort(d);
    d.evtchn.ports[port] = { state: 'unbound', vcpu, remoteDom, xen: true };
    this.setGen(d, port);
    return Port(port);
  }

  /** Xen sends on its own port of `d` (marks the far end pending). */
  sendFromXen(d: Domain, port: number): void {
    const c = this.local(d, port, true);
    if (c.state !== 'interdomain') return; // no device model bound yet
    const rd = this.hv.domains.get(c.remoteDom);
    const rc = rd?.evtchn.get(c.remotePort);
    if (rd && rc) this.setPending(rd, rc.vcpu, c.remotePort);
  }

  private newPort(d: Domain): number {
    const p = d.evtchn.allocPort();
    if (p === undefined) throw new XenError('ENOSPC', `d${d.domid} has no free event channel ports`);
    return p;
  }

  private checkVcpu(d: Domain, vcpu: number): void {
    if (!d.vcpu(vcpu)) throw new XenError('ENOENT', `d${d.domid} has no vcpu ${vcpu}`);
  }

  /** EVTCHNOP_alloc_unbound: a port in `dom` that `remote_dom` may later bind to. */
  allocUnbound(caller: Domain, dom: number, remoteDom: number, bell?: number): Port {
    const d = this.hv.lookupDomain(caller, dom);
    const rdomid = remoteDom === DOMID_SELF ? caller.domid : (remoteDom as DomId);
    const port = this.newPort(d);
    d.evtchn.ports[port] = { state: 'unbound', vcpu: 0, remoteDom: rdomid };
    if (bell && d === caller) d.evtchn.bells.set(port, bell);
    this.setGen(d, port);
    return Port(port);
  }

  /** EVTCHNOP_bind_interdomain: connect a new local port to the remote's unbound port. */
  bindInterdomain(caller: Domain, remoteDom: number, remotePort: number, bell?: number): { localPort: Port; notify: EvtchnNotify } {
    const rd = remoteDom === DOMID_SELF ? caller : this.hv.domains.get(remoteDom);
    if (!rd || rd.dying !== 'alive') throw new XenError('ESRCH', `no domain ${remoteDom}`);
    const rc = rd.evtchn.get(remotePort);
    if (!rc || rc.state !== 'unbound') throw new XenError('EINVAL', `d${rd.domid} port ${remotePort} is not unbound`);
    if (rc.remoteDom !== caller.domid) {
      throw new XenError('EINVAL', `d${rd.domid} port ${remotePort} is reserved for d${rc.remoteDom}`);
    }
    const lport = this.newPort(caller);
    caller.evtchn.ports[lport] = { state: 'interdomain', vcpu: 0, remoteDom: rd.domid, remotePort: Port(remotePort) };
    if (bell) caller.evtchn.bells.set(lport, bell);
    rd.evtchn.ports[remotePort] = rc.xen
      ? { state: 'interdomain', vcpu: rc.vcpu, remoteDom: caller.domid, remotePort: Port(lport), xen: true }
      : { state: 'interdomain', vcpu: rc.vcpu, remoteDom: caller.domid, remotePort: Port(lport) };
    this.setGen(caller, lport);
    this.setGen(rd, remotePort);
    // As in Xen, the new local port starts pending so the binder cannot miss an earlier kick.
    this.setPending(caller, 0, lport);
    return { localPort: Port(lport), notify: this.notifyInfo(caller, lport) };
  }

  /** The fast-path descriptor for an interdomain port (what bind_interdomain returns). */
  notifyInfo(d: Domain, port: number): EvtchnNotify {
    const c = this.local(d, port);
    if (c.state !== 'interdomain') throw new XenError('EINVAL', `d${d.domid} port ${port} is not interdomain`);
    const rd = this.hv.domains.get(c.remoteDom)!;
    const rc = rd.evtchn.get(c.remotePort)!;
    const mem = this.hv.mem;
    // Sends to a port Xen consumes must reach the hypervisor: no fast path for those.
    const fast = port < FAST_PATH_PORTS && !isXenPort(rc);
    return {
      remote_dom: rd.domid,
      remote_port: c.remotePort,
      shared_info_addr: mem.addr(rd.sharedInfoMfn),
      remote_vcpu: rc.vcpu,
      // A device model's end of an ioreq channel rings the answer doorbell the pCPUs wait on (hvm/ioreq.ts).
      doorbell_addr: isXenPort(rc) ? this.hv.ioreq.answerBellAddr() : this.bellOf(rd, c.remotePort),
      bound_addr: fast ? mem.addr(d.evtchnPageMfn) + evtchnPageGenOffset(port) : 0,
      generation: fast ? this.readGen(d, port) : 0,
    };
  }

  /** EVTCHNOP_bind_virq. */
  bindVirq(caller: Domain, virq: number, vcpu: number, bell?: number): Port {
    if (!Number.isInteger(virq) || virq < 0 || virq >= NR_VIRQS) throw new XenError('EINVAL', `bad virq ${virq}`);
    if (!VIRQ_PER_VCPU.has(virq) && vcpu !== 0) throw new XenError('EINVAL', `global virq ${virq} binds on vcpu 0`);
    this.checkVcpu(caller, vcpu);
    const table = (caller.evtchn.virqToPort[vcpu] ??= new Array<number>(NR_VIRQS).fill(0));
    if (table[virq]) throw new XenError('EEXIST', `virq ${virq} already bound on vcpu ${vcpu}`);
    const port = this.newPort(caller);
    caller.evtchn.ports[port] = { state: 'virq', vcpu, virq };
    if (bell) caller.evtchn.bells.set(port, bell);
    table[virq] = port;
    this.setGen(caller, port);
    return Port(port);
  }

  /** EVTCHNOP_bind_ipi. */
  bindIpi(caller: Domain, vcpu: number, bell?: number): Port {
    this.checkVcpu(caller, vcpu);
    const port = this.newPort(caller);
    caller.evtchn.ports[port] = { state: 'ipi', vcpu };
    if (bell) caller.evtchn.bells.set(port, bell);
    this.setGen(caller, port);
    return Port(port);
  }

  /** EVTCHNOP_bind_vcpu: deliver a port's events to another vCPU. */
  bindVcpu(caller: Domain, port: number, vcpu: number): void {
    const c = this.local(caller, port);
    this.checkVcpu(caller, vcpu);
    if (c.state === 'virq' && VIRQ_PER_VCPU.has(c.virq)) throw new XenError('EINVAL', 'per-vcpu virqs cannot move');
    c.vcpu = vcpu;
    // Peers' fast-path descriptors name the vCPU: make them fall back to the hypercall.
    if (c.state === 'interdomain') {
      const rd = this.hv.domains.get(c.remoteDom);
      if (rd) this.setGen(rd, c.remotePort);
    }
    if (this.hv.sharedInfo(caller).isPending(port)) this.setPending(caller, vcpu, port, true);
  }

  /** Byte address of the doorbell that `d`'s events on `port` ring. */
  bellOf(d: Domain, port: number): number {
    return d.evtchn.bells.get(port) ?? this.hv.mem.addr(d.evtchnPageMfn) + EVTCHN_PAGE_DOORBELL_OFFSET;
  }

  /** EVTCHNOP_close. The interdomain peer goes back to unbound (reserved for us again). */
  close(d: Domain, port: number, force = false): void {
    const c = this.local(d, port, force);
    switch (c.state) {
      case 'interdomain': {
        const rd = this.hv.domains.get(c.remoteDom);
        const rc = rd?.evtchn.get(c.remotePort);
        if (rd && rc && rc.state === 'interdomain' && rc.remoteDom === d.domid && rc.remotePort === port) {
          rd.evtchn.ports[c.remotePort] = isXenPort(rc)
            ? { state: 'unbound', vcpu: rc.vcpu, remoteDom: d.domid, xen: true }
            : { state: 'unbound', vcpu: rc.vcpu, remoteDom: d.domid };
          this.setGen(rd, c.remotePort);
          // The device model's end of an ioreq channel went away (it closed it or its process died).
          if (isXenPort(rc)) this.hv.ioreq.deviceModelGone(rd);
        }
        break;
      }
      case 'virq': {
        const t = d.evtchn.virqToPort[c.vcpu];
        if (t) t[c.virq] = 0;
        break;
      }
      default:
        break;
    }
    d.evtchn.ports[port] = { state: 'closed' };
    d.evtchn.bells.delete(port);
    this.setGen(d, port, 0);
    const page = this.hv.sharedInfo(d);
    page.clearPending(port);
  }

  /** EVTCHNOP_send. */
  send(d: Domain, port: number): void {
    const c = this.local(d, port);
    switch (c.state) {
      case 'interdomain': {
        const rd = this.hv.domains.get(c.remoteDom);
        if (!rd) return;
        const rc = rd.evtchn.get(c.remotePort);
        if (rc && isXenPort(rc)) this.hv.ioreq.xenEvent(rd, c.remotePort);
        else if (rc) this.setPending(rd, rc.vcpu, c.remotePort);
        return;
      }
      case 'ipi':
        this.setPending(d, c.vcpu, port);
        return;
      case 'unbound':
        return; // Xen silently drops a send on an unbound port.
      default:
        throw new XenError('EINVAL', `cannot send on a ${c.state} port`);
    }
  }

  /** EVTCHNOP_status (Xen's own ports show as the binding they are). */
  status(caller: Domain, dom: number, port: number): EvtchnStatusResult {
    const d = this.hv.lookupDomain(caller, dom);
    if (!Number.isInteger(port) || port < 0 || port > d.evtchn.maxPort) throw new XenError('EINVAL', `bad port ${port}`);
    const c = d.evtchn.get(port);
    if (!c) return { status: EVTCHNSTAT.closed, vcpu: 0 };
    switch (c.state) {
      case 'unbound':
        return { status: EVTCHNSTAT.unbound, vcpu: c.vcpu, dom: c.remoteDom };
      case 'interdomain':
        return { status: EVTCHNSTAT.interdomain, vcpu: c.vcpu, dom: c.remoteDom, port: c.remotePort };
      case 'virq':
        return { status: EVTCHNSTAT.virq, vcpu: c.vcpu, virq: c.virq };
      case 'ipi':
        return { status: EVTCHNSTAT.ipi, vcpu: c.vcpu };
    }
  }

  /** EVTCHNOP_unmask. */
  unmask(d: Domain, port: number): void {
    const c = this.local(d, port);
    const page = this.hv.sharedInfo(d);
    if (page.unmask(c.vcpu, port)) this.hv.kick(d, c.vcpu, port);
    else if (page.isPending(port)) this.hv.onEventPending?.(d, c.vcpu, port);
  }

  /** EVTCHNOP_reset: close every port of a domain. */
  reset(caller: Domain, dom: number): void {
    const d = this.hv.lookupDomain(caller, dom);
    for (const p of d.evtchn.usedPorts()) {
      const c = d.evtchn.get(p);
      if (!isXenPort(c)) this.close(d, p);
    }
  }

  /** Raise a VIRQ on a domain (per-vCPU VIRQs on `vcpu`, global ones wherever bound). */
  sendVirq(d: Domain, virq: number, vcpu = 0): boolean {
    const port = d.evtchn.virqToPort[vcpu]?.[virq] ?? 0;
    if (!port) return false;
    this.setPending(d, vcpu, port);
    return true;
  }

  /** Mark `port` pending on `d`, kicking `vcpu` if its upcall is newly due. */
  setPending(d: Domain, vcpu: number, port: number, force = false): void {
    const r = this.hv.sharedInfo(d).markPending(vcpu, port);
    if (r === MarkResult.upcall || force) this.hv.kick(d, vcpu, port);
    // A newly pending port rings its doorbell even if the upcall was already due: several
    // processes may act for one domain, each consuming only its own ports.
    else if (r === MarkResult.newly) this.hv.onEventPending?.(d, vcpu, port);
  }

  /** Closes every port of a dying domain; peers' ends become unbound. */
  destroyDomain(d: Domain): void {
    for (const p of d.evtchn.usedPorts()) this.close(d, p, true);
  }

  private setGen(d: Domain, port: number, gen = this.generation++): void {
    if (port >= FAST_PATH_PORTS) return;
    const i32 = new Int32Array(this.hv.mem.buffer, this.hv.mem.addr(d.evtchnPageMfn) + evtchnPageGenOffset(port), 1);
    Atomics.store(i32, 0, gen);
  }
  private readGen(d: Domain, port: number): number {
    const i32 = new Int32Array(this.hv.mem.buffer, this.hv.mem.addr(d.evtchnPageMfn) + evtchnPageGenOffset(port), 1);
    return Atomics.load(i32, 0);
  }
}
