/**
 * A pCPU: one worker thread that runs whichever vCPU the scheduler hands it for one slice on
 * the x86 CPU, then reports why it stopped (worker side of sched/pcpu-threads.ts). It maps the
 * machine-memory file itself, so guest memory is the same bytes every process sees; the vCPU's
 * registers travel with each request, so any pCPU can run any vCPU.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Page } from '@xenlab/x86-cpu';
import { SharedMemory } from '@xenlab/ring-buffers';
import { IoreqFastPath, zeroFastIoCounters, type IoreqBinding } from '../hvm/ioreq-fast.ts';
import { GUEST_PAGES, completeAccess, exitVectors, makeCpu, runSlice } from '../x86-slice.ts';
import type { IoExit } from './pcpu.ts';
import type { SliceRequest, SliceReply } from './pcpu-threads.ts';

const PLATFORM_PORTS = new Set([0x20, 0x21, 0xa0, 0xa1, 0x40, 0x41, 0x42, 0x43]);

const { machineMemory, preemptFlags, pcpu } = workerData as { machineMemory: string; preemptFlags: Int32Array; pcpu: number };
const preempt = (): boolean => Atomics.load(preemptFlags, pcpu) !== 0;
const shm = SharedMemory.open(machineMemory);
const pages: Page[] = new Array<Page>(GUEST_PAGES).fill(null);
const views = new Map<number, Uint8Array>();
let consoleBytes: number[] = [];
let unclaimed = 0;
let forwardIo = false;
let forwardMmio = false;
let binding: IoreqBinding | undefined;
const fast = new IoreqFastPath(shm.buffer);
const io = {
  consoleByte: (b: number) => consoleBytes.push(b),
  unclaimed: () => unclaimed++,
  forward: () => forwardIo,
  forwardMmio: () => forwardMmio,
  // PIC/PIT ports go to the main thread (their state lives there); the rest to the ioreq fast path.
  serveIo: (x: IoExit) => (binding && (x.mmio || x.string || !PLATFORM_PORTS.has(x.port)) ? fast.serve(binding, x, preempt) : undefined),
};
const cpu = makeCpu(pages, io);

parentPort!.on('message', (m: SliceRequest) => {
  for (let g = 0; g < GUEST_PAGES; g++) {
    const mfn = m.mfns[g]!;
    if (mfn < 0) {
      pages[g] = null;
      continue;
    }
    let v = views.get(mfn);
    if (!v) views.set(mfn, (v = new Uint8Array(shm.buffer, mfn * 4096, 4096)));
    pages[g] = v;
  }
  // The domain's trap table rides in the state: the vectors that exit instead of vectoring.
  cpu.setState({ ...m.state, interruptExits: exitVectors(m.trapVectors) });
  forwardIo = m.forwardIo;
  forwardMmio = m.forwardMmio;
  binding = m.ioreq;
  if (m.completeIo) completeAccess(cpu, m.completeIo);
  for (const vec of m.irqs) cpu.raiseIrq(vec);
  const r = runSlice(cpu, pages, m.budgetNs, io, preempt);
  const reply: SliceReply = { id: m.id, ...r, state: cpu.getState(), console: consoleBytes, unclaimed, ioreqCounters: fast.counters };
  fast.counters = zeroFastIoCounters();
  consoleBytes = [];
  unclaimed = 0;
  parentPort!.postMessage(reply);
});
