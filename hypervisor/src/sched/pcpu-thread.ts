/**
 * A pCPU: one worker thread that runs whichever vCPU the scheduler hands it for one slice on
 * the x86 CPU, then reports why it stopped (worker side of sched/pcpu-threads.ts). It maps the
 * machine-memory file itself, so guest memory is the same bytes every process sees; the vCPU's
 * registers travel with each request, so any pCPU can run any vCPU.
 */
import { openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { Page } from '@xenlab/x86-cpu';
import { AwakeWindow, Doorbell, SharedMemory, envMicros } from '@xenlab/ring-buffers';
import { TRAP_AWAKE, TRAP_SLOT_ANSWER_BELL_OFFSET, TRAP_SLOT_BELL_OFFSET, TRAP_SLOT_STATE, TrapSlot } from '@xenlab/xen-public';
import { IoreqFastPath, allOnes, ioCompletion, zeroFastIoCounters, type FastIoResult, type IoreqBinding } from '../hvm/ioreq-fast.ts';
import { SharedPlatform, isPlatformPort, type PlatformBinding } from '../hvm/platform.ts';
import { GUEST_PAGES, completeAccess, exitVectors, makeCpu, runSlice } from '../x86-slice.ts';
import type { IoExit } from './pcpu.ts';
import type { SliceRequest, SliceReply, WorkerNotice } from './pcpu-threads.ts';
import { waitForAnswer } from './answer-wait.ts';

/** Interrupts queued in the CPU beyond this are left latched in the PIC (platform.ts MAX_QUEUED). */
const MAX_QUEUED = 16;

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
/** Platform devices of the domain being run (shared state; platform-state.ts) and what we did with them. */
const platforms = new Map<number, SharedPlatform>();
let platform: SharedPlatform | undefined;
let platformBinding: PlatformBinding | undefined;
let platformExits = 0;
let injected = 0;

function platformOf(b: PlatformBinding): SharedPlatform {
  let p = platforms.get(b.id);
  if (!p) {
    if (platforms.size >= 256) platforms.clear(); // views of destroyed domains' state: drop them now and then
    const epoch = b.clockEpochMs;
    platforms.set(b.id, (p = SharedPlatform.attach(b.sab, () => Math.round((performance.timeOrigin + performance.now() - epoch) * 1e6))));
  }
  return p;
}

/**
 * An exit the CPU could not finish: PIC/PIT here (the domain's shared platform state), an
 * unclaimed port all-ones, the rest through the ioreq fast path; undefined ends the slice.
 */
function serveIo(x: IoExit): FastIoResult | undefined {
  if (platform && !x.mmio && !x.string && isPlatformPort(x.port)) {
    platformExits++;
    const value = platform.io(x);
    if (platform.periodChanged) {
      // The PIT's tick is a host timer on the main thread: tell it now (the slow path).
      platform.periodChanged = false;
      const notice: WorkerNotice = { notice: 'platform' };
      parentPort!.postMessage(notice);
    }
    // An EOI or unmask may let a request through: INTA here, straight into the CPU.
    if (x.dir === 'out' && platformBinding?.deliver) {
      for (const vec of platform.acknowledge(MAX_QUEUED - cpu.pendingIrqCount)) {
        cpu.raiseIrq(vec);
        injected++;
      }
    }
    return { kind: 'done', completion: value === undefined ? {} : { value } };
  }
  if (binding) return fast.serve(binding, x, preempt);
  if (platform) {
    // An HVM guest without a device model: nobody claims anything.
    unclaimed++;
    return { kind: 'done', completion: ioCompletion(x, allOnes(x)) };
  }
  return undefined;
}

/** Between chunks: vCPU 0 takes what its domain's PIC delivers (ticks, device interrupts) at once. */
function poll(): void {
  if (!platform || !platformBinding?.deliver || !platform.mayDeliver()) return;
  for (const vec of platform.acknowledge(MAX_QUEUED - cpu.pendingIrqCount)) {
    cpu.raiseIrq(vec);
    injected++;
  }
}

/** The running vCPU's trap slot, if its kernel registered one (serveTrap). */
let trapSlot: SliceRequest['trapSlot'];
/** Per trap-slot page (by address): its words and the two doorbells, made once. */
const trapPages = new Map<number, { words: Uint32Array; bell: Doorbell; answer: Doorbell }>();
function trapPage(addr: number): { words: Uint32Array; bell: Doorbell; answer: Doorbell } {
  let p = trapPages.get(addr);
  if (!p) {
    if (trapPages.size >= 256) trapPages.clear(); // views of destroyed domains' pages: drop them now and then
    p = { words: new Uint32Array(shm.buffer, addr, 1024), bell: new Doorbell(shm.buffer, addr + TRAP_SLOT_BELL_OFFSET), answer: new Doorbell(shm.buffer, addr + TRAP_SLOT_ANSWER_BELL_OFFSET) };
    trapPages.set(addr, p);
  }
  return p;
}
/**
 * A trap through the kernel's trap slot (xen-public trap-slot.ts): post the registers, ring the
 * kernel's doorbell, wait for its answer (bounded: answer-wait.ts). Answered: the CPU takes the
 * registers and the slice goes on. Not in time: park it (the kernel will `iret`). Garbage in the
 * state: crash.
 */
function serveTrap(vector: number, kind: 'int' | 'exception'): 'done' | 'parked' | { crash: string } | undefined {
  const b = trapSlot;
  if (!b) return undefined;
  const { words, bell, answer } = trapPage(b.addr);
  const slot = new TrapSlot(words, b.vcpu);
  const st = cpu.getState();
  const seen = answer.seq;
  slot.post(vector, kind, st);
  bell.ring();
  // Wait for the answer (answer-wait.ts, as for an ioreq): spin, then sleep on the answer
  // doorbell (the kernel rings it after DONE), all within `waitUs`; then park. Parking is a CAS
  // the kernel's answer may win, so a refused park means the answer is there.
  let s: number = TRAP_SLOT_STATE.PENDING;
  if (!waitForAnswer(() => (s = slot.state) !== TRAP_SLOT_STATE.PENDING, answer, seen, { spinUs: b.spinUs, yieldUs: b.yieldUs, waitUs: b.waitUs, napMs: Infinity }, preempt)) {
    s = slot.park();
    if (s === TRAP_SLOT_STATE.PENDING) return 'parked';
  }
  if (s !== TRAP_SLOT_STATE.DONE) return { crash: `its kernel left the trap slot in state ${s}` };
  const f = slot.frame();
  slot.reset();
  cpu.setState({ ...st, ...f });
  return 'done';
}

const io = {
  poll,
  serveTrap,
  exits: {} as Record<string, number>,
  consoleByte: (b: number) => consoleBytes.push(b),
  unclaimed: () => unclaimed++,
  forward: () => forwardIo,
  forwardMmio: () => forwardMmio,
  serveIo,
};
const cpu = makeCpu(pages, io);

/**
 * This thread's CPU time and run-queue wait from Linux (/proc/thread-self/schedstat: ns on a CPU,
 * ns runnable but waiting for one, timeslices), read when a slice request arrives and when its
 * slice ends (~1 us each): the slice is charged the difference, i.e. loading the vCPU and running
 * it, not what the thread does between slices. null where the file is not there.
 */
const schedstat = (() => {
  let fd: number;
  try {
    fd = openSync('/proc/thread-self/schedstat', 'r');
  } catch {
    return null;
  }
  const buf = Buffer.alloc(64);
  const now = [0, 0];
  const read = (): number[] => {
    const n = readSync(fd, buf, 0, buf.length, 0);
    let field = 0;
    now[0] = now[1] = 0;
    for (let i = 0; i < n && field < 2; i++) {
      const c = buf[i]!;
      if (c === 0x20) field++;
      else now[field] = now[field]! * 10 + (c - 0x30);
    }
    return now;
  };
  let cpuNs = 0;
  let waitNs = 0;
  return {
    begin(): void {
      [cpuNs, waitNs] = read() as [number, number];
    },
    end(): { cpuNs: number; waitNs: number } {
      const [c, w] = read() as [number, number];
      return { cpuNs: c - cpuNs, waitNs: w - waitNs };
    },
  };
})();

const awake = new AwakeWindow(envMicros(TRAP_AWAKE.env, TRAP_AWAKE.defaultUs));

parentPort!.on('message', (m: SliceRequest) => {
  schedstat?.begin();
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
  platformBinding = m.platform;
  platform = m.platform ? platformOf(m.platform) : undefined;
  trapSlot = m.trapSlot;
  if (m.completeIo) completeAccess(cpu, m.completeIo);
  for (const vec of m.irqs) cpu.raiseIrq(vec);
  io.exits = {};
  const t0 = process.hrtime.bigint();
  const r = runSlice(cpu, pages, m.budgetNs, io, preempt);
  const runNs = Number(process.hrtime.bigint() - t0);
  const sched = schedstat?.end();
  const reply: SliceReply = { id: m.id, ...r, runNs, ...(sched ? { cpuNs: sched.cpuNs, waitNs: sched.waitNs } : {}), state: cpu.getState(), console: consoleBytes, unclaimed, ioreqCounters: fast.counters, platformExits, injected, exits: io.exits };
  fast.counters = zeroFastIoCounters();
  platformExits = 0;
  injected = 0;
  consoleBytes = [];
  unclaimed = 0;
  parentPort!.postMessage(reply);
  // A trap or an I/O exit comes back soon as the next slice: stay awake for it (awake.ts).
  if (r.exit === 'trap' || r.exit === 'io' || r.exit === 'hypercall') awake.extend();
});
