/**
 * What blkback needs from the hypervisor's grant table: GNTTABOP_copy between a frontend's
 * granted frame and the backend's own memory (xen/include/public/grant_table.h, fact sheet §6.3).
 * blkback never maps or reads guest memory itself; every byte it moves goes through `copy`, and
 * the hypervisor checks each grant (owner, GTF_permit_access, readonly, the granted domid).
 *
 * The backend's side of each copy lies in `scratch` memory the interface hands out once: for the
 * real hypervisor these are frames of dom0's own memory, so an adapter can name them by GFN in a
 * `gnttab_copy` (`{ gmfn, domid: DOMID_SELF, offset }`). Each op stays inside one 4 KiB page on
 * both sides, as GNTTABOP_copy requires.
 */
import type { DomId, GrantRef } from '@xenlab/xen-public';

export interface GrantCopyOp {
  /** 'from-guest': granted frame -> scratch (a WRITE's data); 'to-guest': scratch -> granted frame (a READ's data). */
  readonly dir: 'from-guest' | 'to-guest';
  /** The granting domain (the frontend). */
  readonly domid: DomId;
  readonly gref: GrantRef;
  /** Byte offset in the granted frame. */
  readonly offset: number;
  readonly len: number;
  /** Byte offset in the scratch buffer; `scratchOffset % 4096 + len <= 4096`. */
  readonly scratchOffset: number;
}

export interface GrantCopyInterface {
  /** Page-aligned backend memory of `pages` × 4096 bytes that copies read from or write to. Called once per device. */
  scratch(pages: number): Uint8Array;
  /** GNTTABOP_copy: performs each op, returning its GNTST_* status (0 = okay), in order. */
  copy(ops: readonly GrantCopyOp[]): readonly number[] | Promise<readonly number[]>;
}

/** One GNTTABOP_map_grant_ref a backend asks for. */
export interface GrantMapOp {
  readonly domid: DomId;
  readonly gref: GrantRef;
  /** GNTMAP_readonly: the backend only reads the page (the data of a WRITE request). */
  readonly readonly: boolean;
}

export interface GrantMapResult {
  /** GNTST_* (0 = okay). */
  readonly status: number;
  /** The grant handle to unmap with (meaningful when status is okay). */
  readonly handle: number;
  /** The granted frame, 4096 bytes, as this process sees it (a view of machine memory); null on failure. */
  readonly page: Uint8Array | null;
}

/**
 * Grant mapping, the alternative to copying: the hypervisor pins the frontend's grant entries
 * (GTF_reading/GTF_writing) and tells the backend which machine frame to use; the backend reads or
 * writes the disk straight into the guest's page, saving one memcpy per byte, at the cost of an
 * unmap per request. For the real hypervisor: GNTTABOP_map_grant_ref with GNTMAP_host_map, then a
 * view of machine memory at `dev_bus_addr`; GNTTABOP_unmap_grant_ref by handle.
 */
export interface GrantMapInterface {
  map(ops: readonly GrantMapOp[]): readonly GrantMapResult[] | Promise<readonly GrantMapResult[]>;
  /** GNTST_* per handle. */
  unmap(handles: readonly number[]): readonly number[] | Promise<readonly number[]>;
}
