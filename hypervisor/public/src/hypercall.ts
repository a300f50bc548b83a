/**
 * xenlab's hypercall protocol: what a process acting for a domain sends the hypervisor over its
 * unix socket (the stand-in for a `syscall`/`vmcall` into Xen). One table names every hypercall
 * and sub-op with its argument and result, after Xen's public headers; arguments that Xen passes
 * as guest pointers travel as arrays, and outputs Xen writes back into the argument come back in
 * the result.
 *
 *   client                                  hypervisor
 *     | -- { id, setup: { token } } ---------> |  binds this connection to one domain, once
 *     | <- { id, ok: true, ret: SetupInfo } -- |
 *     | -- { id, hypercall, cmd, arg } ------> |  dispatch table[hypercall][cmd](caller, arg)
 *     | <- { id, ok: true, ret } ------------- |  or { id, ok: false, errno: 'EINVAL', ret: -22 }
 */
import type { XenErrnoName } from './errno.ts';

export interface Reservation {
  /** DOMID_SELF or a domid (privileged callers only for other domains). */
  domid: number;
  /** GFNs: to populate (populate_physmap/increase_reservation) or to free (decrease_reservation). */
  extent_start: number[];
  extent_order?: number;
  mem_flags?: number;
}

export interface GnttabMapArg {
  flags: number;
  ref: number;
  dom: number;
  host_addr?: number;
}
export interface GnttabMapResult {
  status: number;
  handle: number;
  /** Machine address of the mapped frame (mfn << 12): where to find it in machine memory. */
  dev_bus_addr: number;
}
export interface GnttabCopyPtr {
  /** A grant ref (with GNTCOPY_*_gref) or the caller's own GFN. */
  ref?: number;
  gmfn?: number;
  domid: number;
  offset: number;
}
export interface GnttabCopyArg {
  source: GnttabCopyPtr;
  dest: GnttabCopyPtr;
  len: number;
  flags: number;
}

/** Where a bound interdomain channel's far end can be kicked directly (no hypervisor round trip). */
export interface EvtchnNotify {
  /** The remote domain and port that `send` would mark pending. */
  remote_dom: number;
  remote_port: number;
  /** Byte offset in machine memory of the remote domain's shared_info page. */
  shared_info_addr: number;
  /** vCPU of the remote port (whose vcpu_info selector to set). */
  remote_vcpu: number;
  /** Byte offset in machine memory of the remote domain's doorbell (64 bytes). */
  doorbell_addr: number;
  /** Byte offset in machine memory of the 32-bit word that stays equal to `generation` while bound. */
  bound_addr: number;
  generation: number;
}

export interface EvtchnStatusResult {
  status: number;
  vcpu: number;
  /** unbound: allowed remote dom; interdomain: remote dom and port; virq: the VIRQ. */
  dom?: number;
  port?: number;
  virq?: number;
}

export interface DomainInfo {
  domain: number;
  flags: number;
  tot_pages: number;
  max_pages: number;
  outstanding_pages: number;
  shr_pages: number;
  paged_pages: number;
  shared_info_frame: number;
  /** Nanoseconds summed over all vCPUs. */
  cpu_time: number;
  nr_online_vcpus: number;
  /** 0xFFFFFFFF when there are no vCPUs. */
  max_vcpu_id: number;
  ssidref: number;
  /** UUID, 16 bytes as 32 hex digits. */
  handle: string;
  cpupool: number;
  gpaddr_bits: number;
}

export interface VcpuInfoResult {
  online: number;
  blocked: number;
  running: number;
  cpu_time: number;
  cpu: number;
}

export interface PhysInfo {
  threads_per_core: number;
  cores_per_socket: number;
  nr_cpus: number;
  max_cpu_id: number;
  nr_nodes: number;
  max_node_id: number;
  cpu_khz: number;
  capabilities: number;
  total_pages: number;
  free_pages: number;
  scrub_pages: number;
  outstanding_pages: number;
  max_mfn: number;
  hw_cap: number[];
}

export interface CreateDomainArg {
  /** 0 or >= DOMID_FIRST_RESERVED: pick a free id. Otherwise request that id. */
  domain?: number;
  ssidref?: number;
  handle?: string;
  flags?: number;
  max_vcpus: number;
  max_evtchn_port?: number;
  max_grant_frames?: number;
  max_maptrack_frames?: number;
}

/** Real-mode register file of an x86 vCPU (xenlab's CPU is an 80186); the builder sets CS:IP etc. */
export interface VcpuContext {
  cs?: number;
  ip?: number;
  ss?: number;
  sp?: number;
  ds?: number;
  es?: number;
  flags?: number;
  ax?: number;
  bx?: number;
  cx?: number;
  dx?: number;
  si?: number;
  di?: number;
  bp?: number;
}

/**
 * A PV vCPU's registers at a trapped software interrupt (the register fields of the x86 CPU's
 * state, same names): pushed to the domain's kernel process, returned with `iret`.
 */
export interface TrapFrame {
  ax: number; bx: number; cx: number; dx: number;
  sp: number; bp: number; si: number; di: number;
  cs: number; ds: number; es: number; ss: number;
  ip: number;
  flags: number;
}

/** TrapFrame's fields, in the order frames are laid out (the trap slot) and copied (x86-slice). */
export const TRAP_FRAME_REGS = ['ax', 'bx', 'cx', 'dx', 'sp', 'bp', 'si', 'di', 'cs', 'ds', 'es', 'ss', 'ip', 'flags'] as const satisfies readonly (keyof TrapFrame)[];

/** `set_trap_table` entry (Xen's trap_info, reduced): INT `vector` bounces to the kernel process. */
export interface TrapInfo {
  vector: number;
}

/**
 * Pushed (no `id`) on a domain's owner connection when one of its vCPUs executes a vector in its
 * trap table: the vCPU is blocked until the kernel answers with `iret`.
 */
export interface TrapEvent {
  event: 'trap';
  vcpu: number;
  vector: number;
  kind: 'int' | 'exception';
  frame: TrapFrame;
}

/**
 * xenlab: a snapshot of one domain's counters at a moment a process marked (see
 * `xenlab_counters_mark`): the hypervisor's own, plus what the marking process reported.
 */
export interface DomainCounterMark {
  label: string;
  /** Hypervisor system time of the mark, ns since boot. */
  t_ns: number;
  counters: Record<string, number>;
  extra: Record<string, number>;
}

/**
 * xenlab: one domain's performance counters (`sysctl xenlab_domain_counters`). Keys:
 * `exits.total|io|mmio|hlt|ioreq|hypervisor`, `exit.pio:1f7` / `exit.mmio:b8000` (HVM),
 * `exits.ioreq` / `ioreq.sent` (carried to the device model) and `exits.hypervisor` (PIC/PIT and
 * unclaimed ports answered by the hypervisor), `trap.int13` (PV trap bounces by vector; of them
 * `trap.slot` went through the kernel's trap slot and `trap.parked` waited there for an iret),
 * `hypercall.<hypercall>.<sub-op>` (made on the domain's own connections; `hypercall.int82` from
 * guest code), `evtchn.delivered` (upcalls the hypervisor raised for it: event sends on the
 * shared-memory fast path set the bits themselves and are not seen here), `gnttab.copy.ops|bytes`,
 * `gnttab.map.ops`, `gnttab.unmap.ops` (operations any domain made on this domain's grants).
 * `instructions` (guest instructions retired, counted per slice), `pcpu.slices`, `pcpu.run_ns`
 * (slices on a pCPU worker and the wall-clock ns the worker spent in them), `pcpu.cpu_ns` and
 * `pcpu.os_wait_ns` (the worker thread's CPU time in them and its wait for a host CPU, from
 * Linux's schedstat; absent elsewhere). Counters only grow; a benchmark reads them twice (or marks) and takes the difference.
 */
export interface DomainCounters {
  domain: number;
  /** false: the domain is gone and these are its final values (kept for the last few domains). */
  alive: boolean;
  now_ns: number;
  counters: Record<string, number>;
  marks: DomainCounterMark[];
}

export interface CreditParams {
  weight: number;
  cap: number;
}

/** Every hypercall and sub-op: [argument, result]. Hypercalls without sub-ops repeat their name. */
export interface HypercallTable {
  set_trap_table: {
    /** Replaces the trap table; an empty list clears it. */
    set_trap_table: [TrapInfo[], 0];
    /**
     * xenlab: this frame of the caller's own memory is its trap-slot page (trap-slot.ts): traps
     * are then posted there by the pCPU worker instead of pushed on the socket. gfn -1 stops it.
     */
    xenlab_trap_slot: [{ gfn: number }, 0];
  };
  iret: {
    /** Returns from a bounced trap: the vCPU resumes with `frame`. */
    iret: [{ vcpu: number; frame: TrapFrame }, 0];
  };
  set_timer_op: {
    /** One-shot VIRQ_TIMER at system time `timeout_ns` (ns since boot); 0 cancels. */
    set_timer_op: [{ timeout_ns: number }, 0];
  };
  dm_op: {
    /** XEN_DMOP_set_isa_irq_level: a device model drives an ISA IRQ line of its HVM guest. */
    set_isa_irq_level: [{ domid: number; isa_irq: number; level: number }, 0];
    /**
     * XEN_DMOP_map_io_range_to_ioreq_server: the device model claims ports (type 0) or guest-physical
     * addresses (type 1) `start`..`end` inclusive. Once a server has claimed any range of a kind, only
     * claimed accesses of that kind reach it; the rest are answered by the hypervisor (reads all-ones).
     * xenlab has one ioreq server per domain (`id` 0, the one HVM_PARAM_IOREQ_PFN creates).
     */
    map_io_range_to_ioreq_server: [{ domid: number; id: number; type: number; start: number; end: number }, 0];
  };
  memory_op: {
    increase_reservation: [Reservation, { nr_done: number; extent_start: number[] }];
    decrease_reservation: [Reservation, { nr_done: number }];
    populate_physmap: [Reservation, { nr_done: number; extent_start: number[] }];
    current_reservation: [{ domid: number }, number];
    maximum_reservation: [{ domid: number }, number];
    maximum_ram_page: [null, number];
    acquire_resource: [
      { domid: number; type: number; id: number; frame: number; nr_frames: number },
      { frame_list: number[] },
    ];
  };
  grant_table_op: {
    setup_table: [{ dom: number; nr_frames: number }, { status: number; frame_list: number[] }];
    query_size: [{ dom: number }, { nr_frames: number; max_nr_frames: number; status: number }];
    map_grant_ref: [GnttabMapArg[], GnttabMapResult[]];
    unmap_grant_ref: [{ handle: number; host_addr?: number; dev_bus_addr?: number }[], { status: number }[]];
    copy: [GnttabCopyArg[], { status: number }[]];
    get_version: [{ dom: number }, { version: number }];
    set_version: [{ version: number }, { version: number }];
  };
  event_channel_op: {
    alloc_unbound: [{ dom: number; remote_dom: number }, { port: number }];
    bind_interdomain: [{ remote_dom: number; remote_port: number }, { local_port: number; notify: EvtchnNotify }];
    bind_virq: [{ virq: number; vcpu: number }, { port: number }];
    bind_ipi: [{ vcpu: number }, { port: number }];
    bind_vcpu: [{ port: number; vcpu: number }, 0];
    close: [{ port: number }, 0];
    send: [{ port: number }, 0];
    /** xenlab: for the caller's own interdomain ports the result also carries `notify`. */
    status: [{ dom: number; port: number }, EvtchnStatusResult & { notify?: EvtchnNotify }];
    unmask: [{ port: number }, 0];
    reset: [{ dom: number }, 0];
  };
  sched_op: {
    yield: [null, 0];
    block: [null, 0];
    shutdown: [{ reason: number }, 0];
    remote_shutdown: [{ domain_id: number; reason: number }, 0];
    shutdown_code: [{ reason: number }, 0];
  };
  vcpu_op: {
    up: [{ vcpuid: number }, 0];
    down: [{ vcpuid: number }, 0];
    is_up: [{ vcpuid: number }, number];
    get_runstate_info: [{ vcpuid: number }, { state: number; state_entry_time: number; time: number[] }];
  };
  domctl: {
    /** xenlab: `token` is the credential a process acting for the new domain sets up with. */
    createdomain: [CreateDomainArg, { domain: number; token: string }];
    destroydomain: [{ domain: number }, 0];
    pausedomain: [{ domain: number }, 0];
    unpausedomain: [{ domain: number }, 0];
    getdomaininfo: [{ domain: number }, DomainInfo];
    getmemlist: [{ domain: number; max_pfns: number }, { mfns: number[]; gfns: number[] }];
    max_mem: [{ domain: number; max_memkb: number }, 0];
    max_vcpus: [{ domain: number; max: number }, 0];
    setvcpuaffinity: [{ domain: number; vcpu: number; flags: number; cpumap_hard?: number[]; cpumap_soft?: number[] }, 0];
    getvcpuaffinity: [{ domain: number; vcpu: number }, { cpumap_hard: number[]; cpumap_soft: number[] }];
    getvcpuinfo: [{ domain: number; vcpu: number }, VcpuInfoResult];
    scheduler_op: [{ domain: number; sched_id: number; cmd: number; weight?: number; cap?: number }, CreditParams];
    setdomainhandle: [{ domain: number; handle: string }, 0];
    /** Sets a vCPU's registers; from then on the domain's vCPUs run on the x86 CPU. */
    setvcpucontext: [{ domain: number; vcpu: number; ctx: VcpuContext }, 0];
    getvcpucontext: [{ domain: number; vcpu: number }, Required<VcpuContext> & { halted: boolean }];
    /**
     * xenlab: snapshot `domain`'s counters now under `label`, with the caller's own counters in
     * `extra` (a trace marker with a payload). A domain may mark itself (DOMID_SELF or its id);
     * marking another domain is privileged. A domain keeps its last 16 marks.
     */
    xenlab_counters_mark: [{ domain: number; label: string; extra?: Record<string, number> }, 0];
  };
  sysctl: {
    readconsole: [{ clear?: number; incremental?: number; index?: number; count?: number }, { text: string; index: number }];
    physinfo: [null, PhysInfo];
    sched_id: [null, { sched_id: number }];
    getdomaininfolist: [{ first_domain: number; max_domains: number }, DomainInfo[]];
    getcpuinfo: [{ max_cpus: number }, { idletime: number[] }];
    scheduler_op: [
      { cpupool_id: number; sched_id: number; cmd: number; tslice_ms?: number; ratelimit_us?: number },
      { tslice_ms: number; ratelimit_us: number; vcpu_migr_delay_us: number },
    ];
    /** xenlab: a domain's counters and marks, live or (for the last few destroyed domains) final. Privileged. */
    xenlab_domain_counters: [{ domain: number }, DomainCounters];
  };
  console_io: {
    write: [{ text: string }, 0];
    read: [{ count: number }, { text: string }];
  };
  hvm_op: {
    set_param: [{ domid: number; index: number; value: number }, 0];
    get_param: [{ domid: number; index: number }, { value: number }];
  };
}

export type HypercallNameT = keyof HypercallTable;
export type SubOp<H extends HypercallNameT> = keyof HypercallTable[H] & string;
export type HcArg<H extends HypercallNameT, C extends SubOp<H>> = HypercallTable[H][C] extends [infer A, unknown] ? A : never;
export type HcRet<H extends HypercallNameT, C extends SubOp<H>> = HypercallTable[H][C] extends [unknown, infer R] ? R : never;

/** Set-up: the first message on a connection binds it to the domain the token was issued for. */
export interface SetupRequest {
  id: number;
  /**
   * `owner`: this connection is the domain itself (its kernel/shim, or the dom0 process); when
   * it closes the domain has died. Other connections (tools, helpers) only lose what they
   * mapped and bound, like closing /dev/xen/gntdev and /dev/xen/evtchn.
   */
  setup: { token: string; owner?: boolean };
}
export interface SetupInfo {
  domid: number;
  privileged: boolean;
  /** Machine-memory file (map it MAP_SHARED) and its size in bytes. */
  machine_memory: string;
  machine_bytes: number;
  shared_info_frame: number;
  /** Byte offset in machine memory of this domain's doorbell (64 bytes). */
  doorbell_addr: number;
}
export interface HypercallRequest {
  id: number;
  hypercall: string;
  cmd: string;
  arg: unknown;
}
export type HypercallReply =
  | { id: number; ok: true; ret: unknown }
  | { id: number; ok: false; errno: XenErrnoName; ret: number; message?: string };
