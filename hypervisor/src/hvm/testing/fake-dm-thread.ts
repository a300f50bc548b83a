/**
 * A device model in another thread for the ioreq fast-path tests (ioreq-fast.test.ts): it plays
 * qemu-dm's half of the cycle on the shared machine memory — wait on its doorbell, find the slot
 * READY, answer in the slot, ring the answer doorbell — or misbehaves on request. `control[0]`
 * set to 1 stops it; `control[1]` counts requests it saw.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { IOREQ_STATE, IOREQ_STATE_MASK, SharedInfoPage, ioreq } from '@xenlab/xen-public';
import { Doorbell, SharedMemory } from '@xenlab/ring-buffers';

export interface FakeDmData {
  machineMemory: string;
  pageAddr: number;
  /** The doorbell the hypervisor rings for this device model (dom0's). */
  dmBellAddr: number;
  /** dom0's shared_info and the device model's port there (consumed as qemu-dm does, so each request rings). */
  sharedInfoAddr: number;
  port: number;
  /** The binding's doorbell_addr: rung after IORESP_READY. */
  answerBellAddr: number;
  /** answer: IORESP_READY with `value`; garbage: an invalid state; silent: never answers. */
  mode: 'answer' | 'garbage' | 'silent';
  value: number;
  control: Int32Array;
}

const o = workerData as FakeDmData;
const shm = SharedMemory.open(o.machineMemory);
const dmBell = new Doorbell(shm.buffer, o.dmBellAddr);
const answer = new Doorbell(shm.buffer, o.answerBellAddr);
const u8 = new Uint8Array(shm.buffer, o.pageAddr, 4096);
const dv = new DataView(shm.buffer, o.pageAddr, 4096);
const STATE = ioreq.fields.state_bits.offset;
parentPort!.postMessage('ready');
const si = new SharedInfoPage(shm.buffer, o.sharedInfoAddr);
let seen = dmBell.seq;
while (Atomics.load(o.control, 0) === 0) {
  si.consume([o.port]);
  const bits = Atomics.load(u8, STATE);
  if ((bits & IOREQ_STATE_MASK) === IOREQ_STATE.READY) {
    Atomics.add(o.control, 1, 1);
    if (o.mode === 'answer') {
      Atomics.store(u8, STATE, (bits & ~IOREQ_STATE_MASK) | IOREQ_STATE.INPROCESS);
      dv.setBigUint64(ioreq.fields.data.offset, BigInt(o.value), true);
      Atomics.store(u8, STATE, (bits & ~IOREQ_STATE_MASK) | IOREQ_STATE.IORESP_READY);
      answer.ring();
    } else if (o.mode === 'garbage') {
      dv.setBigUint64(ioreq.fields.data.offset, 0xdeadbeefn, true);
      Atomics.store(u8, STATE, (bits & ~IOREQ_STATE_MASK) | 0x0e);
      answer.ring();
    } else {
      Atomics.store(u8, STATE, (bits & ~IOREQ_STATE_MASK) | IOREQ_STATE.INPROCESS);
    }
    continue;
  }
  seen = dmBell.wait(seen, 20, 2000);
}
shm.close();
