/**
 * The console lines a guest's kernel process marks (domctl `xenlab_counters_mark`), so a
 * benchmark gets the domain's counters exactly at the edges of a workload's measured phase
 * (guests/workloads/README.md): `BEGIN` when a line starting "BEGIN " has ended, `BENCH` as soon
 * as a line has begun with "BENCH " (before the result is printed). The PV shim feeds it the
 * bytes of its INT 10h teletype and qemu-dm the bytes of COM1; each marks while the guest's vCPU
 * is still waiting on that byte (the trap, the ioreq), so nothing the guest does after the line
 * falls before the mark.
 */
export class ConsoleMarks {
  private line = '';
  private readonly pending: string[] = [];

  /** Feeds output bytes; marks become due as lines complete. */
  write(bytes: Iterable<number>): void {
    for (const b of bytes) {
      if (b === 0x0a) {
        if (this.line.startsWith('BEGIN ')) this.pending.push('BEGIN');
        this.line = '';
      } else if (b !== 0x0d && this.line.length < 8) {
        this.line += String.fromCharCode(b);
        if (this.line === 'BENCH ') this.pending.push('BENCH');
      }
    }
  }

  /** The marks due since the last call, oldest first. */
  take(): string[] {
    return this.pending.splice(0);
  }
}
