/** Builders shared by the hypervisor's unit tests. */
import { DomId, type CreateDomainArg } from '@xenlab/xen-public';
import type { Domain } from './domain.ts';
import { Hypervisor, type HypervisorOptions } from './hypervisor.ts';
import { MachineMemory } from './mm/machine-memory.ts';

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
