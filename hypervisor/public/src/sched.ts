/** sched.h: `sched_op` sub-ops and shutdown reasons (fact sheet §10.1). */
export const SCHEDOP = {
  yield: 0,
  block: 1,
  shutdown: 2,
  poll: 3,
  remote_shutdown: 4,
  shutdown_code: 5,
  watchdog: 6,
  pin_override: 7,
} as const;
export type SchedOpCmd = keyof typeof SCHEDOP;

/** `SHUTDOWN_*` reasons; `SHUTDOWN_MAX` = 5. */
export const SHUTDOWN = {
  poweroff: 0,
  reboot: 1,
  suspend: 2,
  crash: 3,
  watchdog: 4,
  soft_reset: 5,
} as const;
export type ShutdownReason = keyof typeof SHUTDOWN;
export const SHUTDOWN_MAX = 5;
export const shutdownReasonName = (code: number): ShutdownReason | undefined =>
  (Object.keys(SHUTDOWN) as ShutdownReason[]).find((k) => SHUTDOWN[k] === code);
