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

/** Every toolstack operation: [argument, result]. */
export interface ToolstackTable {
  create: [{ config: ToolstackDomainConfig; paused?: boolean }, ToolstackDomainSummary];
  destroy: [{ domid: number }, 0];
  /** Writes `control/shutdown`; with `wait`, replies once the domain is gone (or restarted). */
  shutdown: [{ domid: number; reason: 'poweroff' | 'reboot'; wait?: boolean; timeoutMs?: number }, 0];
  'block-list': [{ domid: number }, ToolstackBlockDevice[]];
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
