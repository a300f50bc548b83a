/** hvm/ioreq.h and hvm/params.h (fact sheet §9). */
import { layout } from './layout.ts';

export const HVMOP = { set_param: 0, get_param: 1 } as const;
export type HvmOpCmd = keyof typeof HVMOP;

export const HVM_PARAM = {
  CALLBACK_IRQ: 0,
  STORE_PFN: 1,
  STORE_EVTCHN: 2,
  PAE_ENABLED: 4,
  IOREQ_PFN: 5,
  BUFIOREQ_PFN: 6,
  VIRIDIAN: 9,
  TIMER_MODE: 10,
  HPET_ENABLED: 11,
  IDENT_PT: 12,
  DM_DOMAIN: 13,
  ACPI_S_STATE: 14,
  VM86_TSS: 15,
  VPT_ALIGN: 16,
  CONSOLE_PFN: 17,
  CONSOLE_EVTCHN: 18,
  ACPI_IOPORTS_LOCATION: 19,
  BUFIOREQ_EVTCHN: 26,
  PAGING_RING_PFN: 27,
  MONITOR_RING_PFN: 28,
  SHARING_RING_PFN: 29,
  TRIPLE_FAULT_REASON: 31,
  IOREQ_SERVER_PFN: 32,
  NR_IOREQ_SERVER_PAGES: 33,
  VM_GENERATION_ID_ADDR: 34,
  ALTP2M: 35,
  X87_FIP_WIDTH: 36,
  VM86_TSS_SIZED: 37,
  MCA_CAP: 38,
} as const;
export const HVM_NR_PARAMS = 39;

/** `ioreq_t`, 32 bytes; one slot per vCPU in the synchronous ioreq page. */
export const ioreq = layout('ioreq_t', 32, {
  addr: { offset: 0, size: 8, type: 'u64', writer: 'xen' },
  data: { offset: 8, size: 8, type: 'u64', writer: 'both' },
  count: { offset: 16, size: 4, type: 'u32', writer: 'xen' },
  size: { offset: 20, size: 4, type: 'u32', writer: 'xen' },
  vp_eport: { offset: 24, size: 4, type: 'u32', writer: 'xen' },
  _pad0: { offset: 28, size: 2, type: 'u16' },
  /** Bits 0-3 state, 4 data_is_ptr, 5 dir, 6 df, 7 pad. */
  state_bits: { offset: 30, size: 1, type: 'u8', writer: 'both' },
  type: { offset: 31, size: 1, type: 'u8', writer: 'xen' },
});
export const IOREQ_STATE_MASK = 0x0f;
export const IOREQ_DATA_IS_PTR = 0x10;
export const IOREQ_DIR_BIT = 0x20;
export const IOREQ_DF_BIT = 0x40;
export const IOREQ_SLOTS_PER_PAGE = 4096 / ioreq.size;

export const IOREQ_STATE = { NONE: 0, READY: 1, INPROCESS: 2, IORESP_READY: 3 } as const;
export const IOREQ_DIR = { WRITE: 0, READ: 1 } as const;
export const IOREQ_TYPE = { PIO: 0, COPY: 1, PCI_CONFIG: 2, TIMEOFFSET: 7, INVALIDATE: 8 } as const;
/** XEN_DMOP_IO_RANGE_*: what `map_io_range_to_ioreq_server` claims (hvm/dm_op.h). */
export const XEN_DMOP_IO_RANGE = { PORT: 0, MEMORY: 1, PCI: 2 } as const;

/** `buf_ioreq`, 8 bytes, and `buffered_iopage` (4096 bytes: two pointers + 511 slots). */
export const buf_ioreq = layout('buf_ioreq', 8, {
  type: { offset: 0, size: 1, type: 'u8', writer: 'xen' },
  /** Bit 0 pad, bit 1 dir, bits 2-3 size code, bits 4-7 low 4 bits of addr. */
  bits: { offset: 1, size: 1, type: 'u8', writer: 'xen' },
  addr_hi: { offset: 2, size: 2, type: 'u16', writer: 'xen' },
  data: { offset: 4, size: 4, type: 'u32', writer: 'xen' },
});
export const buffered_iopage = layout('buffered_iopage', 4096, {
  read_pointer: { offset: 0, size: 4, type: 'u32', writer: 'guest' },
  write_pointer: { offset: 4, size: 4, type: 'u32', writer: 'xen' },
  buf_ioreq: { offset: 8, size: 4088, type: 'bytes', writer: 'xen' },
});
export const IOREQ_BUFFER_SLOT_NUM = 511;
