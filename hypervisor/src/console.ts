/**
 * The hypervisor's console ring (xen/drivers/char/console.c's conring): what `xl dmesg` reads
 * through XEN_SYSCTL_readconsole, and where guests' CONSOLEIO_write lines land.
 */
export class ConsoleRing {
  private buf = '';
  /** Characters ever written; `index` for incremental reads counts from here. */
  private produced = 0;

  /** Called after every write (the hypervisor raises VIRQ_CON_RING for dom0). */
  onWrite: (() => void) | undefined;

  constructor(readonly capacity = 64 * 1024) {}

  write(text: string): void {
    this.buf += text;
    this.onWrite?.();
    this.produced += text.length;
    if (this.buf.length > this.capacity) this.buf = this.buf.slice(this.buf.length - this.capacity);
  }

  line(prefix: string, msg: string): void {
    this.write(`(XEN) ${prefix}${msg}\n`);
  }

  /** Reads from `index` (absolute) or everything kept; returns the text and the new index. */
  read(opts: { index?: number; count?: number; clear?: boolean } = {}): { text: string; index: number } {
    const start = this.produced - this.buf.length;
    const from = Math.max(opts.index ?? start, start);
    let text = this.buf.slice(from - start);
    if (opts.count !== undefined && opts.count >= 0) text = text.slice(0, opts.count);
    const index = from + text.length;
    if (opts.clear) this.buf = '';
    return { text, index };
  }
}
