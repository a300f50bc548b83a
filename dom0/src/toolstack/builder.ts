/**
 * Domain builders, chosen by the config's `type` (libxl's `libxl__build_pv` / `libxl__build_hvm`
 * split). The toolstack service (service.ts) owns the common flow, and a builder only does what
 * differs by type:
 *
 *   service.create(cfg)                               builder (by cfg.type)
 *     createdomain, max_mem, max_vcpus
 *     builder.build(cfg, ctx)  ------------------->   memory, images, start info / HVM params,
 *                                                     xenstore + console pages (grant refs 1/0),
 *                                                     their event channels  => BuiltDomain
 *     xenstore tree, device dirs, INTRODUCE
 *     built.start()  ----------------------------->   spawn the domain's process (PV shim /
 *                                                     qemu-dm), wait until it is ready
 *     console backend attach (meanwhile)
 *     unpause
 *   service.destroy(domid)
 *     backends detach, RELEASE, xenstore rm
 *     built.freeze()  ---------------------------->   stop the processes (SIGSTOP)
 *     destroydomain (frees every frame)
 *     built.destroy()  --------------------------->   end the processes it started
 *
 * Every step registers its undo on `ctx.undo` so a failure anywhere (or xl going away mid-create)
 * rolls the domain back completely. To add a type: write `<type>-builder.ts` exporting a
 * `DomainBuilder` and add it to `BUILDERS` below.
 */
import type { ToolstackDomainConfig } from '@xenlab/xen-public';
import type { Dom0Host } from './dom0-host.ts';
import { hvmBuilder } from './hvm-builder.ts';
import { pvBuilder } from './pv-builder.ts';

export interface BuildContext {
  host: Dom0Host;
  domid: number;
  /** The set-up token for the domain's own processes (from createdomain). */
  token: string;
  /** Register how to undo a step; run in reverse order on failure. */
  undo: UndoStack;
  /** Per-domain scratch directory in the run dir (start info, pids). */
  dir: string;
}

export interface BuiltDomain {
  /** The xenstore page (GFN) and the event channel in the guest for xenstored. */
  store: { gfn: number; mfn: number; port: number };
  /** The console page and its event channel in the guest (the console backend binds it). */
  console: { gfn: number; mfn: number; port: number };
  /**
   * The guest's console when its own process serves it instead of the PV console ring (HVM:
   * COM1 in qemu-dm): `xl console` attaches to this socket (same replay byte) and its log.
   */
  consoleSocket?: string;
  consoleLog?: string;
  /** Extra `/local/domain/<id>/...` nodes (relative paths) this type wants. */
  xenstore?: Record<string, string>;
  /**
   * Optional head start, called right after `build`, before the xenstore tree is written: the
   * domain's processes may begin what needs no xenstore (connecting to the hypervisor, mapping
   * memory), overlapping the toolstack's own work. They must not touch xenstore before `start`.
   */
  launch?(): void;
  /** Starts the domain's processes once xenstore and backends are set up; resolves when ready. */
  start(): Promise<void>;
  /**
   * Freezes the domain's processes (SIGSTOP) so none touches guest memory while the hypervisor
   * frees it; `destroy` then ends them. Without it a dying kernel process would crash the domain.
   */
  freeze?(): void;
  /** Stops whatever `start` started (idempotent). The service destroys the domain afterwards. */
  destroy(): Promise<void>;
  /** Called once if a process of the domain exits unexpectedly (the domain crashed meanwhile). */
  onExit?: (listener: (why: string) => void) => void;
  /** Pids of the domain's processes (for `xl list -l`, tests). */
  pids(): number[];
}

export interface DomainBuilder {
  readonly type: ToolstackDomainConfig['type'];
  build(cfg: ToolstackDomainConfig, ctx: BuildContext): Promise<BuiltDomain>;
  /** The toolstack is up: start anything kept ready between builds (e.g. a process started ahead). */
  prepare?(host: Dom0Host): void;
  /** The toolstack stops: end anything kept between builds (e.g. a process started ahead). */
  close?(): void;
}

export const BUILDERS: Partial<Record<ToolstackDomainConfig['type'], DomainBuilder>> = {
  pv: pvBuilder,
  hvm: hvmBuilder,
};

export class UndoStack {
  private readonly steps: { what: string; run: () => Promise<unknown> | unknown }[] = [];

  push(what: string, run: () => Promise<unknown> | unknown): void {
    this.steps.push({ what, run });
  }

  /** Runs every undo step, newest first; failures are logged and do not stop the rest. */
  async unwind(log: (l: string) => void): Promise<void> {
    for (const s of this.steps.splice(0).reverse()) {
      try {
        await s.run();
      } catch (e) {
        log(`rollback: ${s.what}: ${(e as Error).message}`);
      }
    }
  }

  /** The steps succeeded: nothing to undo any more. */
  commit(): void {
    this.steps.length = 0;
  }
}
