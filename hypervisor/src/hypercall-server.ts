/**
 * The hypercall interface as a unix socket in the run directory. A process acting for a domain
 * connects and sets up with the token issued for that domain (dom0's is a 0600 file in the run
 * directory, like /dev/xen/privcmd being root's; a domU's comes back from createdomain). From
 * then on the connection IS that domain: no later message can name another caller.
 *
 * When the domain's owner connection (its kernel shim, or the dom0 process) drops, the domain has
 * died: it crashes and loses its grant mappings and event channels. Any other connection (a tool,
 * a helper) only loses what it mapped and bound itself, like closing gntdev/evtchn file handles.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync, unlinkSync } from 'node:fs';
import { DOMID_XEN, encodeFrame, readFrames, type Mfn, type SetupInfo } from '@xenlab/xen-public';
import type { Domain } from './domain.ts';
import { toXenError } from './errors.ts';
import { EVTCHN_PAGE_DOORBELL_OFFSET } from './event-channel.ts';
import { dispatch, type CallContext, type ConnResources } from './hypercalls.ts';
import type { Hypervisor } from './hypervisor.ts';
import type { CreditScheduler } from './sched/credit.ts';
import type { X86RunnerBase } from './x86-runner.ts';
import { FrameKind } from './mm/frame-table.ts';

/**
 * Doorbells for connections other than a domain's owner (xenstored, qemu-dm, tools acting for
 * dom0): 64 bytes each, carved from frames the hypervisor owns. A port bound through such a
 * connection rings only its doorbell, so one process's events never wake the others.
 */
class ConnectionBells {
  private readonly free: number[] = [];
  private readonly frames: Mfn[] = [];

  constructor(private readonly hv: Hypervisor) {}

  alloc(): number | undefined {
    if (this.free.length === 0) {
      const mfn = this.hv.frames.alloc(DOMID_XEN, FrameKind.xen);
      if (mfn === undefined) return undefined;
      this.frames.push(mfn);
      const base = this.hv.mem.addr(mfn);
      for (let off = 4096 - 64; off >= 0; off -= 64) this.free.push(base + off);
    }
    const addr = this.free.pop()!;
    new Uint8Array(this.hv.mem.buffer, addr, 64).fill(0);
    return addr;
  }

  release(addr: number): void {
    this.free.push(addr);
  }
}

export interface HypercallServerOptions {
  socketPath: string;
  machineMemoryPath: string;
  credit?: CreditScheduler;
  x86?: X86RunnerBase;
}

interface Conn {
  socket: Socket;
  domain: Domain | undefined;
  owner: boolean;
  res: ConnResources;
  /** The context of every call on this connection, made once at set-up. */
  ctx?: CallContext;
}

export class HypercallServer {
  private server: Server | undefined;
  private readonly tokens = new Map<string, Domain>();
  private readonly conns = new Set<Conn>();
  private readonly owners = new Map<Domain, Conn>();
  private readonly bells: ConnectionBells;
  /** Counters: hypercalls served, errors returned, connections seen. */
  readonly stats = { calls: 0, errors: 0, connections: 0, internalErrors: 0 };

  constructor(
    readonly hv: Hypervisor,
    private readonly opts: HypercallServerOptions,
  ) {
    this.bells = new ConnectionBells(hv);
  }

  issueToken(domid: number): string {
    const d = this.hv.domains.get(domid);
    if (!d) throw new Error(`no domain ${domid}`);
    const token = randomBytes(16).toString('hex');
    this.tokens.set(token, d);
    return token;
  }

  /** Trap bounces go to the domain's owner connection as pushed events (no id). */
  private deliverTrap(d: Domain, ev: unknown): boolean {
    const c = this.owners.get(d);
    if (!c || c.socket.destroyed) return false;
    c.socket.write(encodeFrame(ev));
    return true;
  }

  listen(): Promise<void> {
    this.hv.onTrap = (d, ev) => this.deliverTrap(d, ev);
    if (existsSync(this.opts.socketPath)) unlinkSync(this.opts.socketPath);
    this.server = createServer((s) => this.accept(s));
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.socketPath, () => resolve());
    });
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    if (existsSync(this.opts.socketPath)) unlinkSync(this.opts.socketPath);
  }

  private accept(socket: Socket): void {
    this.stats.connections++;
    const conn: Conn = { socket, domain: undefined, owner: false, res: { handles: new Set(), ports: new Set(), foreign: [] } };
    this.conns.add(conn);
    readFrames(socket, (m) => this.onMessage(conn, m));
    socket.on('error', () => {});
    socket.on('close', () => this.onClose(conn));
  }

  private reply(conn: Conn, msg: Record<string, unknown>): void {
    if (!conn.socket.destroyed) conn.socket.write(encodeFrame(msg));
  }

  private onMessage(conn: Conn, m: unknown): void {
    const msg = m as Record<string, unknown> | null;
    const id = msg?.id;
    if (typeof id !== 'number' || !Number.isInteger(id)) {
      conn.socket.destroy(); // not our protocol: no id to answer
      return;
    }
    if (!conn.domain) {
      this.setup(conn, id, msg!.setup);
      return;
    }
    const d = conn.domain;
    this.stats.calls++;
    if (d.dying !== 'alive') {
      this.stats.errors++;
      this.reply(conn, { id, ok: false, errno: 'ESRCH', ret: -3, message: `d${d.domid} is dead` });
      return;
    }
    try {
      const ret = dispatch(conn.ctx!, msg!.hypercall, msg!.cmd, msg!.arg);
      // A handler that must wait (a counter mark until the domain's running slices end) answers later.
      if (ret instanceof Promise) void ret.then((r: unknown) => this.reply(conn, { id, ok: true, ret: r }), (e: unknown) => this.fail(conn, id, msg!, d, e));
      else this.reply(conn, { id, ok: true, ret });
    } catch (e) {
      this.fail(conn, id, msg!, d, e);
    }
  }

  private fail(conn: Conn, id: number, msg: Record<string, unknown>, d: Domain, e: unknown): void {
    const err = toXenError(e);
    this.stats.errors++;
    if (err.internal) {
      this.stats.internalErrors++;
      this.hv.log(`hypercall ${String(msg.hypercall)}/${String(msg.cmd)} from d${d.domid} failed internally: ${err.message}`);
    }
    this.reply(conn, { id, ok: false, errno: err.errno, ret: err.ret, message: err.message });
  }

  private setup(conn: Conn, id: number, setup: unknown): void {
    const s = setup as { token?: unknown; owner?: unknown } | undefined;
    const d = typeof s?.token === 'string' ? this.tokens.get(s.token) : undefined;
    if (!d || d.dying !== 'alive') {
      this.reply(conn, { id, ok: false, errno: 'EACCES', ret: -13, message: 'set up with a valid domain token first' });
      conn.socket.end();
      return;
    }
    if (s!.owner === true) {
      if (this.owners.has(d)) {
        this.reply(conn, { id, ok: false, errno: 'EBUSY', ret: -16, message: `d${d.domid} already has its process` });
        conn.socket.end();
        return;
      }
      this.owners.set(d, conn);
      conn.owner = true;
    } else {
      // Not the domain's process: its own doorbell (none left: the domain's, as before).
      conn.res.bell = this.bells.alloc();
    }
    conn.domain = d;
    conn.ctx = {
      hv: this.hv,
      caller: d,
      vcpu: 0,
      conn: conn.res,
      issueToken: (domid) => this.issueToken(domid),
      credit: this.opts.credit,
      x86: this.opts.x86,
    };
    const info: SetupInfo = {
      domid: d.domid,
      privileged: d.privileged,
      machine_memory: this.opts.machineMemoryPath,
      machine_bytes: this.hv.mem.buffer.byteLength,
      shared_info_frame: d.sharedInfoMfn,
      doorbell_addr: conn.res.bell ?? this.hv.mem.addr(d.evtchnPageMfn) + EVTCHN_PAGE_DOORBELL_OFFSET,
    };
    this.reply(conn, { id, ok: true, ret: info });
  }

  private onClose(conn: Conn): void {
    this.conns.delete(conn);
    const d = conn.domain;
    if (!d) return;
    for (const m of conn.res.foreign) this.hv.frames.put(m);
    conn.res.foreign.length = 0;
    if (conn.owner) {
      this.owners.delete(d);
      if (d.dying === 'alive') this.hv.processDied(d, `its process (owner connection) went away`);
      return;
    }
    if (d.dying === 'alive') {
      for (const h of conn.res.handles) this.hv.gnttab.unmapOne(d, h);
      for (const p of conn.res.ports) {
        if (d.evtchn.get(p)) this.hv.evtchn.close(d, p);
      }
    }
    // A dying domain's ports are closed by its destruction; a stale ring of a reused doorbell
    // would only be a spurious wake-up, which the event ABI allows.
    this.releaseBell(conn);
  }

  private releaseBell(conn: Conn): void {
    if (conn.res.bell === undefined) return;
    this.bells.release(conn.res.bell);
    conn.res.bell = undefined;
  }

  /** Does `d` currently have its owner process connected? */
  hasOwner(d: Domain): boolean {
    return this.owners.has(d);
  }
}
