/** event_channel.h: EVTCHNOP sub-ops, EVTCHNSTAT, VIRQs (fact sheet §7). */
import { layout } from './layout.ts';

export const EVTCHNOP = {
  bind_interdomain: 0,
  bind_virq: 1,
  bind_pirq: 2,
  close: 3,
  send: 4,
  status: 5,
  alloc_unbound: 6,
  bind_ipi: 7,
  bind_vcpu: 8,
  unmask: 9,
  reset: 10,
  init_control: 11,
  expand_array: 12,
  set_priority: 13,
} as const;
export type EventChannelOpCmd = keyof typeof EVTCHNOP;

export const EVTCHNSTAT = {
  closed: 0,
  unbound: 1,
  interdomain: 2,
  pirq: 3,
  virq: 4,
  ipi: 5,
} as const;
export type EvtchnStatName = keyof typeof EVTCHNSTAT;

export const VIRQ = {
  TIMER: 0,
  DEBUG: 1,
  CONSOLE: 2,
  DOM_EXC: 3,
  TBUF: 4,
  DEBUGGER: 6,
  XENOPROF: 7,
  CON_RING: 8,
  PCPU_STATE: 9,
  MEM_EVENT: 10,
  ARGO: 11,
  ENOMEM: 12,
  XENPMU: 13,
} as const;
export type VirqName = keyof typeof VIRQ;
export const NR_VIRQS = 24;
/** Per-vCPU VIRQs; all others are global and bind on vCPU 0. */
export const VIRQ_PER_VCPU: ReadonlySet<number> = new Set([VIRQ.TIMER, VIRQ.DEBUG, VIRQ.XENOPROF, VIRQ.XENPMU]);

/** 2-level ABI, 64-bit guests: 8 x 8 x 64 ports. */
export const EVTCHN_2L_NR_CHANNELS = 4096;

export const evtchn_status = layout('evtchn_status', 24, {
  dom: { offset: 0, size: 2, type: 'u16', writer: 'in' },
  port: { offset: 4, size: 4, type: 'u32', writer: 'in' },
  status: { offset: 8, size: 4, type: 'u32', writer: 'out' },
  vcpu: { offset: 12, size: 4, type: 'u32', writer: 'out' },
  u_dom: { offset: 16, size: 2, type: 'u16', writer: 'out' },
  u_port: { offset: 20, size: 4, type: 'u32', writer: 'out' },
  u_virq: { offset: 16, size: 4, type: 'u32', writer: 'out' },
});
