/**
 * What the runner asks an in-process guest harness to do, and what it answers: one JSON object
 * per line on the harness's stdin and stdout (guests/src/bench-guest.ts is the harness; it is a
 * child process because it wires the cores of processes — shim, dom0, qemu-dm — that the tools
 * project may not import). The host backend answers with the same `GuestRunResult`, so the
 * statistics, the explanation and the report do not care which backend produced a run.
 */

/** Which way the guest's I/O leaves it. */
export type GuestPath = 'pv' | 'hvm';

/** How the virtual BIOS drives the disk (CMOS 70h, qemu-dm README). */
export type HvmDiskMode = 'pio' | 'pio-multiple' | 'dma';

/** Driver settings a run can change: the what-if knobs. */
export interface DriverSettings {
  /** PV: pages in the blkif shared ring (1, 2, 4 or 8: 32, 64, 128 or 256 slots). */
  ringPages: number;
  /** PV: notification hold-off (req_event/rsp_event); off = notify on every push. */
  notifyHoldoff: boolean;
  /** PV: blkback moves data with GNTTABOP_copy, or maps the guest's pages. */
  grantMode: 'copy' | 'map';
  /** PV: the shim's INT 13h write is write-through (a BLKIF_OP_FLUSH_DISKCACHE, i.e. fdatasync, before it returns). */
  pvWriteThrough: boolean;
  /** HVM: INT 13h through PIO, PIO with READ/WRITE MULTIPLE, or bus-master DMA. */
  hvmDiskMode: HvmDiskMode;
  /** HVM: carry every exit to the device model through a real 32-byte ioreq_t slot. */
  ioreqPage: boolean;
}

export const DEFAULT_SETTINGS: DriverSettings = {
  ringPages: 1,
  notifyHoldoff: true,
  grantMode: 'copy',
  pvWriteThrough: true,
  hvmDiskMode: 'dma',
  ioreqPage: true,
};

export interface GuestJob {
  id: number;
  path: GuestPath;
  /** The disk image to boot from (the workload in its first sectors, the data area after). */
  disk: string;
  settings: DriverSettings;
  /** Stop the guest after this many instructions (a run that hits it failed). */
  maxInstructions: number;
}

/** Counter values (deltas over a phase). Keys are stable names such as `exits.io` or `blkfront.requests`. */
export type Counters = Record<string, number>;

export interface GuestRunResult {
  id: number;
  path: GuestPath;
  ok: boolean;
  /** Why the run failed (ok = false). */
  error?: string;
  outcome: 'poweroff' | 'halted' | 'budget' | 'error';
  /** The `BENCH name=...` line's fields (numbers in decimal, csum in hex, as printed). */
  bench: Record<string, string> | null;
  /** Host milliseconds of the measured phase: BEGIN line to BENCH line (boot: start to BENCH line). */
  phaseMs: number;
  /**
   * CPU time of the guest in the phase (ms), less sensitive than host time to waits and to other
   * processes on a shared machine. In-process: the harness process's user + system time. Host:
   * the vCPU's time on a pCPU (the pCPU workers' own clock over the domain's slices), which
   * leaves out the time the vCPU waited for trap bounces, ioreqs and a free pCPU. NaN when the
   * backend cannot tell.
   */
  phaseCpuMs: number;
  /** Guest instructions retired in the phase. */
  phaseInstructions: number;
  /** Counter deltas over the phase. */
  counters: Counters;
  /** Explanation quantities (explain.ts keys) the backend could not measure: reported as missing, never 0. */
  missing?: string[];
  /** Host milliseconds from the start of the job to the guest's power-off. */
  totalMs: number;
  totalInstructions: number;
  /** The last 2000 characters the guest printed (for error messages). */
  consoleTail: string;
}
