/**
 * INT 11h (equipment word), INT 12h (conventional memory in KiB) and INT 15h (system services:
 * APM 1.2 installation check, real-mode connect, disconnect, driver version, and set power state
 * — AX=5307h BX=0001h CX=0003h is "all devices off", which the shim turns into a poweroff
 * shutdown; AH=88h extended memory; AH=86h wait). Everything else is "not supported"
 * (CF=1, AH=86h), as on a BIOS without the feature.
 */
import type { RegisterFile } from './machine.ts';

export const APM_VERSION = 0x0102;
const UNSUPPORTED = 0x86;

/** Default equipment word: 80x25 colour video (bits 4-5 = 10b), no floppies. */
export const DEFAULT_EQUIPMENT = 0x0020;

export type SystemOutcome = 'resume' | 'poweroff';

export class SystemService {
  apmConnected = false;

  constructor(
    private readonly o: {
      /** Guest RAM in KiB; INT 12h reports min(this, 640). */
      memoryKib: number;
      equipment?: number;
      /** AH=86h: waits CX:DX microseconds. Default: returns at once. */
      wait?: (us: number) => Promise<void>;
    },
  ) {}

  int11(regs: RegisterFile): void {
    regs.setReg('ax', this.o.equipment ?? DEFAULT_EQUIPMENT);
  }

  int12(regs: RegisterFile): void {
    regs.setReg('ax', Math.min(640, Math.floor(this.o.memoryKib)));
  }

  async int15(regs: RegisterFile): Promise<SystemOutcome> {
    const ah = regs.getReg('ah');
    const fail = (code: number) => {
      regs.setReg('ah', code);
      regs.setCarry(true);
      return 'resume' as const;
    };
    const ok = () => {
      regs.setCarry(false);
      return 'resume' as const;
    };
    if (ah === 0x53) {
      const al = regs.getReg('al');
      const bx = regs.getReg('bx');
      switch (al) {
        case 0x00: // installation check
          if (bx !== 0) return fail(0x09); // unrecognised device id
          regs.setReg('ax', APM_VERSION);
          regs.setReg('bx', 0x504d); // 'PM'
          regs.setReg('cx', 0x0001); // 16-bit protected-mode interface flag as real BIOSes report; only real mode is served
          return ok();
        case 0x01: // real-mode interface connect
          if (bx !== 0) return fail(0x09);
          if (this.apmConnected) return fail(0x02);
          this.apmConnected = true;
          return ok();
        case 0x04: // disconnect
          if (!this.apmConnected) return fail(0x03);
          this.apmConnected = false;
          return ok();
        case 0x08: // enable/disable power management
        case 0x0d:
        case 0x0f:
          return ok();
        case 0x0e: // driver version
          regs.setReg('ax', APM_VERSION);
          return ok();
        case 0x07: {
          // set power state: BX device (0001h = all devices), CX state (0003h = off)
          if (!this.apmConnected) return fail(0x03);
          const state = regs.getReg('cx');
          if (bx !== 0x0001 && bx !== 0x00ff) return fail(0x09);
          if (state === 0x0003) {
            regs.setCarry(false);
            return 'poweroff';
          }
          if (state === 0x0000 || state === 0x0001 || state === 0x0002) return ok();
          return fail(0x0a);
        }
        default:
          return fail(UNSUPPORTED);
      }
    }
    switch (ah) {
      case 0x88:
        regs.setReg('ax', 0);
        return ok();
      case 0x86: {
        const us = regs.getReg('cx') * 0x10000 + regs.getReg('dx');
        if (this.o.wait) await this.o.wait(us);
        return ok();
      }
      case 0x4f:
        regs.setCarry(true); // keyboard intercept: keep the key
        return 'resume';
      default:
        return fail(UNSUPPORTED);
    }
  }
}
