/**
 * The toolstack protocol: what `xl` asks dom0's toolstack service (the libxl role) over
 * `<run>/dom0/toolstack.sock`. Frames are the one `wire` module's (length-prefixed msgpack,
 * `id` echoed). xl parses the xl.cfg file itself (as xl does before calling libxl) and sends
 * the domain configuration as plain data; the service builds, tears down and supervises
 * domains. Console bytes never travel here: each domain's console has its own socket
 * (`consoleSocket`), as xenconsoled's pty is separate from libxl.
 *
 *   xl                                         dom0 toolstack
 *    | -- { id, op: 'create', arg } ---------->  | build; if this connection drops before the
 *    | <- { id, ok: true, ret: { domid } } ----  |   reply, the half-built domain is rolled back
 *    | -- { id, op: 'destroy', arg } --------->  |
 *    | <- { id, ok: false, error: '...' } -----  | errors are sentences for the user
 */
import { join } from 'node:path';
import type { HostLayout } from './host.ts';

export type ToolstackDomainAction = 'destroy' | 'restart' | 'preserve' | 'rename-restart' | 'coredump-destroy' | 'coredump-restart' | 'soft-reset';

/** One `disk = [...]` entry, resolved (libxl_device_disk). */
export interface ToolstackDisk {
  /** Absolute path of the image. */
  target: string;
  /** As written (`xvda`). */
  vdev: string;
  /** The xenstore device id (`virtual-device`, 51712 for xvda). */
  devid: number;
  access: 'ro' | 'rw';
  devtype: 'disk' | 'cdrom';
  format: string;
  /** The text of the spec, for error messages. */
  spec: string;
}

/** The domain configuration xl sends (a subset of libxl_domain_config). */
export interface ToolstackDomainConfig {
  /** The config file, for messages. */
  file: string;
  name: string;
  type: 'pv' | 'hvm' | 'pvh';
  /** MiB. */
  memory: number;
  maxmem: number;
  vcpus: number;
  kernel?: string;
  disks: ToolstackDisk[];
  onPoweroff: ToolstackDomainAction;
  onReboot: ToolstackDomainAction;
  onCrash: ToolstackDomainAction;
  uuid?: string;
  /** HVM boot order and anything else a builder wants, verbatim from the file. */
  extra?: Record<string, unknown>;
}

export interface ToolstackDomainSummary {
  domid: number;
  name: string;
  uuid: string;
  type: string;
  consoleSocket: string;
  consoleLog: string;
}

export interface ToolstackBlockDevice {
  vdev: string;
  devid: number;
  backendId: number;
  frontendState: number | null;
  backendState: number | null;
  eventChannel: number | null;
  ringRef: number | null;
  backendPath: string;
  target: string;
}

/**
 * A domain's virtual block devices' backend counters (blkback's `BlkbackCounters`, its grant
 * copy/map hypercall counters and, when negotiated, its persistent-grant counters), live while
 * the device is connected, or the last values once it disconnected (kept for a while after the
 * domain went, so a benchmark can read them after the guest powered off).
 */
export interface ToolstackVbdCounters {
  devid: number;
  live: boolean;
  counters: Record<string, number>;
}

/** Every toolstack operation: [argument, result]. */
export interface ToolstackTable {
  create: [{ config: ToolstackDomainConfig; paused?: boolean }, ToolstackDomainSummary];
  destroy: [{ domid: number }, 0];
  /** Writes `control/shutdown`; with `wait`, replies once the domain is gone (or restarted). */
  shutdown: [{ domid: number; reason: 'poweroff' | 'reboot'; wait?: boolean; timeoutMs?: number }, 0];
  'block-list': [{ domid: number }, ToolstackBlockDevice[]];
  /** xenlab: backend counters of the domain's devices (dom0's side of a benchmark's explanation). */
  'device-counters': [{ domid: number }, { vbd: ToolstackVbdCounters[] }];
  domain: [{ domid: number }, ToolstackDomainSummary];
  domains: [null, ToolstackDomainSummary[]];
}

export type ToolstackOp = keyof ToolstackTable;
export type ToolstackArg<O extends ToolstackOp> = ToolstackTable[O][0];
export type ToolstackRet<O extends ToolstackOp> = ToolstackTable[O][1];

export type ToolstackReply = { id: number; ok: true; ret: unknown } | { id: number; ok: false; error: string; errno?: string };

/** The control socket in a host's run directory. */
export const toolstackSocket = (layout: HostLayout): string => join(layout.dom0Dir, 'toolstack.sock');
/** Per-domain console sockets (`xl console`) live here. */
export const consoleSocketDir = (layout: HostLayout): string => join(layout.dom0Dir, 'console');

/**
 * What the PV domain builder hands the domain's kernel process (the shim), xenlab's form of
 * Xen's `start_info` (xen.h): as JSON in `<run>/dom0/domains/<domid>/start-info.json`, with
 * the set-up token in the environment (`XENLAB_DOMAIN_TOKEN`), never in a file.
 */
export interface PvStartInfo {
  domid: number;
  name: string;
  /** Pages of RAM, GFNs 0..nr_pages-1. */
  nr_pages: number;
  /** The P2M (Xen's `mfn_list`): mfn_list[gfn]. */
  mfn_list: number[];
  /** The xenstore page (also grant ref 1) and its event channel in this domain. */
  store_gfn: number;
  store_evtchn: number;
  /** The console page (also grant ref 0) and its event channel. */
  console_gfn: number;
  console_evtchn: number;
  /** First GFN the kernel may use for itself (rings, bounce frames); below it is the program's. */
  kernel_gfn_start: number;
  /** `kernel = "..."`: a flat image for 0000:7C00; absent: boot the first disk's boot sector. */
  kernel?: string;
  /** Conventional memory the program sees (INT 12h), KiB. */
  program_kib: number;
  /** The hypervisor's socket. */
  hypervisor_socket: string;
  /**
   * xenlab: INT 13h writes are write-through (a BLKIF_OP_FLUSH_DISKCACHE before the call
   * returns); default true. From xl.cfg `xenlab_write_through = 0|1`.
   */
  write_through?: boolean;
}
