/**
 * What libxl does when a domain shuts down (the on_poweroff / on_crash actions of xl.cfg): dom0
 * listens on VIRQ_DOM_EXC, and for each domain newly shut down applies the action — `destroy`
 * (xl's default for poweroff and crash) frees its frames; `preserve` leaves it for inspection
 * (`xl list` shows `---sc-`). Restart needs the domain's config, which the toolstack service
 * will keep; until then a reboot is treated as destroy.
 */
import {
  SHUTDOWN,
  SharedInfoPage,
  VIRQ,
  XEN_DOMINF,
  shutdownReasonName,
  type DomainInfo,
  type HypercallClient,
} from '@xenlab/xen-public';
import { Doorbell, SharedMemory } from '@xenlab/ring-buffers';

export type ShutdownAction = 'destroy' | 'preserve';

export interface ReaperOptions {
  onPoweroff: ShutdownAction;
  onCrash: ShutdownAction;
  log(line: string): void;
  /**
   * The toolstack's per-domain actions (toolstack/service.ts): returns true when it took care
   * of the domain (its config's on_* action), false to apply the defaults above.
   */
  handle?: (info: DomainInfo) => Promise<boolean>;
}

/** Decides what to do with a domain from its getdomaininfo (pure, for tests). */
export function shutdownAction(info: DomainInfo, opts: Pick<ReaperOptions, 'onPoweroff' | 'onCrash'>): ShutdownAction | undefined {
  if (info.domain === 0 || !(info.flags & XEN_DOMINF.shutdown) || info.flags & XEN_DOMINF.dying) return undefined;
  const reason = (info.flags >>> 16) & 0xff;
  if (reason === SHUTDOWN.crash || reason === SHUTDOWN.watchdog) return opts.onCrash;
  if (reason === SHUTDOWN.poweroff || reason === SHUTDOWN.reboot) return opts.onPoweroff;
  return undefined; // suspend, soft_reset: the save/restore path deals with those
}

export class DomainReaper {
  private stopped = false;
  private readonly handled = new Set<string>();

  constructor(
    private readonly hc: HypercallClient,
    private readonly opts: ReaperOptions,
  ) {}

  async start(): Promise<void> {
    const mm = SharedMemory.open(this.hc.info.machine_memory);
    const bell = new Doorbell(mm.buffer, this.hc.info.doorbell_addr);
    const si = new SharedInfoPage(mm.buffer, this.hc.info.shared_info_frame * 4096);
    const { port } = await this.hc.call('event_channel_op', 'bind_virq', { virq: VIRQ.DOM_EXC, vcpu: 0 });
    await this.sweep();
    void (async () => {
      while (!this.stopped) {
        const seen = bell.seq;
        // dom0 is several processes: take only our own port's event (never scan: that steals).
        if (si.consume([port]).length) await this.sweep().catch((e) => this.opts.log(`reaper: ${(e as Error).message}`));
        await bell.waitAsync(seen, 1000);
      }
      mm.close();
    })();
  }

  stop(): void {
    this.stopped = true;
  }

  private async sweep(): Promise<void> {
    const doms = await this.hc.call('sysctl', 'getdomaininfolist', { first_domain: 0, max_domains: 0x7ff0 });
    for (const d of doms) {
      const action = shutdownAction(d, this.opts);
      const key = `${d.domain}:${d.handle}:${d.flags}`;
      if (!action || this.handled.has(key)) continue;
      this.handled.add(key);
      if (this.opts.handle) {
        const took = await this.opts.handle(d).catch((e: unknown) => (this.opts.log(`reaper: toolstack: ${(e as Error).message}`), false));
        if (took) continue;
      }
      const why = shutdownReasonName((d.flags >>> 16) & 0xff) ?? 'shutdown';
      if (action === 'destroy') {
        await this.hc.call('domctl', 'destroydomain', { domain: d.domain }).catch(() => {});
        await this.hc.call('console_io', 'write', { text: `dom0: d${d.domain} ${why}: destroyed (on_${why === 'crash' ? 'crash' : 'poweroff'}=destroy)` });
      } else {
        await this.hc.call('console_io', 'write', { text: `dom0: d${d.domain} ${why}: preserved for inspection` });
      }
    }
  }
}
