/**
 * How the CPU reaches memory and I/O ports: the injected interfaces a caller (the hypervisor's
 * pCPU, a test, a benchmark) hands to `new Cpu(...)`.
 *
 * Memory is a page table of 4 KiB pages covering the real-mode address space (256 pages for
 * 1 MiB). A page that is a `Uint8Array` is plain RAM and is read and written directly (the fast
 * path); in the hypervisor it is a view of one machine frame, `new Uint8Array(machineMemory,
 * mfn * 4096, 4096)`, found through the domain's P2M. A `null` page is not RAM: accesses to it are
 * MMIO, offered first to the optional synchronous handlers and otherwise turned into an exit
 * that the caller completes (see `Cpu.run`).
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const PAGE_MASK = PAGE_SIZE - 1;

export type Page = Uint8Array | null;

export interface MemoryInterface {
  /**
   * One entry per 4 KiB page of the address space: RAM (a 4096-byte view) or null (MMIO).
   * Needs 256 entries (1 MiB), or 512 when the CPU is created with `a20: true`.
   * The CPU keeps a reference to this array, so the caller may swap entries at any time
   * between `run` calls (ballooning, remapping a frame).
   */
  pages: Page[];
  /** Synchronous MMIO read; return undefined to make the access exit to the caller instead. */
  mmioRead?(addr: number, size: 1 | 2): number | undefined;
  /** Synchronous MMIO write; return false to make the access exit to the caller instead. */
  mmioWrite?(addr: number, size: 1 | 2, value: number): boolean;
}

export interface PortInterface {
  /** Synchronous port read; return undefined to exit to the caller (who completes the IN). */
  in?(port: number, size: 1 | 2): number | undefined;
  /** Synchronous port write; return false to exit to the caller. */
  out?(port: number, size: 1 | 2, value: number): boolean;
}

/**
 * A page table over one flat buffer: `bytes` of RAM from linear address 0 (a multiple of 4 KiB),
 * the remaining pages of a `pageCount`-entry table left as MMIO holes. Handy for tests and
 * benchmarks; the hypervisor builds its table from machine frames instead.
 */
export function flatMemory(bytes: number, pageCount = 256): { pages: Page[]; ram: Uint8Array } {
  if (bytes % PAGE_SIZE !== 0) throw new Error(`flatMemory: size ${bytes} is not a multiple of ${PAGE_SIZE}`);
  const ram = new Uint8Array(bytes);
  const pages: Page[] = [];
  for (let i = 0; i < pageCount; i++) {
    pages.push(i * PAGE_SIZE < bytes ? ram.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE) : null);
  }
  return { pages, ram };
}
