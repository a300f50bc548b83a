/**
 * The small interfaces every qemu-dm device model is written against (CONVENTIONS.md, "Devices
 * and the CPU"). A device sees only offsets inside its own port or MMIO window and access sizes;
 * it never knows which port base the dispatcher gave it, which vCPU asked, or whether the access
 * came from an ioreq page or from an in-process test. Its collaborators — an IRQ line, guest
 * memory for DMA, a disk image — are handed to its constructor, and its whole state can be
 * copied out and back as plain data (`snapshot`/`restore`) for save, restore and migration.
 *
 * This is QEMU's `MemoryRegionOps` (read/write with offset and size) reduced to what xenlab needs.
 */

/** Bytes per access, as in `ioreq_t.size`. The 80186 issues 1 and 2; 4 is accepted for later CPUs. */
export type AccessSize = 1 | 2 | 4;

/** A device in I/O port space (or an MMIO window: the same shape, offsets are byte addresses). */
export interface IoDevice {
  /** Short name used in counters and logs ("ata0", "com1"). */
  readonly name: string;
  /** A read at `offset` in the device's window. Must return a value for every offset and size. */
  read(offset: number, size: AccessSize): number;
  /** A write at `offset`. Bad values are the guest's mistake: ignore them as hardware would. */
  write(offset: number, size: AccessSize, value: number): void;
  /**
   * Bulk path for `rep ins` (one ioreq with a count): produce `count` elements of `size` bytes,
   * little-endian, in the order the port would have returned them. Optional: the dispatcher
   * falls back to calling `read` `count` times.
   */
  readRep?(offset: number, size: AccessSize, count: number): Uint8Array;
  /** Bulk path for `rep outs`: consume `data` (count × size bytes) as successive port writes. */
  writeRep?(offset: number, size: AccessSize, data: Uint8Array): void;
  /** The device's state as plain JSON-able data. */
  snapshot(): unknown;
  /** Load state produced by `snapshot()` of the same device type. */
  restore(state: unknown): void;
}

/**
 * An interrupt line from a device to the interrupt controller (the hypervisor's virtual PIC in
 * xenlab). Devices drive a level: `true` while they want service. An edge-triggered 8259 input
 * sees the 0→1 transition.
 */
export type IrqLine = (level: boolean) => void;

/**
 * Guest-physical memory as a bus-master DMA engine sees it. Both calls are all-or-nothing: an
 * access that touches anything outside guest RAM returns null / false and moves no bytes, the
 * way a PCI master gets a master abort.
 */
export interface DmaMemory {
  read(gpa: number, length: number): Uint8Array | null;
  write(gpa: number, data: Uint8Array): boolean;
}

/** A disk image addressed in 512-byte sectors. Synchronous, like QEMU's block layer in a thread. */
export interface BlockImage {
  /** Size in 512-byte sectors. */
  readonly sectors: number;
  readonly readOnly: boolean;
  /** Read `count` whole sectors from `lba`; the caller has range-checked. */
  read(lba: number, count: number): Uint8Array;
  /** Write whole sectors at `lba`; the caller has range-checked. */
  write(lba: number, data: Uint8Array): void;
}

export const SECTOR_SIZE = 512;
