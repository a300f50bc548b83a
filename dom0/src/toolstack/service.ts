/**
 * dom0's toolstack service (the libxl role, ARCHITECTURE.md "Processes"): `xl` connects to
 * `<run>/dom0/toolstack.sock` and sends the operations of `ToolstackTable` (@xenlab/xen-public,
 * toolstack.ts) as wire frames; one dispatch table (`OPS`) answers them.
 *
 * create: createdomain -> max_mem/max_vcpus -> builder by type (builder.ts) -> xenstore tree
 * with libxl's permissions (fact sheet §12) and the device directories -> INTRODUCE ->
 * console backend -> the domain's process -> unpause. Each step registers its undo; a failure,
 * or xl's connection closing before the reply, rolls everything back.
 * destroy: console and block backends detach (unmap, close ports), RELEASE, xenstore nodes
 * removed, the domain's processes stopped, destroydomain.
 * on_poweroff / on_reboot / on_crash: the domain reaper (domain-reaper.ts) hands shut-down
 * domains the toolstack built to `onShutdown`, which applies the config's action (destroy,
 * restart = destroy and create again from the same config, preserve).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { SharedMemory } from '@xenlab/ring-buffers';
import {
  XEN_DOMCTL_CDF,
  SHUTDOWN,
  XEN_DOMINF,
  XenError,
  encodeFrame,
  readFrames,
  shutdownReasonName,
  toolstackSocket,
  type DomainInfo,
  type HostLayout,
  type HypercallClient,
  type ToolstackArg,
  type ToolstackDomainAction,
  type ToolstackDomainConfig,
  type ToolstackDomainSummary,
  type ToolstackOp,
  type ToolstackRet,
} from '@xenlab/xen-public';
import { DomainEvents, XenstoreClient, type Permission } from '@xenlab/xenstore-client';
import { BlkbackManager } from '../backends/blkback/manager.ts';
import { ConsoleManager } from '../backends/console/manager.ts';
import { BUILDERS, UndoStack, type BuiltDomain } from './builder.ts';
import { Dom0Frames, type Dom0Host } from './dom0-host.ts';

interface DomainRecord {
  domid: number;
  cfg: ToolstackDomainConfig;
  uuid: string;
  built: BuiltDomain;
  consoleSocket: string;
  consoleLog: string;
  dir: string;
  state: 'running' | 'destroying' | 'preserved';
  /** Resolved when the domain is gone (destroyed, or restarted as another domid). */
  gone: Promise<void>;
  markGone: () => void;
}

const ro = (domid: number): Permission[] => [{ id: 0, read: false, write: false }, { id: domid, read: true, write: false }];
const rw = (domid: number): Permission[] => [{ id: domid, read: false, write: false }, { id: 0, read: true, write: false }];

export class ToolstackService {
  private readonly domains = new Map<number, DomainRecord>();
  private server: Server | undefined;
  readonly blkback: BlkbackManager;
  readonly console: ConsoleManager;

  private constructor(private readonly h: Dom0Host) {
    this.blkback = new BlkbackManager(h);
    this.console = new ConsoleManager(h);
  }

  static async start(opts: { hc: HypercallClient; layout: HostLayout; log: (l: string) => void }): Promise<ToolstackService> {
    const mm = SharedMemory.open(opts.hc.info.machine_memory);
    const xs = await XenstoreClient.connect(opts.layout.xenstoredSocket);
    const h: Dom0Host = {
      layout: opts.layout,
      hc: opts.hc,
      mm,
      events: new DomainEvents(opts.hc, mm.buffer),
      xs,
      frames: await Dom0Frames.open(opts.hc, mm),
      log: opts.log,
    };
    const s = new ToolstackService(h);
    await s.blkback.start();
    await s.listen();
    for (const b of Object.values(BUILDERS)) b?.prepare?.(h);
    return s;
  }

  /** One table from operation to handler (CONVENTIONS.md): what `xl` can ask. */
  private readonly OPS: { [O in ToolstackOp]: (arg: ToolstackArg<O>, conn: ConnState) => Promise<ToolstackRet<O>> } = {
    create: (a, conn) => this.create(a.config, { paused: a.paused === true, conn }),
    destroy: async (a) => (await this.destroy(a.domid), 0),
    shutdown: async (a) => (await this.shutdown(a.domid, a.reason, a.wait === true, a.timeoutMs ?? 60_000), 0),
    'block-list': (a) => this.blockList(a.domid),
    'device-counters': async (a) => ({ vbd: this.blkback.counters(a.domid) }),
    domain: async (a) => this.summary(this.record(a.domid)),
    domains: async () => [...this.domains.values()].map((r) => this.summary(r)),
  };

  private async listen(): Promise<void> {
    const path = toolstackSocket(this.h.layout);
    rmSync(path, { force: true });
    this.server = createServer((sock) => this.serve(sock));
    await new Promise<void>((res, rej) => {
      this.server!.once('error', rej);
      this.server!.listen(path, () => res());
    });
  }

  private serve(sock: Socket): void {
    const conn: ConnState = { closed: false, onClose: [] };
    sock.on('close', () => {
      conn.closed = true;
      for (const f of conn.onClose.splice(0)) f();
    });
    sock.on('error', () => {});
    readFrames(sock, (m) => {
      const req = m as { id?: unknown; op?: unknown; arg?: unknown };
      const id = typeof req.id === 'number' ? req.id : 0;
      const handler = typeof req.op === 'string' && Object.hasOwn(this.OPS, req.op) ? (this.OPS[req.op as ToolstackOp] as (a: unknown, c: ConnState) => Promise<unknown>) : undefined;
      const reply = (body: object) => {
        if (!sock.destroyed) sock.write(encodeFrame({ id, ...body }));
      };
      if (!handler) return reply({ ok: false, error: `unknown toolstack operation ${JSON.stringify(req.op)}`, errno: 'ENOSYS' });
      handler(req.arg, conn).then(
        (ret) => reply({ ok: true, ret }),
        (e: unknown) => reply({ ok: false, error: (e as Error).message ?? String(e), ...(e instanceof XenError ? { errno: e.errno } : {}) }),
      );
    });
  }

  private record(domid: number): DomainRecord {
    const r = this.domains.get(domid);
    if (!r) throw new Error(`domain ${domid} was not created by the toolstack (or is gone)`);
    return r;
  }

  private summary(r: DomainRecord): ToolstackDomainSummary {
    return { domid: r.domid, name: r.cfg.name, uuid: r.uuid, type: r.cfg.type, consoleSocket: r.consoleSocket, consoleLog: r.consoleLog };
  }

  // --- create -------------------------------------------------------------------------------

  async create(cfg: ToolstackDomainConfig, o: { paused: boolean; conn?: ConnState }): Promise<ToolstackDomainSummary> {
    const builder = BUILDERS[cfg.type];
    if (!builder) throw new Error(`type = "${cfg.type}" is not supported by this toolstack (${Object.keys(BUILDERS).join(', ')} are)`);
    for (const r of this.domains.values()) if (r.cfg.name === cfg.name && r.state !== 'destroying') throw new Error(`a domain named '${cfg.name}' already exists (domid ${r.domid}); pick another name = or destroy it`);
    const { hc, xs, log } = this.h;
    const undo = new UndoStack();
    let aborted = false;
    let abort!: (e: Error) => void;
    // xl going away rejects whatever step is under way at once (the shim's start may take long).
    const abortion = new Promise<never>((_, rej) => (abort = rej));
    abortion.catch(() => {});
    const onClose = () => {
      aborted = true;
      abort(new Error('xl went away during create: rolled back'));
    };
    o.conn?.onClose.push(onClose);
    const check = () => {
      if (aborted) throw new Error('xl went away during create: rolled back');
    };
    const step = <T>(p: Promise<T>): Promise<T> => Promise.race([p, abortion]);
    const uuid = cfg.uuid ?? randomUUID();
    try {
      const { domain: domid, token } = await hc.call('domctl', 'createdomain', { max_vcpus: cfg.vcpus, handle: uuid.replace(/-/g, ''), flags: cfg.type === 'hvm' ? XEN_DOMCTL_CDF.hvm : 0 });
      undo.push('destroydomain', () => hc.call('domctl', 'destroydomain', { domain: domid }));
      await hc.call('domctl', 'max_mem', { domain: domid, max_memkb: cfg.maxmem * 1024 });
      const dir = join(this.h.layout.dom0Dir, 'domains', String(domid));
      mkdirSync(dir, { recursive: true });
      undo.push('domain dir', () => rmSync(dir, { recursive: true, force: true }));
      check();

      const built = await step(builder.build(cfg, { host: this.h, domid, token, undo, dir }));
      undo.push('builder destroy', () => built.destroy());
      check();
      built.launch?.();

      await this.writeTree(domid, uuid, cfg, built, undo);
      undo.push('blkback detach', () => this.blkback.detach(domid));
      check();
      await xs.introduceDomain(domid, built.store.mfn, built.store.port);
      undo.push('release', () => xs.releaseDomain(domid));
      // The domain's process (the PV shim, qemu-dm) brings itself up while the console backend
      // attaches: neither waits for the other (the vCPU stays paused until both are done).
      const started = step(built.start());
      started.catch(() => {});
      const cons = await this.console.attach(domid, cfg.name, built.console.port);
      undo.push('console detach', () => this.console.detach(domid));
      const consoleSocket = built.consoleSocket ?? cons.socketPath;
      const consoleLog = built.consoleLog ?? cons.logPath;
      await Promise.all([
        xs.write(`/local/domain/${domid}/console/tty`, consoleSocket),
        xs.write(`/local/domain/0/backend/console/${domid}/0/tty`, consoleSocket),
        xs.write(`/local/domain/0/backend/console/${domid}/0/state`, '4'),
      ]);
      check();

      await started;
      check();
      if (!o.paused) await hc.call('domctl', 'unpausedomain', { domain: domid });
      check();

      let markGone!: () => void;
      const gone = new Promise<void>((r) => (markGone = r));
      const rec: DomainRecord = { domid, cfg, uuid, built, consoleSocket, consoleLog, dir, state: 'running', gone, markGone };
      this.domains.set(domid, rec);
      undo.commit();
      o.conn && (o.conn.onClose = o.conn.onClose.filter((f) => f !== onClose));
      built.onExit?.((why) => log(`d${domid}: ${why}`));
      log(`d${domid} '${cfg.name}' created (${cfg.type}, ${cfg.memory} MiB, ${cfg.disks.length} disk(s))`);
      await hc.call('console_io', 'write', { text: `dom0: d${domid} '${cfg.name}' created` }).catch(() => {});
      return this.summary(rec);
    } catch (e) {
      await undo.unwind(log);
      throw e;
    }
  }

  /** The domain's xenstore tree as libxl writes it (fact sheet §12), with libxl's permissions. */
  private async writeTree(domid: number, uuid: string, cfg: ToolstackDomainConfig, built: BuiltDomain, undo: UndoStack): Promise<void> {
    const xs = this.h.xs;
    const home = `/local/domain/${domid}`;
    const vm = `/vm/${uuid}`;
    undo.push('xenstore nodes', () => this.removeTree(domid, uuid));
    // Requests go out without waiting for each reply: xenstored answers a connection's requests
    // in order, so a node is still written before its permissions and a parent before its
    // children, and the tree costs one round trip instead of two per node.
    const sent: Promise<unknown>[] = [];
    const put = (path: string, value: string, perms: Permission[]): void => void sent.push(xs.write(path, value), xs.setPerms(path, perms));
    put(home, '', ro(domid));
    put(`${vm}`, '', ro(domid));
    put(`${vm}/uuid`, uuid, ro(domid));
    put(`${vm}/name`, cfg.name, ro(domid));
    put(`${vm}/start_time`, (Date.now() / 1000).toFixed(2), ro(domid));
    const roNodes: Record<string, string> = {
      vm,
      name: cfg.name,
      domid: String(domid),
      'memory/static-max': String(cfg.maxmem * 1024),
      'memory/target': String(cfg.memory * 1024),
      'memory/videoram': '-1',
      'store/port': String(built.store.port),
      'store/ring-ref': String(built.store.mfn),
      'console/port': String(built.console.port),
      'console/ring-ref': String(built.console.mfn),
      'console/limit': '1048576',
      // Who serves the console: dom0's console backend, or the domain's own device model (HVM COM1).
      'console/type': built.consoleSocket ? 'ioemu' : 'xenconsoled',
      'console/output': 'pty',
      'console/backend': `/local/domain/0/backend/console/${domid}/0`,
      'console/backend-id': '0',
      control: '',
      'control/platform-feature-multiprocessor-suspend': '1',
      'control/platform-feature-xs_reset_watches': '1',
      ...built.xenstore,
    };
    for (let v = 0; v < cfg.vcpus; v++) roNodes[`cpu/${v}/availability`] = 'online';
    for (const [k, v] of Object.entries(roNodes)) put(`${home}/${k}`, v, ro(domid));
    for (const k of ['device', 'data', 'drivers', 'feature', 'attr', 'error', 'control/shutdown', 'control/feature-poweroff', 'control/feature-reboot', 'control/sysrq']) {
      put(`${home}/${k}`, '', rw(domid));
    }
    put(`/libxl/${domid}/type`, cfg.type, [{ id: 0, read: false, write: false }]);
    // The primary console's backend directory, as libxl writes it (type xenconsoled: dom0's console
    // backend here; ioemu: the device model's serial port); state goes to 4 once it is attached.
    const cbe = `/local/domain/0/backend/console/${domid}/0`;
    const cnodes: Record<string, string> = { frontend: `${home}/console`, 'frontend-id': String(domid), online: '1', state: '1', protocol: 'vt100', type: built.consoleSocket ? 'ioemu' : 'xenconsoled', output: 'pty' };
    put(cbe, '', ro(domid));
    for (const [k, v] of Object.entries(cnodes)) put(`${cbe}/${k}`, v, ro(domid));
    await Promise.all(sent.splice(0));
    for (const d of cfg.disks) {
      const fe = `${home}/device/vbd/${d.devid}`;
      const be = `/local/domain/0/backend/vbd/${domid}/${d.devid}`;
      // Backend first (dom0's, guest may read), complete in one transaction so blkback sees it whole.
      await xs.transaction(async (t) => {
        const bnodes: Record<string, string> = {
          'frontend-id': String(domid),
          frontend: fe,
          online: '1',
          state: '1',
          params: d.target,
          mode: d.access === 'rw' ? 'w' : 'r',
          type: 'file',
          dev: d.vdev,
          'device-type': d.devtype,
          'removable': '0',
          'bootable': '1',
          'discard-enable': '1',
        };
        await t.write(be, '');
        await t.setPerms(be, ro(domid));
        for (const [k, v] of Object.entries(bnodes)) {
          await t.write(`${be}/${k}`, v);
          await t.setPerms(`${be}/${k}`, ro(domid));
        }
      });
      const fnodes: Record<string, string> = { backend: be, 'backend-id': '0', state: '1', 'virtual-device': String(d.devid), 'device-type': d.devtype };
      put(fe, '', [{ id: domid, read: false, write: false }, { id: 0, read: true, write: false }]);
      for (const [k, v] of Object.entries(fnodes)) put(`${fe}/${k}`, v, [{ id: domid, read: false, write: false }, { id: 0, read: true, write: false }]);
      put(`/libxl/${domid}/device/vbd/${d.devid}/frontend`, fe, [{ id: 0, read: false, write: false }]);
      put(`/libxl/${domid}/device/vbd/${d.devid}/backend`, be, [{ id: 0, read: false, write: false }]);
    }
    await Promise.all(sent);
  }

  private async removeTree(domid: number, uuid: string): Promise<void> {
    const xs = this.h.xs;
    for (const p of [`/local/domain/${domid}`, `/vm/${uuid}`, `/local/domain/0/backend/vbd/${domid}`, `/local/domain/0/backend/console/${domid}`, `/local/domain/0/error/backend/vbd/${domid}`, `/libxl/${domid}`]) {
      await xs.rm(p).catch(() => {});
    }
  }

  // --- destroy, shutdown, on_* ---------------------------------------------------------------

  async destroy(domid: number): Promise<void> {
    const rec = this.domains.get(domid);
    if (!rec) {
      // Not ours (or already half gone): still make sure the hypervisor forgets it.
      await this.h.hc.call('domctl', 'destroydomain', { domain: domid });
      return;
    }
    if (rec.state === 'destroying') return rec.gone;
    rec.state = 'destroying';
    await this.teardown(rec);
    this.domains.delete(domid);
    rec.markGone();
  }

  /** Everything `create` set up, in reverse; each step tolerates what is already gone. */
  private async teardown(rec: DomainRecord): Promise<void> {
    const { hc, xs, log } = this.h;
    const domid = rec.domid;
    const quiet = (what: string) => (e: unknown) => log(`d${domid} destroy: ${what}: ${(e as Error).message}`);
    await hc.call('domctl', 'pausedomain', { domain: domid }).catch(() => {});
    await this.console.detach(domid).catch(quiet('console'));
    await this.blkback.detach(domid).catch(quiet('blkback'));
    await xs.releaseDomain(domid).catch(() => {});
    await this.removeTree(domid, rec.uuid);
    rec.built.freeze?.();
    await hc.call('domctl', 'destroydomain', { domain: domid }).catch((e: unknown) => {
      if (!(e instanceof XenError && e.errno === 'ESRCH')) quiet('destroydomain')(e);
    });
    await rec.built.destroy().catch(quiet('processes'));
    rmSync(rec.dir, { recursive: true, force: true });
    log(`d${domid} '${rec.cfg.name}' destroyed`);
  }

  async shutdown(domid: number, reason: 'poweroff' | 'reboot', wait: boolean, timeoutMs: number): Promise<void> {
    const rec = this.record(domid);
    await this.h.xs.write(`/local/domain/${domid}/control/shutdown`, reason);
    if (!wait) return;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([
      rec.gone,
      new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`domain ${domid} did not shut down within ${timeoutMs / 1000} s (is its guest ignoring control/shutdown? \`xl destroy\` always works)`)), timeoutMs))),
    ]).finally(() => clearTimeout(t));
  }

  /**
   * The reaper's hook: a domain shut down (VIRQ_DOM_EXC). Returns false for domains the
   * toolstack did not build (the reaper's defaults apply to those).
   */
  async onShutdown(info: DomainInfo): Promise<boolean> {
    const rec = this.domains.get(info.domain);
    if (!rec) return false;
    if (rec.state !== 'running') return true;
    const reason = (info.flags >>> 16) & 0xff;
    const why = shutdownReasonName(reason) ?? 'shutdown';
    let action: ToolstackDomainAction;
    if (reason === SHUTDOWN.poweroff) action = rec.cfg.onPoweroff;
    else if (reason === SHUTDOWN.reboot) action = rec.cfg.onReboot;
    else if (reason === SHUTDOWN.crash || reason === SHUTDOWN.watchdog) action = rec.cfg.onCrash;
    else return true; // suspend: the save path's business
    const key = reason === SHUTDOWN.poweroff ? 'on_poweroff' : reason === SHUTDOWN.reboot ? 'on_reboot' : 'on_crash';
    await this.h.hc.call('console_io', 'write', { text: `dom0: d${info.domain} '${rec.cfg.name}' ${why}: ${key}=${action}` }).catch(() => {});
    if (action === 'preserve') {
      rec.state = 'preserved';
      // The guest is gone, its devices need not stay connected; the domain stays for inspection.
      await rec.built.destroy().catch(() => {});
      return true;
    }
    if (action === 'restart' || action === 'rename-restart' || action === 'coredump-restart') {
      rec.state = 'destroying';
      await this.teardown(rec);
      this.domains.delete(rec.domid);
      try {
        await this.create(rec.cfg, { paused: false });
      } catch (e) {
        this.h.log(`d${info.domain} '${rec.cfg.name}': restart failed: ${(e as Error).message}`);
      }
      rec.markGone();
      return true;
    }
    await this.destroy(rec.domid);
    return true;
  }

  /** Domains that died without the reaper noticing yet (e.g. wedged): not needed by the flow. */
  isOurs(domid: number): boolean {
    return this.domains.has(domid);
  }

  private async blockList(domid: number): Promise<ToolstackRet<'block-list'>> {
    const xs = this.h.xs;
    const info = await this.h.hc.call('domctl', 'getdomaininfo', { domain: domid });
    if (info.flags & XEN_DOMINF.dying) return [];
    const home = `/local/domain/${domid}/device/vbd`;
    const ids = await xs.directory(home).catch(() => [] as string[]);
    const num = (s: string | undefined) => (s === undefined || s === '' ? null : Number(s));
    const out: ToolstackRet<'block-list'> = [];
    for (const id of ids) {
      const fe = `${home}/${id}`;
      const be = (await xs.tryRead(`${fe}/backend`)) ?? '';
      out.push({
        vdev: (await xs.tryRead(`${be}/dev`)) ?? id,
        devid: Number(id),
        backendId: Number((await xs.tryRead(`${fe}/backend-id`)) ?? 0),
        frontendState: num(await xs.tryRead(`${fe}/state`)),
        backendState: num(await xs.tryRead(`${be}/state`)),
        eventChannel: num(await xs.tryRead(`${fe}/event-channel`)),
        ringRef: num(await xs.tryRead(`${fe}/ring-ref`)),
        backendPath: be,
        target: (await xs.tryRead(`${be}/params`)) ?? '',
      });
    }
    return out;
  }

  async stop(): Promise<void> {
    for (const r of [...this.domains.values()]) await this.destroy(r.domid).catch(() => {});
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    for (const b of Object.values(BUILDERS)) b?.close?.();
    await this.console.stop();
    await this.blkback.stop();
    await this.h.events.stop();
    this.h.xs.close();
  }
}

interface ConnState {
  closed: boolean;
  onClose: (() => void)[];
}
