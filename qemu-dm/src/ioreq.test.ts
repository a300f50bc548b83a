import { describe, expect, it } from 'vitest';
import { IOREQ_STATE, ioreq } from '@xenlab/xen-public';
import { IoBus } from './devices/io-bus.ts';
import { FlatDmaMemory } from './devices/memory.ts';
import type { IoDevice } from './devices/types.ts';
import { readIoreq, serveIoreqSlot, writeIoreq, type IoreqCounters } from './ioreq.ts';

function setup() {
  const bus = new IoBus();
  const written: number[] = [];
  const dev: IoDevice = {
    name: 'dev',
    read: (o) => 0xab00 + o,
    write: (_o, _s, v) => written.push(v),
    snapshot: () => null,
    restore: () => {},
  };
  bus.mapPorts(0x100, 8, dev);
  const ram = new Uint8Array(256);
  const page = new DataView(new ArrayBuffer(4096));
  const counters: IoreqCounters = { served: 0, malformed: 0, ignoredTypes: 0 };
  return { bus, written, ram, mem: new FlatDmaMemory(ram), page, counters };
}

describe('ioreq slot service', () => {
  it('answers a port read in the data field and moves READY → IORESP_READY', () => {
    const t = setup();
    const slot = 3 * ioreq.size; // vCPU 3's slot
    writeIoreq(t.page, slot, { space: 'pio', dir: 'read', addr: 0x102, size: 2, count: 1, dataIsPtr: false, df: false, data: 0 }, 17);
    expect(readIoreq(t.page, slot)).toMatchObject({ state: IOREQ_STATE.READY, dirRead: true, vpEport: 17 });
    expect(serveIoreqSlot(t.page, slot, t.bus, t.mem, t.counters)).toBe(true);
    const a = readIoreq(t.page, slot);
    expect(a.state).toBe(IOREQ_STATE.IORESP_READY);
    expect(a.data).toBe(0xab02);
    // not READY any more: nothing to do
    expect(serveIoreqSlot(t.page, slot, t.bus, t.mem, t.counters)).toBe(false);
  });

  it('a rep outsb is one request with data_is_ptr: the device sees every element', () => {
    const t = setup();
    t.ram.set([1, 2, 3, 4], 16);
    writeIoreq(t.page, 0, { space: 'pio', dir: 'write', addr: 0x100, size: 1, count: 4, dataIsPtr: true, df: false, data: 16 });
    serveIoreqSlot(t.page, 0, t.bus, t.mem, t.counters);
    expect(t.written).toEqual([1, 2, 3, 4]);
    expect(t.bus.portStats()['pio:100']).toMatchObject({ exits: 1, elements: 4 });
    // the data field (a pointer) is left alone
    expect(readIoreq(t.page, 0).data).toBe(16);
  });

  it('malformed and foreign requests are answered, counted, and never reach a device', () => {
    const t = setup();
    const bad = (patch: (v: DataView) => void) => {
      writeIoreq(t.page, 0, { space: 'pio', dir: 'read', addr: 0x100, size: 1, count: 1, dataIsPtr: false, df: false, data: 0 });
      patch(t.page);
      expect(serveIoreqSlot(t.page, 0, t.bus, t.mem, t.counters)).toBe(true);
      return readIoreq(t.page, 0);
    };
    expect(bad((v) => v.setUint32(20, 3, true)).data).toBe(0xffffffff); // size 3
    expect(bad((v) => v.setUint8(31, 2)).state).toBe(IOREQ_STATE.IORESP_READY); // PCI_CONFIG
    bad((v) => {
      v.setUint8(30, v.getUint8(30) | 0x10); // data_is_ptr with a huge count
      v.setUint32(16, 0xffffffff, true);
    });
    bad((v) => v.setBigUint64(0, 0x10000n, true)); // port above 0xFFFF
    expect(t.counters).toEqual({ served: 0, malformed: 3, ignoredTypes: 1 });
    expect(t.bus.deviceStats()).toEqual({});
  });
});
