/**
 * CPU placement for the benchmarks that pin subject and peer to cores of their own (hypervisor,
 * ring): thin wrappers around util-linux's `taskset`, each a no-op answer (undefined / false)
 * where taskset is missing, so a bench then says it ran unpinned rather than failing.
 */
import { execFileSync } from 'node:child_process';

/** CPUs process `pid` may run on (`taskset -pc`), or undefined where taskset is missing. */
export function allowedCpus(pid: number): number[] | undefined {
  try {
    const list = execFileSync('taskset', ['-pc', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split(':').pop()!.trim();
    const cpus: number[] = [];
    for (const part of list.split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let c = a!; c <= (b ?? a!); c++) cpus.push(c);
    }
    return cpus;
  } catch {
    return undefined;
  }
}

/** Pins every thread of `pid` to `cpus` (`taskset -a`); false if that failed. */
export function pinProcess(pid: number, cpus: readonly number[]): boolean {
  try {
    execFileSync('taskset', ['-a', '-pc', cpus.join(','), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `argv` to start a process already pinned to `cpus` (through taskset). */
export function pinnedArgv(cpus: readonly number[], argv: readonly string[]): string[] {
  return ['taskset', '-c', cpus.join(','), ...argv];
}
