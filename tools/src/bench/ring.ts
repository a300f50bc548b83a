/**
 * `npm run bench -- ring`: the foundation's numbers, each against a baseline from the same run.
 * - blkif ring throughput between two processes (requests/s), hold-off on and off, with
 *   notifications per request;
 * - doorbell round trip with the peer awake (spinning) and asleep (futex), against a raw
 *   shared-memory spin ping-pong and a raw futex ping-pong.
 * Options: --quick (fewer iterations), --reps N.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Doorbell, SharedMemory } from '@xenlab/ring-buffers';
import { pingPong, PING_FILE_BYTES, PING_PONG_SCRIPT, runPeerPair, type PingMode } from '@xenlab/ring-buffers/testing';
import { allowedCpus, pinnedArgv, pinProcess } from './affinity.ts';
import { stats, type BenchResult } from './suite.ts';

/** Pin pong to core 1 and ourselves to core 0 when taskset exists and there are two cores. */
const PIN = cpus().length >= 2 && allowedCpus(process.pid) !== undefined;
const PONG = fileURLToPath(PING_PONG_SCRIPT);

async function roundTripUs(mode: PingMode, count: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'xenlab-pingpong-'));
  const file = join(dir, 'pp');
  const shm = SharedMemory.create(file, PING_FILE_BYTES);
  Doorbell.init(shm.buffer, 0);
  Doorbell.init(shm.buffer, 64);
  const argv = [process.execPath, '--import', 'tsx', PONG, file, mode, String(count)];
  const pin = PIN ? pinnedArgv([1], argv) : argv;
  const child = spawn(pin[0]!, pin.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((res, rej) => {
      child.stdout.once('data', () => res());
      child.once('exit', (c) => rej(new Error(`pong exited early (${c})`)));
    });
    const ms = pingPong(shm, mode, count, true);
    return (ms * 1000) / count;
  } finally {
    child.kill();
    shm.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(argv: string[]): Promise<BenchResult> {
  const quick = argv.includes('--quick');
  const repsArg = argv.indexOf('--reps');
  const reps = repsArg >= 0 ? Number(argv[repsArg + 1]) : quick ? 1 : 3;
  const ringCount = quick ? 200_000 : 1_000_000;
  const log = (s: string) => process.stderr.write(s + '\n');
  if (PIN) pinProcess(process.pid, [0]);

  // Ring throughput. pushEvery 1: the front end publishes every request, as Linux blkfront does.
  const ring: Record<string, unknown> = {};
  for (const holdOff of [true, false]) {
    const rates: number[] = [];
    const kicks: number[] = [];
    const wakes: number[] = [];
    for (let i = 0; i < reps; i++) {
      log(`ring: ${ringCount} requests, hold-off ${holdOff ? 'on' : 'off'} (rep ${i + 1}/${reps})`);
      const r = await runPeerPair({ count: ringCount, holdOff, spinUs: Doorbell.defaultSpinUs, idleTimeoutMs: 20_000, pushEvery: 1, ...(PIN ? { pinCores: [0, 1] as [number, number] } : {}) });
      if (r.front.errors || r.back.errors) throw new Error(`ring bench: ${r.front.firstError ?? r.back.firstError}`);
      rates.push((ringCount / r.wallMs) * 1000);
      kicks.push((r.front.kicksSent + r.back.kicksSent) / ringCount);
      wakes.push((r.front.wakeSyscalls + r.back.wakeSyscalls) / ringCount);
    }
    ring[holdOff ? 'holdOffOn' : 'holdOffOff'] = {
      unit: 'requests/s',
      requestsPerSecond: stats(rates),
      notificationsPerRequest: stats(kicks).median,
      wakeSyscallsPerRequest: stats(wakes).median,
      repetitions: rates,
    };
  }

  // Round trips, interleaved across repetitions so that load from other processes on this
  // shared machine falls on every mode alike; ping and pong pinned to different cores if possible.
  const counts: Record<PingMode, number> = quick
    ? { spin: 50_000, 'bell-awake': 50_000, futex: 5_000, 'bell-asleep': 5_000 }
    : { spin: 200_000, 'bell-awake': 200_000, futex: 20_000, 'bell-asleep': 20_000 };
  const modes: PingMode[] = ['spin', 'bell-awake', 'futex', 'bell-asleep'];
  const samples: Record<string, number[]> = Object.fromEntries(modes.map((m) => [m, []]));
  const rttReps = Math.max(reps, quick ? 2 : 5);
  for (let i = 0; i < rttReps; i++) {
    for (const mode of modes) {
      log(`round trip: ${mode} x ${counts[mode]} (rep ${i + 1}/${rttReps})`);
      samples[mode]!.push(await roundTripUs(mode, counts[mode]));
    }
  }
  const rtt: Record<string, { median: number; min: number; max: number; all: number[] }> = {};
  for (const mode of modes) {
    const st = stats(samples[mode]!);
    rtt[mode] = { median: st.median, min: st.min, max: st.max, all: samples[mode]! };
  }

  const on = ring.holdOffOn as { requestsPerSecond: { median: number }; notificationsPerRequest: number };
  const off = ring.holdOffOff as { requestsPerSecond: { median: number }; notificationsPerRequest: number };
  const awakeRatio = rtt['bell-awake']!.median / rtt.spin!.median;
  const asleepRatio = rtt['bell-asleep']!.median / rtt.futex!.median;
  const targets = {
    ringThroughputHoldOff: { target: '>= 2,000,000 requests/s', measured: on.requestsPerSecond.median, met: on.requestsPerSecond.median >= 2e6 },
    doorbellAwakeVsSpin: { target: '<= 2x spin ping-pong', measured: awakeRatio, met: awakeRatio <= 2 },
    doorbellAsleepVsFutex: { target: '<= 1.2x futex ping-pong', measured: asleepRatio, met: asleepRatio <= 1.2 },
  };
  const f = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 });
  const summary = [
    `blkif ring, two processes, ${ringCount.toLocaleString()} requests, median of ${reps}:`,
    `  hold-off on : ${f(on.requestsPerSecond.median)} req/s, ${f(on.notificationsPerRequest)} notifications/request`,
    `  hold-off off: ${f(off.requestsPerSecond.median)} req/s, ${f(off.notificationsPerRequest)} notifications/request`,
    `round trip (µs, median of ${rttReps} interleaved runs${PIN ? ', ping on core 0, pong on core 1' : ''}):`,
    `  raw spin ${f(rtt.spin!.median)} | doorbell, peer awake ${f(rtt['bell-awake']!.median)}  -> ${f(awakeRatio)}x spin`,
    `  raw futex ${f(rtt.futex!.median)} | doorbell, peer asleep ${f(rtt['bell-asleep']!.median)} -> ${f(asleepRatio)}x futex`,
    `targets:`,
    ...Object.entries(targets).map(([k, t]) => `  ${t.met ? 'met    ' : 'MISSED '} ${k}: ${f(t.measured)} (${t.target})`),
  ].join('\n');
  return { summary, measurements: { ring, roundTripMicroseconds: rtt, pinned: PIN }, targets };
}
