/**
 * Where a xenlab host keeps its files: one run directory per host (ARCHITECTURE.md, "Host layout
 * and lifecycle"), from XENLAB_RUN_DIR or a per-user default under the system temp dir. Every
 * process and tool finds the host through this layout.
 */
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export interface HostLayout {
  runDir: string;
  /** The machine-memory file every process maps MAP_SHARED. */
  machineMemory: string;
  hypervisorDir: string;
  hypervisorSocket: string;
  hypervisorPid: string;
  /** Written once the hypervisor accepts hypercalls. */
  hypervisorReady: string;
  /** dom0's set-up token (mode 0600): holding it is being privileged. */
  dom0Token: string;
  /**
   * Why the host stopped on its own (dom0's process died): one line the hypervisor writes as it
   * stops, for `xenlab status`; `xenlab start` removes it.
   */
  hypervisorStopped: string;
  dom0Dir: string;
  dom0Pid: string;
  dom0Ready: string;
  xenstoredDir: string;
  xenstoredSocket: string;
  /** Written by dom0, which starts xenstored. */
  xenstoredPid: string;
  logDir: string;
}

export function defaultRunDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XENLAB_RUN_DIR) return env.XENLAB_RUN_DIR;
  let user = 'user';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry: keep the generic name
  }
  return join(tmpdir(), `xenlab-${user}`);
}

export function hostLayout(runDir: string = defaultRunDir()): HostLayout {
  const hv = join(runDir, 'hypervisor');
  const d0 = join(runDir, 'dom0');
  const xs = join(runDir, 'xenstored');
  return {
    runDir,
    machineMemory: join(runDir, 'machine-memory'),
    hypervisorDir: hv,
    hypervisorSocket: join(hv, 'socket'),
    hypervisorPid: join(hv, 'pid'),
    hypervisorReady: join(hv, 'ready'),
    dom0Token: join(hv, 'dom0.token'),
    hypervisorStopped: join(hv, 'stopped'),
    dom0Dir: d0,
    dom0Pid: join(d0, 'pid'),
    dom0Ready: join(d0, 'ready'),
    xenstoredDir: xs,
    xenstoredSocket: join(xs, 'socket'),
    xenstoredPid: join(xs, 'pid'),
    logDir: join(runDir, 'logs'),
  };
}
