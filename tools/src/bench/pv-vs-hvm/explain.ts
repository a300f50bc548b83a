/**
 * Turns a run's raw counter deltas into the quantities that explain a PV vs HVM difference, with
 * the same names on both paths, normalised per unit of work (per MiB moved, per operation...):
 *
 *   vmExits         HVM: every exit of the vCPU (port I/O, MMIO, HLT). PV: none (the guest's
 *                   privileged operations are trap bounces and hypercalls instead).
 *   ioreqs          HVM: exits carried to qemu-dm as an ioreq (all but the PIC/PIT ports the
 *                   hypervisor serves itself).
 *   trapBounces     PV: software interrupts the hypervisor bounced to the shim (INT 10h/13h/1Ah...).
 *   hypercalls      PV: EVTCHNOP_send (both directions, disk and console) + GNTTABOP_copy /
 *                   map / unmap calls. HVM: qemu-dm's EVTCHNOP_send answering each ioreq (one per
 *                   ioreq; derived from the ioreq count, the in-process harness has no evtchn).
 *   notifySent / notifySuppressed   event notifications sent, and avoided by hold-off (PV rings).
 *                   HVM: two per ioreq (hypervisor → qemu-dm, qemu-dm → hypervisor), derived.
 *   ringRequests    PV: blkif requests on the shared ring. HVM: ATA commands.
 *   grantOps        PV: grant entries made and ended + grant copy ops + maps + unmaps.
 *   flushes         PV: BLKIF_OP_FLUSH_DISKCACHE requests (blkback fdatasyncs the image): the shim's
 *                   INT 13h writes are write-through by default. HVM: 0 (the BIOS issues no FLUSH
 *                   CACHE and qemu-dm's ATA model writes without syncing).
 *   bytesCopied     bytes copied between the backend/device model and guest memory: PV with
 *                   grant copy, every byte once more (disk → dom0 scratch → guest); with grant map,
 *                   0 (the disk is read straight into the mapped page). HVM: qemu-dm writes every
 *                   sector into guest RAM (DMA or `rep insw`).
 *   instructions    guest instructions in the phase (HVM includes the virtual BIOS's driver code).
 *
 * On a host (host-counters.ts) the same raw keys come from the processes' own counters, except
 * `hypercalls`, which is then counted (`host.hypercalls`: the domain's own hypercalls, plus
 * dom0's grant hypercalls for it (PV) or qemu-dm's IRQ-level calls (HVM)): event sends there
 * mostly take the shared-memory fast path and are no hypercalls at all.
 */
import type { Counters, GuestPath } from './protocol.ts';

export const EXPLAIN_KEYS = [
  'vmExits', 'ioreqs', 'trapBounces', 'hypercalls', 'notifySent', 'notifySuppressed', 'ringRequests', 'grantOps', 'flushes', 'bytesCopied', 'instructions',
] as const;
export type ExplainKey = (typeof EXPLAIN_KEYS)[number];

export const EXPLAIN_LABELS: Record<ExplainKey, string> = {
  vmExits: 'VM exits',
  ioreqs: 'ioreqs to qemu-dm',
  trapBounces: 'trap bounces',
  hypercalls: 'hypercalls',
  notifySent: 'notifications sent',
  notifySuppressed: 'notifications suppressed',
  ringRequests: 'ring requests / ATA cmds',
  grantOps: 'grant operations',
  flushes: 'disk flushes',
  bytesCopied: 'bytes copied',
  instructions: 'guest instructions',
};

export type Explanation = Record<ExplainKey, number>;

const sum = (c: Counters, prefix: string): number =>
  Object.entries(c).reduce((a, [k, v]) => (k.startsWith(prefix) ? a + v : a), 0);
const g = (c: Counters, k: string): number => c[k] ?? 0;

/** The explanation quantities of one run (absolute, over the measured phase). */
export function explain(path: GuestPath, c: Counters, instructions: number): Explanation {
  if (path === 'pv') {
    return {
      vmExits: 0,
      ioreqs: 0,
      trapBounces: sum(c, 'trap.'),
      hypercalls: c['host.hypercalls'] ?? g(c, 'evtchn.frontToBack') + g(c, 'evtchn.backToFront') + g(c, 'evtchn.consoleSends') + g(c, 'gntcopy.calls') + g(c, 'gntmap.mapCalls') + g(c, 'gntmap.unmapCalls'),
      notifySent: g(c, 'blkfront.notificationsSent') + g(c, 'blkback.notificationsSent') + g(c, 'console.notificationsSent'),
      notifySuppressed: g(c, 'blkfront.notificationsSuppressed') + g(c, 'blkback.notificationsSuppressed'),
      ringRequests: g(c, 'blkfront.requests'),
      grantOps: g(c, 'grant.granted') + g(c, 'grant.ended') + g(c, 'gntcopy.ops') + g(c, 'gntmap.maps') + g(c, 'gntmap.unmaps'),
      flushes: g(c, 'blkback.flushes'),
      bytesCopied: g(c, 'gntcopy.bytes'),
      instructions,
    };
  }
  return {
    vmExits: g(c, 'exits.total'),
    ioreqs: g(c, 'exits.ioreq'),
    trapBounces: 0,
    hypercalls: c['host.hypercalls'] ?? g(c, 'exits.ioreq'),
    notifySent: 2 * g(c, 'exits.ioreq'),
    notifySuppressed: 0,
    ringRequests: g(c, 'ata.commands'),
    grantOps: 0,
    flushes: 0,
    bytesCopied: (g(c, 'ata.sectorsRead') + g(c, 'ata.sectorsWritten')) * 512,
    instructions,
  };
}

/** Divides every quantity by `units` (MiB, operations...). */
export function perUnit(e: Explanation, units: number): Explanation {
  const out = {} as Explanation;
  for (const k of EXPLAIN_KEYS) out[k] = units > 0 ? e[k] / units : NaN;
  return out;
}

/** HVM exits by port (`exit.pio:1f7` → `pio:1f7`), largest first, and by device (`dev.ata0.exits`). */
export function exitsByPort(c: Counters): Array<{ port: string; exits: number }> {
  return Object.entries(c)
    .filter(([k]) => k.startsWith('exit.'))
    .map(([k, v]) => ({ port: k.slice(5), exits: v }))
    .sort((a, b) => b.exits - a.exits);
}

export function exitsByDevice(c: Counters): Array<{ device: string; exits: number }> {
  return Object.entries(c)
    .filter(([k]) => k.startsWith('dev.') && k.endsWith('.exits'))
    .map(([k, v]) => ({ device: k.slice(4, -6), exits: v }))
    .sort((a, b) => b.exits - a.exits);
}

/** PV trap bounces by vector (`trap.int13` → `int13`). */
export function trapsByVector(c: Counters): Array<{ vector: string; traps: number }> {
  return Object.entries(c)
    .filter(([k]) => k.startsWith('trap.'))
    .map(([k, v]) => ({ vector: k.slice(5), traps: v }))
    .sort((a, b) => b.traps - a.traps);
}
