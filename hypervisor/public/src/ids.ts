/**
 * Branded id types for Xen's integer handles (xen.h, grant_table.h, event_channel.h), so that a
 * port can never be passed where a grant reference is expected. All are plain numbers at run
 * time; the brand exists only for the type checker.
 */
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** `domid_t`: a u16; ordinary domains are 0..0x7FEF (DOMID_FIRST_RESERVED - 1). */
export type DomId = Brand<number, 'DomId'>;
/** `evtchn_port_t`: a u32; port 0 is reserved and never handed out. */
export type Port = Brand<number, 'Port'>;
/** `grant_ref_t`: a u32 index into the granting domain's grant table. */
export type GrantRef = Brand<number, 'GrantRef'>;
/** `grant_handle_t`: the mapper's handle for one grant mapping (its maptrack index). */
export type GrantHandle = Brand<number, 'GrantHandle'>;
/** Machine frame number: a 4 KiB frame of the host's machine-memory file. */
export type Mfn = Brand<number, 'Mfn'>;
/** Guest frame number: a frame in a domain's pseudo-physical address space (P2M key). */
export type Gfn = Brand<number, 'Gfn'>;
/** vCPU index within a domain. */
export type VcpuId = Brand<number, 'VcpuId'>;

export const DomId = (n: number): DomId => n as DomId;
export const Port = (n: number): Port => n as Port;
export const GrantRef = (n: number): GrantRef => n as GrantRef;
export const GrantHandle = (n: number): GrantHandle => n as GrantHandle;
export const Mfn = (n: number): Mfn => n as Mfn;
export const Gfn = (n: number): Gfn => n as Gfn;
export const VcpuId = (n: number): VcpuId => n as VcpuId;

/** 4 KiB pages everywhere (XEN_PAGE_SIZE). */
export const XEN_PAGE_SHIFT = 12;
export const XEN_PAGE_SIZE = 4096;
