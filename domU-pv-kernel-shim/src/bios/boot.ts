/**
 * Booting the guest program, as the shim does before it starts the vCPU (issue 6: with
 * `kernel = "file"` the flat image is loaded at 0000:7C00; without one the first disk's boot
 * sector is read through blkfront, like pvgrub). Also the BIOS data area fields real-mode
 * programs read directly (shared/reference/bios.md §3) and the registers at hand-off
 * (shared/reference/bios.md §1: DL = boot drive, SS:SP below 7C00h, interrupts on).
 */
import type { Int13Service } from './int13.ts';
import type { Blkfront } from '../blkfront/blkfront.ts';
import { writeGuest, writeU16, type GuestMemory, type RegisterFile } from './machine.ts';

export const BOOT_ADDRESS = 0x7c00;
export const BOOT_DRIVE = 0x80;
/** A flat kernel must end below the EBDA / video area. */
export const KERNEL_LIMIT = 0x9fc00;

export class BootError extends Error {}

/** Copies a flat kernel image to 0000:7C00. */
export function loadFlatKernel(mem: GuestMemory, image: Uint8Array, limitKib = KERNEL_LIMIT / 1024): void {
  const end = BOOT_ADDRESS + image.length;
  if (image.length === 0) throw new BootError('kernel image is empty');
  if (end > limitKib * 1024) {
    throw new BootError(`kernel image of ${image.length} bytes does not fit between 7C00h and ${(limitKib * 1024).toString(16)}h (at most ${limitKib * 1024 - BOOT_ADDRESS} bytes)`);
  }
  writeGuest(mem, BOOT_ADDRESS, image);
}

/** Reads LBA 0 of `front` to 0000:7C00 through INT 13h's transfer path and checks 55AA. */
export async function loadBootSector(disk: Int13Service, front: Blkfront, mem: GuestMemory): Promise<void> {
  const r = await disk.transfer(front, 'read', 0, 1, BOOT_ADDRESS);
  if (r.status !== 0 || r.sectors !== 1) throw new BootError(`reading the boot sector failed (INT 13h status ${r.status.toString(16).padStart(2, '0')}h)`);
  const sig = mem.pages[(BOOT_ADDRESS + 510) >>> 12]!;
  const off = (BOOT_ADDRESS + 510) & 0xfff;
  if (sig[off] !== 0x55 || sig[off + 1] !== 0xaa) throw new BootError('the first disk has no boot signature (55AA at byte 510); give the domain a kernel = "..." instead');
}

export interface BdaOptions {
  /** Conventional memory for the program, KiB (INT 12h, 40:13). */
  memoryKib: number;
  /** Equipment word (INT 11h, 40:10). */
  equipment: number;
  hardDisks: number;
}

/** Fills the BIOS data area fields programs read directly (40:10, 40:13, 40:49, 40:4A, 40:75, 40:84, keyboard buffer pointers). */
export function initBiosDataArea(mem: GuestMemory, o: BdaOptions): void {
  const bda = mem.pages[0];
  if (!bda) throw new BootError('no RAM at page 0 for the BIOS data area');
  writeU16(mem, 0x410, o.equipment);
  writeU16(mem, 0x413, Math.min(640, o.memoryKib));
  bda[0x449] = 0x03;
  writeU16(mem, 0x44a, 80);
  bda[0x475] = o.hardDisks;
  bda[0x484] = 24;
  writeU16(mem, 0x41a, 0x1e);
  writeU16(mem, 0x41c, 0x1e);
  writeU16(mem, 0x480, 0x1e);
  writeU16(mem, 0x482, 0x3e);
}

/** The registers at hand-off to a boot sector or flat kernel. */
export function setBootRegisters(regs: RegisterFile, drive = BOOT_DRIVE): void {
  for (const r of ['ax', 'bx', 'cx', 'dx', 'si', 'di', 'bp', 'es', 'ds', 'ss', 'cs'] as const) regs.setReg(r, 0);
  regs.setReg('dl', drive);
  regs.setReg('sp', BOOT_ADDRESS);
  regs.setReg('ip', BOOT_ADDRESS);
  regs.setFlags(0x0202);
}
