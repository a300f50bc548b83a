/**
 * xen.h: hypercall numbers, reserved domain ids, console_io and vcpu_op sub-ops, runstates.
 * Values from the fact sheet (reference/xen-abi.md §8, §10) — Xen 4.17, x86_64.
 */
import { DomId } from './ids.ts';

/** `__HYPERVISOR_*` hypercall numbers. */
export const HYPERVISOR = {
  set_trap_table: 0,
  mmu_update: 1,
  set_gdt: 2,
  stack_switch: 3,
  set_callbacks: 4,
  fpu_taskswitch: 5,
  sched_op_compat: 6,
  platform_op: 7,
  set_debugreg: 8,
  get_debugreg: 9,
  update_descriptor: 10,
  memory_op: 12,
  multicall: 13,
  update_va_mapping: 14,
  set_timer_op: 15,
  event_channel_op_compat: 16,
  xen_version: 17,
  console_io: 18,
  physdev_op_compat: 19,
  grant_table_op: 20,
  vm_assist: 21,
  update_va_mapping_otherdomain: 22,
  iret: 23,
  vcpu_op: 24,
  set_segment_base: 25,
  mmuext_op: 26,
  xsm_op: 27,
  nmi_op: 28,
  sched_op: 29,
  callback_op: 30,
  xenoprof_op: 31,
  event_channel_op: 32,
  physdev_op: 33,
  hvm_op: 34,
  sysctl: 35,
  domctl: 36,
  kexec_op: 37,
  tmem_op: 38,
  argo_op: 39,
  xenpmu_op: 40,
  dm_op: 41,
  hypfs_op: 42,
} as const;
export type HypercallName = keyof typeof HYPERVISOR;

/** Reserved domids (`DOMID_*`). */
export const DOMID_FIRST_RESERVED = DomId(0x7ff0);
export const DOMID_SELF = DomId(0x7ff0);
export const DOMID_IO = DomId(0x7ff1);
export const DOMID_XEN = DomId(0x7ff2);
export const DOMID_COW = DomId(0x7ff3);
export const DOMID_INVALID = DomId(0x7ff4);
export const DOMID_IDLE = DomId(0x7fff);
export const DOMID_MASK = 0x7fff;

/** `CONSOLEIO_*` (console_io hypercall). */
export const CONSOLEIO = { write: 0, read: 1 } as const;
export type ConsoleIoCmd = keyof typeof CONSOLEIO;

/** `VCPUOP_*` (vcpu.h). */
export const VCPUOP = {
  initialise: 0,
  up: 1,
  down: 2,
  is_up: 3,
  get_runstate_info: 4,
} as const;
export type VcpuOpCmd = keyof typeof VCPUOP;

/** `RUNSTATE_*` (vcpu.h): index into `vcpu_runstate_info.time[]`. */
export const RUNSTATE = { running: 0, runnable: 1, blocked: 2, offline: 3 } as const;
export type RunstateName = keyof typeof RUNSTATE;

/** `XEN_LEGACY_MAX_VCPUS`: vcpu_info slots in shared_info. */
export const XEN_LEGACY_MAX_VCPUS = 32;

/** `XENVER_*` (version.h), the sub-ops tools use. */
export const XENVER = { version: 0, extraversion: 1, compile_info: 2, capabilities: 3, changeset: 4 } as const;
/** The Xen version xenlab reports (fact sheet: Xen 4.17). */
export const XEN_VERSION = { major: 4, minor: 17, extra: '-xenlab' } as const;
