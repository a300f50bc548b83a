/**
 * The `host` backend: the same workloads as real domains on a booted xenlab host (hypervisor,
 * dom0, xenstored, one shim per PV guest, one qemu-dm per HVM guest), started with `xl create`.
 * NOT WIRED YET: the host (booting it, `xl create` of PV and HVM guests) is being integrated;
 * `start()` says so. What `run()` has to do, so the rest of the runner needs no change:
 *
 *   1. write an xl.cfg for the job: PV  `type = "pv"`,  `kernel` unset (the shim boots the disk's
 *      boot sector, guests/diskex-boot.cfg), `disk = ['format=raw, vdev=xvda, target=<job.disk>']`;
 *      HVM `type = "hvm"`, the same disk as `hda`; both `on_poweroff = "destroy"`, and the
 *      driver settings as xl.cfg / xenstore knobs (ring pages: the frontend's `ring-page-order`,
 *      hold-off and grant mode: blkback's options, the BIOS disk mode: CMOS 70h via qemu-dm);
 *   2. `xl create` it, follow the console (the console backend's log file for the domain) and
 *      time-stamp each line as it arrives: the phase is from the end of the `BEGIN` line to the
 *      start of the `BENCH` line (boot: from `xl create` to the start of the `BENCH` line);
 *   3. read the counters at those two points — the hypervisor's per-domain stats (VM exits by
 *      reason and port, hypercalls, event-channel sends, grant ops), blkback's and blkfront's
 *      counters, qemu-dm's IoBus and ATA counters — and answer their differences under the same
 *      keys the in-process harness uses (`exits.*`, `exit.pio:*`, `trap.*`, `blkfront.*`,
 *      `blkback.*`, `grant.*`, `gntcopy.*`, `gntmap.*`, `evtchn.*`, `console.*`, `dev.*`, `ata.*`);
 *   4. wait for the domain to be gone (`xl list`), bounded by `job.timeoutMs`, and `xl destroy`
 *      it on timeout.
 */
import type { Backend, BackendJob } from './backend.ts';
import type { DriverSettings, GuestPath, GuestRunResult } from './protocol.ts';

export class HostBackend implements Backend {
  readonly mode = 'host' as const;
  readonly description: string;

  constructor(readonly path: GuestPath, readonly runDir: string | undefined) {
    this.description = `host ${path.toUpperCase()}: xl create on the host at ${runDir ?? '(default run directory)'}`;
  }

  unsupported(settings: DriverSettings): string[] {
    void settings;
    return [];
  }

  async start(): Promise<void> {
    throw new Error(
      'xenlab-bench: --backend host is not available yet: running PV and HVM guests with xl create on a booted host is still being integrated. ' +
        'Use --backend in-process (the default) for now.',
    );
  }

  async run(job: BackendJob): Promise<GuestRunResult> {
    void job;
    throw new Error('HostBackend.run: not wired yet (see host-backend.ts)');
  }

  async close(): Promise<void> {}
}
