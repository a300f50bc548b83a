/** memory.h: `memory_op` sub-ops and constants (fact sheet §10.2). */
import { layout } from './layout.ts';

export const XENMEM = {
  increase_reservation: 0,
  decrease_reservation: 1,
  maximum_ram_page: 2,
  current_reservation: 3,
  maximum_reservation: 4,
  machphys_mfn_list: 5,
  populate_physmap: 6,
  add_to_physmap: 7,
  memory_map: 9,
  machine_memory_map: 10,
  exchange: 11,
  machphys_mapping: 12,
  set_memory_map: 13,
  maximum_gpfn: 14,
  remove_from_physmap: 15,
  set_pod_target: 16,
  get_pod_target: 17,
  add_to_physmap_batch: 23,
  claim_pages: 24,
  acquire_resource: 28,
} as const;
export type MemoryOpCmd = keyof typeof XENMEM;

/** `XENMEMF_populate_on_demand`; bits 0-7 of mem_flags are address bits. */
export const XENMEMF_populate_on_demand = 0x10000;

/** `XENMAPSPACE_*` for add_to_physmap. */
export const XENMAPSPACE = {
  shared_info: 0,
  grant_table: 1,
  gmfn: 2,
  gmfn_range: 3,
  gmfn_foreign: 4,
  dev_mmio: 5,
} as const;
export const XENMAPIDX_grant_table_status = 0x80000000;

/** `XENMEM_resource_*` types for acquire_resource. */
export const XENMEM_resource = { ioreq_server: 0, grant_table: 1, vmtrace_buf: 2 } as const;

/** `xen_memory_reservation`, 32 bytes. */
export const xen_memory_reservation = layout('xen_memory_reservation', 32, {
  extent_start: { offset: 0, size: 8, type: 'u64', writer: 'in' },
  nr_extents: { offset: 8, size: 8, type: 'u64', writer: 'in' },
  extent_order: { offset: 16, size: 4, type: 'u32', writer: 'in' },
  mem_flags: { offset: 20, size: 4, type: 'u32', writer: 'in' },
  domid: { offset: 24, size: 2, type: 'u16', writer: 'in' },
});

/** `xen_add_to_physmap`, 24 bytes. */
export const xen_add_to_physmap = layout('xen_add_to_physmap', 24, {
  domid: { offset: 0, size: 2, type: 'u16', writer: 'in' },
  size: { offset: 2, size: 2, type: 'u16', writer: 'in' },
  space: { offset: 4, size: 4, type: 'u32', writer: 'in' },
  idx: { offset: 8, size: 8, type: 'u64', writer: 'in' },
  gpfn: { offset: 16, size: 8, type: 'u64', writer: 'in' },
});
