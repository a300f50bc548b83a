/**
 * grant_table.h, v1 only: entry layout, GTF flags, GNTTABOP sub-ops, GNTMAP flags, GNTST statuses
 * (fact sheet §6), plus accessors for a grant frame shared between the granting guest (which
 * fills entries) and the hypervisor (which sets GTF_reading/GTF_writing while a grant is in use).
 */
import { layout } from './layout.ts';
import type { DomId, Gfn, GrantRef } from './ids.ts';

/** `grant_entry_v1`, 8 bytes; 512 entries per 4 KiB grant frame. */
export const grant_entry_v1 = layout('grant_entry_v1', 8, {
  /** GTF_*: the guest writes type and permission bits, Xen sets reading/writing. */
  flags: { offset: 0, size: 2, type: 'u16', writer: 'both' },
  /** The domain being granted access. */
  domid: { offset: 2, size: 2, type: 'u16', writer: 'guest' },
  /** The GFN being shared. */
  frame: { offset: 4, size: 4, type: 'u32', writer: 'guest' },
});
export const GRANT_ENTRIES_PER_FRAME = 4096 / grant_entry_v1.size;

export const GNTTAB_NR_RESERVED_ENTRIES = 8;
/** Reserved entries the toolstack seeds: 0 = console ring page, 1 = xenstore ring page. */
export const GNTTAB_RESERVED_CONSOLE = 0 as GrantRef;
export const GNTTAB_RESERVED_XENSTORE = 1 as GrantRef;
/** The hypervisor's default limit of grant frames per domain. */
export const GNTTAB_DEFAULT_MAX_FRAMES = 64;

export const GTF = {
  invalid: 0,
  permit_access: 1,
  accept_transfer: 2,
  transitive: 3,
  type_mask: 3,
  readonly: 0x4,
  reading: 0x8,
  writing: 0x10,
  PWT: 0x20,
  PCD: 0x40,
  PAT: 0x80,
  sub_page: 0x100,
  transfer_committed: 0x4,
  transfer_completed: 0x8,
} as const;

export const GNTTABOP = {
  map_grant_ref: 0,
  unmap_grant_ref: 1,
  setup_table: 2,
  dump_table: 3,
  transfer: 4,
  copy: 5,
  query_size: 6,
  unmap_and_replace: 7,
  set_version: 8,
  get_status_frames: 9,
  get_version: 10,
  swap_grant_ref: 11,
  cache_flush: 12,
} as const;
export type GrantTableOpCmd = keyof typeof GNTTABOP;

export const GNTMAP = {
  device_map: 1,
  host_map: 2,
  readonly: 4,
  application_map: 8,
  contains_pte: 16,
} as const;

export const GNTCOPY = { source_gref: 1, dest_gref: 2 } as const;

export const GNTST = {
  okay: 0,
  general_error: -1,
  bad_domain: -2,
  bad_gntref: -3,
  bad_handle: -4,
  bad_virt_addr: -5,
  bad_dev_addr: -6,
  no_device_space: -7,
  permission_denied: -8,
  bad_page: -9,
  bad_copy_arg: -10,
  address_too_big: -11,
  eagain: -12,
  no_space: -13,
} as const;
export type GntStatusName = keyof typeof GNTST;
export type GntStatus = (typeof GNTST)[GntStatusName];
export const gntstName = (v: number): string =>
  (Object.keys(GNTST) as GntStatusName[]).find((k) => GNTST[k] === v) ?? `GNTST(${v})`;

/** Wire layouts of the op structs (for byte-level clients and for tests pinning Xen's sizes). */
export const gnttab_map_grant_ref = layout('gnttab_map_grant_ref', 32, {
  host_addr: { offset: 0, size: 8, type: 'u64', writer: 'in' },
  flags: { offset: 8, size: 4, type: 'u32', writer: 'in' },
  ref: { offset: 12, size: 4, type: 'u32', writer: 'in' },
  dom: { offset: 16, size: 2, type: 'u16', writer: 'in' },
  status: { offset: 18, size: 2, type: 'i16', writer: 'out' },
  handle: { offset: 20, size: 4, type: 'u32', writer: 'out' },
  dev_bus_addr: { offset: 24, size: 8, type: 'u64', writer: 'out' },
});
export const gnttab_unmap_grant_ref = layout('gnttab_unmap_grant_ref', 24, {
  host_addr: { offset: 0, size: 8, type: 'u64', writer: 'in' },
  dev_bus_addr: { offset: 8, size: 8, type: 'u64', writer: 'in' },
  handle: { offset: 16, size: 4, type: 'u32', writer: 'in' },
  status: { offset: 20, size: 2, type: 'i16', writer: 'out' },
});
export const gnttab_setup_table = layout('gnttab_setup_table', 24, {
  dom: { offset: 0, size: 2, type: 'u16', writer: 'in' },
  nr_frames: { offset: 4, size: 4, type: 'u32', writer: 'in' },
  status: { offset: 8, size: 2, type: 'i16', writer: 'out' },
  frame_list: { offset: 16, size: 8, type: 'u64', writer: 'in' },
});
export const gnttab_copy = layout('gnttab_copy', 40, {
  source_u: { offset: 0, size: 8, type: 'u64', writer: 'in' },
  source_domid: { offset: 8, size: 2, type: 'u16', writer: 'in' },
  source_offset: { offset: 10, size: 2, type: 'u16', writer: 'in' },
  dest_u: { offset: 16, size: 8, type: 'u64', writer: 'in' },
  dest_domid: { offset: 24, size: 2, type: 'u16', writer: 'in' },
  dest_offset: { offset: 26, size: 2, type: 'u16', writer: 'in' },
  len: { offset: 32, size: 2, type: 'u16', writer: 'in' },
  flags: { offset: 34, size: 2, type: 'u16', writer: 'in' },
  status: { offset: 36, size: 2, type: 'i16', writer: 'out' },
});
export const gnttab_query_size = layout('gnttab_query_size', 16, {
  dom: { offset: 0, size: 2, type: 'u16', writer: 'in' },
  nr_frames: { offset: 4, size: 4, type: 'u32', writer: 'out' },
  max_nr_frames: { offset: 8, size: 4, type: 'u32', writer: 'out' },
  status: { offset: 12, size: 2, type: 'i16', writer: 'out' },
});

/**
 * One grant frame (4 KiB of machine memory) seen as 512 `grant_entry_v1`s. The granting guest
 * uses `grant`/`endAccess`; the hypervisor uses `flagsAtomic` and `casFlags`. Flags are a u16
 * at offset 0 of each 8-byte entry, updated with 16-bit atomics so concurrent writers from other
 * processes see whole values.
 */
export class GrantFrame {
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;

  constructor(buffer: ArrayBufferLike, byteOffset: number) {
    this.u16 = new Uint16Array(buffer, byteOffset, 2048);
    this.u32 = new Uint32Array(buffer, byteOffset, 1024);
  }

  flags(i: number): number {
    return Atomics.load(this.u16, i * 4);
  }
  domid(i: number): DomId {
    return Atomics.load(this.u16, i * 4 + 1) as DomId;
  }
  frame(i: number): Gfn {
    return Atomics.load(this.u32, i * 2 + 1) as Gfn;
  }
  /** Compare-and-swap of the flags word; returns the value found (== expected on success). */
  casFlags(i: number, expected: number, value: number): number {
    return Atomics.compareExchange(this.u16, i * 4, expected, value);
  }

  /** Guest side: fill an entry in Xen's order (domid, frame, barrier, flags). */
  grant(i: number, domid: DomId, frame: Gfn, readonly: boolean): void {
    Atomics.store(this.u16, i * 4 + 1, domid);
    Atomics.store(this.u32, i * 2 + 1, frame);
    // Atomics.store is sequentially consistent: it is the write barrier the protocol asks for.
    Atomics.store(this.u16, i * 4, GTF.permit_access | (readonly ? GTF.readonly : 0));
  }

  /**
   * Guest side: revoke an entry. Succeeds (flags become 0) only while neither GTF_reading nor
   * GTF_writing is set, i.e. nobody has it mapped; returns false otherwise.
   */
  endAccess(i: number): boolean {
    for (;;) {
      const f = this.flags(i);
      if (f & (GTF.reading | GTF.writing)) return false;
      if (this.casFlags(i, f, 0) === f) return true;
    }
  }
}
