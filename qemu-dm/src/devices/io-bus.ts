/**
 * The dispatch table of qemu-dm's ioreq server: which device answers which I/O port range and
 * which guest-physical MMIO range, and one entry point, `handle(ioreq)`, shaped like Xen's
 * `ioreq_t` (fact sheet §9.1; QEMU's `cpu_ioreq_pio`/`cpu_ioreq_move` in xen-hvm.c). The same
 * table serves the in-process test harness now and the shared ioreq page later.
 *
 * - An ordinary access (`count` 1, no pointer) is one `read`/`write` on the device.
 * - A `rep ins/outs` arrives as ONE request with `count` elements and `data_is_ptr` set: `data`
 *   is the guest-physical address of the buffer, stepping by `size` (down when `df`). Devices
 *   with a bulk path (`readRep`/`writeRep`, e.g. the ATA data port) move the whole block at once.
 * - Ports nobody claims read as all ones (an undriven ISA bus floats high) and swallow writes.
 * - Every request is counted per port and per device ("exits"), plus the elements it moved, for
 *   the benchmarks' exits-per-megabyte numbers.
 */
import type { AccessSize, DmaMemory, IoDevice } from './types.ts';

export type IoSpace = 'pio' | 'mmio';

/** One I/O request, field for field the parts of `ioreq_t` a device model acts on. */
export interface IoRequest {
  space: IoSpace;
  dir: 'read' | 'write';
  /** Port number, or guest-physical address for MMIO. */
  addr: number;
  size: AccessSize;
  /** Repeat count (1 for a plain access). */
  count: number;
  /** `data` is a guest-physical buffer address (string I/O) instead of the value. */
  dataIsPtr: boolean;
  /** Direction flag: the buffer address steps down. */
  df: boolean;
  /** The value written, or the buffer address when `dataIsPtr`. */
  data: number;
}

export interface PortCounter {
  /** Requests (exits) that hit this port. */
  exits: number;
  /** Elements moved (a `rep insw` of 256 words is 1 exit and 256 elements). */
  elements: number;
  reads: number;
  writes: number;
}

interface Mapping {
  device: IoDevice;
  base: number;
  length: number;
}

const UNASSIGNED = 'unassigned';

export class IoBus {
  private readonly ports: (Mapping | undefined)[] = new Array(0x10000);
  private readonly mmio: Mapping[] = [];
  private readonly portCounters = new Map<string, PortCounter>();
  private readonly deviceCounters = new Map<string, PortCounter>();
  /** Requests whose guest buffer was outside RAM (data dropped, like a master abort). */
  badPointer = 0;

  /** Claim ports `base .. base+length-1` for `device`; offsets passed to it start at 0. */
  mapPorts(base: number, length: number, device: IoDevice): void {
    for (let p = base; p < base + length; p++) {
      const prev = this.ports[p];
      if (prev) throw new Error(`io-bus: port ${hex(p)} is already mapped to ${prev.device.name}, cannot map ${device.name}`);
    }
    const m = { device, base, length };
    for (let p = base; p < base + length; p++) this.ports[p] = m;
  }

  /** Claim guest-physical `base .. base+length-1` (an MMIO hole: not RAM). */
  mapMmio(base: number, length: number, device: IoDevice): void {
    for (const m of this.mmio) {
      if (base < m.base + m.length && m.base < base + length) {
        throw new Error(`io-bus: MMIO ${hex(base)}+${hex(length)} overlaps ${m.device.name}`);
      }
    }
    this.mmio.push({ device, base, length });
  }

  /**
   * What this bus serves, as inclusive ranges (adjacent ports of one device merged): what the
   * device model claims from the hypervisor with `map_io_range_to_ioreq_server`.
   */
  claimedRanges(): { space: IoSpace; start: number; end: number; device: string }[] {
    const out: { space: IoSpace; start: number; end: number; device: string }[] = [];
    for (let p = 0; p < 0x10000; p++) {
      const m = this.ports[p];
      if (!m) continue;
      const last = out[out.length - 1];
      if (last && last.space === 'pio' && last.end === p - 1 && last.device === m.device.name) last.end = p;
      else out.push({ space: 'pio', start: p, end: p, device: m.device.name });
    }
    for (const m of this.mmio) out.push({ space: 'mmio', start: m.base, end: m.base + m.length - 1, device: m.device.name });
    return out;
  }

  /** The device at a port, for tests and tracing. */
  deviceAt(space: IoSpace, addr: number): IoDevice | undefined {
    return this.find(space, addr)?.device;
  }

  /** Serve one request. Returns the value read (or, for pointer requests, the elements moved). */
  handle(req: IoRequest, mem: DmaMemory): number {
    const m = this.find(req.space, req.addr);
    const count = req.dataIsPtr ? Math.max(0, req.count | 0) : 1;
    this.count(req.space, req.addr, m?.device.name ?? UNASSIGNED, req.dir, count);
    if (!req.dataIsPtr) {
      if (req.dir === 'read') return m ? m.device.read(req.addr - m.base, req.size) & sizeMask(req.size) : sizeMask(req.size);
      if (m) m.device.write(req.addr - m.base, req.size, req.data & sizeMask(req.size));
      return 0;
    }
    if (req.space === 'pio') return this.stringPio(req, m, count, mem);
    return this.stringMmio(req, m, count, mem);
  }

  /** Convenience for a single port read (tests, the harness). */
  in(port: number, size: AccessSize, mem: DmaMemory = NO_MEMORY): number {
    return this.handle({ space: 'pio', dir: 'read', addr: port, size, count: 1, dataIsPtr: false, df: false, data: 0 }, mem);
  }

  out(port: number, size: AccessSize, value: number, mem: DmaMemory = NO_MEMORY): void {
    this.handle({ space: 'pio', dir: 'write', addr: port, size, count: 1, dataIsPtr: false, df: false, data: value }, mem);
  }

  /** Counters keyed "pio:1f0" / "mmio:b8000" (per port or per MMIO byte address). */
  portStats(): Record<string, PortCounter> {
    return Object.fromEntries([...this.portCounters].map(([k, v]) => [k, { ...v }]));
  }

  /** Counters keyed by device name ("unassigned" for ports nobody claims). */
  deviceStats(): Record<string, PortCounter> {
    return Object.fromEntries([...this.deviceCounters].map(([k, v]) => [k, { ...v }]));
  }

  resetStats(): void {
    this.portCounters.clear();
    this.deviceCounters.clear();
    this.badPointer = 0;
  }

  private find(space: IoSpace, addr: number): Mapping | undefined {
    if (space === 'pio') return this.ports[addr & 0xffff];
    for (const m of this.mmio) if (addr >= m.base && addr < m.base + m.length) return m;
    return undefined;
  }

  private count(space: IoSpace, addr: number, device: string, dir: 'read' | 'write', elements: number): void {
    const key = `${space}:${addr.toString(16)}`;
    for (const [map, k] of [[this.portCounters, key], [this.deviceCounters, device]] as const) {
      let c = map.get(k);
      if (!c) map.set(k, (c = { exits: 0, elements: 0, reads: 0, writes: 0 }));
      c.exits++;
      c.elements += elements;
      if (dir === 'read') c.reads++;
      else c.writes++;
    }
  }

  private stringPio(req: IoRequest, m: Mapping | undefined, count: number, mem: DmaMemory): number {
    const size = req.size;
    const bytes = count * size;
    const lo = req.df ? req.data - (count - 1) * size : req.data;
    if (req.dir === 'read') {
      // INS: port → guest memory.
      let data: Uint8Array;
      if (!m) data = new Uint8Array(bytes).fill(0xff);
      else if (m.device.readRep) data = m.device.readRep(req.addr - m.base, size, count);
      else {
        data = new Uint8Array(bytes);
        for (let i = 0; i < count; i++) putLe(data, i * size, size, m.device.read(req.addr - m.base, size));
      }
      if (req.df) data = reverseElements(data, size);
      if (!mem.write(lo, data)) this.badPointer++;
      return count;
    }
    // OUTS: guest memory → port.
    let data = mem.read(lo, bytes);
    if (data === null) {
      this.badPointer++;
      data = new Uint8Array(bytes).fill(0xff);
    }
    if (req.df) data = reverseElements(data, size);
    if (!m) return count;
    if (m.device.writeRep) m.device.writeRep(req.addr - m.base, size, data);
    else for (let i = 0; i < count; i++) m.device.write(req.addr - m.base, size, getLe(data, i * size, size));
    return count;
  }

  /** `rep movs` to or from MMIO: the device address steps with the element, like the buffer. */
  private stringMmio(req: IoRequest, m: Mapping | undefined, count: number, mem: DmaMemory): number {
    const size = req.size;
    const step = req.df ? -size : size;
    for (let i = 0; i < count; i++) {
      const addr = req.addr + i * step;
      const buf = req.data + i * step;
      const dev = m && addr >= m.base && addr < m.base + m.length ? m : this.find('mmio', addr);
      if (req.dir === 'read') {
        const v = dev ? dev.device.read(addr - dev.base, size) : sizeMask(size);
        const b = new Uint8Array(size);
        putLe(b, 0, size, v);
        if (!mem.write(buf, b)) this.badPointer++;
      } else {
        const b = mem.read(buf, size);
        if (b === null) this.badPointer++;
        if (dev) dev.device.write(addr - dev.base, size, b === null ? sizeMask(size) : getLe(b, 0, size));
      }
    }
    return count;
  }
}

/** A DmaMemory with no RAM at all (for plain port accesses that never touch memory). */
export const NO_MEMORY: DmaMemory = { read: () => null, write: () => false };

export function sizeMask(size: AccessSize): number {
  return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
}

export function putLe(b: Uint8Array, at: number, size: AccessSize, v: number): void {
  for (let i = 0; i < size; i++) b[at + i] = (v >>> (8 * i)) & 0xff;
}

export function getLe(b: Uint8Array, at: number, size: AccessSize): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = (v * 256 + b[at + i]) >>> 0;
  return v;
}

function reverseElements(data: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(data.length);
  const n = data.length / size;
  for (let i = 0; i < n; i++) out.set(data.subarray(i * size, (i + 1) * size), (n - 1 - i) * size);
  return out;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
