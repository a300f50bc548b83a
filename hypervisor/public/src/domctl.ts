/** domctl.h (subset) and sysctl.h (subset): tool-stack control operations (fact sheet §11). */
import { layout } from './layout.ts';

export const XEN_DOMCTL_INTERFACE_VERSION = 0x15;
export const XEN_SYSCTL_INTERFACE_VERSION = 0x15;

export const XEN_DOMCTL = {
  createdomain: 1,
  destroydomain: 2,
  pausedomain: 3,
  unpausedomain: 4,
  getdomaininfo: 5,
  getmemlist: 6,
  setvcpuaffinity: 9,
  shadow_op: 10,
  max_mem: 11,
  setvcpucontext: 12,
  getvcpucontext: 13,
  getvcpuinfo: 14,
  max_vcpus: 15,
  scheduler_op: 16,
  setdomainhandle: 17,
  settimeoffset: 24,
  getvcpuaffinity: 25,
  resumedomain: 27,
  sendtrigger: 28,
  subscribe: 29,
  set_target: 46,
  soft_reset: 79,
} as const;
export type DomctlCmd = keyof typeof XEN_DOMCTL;

export const XEN_DOMCTL_CDF = {
  hvm: 1,
  hap: 2,
  s3_integrity: 4,
  oos_off: 8,
  xs_domain: 16,
  iommu: 32,
  nested_virt: 64,
  vpmu: 128,
} as const;

export const XEN_DOMINF = {
  dying: 0x1,
  hvm_guest: 0x2,
  shutdown: 0x4,
  paused: 0x8,
  blocked: 0x10,
  running: 0x20,
  debugged: 0x40,
  xs_domain: 0x80,
  hap: 0x100,
} as const;
export const XEN_DOMINF_shutdownshift = 16;
export const XEN_DOMINF_shutdownmask = 0xff;

export const XEN_VCPUAFFINITY = { HARD: 1, SOFT: 2, FORCE: 4 } as const;

export const XEN_SCHEDULER = { CREDIT: 5, CREDIT2: 6, ARINC653: 7, RTDS: 8, NULL: 9 } as const;
export const XEN_DOMCTL_SCHEDOP = { putinfo: 0, getinfo: 1, putvcpuinfo: 2, getvcpuinfo: 3 } as const;
export const XEN_SYSCTL_SCHEDOP = { putinfo: 0, getinfo: 1 } as const;

export const xen_domctl = layout('xen_domctl', 144, {
  cmd: { offset: 0, size: 4, type: 'u32', writer: 'in' },
  interface_version: { offset: 4, size: 4, type: 'u32', writer: 'in' },
  domain: { offset: 8, size: 2, type: 'u16', writer: 'both' },
  u: { offset: 16, size: 128, type: 'bytes', writer: 'both' },
});

export const xen_domctl_createdomain = layout('xen_domctl_createdomain', 64, {
  ssidref: { offset: 0, size: 4, type: 'u32', writer: 'in' },
  handle: { offset: 4, size: 16, type: 'bytes', writer: 'in' },
  flags: { offset: 20, size: 4, type: 'u32', writer: 'in' },
  iommu_opts: { offset: 24, size: 4, type: 'u32', writer: 'in' },
  max_vcpus: { offset: 28, size: 4, type: 'u32', writer: 'in' },
  max_evtchn_port: { offset: 32, size: 4, type: 'u32', writer: 'in' },
  max_grant_frames: { offset: 36, size: 4, type: 'i32', writer: 'in' },
  max_maptrack_frames: { offset: 40, size: 4, type: 'i32', writer: 'in' },
  grant_opts: { offset: 44, size: 4, type: 'u32', writer: 'in' },
  vmtrace_size: { offset: 48, size: 4, type: 'u32', writer: 'in' },
  cpupool_id: { offset: 52, size: 4, type: 'u32', writer: 'in' },
  arch: { offset: 56, size: 8, type: 'bytes', writer: 'in' },
});

export const xen_domctl_getdomaininfo = layout('xen_domctl_getdomaininfo', 112, {
  domain: { offset: 0, size: 2, type: 'u16', writer: 'out' },
  pad1: { offset: 2, size: 2, type: 'u16' },
  flags: { offset: 4, size: 4, type: 'u32', writer: 'out' },
  tot_pages: { offset: 8, size: 8, type: 'u64', writer: 'out' },
  max_pages: { offset: 16, size: 8, type: 'u64', writer: 'out' },
  outstanding_pages: { offset: 24, size: 8, type: 'u64', writer: 'out' },
  shr_pages: { offset: 32, size: 8, type: 'u64', writer: 'out' },
  paged_pages: { offset: 40, size: 8, type: 'u64', writer: 'out' },
  shared_info_frame: { offset: 48, size: 8, type: 'u64', writer: 'out' },
  cpu_time: { offset: 56, size: 8, type: 'u64', writer: 'out', unit: 'ns' },
  nr_online_vcpus: { offset: 64, size: 4, type: 'u32', writer: 'out' },
  max_vcpu_id: { offset: 68, size: 4, type: 'u32', writer: 'out' },
  ssidref: { offset: 72, size: 4, type: 'u32', writer: 'out' },
  handle: { offset: 76, size: 16, type: 'bytes', writer: 'out' },
  cpupool: { offset: 92, size: 4, type: 'u32', writer: 'out' },
  gpaddr_bits: { offset: 96, size: 1, type: 'u8', writer: 'out' },
  pad2: { offset: 97, size: 7, type: 'bytes' },
  arch_config: { offset: 104, size: 8, type: 'u64', writer: 'out' },
});

/** sysctl sub-ops (sysctl.h). */
export const XEN_SYSCTL = {
  readconsole: 1,
  tbuf_op: 2,
  physinfo: 3,
  sched_id: 4,
  perfc_op: 5,
  getdomaininfolist: 6,
  debug_keys: 7,
  getcpuinfo: 8,
  availheap: 9,
  cputopoinfo: 16,
  numainfo: 17,
  cpupool_op: 18,
  scheduler_op: 19,
} as const;
export type SysctlCmd = keyof typeof XEN_SYSCTL;

/** `XEN_SYSCTL_PHYSCAP_*` (4.17). */
export const XEN_SYSCTL_PHYSCAP = {
  hvm: 1 << 0,
  pv: 1 << 1,
  directio: 1 << 2,
  hap: 1 << 3,
  shadow: 1 << 4,
  iommu_hap_pt_share: 1 << 5,
  vmtrace: 1 << 6,
  vpmu: 1 << 7,
  gnttab_v1: 1 << 8,
  gnttab_v2: 1 << 9,
} as const;

/** Credit scheduler limits (sysctl.h; fact sheet §14). */
export const XEN_SYSCTL_CSCHED = {
  TSLICE_MIN: 1,
  TSLICE_MAX: 1000,
  RATELIMIT_MIN_US: 100,
  RATELIMIT_MAX_US: 500000,
  MGR_DLY_MAX_US: 100000,
} as const;
