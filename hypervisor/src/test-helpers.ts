/** Builders shared by the hypervisor's unit tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SharedMemory } from '@xenlab/ring-buffers';
import { DomId, type CreateDomainArg } from '@xenlab/xen-public';
import type { Domain } from './domain.ts';
import { Hypervisor, type HypervisorOptions } from './hypervisor.ts';
import { MachineMemory } from './mm/machine-memory.ts';
import { CreditScheduler } from './sched/credit.ts';
import { WorkerX86Runner } from './sched/pcpu-threads.ts';

export function makeHost(frames = 1024, opts: Partial<HypervisorOptions> = {}): { hv: Hypervisor; dom0: Domain } {
  const hv = new Hypervisor({ memory: new MachineMemory(new ArrayBuffer(frames * 4096)), nrPcpus: 1, ...opts });
  const dom0 = hv.createDomain({ domain: 0, max_vcpus: 1 }, { privileged: true });
  dom0.maxPages = 64;
  return { hv, dom0 };
}

export function makeGuest(hv: Hypervisor, arg: Partial<CreateDomainArg> = {}, maxPages = 64): Domain {
  const d = hv.createDomain({ max_vcpus: 1, ...arg });
  d.maxPages = maxPages;
  return d;
}

export const dom = DomId;

/**
 * A hypervisor whose machine memory is a file mapped MAP_SHARED (in a temp dir) and whose vCPUs
 * run on pCPU worker threads; what it makes is registered in `cleanups` (run them in reverse).
 */
export function workerHost(cleanups: (() => unknown)[], opts: { prefix: string; frames?: number; pcpus?: number }) {
  const dir = mkdtempSync(join(tmpdir(), opts.prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const memPath = join(dir, 'mem');
  const shm = SharedMemory.create(memPath, (opts.frames ?? 256) * 4096);
  cleanups.push(() => shm.close());
  const nrPcpus = opts.pcpus ?? 1;
  const credit = new CreditScheduler({ nrPcpus });
  const hv = new Hypervisor({ memory: new MachineMemory(shm.buffer), nrPcpus, sched: credit });
  const x86 = new WorkerX86Runner(hv, memPath, nrPcpus);
  cleanups.push(() => x86.close());
  return { dir, memPath, shm, credit, hv, x86 };
}
