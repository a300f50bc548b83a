/**
 * End to end: a host's lifecycle at its edges. dom0's process dying stops the whole host (no
 * process of it left, `xenlab status` says why); a `xenlab start` whose dom0 fails after it
 * started xenstored leaves nothing running; `xl vcpu-pin` of dom0's vCPU shows in `xl
 * vcpu-list`. Every wait is bounded; hosts and temporary directories are always torn down.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { hostLayout, toolstackSocket } from '@xenlab/xen-public';
import { binPath, startTestHost, until, type TestHost } from '../testing/xl-host.ts';

const run = promisify(execFile);

/** Pids of live processes whose command line names `dir` (every process of that host does). */
function processesOf(dir: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/stat`, 'utf8').includes(') Z')) continue; // exited, not reaped
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(dir)) pids.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

let host: TestHost | undefined;
const dirs: string[] = [];
afterEach(async () => {
  if (host) dirs.push(host.dir);
  await host?.stop().catch(() => {});
  host = undefined;
  for (const d of dirs.splice(0)) {
    for (const p of processesOf(d)) process.kill(p, 'SIGKILL');
    rmSync(d, { recursive: true, force: true });
  }
});

describe('host lifecycle', () => {
  it("xl vcpu-pin of dom0's vCPU shows in vcpu-list; dom0's death stops the whole host and status says why", async () => {
    host = await startTestHost('xenlab-life-', ['--pcpus', '2', '--memory', '64', '--dom0-memory', '16']);
    const { dir, env, tool } = host;
    await tool('xl', 'vcpu-pin', '0', '0', '1');
    expect(await tool('xl', 'vcpu-list', '0')).toMatch(/^Domain-0 +0 +0 +1 +r-- +[\d.]+ +1 \/ all$/m);

    const L = hostLayout(dir);
    const dom0 = Number(readFileSync(L.dom0Pid, 'utf8'));
    expect(processesOf(dir).length).toBeGreaterThanOrEqual(3); // hypervisor, dom0, xenstored
    process.kill(dom0, 'SIGKILL');
    await until('every process of the host gone', 20_000, () => processesOf(dir).length === 0, 100);

    const status = await run(process.execPath, [binPath('xenlab'), 'status'], { env, timeout: 30_000 }).catch((e: { code: number; stdout: string }) => e);
    expect((status as { code?: number }).code).toBe(3);
    expect(status.stdout).toMatch(/no host running .*it stopped on its own: .*dom0's process died \(SIGKILL\)/);
    expect(readFileSync(join(L.logDir, 'hypervisor.log'), 'utf8')).toMatch(/dom0's process died \(SIGKILL\): stopping the host/);
    expect(await tool('xenlab', 'stop')).toMatch(/no host running/);
  });

  it('a start whose dom0 fails after starting xenstored leaves no process behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-badstart-'));
    dirs.push(dir);
    const L = hostLayout(dir);
    // dom0 binds its toolstack socket after xenstored is up: a non-empty directory there fails it.
    mkdirSync(join(toolstackSocket(L), 'in-the-way'), { recursive: true });
    const env = { ...process.env, XENLAB_RUN_DIR: dir };
    const res = await run(process.execPath, [binPath('xenlab'), 'start', '--pcpus', '1', '--memory', '32'], { env, timeout: 60_000 }).catch((e: { code: number; stderr: string }) => e);
    expect((res as { code?: number }).code).toBe(1);
    expect(res.stderr).toMatch(/the hypervisor exited \(code 1\) while booting: .*dom0's process died \(exit code 1\)/);
    expect(res.stderr).toMatch(/toolstack\.sock/); // dom0's own log says what failed
    expect(readFileSync(join(L.logDir, 'xenstored.log'), 'utf8')).not.toBe(''); // xenstored did start
    await until('every process of the host gone', 20_000, () => processesOf(dir).length === 0, 100);
  });
});
