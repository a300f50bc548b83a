/**
 * The shim's BIOS: one table from trapped interrupt vector to its paravirtual service (the
 * vectors the shim registers in the domain's trap table). `serve` runs one trapped `int n`
 * against the register file at the trap and guest memory, and says whether to resume the vCPU
 * or power the domain off.
 */
import type { Int13Service } from './int13.ts';
import type { KeyboardService } from './keyboard.ts';
import type { RegisterFile } from './machine.ts';
import type { SystemService } from './system.ts';
import type { TimeService } from './time.ts';
import type { VideoService } from './video.ts';

export type ServeOutcome = 'resume' | 'poweroff' | 'unhandled';

export interface BiosServicesParts {
  video: VideoService;
  disk: Int13Service;
  keyboard: KeyboardService;
  time: TimeService;
  system: SystemService;
}

type Handler = (regs: RegisterFile) => ServeOutcome | Promise<ServeOutcome>;

export class BiosServices {
  /** Vector -> service. The trap table the shim registers is exactly these keys. */
  readonly table: Readonly<Record<number, Handler>>;
  readonly counters: Record<string, number> = {};

  constructor(readonly parts: BiosServicesParts) {
    const p = parts;
    this.table = {
      0x10: (r) => (p.video.handle(r), 'resume'),
      0x11: (r) => (p.system.int11(r), 'resume'),
      0x12: (r) => (p.system.int12(r), 'resume'),
      0x13: async (r): Promise<ServeOutcome> => (await p.disk.handle(r), 'resume'),
      0x15: (r) => p.system.int15(r),
      0x16: async (r): Promise<ServeOutcome> => (await p.keyboard.handle(r), 'resume'),
      0x1a: (r) => (p.time.handle(r), 'resume'),
    };
  }

  /** The vectors to mark as trap exits. */
  get vectors(): number[] {
    return Object.keys(this.table).map(Number);
  }

  async serve(vector: number, regs: RegisterFile): Promise<ServeOutcome> {
    const h = this.table[vector];
    const key = `int${vector.toString(16).padStart(2, '0')}`;
    this.counters[key] = (this.counters[key] ?? 0) + 1;
    if (!h) return 'unhandled';
    return h(regs);
  }
}
